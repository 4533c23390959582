//! `hallpass serve`'s tests (part of the crate's one test binary): the real process
//! (start-up failures, SIGTERM) and the real wiring in-process through
//! `hallpass::testkit` (the service table, health, the injected clock).

// Helpers outside #[test] functions unwrap too: a test fails loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit_head;
mod captive_portal;
mod declarations;
mod exceptions;
mod logon;
mod mail;
mod notify;
mod process;
mod proxy;
mod radius;
mod safeguarding;
mod school_dns;
mod shared_credentials;
mod wiring;

/// Monday 23 November 2026 (term time, GMT) at `hh:mm` London time: the day the suites'
/// manual clocks are set to.
fn monday_at(hh: i8, mm: i8) -> jiff::Timestamp {
    jiff::civil::date(2026, 11, 23)
        .at(hh, mm, 0, 0)
        .to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap())
        .unwrap()
        .timestamp()
}
