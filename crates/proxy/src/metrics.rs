//! The proxy's counters for `/metrics` (relaxed atomics: one add per request).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use hallpass_policy::Verdict;

/// Counts since start.
#[derive(Debug, Default)]
pub struct Metrics {
    allowed: AtomicU64,
    blocked: AtomicU64,
    warned: AtomicU64,
    /// Blocked on the download's type (a subset of `blocked` and `warned`).
    file_type_refused: AtomicU64,
    tunnels: AtomicU64,
    auth_challenges: AtomicU64,
    sni_mismatches: AtomicU64,
    bad_requests: AtomicU64,
    origin_errors: AtomicU64,
    pac_served: AtomicU64,
    open_connections: AtomicI64,
    refused_connections: AtomicU64,
    /// Tunnels whose TLS the proxy terminated (selective inspection).
    inspected: AtomicU64,
    /// Inspected tunnels that failed: the client refused the school's certificate, or the
    /// origin's could not be verified.
    inspection_failures: AtomicU64,
    /// Search requests whose safe search parameters or header the proxy set.
    safe_search_enforced: AtomicU64,
    /// Refused requests (blocks and warnings) by category name; `""` for none. A lock per
    /// refusal only: allowed requests, the bulk, never take it.
    refused_by_category: Mutex<BTreeMap<String, u64>>,
}

/// Keeps `proxy_open_connections` up while it lives.
pub struct OpenConnection<'a>(&'a Metrics);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn decided(&self, verdict: Verdict) {
        let counter = match verdict {
            Verdict::Allow => &self.allowed,
            Verdict::Block => &self.blocked,
            Verdict::Warn => &self.warned,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one refused request under each of its categories (or as uncategorised).
    pub fn refused_in(&self, categories: &[String]) {
        let mut counts = self
            .refused_by_category
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if categories.is_empty() {
            *counts.entry(String::new()).or_default() += 1;
        }
        for category in categories {
            *counts.entry(category.clone()).or_default() += 1;
        }
    }

    pub fn file_type_refused(&self) {
        self.file_type_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn tunnel(&self) {
        self.tunnels.fetch_add(1, Ordering::Relaxed);
    }

    pub fn auth_challenge(&self) {
        self.auth_challenges.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sni_mismatch(&self) {
        self.sni_mismatches.fetch_add(1, Ordering::Relaxed);
    }

    pub fn bad_request(&self) {
        self.bad_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn origin_error(&self) {
        self.origin_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn pac(&self) {
        self.pac_served.fetch_add(1, Ordering::Relaxed);
    }

    pub fn inspected(&self) {
        self.inspected.fetch_add(1, Ordering::Relaxed);
    }

    pub fn inspection_failed(&self) {
        self.inspection_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn safe_search_enforced(&self) {
        self.safe_search_enforced.fetch_add(1, Ordering::Relaxed);
    }

    pub fn refused_connection(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a client connection as open until the guard is dropped.
    pub fn open(&self) -> OpenConnection<'_> {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self)
    }

    pub fn open_connections(&self) -> i64 {
        self.open_connections.load(Ordering::Relaxed)
    }

    /// Prometheus text exposition.
    pub fn render_prometheus(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out.push_str(
            "# HELP hallpass_proxy_requests_total Proxy requests (HTTP and CONNECT) by verdict.\n",
        );
        out.push_str("# TYPE hallpass_proxy_requests_total counter\n");
        for (verdict, counter) in [
            ("allow", &self.allowed),
            ("block", &self.blocked),
            ("warn", &self.warned),
        ] {
            let _ = writeln!(
                out,
                "hallpass_proxy_requests_total{{verdict=\"{verdict}\"}} {}",
                get(counter)
            );
        }
        for (name, help, counter) in [
            (
                "hallpass_proxy_file_type_refused_total",
                "Downloads refused on their type (extension, Content-Type or first bytes).",
                &self.file_type_refused,
            ),
            (
                "hallpass_proxy_tunnels_total",
                "CONNECT tunnels opened.",
                &self.tunnels,
            ),
            (
                "hallpass_proxy_auth_challenges_total",
                "407 answers: sign-in asked for, or credentials refused.",
                &self.auth_challenges,
            ),
            (
                "hallpass_proxy_sni_mismatch_total",
                "Tunnels closed because the TLS server name differed from the CONNECT host.",
                &self.sni_mismatches,
            ),
            (
                "hallpass_proxy_bad_requests_total",
                "Requests refused as malformed (400).",
                &self.bad_requests,
            ),
            (
                "hallpass_proxy_origin_errors_total",
                "Origins that could not be reached, timed out or failed mid-response.",
                &self.origin_errors,
            ),
            (
                "hallpass_proxy_pac_total",
                "proxy.pac / wpad.dat files served.",
                &self.pac_served,
            ),
            (
                "hallpass_proxy_refused_connections_total",
                "Client connections closed at once because the connection limit was reached.",
                &self.refused_connections,
            ),
            (
                "hallpass_proxy_inspected_total",
                "CONNECT tunnels whose TLS the proxy terminated to inspect (selective inspection).",
                &self.inspected,
            ),
            (
                "hallpass_proxy_inspection_failures_total",
                "Inspected tunnels that failed: the client refused the school's certificate, \
                 or the origin's could not be verified.",
                &self.inspection_failures,
            ),
            (
                "hallpass_proxy_safe_search_enforced_total",
                "Search requests whose safe search parameter or header the proxy set.",
                &self.safe_search_enforced,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                get(counter)
            );
        }
        out.push_str(
            "# HELP hallpass_proxy_refused_total Proxy requests refused (blocked or warned) by \
             category; category=\"\" for none.\n# TYPE hallpass_proxy_refused_total counter\n",
        );
        let counts = self
            .refused_by_category
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (category, n) in counts {
            let category = category.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                out,
                "hallpass_proxy_refused_total{{category=\"{category}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP hallpass_proxy_open_connections Client connections open now.\n\
             # TYPE hallpass_proxy_open_connections gauge\nhallpass_proxy_open_connections {}",
            self.open_connections()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts() {
        let metrics = Metrics::default();
        metrics.decided(Verdict::Block);
        metrics.decided(Verdict::Block);
        metrics.decided(Verdict::Allow);
        metrics.refused_in(&["webmail".to_string(), "chat".to_string()]);
        metrics.refused_in(&[]);
        let guard = metrics.open();
        let mut out = String::new();
        metrics.render_prometheus(&mut out);
        assert!(out.contains("hallpass_proxy_requests_total{verdict=\"block\"} 2\n"));
        assert!(out.contains("hallpass_proxy_requests_total{verdict=\"allow\"} 1\n"));
        assert!(out.contains("hallpass_proxy_open_connections 1\n"));
        assert!(out.contains("hallpass_proxy_refused_total{category=\"webmail\"} 1\n"));
        assert!(out.contains("hallpass_proxy_refused_total{category=\"\"} 1\n"));
        drop(guard);
        assert_eq!(metrics.open_connections(), 0);
    }
}
