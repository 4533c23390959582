//! Hallpass's web proxy: the enforcement point for pages, downloads and HTTPS hosts,
//! where DNS sees only names. An explicit HTTP/1.1 forward proxy on hyper (never a
//! parser of our own): absolute-form requests are decided on the full URL (host, path,
//! the catalog's host, URL and expression lists), forwarded over pooled keep-alive
//! connections, and their responses decided again on `Content-Type` and first bytes
//! (a renamed executable is still an executable); `CONNECT` is decided on its host and
//! tunnelled, or, for hosts in the categories the school chose to inspect, its TLS
//! ended with a certificate from the school's CA and the requests inside decided as
//! plain HTTP's are ([`inspect`]; safe search and search terms: [`search`]). Who is asking comes from the engine's snapshot, by client address, exactly
//! as the DNS filter and the block page see it, and every request becomes one `web`
//! event through the event writer. It also serves `proxy.pac` / `wpad.dat`.
//!
//! The IO-free parts are modules of their own and unit-tested: [`target`] (CONNECT
//! targets, URL normalisation), [`sniff`] (file types from magic numbers), [`sni`] (the server name of a
//! TLS ClientHello), [`page`]
//! (block page, refusal text, PAC), [`decide`] (the policy question).

pub mod auth;
pub mod decide;
mod handle;
pub mod inspect;
pub mod metrics;
pub mod origin;
pub mod page;
pub mod record;
pub mod resolve;
pub mod search;
mod server;
pub mod sni;
pub mod sniff;
pub mod target;
mod tunnel;

use std::time::Duration;

pub use auth::Authenticator;
pub use metrics::Metrics;
pub use server::{Proxy, serve};
pub use target::HostPort;

/// How the proxy runs (the `[proxy]` section of `serve`'s configuration).
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Forward everything (requests and tunnels) to this proxy instead of to origins.
    pub parent: Option<HostPort>,
    /// DNS servers for origin names; empty: the system resolver.
    pub upstreams: Vec<std::net::SocketAddr>,
    /// Ports `CONNECT` may reach (443 by default): a tunnel to any port would carry
    /// any protocol past the filter.
    pub connect_ports: Vec<u16>,
    /// Largest request head (request line and headers) accepted; hyper's floor is 8 KiB.
    pub max_header_bytes: usize,
    /// A client connection is closed when a request head takes longer than this, or when
    /// it sits idle between requests this long (slowloris, forgotten keep-alives).
    pub idle_timeout: Duration,
    /// Connecting to an origin (or the parent) and resolving its name.
    pub connect_timeout: Duration,
    /// Waiting for an origin's response head, and for each chunk of its body: an
    /// origin silent this long mid-response is cut off (logged and recorded).
    pub response_timeout: Duration,
    /// Client connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// The block page service (`http://ADDR/`), linked from the proxy's block page.
    pub portal: Option<String>,
    /// Selective TLS inspection: `None` (the default) tunnels every `CONNECT` untouched.
    pub inspector: Option<std::sync::Arc<inspect::Inspector>>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            parent: None,
            upstreams: Vec::new(),
            connect_ports: vec![443],
            max_header_bytes: 64 * 1024,
            idle_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(60),
            max_connections: 4096,
            portal: None,
            inspector: None,
        }
    }
}
