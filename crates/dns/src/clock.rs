//! Time for this crate is read only through [`Clock`], the workspace's one clock
//! (`hallpass_clock`), so cache expiry, serve-stale and rate limits are tested by moving
//! a manual clock forward instead of sleeping. (Tokio's own timers — upstream timeouts —
//! are not affected.) The crate uses [`Clock::instant`] for ages and intervals and
//! [`Clock::wall`] for the time stamped on query records.

pub use hallpass_clock::Clock;
