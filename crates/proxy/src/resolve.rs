//! Origin names to addresses through the school's configured DNS upstreams (the same
//! resolvers the DNS filter forwards to, so a test or a split-horizon network can
//! point both at one resolver), asked with hickory's client; the system resolver when
//! none is configured. No cache of its own: the connection pool keeps connections
//! per origin, so a name is resolved once per new connection.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr as _;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hickory_client::client::{Client, ClientHandle as _};
use hickory_client::proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_client::proto::runtime::TokioRuntimeProvider;
use hickory_client::proto::udp::UdpClientStream;

/// Why a name could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0:?} is not a valid DNS name")]
    Name(String),
    #[error("no address for {0}")]
    NoAddress(String),
    #[error("no DNS upstream answered for {name}: {last}")]
    Upstreams { name: String, last: String },
    #[error("resolving {name}: {source}")]
    System {
        name: String,
        source: std::io::Error,
    },
}

/// Resolves origin names: through `upstreams` in order, or the system's resolver.
#[derive(Clone, Debug)]
pub struct Resolver {
    upstreams: Arc<[SocketAddr]>,
    timeout: Duration,
}

impl Resolver {
    /// Empty `upstreams`: the system resolver (getaddrinfo).
    pub fn new(upstreams: Vec<SocketAddr>, timeout: Duration) -> Resolver {
        Resolver {
            upstreams: upstreams.into(),
            timeout,
        }
    }

    /// The addresses of `host` (an IP literal is its own address), IPv4 first.
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if self.upstreams.is_empty() {
            let found = tokio::net::lookup_host((host, 0)).await.map_err(|source| {
                ResolveError::System {
                    name: host.to_string(),
                    source,
                }
            })?;
            let mut ips: Vec<IpAddr> = found.map(|addr| addr.ip()).collect();
            ips.sort_by_key(IpAddr::is_ipv6);
            ips.dedup();
            return non_empty(ips, host);
        }
        let name = Name::from_str(&format!("{}.", host.trim_end_matches('.')))
            .map_err(|_| ResolveError::Name(host.to_string()))?;
        let mut last = String::from("no upstream configured");
        for upstream in self.upstreams.iter() {
            match self.ask(*upstream, &name).await {
                Ok(ips) => return non_empty(ips, host),
                Err(error) => last = format!("{upstream}: {error}"),
            }
        }
        Err(ResolveError::Upstreams {
            name: host.to_string(),
            last,
        })
    }

    /// A and then (only if there is no A) AAAA from one upstream.
    async fn ask(&self, upstream: SocketAddr, name: &Name) -> Result<Vec<IpAddr>, String> {
        let stream = UdpClientStream::builder(upstream, TokioRuntimeProvider::default())
            .with_timeout(Some(self.timeout))
            .build();
        let (mut client, background) = Client::connect(stream)
            .await
            .map_err(|error| error.to_string())?;
        let background = tokio::spawn(background);
        let mut ips = Vec::new();
        for record_type in [RecordType::A, RecordType::AAAA] {
            let response = client
                .query(name.clone(), DNSClass::IN, record_type)
                .await
                .map_err(|error| error.to_string())?;
            ips.extend(
                response
                    .answers()
                    .iter()
                    .filter_map(|record| match record.data() {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                        _ => None,
                    }),
            );
            if !ips.is_empty() {
                break;
            }
        }
        background.abort();
        Ok(ips)
    }
}

fn non_empty(ips: Vec<IpAddr>, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
    if ips.is_empty() {
        Err(ResolveError::NoAddress(host.to_string()))
    } else {
        Ok(ips)
    }
}

/// hyper-util's connector asks names through this (the port is set by the connector).
impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = ResolveError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ResolveError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ResolveError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        let resolver = self.clone();
        Box::pin(async move {
            let ips = resolver.lookup(name.as_str()).await?;
            Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, 0))
                .collect::<Vec<_>>()
                .into_iter())
        })
    }
}
