//! The console's integration tests: one binary, a real server on 127.0.0.1:0 per test, a
//! real SQLite store, real HTTP clients (reqwest). The browser test is its own target (`tests/browser.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kit;
mod matrix;
mod signin;
