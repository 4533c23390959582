//! The console's integration tests: one binary, a real server on 127.0.0.1:0 per test, a
//! real SQLite store, real HTTP clients (reqwest) and a real browser (Chromium).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod kit;
mod matrix;
mod signin;
