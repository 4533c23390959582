//! Keeping the listeners alive: a listener (a UDP worker thread or task, a TCP acceptor)
//! that panics or whose socket fails for good is reported to the server's supervisor
//! loop, which starts it again — a bounded number of times per minute — or, when it
//! cannot, stops the whole server with [`crate::DnsError::ListenerFailed`] so the
//! process fails closed instead of running on with a socket nobody reads.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// Restarts allowed per listener within [`RESTART_WINDOW`]; one more failure inside the
/// window and the server stops. A bug that panics on some query should not be able to
/// keep a listener flapping forever, nor kill it for good the first time.
pub(crate) const MAX_RESTARTS: usize = 5;
/// See [`MAX_RESTARTS`].
pub(crate) const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// Consecutive failed receives (not timeouts) after which a UDP socket counts as broken:
/// transient errors (a full buffer, an ICMP error) clear on the next receive.
pub(crate) const BROKEN_AFTER: u32 = 1000;

/// Why a listener stopped.
#[derive(Debug)]
pub(crate) struct Failure {
    /// Which listener (index into the supervisor's list).
    pub listener: usize,
    /// What happened, for the log and the error.
    pub cause: String,
    /// The socket itself failed: bind a new one rather than reuse it.
    pub socket_broken: bool,
}

impl Failure {
    pub(crate) fn panicked(listener: usize, payload: &(dyn Any + Send)) -> Failure {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Failure {
            listener,
            cause: format!("panicked: {message}"),
            socket_broken: false,
        }
    }

    pub(crate) fn socket(listener: usize, error: &std::io::Error) -> Failure {
        Failure {
            listener,
            cause: format!("socket failed: {error}"),
            socket_broken: true,
        }
    }
}

/// The recent restarts of one listener.
#[derive(Debug, Default)]
pub(crate) struct RestartBudget {
    recent: VecDeque<Instant>,
}

impl RestartBudget {
    /// Takes one restart at `now`; false when [`MAX_RESTARTS`] were already taken within
    /// [`RESTART_WINDOW`].
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= RESTART_WINDOW)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= MAX_RESTARTS {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

/// Counts a listener in `Metrics::listeners_alive` while it lives (also when it unwinds).
pub(crate) struct Alive(Arc<Metrics>);

impl Alive {
    pub(crate) fn new(metrics: &Arc<Metrics>) -> Alive {
        metrics.listeners_alive.fetch_add(1, Ordering::Relaxed);
        Alive(metrics.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.listeners_alive.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    #[test]
    fn restarts_are_bounded_per_window() {
        let clock = Clock::manual();
        let mut budget = RestartBudget::default();
        for _ in 0..MAX_RESTARTS {
            assert!(budget.take(clock.instant()));
        }
        assert!(!budget.take(clock.instant()));
        clock.advance(RESTART_WINDOW);
        assert!(budget.take(clock.instant()));
    }

    #[test]
    fn a_panic_message_is_kept() {
        let f = Failure::panicked(3, &"boom");
        assert_eq!((f.listener, f.cause.as_str()), (3, "panicked: boom"));
        let f = Failure::panicked(0, &String::from("owned"));
        assert_eq!(f.cause, "panicked: owned");
        assert!(!f.socket_broken);
    }
}
