//! The DNS enforcement point wired to the engine and the store.
//!
//! The resolver (`hallpass-dns`) knows nothing of policy: it asks [`PolicyFilter`] about
//! each question, in this order, and tells [`EventLog`] what it answered.
//!
//! 1. canaries: browsers and Apple devices ask these before turning on encrypted DNS or
//!    Private Relay; NXDOMAIN keeps them on the school's filtered DNS;
//! 2. identify and decide: the snapshot's policy for this client, now (teacher overrides,
//!    allow and block rules, each group's default), citing the clause;
//! 3. safe search: an allowed search engine is answered with its safe-search CNAME;
//! 4. everything else is resolved (cache, then upstream) by the resolver.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hallpass_dns::{
    BlockMode, DnsServer, EdeCode, FilterDecision, FilterVerdict, QueryFilter, QueryLog,
    QueryRecord, RateLimit, SafeSearchSettings, ServerHandle, YouTubeMode, safe_search,
};
use hallpass_engine::Engine;
use hallpass_policy::Verdict;
use hallpass_store::{Event, EventKind, EventWriter};

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
    let server = DnsServer::bind(config, PolicyFilter { engine }, EventLog { writer })
        .await
        .map_err(|error| anyhow::anyhow!("cannot start DNS on {:?}: {error}", settings.listen))?;
    Ok(Running {
        handle: server.spawn(),
    })
}

/// Decides each question with the engine's current snapshot.
pub struct PolicyFilter {
    engine: Arc<Engine>,
}

/// Why the canaries are answered NXDOMAIN (the EDE text).
const CANARY_REASON: &str =
    "Encrypted DNS and private relays are turned off on this network by the school's policy";

impl QueryFilter for PolicyFilter {
    /// The event for this query, minus what only the resolver knows (response code,
    /// cache hit, latency), which [`EventLog`] adds.
    type Info = Event;

    fn check(&self, client: IpAddr, qname: &str, _qtype: u16) -> FilterDecision<Event> {
        let snapshot = self.engine.snapshot();
        let policy = &snapshot.policy;
        let settings = policy.dns_settings();
        // The resolver reads the clock through its own module; a decision reads it here,
        // once, so one query is decided at one instant.
        let now = jiff::Timestamp::now();
        let mut event = Event::new(EventKind::Dns, now, qname);
        event.client_ip = Some(client);

        if settings.block_canaries && safe_search::is_canary(qname) {
            event.verdict = hallpass_store::VERDICT_BLOCK.to_string();
            event.rule = Some("dns-canary".to_string());
            return FilterDecision::new(FilterVerdict::Block {
                mode: BlockMode::Nxdomain,
                ttl: settings.block_ttl,
                reason: Arc::from(CANARY_REASON),
                ede: EdeCode::Blocked,
            })
            .with_info(event);
        }

        let outcome = snapshot.decide_host(client, qname, now);
        let decision = &outcome.decision;
        if let Some(person) = &outcome.who.person {
            event.person = Some(person.username.to_string());
            event.year_group = person.year_group.clone();
        }
        event.categories = snapshot.category_names(&outcome.categories);
        event.rule = decision.rule.map(|rule| rule.id.to_string());
        event.document = decision.document.map(str::to_string);
        event.clause = decision.clause.map(str::to_string);
        event.verdict = verdict_name(decision.verdict).to_string();

        let block_page = matches!(settings.block_mode, hallpass_policy::BlockMode::BlockPage);
        // A warning needs a page to click through; without the block page there is
        // nowhere to show it, so the name resolves and the warning is only recorded.
        let blocked = match decision.verdict {
            Verdict::Block => true,
            Verdict::Warn => block_page,
            Verdict::Allow => false,
        };
        let verdict = if blocked {
            FilterVerdict::Block {
                mode: block_mode(settings),
                ttl: settings.block_ttl,
                reason: Arc::from(cite(decision.document, decision.clause, decision.message)),
                ede: EdeCode::Blocked,
            }
        } else {
            let wanted = to_dns_safe_search(policy.safe_search(outcome.who.groups));
            match safe_search::target_for(qname, &wanted) {
                Some(target) => FilterVerdict::SafeSearch {
                    target: Arc::from(target),
                },
                None => FilterVerdict::Allow,
            }
        };
        FilterDecision::new(verdict).with_info(event)
    }
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Allow => "allow",
        Verdict::Block => hallpass_store::VERDICT_BLOCK,
        Verdict::Warn => "warn",
    }
}

/// The EDE text: the clause first, as a network manager reads it in `dig`.
fn cite(document: Option<&str>, clause: Option<&str>, message: &str) -> String {
    match (document, clause) {
        (Some(document), Some(clause)) if message.is_empty() => format!("{document} {clause}"),
        (Some(document), Some(clause)) => format!("{document} {clause}: {message}"),
        (None, Some(clause)) => format!("{clause}: {message}"),
        _ => message.to_string(),
    }
}

fn block_mode(settings: &hallpass_policy::DnsSettings) -> BlockMode {
    match settings.block_mode {
        hallpass_policy::BlockMode::NxDomain => BlockMode::Nxdomain,
        hallpass_policy::BlockMode::Null => BlockMode::Null,
        hallpass_policy::BlockMode::BlockPage => BlockMode::Address {
            v4: settings.blockpage_ipv4.unwrap_or(Ipv4Addr::UNSPECIFIED),
            v6: settings.blockpage_ipv6.unwrap_or(Ipv6Addr::UNSPECIFIED),
        },
    }
}

fn to_dns_safe_search(wanted: hallpass_policy::SafeSearch) -> SafeSearchSettings {
    SafeSearchSettings {
        google: wanted.google,
        youtube: match wanted.youtube {
            hallpass_policy::YouTubeMode::Off => YouTubeMode::Off,
            hallpass_policy::YouTubeMode::Moderate => YouTubeMode::Moderate,
            hallpass_policy::YouTubeMode::Strict => YouTubeMode::Strict,
        },
        bing: wanted.bing,
        duckduckgo: wanted.duckduckgo,
    }
}

/// Hands every answered query to the event writer (which never waits on the database).
pub struct EventLog {
    writer: EventWriter,
}

impl QueryLog<Event> for EventLog {
    fn record(&self, record: QueryRecord<Event>) {
        let at = jiff::Timestamp::try_from(record.at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let mut event = record.info.unwrap_or_else(|| {
            // Not decided by the filter (malformed, rate-limited): still recorded.
            let mut event = Event::new(EventKind::Dns, at, record.qname.as_ref());
            event.client_ip = Some(record.client);
            event.verdict = record.verdict.as_str().to_string();
            event
        });
        event.at = at;
        let mut detail = serde_json::Map::with_capacity(6);
        detail.insert("qtype".into(), record.qtype.into());
        detail.insert("rcode".into(), record.rcode.into());
        detail.insert("answer".into(), record.verdict.as_str().into());
        detail.insert("cache_hit".into(), record.cache_hit.into());
        if record.stale {
            detail.insert("stale".into(), true.into());
        }
        if let Some(latency) = record.upstream_latency {
            detail.insert(
                "upstream_ms".into(),
                (latency.as_secs_f64() * 1000.0).into(),
            );
        }
        event.detail = Some(serde_json::Value::Object(detail));
        self.writer.record(event);
    }
}
