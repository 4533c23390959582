//! Upstream trouble: truncation, failover, serve-stale, SERVFAIL; client truncation.

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hallpass_dns::Verdict;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::kit::*;

#[tokio::test]
async fn truncated_upstream_answer_retried_over_tcp() {
    let t = TestServer::start().await;
    t.up.set("tc.example", Behave::TcOnUdp(Ipv4Addr::new(192, 0, 2, 55)));
    let r = t
        .udp("tc.example", RecordType::A, Some((1232, false)))
        .await;
    assert_eq!(a_addrs(&r), vec![Ipv4Addr::new(192, 0, 2, 55)]);
    assert!(!r.truncated());
    let seen: Vec<_> =
        t.up.seen()
            .into_iter()
            .filter(|s| s.name == "tc.example")
            .collect();
    assert_eq!(seen.len(), 2);
    assert!(!seen[0].tcp && seen[1].tcp);
    assert_eq!(
        t.handle
            .metrics()
            .upstream_tcp_retries
            .load(Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn large_answer_truncated_for_udp_client_full_over_tcp() {
    let t = TestServer::start().await;
    t.up.set("big.example", Behave::Big(15)); // ~1.7 kB: the fake itself truncates over UDP? no: it sends it all
    // No EDNS: 512-byte limit.
    let r = t.udp("big.example", RecordType::TXT, None).await;
    assert!(r.truncated());
    assert!(r.answers().is_empty());
    assert_eq!(r.queries()[0].name().to_ascii(), "big.example.");
    // EDNS 4096 advertised, but we send at most 1232 over UDP.
    let r = t
        .udp("big.example", RecordType::TXT, Some((4096, false)))
        .await;
    assert!(r.truncated());
    assert!(r.extensions().is_some());
    // TCP: everything.
    let r = t.tcp("big.example", RecordType::TXT, None).await;
    assert!(!r.truncated());
    assert_eq!(r.answers().len(), 15);
    // A smaller one fits in 1232 with EDNS but not in 512 without.
    t.up.set("mid.example", Behave::Big(8));
    let r = t
        .udp("mid.example", RecordType::TXT, Some((1232, false)))
        .await;
    assert!(!r.truncated());
    assert_eq!(r.answers().len(), 8);
    let r = t.udp("mid.example", RecordType::TXT, None).await;
    assert!(r.truncated());
    assert!(t.handle.metrics().truncated.load(Ordering::Relaxed) >= 3);
}

#[tokio::test]
async fn failover_to_second_upstream() {
    let dead = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap(); // never answers
    let dead_addr = dead.local_addr().unwrap();
    let t = TestServer::start_with(|c, good| c.upstreams = vec![dead_addr, good]).await;
    t.up.set(
        "fo.example",
        Behave::A(vec![Ipv4Addr::new(192, 0, 2, 77)], 300),
    );
    let r = t.udp("fo.example", RecordType::A, None).await;
    assert_eq!(a_addrs(&r), vec![Ipv4Addr::new(192, 0, 2, 77)]);
    assert_eq!(
        t.handle.metrics().upstream_errors.load(Ordering::Relaxed),
        1
    );
    let rec = t.last_record();
    assert!(rec.upstream_latency.is_some());
    // After repeated failures the dead server is tried last (no timeout wait).
    for i in 0..3 {
        t.udp(&format!("fo{i}.example"), RecordType::A, None).await;
    }
    let errors = t.handle.metrics().upstream_errors.load(Ordering::Relaxed);
    // The dead server's timeout is 300 ms: an answer within 250 ms means it was skipped.
    tokio::time::timeout(
        Duration::from_millis(250),
        t.udp("fast.example", RecordType::A, None),
    )
    .await
    .expect("sick upstream skipped first");
    assert_eq!(
        t.handle.metrics().upstream_errors.load(Ordering::Relaxed),
        errors
    );
    drop(dead);
}

#[tokio::test]
async fn upstream_down_serve_stale_then_servfail() {
    let t = TestServer::start().await;
    t.up.set(
        "stale.example",
        Behave::A(vec![Ipv4Addr::new(192, 0, 2, 33)], 60),
    );
    let r = t
        .udp("stale.example", RecordType::A, Some((1232, false)))
        .await;
    assert_eq!(r.answers()[0].ttl(), 60);

    t.up.silence(true);
    t.clock.advance(Duration::from_secs(3600));
    let r = t
        .udp("stale.example", RecordType::A, Some((1232, false)))
        .await;
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert_eq!(a_addrs(&r), vec![Ipv4Addr::new(192, 0, 2, 33)]);
    assert_eq!(r.answers()[0].ttl(), 30);
    assert_eq!(ede(&r), Some((3, "Stale Answer".to_owned())));
    let rec = t.last_record();
    assert!(rec.stale);
    assert_eq!(rec.verdict, Verdict::Allowed);
    assert_eq!(t.handle.metrics().stale_answers.load(Ordering::Relaxed), 1);

    // Nothing cached for this one: SERVFAIL.
    let r = t
        .udp("never.example", RecordType::A, Some((1232, false)))
        .await;
    assert_eq!(r.response_code(), ResponseCode::ServFail);
    assert_eq!(ede(&r).unwrap().0, 22);
    assert_eq!(t.last_record().verdict, Verdict::Servfail);

    // Past the stale window (1 day by default): SERVFAIL too.
    t.clock.advance(Duration::from_secs(2 * 86_400));
    let r = t.udp("stale.example", RecordType::A, None).await;
    assert_eq!(r.response_code(), ResponseCode::ServFail);

    // Upstream back: fresh answers again.
    t.up.silence(false);
    let r = t.udp("stale.example", RecordType::A, None).await;
    assert_eq!(r.answers()[0].ttl(), 60);
}

#[tokio::test]
async fn no_upstreams_is_servfail() {
    let t = TestServer::start_with(|c, _| c.upstreams.clear()).await;
    let r = t.udp("x.example", RecordType::A, None).await;
    assert_eq!(r.response_code(), ResponseCode::ServFail);
}

#[tokio::test]
async fn upstream_servfail_fails_over() {
    // The first upstream really answers SERVFAIL; the second answers.
    let bad = FakeUpstream::start().await;
    bad.set("sf.example", Behave::Servfail);
    let t = TestServer::start_with(|c, good| c.upstreams = vec![bad.addr, good]).await;
    t.up.set(
        "sf.example",
        Behave::A(vec![Ipv4Addr::new(192, 0, 2, 88)], 300),
    );
    let r = t.udp("sf.example", RecordType::A, None).await;
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert_eq!(
        a_addrs(&r),
        vec![Ipv4Addr::new(192, 0, 2, 88)],
        "the second's answer"
    );
    assert_eq!(bad.count("sf.example"), 1, "the first was asked");
    assert_eq!(t.up.count("sf.example"), 1, "then the second");
    let m = t.handle.metrics();
    assert_eq!(
        m.upstream_errors.load(Ordering::Relaxed),
        1,
        "the SERVFAIL counted"
    );
    assert_eq!(m.upstream_queries.load(Ordering::Relaxed), 2);
    assert_eq!(t.last_record().verdict, Verdict::Allowed);
}

#[tokio::test]
async fn only_servfail_upstreams_give_the_client_servfail() {
    let t = TestServer::start().await;
    t.up.set("sf-only.example", Behave::Servfail);
    let r = t.udp("sf-only.example", RecordType::A, None).await;
    assert_eq!(r.response_code(), ResponseCode::ServFail);
    assert_eq!(t.up.count("sf-only.example"), 1);
    assert_eq!(t.last_record().verdict, Verdict::Servfail);
}

#[tokio::test]
async fn every_upstream_query_leaves_from_a_random_port() {
    let t = TestServer::start().await;
    for i in 0..64 {
        let r = t
            .udp(&format!("port{i}.example"), RecordType::A, None)
            .await;
        assert_eq!(r.response_code(), ResponseCode::NoError);
    }
    let ports: std::collections::HashSet<u16> =
        t.up.seen()
            .iter()
            .filter(|s| s.name.starts_with("port"))
            .map(|s| s.port)
            .collect();
    assert!(
        ports.len() >= 32,
        "64 upstream queries from only {} ports",
        ports.len()
    );
}

/// Letters of `s` that are upper case.
fn upper(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_uppercase).count()
}

#[tokio::test]
async fn upstream_sees_0x20_case_and_the_client_gets_its_own_case_back() {
    let t = TestServer::start().await;
    for i in 0..16 {
        let asked = format!("Www.CaseTest{i}.Example");
        let r = t.udp(&asked, RecordType::A, None).await;
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert_eq!(r.queries()[0].name().to_ascii(), format!("{asked}."));
        assert_eq!(r.answers()[0].name().to_ascii(), format!("{asked}."));
    }
    let seen: Vec<String> = t.up.seen().into_iter().map(|s| s.raw_name).collect();
    assert_eq!(seen.len(), 16);
    // 16 names of 22 letters: every one lowercase by chance has odds of 2^-352.
    let letters: usize = seen
        .iter()
        .map(|n| n.bytes().filter(u8::is_ascii_alphabetic).count())
        .sum();
    let up: usize = seen.iter().map(|n| upper(n)).sum();
    assert!(
        up > letters / 4 && up < letters * 3 / 4,
        "not random case: {seen:?}"
    );
    assert_eq!(
        t.handle
            .metrics()
            .upstream_case_fallbacks
            .load(Ordering::Relaxed),
        0
    );
}

#[tokio::test]
async fn without_0x20_upstream_sees_lowercase() {
    let t = TestServer::start_with(|c, _| c.case_randomisation = false).await;
    let r = t.udp("Www.NoCase.Example", RecordType::A, None).await;
    assert_eq!(r.queries()[0].name().to_ascii(), "Www.NoCase.Example.");
    assert_eq!(t.up.seen()[0].raw_name, "www.nocase.example");
}

#[tokio::test]
async fn an_upstream_that_changes_case_is_asked_again_in_lowercase() {
    let t = TestServer::start().await;
    t.up.state.lowercase_echo.store(true, Ordering::SeqCst);
    let r = t.udp("lower.echo.example", RecordType::A, None).await;
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert_eq!(a_addrs(&r), vec![Ipv4Addr::new(192, 0, 2, 1)]);
    let seen = t.up.seen();
    assert_eq!(seen.len(), 2, "asked in mixed case, then in lowercase");
    assert!(upper(&seen[0].raw_name) > 0, "{seen:?}");
    assert_eq!(seen[1].raw_name, "lower.echo.example");
    assert_eq!(
        t.handle
            .metrics()
            .upstream_case_fallbacks
            .load(Ordering::Relaxed),
        1
    );
}
