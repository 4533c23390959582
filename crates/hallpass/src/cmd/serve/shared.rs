//! What every service of `serve` is built from: one [`Shared`] state.

use std::sync::{Arc, Mutex};

use hallpass_clock::Clock;
use hallpass_engine::Engine;
use hallpass_store::{EventWriter, Store};
use tokio_util::sync::CancellationToken;

use super::health::Health;
use super::inputs::{Sources, Stamps};

/// The state every service shares. Cheap to clone (handles and `Arc`s).
#[derive(Clone)]
pub struct Shared {
    /// The live snapshot every enforcement point decides with.
    pub engine: Arc<Engine>,
    /// Where every enforcement point records what it did (never waits on the database).
    pub writer: EventWriter,
    pub store: Store,
    /// The one clock: the system's in service, a manual one in tests.
    pub clock: Clock,
    /// What `/metrics` renders besides the core gauges: each service registers its own.
    pub metrics: Arc<MetricsRegistry>,
    /// What `/healthz` reports: each service's fate, refused reloads, registered checks.
    pub health: Arc<Health>,
    /// The one stop signal: SIGTERM/Ctrl-C cancel it, and so does the first service to
    /// fail. Every service stops when it is cancelled.
    pub stop: CancellationToken,
    /// Where the policy and catalog come from, and their file times when first loaded
    /// (the file follower reloads when they change).
    pub sources: Sources,
    pub loaded_stamps: Stamps,
}

/// Something that appends Prometheus text to `/metrics`.
pub trait MetricsSource: Send + Sync {
    fn render(&self, out: &mut String);
}

impl MetricsSource for hallpass_dns::Metrics {
    fn render(&self, out: &mut String) {
        self.render_prometheus(out);
    }
}

/// The metrics sources services registered while they were built.
#[derive(Default)]
pub struct MetricsRegistry {
    sources: Mutex<Vec<Arc<dyn MetricsSource>>>,
}

impl MetricsRegistry {
    pub fn register(&self, source: Arc<dyn MetricsSource>) {
        lock(&self.sources).push(source);
    }

    pub fn render(&self, out: &mut String) {
        let sources = lock(&self.sources).clone();
        for source in sources {
            source.render(out);
        }
    }
}

/// A poisoned lock only means a panic elsewhere while pushing; the data is usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
