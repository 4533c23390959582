//! The milter: the same decision as the relay, asked by the MTA itself over the
//! sendmail milter protocol (Postfix `smtpd_milters`, `indymilter`). The MTA keeps the
//! SMTP conversation and the delivery; Hallpass sees the envelope, the headers and the
//! body, and at the end of the message answers: continue (with the external-sender
//! banner put in when it applies), reject with the reply citing the clause, discard
//! (the message is held in Hallpass's quarantine, from where a release goes to the next
//! hop), or try again later. Nothing reaches the MTA's queue unless the answer was
//! continue, so nothing is lost: a milter that is down gives the MTA's
//! `milter_default_action` (tempfail, as the README sets it).
//!
//! The header and body events are answered with no reply where the MTA allows it, so a
//! message costs the MTA one round trip (end of message), not one per header and chunk.

use std::ffi::{CStr, CString};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use indymilter::{
    Actions, Callbacks, ContextActions, EomContext, MacroStage, NegotiateContext, ProtoOpts,
    SetErrorReply, SocketInfo, Status,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::banner::{EXTERNAL_HEADER, banner_line, bannered_body};
use crate::rate::SendRate;
use crate::relay::{MailContext, Outcome, RelayConfig};
use crate::session::{Envelope, Reply};
use crate::verdict::{Verdict, hold, judge, record_unread, settle};

/// The events the milter answers without a reply when the MTA allows it.
const QUIET: ProtoOpts = ProtoOpts::NOREPLY_CONNECT
    .union(ProtoOpts::NOREPLY_HELO)
    .union(ProtoOpts::NOREPLY_MAIL)
    .union(ProtoOpts::NOREPLY_RCPT)
    .union(ProtoOpts::NOREPLY_DATA)
    .union(ProtoOpts::NOREPLY_HEADER)
    .union(ProtoOpts::NOREPLY_EOH)
    .union(ProtoOpts::NOREPLY_BODY)
    .union(ProtoOpts::NOREPLY_UNKNOWN);

/// One MTA connection: one SMTP session of its client's.
struct Conversation {
    /// What the MTA agreed to: which events get no reply, header values as written.
    opts: ProtoOpts,
    /// The MTA's client.
    client: SocketAddr,
    message: Message,
}

/// The message in progress.
#[derive(Default)]
struct Message {
    envelope: Envelope,
    /// Headers as `Name: value` lines, a blank line, then the body.
    bytes: Vec<u8>,
    /// Where the body starts in `bytes` (after the header block's blank line).
    body_start: usize,
    /// More than `max_message_bytes` arrived: refused at its end, the rest unkept.
    too_big: bool,
}

impl Message {
    /// Adds to the message with `add`, unless it is already past `max` bytes; once past
    /// it, what it held is dropped (it will be refused unread).
    fn grow(&mut self, max: usize, add: impl FnOnce(&mut Vec<u8>)) {
        if self.too_big {
            return;
        }
        add(&mut self.bytes);
        if self.bytes.len() > max {
            self.too_big = true;
            self.bytes = Vec::new();
        }
    }
}

impl Conversation {
    fn answer(&self, event: ProtoOpts) -> Status {
        if self.opts.contains(event) {
            Status::Noreply
        } else {
            Status::Continue
        }
    }
}

/// Serves MTA connections on `listener` until `stop` is cancelled. `rate` is the
/// senders' hourly counts, shared with the relay when both run.
pub async fn serve_milter<C: MailContext>(
    listener: TcpListener,
    config: Arc<RelayConfig>,
    rate: Arc<Mutex<SendRate>>,
    ctx: Arc<C>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let milter_config = indymilter::Config {
        max_connections: config.max_connections,
        connection_timeout: config.idle_timeout,
        ..indymilter::Config::default()
    };
    let max_bytes = config.max_message_bytes;
    let callbacks = Callbacks::<Conversation>::new()
        .on_negotiate(|cx, actions, opts| Box::pin(negotiate(cx, actions, opts)))
        .on_connect(|cx, _hostname, socket| {
            Box::pin(async move {
                let Some(c) = cx.data.as_mut() else {
                    return Status::Tempfail;
                };
                c.client = match socket {
                    SocketInfo::Inet(addr) => addr,
                    // A local submission (sendmail, pickup) or an unknown peer.
                    SocketInfo::Unix(_) | SocketInfo::Unknown => {
                        SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
                    }
                };
                c.answer(ProtoOpts::NOREPLY_CONNECT)
            })
        })
        .on_helo(|cx, _| Box::pin(async move { quiet(cx.data.as_ref(), ProtoOpts::NOREPLY_HELO) }))
        .on_mail(|cx, args| {
            Box::pin(async move {
                let Some(c) = cx.data.as_mut() else {
                    return Status::Tempfail;
                };
                c.message = Message::default();
                c.message.envelope.sender = args.first().map(address).unwrap_or_default();
                c.answer(ProtoOpts::NOREPLY_MAIL)
            })
        })
        .on_rcpt(|cx, args| {
            Box::pin(async move {
                let Some(c) = cx.data.as_mut() else {
                    return Status::Tempfail;
                };
                if let Some(to) = args.first() {
                    c.message.envelope.recipients.push(address(to));
                }
                c.answer(ProtoOpts::NOREPLY_RCPT)
            })
        })
        .on_data(|cx| Box::pin(async move { quiet(cx.data.as_ref(), ProtoOpts::NOREPLY_DATA) }))
        .on_header(move |cx, name, value| {
            Box::pin(async move {
                let Some(c) = cx.data.as_mut() else {
                    return Status::Tempfail;
                };
                let leading_space = c.opts.contains(ProtoOpts::LEADING_SPACE);
                c.message.grow(max_bytes, |bytes| {
                    push_header(bytes, &name, &value, leading_space)
                });
                c.answer(ProtoOpts::NOREPLY_HEADER)
            })
        })
        .on_eoh(|cx| {
            Box::pin(async move {
                let Some(c) = cx.data.as_mut() else {
                    return Status::Tempfail;
                };
                c.message.bytes.extend_from_slice(b"\r\n");
                c.message.body_start = c.message.bytes.len();
                c.answer(ProtoOpts::NOREPLY_EOH)
            })
        })
        .on_body(move |cx, chunk: Bytes| {
            Box::pin(async move {
                let Some(c) = cx.data.as_mut() else {
                    return Status::Tempfail;
                };
                c.message
                    .grow(max_bytes, |bytes| bytes.extend_from_slice(&chunk));
                c.answer(ProtoOpts::NOREPLY_BODY)
            })
        })
        .on_eom(move |cx| {
            let (ctx, config, rate) = (ctx.clone(), config.clone(), rate.clone());
            Box::pin(async move { end_of_message(cx, &config, &rate, ctx.as_ref()).await })
        })
        .on_abort(|cx| {
            Box::pin(async move {
                if let Some(c) = cx.data.as_mut() {
                    c.message = Message::default();
                }
                Status::Continue
            })
        });
    let listener = NoDelay(listener);
    indymilter::run(listener, callbacks, milter_config, stop.cancelled_owned()).await
}

/// The milter's listener, with Nagle's algorithm off on each connection: the end of a
/// message can take several replies in a row (the banner's body and header, then the
/// answer), and with Nagle each would wait for the MTA's delayed ACK (40 ms on Linux).
struct NoDelay(TcpListener);

impl indymilter::Listener for NoDelay {
    type Io = TcpStream;

    fn poll_accept(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<TcpStream>> {
        self.0.poll_accept(cx).map_ok(|(stream, _)| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "mail milter: TCP_NODELAY not set");
            }
            stream
        })
    }
}

/// Asks for what the milter uses: the SASL login at MAIL, header values exactly as
/// written, adding a header and replacing the body (the banner), and no replies to the
/// events it never refuses.
async fn negotiate(
    cx: &mut NegotiateContext<Conversation>,
    mta_actions: Actions,
    mta_opts: ProtoOpts,
) -> Status {
    let wanted = Actions::ADD_HEADER | Actions::REPLACE_BODY;
    // An MTA that cannot change messages still gets decisions; only the banner is lost.
    cx.requested_actions = wanted & mta_actions;
    cx.requested_opts = (QUIET | ProtoOpts::LEADING_SPACE | ProtoOpts::NO_UNKNOWN) & mta_opts;
    if let Ok(macros) = CString::new("{auth_authen}") {
        cx.requested_macros.insert(MacroStage::Mail, macros);
    }
    cx.data = Some(Conversation {
        opts: cx.requested_opts,
        client: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        message: Message::default(),
    });
    Status::Continue
}

fn quiet(c: Option<&Conversation>, event: ProtoOpts) -> Status {
    c.map_or(Status::Continue, |c| c.answer(event))
}

/// The end of a message: decided, acted on, recorded; the answer to the MTA.
async fn end_of_message<C: MailContext>(
    cx: &mut EomContext<Conversation>,
    config: &RelayConfig,
    rate: &Mutex<SendRate>,
    ctx: &C,
) -> Status {
    let Some(c) = cx.data.as_mut() else {
        return Status::Tempfail;
    };
    let client = c.client;
    let leading_space = c.opts.contains(ProtoOpts::LEADING_SPACE);
    let Message {
        envelope,
        bytes,
        body_start,
        too_big,
    } = std::mem::take(&mut c.message);
    if too_big {
        let reply = Reply::new(
            552,
            format!(
                "5.3.4 Message too big (at most {} bytes)",
                config.max_message_bytes
            ),
        );
        record_unread(ctx, client, &envelope, &reply);
        return refuse(cx, &reply, Status::Reject);
    }
    // The MTA says who logged in to it; it is the only peer a milter has.
    let login = cx
        .macros
        .get(c"{auth_authen}")
        .map(CStr::to_string_lossy)
        .filter(|l| !l.is_empty())
        .map(|l| l.into_owned());
    let judged = judge(
        ctx,
        rate,
        config.max_parts,
        &envelope,
        client,
        login.as_deref(),
        bytes,
    )
    .await;
    let (outcome, reply, status) = match &judged.verdict {
        Verdict::Refuse(reply) => (Outcome::Rejected, reply.clone(), Status::Reject),
        Verdict::Defer(reply) => (Outcome::Deferred, reply.clone(), Status::Tempfail),
        Verdict::Hold => {
            let (outcome, reply) = hold(ctx, client, &envelope, &judged).await;
            // Held here, so the MTA drops its copy; its client is told it was accepted.
            let status = match outcome {
                Outcome::Quarantined => Status::Discard,
                _ => Status::Tempfail,
            };
            (outcome, reply, status)
        }
        Verdict::Deliver => {
            if let Some(banner) = judged.banner() {
                let line = banner_line(banner);
                let value = if leading_space {
                    format!(" {line}")
                } else {
                    line
                };
                // The body first: Postfix takes no body after other changes.
                let changed = async {
                    if let Some(body) = bannered_body(&judged.message, body_start, banner) {
                        cx.actions.replace_body(&body).await?;
                    }
                    cx.actions.insert_header(0, EXTERNAL_HEADER, value).await
                };
                if let Err(e) = changed.await {
                    // The message goes on unmarked rather than not at all.
                    tracing::warn!(%client, error = %e, "mail milter: banner not added");
                }
            }
            (
                Outcome::Delivered,
                Reply::new(250, "2.0.0 Accepted"),
                Status::Continue,
            )
        }
    };
    settle(ctx, rate, client, &envelope, &judged, outcome, &reply).await;
    match status {
        Status::Reject | Status::Tempfail => refuse(cx, &reply, status),
        other => other,
    }
}

/// Sets the MTA's reply to its client from `reply` (`5.7.1 text` split into the
/// enhanced status code and the text), then answers `status`.
fn refuse(cx: &mut EomContext<Conversation>, reply: &Reply, status: Status) -> Status {
    let text = reply.lines.join(" ");
    let (xcode, text) = match text.split_once(' ') {
        Some((code, rest)) if is_enhanced_code(code) => (Some(code), rest),
        _ => (None, text.as_str()),
    };
    // One line of printable text, within the protocol's 980 bytes; `%` is the MTA's
    // format character (sendmail's `smfi_setreply`).
    let mut text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace('%', "%%");
    while text.len() > 900 {
        text.pop();
    }
    let code = reply.code.to_string();
    if let Err(e) = cx.reply.set_error_reply(&code, xcode, [text]) {
        tracing::warn!(code, error = %e, "mail milter: reply text not accepted; the MTA's own is used");
    }
    status
}

fn is_enhanced_code(s: &str) -> bool {
    let mut parts = s.split('.');
    let class = parts.next();
    matches!(class, Some("2" | "4" | "5"))
        && parts.clone().count() == 2
        && parts.all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// An envelope address as the MTA gives it (`<a@b>`): without the brackets.
fn address(arg: &CString) -> String {
    let s = arg.to_string_lossy();
    let s = s.trim();
    s.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s)
        .to_owned()
}

/// Appends `name: value` as it was in the message: the value's own leading space when
/// the MTA keeps it, its folded lines ended with CRLF.
fn push_header(out: &mut Vec<u8>, name: &CStr, value: &CStr, leading_space: bool) {
    out.extend_from_slice(name.to_bytes());
    out.push(b':');
    if !leading_space {
        out.push(b' ');
    }
    let value = value.to_bytes();
    let mut previous = 0u8;
    for &b in value {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_are_rebuilt_with_crlf() {
        let mut out = Vec::new();
        push_header(&mut out, c"Subject", c"hello\n\tworld", false);
        push_header(&mut out, c"To", c" a@b", true);
        assert_eq!(out, b"Subject: hello\r\n\tworld\r\nTo: a@b\r\n");
    }

    #[test]
    fn envelope_addresses_lose_their_brackets() {
        assert_eq!(address(&CString::from(c"<a@b.example>")), "a@b.example");
        assert_eq!(address(&CString::from(c"<>")), "");
        assert_eq!(address(&CString::from(c"a@b")), "a@b");
    }

    #[test]
    fn enhanced_codes_are_told_from_text() {
        assert!(is_enhanced_code("5.7.1"));
        assert!(is_enhanced_code("4.3.0"));
        assert!(!is_enhanced_code("Sender"));
        assert!(!is_enhanced_code("5.7"));
        assert!(!is_enhanced_code("3.1.1"));
    }
}
