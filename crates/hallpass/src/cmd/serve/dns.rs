//! Starting the DNS enforcement point with its policy filter and event log (both in
//! `hallpass-dns-policy`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use hallpass_dns::{DnsServer, RateLimit};
use hallpass_dns_policy::{EventLog, PolicyFilter};

use super::Settings;
use super::health::UpstreamWatch;
use super::services::Service;
use super::shared::Shared;

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

/// The DNS enforcement point: binds every listen address (UDP and TCP) and the upstream
/// sockets; serves until the stop signal. Registers its metrics and the upstream check.
pub fn service<'a>(
    shared: &'a Shared,
    settings: &'a Settings,
) -> BoxFuture<'a, anyhow::Result<Option<Service>>> {
    Box::pin(async move {
        let settings = &settings.dns;
        let mut config = hallpass_dns::DnsConfig {
            listen: settings.listen.clone(),
            upstreams: settings.upstreams.clone(),
            rate_limit: settings.rate_limit_per_client.map(|per_second| RateLimit {
                per_second: f64::from(per_second),
                // A page load fans out into a burst of lookups: allow two seconds' worth.
                burst: f64::from(per_second) * 2.0,
            }),
            // Cache ages and rate limits move with the one clock (a test's manual one).
            clock: shared.clock.clone(),
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
            PolicyFilter::new(Arc::clone(&shared.engine), shared.clock.clone()),
            EventLog::new(shared.writer.clone()),
        )
        .await
        .map_err(|error| anyhow::anyhow!("DNS: {error}"))?;
        let metrics = server.metrics();
        shared.metrics.register(metrics.clone());
        let upstreams = Arc::new(UpstreamWatch::new(metrics, shared.clock.clone()));
        shared.health.add_check(upstreams.clone());
        let addrs = server.udp_addrs().to_vec();
        let mut banner: Vec<String> = addrs
            .iter()
            .map(|addr| format!("DNS        udp+tcp {addr}"))
            .collect();
        banner.push(format!("upstreams  {}", super::join(&settings.upstreams)));
        let stop = shared.stop.clone();
        let run = async move {
            let sampling = async {
                let mut tick = tokio::time::interval(UpstreamWatch::SAMPLE_EVERY);
                loop {
                    tick.tick().await;
                    upstreams.sample();
                }
            };
            tokio::select! {
                result = server.run(stop.cancelled_owned()) => {
                    result.map_err(|error| anyhow::anyhow!("DNS: {error}"))
                }
                () = sampling => Ok(()),
            }
        };
        Ok(Some(Service {
            name: "dns",
            addrs,
            banner,
            run: Box::pin(run),
        }))
    })
}
