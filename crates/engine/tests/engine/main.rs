//! The engine's integration tests, one binary: the snapshot over the demo catalog and the
//! WCS example. (The DNS enforcement point's tests live with its adapter, in
//! `crates/dns-policy`.)

mod snapshot;
