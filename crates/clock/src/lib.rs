//! The one place Hallpass reads the clock.
//!
//! Logic never asks the operating system for the time: it is handed a [`Clock`], so a test
//! can say "it is Monday 10:00" or "an hour has passed" instead of sleeping. The workspace's
//! `clippy.toml` bans `Instant::now`, `SystemTime::now`, `jiff::Timestamp::now` and
//! `thread::sleep` everywhere else; this module is the one exception.
//!
//! A [`Clock`] is cheap to clone and clones share their setting, so a test keeps one and
//! moves the time of every service it started. The monotonic reading ([`Clock::instant`])
//! only ever moves forward; the wall reading ([`Clock::now`]) can be set anywhere, as a
//! test of a lesson timetable needs.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The system clock, or a manual one (see the crate docs).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None` for the system clock.
    manual: Option<Arc<Offsets>>,
}

#[derive(Debug, Default)]
struct Offsets {
    /// Added to the system's monotonic clock, in microseconds; never negative.
    monotonic_us: AtomicI64,
    /// Added to the system's wall clock, in microseconds; may be negative.
    wall_us: AtomicI64,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that runs with the system's but can be moved with [`Clock::advance`] and
    /// [`Clock::set`]; clones share the setting.
    pub fn manual() -> Clock {
        Clock {
            manual: Some(Arc::default()),
        }
    }

    /// A manual clock whose wall time is `at` now (and runs on from there).
    pub fn manual_at(at: jiff::Timestamp) -> Clock {
        let clock = Clock::manual();
        clock.set(at);
        clock
    }

    /// Whether this clock can be moved (a test's).
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Moves a manual clock forward (both readings). No effect on the system clock.
    pub fn advance(&self, by: Duration) {
        if let Some(offsets) = &self.manual {
            let us = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
            offsets.monotonic_us.fetch_add(us, Ordering::Relaxed);
            offsets.wall_us.fetch_add(us, Ordering::Relaxed);
        }
    }

    /// Sets a manual clock's wall time (the monotonic reading is untouched, so timeouts
    /// already running are not disturbed). No effect on the system clock.
    pub fn set(&self, at: jiff::Timestamp) {
        if let Some(offsets) = &self.manual {
            let offset = at.as_microsecond() - system_timestamp().as_microsecond();
            offsets.wall_us.store(offset, Ordering::Relaxed);
        }
    }

    /// Wall-clock now, as a timestamp: what decisions and records use.
    #[inline]
    pub fn now(&self) -> jiff::Timestamp {
        let now = system_timestamp();
        match &self.manual {
            None => now,
            Some(offsets) => {
                let us = now
                    .as_microsecond()
                    .saturating_add(offsets.wall_us.load(Ordering::Relaxed));
                jiff::Timestamp::from_microsecond(us).unwrap_or(now)
            }
        }
    }

    /// Wall-clock now, as the standard library's type.
    #[inline]
    pub fn wall(&self) -> SystemTime {
        let now = self.now();
        let micros = now.as_microsecond();
        if micros >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_micros(micros.unsigned_abs())
        } else {
            SystemTime::UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
        }
    }

    /// Monotonic now: for timeouts, intervals and ages.
    #[inline]
    #[allow(clippy::disallowed_methods)] // this module is the one place allowed to read it
    pub fn instant(&self) -> Instant {
        let now = Instant::now();
        match &self.manual {
            None => now,
            Some(offsets) => {
                let us = offsets.monotonic_us.load(Ordering::Relaxed).max(0);
                now + Duration::from_micros(us.unsigned_abs())
            }
        }
    }
}

#[inline]
#[allow(clippy::disallowed_methods)] // this module is the one place allowed to read it
fn system_timestamp() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// Blocks this OS thread for `duration` of real time. For threads that pace real IO (a
/// writer's sync interval); logic that waits for *time to pass* should take a [`Clock`]
/// and a channel or timer instead, so tests need not sleep.
#[allow(clippy::disallowed_methods)] // this module is the one place allowed to sleep
pub fn sleep_thread(duration: Duration) {
    std::thread::sleep(duration);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_and_its_clones_follow() {
        let clock = Clock::manual();
        let copy = clock.clone();
        let (before, before_instant) = (copy.now(), copy.instant());
        clock.advance(Duration::from_secs(3600));
        assert!(copy.now().as_second() - before.as_second() >= 3600);
        assert!(copy.instant() - before_instant >= Duration::from_secs(3600));
    }

    #[test]
    fn setting_the_wall_time_goes_back_as_well_as_forward() {
        let monday: jiff::Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let clock = Clock::manual_at(monday);
        let read = clock.now();
        assert!((read.as_second() - monday.as_second()).abs() <= 1, "{read}");
        let wall = jiff::Timestamp::try_from(clock.wall()).unwrap();
        assert!((wall.as_second() - monday.as_second()).abs() <= 1, "{wall}");
        let later: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        clock.set(later);
        assert!((clock.now().as_second() - later.as_second()).abs() <= 1);
    }

    #[test]
    fn the_system_clock_ignores_moves() {
        let clock = Clock::system();
        let before = clock.now();
        clock.advance(Duration::from_secs(86_400));
        assert!(clock.now().as_second() - before.as_second() < 60);
        assert!(!clock.is_manual());
    }
}
