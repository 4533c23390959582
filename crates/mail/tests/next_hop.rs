//! The next hop's client against a small SMTP server on a loopback socket that counts its
//! connections and commands: connections are kept and reused, commands pipelined when
//! offered, a kept connection the server dropped is replaced without losing the message,
//! a recipient refused after DATA's 354 means no content is sent, and a message passed
//! on while it arrives gets its dot only when committed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hallpass_mail::{Envelope, ForwardError, NextHop, RelayConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    /// Every command line, `<content TEXT>` for each message, `<dropped in DATA>` for a
    /// connection that closed before the dot.
    log: Mutex<Vec<String>>,
}

struct Behaviour {
    pipelining: bool,
    /// Close the connection after each message (an MTA whose idle timeout passed).
    close_after_message: bool,
    /// Refuse this recipient (550).
    refuse: Option<&'static str>,
}

async fn server(behaviour: Behaviour) -> (std::net::SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let behaviour = Arc::new(behaviour);
    let shared = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            shared.connections.fetch_add(1, Ordering::SeqCst);
            let (seen, behaviour) = (Arc::clone(&shared), Arc::clone(&behaviour));
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut line = String::new();
                loop {
                    line.clear();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let command = line.trim_end().to_string();
                    seen.log.lock().await.push(command.clone());
                    let upper = command.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        if behaviour.pipelining {
                            b"250-sink\r\n250 PIPELINING\r\n"
                        } else {
                            b"250 sink\r\n"
                        }
                    } else if upper.starts_with("RCPT")
                        && behaviour.refuse.is_some_and(|r| command.contains(r))
                    {
                        b"550 5.1.1 No such user\r\n"
                    } else if upper == "DATA" {
                        write.write_all(b"354 go ahead\r\n").await.unwrap();
                        let mut content = String::new();
                        loop {
                            line.clear();
                            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                                seen.log.lock().await.push("<dropped in DATA>".into());
                                return;
                            }
                            if line == ".\r\n" {
                                break;
                            }
                            // As the server reads it: dot-unstuffed.
                            content.push_str(line.strip_prefix('.').unwrap_or(&line));
                        }
                        seen.log.lock().await.push(format!("<content {content}>"));
                        write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                        if behaviour.close_after_message {
                            return;
                        }
                        continue;
                    } else if upper == "QUIT" {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (addr, seen)
}

fn envelope(to: &[&str]) -> Envelope {
    Envelope {
        sender: "teacher@wcs.london".into(),
        recipients: to.iter().map(|s| s.to_string()).collect(),
    }
}

fn next_hop(addr: std::net::SocketAddr) -> NextHop {
    let mut config = RelayConfig::new(addr);
    config.next_hop_timeout = Duration::from_secs(5);
    NextHop::new(&config)
}

const MESSAGE: &[u8] = b"Subject: hi\r\n\r\nHello.\r\n";

#[tokio::test]
async fn one_connection_carries_many_messages_pipelined() {
    let (addr, seen) = server(Behaviour {
        pipelining: true,
        close_after_message: false,
        refuse: None,
    })
    .await;
    let hop = next_hop(addr);
    for _ in 0..3 {
        hop.forward(&envelope(&["a@wcs.london", "b@wcs.london"]), MESSAGE)
            .await
            .unwrap();
    }
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    let log = seen.log.lock().await.clone();
    let contents = log.iter().filter(|l| l.starts_with("<content")).count();
    assert_eq!(contents, 3, "{log:?}");
    assert_eq!(
        log.iter().filter(|l| l.starts_with("EHLO")).count(),
        1,
        "{log:?}"
    );
}

#[tokio::test]
async fn a_kept_connection_the_server_closed_is_replaced() {
    let (addr, seen) = server(Behaviour {
        pipelining: false,
        close_after_message: true,
        refuse: None,
    })
    .await;
    let hop = next_hop(addr);
    for _ in 0..3 {
        hop.forward(&envelope(&["a@wcs.london"]), MESSAGE)
            .await
            .unwrap();
    }
    // Each message after the first found its kept connection closed and opened another.
    assert_eq!(seen.connections.load(Ordering::SeqCst), 3);
    let log = seen.log.lock().await.clone();
    assert_eq!(
        log.iter().filter(|l| l.starts_with("<content")).count(),
        3,
        "{log:?}"
    );
}

#[tokio::test]
async fn a_refused_recipient_sends_no_content() {
    for pipelining in [true, false] {
        let (addr, seen) = server(Behaviour {
            pipelining,
            close_after_message: false,
            refuse: Some("gone@wcs.london"),
        })
        .await;
        let hop = next_hop(addr);
        let refused = hop
            .forward(&envelope(&["a@wcs.london", "gone@wcs.london"]), MESSAGE)
            .await;
        assert_eq!(
            refused,
            Err(ForwardError::Permanent(550, "No such user".into())),
            "pipelining {pipelining}"
        );
        // The next message takes a new connection, and goes.
        hop.forward(&envelope(&["a@wcs.london"]), MESSAGE)
            .await
            .unwrap();
        let log = seen.log.lock().await.clone();
        let contents: Vec<&String> = log.iter().filter(|l| l.starts_with("<content")).collect();
        assert_eq!(contents.len(), 1, "pipelining {pipelining}: {log:?}");
        assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    }
}

#[tokio::test]
async fn a_next_hop_that_is_down_is_a_temporary_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let failed = next_hop(addr)
        .forward(&envelope(&["a@wcs.london"]), MESSAGE)
        .await;
    assert!(
        matches!(failed, Err(ForwardError::Temporary(_))),
        "{failed:?}"
    );
}

#[tokio::test]
async fn a_streamed_message_is_ended_only_when_committed() {
    let (addr, seen) = server(Behaviour {
        pipelining: true,
        close_after_message: false,
        refuse: None,
    })
    .await;
    let hop = Arc::new(next_hop(addr));
    // Committed: the pieces arrive whole, a line that starts with a dot intact.
    let streaming = hop.stream(envelope(&["a@wcs.london"]));
    streaming.send(b"Subject: minutes\r\n\r\n".to_vec()).await;
    streaming
        .send(b".hidden line\r\nlast line\r\n".to_vec())
        .await;
    streaming.commit().await.unwrap();
    // Dropped (refused or held): no dot, nothing delivered, the connection closed.
    let streaming = hop.stream(envelope(&["a@wcs.london"]));
    streaming
        .send(b"Subject: held\r\n\r\nabuse\r\n".to_vec())
        .await;
    drop(streaming);
    // The kept connection from the first is gone with the second: a third takes a new one.
    let third = hop.stream(envelope(&["b@wcs.london"]));
    third.send(b"Subject: third\r\n\r\nok\r\n".to_vec()).await;
    third.commit().await.unwrap();
    let mut log = Vec::new();
    for _ in 0..50 {
        log = seen.log.lock().await.clone();
        if log.iter().any(|l| l == "<dropped in DATA>") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The dropped message and the third are on two connections: the server may see
    // either end first.
    let mut ends: Vec<&String> = log.iter().filter(|l| l.starts_with('<')).collect();
    ends.sort();
    assert_eq!(
        ends,
        [
            "<content Subject: minutes\r\n\r\n.hidden line\r\nlast line\r\n>",
            "<content Subject: third\r\n\r\nok\r\n>",
            "<dropped in DATA>",
        ],
        "{log:?}"
    );
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    assert_eq!(
        log.iter().filter(|l| *l == "EHLO hallpass").count(),
        2,
        "{log:?}"
    );
}
