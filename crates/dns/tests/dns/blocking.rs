//! Blocked, refused, canaries, rate limit.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use hallpass_dns::{BlockMode, EdeCode, FilterVerdict, RateLimit, Verdict};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use crate::kit::*;

fn block(mode: BlockMode, ede: EdeCode) -> FilterVerdict {
    FilterVerdict::Block {
        mode,
        ttl: 15,
        reason: "Blocked: adult (WCS ICT policy 5.3)".into(),
        ede,
    }
}

#[tokio::test]
async fn blocked_nxdomain_with_soa_and_ede() {
    let t = TestServer::start().await;
    t.block("bad.example", block(BlockMode::Nxdomain, EdeCode::Blocked));
    let r = t
        .udp("bad.example", RecordType::A, Some((1232, false)))
        .await;
    assert_eq!(r.response_code(), ResponseCode::NXDomain);
    assert!(r.answers().is_empty());
    let soa = &r.name_servers()[0];
    assert_eq!(soa.record_type(), RecordType::SOA);
    assert_eq!(soa.ttl(), 15);
    match soa.data() {
        RData::SOA(s) => assert_eq!(s.minimum(), 15),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ede(&r),
        Some((15, "Blocked: adult (WCS ICT policy 5.3)".to_owned()))
    );
    let rec = t.last_record();
    assert_eq!(rec.verdict, Verdict::Blocked);
    assert_eq!(rec.rcode, 3);
    assert_eq!(rec.info.as_deref(), Some("rule:bad.example"));
    // Never asked upstream, never cached: unblocking takes effect at once.
    assert_eq!(t.up.count("bad.example"), 0);
    t.filter.verdicts.lock().unwrap().clear();
    let r = t
        .udp("bad.example", RecordType::A, Some((1232, false)))
        .await;
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert_eq!(t.up.count("bad.example"), 1);

    // Without EDNS: same answer, no OPT (so no EDE).
    t.block("bad.example", block(BlockMode::Nxdomain, EdeCode::Blocked));
    let r = t.udp("bad.example", RecordType::A, None).await;
    assert_eq!(r.response_code(), ResponseCode::NXDomain);
    assert!(r.extensions().is_none());
}

#[tokio::test]
async fn blocked_null_mode() {
    let t = TestServer::start().await;
    t.block("null.example", block(BlockMode::Null, EdeCode::Filtered));
    let r = t
        .udp("null.example", RecordType::A, Some((1232, false)))
        .await;
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert_eq!(a_addrs(&r), vec![Ipv4Addr::UNSPECIFIED]);
    assert_eq!(r.answers()[0].ttl(), 15);
    assert_eq!(ede(&r).unwrap().0, 17);
    let r = t
        .tcp("null.example", RecordType::AAAA, Some((1232, false)))
        .await;
    assert_eq!(aaaa_addrs(&r), vec![Ipv6Addr::UNSPECIFIED]);
    // Other types: NODATA with the SOA.
    let r = t
        .udp("null.example", RecordType::MX, Some((1232, false)))
        .await;
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert!(r.answers().is_empty());
    assert_eq!(r.name_servers()[0].record_type(), RecordType::SOA);
    assert_eq!(ede(&r).unwrap().0, 17);
}

#[tokio::test]
async fn blocked_block_page_address() {
    let t = TestServer::start().await;
    let mode = BlockMode::Address {
        v4: Ipv4Addr::new(10, 9, 8, 7),
        v6: "fd00::7".parse().unwrap(),
    };
    t.block("page.example", block(mode, EdeCode::Blocked));
    let r = t
        .udp("page.example", RecordType::A, Some((1232, true)))
        .await;
    assert_eq!(a_addrs(&r), vec![Ipv4Addr::new(10, 9, 8, 7)]);
    assert!(r.extensions().as_ref().unwrap().flags().dnssec_ok);
    let r = t.udp("page.example", RecordType::AAAA, None).await;
    assert_eq!(aaaa_addrs(&r), vec!["fd00::7".parse::<Ipv6Addr>().unwrap()]);
}

#[tokio::test]
async fn canaries_nxdomain() {
    let t = TestServer::start().await;
    for name in [
        "use-application-dns.net",
        "mask.icloud.com",
        "mask-h2.icloud.com",
    ] {
        let r = t.udp(name, RecordType::A, Some((1232, false))).await;
        assert_eq!(r.response_code(), ResponseCode::NXDomain, "{name}");
        assert_eq!(ede(&r).unwrap().1, "canary: ICT policy 4.2");
    }
    assert_eq!(t.up.seen().len(), 0);
}

#[tokio::test]
async fn refuse_verdict() {
    let t = TestServer::start().await;
    t.block(
        "unknown-user.example",
        FilterVerdict::Refuse {
            reason: "cannot identify you (policy 2.1)".into(),
            ede: EdeCode::Prohibited,
        },
    );
    let r = t
        .udp("unknown-user.example", RecordType::A, Some((1232, false)))
        .await;
    assert_eq!(r.response_code(), ResponseCode::Refused);
    assert_eq!(
        ede(&r),
        Some((18, "cannot identify you (policy 2.1)".to_owned()))
    );
    assert_eq!(t.last_record().verdict, Verdict::Refused);
}

#[tokio::test]
async fn rate_limit_when_configured() {
    let t = TestServer::start_with(|c, _| {
        c.rate_limit = Some(RateLimit {
            per_second: 1.0,
            burst: 3.0,
        })
    })
    .await;
    for _ in 0..3 {
        let r = t.udp("rl.example", RecordType::A, None).await;
        assert_eq!(r.response_code(), ResponseCode::NoError);
    }
    let r = t.udp("rl.example", RecordType::A, None).await;
    assert_eq!(r.response_code(), ResponseCode::Refused);
    assert_eq!(t.last_record().verdict, Verdict::RateLimited);
    t.clock.advance(Duration::from_secs(1));
    let r = t.udp("rl.example", RecordType::A, None).await;
    assert_eq!(r.response_code(), ResponseCode::NoError);
}

#[tokio::test]
async fn no_rate_limit_by_default() {
    let t = TestServer::start().await;
    for _ in 0..50 {
        let r = t.udp("many.example", RecordType::A, None).await;
        assert_eq!(r.response_code(), ResponseCode::NoError);
    }
}

/// A limit of 0 per second used to be accepted and then refused every query: the server
/// now refuses to start with it, naming the problem.
#[tokio::test]
async fn a_zero_rate_limit_is_refused_at_bind() {
    for (per_second, burst) in [(0.0, 0.0), (0.0, 5.0), (2.0, 0.0)] {
        let config = hallpass_dns::DnsConfig {
            rate_limit: Some(RateLimit { per_second, burst }),
            ..hallpass_dns::DnsConfig::default()
        };
        let bound =
            hallpass_dns::DnsServer::bind(config, hallpass_dns::AllowAll, hallpass_dns::NullLog)
                .await;
        let Err(e) = bound else {
            panic!("a rate limit of {per_second}/s burst {burst} was accepted");
        };
        assert!(
            matches!(e, hallpass_dns::DnsError::BadRateLimit { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("leave it unset for no limit"), "{e}");
    }
    assert!(RateLimit::new(0.0, 0.0).is_err());
}
