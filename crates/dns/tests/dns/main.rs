//! Integration tests for hallpass-dns: the real server on loopback UDP and TCP sockets,
//! driven by hickory-client and by raw hickory-proto messages, forwarding to a fake
//! upstream written here (`kit::FakeUpstream`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kit;

mod answers;
mod batching;
mod blocking;
mod listeners;
mod malformed;
mod upstream;
