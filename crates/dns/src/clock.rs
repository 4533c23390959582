//! The only place this crate reads the clock. Everything else is handed a [`Clock`], so
//! cache expiry, serve-stale and rate limits can be tested by moving time forward instead
//! of sleeping. (Tokio's own timers — upstream timeouts — are not affected.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// A clock: the system clock, optionally shifted forward by a test offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Offset in milliseconds added to every reading; `None` for the plain system clock.
    offset_ms: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock { offset_ms: None }
    }

    /// A clock that can be moved forward with [`Clock::advance`] (clones share the offset).
    pub fn manual() -> Self {
        Clock {
            offset_ms: Some(Arc::new(AtomicU64::new(0))),
        }
    }

    /// Moves a manual clock forward. No effect on the system clock.
    pub fn advance(&self, by: Duration) {
        if let Some(o) = &self.offset_ms {
            o.fetch_add(by.as_millis() as u64, Ordering::Relaxed);
        }
    }

    fn offset(&self) -> Duration {
        match &self.offset_ms {
            Some(o) => Duration::from_millis(o.load(Ordering::Relaxed)),
            None => Duration::ZERO,
        }
    }

    /// Monotonic now.
    #[inline]
    #[allow(clippy::disallowed_methods)] // this module is the one place allowed to read it
    pub fn now(&self) -> Instant {
        Instant::now() + self.offset()
    }

    /// Wall-clock now (for log records).
    #[inline]
    #[allow(clippy::disallowed_methods)] // this module is the one place allowed to read it
    pub fn wall(&self) -> SystemTime {
        SystemTime::now() + self.offset()
    }
}
