//! Allowed names: upstream, cache, negative caching, DO bit, safe search, coalescing.

use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

use hallpass_dns::Verdict;
use hickory_client::client::{Client, ClientHandle};
use hickory_client::proto::runtime::TokioRuntimeProvider;
use hickory_client::proto::tcp::TcpClientStream;
use hickory_client::proto::udp::UdpClientStream;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use crate::kit::*;

#[tokio::test]
async fn allowed_from_upstream_then_cache_with_hickory_client() {
    let t = TestServer::start().await;
    t.up.set(
        "www.example.com",
        Behave::A(vec![Ipv4Addr::new(192, 0, 2, 10)], 300),
    );

    let conn = UdpClientStream::builder(t.addr, TokioRuntimeProvider::default()).build();
    let (mut client, bg) = Client::connect(conn).await.unwrap();
    tokio::spawn(bg);
    let name = Name::from_str("www.example.com.").unwrap();
    let r = client
        .query(name.clone(), DNSClass::IN, RecordType::A)
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert_eq!(a_addrs(&r), vec![Ipv4Addr::new(192, 0, 2, 10)]);
    assert_eq!(r.answers()[0].ttl(), 300);
    assert!(r.recursion_available());
    assert_eq!(t.up.count("www.example.com"), 1);
    let rec = t.last_record();
    assert_eq!(rec.verdict, Verdict::Allowed);
    assert!(!rec.cache_hit);
    assert!(rec.upstream_latency.is_some());
    assert_eq!(&*rec.qname, "www.example.com");
    assert_eq!(rec.info.as_deref(), Some("default"));

    // From the cache, TTL decreased by the time elapsed.
    t.clock.advance(Duration::from_secs(7));
    let r = client
        .query(name.clone(), DNSClass::IN, RecordType::A)
        .await
        .unwrap();
    assert_eq!(a_addrs(&r), vec![Ipv4Addr::new(192, 0, 2, 10)]);
    assert_eq!(r.answers()[0].ttl(), 293);
    assert_eq!(t.up.count("www.example.com"), 1);
    assert!(t.last_record().cache_hit);

    // Over TCP with hickory-client, same cached answer; the question's case is the client's.
    let (stream, sender) = TcpClientStream::new(t.addr, None, None, TokioRuntimeProvider::new());
    let (mut tcp, bg) = Client::new(stream, sender, None).await.unwrap();
    tokio::spawn(bg);
    let mixed = Name::from_str("WwW.ExAmPlE.cOm.").unwrap();
    let r = tcp
        .query(mixed.clone(), DNSClass::IN, RecordType::A)
        .await
        .unwrap();
    assert_eq!(a_addrs(&r), vec![Ipv4Addr::new(192, 0, 2, 10)]);
    assert_eq!(t.up.count("www.example.com"), 1);
    assert_eq!(t.last_record().transport, hallpass_dns::Transport::Tcp);
    // (hickory lowercases names it encodes: spell the question by hand.)
    let mut q = build_query("www.example.com", RecordType::A, None);
    q[13..16].copy_from_slice(b"WwW");
    let raw = udp_raw(t.addr, &q).await.unwrap();
    assert_eq!(
        &raw[12..29],
        &q[12..29],
        "question echoed in the client's case"
    );
    assert_eq!(
        a_addrs(&Message::from_vec(&raw).unwrap()),
        vec![Ipv4Addr::new(192, 0, 2, 10)]
    );
    assert_eq!(t.up.count("www.example.com"), 1);

    // Expired: asked again.
    t.clock.advance(Duration::from_secs(300));
    let r = client
        .query(name, DNSClass::IN, RecordType::A)
        .await
        .unwrap();
    assert_eq!(r.answers()[0].ttl(), 300);
    assert_eq!(t.up.count("www.example.com"), 2);

    let m = t.handle.metrics();
    assert_eq!(m.cache_hits.load(std::sync::atomic::Ordering::Relaxed), 3);
    let mut s = String::new();
    m.render_prometheus(&mut s);
    assert!(
        s.contains("hallpass_dns_responses_total{verdict=\"allowed\"} 5"),
        "{s}"
    );
    t.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn upstream_edns_advertises_1232() {
    let t = TestServer::start().await;
    t.udp("plain.example", RecordType::A, None).await;
    let seen = t.up.seen();
    assert_eq!(seen[0].udp_size, Some(1232));
    assert!(!seen[0].dnssec_ok);
}

#[tokio::test]
async fn negative_caching_uses_soa_minimum() {
    let t = TestServer::start().await;
    t.up.set("nx.example", Behave::Nx(3600, 60));
    let r = t
        .udp("nx.example", RecordType::A, Some((1232, false)))
        .await;
    assert_eq!(r.response_code(), ResponseCode::NXDomain);
    assert_eq!(r.name_servers().len(), 1);
    assert_eq!(t.up.count("nx.example"), 1);

    t.clock.advance(Duration::from_secs(20));
    let r = t
        .udp("nx.example", RecordType::A, Some((1232, false)))
        .await;
    assert_eq!(r.response_code(), ResponseCode::NXDomain);
    // min(SOA TTL 3600, MINIMUM 60) - 20 s
    assert_eq!(r.name_servers()[0].ttl(), 40);
    assert_eq!(t.up.count("nx.example"), 1);
    assert!(t.last_record().cache_hit);
    assert_eq!(t.last_record().rcode, 3);

    t.clock.advance(Duration::from_secs(41));
    t.udp("nx.example", RecordType::A, Some((1232, false)))
        .await;
    assert_eq!(t.up.count("nx.example"), 2);

    // NODATA (AAAA for a name with only A) is cached the same way.
    t.udp("www.example.net", RecordType::AAAA, None).await;
    t.udp("www.example.net", RecordType::AAAA, None).await;
    assert_eq!(t.up.count("www.example.net"), 1);
}

#[tokio::test]
async fn do_bit_passed_through_and_dnssec_records_untouched() {
    let t = TestServer::start().await;
    t.up.set(
        "signed.example",
        Behave::A(vec![Ipv4Addr::new(192, 0, 2, 7)], 300),
    );
    let r = t
        .udp("signed.example", RecordType::A, Some((1232, true)))
        .await;
    let seen = t.up.seen();
    assert!(seen.last().unwrap().dnssec_ok, "DO bit forwarded");
    assert!(
        r.extensions().as_ref().unwrap().flags().dnssec_ok,
        "DO bit echoed"
    );
    let sig = r
        .answers()
        .iter()
        .find_map(|rec| match rec.data() {
            RData::Unknown { code, rdata } if *code == RecordType::RRSIG => {
                Some(rdata.anything().to_vec())
            }
            _ => None,
        })
        .expect("RRSIG passed through");
    assert_eq!(sig, FAKE_RRSIG);

    // Without DO: a different cache entry, and no signature.
    let r = t
        .udp("signed.example", RecordType::A, Some((1232, false)))
        .await;
    assert!(!t.up.seen().last().unwrap().dnssec_ok);
    assert_eq!(t.up.count("signed.example"), 2);
    assert_eq!(r.answers().len(), 1);
    // Cached with DO: still the signature.
    let r = t
        .udp("signed.example", RecordType::A, Some((1232, true)))
        .await;
    assert_eq!(t.up.count("signed.example"), 2);
    assert_eq!(r.answers().len(), 2);
}

#[tokio::test]
async fn safe_search_cname_chain() {
    let t = TestServer::start().await;
    t.up.set(
        "forcesafesearch.google.com",
        Behave::A(vec![Ipv4Addr::new(216, 239, 38, 120)], 300),
    );
    for name in ["www.google.co.uk", "www.google.com", "google.de"] {
        let r = t.udp(name, RecordType::A, Some((1232, false))).await;
        assert_eq!(r.response_code(), ResponseCode::NoError, "{name}");
        let ans = r.answers();
        assert_eq!(ans.len(), 2, "{name}: {ans:?}");
        assert_eq!(ans[0].name().to_ascii().trim_end_matches('.'), name);
        match ans[0].data() {
            RData::CNAME(c) => assert_eq!(c.0.to_ascii(), "forcesafesearch.google.com."),
            other => panic!("expected CNAME, got {other:?}"),
        }
        assert_eq!(ans[1].name().to_ascii(), "forcesafesearch.google.com.");
        assert_eq!(a_addrs(&r), vec![Ipv4Addr::new(216, 239, 38, 120)]);
        let rec = t.last_record();
        assert_eq!(rec.verdict, Verdict::SafeSearch);
        assert_eq!(rec.info.as_deref(), Some("safe"));
    }
    // The target was fetched once and then served from the cache.
    assert_eq!(t.up.count("forcesafesearch.google.com"), 1);
    assert_eq!(t.up.count("www.google.co.uk"), 0);

    let r = t.udp("m.youtube.com", RecordType::A, None).await;
    match r.answers()[0].data() {
        RData::CNAME(c) => assert_eq!(c.0.to_ascii(), "restrict.youtube.com."),
        other => panic!("expected CNAME, got {other:?}"),
    }
    // Over TCP too.
    let r = t.tcp("www.bing.com", RecordType::A, None).await;
    match r.answers()[0].data() {
        RData::CNAME(c) => assert_eq!(c.0.to_ascii(), "strict.bing.com."),
        other => panic!("expected CNAME, got {other:?}"),
    }
}

#[tokio::test]
async fn identical_inflight_queries_are_coalesced() {
    let t = TestServer::start().await;
    t.up.set(
        "slow.example",
        Behave::Slow(Ipv4Addr::new(192, 0, 2, 99), Duration::from_millis(150)),
    );
    let q = build_query("slow.example", RecordType::A, None);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (addr, q) = (t.addr, q.clone());
        tasks.push(tokio::spawn(async move { udp_query(addr, &q).await }));
    }
    for task in tasks {
        let r = task.await.unwrap().expect("answer");
        assert_eq!(a_addrs(&r), vec![Ipv4Addr::new(192, 0, 2, 99)]);
    }
    assert_eq!(t.up.count("slow.example"), 1);
    assert_eq!(t.records().len(), 10);
}
