//! Errors.

use std::net::SocketAddr;

/// Errors starting or running the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot bind DNS {proto} socket on {addr}: {source}")]
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid DNS address {0:?} (expected ADDR[:PORT])")]
    BadAddress(String),
    #[error("DNS configuration: {0}")]
    Config(String),
    #[error("DNS I/O: {0}")]
    Io(#[from] std::io::Error),
}
