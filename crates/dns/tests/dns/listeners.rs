//! Listeners that fail are restarted or stop the server (never silently gone); TCP
//! connections are bounded per client, and the longest-idle one makes room for others.

use std::net::SocketAddr;
use std::time::Duration;

use hallpass_dns::{DnsError, Metrics};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::kit::*;

/// Waits (polling a real server, bounded) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

fn healthy(m: &Metrics) -> bool {
    m.listeners_expected() > 0 && m.listeners_alive() == m.listeners_expected()
}

/// Sends the query that makes the test filter panic, from `from`, without waiting.
async fn send_boom(from: &UdpSocket, to: SocketAddr) {
    let q = build_query("boom.example", RecordType::A, None);
    from.send_to(&q, to).await.unwrap();
}

#[tokio::test]
async fn a_udp_listener_whose_filter_panics_is_restarted_and_keeps_answering() {
    for threads in [true, false] {
        let t = TestServer::start_with(|c, _| {
            c.udp_sockets = 1;
            c.udp_threads = threads;
        })
        .await;
        let m = t.handle.metrics().clone();
        until("every listener runs", || healthy(&m)).await;
        assert_eq!(
            m.listeners_expected(),
            2,
            "one UDP socket and one TCP acceptor"
        );
        *t.filter.panics_on.lock().unwrap() = Some("boom.example".into());
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        send_boom(&client, t.addr).await;
        until("the listener is restarted", || m.listener_restarts() == 1).await;
        until("every listener runs again", || healthy(&m)).await;
        for i in 0..5 {
            let r = t
                .udp(&format!("after{i}.example"), RecordType::A, None)
                .await;
            assert_eq!(
                r.response_code(),
                ResponseCode::NoError,
                "threads={threads}"
            );
        }
        let mut text = String::new();
        m.render_prometheus(&mut text);
        assert!(
            text.contains("hallpass_dns_listener_restarts_total 1"),
            "{text}"
        );
        assert!(text.contains("hallpass_dns_listeners_alive 2"), "{text}");
        t.handle.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_listener_that_keeps_failing_stops_the_server_with_an_error() {
    let t = TestServer::start_with(|c, _| c.udp_sockets = 1).await;
    let m = t.handle.metrics().clone();
    until("every listener runs", || healthy(&m)).await;
    *t.filter.panics_on.lock().unwrap() = Some("boom.example".into());
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Five restarts are allowed within a minute (the test's clock does not move) ...
    for restarts in 1..=5 {
        send_boom(&client, t.addr).await;
        until("the listener is restarted", || {
            m.listener_restarts() == restarts
        })
        .await;
        until("every listener runs again", || healthy(&m)).await;
    }
    // ... the sixth failure ends the server, with an error naming the listener.
    send_boom(&client, t.addr).await;
    let mut handle = t.handle;
    let stopped = tokio::time::timeout(Duration::from_secs(5), handle.stopped())
        .await
        .expect("the server stops when a listener cannot be restarted");
    match stopped {
        Err(DnsError::ListenerFailed { addr, cause }) => {
            assert_eq!(addr, t.addr);
            assert!(
                cause.contains("test filter panics on boom.example"),
                "{cause}"
            );
            assert!(cause.contains("after 5 restarts"), "{cause}");
        }
        other => panic!("expected ListenerFailed, got {other:?}"),
    }
    assert!(handle.is_finished());
    assert_eq!(m.listeners_alive(), 0);
    assert!(
        handle.shutdown().await.is_ok(),
        "the error was reported once"
    );
    // Failed closed: nothing answers any more.
    let q = build_query("after.example", RecordType::A, None);
    assert!(udp_raw(t.addr, &q).await.is_none());
}

/// Opens a TCP connection from `local` (a loopback address) and answers one query on it,
/// so the server has admitted it and it is idle afterwards.
async fn idle_connection(local: &str, server: SocketAddr, name: &str) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let mut s = sock.connect(server).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(2), ask(&mut s, name))
        .await
        .unwrap_or_else(|_| panic!("a TCP query from {local} is answered"))
        .unwrap_or_else(|e| panic!("a TCP query from {local} is answered: {e}"));
    assert_eq!(answer.response_code(), ResponseCode::NoError);
    s
}

async fn ask(s: &mut TcpStream, name: &str) -> std::io::Result<Message> {
    let q = build_query(name, RecordType::A, None);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    s.write_all(&framed).await?;
    let len = s.read_u16().await?;
    let mut buf = vec![0u8; usize::from(len)];
    s.read_exact(&mut buf).await?;
    Ok(Message::from_vec(&buf).unwrap())
}

/// True when the server closed `s` (end of stream or reset) within a second.
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), s.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn idle_tcp_connections_from_one_host_do_not_lock_out_another() {
    let t = TestServer::start_with(|c, _| {
        c.max_tcp_connections = 8;
        c.max_tcp_connections_per_client = 16;
    })
    .await;
    let mut held = Vec::new();
    for i in 0..8 {
        held.push(idle_connection("127.0.0.1", t.addr, &format!("hog{i}.example")).await);
    }
    // The total is reached: a new host's query is still answered ...
    let mut other = idle_connection("127.0.0.2", t.addr, "other.example").await;
    // ... because the connection idle longest (the first) was closed to make room.
    assert!(
        closed_by_server(&mut held[0]).await,
        "the oldest idle connection was evicted"
    );
    assert_eq!(
        t.handle
            .metrics()
            .tcp_evicted
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let r = ask(&mut held[7], "still.example").await.unwrap();
    assert_eq!(r.response_code(), ResponseCode::NoError);
    let r = ask(&mut other, "again.example").await.unwrap();
    assert_eq!(r.response_code(), ResponseCode::NoError);
}

#[tokio::test]
async fn a_client_beyond_its_share_of_tcp_connections_is_refused() {
    let t = TestServer::start().await; // 16 per client by default
    let mut held = Vec::new();
    for i in 0..16 {
        held.push(idle_connection("127.0.0.1", t.addr, &format!("c{i}.example")).await);
    }
    let mut seventeenth = TcpStream::connect(t.addr).await.unwrap();
    let asked = tokio::time::timeout(Duration::from_secs(2), ask(&mut seventeenth, "x.example"))
        .await
        .expect("the 17th connection is closed, not left waiting");
    assert!(asked.is_err(), "the 17th connection got an answer");
    assert_eq!(
        t.handle
            .metrics()
            .tcp_refused
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // The client's 16 still work, and another address is unaffected.
    let r = ask(&mut held[0], "ok.example").await.unwrap();
    assert_eq!(r.response_code(), ResponseCode::NoError);
    idle_connection("127.0.0.3", t.addr, "fresh.example").await;
}
