//! The engine's integration tests, one binary: the snapshot over the demo catalog and the
//! WCS example. (The DNS enforcement point's tests live with its adapter, in
//! `crates/dns-policy`.)

// Helpers outside #[test] functions unwrap too: a test fails loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod snapshot;
