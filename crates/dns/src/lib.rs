//! Hallpass's DNS enforcement point: a filtering, caching, forwarding resolver over UDP
//! and TCP. Every question is put to a [`QueryFilter`] (the integrator's policy engine),
//! answered — blocked (NXDOMAIN, null or block-page address, with an RFC 8914 Extended
//! DNS Error citing the clause), refused, rewritten for safe search (CNAME plus the
//! target's addresses), or resolved from the cache and upstream servers (TTL-honouring
//! cache with RFC 2308 negative caching and RFC 8767 serve-stale; failover, TCP retry on
//! truncation, EDNS(0) and the DO bit passed through) — and then reported to a
//! [`QueryLog`] (the integrator's event writer). The crate knows nothing of policy or
//! storage; both seams are traits called once per query on the hot path.
//!
//! Clock reads live in [`clock`] only; the query pipeline's order is fixed in
//! [`resolver`] (its module docs give the reason for each step's position).
//!
//! ```no_run
//! # async fn demo() -> Result<(), hallpass_dns::DnsError> {
//! use hallpass_dns::{AllowAll, DnsConfig, DnsServer, NullLog, parse_upstream};
//! let config = DnsConfig {
//!     listen: vec!["127.0.0.1:5300".parse().unwrap()],
//!     upstreams: vec![parse_upstream("192.0.2.53")?],
//!     ..DnsConfig::default()
//! };
//! let server = DnsServer::bind(config, AllowAll, NullLog).await?;
//! println!("listening on {:?}", server.udp_addrs());
//! let metrics = server.metrics(); // render_prometheus() on /metrics
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # let _ = metrics; Ok(()) }
//! ```

#[cfg(target_os = "linux")]
mod batch_io;
mod cache;
pub mod clock;
mod config;
mod error;
mod filter;
pub mod metrics;
mod ratelimit;
pub mod resolver;
pub mod safe_search;
mod server;
mod upstream;
pub mod wire;

pub use config::{CacheConfig, DnsConfig, parse_upstream};
pub use error::DnsError;
pub use filter::{
    AllowAll, AnyInfo, BlockMode, EdeCode, FilterDecision, FilterVerdict, NullLog, Qtype,
    QueryFilter, QueryLog, QueryRecord, Transport, Verdict,
};
pub use hickory_proto::rr::RecordType;
pub use metrics::Metrics;
pub use ratelimit::RateLimit;
pub use resolver::{Handled, InflightPermit, PendingQuery, Resolver};
pub use safe_search::{SafeSearchSettings, YouTubeMode};
pub use server::{DnsServer, ServerHandle};
