//! The client side: the next hop, plain SMTP on the school's own network (`mail-send`'s
//! client, without its TLS builder). Connections are kept open between messages and
//! commands pipelined where the next hop offers it: per message that is one round trip
//! for MAIL, RCPT and DATA and one for the content, instead of eight with a connection,
//! greeting, EHLO and QUIT each time (the time in filter that bench/mail measures).

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use mail_send::SmtpClient;
use mail_send::smtp::AssertReply;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::relay::RelayConfig;
use crate::session::Envelope;

/// Why the next hop did not take a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardError {
    /// Down, timed out, or a 4xx: the client should retry later.
    Temporary(String),
    /// A 5xx from the next hop (its code and text): the message will never go.
    Permanent(u16, String),
}

fn classify(e: mail_send::Error) -> ForwardError {
    match e {
        mail_send::Error::UnexpectedReply(r) if (500..600).contains(&r.code) => {
            ForwardError::Permanent(r.code, r.message)
        }
        other => ForwardError::Temporary(other.to_string()),
    }
}

/// Idle connections kept at most.
const MAX_IDLE: usize = 32;
/// An idle connection is reused within this long, well inside the idle timeouts of MTAs
/// (Postfix's `smtpd_timeout` is 300 s), and otherwise closed.
const REUSE_WITHIN: Duration = Duration::from_secs(15);

/// An open SMTP session with the next hop, between transactions.
struct Connection {
    client: SmtpClient<TcpStream>,
    pipelining: bool,
    since: Instant,
}

/// How a transaction failed.
enum Failed {
    /// The connection was closed before it answered anything: a kept connection the next
    /// hop dropped while it was idle. Nothing was sent on, so a fresh one may try again.
    Closed(mail_send::Error),
    /// Anything else, the connection unusable after it.
    Other(mail_send::Error),
}

/// The next hop and the connections kept open to it.
pub struct NextHop {
    addr: SocketAddr,
    hostname: String,
    timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl NextHop {
    pub fn new(config: &RelayConfig) -> NextHop {
        NextHop {
            addr: config.next_hop,
            hostname: config.hostname.clone(),
            timeout: config.next_hop_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `message` (as received after DATA, CRLF line endings) with its envelope;
    /// `Ok` once the next hop answered 250 to it.
    pub async fn forward(&self, envelope: &Envelope, message: &[u8]) -> Result<(), ForwardError> {
        let run = async {
            if let Some(mut kept) = self.take_idle() {
                match transaction(&mut kept, envelope, message).await {
                    Ok(()) => {
                        self.keep(kept);
                        return Ok(());
                    }
                    Err(Failed::Closed(_)) => {}
                    Err(Failed::Other(e)) => return Err(e),
                }
            }
            let mut fresh = self.connect().await?;
            match transaction(&mut fresh, envelope, message).await {
                Ok(()) => {
                    self.keep(fresh);
                    Ok(())
                }
                Err(Failed::Closed(e) | Failed::Other(e)) => Err(e),
            }
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(result) => result.map_err(classify),
            Err(_) => Err(ForwardError::Temporary(format!(
                "no answer within {:?}",
                self.timeout
            ))),
        }
    }

    async fn connect(&self) -> Result<Connection, mail_send::Error> {
        let mut client = SmtpClient::connect(self.addr, self.timeout).await?;
        client.read().await?.assert_positive_completion()?;
        let ehlo = client.ehlo(&self.hostname).await?;
        Ok(Connection {
            client,
            pipelining: ehlo.has_capability(smtp_proto::EXT_PIPELINING),
            since: Instant::now(),
        })
    }

    /// The most recently used idle connection young enough to trust; older ones closed.
    fn take_idle(&self) -> Option<Connection> {
        // A poisoned lock only means a task panicked while holding it: the list is intact.
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|c| c.since.elapsed() < REUSE_WITHIN);
        idle.pop()
    }

    fn keep(&self, mut connection: Connection) {
        connection.since = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
    }
}

/// One message on an open connection: MAIL, every RCPT and DATA (pipelined when the
/// next hop offers PIPELINING), then the content. Every recipient must be accepted: if
/// one is refused after DATA's 354, the content is not sent and the connection is
/// dropped, so nobody gets a partial delivery.
async fn transaction(
    connection: &mut Connection,
    envelope: &Envelope,
    message: &[u8],
) -> Result<(), Failed> {
    let client = &mut connection.client;
    let mut commands = vec![format!("MAIL FROM:<{}>\r\n", envelope.sender)];
    commands.extend(
        envelope
            .recipients
            .iter()
            .map(|to| format!("RCPT TO:<{to}>\r\n")),
    );
    commands.push("DATA\r\n".into());
    let closed_or = |e: mail_send::Error, first: bool| match e {
        mail_send::Error::Io(_) | mail_send::Error::UnparseableReply if first => Failed::Closed(e),
        e => Failed::Other(e),
    };
    let replies = if connection.pipelining {
        client
            .cmds(&commands)
            .await
            .map_err(|e| closed_or(e, true))?
    } else {
        let mut replies = Vec::with_capacity(commands.len());
        for (i, command) in commands.iter().enumerate() {
            let reply = client
                .cmd(command)
                .await
                .map_err(|e| closed_or(e, i == 0))?;
            let refused = !(200..400).contains(&reply.code);
            replies.push(reply);
            if refused {
                break;
            }
        }
        replies
    };
    let Some((data, envelope_replies)) = replies.split_last() else {
        return Err(Failed::Other(mail_send::Error::UnparseableReply));
    };
    for reply in envelope_replies {
        if !(200..300).contains(&reply.code) {
            return Err(Failed::Other(mail_send::Error::UnexpectedReply(
                reply.clone(),
            )));
        }
    }
    if data.code != 354 {
        return Err(Failed::Other(mail_send::Error::UnexpectedReply(
            data.clone(),
        )));
    }
    // The client adds the final CRLF before the dot itself.
    let body = message.strip_suffix(b"\r\n").unwrap_or(message);
    let timeout = client.timeout;
    let answer = tokio::time::timeout(timeout, async {
        client.write_message(body).await?;
        client.read().await
    })
    .await
    .map_err(|_| Failed::Other(mail_send::Error::Timeout))?
    .map_err(Failed::Other)?;
    answer.assert_positive_completion().map_err(Failed::Other)
}

/// Sends one message on a connection of its own (the console's releases, which are few).
pub async fn forward(
    config: &RelayConfig,
    envelope: &Envelope,
    message: &[u8],
) -> Result<(), ForwardError> {
    NextHop::new(config).forward(envelope, message).await
}
