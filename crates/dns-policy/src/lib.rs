//! The DNS enforcement point's policy: the filter the resolver asks and the log it tells.
//!
//! The resolver (`hallpass-dns`) knows nothing of policy, and the engine
//! (`hallpass-engine`) knows nothing of DNS: this crate joins them. The resolver asks
//! [`PolicyFilter`] about each question, in this order, and tells [`EventLog`] what it
//! answered.
//!
//! 1. canaries: browsers and Apple devices ask these before turning on encrypted DNS or
//!    Private Relay; NXDOMAIN keeps them on the school's filtered DNS;
//! 2. identify and decide: the snapshot's policy for this client, now (teacher overrides,
//!    allow and block rules, each group's default), citing the clause;
//! 3. safe search: an allowed search engine is answered with its safe-search CNAME;
//! 4. everything else is resolved (cache, then upstream) by the resolver.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hallpass_clock::Clock;
use hallpass_dns::{
    BlockMode, EdeCode, FilterDecision, FilterVerdict, QueryFilter, QueryLog, QueryRecord,
    SafeSearchSettings, YouTubeMode, safe_search,
};
use hallpass_engine::Engine;
use hallpass_policy::Verdict;
use hallpass_store::{DnsDetail, Event, EventKind, EventWriter};

/// Decides each question with the engine's current snapshot, at the clock's time (the
/// system clock in service; a manual one in tests, so a test can ask "is this blocked
/// during Monday's period 3?").
pub struct PolicyFilter {
    engine: Arc<Engine>,
    clock: Clock,
}

impl PolicyFilter {
    pub fn new(engine: Arc<Engine>, clock: Clock) -> PolicyFilter {
        PolicyFilter { engine, clock }
    }
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
        // Read once, so one query is decided at one instant.
        let now = self.clock.now();
        let mut event = Event::new(EventKind::Dns, now, qname);
        event.client_ip = Some(client);

        if settings.block_canaries && safe_search::is_canary(qname) {
            snapshot.count_blocked(hallpass_catalog::CategorySet::EMPTY);
            event.verdict = Cow::Borrowed(hallpass_store::VERDICT_BLOCK);
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
        event.verdict = Cow::Borrowed(verdict_name(decision.verdict));

        let block_page = matches!(settings.block_mode, hallpass_policy::BlockMode::BlockPage);
        // A warning needs a page to click through; without the block page there is
        // nowhere to show it, so the name resolves and the warning is only recorded.
        let blocked = match decision.verdict {
            Verdict::Block => true,
            Verdict::Warn => block_page,
            Verdict::Allow => false,
        };
        let verdict = if blocked {
            snapshot.count_blocked(outcome.categories);
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

impl EventLog {
    pub fn new(writer: EventWriter) -> EventLog {
        EventLog { writer }
    }
}

impl QueryLog<Event> for EventLog {
    fn record(&self, record: QueryRecord<Event>) {
        // A decided query keeps the instant its policy was evaluated at; the rest
        // (malformed, rate-limited) are stamped with the resolver's arrival time.
        let mut event = record.info.unwrap_or_else(|| {
            let at = jiff::Timestamp::try_from(record.at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            let mut event = Event::new(EventKind::Dns, at, record.qname.as_ref());
            event.client_ip = Some(record.client);
            event.verdict = Cow::Borrowed(record.verdict.as_str());
            event
        });
        event.dns = Some(DnsDetail {
            qtype: record.qtype,
            rcode: record.rcode,
            answer: Cow::Borrowed(record.verdict.as_str()),
            cache_hit: record.cache_hit,
            stale: record.stale,
            upstream_us: record
                .upstream_latency
                .map(|latency| u32::try_from(latency.as_micros()).unwrap_or(u32::MAX)),
        });
        self.writer.record(event);
    }
}
