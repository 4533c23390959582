//! When an inspected connection has nothing to do. hyper closes an idle HTTP/1.1
//! connection itself (the header read timeout), but keeps an HTTP/2 one open for as long
//! as the client likes; a device that opens a tunnel per host and never closes it would
//! hold a task, two TLS sessions and an origin connection each. This counts requests in
//! flight and notes when the last one ended, so the session can close the connection
//! (GOAWAY) after `idle_timeout` with none.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Shared by a connection's requests and the session that serves it.
pub(crate) struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// When a request last began or ended, in milliseconds since `started`.
    last_ms: AtomicU64,
}

/// A request in flight; ends it when dropped (a handler that returns or is cancelled).
pub(crate) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    pub(crate) fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        Busy(Arc::clone(self))
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::AcqRel);
    }

    /// Resolves once no request has been in flight for `timeout`.
    pub(crate) async fn idle_for(&self, timeout: Duration) {
        loop {
            let last = self.started + Duration::from_millis(self.last_ms.load(Ordering::Acquire));
            let due = last + timeout;
            if self.in_flight.load(Ordering::Acquire) == 0 && Instant::now() >= due {
                return;
            }
            // Busy: look again a timeout later; idle but not long enough: at the time due.
            let wake = if Instant::now() >= due {
                Instant::now() + timeout
            } else {
                due
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_only_after_the_last_request_ends_and_the_timeout_passes() {
        let activity = Activity::new();
        let timeout = Duration::from_secs(30);
        let started = Instant::now();
        let busy = activity.begin();
        let watcher = {
            let activity = Arc::clone(&activity);
            tokio::spawn(async move { activity.idle_for(timeout).await })
        };
        // A request that takes 100 s (a long download) keeps the connection open.
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert!(!watcher.is_finished());
        drop(busy);
        watcher.await.unwrap();
        let took = Instant::now() - started;
        assert!(
            (Duration::from_secs(130)..Duration::from_secs(161)).contains(&took),
            "{took:?}"
        );
        // A fresh connection with no request is idle after the timeout.
        let fresh = Activity::new();
        let at = Instant::now();
        fresh.idle_for(timeout).await;
        assert_eq!(Instant::now() - at, timeout);
    }
}
