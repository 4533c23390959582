//! The client side: the next hop, plain SMTP on the school's own network (`mail-send`'s
//! client, without its TLS builder). Connections are kept open between messages and
//! commands pipelined where the next hop offers it: per message that is one round trip
//! for MAIL, RCPT and DATA and one for the content, instead of eight with a connection,
//! greeting, EHLO and QUIT each time (the time in filter that bench/mail measures).
//!
//! A message that goes on unchanged can also be passed on while it arrives
//! ([`NextHop::stream`]): the next hop has the content by the time the relay has decided,
//! and only the final dot, sent on [`Streaming::commit`], is left. Anything else (a
//! refusal, a hold, an error) drops the connection before the dot, and an SMTP server
//! keeps nothing of a transaction whose content was not ended.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use std::sync::Arc;

use mail_send::SmtpClient;
use mail_send::smtp::AssertReply;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
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
            let mut connection = self.open(envelope).await?;
            // The client adds the final CRLF before the dot itself.
            let body = message.strip_suffix(b"\r\n").unwrap_or(message);
            let client = &mut connection.client;
            let answer = tokio::time::timeout(self.timeout, async {
                client.write_message(body).await?;
                client.read().await
            })
            .await
            .map_err(|_| mail_send::Error::Timeout)??;
            answer.assert_positive_completion()?;
            self.keep(connection);
            Ok(())
        };
        self.within_timeout(run).await
    }

    /// Starts passing a message on while it arrives: MAIL, RCPT and DATA now, the
    /// content as it is given to [`Streaming::send`], the dot on [`Streaming::commit`].
    pub fn stream(self: &Arc<Self>, envelope: Envelope) -> Streaming {
        // 16 pieces of up to [`STREAM_PIECE`]: the client is read no further ahead.
        let (tx, mut rx) = mpsc::channel::<Piece>(16);
        let hop = Arc::clone(self);
        let task = tokio::spawn(async move {
            let mut connection = hop.within_timeout(hop.open(&envelope)).await?;
            let mut stuffed = Vec::new();
            loop {
                match rx.recv().await {
                    Some(Piece::Content(lines)) => {
                        stuff(&lines, &mut stuffed);
                        let write = connection.client.stream.write_all(&stuffed);
                        hop.within_timeout(async { write.await.map_err(mail_send::Error::Io) })
                            .await?;
                    }
                    Some(Piece::End) => break,
                    // Dropped without a commit: the dot is never sent.
                    None => return Err(ForwardError::Temporary("not committed".into())),
                }
            }
            let client = &mut connection.client;
            let end = async {
                client.stream.write_all(b".\r\n").await?;
                client.stream.flush().await?;
                client.read().await?.assert_positive_completion()
            };
            hop.within_timeout(end).await?;
            hop.keep(connection);
            Ok(())
        });
        Streaming { tx, task }
    }

    /// A connection with the envelope sent and DATA's 354 received: a kept one, or (if
    /// there is none, or the next hop had closed it) a fresh one.
    async fn open(&self, envelope: &Envelope) -> Result<Connection, mail_send::Error> {
        if let Some(mut kept) = self.take_idle() {
            match open_transaction(&mut kept, envelope).await {
                Ok(()) => return Ok(kept),
                Err(Failed::Closed(_)) => {}
                Err(Failed::Other(e)) => return Err(e),
            }
        }
        let mut fresh = self.connect().await?;
        match open_transaction(&mut fresh, envelope).await {
            Ok(()) => Ok(fresh),
            Err(Failed::Closed(e) | Failed::Other(e)) => Err(e),
        }
    }

    async fn within_timeout<T>(
        &self,
        run: impl std::future::Future<Output = Result<T, mail_send::Error>>,
    ) -> Result<T, ForwardError> {
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
        // The final dot is a small write after the content: with Nagle it would wait
        // for the next hop's delayed ACK of the last piece (40 ms on Linux).
        if let Err(e) = client.stream.set_nodelay(true) {
            tracing::debug!(error = %e, "mail: TCP_NODELAY not set on the next hop's connection");
        }
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

/// Starts one message on an open connection: MAIL, every RCPT and DATA (pipelined when
/// the next hop offers PIPELINING). Every recipient must be accepted: if one is refused
/// after DATA's 354, the content is not sent and the connection is dropped, so nobody
/// gets a partial delivery.
async fn open_transaction(connection: &mut Connection, envelope: &Envelope) -> Result<(), Failed> {
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
    Ok(())
}

/// Content pieces of about this many bytes (whole lines) go to a streamed message.
pub const STREAM_PIECE: usize = 64 << 10;

enum Piece {
    /// Whole lines, CRLF-ended, as received (dot-unstuffed).
    Content(Vec<u8>),
    /// The message is complete and may be delivered: send the dot.
    End,
}

/// A message being passed on while it arrives; dropping it abandons the message.
pub struct Streaming {
    tx: mpsc::Sender<Piece>,
    task: tokio::task::JoinHandle<Result<(), ForwardError>>,
}

impl Streaming {
    /// Passes on whole lines; if the next hop has already failed, they are dropped and
    /// the failure comes from [`Streaming::commit`].
    pub async fn send(&self, lines: Vec<u8>) {
        let _ = self.tx.send(Piece::Content(lines)).await;
    }

    /// Ends the message (the dot) and waits for the next hop's answer to it.
    pub async fn commit(self) -> Result<(), ForwardError> {
        let _ = self.tx.send(Piece::End).await;
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(ForwardError::Temporary(format!("next hop task: {e}"))),
        }
    }
}

/// Dot-stuffs whole lines (RFC 5321 §4.5.2) into `out`.
fn stuff(lines: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for line in lines.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
}
