//! The answer cache: upstream responses kept as wire bytes, keyed by
//! (lowercase qname, qtype, qclass, DO, CD), with the offset of every TTL field so a hit
//! is served by copying the bytes and patching the ID, question case and TTLs.
//!
//! Positive answers live for the minimum TTL of the answer section (capped); negative
//! ones (NXDOMAIN / NODATA) for min(SOA TTL, SOA MINIMUM) (RFC 2308), capped; answers
//! without an SOA, with TTL 0, or with an error rcode are not cached. Expired entries are
//! kept for `max_stale` so they can be served while every upstream is down (RFC 8767).
//! Eviction (S3-FIFO, via quick_cache) bounds memory by an estimate of bytes held.

use std::sync::Arc;
use std::time::Instant;

use quick_cache::Weighter;

use crate::config::CacheConfig;
use crate::wire::{self, MAX_NAME_WIRE, Query, Scanned, rcode};

/// Cache key bytes: lowercase wire name, qtype, qclass, and a flags byte (DO, CD).
pub(crate) struct KeyBuf {
    len: usize,
    buf: [u8; MAX_NAME_WIRE + 5],
}

impl KeyBuf {
    pub(crate) fn new(name: &[u8], qtype: u16, qclass: u16, dnssec_ok: bool, cd: bool) -> Self {
        let mut k = KeyBuf {
            len: name.len() + 5,
            buf: [0; MAX_NAME_WIRE + 5],
        };
        k.buf[..name.len()].copy_from_slice(name);
        let n = name.len();
        k.buf[n..n + 2].copy_from_slice(&qtype.to_be_bytes());
        k.buf[n + 2..n + 4].copy_from_slice(&qclass.to_be_bytes());
        k.buf[n + 4] = u8::from(dnssec_ok) | (u8::from(cd) << 1);
        k
    }

    pub(crate) fn for_query(q: &Query<'_>) -> Self {
        Self::new(
            q.name.wire(),
            q.qtype,
            q.qclass,
            q.dnssec_ok(),
            q.checking_disabled(),
        )
    }

    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// An upstream answer ready to be served: wire bytes without the OPT record, ID zero,
/// question in lowercase.
#[derive(Debug)]
pub(crate) struct Answer {
    pub wire: Box<[u8]>,
    /// (offset of a TTL field, TTL as received).
    pub ttls: Box<[(u32, u32)]>,
    /// Response code (four bits: extended rcodes are never kept).
    pub rcode: u16,
    /// Upstream's AD bit.
    pub authentic: bool,
    /// Seconds this answer may be served as fresh; 0 = not cacheable.
    pub ttl: u32,
    /// Cap applied to each record's TTL when served.
    pub ttl_cap: u32,
    pub stored: Instant,
}

/// How fresh a looked-up answer is.
pub(crate) enum Freshness {
    /// Fresh: serve with TTLs reduced by this many seconds.
    Fresh(u32),
    /// Expired but within the serve-stale window.
    Stale,
    /// Too old to use.
    Gone,
}

impl Answer {
    /// Builds an answer from a scanned upstream response (`resp` is consumed). The OPT
    /// record, if any, must be the last record (see `wire::Scanned::opt_last`).
    pub(crate) fn from_upstream(
        mut resp: Vec<u8>,
        s: Scanned,
        cfg: &CacheConfig,
        now: Instant,
    ) -> Self {
        if let Some(opt) = &s.opt {
            resp.truncate(opt.start);
            let ar = u16::from_be_bytes([resp[10], resp[11]]).saturating_sub(1);
            resp[10..12].copy_from_slice(&ar.to_be_bytes());
        }
        resp[0] = 0;
        resp[1] = 0;
        let authentic = u16::from_be_bytes([resp[2], resp[3]]) & wire::flag::AD != 0;
        let (ttl, ttl_cap) = match s.rcode {
            rcode::NOERROR if s.answer_count > 0 => {
                let t = s.answer_min_ttl.unwrap_or(0);
                let t = if t == 0 {
                    0
                } else {
                    t.max(cfg.min_ttl).min(cfg.max_ttl)
                };
                (t, cfg.max_ttl)
            }
            rcode::NOERROR | rcode::NXDOMAIN => {
                let t = s.negative_ttl.unwrap_or(0).min(cfg.max_negative_ttl);
                (t, t)
            }
            _ => (0, cfg.max_ttl),
        };
        Answer {
            wire: resp.into_boxed_slice(),
            ttls: s.ttls.into_boxed_slice(),
            rcode: s.rcode & wire::flag::RCODE_MASK,
            authentic,
            ttl,
            ttl_cap,
            stored: now,
        }
    }

    pub(crate) fn freshness(&self, now: Instant, cfg: &CacheConfig) -> Freshness {
        let age = now.saturating_duration_since(self.stored);
        let secs = age.as_secs();
        if secs < u64::from(self.ttl) || (self.ttl == 0 && age.is_zero()) {
            Freshness::Fresh(secs as u32) // < ttl, fits
        } else if age < std::time::Duration::from_secs(u64::from(self.ttl)) + cfg.max_stale {
            Freshness::Stale
        } else {
            Freshness::Gone
        }
    }
}

#[derive(Clone)]
struct ByteWeight;

impl Weighter<Box<[u8]>, Arc<Answer>> for ByteWeight {
    fn weight(&self, key: &Box<[u8]>, val: &Arc<Answer>) -> u64 {
        // Key, wire, TTL table, plus the Arc/Answer header and the cache's slot.
        (key.len() + val.wire.len() + val.ttls.len() * 8 + 160) as u64
    }
}

pub(crate) struct Cache {
    inner: quick_cache::sync::Cache<Box<[u8]>, Arc<Answer>, ByteWeight>,
}

impl Cache {
    pub(crate) fn new(cfg: &CacheConfig) -> Self {
        let bytes = cfg.capacity_bytes.max(64 << 10);
        let estimated_items = (bytes / 300).max(16) as usize;
        Cache {
            inner: quick_cache::sync::Cache::with_weighter(estimated_items, bytes, ByteWeight),
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: &KeyBuf) -> Option<Arc<Answer>> {
        self.inner.get(key.bytes())
    }

    pub(crate) fn insert(&self, key: &KeyBuf, answer: Arc<Answer>) {
        self.inner.insert(key.bytes().into(), answer);
    }

    pub(crate) fn remove(&self, key: &KeyBuf) {
        self.inner.remove(key.bytes());
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.len()
    }
}
