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
