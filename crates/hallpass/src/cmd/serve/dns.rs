//! Starting the DNS enforcement point with its policy filter and event log (both in
//! `hallpass-dns-policy`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hallpass_dns::{DnsServer, RateLimit, ServerHandle};
use hallpass_engine::Engine;
use hallpass_dns_policy::{EventLog, PolicyFilter};
use hallpass_store::EventWriter;

/// DNS settings after the configuration file, flags and defaults are merged.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    pub listen: Vec<SocketAddr>,
    pub upstreams: Vec<SocketAddr>,
    pub rate_limit_per_client: Option<u32>,
    pub cache_entries: Option<usize>,
    pub upstream_timeout: Option<Duration>,
}

impl DnsSettings {
    pub fn from_config(
        listen: Vec<SocketAddr>,
        upstreams: Vec<SocketAddr>,
        config: &crate::config::DnsConfig,
    ) -> Self {
        DnsSettings {
            listen,
            upstreams,
            rate_limit_per_client: config.rate_limit_per_client,
            cache_entries: config.cache_entries,
            upstream_timeout: config.upstream_timeout_ms.map(Duration::from_millis),
        }
    }
}

pub fn parse_upstream(text: &str) -> anyhow::Result<SocketAddr> {
    Ok(hallpass_dns::parse_upstream(text)?)
}

/// The nameservers in /etc/resolv.conf (the demo's upstream when none is given).
pub fn system_resolvers() -> Vec<SocketAddr> {
    let Ok(text) = std::fs::read_to_string("/etc/resolv.conf") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The running DNS listeners.
pub struct Running {
    handle: ServerHandle,
}

impl Running {
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.handle.udp_addrs().to_vec()
    }

    pub fn metrics(&self) -> Arc<hallpass_dns::Metrics> {
        Arc::clone(self.handle.metrics())
    }

    pub async fn shutdown(self) {
        if let Err(error) = self.handle.shutdown().await {
            tracing::warn!("DNS server stopped with an error: {error}");
        }
    }
}

pub async fn start(
    settings: &DnsSettings,
    engine: Arc<Engine>,
    writer: EventWriter,
) -> anyhow::Result<Running> {
    let mut config = hallpass_dns::DnsConfig {
        listen: settings.listen.clone(),
        upstreams: settings.upstreams.clone(),
        rate_limit: settings.rate_limit_per_client.map(|per_second| RateLimit {
            per_second: f64::from(per_second),
            // A page load fans out into a burst of lookups: allow two seconds' worth.
            burst: f64::from(per_second) * 2.0,
        }),
        ..hallpass_dns::DnsConfig::default()
    };
    if let Some(timeout) = settings.upstream_timeout {
        config.upstream_timeout = timeout;
    }
    if let Some(entries) = settings.cache_entries {
        // About 512 bytes per cached answer (key, wire bytes, bookkeeping).
        config.cache.capacity_bytes = (entries as u64).saturating_mul(512);
    }
    let server = DnsServer::bind(
        config,
        PolicyFilter::new(engine, hallpass_clock::Clock::system()),
        EventLog::new(writer),
    )
    .await
    .map_err(|error| anyhow::anyhow!("cannot start DNS on {:?}: {error}", settings.listen))?;
    Ok(Running {
        handle: server.spawn(),
    })
}
