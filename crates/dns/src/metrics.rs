//! Counters for the resolver: plain atomics, bumped on the hot path with relaxed
//! ordering, rendered in the Prometheus text format for the integrator's `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::filter::Verdict;

/// Upper bounds (seconds) of the upstream latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Resolver metrics. Every field is a monotonically increasing counter, except the
/// gauges `listeners_alive`, `listeners_expected` and `udp_batch_max`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub queries_udp: AtomicU64,
    pub queries_tcp: AtomicU64,
    pub allowed: AtomicU64,
    pub blocked: AtomicU64,
    pub safe_search: AtomicU64,
    pub refused: AtomicU64,
    pub rate_limited: AtomicU64,
    pub servfail: AtomicU64,
    pub malformed: AtomicU64,
    /// Packets dropped without an answer (no header, responses, overload).
    pub dropped: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    /// Expired answers served because every upstream failed (RFC 8767).
    pub stale_answers: AtomicU64,
    /// Queries sent upstream (each attempt, UDP or TCP).
    pub upstream_queries: AtomicU64,
    /// Upstream attempts that failed (timeout, network error, SERVFAIL/REFUSED, garbage).
    pub upstream_errors: AtomicU64,
    /// UDP answers that came back truncated and were retried over TCP.
    pub upstream_tcp_retries: AtomicU64,
    /// Upstream replies that echoed the question in other case (0x20), asked again in
    /// lowercase.
    pub upstream_case_fallbacks: AtomicU64,
    /// Identical in-flight queries that waited on another's upstream exchange.
    pub coalesced: AtomicU64,
    /// UDP answers to clients sent truncated (TC) because they exceeded the client's size.
    pub truncated: AtomicU64,
    /// Client TCP connections closed at once: the client held its share, or the total
    /// was reached with every connection busy.
    pub tcp_refused: AtomicU64,
    /// Idle client TCP connections closed to make room for a new one.
    pub tcp_evicted: AtomicU64,
    /// Listeners (UDP workers, TCP acceptors) started again after they failed.
    pub listener_restarts: AtomicU64,
    /// Gauge: listeners running now.
    pub listeners_alive: AtomicU64,
    /// Gauge: listeners the server runs when all is well (0 before it starts serving).
    pub listeners_expected: AtomicU64,
    /// UDP receive calls that returned datagrams (one batch each).
    pub udp_batches: AtomicU64,
    /// Gauge: the most datagrams one UDP receive call has returned.
    pub udp_batch_max: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

#[inline]
fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    #[inline]
    pub(crate) fn verdict(&self, v: Verdict) {
        inc(match v {
            Verdict::Allowed => &self.allowed,
            Verdict::Blocked => &self.blocked,
            Verdict::SafeSearch => &self.safe_search,
            Verdict::Refused => &self.refused,
            Verdict::RateLimited => &self.rate_limited,
            Verdict::Servfail => &self.servfail,
            Verdict::Malformed => &self.malformed,
        });
    }

    #[inline]
    pub(crate) fn bump(c: &AtomicU64) {
        inc(c)
    }

    /// Records one successful upstream exchange's latency.
    pub(crate) fn upstream_latency(&self, d: Duration) {
        let s = d.as_secs_f64();
        // Buckets are cumulative in the output; store per-bucket counts here.
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&b| s <= b) {
            inc(&self.latency_buckets[i]);
        }
        inc(&self.latency_count);
        self.latency_sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Counts one UDP receive call that returned `n` datagrams.
    #[inline]
    pub(crate) fn batch_received(metrics: &Metrics, n: usize) {
        inc(&metrics.udp_batches);
        let n = n as u64;
        // Read first: the maximum rarely moves, so the shared line is rarely written.
        if n > metrics.udp_batch_max.load(Ordering::Relaxed) {
            metrics.udp_batch_max.fetch_max(n, Ordering::Relaxed);
        }
    }

    /// Listeners (UDP socket workers and TCP acceptors) running now. Below
    /// [`Metrics::listeners_expected`] while a failed one restarts, and for good when
    /// one could not be restarted (then `DnsServer::run` returns an error): what
    /// `/healthz` should compare.
    pub fn listeners_alive(&self) -> u64 {
        self.listeners_alive.load(Ordering::Relaxed)
    }

    /// Listeners the running server has when all is well (0 before `run`).
    pub fn listeners_expected(&self) -> u64 {
        self.listeners_expected.load(Ordering::Relaxed)
    }

    /// Restarts of failed listeners since the server started.
    pub fn listener_restarts(&self) -> u64 {
        self.listener_restarts.load(Ordering::Relaxed)
    }

    /// Total queries received (UDP + TCP), including malformed ones.
    pub fn queries(&self) -> u64 {
        self.queries_udp.load(Ordering::Relaxed) + self.queries_tcp.load(Ordering::Relaxed)
    }

    /// Appends the metrics in the Prometheus text exposition format.
    pub fn render_prometheus(&self, out: &mut String) {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP hallpass_dns_queries_total DNS queries received."
        );
        let _ = writeln!(out, "# TYPE hallpass_dns_queries_total counter");
        let _ = writeln!(
            out,
            "hallpass_dns_queries_total{{transport=\"udp\"}} {}",
            g(&self.queries_udp)
        );
        let _ = writeln!(
            out,
            "hallpass_dns_queries_total{{transport=\"tcp\"}} {}",
            g(&self.queries_tcp)
        );
        let _ = writeln!(
            out,
            "# HELP hallpass_dns_responses_total DNS responses by verdict."
        );
        let _ = writeln!(out, "# TYPE hallpass_dns_responses_total counter");
        for (v, c) in [
            (Verdict::Allowed, &self.allowed),
            (Verdict::Blocked, &self.blocked),
            (Verdict::SafeSearch, &self.safe_search),
            (Verdict::Refused, &self.refused),
            (Verdict::RateLimited, &self.rate_limited),
            (Verdict::Servfail, &self.servfail),
            (Verdict::Malformed, &self.malformed),
        ] {
            let _ = writeln!(
                out,
                "hallpass_dns_responses_total{{verdict=\"{}\"}} {}",
                v.as_str(),
                g(c)
            );
        }
        for (name, help, c) in [
            (
                "dropped",
                "Packets dropped without an answer.",
                &self.dropped,
            ),
            (
                "cache_hits",
                "Answers served from the cache.",
                &self.cache_hits,
            ),
            (
                "cache_misses",
                "Allowed queries not answerable from the cache.",
                &self.cache_misses,
            ),
            (
                "stale_answers",
                "Expired answers served while upstreams failed (RFC 8767).",
                &self.stale_answers,
            ),
            (
                "upstream_queries",
                "Exchanges attempted with upstream servers.",
                &self.upstream_queries,
            ),
            (
                "upstream_errors",
                "Upstream exchanges that failed.",
                &self.upstream_errors,
            ),
            (
                "upstream_tcp_retries",
                "Truncated upstream UDP answers retried over TCP.",
                &self.upstream_tcp_retries,
            ),
            (
                "upstream_case_fallbacks",
                "Upstream replies that changed the question's case, asked again without 0x20.",
                &self.upstream_case_fallbacks,
            ),
            (
                "coalesced",
                "Queries that waited on an identical in-flight upstream query.",
                &self.coalesced,
            ),
            (
                "truncated",
                "UDP answers sent truncated to clients.",
                &self.truncated,
            ),
            (
                "tcp_refused",
                "Client TCP connections refused (per-client share or all busy).",
                &self.tcp_refused,
            ),
            (
                "tcp_evicted",
                "Idle client TCP connections closed to make room.",
                &self.tcp_evicted,
            ),
            (
                "listener_restarts",
                "DNS listeners started again after they failed.",
                &self.listener_restarts,
            ),
            (
                "udp_batches",
                "UDP receive calls that returned datagrams.",
                &self.udp_batches,
            ),
        ] {
            let _ = writeln!(out, "# HELP hallpass_dns_{name}_total {help}");
            let _ = writeln!(out, "# TYPE hallpass_dns_{name}_total counter");
            let _ = writeln!(out, "hallpass_dns_{name}_total {}", g(c));
        }
        for (name, help, c) in [
            (
                "listeners_alive",
                "DNS listeners (UDP workers, TCP acceptors) running now.",
                &self.listeners_alive,
            ),
            (
                "listeners_expected",
                "DNS listeners the server runs when all is well.",
                &self.listeners_expected,
            ),
            (
                "udp_batch_max",
                "Most datagrams taken by one UDP receive call.",
                &self.udp_batch_max,
            ),
        ] {
            let _ = writeln!(out, "# HELP hallpass_dns_{name} {help}");
            let _ = writeln!(out, "# TYPE hallpass_dns_{name} gauge");
            let _ = writeln!(out, "hallpass_dns_{name} {}", g(c));
        }
        let _ = writeln!(
            out,
            "# HELP hallpass_dns_upstream_latency_seconds Upstream exchange latency."
        );
        let _ = writeln!(
            out,
            "# TYPE hallpass_dns_upstream_latency_seconds histogram"
        );
        let mut cumulative = 0;
        for (b, c) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            cumulative += g(c);
            let _ = writeln!(
                out,
                "hallpass_dns_upstream_latency_seconds_bucket{{le=\"{b}\"}} {cumulative}"
            );
        }
        let count = g(&self.latency_count);
        let _ = writeln!(
            out,
            "hallpass_dns_upstream_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "hallpass_dns_upstream_latency_seconds_sum {}",
            g(&self.latency_sum_us) as f64 / 1e6
        );
        let _ = writeln!(out, "hallpass_dns_upstream_latency_seconds_count {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders() {
        let m = Metrics::default();
        m.verdict(Verdict::Blocked);
        m.upstream_latency(Duration::from_millis(3));
        let mut s = String::new();
        m.render_prometheus(&mut s);
        assert!(s.contains("hallpass_dns_responses_total{verdict=\"blocked\"} 1"));
        assert!(s.contains("hallpass_dns_upstream_latency_seconds_bucket{le=\"0.005\"} 1"));
        assert!(s.contains("hallpass_dns_upstream_latency_seconds_bucket{le=\"0.001\"} 0"));
        assert!(s.contains("hallpass_dns_upstream_latency_seconds_count 1"));
        assert!(
            s.contains("# TYPE hallpass_dns_listeners_alive gauge\nhallpass_dns_listeners_alive 0")
        );
        assert!(s.contains("hallpass_dns_listener_restarts_total 0"));
    }
}
