//! The SMTP server side as a state machine, without IO: one command line in, one step
//! out (a reply, "read the message now", or "reply and close"). Commands are parsed by
//! `smtp-proto`; every malformed line gets its RFC 5321 reply, never a panic.

use smtp_proto::{Error as ParseError, Request};

/// An SMTP reply: code, enhanced status code (RFC 3463) and text. Multi-line replies
/// (EHLO) keep one entry per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// `text` should start with the enhanced status code (`5.7.1 ...`) where one applies.
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    /// The bytes on the wire: `250-first\r\n250 last\r\n`. Line breaks inside a text
    /// (a policy message) become spaces, so a reply can never be split by its content.
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        let n = self.lines.len();
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i + 1 == n { ' ' } else { '-' };
            let clean: String = line
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            out.push_str(&format!("{}{sep}{clean}\r\n", self.code));
        }
        if n == 0 {
            out.push_str(&format!("{}\r\n", self.code));
        }
        out
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }
}

/// What the connection does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Reply(Reply),
    /// Send `354` and read the message up to the lone dot.
    Data,
    /// Send the reply (220), then start TLS on the connection (RFC 3207).
    StartTls(Reply),
    /// Send the reply and close the connection.
    Close(Reply),
}

/// Limits one session enforces.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub max_message_bytes: usize,
    pub max_recipients: usize,
    /// Bad commands tolerated before the connection is closed.
    pub max_errors: usize,
    /// Whether STARTTLS is offered (a certificate is configured).
    pub tls: bool,
    /// Whether XFORWARD is offered: the client is the school's MTA on this host
    /// (loopback), trusted to say who its own client was.
    pub xforward: bool,
}

/// One connection's SMTP state.
#[derive(Debug)]
pub struct Session {
    hostname: String,
    limits: SessionLimits,
    greeted: bool,
    sender: Option<String>,
    recipients: Vec<String>,
    errors: usize,
    /// TLS is in force on the connection.
    secure: bool,
    /// The MTA's own client, from XFORWARD ADDR.
    forwarded_addr: Option<std::net::IpAddr>,
}

/// The envelope of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// `MAIL FROM`, empty for a bounce.
    pub sender: String,
    pub recipients: Vec<String>,
}

impl Session {
    pub fn new(hostname: &str, limits: SessionLimits) -> Session {
        Session {
            hostname: hostname.to_owned(),
            limits,
            greeted: false,
            sender: None,
            recipients: Vec::new(),
            errors: 0,
            secure: false,
            forwarded_addr: None,
        }
    }

    /// The address of the MTA's client (XFORWARD ADDR), when the MTA said.
    pub fn forwarded_addr(&self) -> Option<std::net::IpAddr> {
        self.forwarded_addr
    }

    /// `XFORWARD NAME=.. ADDR=.. PROTO=.. HELO=.. SOURCE=.. IDENT=..` (Postfix's
    /// XFORWARD_README): only ADDR is kept; unknown attributes are an error, values
    /// `[UNAVAILABLE]` and `[TEMPUNAVAIL]` mean none.
    fn xforward(&mut self, args: &str) -> Step {
        if !self.limits.xforward {
            return self.error(Reply::new(502, "5.5.1 XFORWARD not implemented"));
        }
        if self.sender.is_some() {
            return self.error(Reply::new(503, "5.5.1 XFORWARD inside a transaction"));
        }
        let mut addr = None;
        for attr in args.split_ascii_whitespace() {
            let Some((name, value)) = attr.split_once('=') else {
                return self.error(Reply::new(501, "5.5.4 Syntax: XFORWARD NAME=VALUE ..."));
            };
            match name.to_ascii_uppercase().as_str() {
                "ADDR" => {
                    let v = value.strip_prefix("IPV6:").unwrap_or(value);
                    if !v.starts_with('[') {
                        match v.parse() {
                            Ok(ip) => addr = Some(ip),
                            Err(_) => {
                                return self.error(Reply::new(
                                    501,
                                    "5.5.4 XFORWARD ADDR is not an IP address",
                                ));
                            }
                        }
                    }
                }
                "NAME" | "PORT" | "PROTO" | "HELO" | "IDENT" | "SOURCE" => {}
                _ => {
                    return self.error(Reply::new(
                        501,
                        format!("5.5.4 Unknown XFORWARD attribute {}", printable(name)),
                    ));
                }
            }
        }
        if addr.is_some() {
            self.forwarded_addr = addr;
        }
        Step::Reply(Reply::new(250, "2.0.0 Ok"))
    }

    /// TLS was negotiated: the client starts again with EHLO (RFC 3207 §4.2), and
    /// STARTTLS is neither offered nor accepted again.
    pub fn tls_started(&mut self) {
        self.reset();
        self.greeted = false;
        self.secure = true;
    }

    /// Whether TLS is in force.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    pub fn greeting(&self) -> Reply {
        Reply::new(220, format!("{} ESMTP Hallpass mail filter", self.hostname))
    }

    /// The envelope of the message being received; the transaction ends (as after a
    /// reply to the message, RFC 5321 §4.1.1.4).
    pub fn take_envelope(&mut self) -> Envelope {
        Envelope {
            sender: self.sender.take().unwrap_or_default(),
            recipients: std::mem::take(&mut self.recipients),
        }
    }

    /// A line that was too long to be a command.
    pub fn line_too_long(&mut self) -> Step {
        self.error(Reply::new(500, "5.5.2 Line too long"))
    }

    fn error(&mut self, reply: Reply) -> Step {
        self.errors += 1;
        if self.errors >= self.limits.max_errors {
            return Step::Close(Reply::new(421, "4.7.0 Too many errors, closing connection"));
        }
        Step::Reply(reply)
    }

    /// One command line, with or without its line ending.
    pub fn command(&mut self, line: &[u8]) -> Step {
        let mut buf: Vec<u8> = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line)
            .to_vec();
        buf.extend_from_slice(b"\r\n");
        // smtp-proto does not know XFORWARD.
        if buf.len() > 9 && buf[..9].eq_ignore_ascii_case(b"XFORWARD ") {
            let args = String::from_utf8_lossy(&buf[9..]).into_owned();
            return self.xforward(&args);
        }
        let request = match Request::parse(&mut buf.iter()) {
            Ok(r) => r,
            Err(e) => return self.parse_error(e),
        };
        match request {
            Request::Ehlo { host } => {
                self.reset();
                self.greeted = true;
                let mut lines = vec![
                    format!("{} greets {}", self.hostname, printable(&host)),
                    format!("SIZE {}", self.limits.max_message_bytes),
                    "8BITMIME".into(),
                    "ENHANCEDSTATUSCODES".into(),
                ];
                if self.limits.tls && !self.secure {
                    lines.push("STARTTLS".into());
                }
                if self.limits.xforward {
                    lines.push("XFORWARD NAME ADDR PROTO HELO SOURCE IDENT".into());
                }
                Step::Reply(Reply { code: 250, lines })
            }
            Request::Helo { host } | Request::Lhlo { host } => {
                self.reset();
                self.greeted = true;
                Step::Reply(Reply::new(
                    250,
                    format!("{} greets {}", self.hostname, printable(&host)),
                ))
            }
            Request::Mail { from } => {
                if !self.greeted {
                    return self.error(Reply::new(503, "5.5.1 Say EHLO first"));
                }
                if self.sender.is_some() {
                    return self.error(Reply::new(503, "5.5.1 Sender already given"));
                }
                if from.size > self.limits.max_message_bytes {
                    return Step::Reply(Reply::new(
                        552,
                        format!(
                            "5.3.4 Message too big (at most {} bytes)",
                            self.limits.max_message_bytes
                        ),
                    ));
                }
                // Kept as given: local parts may be case-sensitive at the next hop; the rules
                // compare case-insensitively themselves.
                self.sender = Some(from.address.into_owned());
                Step::Reply(Reply::new(250, "2.1.0 Sender OK"))
            }
            Request::Rcpt { to } => {
                if self.sender.is_none() {
                    return self.error(Reply::new(503, "5.5.1 Need MAIL before RCPT"));
                }
                if to.address.is_empty() {
                    return self.error(Reply::new(501, "5.1.3 Empty recipient address"));
                }
                if self.recipients.len() >= self.limits.max_recipients {
                    return Step::Reply(Reply::new(
                        452,
                        format!(
                            "4.5.3 Too many recipients (at most {} per message)",
                            self.limits.max_recipients
                        ),
                    ));
                }
                self.recipients.push(to.address.into_owned());
                Step::Reply(Reply::new(250, "2.1.5 Recipient OK"))
            }
            Request::Data => {
                if self.sender.is_none() {
                    self.error(Reply::new(503, "5.5.1 Need MAIL before DATA"))
                } else if self.recipients.is_empty() {
                    self.error(Reply::new(554, "5.5.1 No valid recipients"))
                } else {
                    Step::Data
                }
            }
            Request::Rset => {
                self.reset();
                Step::Reply(Reply::new(250, "2.0.0 Reset"))
            }
            Request::StartTls if self.limits.tls && !self.secure => {
                if self.sender.is_some() {
                    return self.error(Reply::new(503, "5.5.1 STARTTLS inside a transaction"));
                }
                Step::StartTls(Reply::new(220, "2.0.0 Ready to start TLS"))
            }
            Request::StartTls if self.secure => {
                self.error(Reply::new(503, "5.5.1 TLS already active"))
            }
            Request::Noop { .. } => Step::Reply(Reply::new(250, "2.0.0 OK")),
            Request::Quit => Step::Close(Reply::new(221, "2.0.0 Bye")),
            Request::Vrfy { .. } => Step::Reply(Reply::new(
                252,
                "2.5.0 Cannot verify, but will accept and try delivery",
            )),
            Request::Help { .. } => Step::Reply(Reply::new(
                214,
                "2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT",
            )),
            other => self.error(Reply::new(
                502,
                format!("5.5.1 {} not implemented", other.name()),
            )),
        }
    }

    fn reset(&mut self) {
        self.sender = None;
        self.recipients.clear();
    }

    fn parse_error(&mut self, e: ParseError) -> Step {
        let reply = match e {
            ParseError::UnknownCommand | ParseError::NeedsMoreData { .. } => {
                Reply::new(500, "5.5.2 Command not recognised")
            }
            ParseError::InvalidSenderAddress => Reply::new(501, "5.1.7 Bad sender address syntax"),
            ParseError::InvalidRecipientAddress => {
                Reply::new(501, "5.1.3 Bad recipient address syntax")
            }
            ParseError::SyntaxError { syntax } => {
                Reply::new(501, format!("5.5.4 Syntax: {syntax}"))
            }
            ParseError::InvalidParameter { param } => {
                Reply::new(501, format!("5.5.4 Invalid parameter {param}"))
            }
            ParseError::UnsupportedParameter { param } => Reply::new(
                555,
                format!("5.5.4 Unsupported parameter {}", printable(&param)),
            ),
            ParseError::ResponseTooLong | ParseError::InvalidResponse { .. } => {
                Reply::new(500, "5.5.2 Command not recognised")
            }
        };
        self.error(reply)
    }
}

/// Client-given text echoed in a reply: printable ASCII only, at most 100 characters.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session_with(max_errors: usize) -> Session {
        Session::new(
            "filter.test",
            SessionLimits {
                max_message_bytes: 1000,
                max_recipients: 2,
                max_errors,
                tls: false,
                xforward: false,
            },
        )
    }

    fn session() -> Session {
        session_with(10)
    }

    fn code(step: &Step) -> u16 {
        match step {
            Step::Reply(r) | Step::Close(r) | Step::StartTls(r) => r.code,
            Step::Data => 354,
        }
    }

    #[test]
    fn a_whole_transaction() {
        let mut s = session();
        assert_eq!(s.greeting().code, 220);
        let ehlo = s.command(b"EHLO client.test\r\n");
        let Step::Reply(r) = &ehlo else {
            panic!("{ehlo:?}")
        };
        assert_eq!(
            r.to_wire(),
            "250-filter.test greets client.test\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
        );
        assert_eq!(
            code(&s.command(b"MAIL FROM:<A@School.Example> SIZE=10\r\n")),
            250
        );
        assert_eq!(code(&s.command(b"RCPT TO:<b@x.example>\r\n")), 250);
        assert_eq!(s.command(b"DATA\r\n"), Step::Data);
        assert_eq!(
            s.take_envelope(),
            Envelope {
                sender: "A@School.Example".into(),
                recipients: vec!["b@x.example".into()]
            }
        );
        // The transaction is over: a new one needs MAIL again.
        assert_eq!(code(&s.command(b"RCPT TO:<b@x.example>\r\n")), 503);
        assert_eq!(code(&s.command(b"QUIT\r\n")), 221);
    }

    #[test]
    fn order_and_limits() {
        let mut s = session();
        assert_eq!(code(&s.command(b"MAIL FROM:<a@b.example>")), 503);
        assert_eq!(code(&s.command(b"HELO c")), 250);
        assert_eq!(code(&s.command(b"DATA")), 503);
        assert_eq!(code(&s.command(b"MAIL FROM:<a@b.example> SIZE=5000")), 552);
        assert_eq!(
            code(&s.command(b"MAIL FROM:<a@b.example> BODY=8BITMIME SIZE=10")),
            250,
            "Postfix's proxy sends BODY= when 8BITMIME is advertised"
        );
        assert_eq!(code(&s.command(b"RSET")), 250);
        assert_eq!(
            code(&s.command(b"MAIL FROM:<>")),
            250,
            "bounces have no sender"
        );
        assert_eq!(code(&s.command(b"MAIL FROM:<a@b.example>")), 503);
        assert_eq!(code(&s.command(b"DATA")), 554);
        assert_eq!(code(&s.command(b"RCPT TO:<1@b.example>")), 250);
        assert_eq!(code(&s.command(b"RCPT TO:<2@b.example>")), 250);
        assert_eq!(code(&s.command(b"RCPT TO:<3@b.example>")), 452);
        assert_eq!(code(&s.command(b"RSET")), 250);
        assert_eq!(code(&s.command(b"RCPT TO:<1@b.example>")), 503);
    }

    #[test]
    fn malformed_lines_get_errors_then_the_door() {
        let mut s = session_with(5);
        assert_eq!(code(&s.command(b"HELO c")), 250);
        assert_eq!(code(&s.command(b"\xff\xfe garbage")), 500);
        assert_eq!(code(&s.command(b"MAIL FROM:<not an address")), 501);
        assert_eq!(code(&s.command(b"STARTTLS")), 502);
        assert_eq!(code(&s.command(b"")), 500);
        let last = s.command(b"BDAT 10 LAST");
        assert!(
            matches!(last, Step::Close(ref r) if r.code == 421),
            "{last:?}"
        );
    }

    #[test]
    fn starttls_is_offered_once_and_outside_a_transaction() {
        let mut s = Session::new(
            "filter.test",
            SessionLimits {
                max_message_bytes: 1000,
                max_recipients: 2,
                max_errors: 10,
                tls: true,
                xforward: false,
            },
        );
        let ehlo = s.command(b"EHLO c");
        assert!(matches!(&ehlo, Step::Reply(r) if r.lines.last().unwrap() == "STARTTLS"));
        assert_eq!(code(&s.command(b"MAIL FROM:<a@b.example>")), 250);
        assert_eq!(code(&s.command(b"STARTTLS")), 503);
        assert_eq!(code(&s.command(b"RSET")), 250);
        assert!(matches!(s.command(b"STARTTLS"), Step::StartTls(r) if r.code == 220));
        s.tls_started();
        assert!(s.is_secure());
        assert_eq!(
            code(&s.command(b"MAIL FROM:<a@b.example>")),
            503,
            "EHLO again first"
        );
        let ehlo = s.command(b"EHLO c");
        assert!(matches!(&ehlo, Step::Reply(r) if !r.lines.iter().any(|l| l == "STARTTLS")));
        assert_eq!(code(&s.command(b"STARTTLS")), 503);
    }

    #[test]
    fn xforward_from_a_trusted_mta_names_its_client() {
        let mut trusted = Session::new(
            "filter.test",
            SessionLimits {
                max_message_bytes: 1000,
                max_recipients: 2,
                max_errors: 10,
                tls: false,
                xforward: true,
            },
        );
        let ehlo = trusted.command(b"EHLO mta");
        assert!(
            matches!(&ehlo, Step::Reply(r) if r.lines.iter().any(|l| l.starts_with("XFORWARD ")))
        );
        assert_eq!(
            code(&trusted.command(b"XFORWARD NAME=pc1.wcs.london ADDR=10.1.2.3 PROTO=ESMTP")),
            250
        );
        assert_eq!(
            code(&trusted.command(b"xforward HELO=pc1 SOURCE=LOCAL")),
            250
        );
        assert_eq!(trusted.forwarded_addr(), Some("10.1.2.3".parse().unwrap()));
        assert_eq!(
            code(&trusted.command(b"XFORWARD ADDR=IPV6:2001:db8::1")),
            250
        );
        assert_eq!(
            trusted.forwarded_addr(),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(code(&trusted.command(b"XFORWARD ADDR=[UNAVAILABLE]")), 250);
        assert_eq!(code(&trusted.command(b"XFORWARD ADDR=not-an-ip")), 501);
        assert_eq!(code(&trusted.command(b"XFORWARD COLOUR=red")), 501);
        assert_eq!(code(&trusted.command(b"MAIL FROM:<a@b.example>")), 250);
        assert_eq!(code(&trusted.command(b"XFORWARD ADDR=10.9.9.9")), 503);
        // From anyone else it is not a command.
        let mut s = session();
        assert_eq!(code(&s.command(b"XFORWARD ADDR=10.1.2.3")), 502);
        assert_eq!(s.forwarded_addr(), None);
    }

    #[test]
    fn replies_cannot_be_split_by_their_text() {
        let r = Reply::new(550, "5.7.1 bad\r\n250 fake");
        assert_eq!(r.to_wire(), "550 5.7.1 bad  250 fake\r\n");
    }
}
