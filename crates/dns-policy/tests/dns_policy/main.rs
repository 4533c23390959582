//! The DNS enforcement point's tests, one binary: the resolver (`hallpass-dns`) with the
//! real policy filter and event log, over real sockets and a real SQLite store.

// Helpers outside #[test] functions unwrap too: a test fails loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod resolver;
