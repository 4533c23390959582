//! Arbitrary bytes as a client query through the resolver's synchronous path
//! (`handle_packet`: parse, filter, cache, synthesised answers) and, when it needs
//! upstream, `resolve` (no upstreams configured: SERVFAIL / serve-stale path).
#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;

use hallpass_dns::{
    BlockMode, DnsConfig, EdeCode, FilterDecision, FilterVerdict, Handled, NullLog, QueryFilter, Resolver,
    Transport, safe_search,
};
use libfuzzer_sys::fuzz_target;

struct Filter;

impl QueryFilter for Filter {
    type Info = ();
    fn check(&self, _: IpAddr, qname: &str, qtype: u16) -> FilterDecision<()> {
        if safe_search::is_canary(qname) || qname.ends_with(".nx") {
            return FilterDecision::new(FilterVerdict::Block {
                mode: BlockMode::Nxdomain,
                ttl: 5,
                reason: "canary".into(),
                ede: EdeCode::Blocked,
            });
        }
        if qname.len() % 3 == 0 {
            return FilterDecision::new(FilterVerdict::Block {
                mode: if qtype % 2 == 0 {
                    BlockMode::Null
                } else {
                    BlockMode::Address { v4: [10, 0, 0, 1].into(), v6: std::net::Ipv6Addr::LOCALHOST }
                },
                ttl: 5,
                reason: "é clause 5.3 ü".into(),
                ede: EdeCode::Filtered,
            });
        }
        if let Some(t) = safe_search::target_for(qname, &safe_search::SafeSearchSettings::STRICT) {
            return FilterDecision::new(FilterVerdict::SafeSearch { target: t.into() });
        }
        if qname.len() % 7 == 0 {
            return FilterDecision::new(FilterVerdict::Refuse { reason: "no".into(), ede: EdeCode::Prohibited });
        }
        FilterDecision::allow()
    }
}

struct Rig {
    rt: tokio::runtime::Runtime,
    resolver: Resolver<Filter, NullLog>,
}

fn rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let config = DnsConfig {
            rate_limit: Some(hallpass_dns::RateLimit { per_second: 1e9, burst: 1e9 }),
            ..DnsConfig::default()
        };
        let resolver = rt.block_on(Resolver::new(config, Filter, NullLog)).unwrap();
        Rig { rt, resolver }
    })
}

fuzz_target!(|data: &[u8]| {
    let rig = rig();
    let mut out = Vec::new();
    let client: IpAddr = [192, 168, 0, 9].into();
    for transport in [Transport::Udp, Transport::Tcp] {
        match rig.resolver.handle_packet(data, client, transport, &mut out) {
            Handled::Answered => assert!(out.len() >= 12),
            Handled::Dropped => {}
            Handled::Upstream(p) => {
                rig.rt.block_on(rig.resolver.resolve(p, &mut out));
                assert!(out.len() >= 12);
            }
        }
        if transport == Transport::Udp && !out.is_empty() {
            assert!(out.len() <= 1232);
        }
    }
});
