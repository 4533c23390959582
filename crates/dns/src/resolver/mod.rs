//! The query pipeline, independent of sockets.
//!
//! The order of steps, built here and nowhere else:
//!
//! 1. **parse** (hand parser): drop what is not a query; FORMERR / NOTIMP / BADVERS for
//!    what is malformed or unsupported — before anything else so garbage costs little;
//! 2. **rate limit** (optional): before the filter so a flood costs no policy work;
//! 3. **class / type guard**: REFUSED for non-IN classes and zone transfers, which a
//!    filtering forwarder never passes on;
//! 4. **filter** ([`QueryFilter::check`]): block / refuse / safe search / allow. Before
//!    the cache, so a cached answer can never leak past a block, and so blocks (which
//!    depend on who asks and when) are never cached;
//! 5. **cache**: fresh hits answered by patching cached wire bytes;
//! 6. **upstream** (async, coalesced): failover, TCP retry; then **serve-stale**; then
//!    SERVFAIL;
//! 7. **record** ([`QueryLog::record`]) once per answered query, after the answer is
//!    built.
//!
//! Steps 1–5 are synchronous ([`Resolver::handle_packet`]); step 6 is
//! [`Resolver::resolve`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as HQuery, ResponseCode};
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::sync::oneshot;

use crate::cache::{Answer, Cache, Freshness, KeyBuf};
use crate::clock::Clock;
use crate::config::DnsConfig;
use crate::error::DnsError;
use crate::filter::{
    BlockMode, EdeCode, FilterVerdict, QueryFilter, QueryLog, QueryRecord, Transport, Verdict,
};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::upstream::Upstreams;
use crate::wire::{self, NameBuf, Query, Reject, TextBuf, flag, rcode, rtype};

mod answers;

/// The outcome of [`Resolver::handle_packet`].
#[must_use]
pub enum Handled<I> {
    /// The response is in the output buffer.
    Answered,
    /// No response should be sent (not a query, or not even a header).
    Dropped,
    /// Needs upstream: pass to [`Resolver::resolve`], which writes the response.
    Upstream(PendingQuery<I>),
}

/// A query waiting for upstream (owned, so it can move to another task).
pub struct PendingQuery<I> {
    packet: Box<[u8]>,
    client: IpAddr,
    transport: Transport,
    qname: Box<str>,
    action: PendingAction,
    info: Option<I>,
    at: SystemTime,
}

enum PendingAction {
    Forward,
    SafeSearch(Arc<str>),
}

impl<I> PendingQuery<I> {
    /// The client address the query came from.
    pub fn client(&self) -> IpAddr {
        self.client
    }
}

/// How an answer's TTLs are written.
#[derive(Clone, Copy)]
enum Serve {
    /// Subtract this age (seconds).
    Fresh(u32),
    /// Every TTL set to the stale TTL.
    Stale,
}

type Outcome = Result<Arc<Answer>, ()>;
type Waiters = HashMap<Box<[u8]>, Vec<oneshot::Sender<Outcome>>>;

/// Coalesces identical in-flight upstream queries.
#[derive(Default)]
struct Inflight {
    waiting: Mutex<Waiters>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Finishes a leader's entry: on drop without `complete`, waiters get a failure.
struct Leader<'a> {
    inflight: &'a Inflight,
    key: &'a [u8],
    done: bool,
}

impl Leader<'_> {
    fn complete(mut self, outcome: &Outcome) {
        self.done = true;
        let waiters = lock(&self.inflight.waiting).remove(self.key);
        for w in waiters.into_iter().flatten() {
            let _ = w.send(outcome.clone());
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.done {
            let waiters = lock(&self.inflight.waiting).remove(self.key);
            for w in waiters.into_iter().flatten() {
                let _ = w.send(Err(()));
            }
        }
    }
}

/// Counts queries waiting on upstream; dropping it releases the place.
pub struct InflightPermit {
    count: Arc<AtomicUsize>,
}

impl Drop for InflightPermit {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Per-query facts carried to the log record.
struct Meta<'a> {
    client: IpAddr,
    transport: Transport,
    at: SystemTime,
    qname: &'a str,
    qtype: u16,
}

/// The resolver: filter, cache, upstreams, metrics. Shared by every listener task.
pub struct Resolver<F: QueryFilter, L: QueryLog<F::Info>> {
    filter: F,
    log: L,
    cache: Cache,
    upstreams: Upstreams,
    metrics: Arc<Metrics>,
    limiter: Option<RateLimiter>,
    inflight: Inflight,
    inflight_count: Arc<AtomicUsize>,
    config: DnsConfig,
    clock: Clock,
}

impl<F: QueryFilter, L: QueryLog<F::Info>> Resolver<F, L> {
    /// Creates a resolver and binds its upstream sockets. Must run inside a Tokio runtime.
    pub async fn new(config: DnsConfig, filter: F, log: L) -> Result<Self, DnsError> {
        if let Some(limit) = &config.rate_limit {
            limit.validate()?;
        }
        let metrics = Arc::new(Metrics::default());
        let upstreams = Upstreams::new(
            &config.upstreams,
            config.upstream_timeout,
            config.udp_payload,
            config.case_randomisation,
            metrics.clone(),
            config.clock.clone(),
        );
        Ok(Resolver {
            filter,
            log,
            cache: Cache::new(&config.cache),
            upstreams,
            metrics,
            limiter: config.rate_limit.map(RateLimiter::new),
            inflight: Inflight::default(),
            inflight_count: Arc::new(AtomicUsize::new(0)),
            clock: config.clock.clone(),
            config,
        })
    }

    /// The resolver's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The filter.
    pub fn filter(&self) -> &F {
        &self.filter
    }

    /// Number of answers in the cache (fresh or stale).
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Reserves a place for a query that will wait on upstream; `None` when
    /// `max_inflight` queries are already waiting.
    pub fn try_begin_upstream(&self) -> Option<InflightPermit> {
        let n = self.inflight_count.fetch_add(1, Ordering::Relaxed);
        let permit = InflightPermit {
            count: self.inflight_count.clone(),
        };
        (n < self.config.max_inflight).then_some(permit)
    }

    /// Queries currently waiting on upstream.
    pub fn inflight(&self) -> usize {
        self.inflight_count.load(Ordering::Relaxed)
    }

    fn udp_limit(&self, q: &Query<'_>) -> usize {
        match q.edns {
            Some(e) => usize::from(e.udp_size.clamp(512, self.config.udp_payload.max(512))),
            None => 512,
        }
    }

    /// Truncates a UDP answer that exceeds what the client can take.
    #[inline]
    fn fit(&self, out: &mut Vec<u8>, q: &Query<'_>, transport: Transport) {
        if transport == Transport::Udp && out.len() > self.udp_limit(q) {
            wire::truncate_response(out, q, self.config.udp_payload);
            Metrics::bump(&self.metrics.truncated);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        m: &Meta<'_>,
        verdict: Verdict,
        rcode: u16,
        cache_hit: bool,
        stale: bool,
        upstream_latency: Option<Duration>,
        info: Option<F::Info>,
    ) {
        self.metrics.verdict(verdict);
        self.log.record(QueryRecord {
            at: m.at,
            client: m.client,
            transport: m.transport,
            qname: m.qname.into(),
            qtype: m.qtype,
            verdict,
            rcode,
            cache_hit,
            stale,
            upstream_latency,
            info,
        });
    }

    /// Handles one query packet synchronously: everything except waiting on upstream.
    /// Writes the response into `out` (cleared first) when it returns
    /// [`Handled::Answered`]. Never panics on any input.
    pub fn handle_packet(
        &self,
        packet: &[u8],
        client: IpAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Handled<F::Info> {
        Metrics::bump(match transport {
            Transport::Udp => &self.metrics.queries_udp,
            Transport::Tcp => &self.metrics.queries_tcp,
        });
        let at = self.clock.wall();
        let q = match wire::parse_query(packet) {
            Ok(q) => q,
            Err(Reject::Drop) => {
                Metrics::bump(&self.metrics.dropped);
                return Handled::Dropped;
            }
            Err(Reject::Answer { id, flags, rcode }) => {
                wire::write_error(out, id, flags, rcode);
                let m = Meta {
                    client,
                    transport,
                    at,
                    qname: "",
                    qtype: 0,
                };
                self.record(&m, Verdict::Malformed, rcode, false, false, None, None);
                return Handled::Answered;
            }
        };
        let mut text = TextBuf::default();
        let qname = q.name.to_text(&mut text);
        let m = Meta {
            client,
            transport,
            at,
            qname,
            qtype: q.qtype,
        };

        if let Some(e) = q.edns
            && e.version != 0
        {
            // RFC 6891 §6.1.3: unsupported EDNS version.
            wire::begin_response(out, &q, rcode::BADVERS);
            wire::push_opt(
                out,
                self.config.udp_payload,
                rcode::BADVERS,
                e.dnssec_ok,
                None,
            );
            wire::set_counts(out, 1, 0, 0, 1);
            self.record(
                &m,
                Verdict::Malformed,
                rcode::BADVERS,
                false,
                false,
                None,
                None,
            );
            return Handled::Answered;
        }

        if let Some(limiter) = &self.limiter
            && !limiter.allow(client, self.clock.instant())
        {
            self.write_refused(out, &q, None);
            self.record(
                &m,
                Verdict::RateLimited,
                rcode::REFUSED,
                false,
                false,
                None,
                None,
            );
            return Handled::Answered;
        }

        if q.qclass != 1
            || matches!(
                q.qtype,
                rtype::AXFR | rtype::IXFR | rtype::MAILA | rtype::MAILB | rtype::OPT
            )
        {
            self.write_refused(out, &q, None);
            self.record(
                &m,
                Verdict::Refused,
                rcode::REFUSED,
                false,
                false,
                None,
                None,
            );
            return Handled::Answered;
        }

        let decision = self.filter.check(client, qname, q.qtype);
        match decision.verdict {
            FilterVerdict::Allow => {
                let key = KeyBuf::for_query(&q);
                if let Some(a) = self.cache.get(&key) {
                    match a.freshness(self.clock.instant(), &self.config.cache) {
                        Freshness::Fresh(age) => {
                            Metrics::bump(&self.metrics.cache_hits);
                            self.write_answer(out, &q, &a, Serve::Fresh(age), None);
                            self.fit(out, &q, transport);
                            self.record(
                                &m,
                                Verdict::Allowed,
                                a.rcode,
                                true,
                                false,
                                None,
                                decision.info,
                            );
                            return Handled::Answered;
                        }
                        Freshness::Stale => {}
                        Freshness::Gone => self.cache.remove(&key),
                    }
                }
                Metrics::bump(&self.metrics.cache_misses);
                Handled::Upstream(PendingQuery {
                    packet: packet.into(),
                    client,
                    transport,
                    qname: qname.into(),
                    action: PendingAction::Forward,
                    info: decision.info,
                    at,
                })
            }
            FilterVerdict::Block {
                mode,
                ttl,
                reason,
                ede,
            } => {
                let rc = self.write_block(out, &q, mode, ttl, &reason, ede);
                self.fit(out, &q, transport);
                self.record(&m, Verdict::Blocked, rc, false, false, None, decision.info);
                Handled::Answered
            }
            FilterVerdict::Refuse { reason, ede } => {
                self.write_refused(out, &q, Some((ede.code(), &reason)));
                self.fit(out, &q, transport);
                self.record(
                    &m,
                    Verdict::Refused,
                    rcode::REFUSED,
                    false,
                    false,
                    None,
                    decision.info,
                );
                Handled::Answered
            }
            FilterVerdict::SafeSearch { target } => Handled::Upstream(PendingQuery {
                packet: packet.into(),
                client,
                transport,
                qname: qname.into(),
                action: PendingAction::SafeSearch(target),
                info: decision.info,
                at,
            }),
        }
    }

    /// Answers a query that [`Resolver::handle_packet`] could not answer alone: asks
    /// upstream (or joins an identical in-flight query), falls back to a stale answer,
    /// then SERVFAIL. Always writes a response into `out`.
    pub async fn resolve(&self, p: PendingQuery<F::Info>, out: &mut Vec<u8>) {
        let Ok(q) = wire::parse_query(&p.packet) else {
            // Unreachable: the packet parsed in handle_packet. Answer nothing.
            out.clear();
            return;
        };
        let m = Meta {
            client: p.client,
            transport: p.transport,
            at: p.at,
            qname: &p.qname,
            qtype: q.qtype,
        };
        match &p.action {
            PendingAction::Forward => {
                let key = KeyBuf::for_query(&q);
                let (outcome, latency) = self.fetch(&key, &q.name, &q).await;
                match self.usable(outcome, &key) {
                    Some((a, serve)) => {
                        let stale = matches!(serve, Serve::Stale);
                        let ede = stale.then_some((EdeCode::StaleAnswer.code(), "Stale Answer"));
                        self.write_answer(out, &q, &a, serve, ede);
                        self.fit(out, &q, p.transport);
                        self.record(&m, Verdict::Allowed, a.rcode, stale, stale, latency, p.info);
                    }
                    None => {
                        self.write_servfail(out, &q);
                        self.record(
                            &m,
                            Verdict::Servfail,
                            rcode::SERVFAIL,
                            false,
                            false,
                            latency,
                            p.info,
                        );
                    }
                }
            }
            PendingAction::SafeSearch(target) => {
                let answer = match NameBuf::from_text(target) {
                    Some(tname) => {
                        let key = KeyBuf::new(
                            tname.wire(),
                            q.qtype,
                            q.qclass,
                            q.dnssec_ok(),
                            q.checking_disabled(),
                        );
                        let cached = self.cache.get(&key).and_then(|a| {
                            match a.freshness(self.clock.instant(), &self.config.cache) {
                                Freshness::Fresh(age) => Some((a, Serve::Fresh(age))),
                                _ => None,
                            }
                        });
                        match cached {
                            Some(hit) => (Some(hit), None, true),
                            None => {
                                let (outcome, latency) = self.fetch(&key, &tname, &q).await;
                                let stale = outcome.is_err();
                                (self.usable(outcome, &key), latency, stale)
                            }
                        }
                    }
                    None => (None, None, false),
                };
                match answer {
                    (Some((a, serve)), latency, hit)
                        if self.write_safe_search(out, &q, target, &a, serve) =>
                    {
                        let stale = matches!(serve, Serve::Stale);
                        self.fit(out, &q, p.transport);
                        self.record(
                            &m,
                            Verdict::SafeSearch,
                            a.rcode,
                            hit,
                            stale,
                            latency,
                            p.info,
                        );
                    }
                    (_, latency, _) => {
                        self.write_servfail(out, &q);
                        self.record(
                            &m,
                            Verdict::Servfail,
                            rcode::SERVFAIL,
                            false,
                            false,
                            latency,
                            p.info,
                        );
                    }
                }
            }
        }
    }

    /// Answers SERVFAIL at once (used when too many queries already wait on upstream).
    pub fn overloaded(&self, p: PendingQuery<F::Info>, out: &mut Vec<u8>) {
        out.clear();
        let Ok(q) = wire::parse_query(&p.packet) else {
            return;
        };
        self.write_servfail(out, &q);
        let m = Meta {
            client: p.client,
            transport: p.transport,
            at: p.at,
            qname: &p.qname,
            qtype: q.qtype,
        };
        self.record(
            &m,
            Verdict::Servfail,
            rcode::SERVFAIL,
            false,
            false,
            None,
            p.info,
        );
    }

    /// The fetched answer, or a stale one from the cache when the fetch failed.
    fn usable(&self, outcome: Outcome, key: &KeyBuf) -> Option<(Arc<Answer>, Serve)> {
        match outcome {
            Ok(a) => {
                let age = self
                    .clock
                    .instant()
                    .saturating_duration_since(a.stored)
                    .as_secs();
                Some((a, Serve::Fresh(age.min(u64::from(u32::MAX)) as u32)))
            }
            Err(()) => {
                let a = self.cache.get(key)?;
                match a.freshness(self.clock.instant(), &self.config.cache) {
                    // Another query refreshed it meanwhile.
                    Freshness::Fresh(age) => Some((a, Serve::Fresh(age))),
                    Freshness::Stale if !self.config.cache.max_stale.is_zero() => {
                        Metrics::bump(&self.metrics.stale_answers);
                        Some((a, Serve::Stale))
                    }
                    _ => None,
                }
            }
        }
    }

    /// Gets an answer for `name`/`q.qtype` from upstream, joining an identical query
    /// already in flight, and caches it.
    async fn fetch(
        &self,
        key: &KeyBuf,
        name: &NameBuf,
        q: &Query<'_>,
    ) -> (Outcome, Option<Duration>) {
        let waiter = {
            let mut waiting = lock(&self.inflight.waiting);
            match waiting.get_mut(key.bytes()) {
                Some(list) => {
                    let (tx, rx) = oneshot::channel();
                    list.push(tx);
                    Some(rx)
                }
                None => {
                    waiting.insert(key.bytes().into(), Vec::new());
                    None
                }
            }
        };
        if let Some(rx) = waiter {
            Metrics::bump(&self.metrics.coalesced);
            return (rx.await.unwrap_or(Err(())), None);
        }
        let leader = Leader {
            inflight: &self.inflight,
            key: key.bytes(),
            done: false,
        };
        let result = self
            .upstreams
            .exchange(
                name.wire(),
                q.qtype,
                q.qclass,
                q.dnssec_ok(),
                q.checking_disabled(),
            )
            .await;
        let (outcome, latency) = match result {
            Ok(x) => {
                let a = Arc::new(Answer::from_upstream(
                    x.response,
                    x.scanned,
                    &self.config.cache,
                    self.clock.instant(),
                ));
                if a.ttl > 0 {
                    self.cache.insert(key, a.clone());
                }
                (Ok(a), Some(x.latency))
            }
            Err(_) => (Err(()), None),
        };
        leader.complete(&outcome);
        (outcome, latency)
    }

    /// Fuzzing hook (not part of the API): treats `response` as an upstream reply to the
    /// query `query` and runs it through the scanner, the cache entry builder and every
    /// answer writer (fresh, stale, safe search). True when the reply was accepted.
    #[doc(hidden)]
    pub fn fuzz_upstream_reply(&self, query: &[u8], response: &[u8], out: &mut Vec<u8>) -> bool {
        let Ok(q) = wire::parse_query(query) else {
            return false;
        };
        let mut question = q.name.wire().to_vec();
        question.extend_from_slice(&q.qtype.to_be_bytes());
        question.extend_from_slice(&q.qclass.to_be_bytes());
        let id = match response {
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
            _ => 0,
        };
        let Ok(s) = wire::scan_response(response, id, &question) else {
            return false;
        };
        if s.opt.is_some() && !s.opt_last {
            return false;
        }
        let a = Answer::from_upstream(
            response.to_vec(),
            s,
            &self.config.cache,
            self.clock.instant(),
        );
        for serve in [Serve::Fresh(0), Serve::Fresh(u32::MAX), Serve::Stale] {
            self.write_answer(out, &q, &a, serve, Some((3, "Stale Answer")));
            self.fit(out, &q, Transport::Udp);
            let _ = self.write_safe_search(out, &q, crate::safe_search::GOOGLE_TARGET, &a, serve);
            self.fit(out, &q, Transport::Udp);
        }
        true
    }
}
