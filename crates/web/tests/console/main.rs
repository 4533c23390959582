//! The console's integration tests: one binary, a real server on 127.0.0.1:0 per test, a
//! real SQLite store, real HTTP clients (reqwest). The same tests run on PostgreSQL from
//! `tests/postgres.rs`; the browser test is `hallpass`'s (`crates/hallpass/tests/browser.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod activity;
mod declarations;
mod guests;
mod kit;
mod matrix;
mod signin;

/// Where this binary's kit keeps the console's records.
const BACKEND: kit::Backend = kit::Backend::Sqlite;
