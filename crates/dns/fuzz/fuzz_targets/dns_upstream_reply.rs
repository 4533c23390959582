//! Arbitrary bytes as an upstream reply to a fixed query: the response scanner, the
//! cache-entry builder (OPT stripping, TTL offsets, negative TTLs) and every answer
//! writer (fresh, stale, safe-search synthesis through hickory).
#![no_main]

use std::sync::OnceLock;

use hallpass_dns::{AllowAll, DnsConfig, NullLog, Resolver};
use libfuzzer_sys::fuzz_target;

struct Rig {
    _rt: tokio::runtime::Runtime,
    resolver: Resolver<AllowAll, NullLog>,
    queries: Vec<Vec<u8>>,
}

fn query(name: &[u8], qtype: u16, edns: bool) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
    q.extend_from_slice(name);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    if edns {
        q.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0]);
    }
    q
}

fn rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let resolver = rt.block_on(Resolver::new(DnsConfig::default(), AllowAll, NullLog)).unwrap();
        // The hook below is synchronous; the runtime is kept only so nothing leaks.
        Rig {
            _rt: rt,
            resolver,
            queries: vec![
                query(b"\x01a\x00", 1, false),
                query(b"\x01a\x00", 1, true),
                query(b"\x00", 2, true),
                query(b"\x03www\x07example\x03com\x00", 28, false),
            ],
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let rig = rig();
    let (sel, reply) = match data.split_first() {
        Some((s, r)) => (*s as usize, r),
        None => return,
    };
    let q = &rig.queries[sel % rig.queries.len()];
    let mut out = Vec::new();
    let _ = rig.resolver.fuzz_upstream_reply(q, reply, &mut out);
});
