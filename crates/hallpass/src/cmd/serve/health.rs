//! What `/healthz` reports: every problem that means the school is not being filtered
//! and recorded as it should be. Fail closed: any problem turns the answer non-200.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hallpass_clock::Clock;

use super::shared::lock;

/// A check a service registers: `Some(problem)` while something is wrong.
pub trait HealthCheck: Send + Sync {
    fn problem(&self) -> Option<String>;
}

/// Health as the services report it.
pub struct Health {
    clock: Clock,
    /// Services that stopped or failed, with why.
    stopped: Mutex<BTreeMap<&'static str, String>>,
    /// The last reload, when it was refused: when and why.
    reload_refused: Mutex<Option<String>>,
    reload_refused_total: AtomicU64,
    checks: Mutex<Vec<Arc<dyn HealthCheck>>>,
}

impl Health {
    pub fn new(clock: Clock) -> Health {
        Health {
            clock,
            stopped: Mutex::default(),
            reload_refused: Mutex::default(),
            reload_refused_total: AtomicU64::new(0),
            checks: Mutex::default(),
        }
    }

    /// `service` is no longer running (it failed, or stopped on its own).
    pub fn service_stopped(&self, service: &'static str, why: &str) {
        lock(&self.stopped).insert(service, one_line(why));
    }

    /// A reload of the policy or catalog was refused; the previous ones keep serving.
    pub fn reload_refused(&self, why: &str) {
        self.reload_refused_total.fetch_add(1, Relaxed);
        *lock(&self.reload_refused) = Some(format!(
            "reload refused at {}: {}",
            self.clock
                .now()
                .round(jiff::Unit::Second)
                .unwrap_or(self.clock.now()),
            one_line(why)
        ));
    }

    /// A reload succeeded: the refusal before it no longer stands.
    pub fn reload_accepted(&self) {
        *lock(&self.reload_refused) = None;
    }

    pub fn reload_refused_total(&self) -> u64 {
        self.reload_refused_total.load(Relaxed)
    }

    pub fn add_check(&self, check: Arc<dyn HealthCheck>) {
        lock(&self.checks).push(check);
    }

    /// Every problem now; empty when healthy.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = lock(&self.stopped)
            .iter()
            .map(|(service, why)| format!("service {service} is not running: {why}"))
            .collect();
        problems.extend(lock(&self.reload_refused).clone());
        let checks = lock(&self.checks).clone();
        problems.extend(checks.iter().filter_map(|check| check.problem()));
        problems
    }
}

/// Reasons may be multi-line (a policy's diagnostics): one line per problem in `/healthz`.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Upstream resolvers are down when, over the last [`UpstreamWatch::WINDOW`], at least
/// [`UpstreamWatch::MIN_ATTEMPTS`] exchanges were attempted and every one failed.
pub struct UpstreamWatch {
    metrics: Arc<hallpass_dns::Metrics>,
    clock: Clock,
    /// (when, attempts, failures), oldest first: the window and the baseline before it.
    samples: Mutex<VecDeque<(Instant, u64, u64)>>,
}

impl UpstreamWatch {
    pub const WINDOW: Duration = Duration::from_secs(60);
    pub const MIN_ATTEMPTS: u64 = 3;
    /// How often the DNS service samples, so a scrape every minute still sees a window.
    pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

    pub fn new(metrics: Arc<hallpass_dns::Metrics>, clock: Clock) -> UpstreamWatch {
        UpstreamWatch {
            metrics,
            clock,
            samples: Mutex::default(),
        }
    }

    /// Records the counters now and returns the change over the window.
    pub fn sample(&self) -> (u64, u64) {
        let now = self.clock.instant();
        let attempts = self.metrics.upstream_queries.load(Relaxed);
        let failures = self.metrics.upstream_errors.load(Relaxed);
        let mut samples = lock(&self.samples);
        samples.push_back((now, attempts, failures));
        // The baseline is the newest sample at least a window old (with the DNS
        // service sampling every few seconds, the window's start).
        while samples
            .get(1)
            .is_some_and(|(at, ..)| now.duration_since(*at) >= Self::WINDOW)
        {
            samples.pop_front();
        }
        // The sample just pushed is there at least.
        let (_, first_attempts, first_failures) = samples
            .front()
            .copied()
            .unwrap_or((now, attempts, failures));
        (
            attempts.saturating_sub(first_attempts),
            failures.saturating_sub(first_failures),
        )
    }
}

impl HealthCheck for UpstreamWatch {
    fn problem(&self) -> Option<String> {
        let (attempts, failures) = self.sample();
        (attempts >= Self::MIN_ATTEMPTS && failures >= attempts).then(|| {
            format!(
                "upstream resolvers down: all {attempts} upstream exchanges failed in the last {} s",
                Self::WINDOW.as_secs()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_down_only_when_every_recent_attempt_failed() {
        let metrics = Arc::new(hallpass_dns::Metrics::default());
        let clock = Clock::manual();
        let watch = UpstreamWatch::new(Arc::clone(&metrics), clock.clone());
        assert_eq!(watch.problem(), None, "no traffic is no verdict");
        metrics.upstream_queries.fetch_add(5, Relaxed);
        metrics.upstream_errors.fetch_add(4, Relaxed);
        assert_eq!(watch.problem(), None, "one exchange in five succeeded");
        clock.advance(UpstreamWatch::WINDOW + Duration::from_secs(1));
        metrics.upstream_queries.fetch_add(3, Relaxed);
        metrics.upstream_errors.fetch_add(3, Relaxed);
        let problem = watch.problem().expect("all three recent exchanges failed");
        assert!(
            problem.contains("all 3 upstream exchanges failed"),
            "{problem}"
        );
        clock.advance(UpstreamWatch::WINDOW + Duration::from_secs(1));
        assert_eq!(watch.problem(), None, "the failures have aged out");
    }

    #[test]
    fn a_refused_reload_stands_until_a_reload_is_accepted() {
        let at: jiff::Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let health = Health::new(Clock::manual_at(at));
        health.reload_refused("policy p.toml has errors:\np.toml:3:1: bad\np.toml:4:1: worse");
        let problems = health.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("reload refused at 2026-11-23T10:00")
                && problems[0].ends_with("p.toml:3:1: bad; p.toml:4:1: worse"),
            "{problems:?}"
        );
        health.reload_accepted();
        assert!(health.problems().is_empty());
        assert_eq!(health.reload_refused_total(), 1);
    }
}
