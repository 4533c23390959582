//! Garbage in: FORMERR, NOTIMP, BADVERS, drops, REFUSED classes; random bytes never
//! panic (proptest through the same synchronous path the fuzz target uses).

use std::net::IpAddr;
use std::sync::Arc;

use hallpass_dns::{DnsConfig, Handled, Resolver, Transport, Verdict};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RecordType;
use proptest::prelude::*;

use crate::kit::*;

#[tokio::test]
async fn formerr_notimp_badvers_and_drops() {
    let t = TestServer::start().await;
    let good = build_query("ok.example", RecordType::A, None);

    // qdcount = 2 → FORMERR, ID echoed.
    let mut two = good.clone();
    two[5] = 2;
    let r = udp_raw(t.addr, &two).await.expect("answer");
    assert_eq!(&r[..2], &two[..2]);
    assert_eq!(r[3] & 0x0f, 1, "FORMERR");
    assert_eq!(t.last_record().verdict, Verdict::Malformed);

    // Question cut short → FORMERR.
    let r = udp_raw(t.addr, &good[..good.len() - 3])
        .await
        .expect("answer");
    assert_eq!(r[3] & 0x0f, 1);

    // Opcode STATUS (2) → NOTIMP, opcode kept.
    let mut status = good.clone();
    status[2] = (status[2] & 0x87) | (2 << 3);
    let r = udp_raw(t.addr, &status).await.expect("answer");
    assert_eq!(r[3] & 0x0f, 4, "NOTIMP");
    assert_eq!((r[2] >> 3) & 0x0f, 2);

    // EDNS version 1 → BADVERS (extended rcode 16: 0 in the header, 1 in the OPT's
    // extended-rcode byte), with an OPT record of version 0 (RFC 6891 §6.1.3).
    let mut v1 = build_query("ok.example", RecordType::A, Some((1232, false)));
    let n = v1.len();
    v1[n - 5] = 1; // OPT TTL = ext-rcode, version, flags; then RDLENGTH
    let raw = udp_raw(t.addr, &v1).await.expect("answer");
    assert_eq!(raw[3] & 0x0f, 0, "low rcode bits of BADVERS");
    let r = Message::from_vec(&raw).unwrap();
    assert_eq!(u16::from(r.response_code()), 16, "BADVERS");
    let opt = r
        .extensions()
        .as_ref()
        .expect("an OPT record in a BADVERS answer");
    assert_eq!(opt.version(), 0);
    assert_eq!(r.queries()[0].name().to_ascii(), "ok.example.");
    assert_eq!(t.up.count("ok.example"), 0, "never forwarded");

    // Less than a header, and a response: dropped, no answer.
    assert!(udp_raw(t.addr, &[1, 2, 3, 4, 5]).await.is_none());
    let mut resp = good.clone();
    resp[2] |= 0x80;
    assert!(udp_raw(t.addr, &resp).await.is_none());

    // CHAOS class and AXFR → REFUSED, never forwarded.
    let mut chaos = good.clone();
    let n = chaos.len();
    chaos[n - 1] = 3;
    let r = udp_raw(t.addr, &chaos).await.expect("answer");
    assert_eq!(r[3] & 0x0f, 5);
    let r = t.tcp("zone.example", RecordType::AXFR, None).await;
    assert_eq!(r.response_code(), ResponseCode::Refused);
    assert_eq!(t.up.count("zone.example"), 0);

    // Garbage over TCP: the connection survives a FORMERR.
    let r = tcp_exchange(t.addr, &two).await.unwrap();
    assert_eq!(r[3] & 0x0f, 1);

    // Still serving.
    let r = udp_query(t.addr, &good).await.expect("answer");
    assert_eq!(r.response_code(), ResponseCode::NoError);
}

/// dig, a real client, sees BADVERS for EDNS version 1. Required under CI.
#[tokio::test]
async fn dig_edns_version_1_gets_badvers() {
    let Ok(out) = tokio::process::Command::new("dig").arg("-v").output().await else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "dig is required under CI (install dnsutils / bind9-dnsutils)"
        );
        eprintln!("skipping: dig is not installed");
        return;
    };
    assert!(out.status.success() || !out.stderr.is_empty());
    let t = TestServer::start().await;
    let out = tokio::process::Command::new("dig")
        .arg(format!("@{}", t.addr.ip()))
        .args(["-p", &t.addr.port().to_string()])
        .args([
            "+edns=1",
            "+noednsneg",
            "+tries=1",
            "+time=2",
            "ok.example",
            "A",
        ])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("status: BADVERS"), "{text}");
    assert!(text.contains("EDNS: version: 0"), "{text}");
    assert_eq!(t.last_record().verdict, Verdict::Malformed);
}

#[tokio::test]
async fn shutdown_stops_answering() {
    let t = TestServer::start().await;
    let q = build_query("bye.example", RecordType::A, None);
    assert!(udp_query(t.addr, &q).await.is_some());
    let addr = t.addr;
    t.handle.shutdown().await.unwrap();
    assert!(udp_raw(addr, &q).await.is_none());
    assert!(tcp_exchange(addr, &q).await.is_err());
}

#[tokio::test]
async fn udp_served_by_runtime_tasks_serves_and_stops() {
    // The default is a thread per UDP socket; every other test runs that way.
    let t = TestServer::start_with(|c, _| c.udp_threads = false).await;
    t.block(
        "bad.example",
        hallpass_dns::FilterVerdict::Block {
            mode: hallpass_dns::BlockMode::Nxdomain,
            ttl: 5,
            reason: "x".into(),
            ede: hallpass_dns::EdeCode::Blocked,
        },
    );
    for _ in 0..2 {
        let r = t.udp("threads.example", RecordType::A, None).await;
        assert_eq!(r.response_code(), ResponseCode::NoError);
        let r = t.udp("bad.example", RecordType::A, None).await;
        assert_eq!(r.response_code(), ResponseCode::NXDomain);
    }
    assert_eq!(t.up.count("threads.example"), 1);
    let addr = t.addr;
    let q = build_query("bye.example", RecordType::A, None);
    t.handle.shutdown().await.unwrap();
    assert!(udp_raw(addr, &q).await.is_none());
}

fn seeds() -> Vec<Vec<u8>> {
    vec![
        build_query("www.example.com", RecordType::A, None),
        build_query("www.example.com", RecordType::AAAA, Some((1232, true))),
        build_query("bad.example", RecordType::A, Some((512, false))),
        build_query("www.google.com", RecordType::A, Some((4096, false))),
        build_query("use-application-dns.net", RecordType::MX, None),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Random bytes, and random mutations of valid queries, through handle_packet and
    /// resolve: never a panic; every answer parses as DNS (hickory-proto) and is a
    /// response to the query: its ID, QR set, its opcode, at most the one question.
    #[test]
    fn random_packets_never_panic(
        raw in proptest::collection::vec(any::<u8>(), 0..600),
        seed in 0usize..5,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
    ) {
        let rig = rig();
        let mut mutated = seeds()[seed].clone();
        for (at, b) in flips {
            let n = mutated.len();
            mutated[at % n] = b;
        }
        let n = mutated.len();
        mutated.truncate(n - cut % 8);
        for packet in [raw, mutated] {
            let mut out = Vec::new();
            let client: IpAddr = [10, 1, 2, 3].into();
            match rig.resolver.handle_packet(&packet, client, Transport::Udp, &mut out) {
                Handled::Answered => {
                    prop_assert!(out.len() <= 1232);
                    check_answer(&packet, &out)?;
                }
                Handled::Dropped => {}
                Handled::Upstream(p) => {
                    rig.rt.block_on(rig.resolver.resolve(p, &mut out));
                    check_answer(&packet, &out)?;
                }
            }
        }
    }
}

/// `answer` parses as DNS and answers `query`.
fn check_answer(query: &[u8], answer: &[u8]) -> Result<(), TestCaseError> {
    let m = Message::from_vec(answer)
        .map_err(|e| TestCaseError::fail(format!("answer does not parse: {e}: {answer:?}")))?;
    prop_assert_eq!(m.id(), u16::from_be_bytes([query[0], query[1]]));
    prop_assert_eq!(m.message_type(), MessageType::Response);
    prop_assert_eq!(u8::from(m.op_code()), (query[2] >> 3) & 0x0f);
    prop_assert!(m.queries().len() <= 1);
    if let Some(q) = m.queries().first() {
        // The question is echoed (case and all) when the query's was parsed.
        let asked = Message::from_vec(query).ok();
        if let Some(asked) = asked.as_ref().and_then(|a| a.queries().first()) {
            prop_assert_eq!(q.name().to_ascii(), asked.name().to_ascii());
            prop_assert_eq!(q.query_type(), asked.query_type());
        }
    }
    Ok(())
}

struct Rig {
    rt: tokio::runtime::Runtime,
    resolver: Arc<Resolver<Arc<MapFilter>, Arc<VecLog>>>,
    _up: FakeUpstream,
}

fn rig() -> &'static Rig {
    static RIG: std::sync::OnceLock<Rig> = std::sync::OnceLock::new();
    RIG.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (resolver, up) = rt.block_on(async {
            let up = FakeUpstream::start().await;
            let filter = Arc::new(MapFilter {
                safe_search: true,
                ..Default::default()
            });
            filter.verdicts.lock().unwrap().insert(
                "bad.example".into(),
                hallpass_dns::FilterVerdict::Block {
                    mode: hallpass_dns::BlockMode::Nxdomain,
                    ttl: 5,
                    reason: "x".into(),
                    ede: hallpass_dns::EdeCode::Blocked,
                },
            );
            let config = DnsConfig {
                upstreams: vec![up.addr],
                upstream_timeout: std::time::Duration::from_millis(200),
                ..DnsConfig::default()
            };
            let r = Resolver::new(config, filter, Arc::new(VecLog::default()))
                .await
                .unwrap();
            (Arc::new(r), up)
        });
        Rig {
            rt,
            resolver,
            _up: up,
        }
    })
}
