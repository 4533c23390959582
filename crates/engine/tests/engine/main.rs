//! The engine's integration tests, one binary: the snapshot over the demo catalog and the
//! WCS example, and the DNS enforcement point with the real policy filter over sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly by design

mod dns;
mod snapshot;
