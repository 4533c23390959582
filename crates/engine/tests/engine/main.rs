//! The engine's integration tests, one binary: the snapshot over the demo catalog and the
//! WCS example, and the DNS enforcement point with the real policy filter over sockets.

mod dns;
mod snapshot;
