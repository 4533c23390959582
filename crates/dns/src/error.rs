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
    /// A per-client rate limit that would refuse every query (see [`crate::RateLimit::new`]).
    #[error(
        "DNS rate limit per client must be above 0 queries per second with a burst of at \
         least 1 (got {per_second} per second, burst {burst}); leave it unset for no limit"
    )]
    BadRateLimit { per_second: f64, burst: f64 },
    /// A listener (UDP socket worker or TCP acceptor) failed and could not be started
    /// again: [`crate::DnsServer::run`] stops the server and returns this, so the caller
    /// can fail closed rather than run on with a socket nobody reads.
    #[error("DNS listener on {addr} failed and was not restarted: {cause}")]
    ListenerFailed { addr: SocketAddr, cause: String },
    #[error("DNS I/O: {0}")]
    Io(#[from] std::io::Error),
}
