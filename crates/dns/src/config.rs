//! Resolver configuration.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::clock::Clock;
use crate::error::DnsError;
use crate::ratelimit::RateLimit;

/// Everything the DNS server needs to start. `Default` gives a loopback listener on an
/// ephemeral port, no upstreams (every allowed query is SERVFAIL), and the defaults below.
#[derive(Clone, Debug)]
pub struct DnsConfig {
    /// Addresses to listen on; each is bound for both UDP and TCP. Port 0 picks a free
    /// port (the same one for UDP and TCP); see [`crate::DnsServer::udp_addrs`].
    pub listen: Vec<SocketAddr>,
    /// Upstream resolvers, tried in order (servers failing repeatedly are tried last).
    pub upstreams: Vec<SocketAddr>,
    /// Time allowed for one upstream exchange (UDP, or the TCP retry) before failing over.
    pub upstream_timeout: Duration,
    /// UDP sockets per listen address (SO_REUSEPORT), each served by its own task.
    /// 0 = the number of CPUs.
    pub udp_sockets: usize,
    /// Serve each UDP socket from a dedicated OS thread doing blocking receives (as
    /// unbound does; on Linux a blocking `recvmmsg` that takes every waiting query)
    /// instead of a Tokio task. Cache hits and blocks are then answered without the
    /// async runtime between the socket and the answer; only queries that wait on
    /// upstream become Tokio tasks. Default: true. On the 2-core bench machine, shared
    /// with dnsperf, the CPUs stood idle 4-5% of a load run against 7-9% with tasks
    /// (the kernel wakes the thread directly, not through the runtime's event loop),
    /// for about 5% more queries/s and a lower p99.9.
    pub udp_threads: bool,
    /// Write the question to upstreams with its letters in random case (0x20) and accept
    /// only replies that echo it exactly; a server that changes the case is asked again
    /// in lowercase (counted in `upstream_case_fallbacks`). Clients get their own case
    /// back either way. Default: true. (Every upstream query also leaves from a fresh
    /// socket on a random port.)
    pub case_randomisation: bool,
    /// EDNS UDP payload size we advertise, upstream and to clients, and the most we send
    /// over UDP (RFC 9715 / DNS flag day 2020: 1232).
    pub udp_payload: u16,
    pub cache: CacheConfig,
    /// TTL of the CNAME in safe-search answers.
    pub safe_search_ttl: u32,
    /// Optional per-client-address rate limit; `None` (the default) disables it.
    pub rate_limit: Option<RateLimit>,
    /// Queries allowed to wait on upstream at once; beyond this, SERVFAIL at once.
    pub max_inflight: usize,
    /// Idle time after which a client TCP connection is closed.
    pub tcp_idle_timeout: Duration,
    /// Client TCP connections served at once. When a new connection would exceed it,
    /// the connection idle longest is closed to make room; the new one is refused only
    /// when every connection is busy.
    pub max_tcp_connections: usize,
    /// Client TCP connections one client address may hold at once; beyond it new ones
    /// are closed at once. Default 16.
    pub max_tcp_connections_per_client: usize,
    /// On shutdown, how long in-flight upstream queries may take to finish.
    pub shutdown_grace: Duration,
    /// Time source (a [`Clock::manual`] in tests).
    pub clock: Clock,
}

/// Cache settings.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// Approximate bound on the memory held by cached answers (keys, wire bytes, TTL
    /// offsets and per-entry overhead); least valuable entries are evicted beyond it.
    pub capacity_bytes: u64,
    /// Cap on how long a positive answer is cached (and on the TTLs served from it).
    pub max_ttl: u32,
    /// Floor on positive TTLs (0 = honour upstream; answers with TTL 0 are not cached).
    pub min_ttl: u32,
    /// Cap on negative caching (RFC 2308 §5 suggests at most 3 hours).
    pub max_negative_ttl: u32,
    /// How long past expiry an answer may still be served while every upstream fails
    /// (RFC 8767 §5 suggests 1 to 3 days). Zero disables serve-stale.
    pub max_stale: Duration,
    /// TTL of records in stale answers (RFC 8767 §4: 30 seconds).
    pub stale_ttl: u32,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity_bytes: 64 << 20,
            max_ttl: 86_400,
            min_ttl: 0,
            max_negative_ttl: 3_600,
            max_stale: Duration::from_secs(86_400),
            stale_ttl: 30,
        }
    }
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            upstreams: Vec::new(),
            upstream_timeout: Duration::from_millis(1500),
            udp_sockets: 0,
            udp_threads: true,
            case_randomisation: true,
            udp_payload: 1232,
            cache: CacheConfig::default(),
            safe_search_ttl: 300,
            rate_limit: None,
            max_inflight: 20_000,
            tcp_idle_timeout: Duration::from_secs(10),
            max_tcp_connections: 1024,
            max_tcp_connections_per_client: 16,
            shutdown_grace: Duration::from_secs(2),
            clock: Clock::system(),
        }
    }
}

/// Parses an upstream written `ADDR[:PORT]` (`192.0.2.1`, `192.0.2.1:5353`, `2001:db8::1`,
/// `[2001:db8::1]:5353`); the port defaults to 53.
pub fn parse_upstream(s: &str) -> Result<SocketAddr, DnsError> {
    let s = s.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    match bare.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, 53)),
        Err(_) => Err(DnsError::BadAddress(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn upstream_syntax() {
        assert_eq!(
            parse_upstream("192.0.2.1").unwrap(),
            "192.0.2.1:53".parse().unwrap()
        );
        assert_eq!(
            parse_upstream("192.0.2.1:5353").unwrap(),
            "192.0.2.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_upstream("2001:db8::1").unwrap(),
            "[2001:db8::1]:53".parse().unwrap()
        );
        assert_eq!(
            parse_upstream("[2001:db8::1]").unwrap(),
            "[2001:db8::1]:53".parse().unwrap()
        );
        assert_eq!(
            parse_upstream("[2001:db8::1]:99").unwrap(),
            "[2001:db8::1]:99".parse().unwrap()
        );
        assert!(parse_upstream("dns.example").is_err());
    }
}
