//! The relay: accepts SMTP connections, runs a [`Session`] on each, and after DATA
//! scans and decides the message, then rejects it (5xx citing the clause), holds it
//! (quarantine) or forwards it to the next hop, answering 250 only once the next hop has
//! accepted it. A next hop that is down or answers 4xx gives 451, so the sending MTA
//! keeps the message and retries: nothing is lost.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hallpass_policy::{GroupSet, Policy};
use jiff::Timestamp;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::banner::add_banner;
use crate::next_hop::{ForwardError, NextHop, Streaming};
use crate::rate::SendRate;
use crate::receive::{Data, Line, read_data, read_line};
use crate::scan::Checked;
use crate::session::{Envelope, Reply, Session, SessionLimits, Step};
use crate::tls::Tls;
use crate::verdict::{Verdict, hold, judge, record_unread, settle};

/// The relay's settings (`[mail]` in the serve configuration).
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The name in the greeting and EHLO reply.
    pub hostname: String,
    /// Where accepted messages go (Postfix's re-injection port, or a smarthost).
    pub next_hop: SocketAddr,
    pub max_message_bytes: usize,
    pub max_recipients: usize,
    /// Longest line, line ending included (RFC 5321 §4.5.3.1.6: 1000).
    pub max_line_bytes: usize,
    /// MIME parts beyond which a message is refused unread.
    pub max_parts: usize,
    pub max_connections: usize,
    /// A client silent this long is disconnected (RFC 5321 §4.5.3.2.7: 5 minutes).
    pub idle_timeout: Duration,
    /// How long the next hop may take for the whole transaction.
    pub next_hop_timeout: Duration,
    /// STARTTLS with the school's certificate (`[mail] tls_cert`/`tls_key`); `None`: not offered.
    pub tls: Option<Tls>,
    /// Whether the MTA on this host writes its SASL login into the message's first
    /// `Received:` header (Postfix `smtpd_sasl_authenticated_header = yes`), so the
    /// sender's person is the one who logged in (`[mail] authenticated_header`).
    pub authenticated_header: bool,
}

impl RelayConfig {
    /// Defaults that suit a school: 25 MB messages, 100 recipients.
    pub fn new(next_hop: SocketAddr) -> RelayConfig {
        RelayConfig {
            hostname: "hallpass".into(),
            next_hop,
            max_message_bytes: 25 << 20,
            max_recipients: 100,
            max_line_bytes: 1000,
            max_parts: 1000,
            max_connections: 100,
            idle_timeout: Duration::from_secs(300),
            next_hop_timeout: Duration::from_secs(60),
            tls: None,
            authenticated_header: false,
        }
    }
}

/// Who sent a message, as far as the roster knows.
#[derive(Debug, Clone, Default)]
pub struct Sender {
    /// Username on the roster.
    pub person: Option<String>,
    /// The SASL login the MTA passed on, when it did (see [`crate::authenticated_sender`]).
    pub login: Option<String>,
    pub groups: GroupSet,
    /// An email sanction in force on the sender: (document, clause, message). Their
    /// mail is refused with it.
    pub suspended: Option<(String, String, String)>,
}

/// What happened to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Rejected,
    Quarantined,
    /// Not accepted for now (next hop down, held copy not written): the client retries.
    Deferred,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Rejected => "rejected",
            Outcome::Quarantined => "quarantined",
            Outcome::Deferred => "deferred",
        }
    }
}

/// One message's record, handed to [`MailContext::record`].
#[derive(Debug)]
pub struct MessageRecord<'a> {
    pub at: Timestamp,
    pub client: SocketAddr,
    pub envelope: &'a Envelope,
    pub sender: &'a Sender,
    pub size: usize,
    pub outcome: Outcome,
    /// The reply the client got.
    pub reply: &'a Reply,
    /// `None` when the message was refused before it was read (size, line length, parts).
    pub checked: Option<&'a Checked>,
}

/// What the relay needs from the rest of Hallpass: the policy in force, the roster, the
/// clock, the event log and the quarantine.
pub trait MailContext: Send + Sync + 'static {
    fn policy(&self) -> Arc<Policy>;
    /// The sender's person: the one `login` names (the MTA's SASL login, when it passed
    /// one) if the roster knows it, else the one whose address `sender` is.
    fn identify(&self, sender: &str, login: Option<&str>, policy: &Policy) -> Sender;
    fn now(&self) -> Timestamp;
    /// When ICT support blocked this envelope sender from the console: the refusal's
    /// text (`5.7.1` is put before it).
    fn blocked_sender(&self, sender: &str) -> Option<String>;
    fn record(&self, record: &MessageRecord<'_>);
    /// Keeps a held message (with the sender and the decision, for the people who
    /// review it); `Err` (with why) makes the relay answer 451.
    fn quarantine(
        &self,
        envelope: &Envelope,
        sender: &Sender,
        checked: &Checked,
        message: &[u8],
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;
    /// Keeps a copy of a message the next hop accepted (as it arrived, before any
    /// banner): the journal (000 §3.3.1). Called once per delivered message.
    fn journal(
        &self,
        envelope: &Envelope,
        sender: &Sender,
        direction: hallpass_policy::Direction,
        message: &[u8],
    ) -> impl std::future::Future<Output = ()> + Send;
}

/// What the relay's connections share: the senders' counts and the next hop's
/// connections.
struct Shared {
    rate: Arc<Mutex<SendRate>>,
    next_hop: Arc<NextHop>,
}

/// Serves `listener` until `stop` is cancelled, passing accepted mail to `next_hop`
/// (shared with whoever else delivers there, the console's releases). `rate` is the
/// senders' hourly counts, shared with the milter when both run. Connections in
/// progress are dropped at the stop; their clients retry, since nothing was acknowledged
/// unforwarded.
pub async fn serve<C: MailContext>(
    listener: TcpListener,
    config: Arc<RelayConfig>,
    next_hop: Arc<NextHop>,
    rate: Arc<Mutex<SendRate>>,
    ctx: Arc<C>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let shared = Arc::new(Shared { rate, next_hop });
    let tracker = TaskTracker::new();
    loop {
        let (stream, client) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: keep serving the others.
                    tracing::warn!(error = %e, "mail: accept failed");
                    continue;
                }
            },
        };
        // Replies are small writes that can follow each other (354 after a pipelined
        // RCPT's): none should wait for the client's delayed ACK.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%client, error = %e, "mail: TCP_NODELAY not set");
        }
        let permit = slots.clone().try_acquire_owned().ok();
        let (config, ctx, stop, shared) =
            (config.clone(), ctx.clone(), stop.clone(), shared.clone());
        tracker.spawn(async move {
            let Some(_permit) = permit else {
                let mut stream = stream;
                let busy = Reply::new(421, "4.3.2 Too many connections, try again later");
                let _ = stream.write_all(busy.to_wire().as_bytes()).await;
                return;
            };
            tokio::select! {
                () = stop.cancelled() => {}
                r = connection(stream, client, &config, ctx.as_ref(), &shared) => {
                    if let Err(e) = r {
                        tracing::debug!(%client, error = %e, "mail: connection ended");
                    }
                }
            }
        });
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

async fn connection<C: MailContext>(
    stream: TcpStream,
    client: SocketAddr,
    config: &RelayConfig,
    ctx: &C,
    shared: &Shared,
) -> std::io::Result<()> {
    let mut session = Session::new(
        &config.hostname,
        SessionLimits {
            max_message_bytes: config.max_message_bytes,
            max_recipients: config.max_recipients,
            max_errors: 20,
            tls: config.tls.is_some(),
            // Only the MTA on this host may say who its client was.
            xforward: client.ip().is_loopback(),
        },
    );
    let mut stream = stream;
    stream
        .write_all(session.greeting().to_wire().as_bytes())
        .await?;
    match converse(stream, client, config, ctx, shared, &mut session).await? {
        Conversation::Over => Ok(()),
        Conversation::StartTls(stream) => {
            // The session offers STARTTLS only with a certificate.
            let Some(Tls(acceptor)) = &config.tls else {
                return Ok(());
            };
            let tls = tokio::time::timeout(config.idle_timeout, acceptor.accept(stream))
                .await
                .map_err(|_| std::io::Error::other("TLS handshake timed out"))??;
            session.tls_started();
            // A secure session never asks for TLS again, so this ends the conversation.
            converse(tls, client, config, ctx, shared, &mut session).await?;
            Ok(())
        }
    }
}

/// How a conversation on one stream ended.
enum Conversation<S> {
    Over,
    /// The client asked for TLS and got 220: the stream, to start TLS on.
    StartTls(S),
}

/// Reads commands and messages on `stream` until the client leaves or asks for TLS.
async fn converse<S, C>(
    stream: S,
    client: SocketAddr,
    config: &RelayConfig,
    ctx: &C,
    shared: &Shared,
    session: &mut Session,
) -> std::io::Result<Conversation<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    C: MailContext,
{
    let (read, mut write) = tokio::io::split(stream);
    // 64 KiB: a message of megabytes is read in a few hundred calls, not thousands.
    let mut read = BufReader::with_capacity(64 << 10, read);
    let mut line = Vec::new();
    // Commands may carry extensions' parameters: more than the 512 of RFC 5321, bounded.
    let max_command = 2048;
    loop {
        let got = tokio::time::timeout(
            config.idle_timeout,
            read_line(&mut read, max_command, &mut line),
        )
        .await;
        let step = match got {
            Err(_) => {
                let bye = Reply::new(421, "4.4.2 Idle too long, closing connection");
                write.write_all(bye.to_wire().as_bytes()).await?;
                return Ok(Conversation::Over);
            }
            Ok(read) => match read? {
                Line::Eof => return Ok(Conversation::Over),
                Line::TooLong => session.line_too_long(),
                Line::Complete => session.command(&line),
            },
        };
        match step {
            Step::Reply(reply) => write.write_all(reply.to_wire().as_bytes()).await?,
            Step::Close(reply) => {
                write.write_all(reply.to_wire().as_bytes()).await?;
                return Ok(Conversation::Over);
            }
            Step::StartTls(reply) => {
                // Anything the client sent after STARTTLS, before the handshake, would
                // be taken as said under TLS (CVE-2011-0411): such a client is dropped.
                if !read.buffer().is_empty() {
                    let bye = Reply::new(421, "4.7.0 Commands after STARTTLS, closing connection");
                    write.write_all(bye.to_wire().as_bytes()).await?;
                    return Ok(Conversation::Over);
                }
                write.write_all(reply.to_wire().as_bytes()).await?;
                write.flush().await?;
                return Ok(Conversation::StartTls(read.into_inner().unsplit(write)));
            }
            Step::Data => {
                let go = Reply::new(354, "End data with <CR><LF>.<CR><LF>");
                write.write_all(go.to_wire().as_bytes()).await?;
                let envelope = session.take_envelope();
                // Only the MTA on this host is believed about who logged in to it.
                let login_trusted = config.authenticated_header && client.ip().is_loopback();
                // Events name the MTA's own client when it said (XFORWARD ADDR).
                let client = session
                    .forwarded_addr()
                    .map_or(client, |ip| SocketAddr::new(ip, 0));
                // A message that goes on unchanged is passed to the next hop as it arrives.
                let streaming = (!changes_on_the_way(&ctx.policy(), &envelope))
                    .then(|| shared.next_hop.stream(envelope.clone()));
                let data = tokio::time::timeout(
                    config.idle_timeout,
                    read_data(&mut read, config, streaming.as_ref()),
                )
                .await;
                let reply = match data {
                    Err(_) => {
                        let bye = Reply::new(421, "4.4.2 Idle too long, closing connection");
                        write.write_all(bye.to_wire().as_bytes()).await?;
                        return Ok(Conversation::Over);
                    }
                    Ok(data) => match data? {
                        Data::Eof => return Ok(Conversation::Over),
                        Data::Refused(reply) => {
                            record_unread(ctx, client, &envelope, &reply);
                            reply
                        }
                        Data::Message(message) => {
                            let login = login_trusted
                                .then(|| crate::authenticated_sender(&message))
                                .flatten();
                            let from = Origin { client, login };
                            let received = Received {
                                from,
                                message,
                                streaming,
                            };
                            handle(received, config, ctx, shared, &envelope).await
                        }
                    },
                };
                write.write_all(reply.to_wire().as_bytes()).await?;
            }
        }
    }
}

/// Where a message came from: the client (the MTA's own, by XFORWARD), and the SASL
/// login the MTA passed on.
struct Origin {
    client: SocketAddr,
    login: Option<String>,
}

/// A message read to its end.
struct Received {
    from: Origin,
    message: Vec<u8>,
    /// Its content already on the way to the next hop, waiting for the dot.
    streaming: Option<Streaming>,
}

/// Whether the message is changed before it goes on (the external-sender banner), so it
/// cannot be passed on as it arrives.
fn changes_on_the_way(policy: &Policy, envelope: &Envelope) -> bool {
    let mail = policy.mail();
    mail.external_banner().is_some()
        && mail.direction(&envelope.sender, &envelope.recipients)
            == hallpass_policy::Direction::Inbound
}

/// Decides one received message and acts on it; the reply for the client.
async fn handle<C: MailContext>(
    received: Received,
    config: &RelayConfig,
    ctx: &C,
    shared: &Shared,
    envelope: &Envelope,
) -> Reply {
    let Received {
        from: Origin { client, login },
        message,
        streaming,
    } = received;
    let judged = judge(
        ctx,
        &shared.rate,
        config.max_parts,
        envelope,
        client,
        login.as_deref(),
        message,
    )
    .await;
    let (outcome, reply) = match &judged.verdict {
        Verdict::Refuse(reply) => (Outcome::Rejected, reply.clone()),
        Verdict::Defer(reply) => (Outcome::Deferred, reply.clone()),
        Verdict::Hold => hold(ctx, client, envelope, &judged).await,
        Verdict::Deliver => {
            let forwarded = match streaming {
                // Unless a reloaded policy now wants a banner on it.
                Some(streaming) if !changes_on_the_way(&judged.policy, envelope) => {
                    streaming.commit().await
                }
                _ => {
                    // A message that cannot be parsed goes on unchanged.
                    let bannered = judged.banner().and_then(|b| add_banner(&judged.message, b));
                    let message = bannered.as_deref().unwrap_or(&judged.message);
                    shared.next_hop.forward(envelope, message).await
                }
            };
            match forwarded {
                Ok(()) => (Outcome::Delivered, Reply::new(250, "2.0.0 Delivered")),
                Err(ForwardError::Temporary(why)) => {
                    tracing::warn!(next_hop = %config.next_hop, error = %why, "mail: next hop failed, deferring");
                    (
                        Outcome::Deferred,
                        Reply::new(451, "4.4.1 Next hop unavailable, try again later"),
                    )
                }
                Err(ForwardError::Permanent(code, why)) => (
                    Outcome::Rejected,
                    Reply::new(code, format!("5.0.0 Next hop refused the message: {why}")),
                ),
            }
        }
    };
    settle(
        ctx,
        &shared.rate,
        client,
        envelope,
        &judged,
        outcome,
        &reply,
    )
    .await;
    reply
}
