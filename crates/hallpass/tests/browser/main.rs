//! The console and the block page in a real browser: Debian's Chromium driven over
//! WebDriver (chromedriver) against the whole demo `serve` (`hallpass::testkit`).
//!
//! * `console`: every demo account signs in through the form and sees what its role
//!   may; a wrong password, an expired session and a form without its CSRF token are
//!   refused; the dashboard, with charts of real DNS traffic, is photographed to
//!   `TARGET/console-screenshots/dashboard.png`.
//! * `exceptions`: a student meets the block page (Chromium resolves the blocked name to
//!   the block page, as the DNS answer would), asks for access; the network manager
//!   approves it on the console's queue and DNS opens it for her alone; a teacher opens a
//!   rule for a class on the overrides page and revokes it.
//!
//! Run by `.ci/console-e2e.sh` (which installs Chromium): `cargo test -p hallpass --test
//! browser`. Under CI (CI=true) a missing Chromium fails the test; elsewhere it is
//! skipped with a loud notice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod console;
mod driver;
mod exceptions;

/// Monday 23 November 2026 (term time) at 10:30 London time: a lesson, so games are
/// blocked for students too.
pub fn monday_lesson() -> jiff::Timestamp {
    jiff::civil::date(2026, 11, 23)
        .at(10, 30, 0, 0)
        .to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap())
        .unwrap()
        .timestamp()
}
