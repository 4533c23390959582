//! The listener takes waiting queries in batches (recvmmsg) and sends the answers in
//! batches (sendmmsg): a burst from several clients, queued while the listener is busy,
//! is taken in batches larger than one and still gets every answer, each to its own
//! sender with its own ID; IPv6 listeners work the same way.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

use crate::kit::*;

const CLIENTS: usize = 4;
const NAMES: usize = 50;

#[tokio::test]
async fn a_burst_from_several_clients_is_batched_and_gets_every_answer_to_its_sender() {
    // One socket, one listener thread: held busy while the burst queues up behind it.
    let t = TestServer::start_with(|c, _| c.udp_sockets = 1).await;
    let addr_of = |i: usize| Ipv4Addr::new(192, 0, 2, i as u8 + 1);
    for i in 0..NAMES {
        t.up.set(
            &format!("n{i}.example.com"),
            Behave::A(vec![addr_of(i)], 300),
        );
        // Warm the cache, so that the burst is answered at once and batched on the way out.
        let m = t
            .udp(&format!("n{i}.example.com"), RecordType::A, None)
            .await;
        assert_eq!(a_addrs(&m), vec![addr_of(i)]);
    }

    // Hold the listener inside the filter, so every datagram of the burst waits in the
    // socket and the next receive call takes up to a full batch.
    t.filter.gate.close();
    let staller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stall = build_query("stall.example", RecordType::A, None);
    staller.send_to(&stall, t.addr).await.unwrap();
    for _ in 0..500 {
        if t.filter.gate.waiting.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        t.filter.gate.waiting.load(Ordering::SeqCst),
        "the listener is held"
    );
    let batches_before = t.handle.metrics().udp_batches.load(Ordering::Relaxed);

    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // id -> the address that name resolves to
        let mut sent = HashMap::new();
        for i in 0..NAMES {
            let mut q = build_query(&format!("n{i}.example.com"), RecordType::A, None);
            let id = (c * NAMES + i) as u16;
            q[..2].copy_from_slice(&id.to_be_bytes());
            s.send_to(&q, t.addr).await.unwrap();
            sent.insert(id, addr_of(i));
        }
        clients.push((s, sent));
    }
    t.filter.gate.open();
    for (s, mut sent) in clients {
        let mut buf = vec![0u8; 4096];
        while !sent.is_empty() {
            let (n, from) = tokio::time::timeout(Duration::from_secs(5), s.recv_from(&mut buf))
                .await
                .expect("every query in the burst is answered")
                .unwrap();
            assert_eq!(from, t.addr);
            let m = Message::from_vec(&buf[..n]).unwrap();
            let want = sent
                .remove(&m.id())
                .unwrap_or_else(|| panic!("answer {} was not asked by this client", m.id()));
            assert_eq!(m.response_code(), ResponseCode::NoError);
            assert_eq!(a_addrs(&m), vec![want]);
        }
    }
    let cached = t.records().iter().filter(|r| r.cache_hit).count();
    assert_eq!(cached, CLIENTS * NAMES);
    // 200 queued datagrams: full batches of 32, so far fewer receive calls than queries.
    let m = t.handle.metrics();
    assert_eq!(
        m.udp_batch_max.load(Ordering::Relaxed),
        32,
        "a full batch was taken"
    );
    let batches = m.udp_batches.load(Ordering::Relaxed) - batches_before;
    assert!(
        batches <= (CLIENTS * NAMES / 32 + 2) as u64,
        "{batches} receive calls for {} queued queries",
        CLIENTS * NAMES
    );
}

#[tokio::test]
async fn answers_over_ipv6_udp_and_tcp() {
    let t = TestServer::start_with(|c, _| c.listen = vec!["[::1]:0".parse().unwrap()]).await;
    assert!(t.addr.is_ipv6());
    t.up.set(
        "v6.example.com",
        Behave::A(vec![Ipv4Addr::new(192, 0, 2, 66)], 300),
    );
    let m = t.udp("v6.example.com", RecordType::A, None).await;
    assert_eq!(a_addrs(&m), vec![Ipv4Addr::new(192, 0, 2, 66)]);
    assert_eq!(t.last_record().client, IpAddr::V6(Ipv6Addr::LOCALHOST));
    let m = t.tcp("v6.example.com", RecordType::A, None).await;
    assert_eq!(a_addrs(&m), vec![Ipv4Addr::new(192, 0, 2, 66)]);
    assert!(t.last_record().cache_hit);
}
