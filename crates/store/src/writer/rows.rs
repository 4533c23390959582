//! What a batch becomes in the database, shared by both write paths: decision rows (every
//! block, every warn, every non-DNS event), DNS visits (allowed queries aggregated per
//! client, person, name and minute), the `traffic_daily` and `activity_hourly` roll-ups,
//! and batch ids.
//!
//! An allowed DNS query is most of what a school records and the least of what anyone
//! reads one by one: storing a visit per (client, person, name, minute, verdict,
//! categories, rule) with a count costs the writer one row for many queries, and is what
//! the timeline and the reports read. A block or a warn is evidence (which rule, which
//! clause, when exactly) and stays a row of its own, as does every other kind of event.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::event::{Event, EventKind, VERDICT_BLOCK, clean};
use crate::ts_to_us;

pub(crate) const US_PER_DAY: i64 = 86_400_000_000;
pub(crate) const US_PER_MINUTE: i64 = 60_000_000;
pub(crate) const US_PER_HOUR: i64 = 3_600_000_000;
pub(crate) const VERDICT_WARN: &str = "warn";

/// Whether `e` is stored as part of a visit (an allowed DNS query without content) rather
/// than as a decision row of its own.
pub(crate) fn is_visit(e: &Event) -> bool {
    e.kind == EventKind::Dns
        && e.content.is_none()
        && e.verdict != VERDICT_BLOCK
        && e.verdict != VERDICT_WARN
}

/// The `decisions` columns the writer fills (the id is the database's), in the order both
/// write paths bind them.
pub(crate) const DECISION_COLUMNS: [&str; 20] = [
    "kind",
    "at_us",
    "person",
    "year_group",
    "client_ip",
    "device",
    "target",
    "categories",
    "verdict",
    "rule",
    "document",
    "clause",
    "bytes",
    "detail",
    "dns_qtype",
    "dns_rcode",
    "dns_answer",
    "dns_cache_hit",
    "dns_stale",
    "dns_upstream_us",
];

/// The `dns_visits` columns, in bind order.
pub(crate) const VISIT_COLUMNS: [&str; 15] = [
    "minute_us",
    "first_us",
    "last_us",
    "person",
    "year_group",
    "client_ip",
    "device",
    "name",
    "categories",
    "verdict",
    "rule",
    "document",
    "clause",
    "queries",
    "cache_hits",
];

/// What makes two allowed queries the same visit. Borrowed from the events: hashing a
/// few pointers and lengths per query is far cheaper than a row per query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct VisitKey<'a> {
    pub minute_us: i64,
    pub client_ip: Option<IpAddr>,
    pub person: Option<&'a str>,
    pub year_group: Option<&'a str>,
    pub device: Option<&'a str>,
    pub name: &'a str,
    pub categories: &'a [String],
    pub verdict: &'a str,
    pub rule: Option<&'a str>,
    pub document: Option<&'a str>,
    pub clause: Option<&'a str>,
}

/// One `dns_visits` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Visit<'a> {
    pub key: VisitKey<'a>,
    pub first_us: i64,
    pub last_us: i64,
    pub queries: i64,
    pub cache_hits: i64,
}

/// (day, person, year group, kind, category, verdict): one `traffic_daily` row. Person and
/// year group are '' when unknown; category '' counts each event once.
pub(crate) type TrafficKey<'a> = (
    i64,
    std::borrow::Cow<'a, str>,
    std::borrow::Cow<'a, str>,
    &'static str,
    std::borrow::Cow<'a, str>,
    &'static str,
);

/// (person, hour, kind, site, verdict, categories): one `activity_hourly` row.
pub(crate) type ActivityKey<'a> = (
    std::borrow::Cow<'a, str>,
    i64,
    &'static str,
    std::borrow::Cow<'a, str>,
    std::borrow::Cow<'a, str>,
    std::borrow::Cow<'a, str>,
);

/// A batch as rows: what each write path inserts, in one transaction.
#[derive(Debug, Default)]
pub(crate) struct Rows<'a> {
    pub decisions: Vec<&'a Event>,
    pub visits: Vec<Visit<'a>>,
    pub traffic: Vec<(TrafficKey<'a>, i64)>,
    pub activity: Vec<(ActivityKey<'a>, i64)>,
}

impl<'a> Rows<'a> {
    /// Split events into decisions and aggregated visits, and roll both up by day.
    pub(crate) fn of(events: impl IntoIterator<Item = &'a Event>) -> Rows<'a> {
        let mut decisions = Vec::new();
        let mut visits: HashMap<VisitKey<'a>, usize> = HashMap::new();
        let mut visit_rows: Vec<Visit<'a>> = Vec::new();
        let mut traffic: HashMap<TrafficKey<'a>, i64> = HashMap::new();
        let mut activity: HashMap<ActivityKey<'a>, i64> = HashMap::new();
        for e in events {
            let at_us = ts_to_us(e.at);
            if !is_visit(e) {
                decisions.push(e);
                add_traffic(&mut traffic, e, at_us, 1);
                if let Some(person) = e.person.as_deref().filter(|p| !p.is_empty()) {
                    let key = (
                        clean(person),
                        at_us.div_euclid(US_PER_HOUR) * US_PER_HOUR,
                        e.kind.as_str(),
                        clean(site_of(e.kind, &e.target)),
                        clean(&e.verdict),
                        categories(&e.categories),
                    );
                    *activity.entry(key).or_default() += 1;
                }
                continue;
            }
            let key = VisitKey {
                minute_us: at_us.div_euclid(US_PER_MINUTE) * US_PER_MINUTE,
                client_ip: e.client_ip,
                person: e.person.as_deref(),
                year_group: e.year_group.as_deref(),
                device: e.device.as_deref(),
                name: &e.target,
                categories: &e.categories,
                verdict: &e.verdict,
                rule: e.rule.as_deref(),
                document: e.document.as_deref(),
                clause: e.clause.as_deref(),
            };
            let hit = i64::from(e.dns.as_ref().is_some_and(|d| d.cache_hit));
            match visits.get(&key) {
                Some(&i) => {
                    let v = &mut visit_rows[i];
                    v.first_us = v.first_us.min(at_us);
                    v.last_us = v.last_us.max(at_us);
                    v.queries += 1;
                    v.cache_hits += hit;
                }
                None => {
                    visits.insert(key.clone(), visit_rows.len());
                    visit_rows.push(Visit {
                        key,
                        first_us: at_us,
                        last_us: at_us,
                        queries: 1,
                        cache_hits: hit,
                    });
                }
            }
        }
        // Visits roll up once each, by their count: far fewer entries than queries.
        for v in &visit_rows {
            add_visit_traffic(&mut traffic, v);
            let k = &v.key;
            if let Some(person) = k.person.filter(|p| !p.is_empty()) {
                let key = (
                    clean(person),
                    k.minute_us.div_euclid(US_PER_HOUR) * US_PER_HOUR,
                    EventKind::Dns.as_str(),
                    clean(k.name),
                    clean(k.verdict),
                    categories(k.categories),
                );
                *activity.entry(key).or_default() += v.queries;
            }
        }
        Rows {
            decisions,
            visits: visit_rows,
            traffic: traffic.into_iter().collect(),
            activity: activity.into_iter().collect(),
        }
    }
}

/// The roll-up's verdict class: block, warn, or allow (safe_search and the rest).
fn verdict_class(verdict: &str) -> &'static str {
    match verdict {
        VERDICT_BLOCK => "block",
        VERDICT_WARN => "warn",
        _ => "allow",
    }
}

fn add_traffic<'a>(traffic: &mut HashMap<TrafficKey<'a>, i64>, e: &'a Event, at_us: i64, n: i64) {
    let day = at_us.div_euclid(US_PER_DAY);
    let person = e.person.as_deref().map(clean).unwrap_or_default();
    let year_group = e.year_group.as_deref().map(clean).unwrap_or_default();
    let verdict = verdict_class(&e.verdict);
    let kind = e.kind.as_str();
    *traffic
        .entry((
            day,
            person.clone(),
            year_group.clone(),
            kind,
            "".into(),
            verdict,
        ))
        .or_default() += n;
    for c in &e.categories {
        *traffic
            .entry((
                day,
                person.clone(),
                year_group.clone(),
                kind,
                clean(c),
                verdict,
            ))
            .or_default() += n;
    }
}

fn add_visit_traffic<'a>(traffic: &mut HashMap<TrafficKey<'a>, i64>, v: &Visit<'a>) {
    let k = &v.key;
    let day = k.minute_us.div_euclid(US_PER_DAY);
    let person = k.person.map(clean).unwrap_or_default();
    let year_group = k.year_group.map(clean).unwrap_or_default();
    let verdict = verdict_class(k.verdict);
    let kind = EventKind::Dns.as_str();
    *traffic
        .entry((
            day,
            person.clone(),
            year_group.clone(),
            kind,
            "".into(),
            verdict,
        ))
        .or_default() += v.queries;
    for c in k.categories {
        *traffic
            .entry((
                day,
                person.clone(),
                year_group.clone(),
                kind,
                clean(c),
                verdict,
            ))
            .or_default() += v.queries;
    }
}

/// The site an event is rolled up under: the host of a web target (`host/path` or
/// `host:port`, an IPv6 literal in brackets), else the target itself (a DNS name, a mail
/// envelope, a device). The 0012 migration computes the same in SQL for older rows.
pub(crate) fn site_of(kind: EventKind, target: &str) -> &str {
    if kind != EventKind::Web {
        return target;
    }
    if target.starts_with('[') {
        return target.find(']').map_or(target, |end| &target[..=end]);
    }
    let end = target.find(['/', ':']).unwrap_or(target.len());
    &target[..end]
}

/// Comma-separated category names, as both tables store them.
pub(crate) fn categories(c: &[String]) -> std::borrow::Cow<'_, str> {
    match c {
        [] => std::borrow::Cow::Borrowed(""),
        [one] => clean(one),
        many => std::borrow::Cow::Owned(clean(&many.join(",")).into_owned()),
    }
}

/// A batch to store in one transaction with its id in `committed_batches`: a fresh
/// batch, or one read back from the spill file (which may have been committed before).
#[derive(Debug)]
pub(crate) struct Batch<'a> {
    pub id: &'a str,
    pub events: Vec<&'a Event>,
}

/// What a transaction stored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stored {
    /// Events stored (in batches not committed before).
    pub events: u64,
    /// Batches skipped because their id was in `committed_batches` already.
    pub skipped_batches: u64,
}

/// Batch ids: `<run>:<sequence>`, the run a random 64-bit number drawn when the writer
/// starts, so two writers (or two runs) never make the same id without any claim.
#[derive(Debug)]
pub(crate) struct BatchIds {
    run: String,
    next: AtomicU64,
}

impl BatchIds {
    pub(crate) fn new() -> BatchIds {
        BatchIds {
            run: format!("{:016x}", rand::random::<u64>()),
            next: AtomicU64::new(1),
        }
    }

    pub(crate) fn next(&self) -> String {
        format!("{}:{}", self.run, self.next.fetch_add(1, Relaxed))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn query(at: &str, name: &str, verdict: &'static str, person: Option<&str>) -> Event {
        let mut e = Event::new(EventKind::Dns, at.parse().unwrap(), name);
        e.verdict = verdict.into();
        e.person = person.map(str::to_string);
        e.categories = vec!["games".into(), "social".into()];
        e.client_ip = Some("10.0.0.7".parse().unwrap());
        e
    }

    #[test]
    fn allowed_queries_of_a_minute_are_one_visit_and_blocks_stay_rows() {
        let events = [
            query("2026-09-02T09:00:01Z", "a.example", "allow", Some("p1")),
            query("2026-09-02T09:00:59Z", "a.example", "allow", Some("p1")),
            query("2026-09-02T09:01:00Z", "a.example", "allow", Some("p1")),
            query("2026-09-02T09:00:30Z", "a.example", "allow", Some("p2")),
            query("2026-09-02T09:00:31Z", "a.example", "block", Some("p1")),
            query("2026-09-02T09:00:32Z", "a.example", "warn", Some("p1")),
        ];
        let rows = Rows::of(&events);
        assert_eq!(rows.decisions.len(), 2);
        assert_eq!(rows.visits.len(), 3);
        let first = &rows.visits[0];
        assert_eq!(first.queries, 2);
        assert_eq!(first.last_us - first.first_us, 58_000_000);
        let n = |person: &str, category: &str, verdict: &str| {
            rows.traffic
                .iter()
                .filter(|((_, p, _, _, c, v), _)| p == person && c == category && *v == verdict)
                .map(|(_, n)| *n)
                .sum::<i64>()
        };
        assert_eq!(n("p1", "", "allow"), 3);
        assert_eq!(n("p1", "games", "allow"), 3);
        assert_eq!(n("p2", "social", "allow"), 1);
        assert_eq!(n("p1", "", "block"), 1);
        assert_eq!(n("p1", "games", "warn"), 1);
    }

    #[test]
    fn identified_events_roll_up_per_person_hour_and_site() {
        let mut web = query(
            "2026-09-02T09:59:00Z",
            "a.example/page?q=1",
            "allow",
            Some("p1"),
        );
        web.kind = EventKind::Web;
        let mut tunnel = query("2026-09-02T09:10:00Z", "a.example:443", "allow", Some("p1"));
        tunnel.kind = EventKind::Web;
        let events = [
            query("2026-09-02T09:00:01Z", "a.example", "allow", Some("p1")),
            query("2026-09-02T09:00:02Z", "a.example", "allow", Some("p1")),
            query("2026-09-02T09:59:59Z", "a.example", "allow", Some("p1")),
            query("2026-09-02T10:00:00Z", "a.example", "allow", Some("p1")),
            query("2026-09-02T09:30:00Z", "a.example", "block", Some("p1")),
            query("2026-09-02T09:30:00Z", "a.example", "allow", None),
            web,
            tunnel,
        ];
        let rows = Rows::of(&events);
        let n = |hour: &str, kind: &str, site: &str, verdict: &str| {
            let hour = ts_to_us(hour.parse().unwrap());
            rows.activity
                .iter()
                .filter(|((p, h, k, s, v, c), _)| {
                    p == "p1"
                        && *h == hour
                        && *k == kind
                        && s == site
                        && v == verdict
                        && c == "games,social"
                })
                .map(|(_, n)| *n)
                .sum::<i64>()
        };
        assert_eq!(n("2026-09-02T09:00:00Z", "dns", "a.example", "allow"), 3);
        assert_eq!(n("2026-09-02T10:00:00Z", "dns", "a.example", "allow"), 1);
        assert_eq!(n("2026-09-02T09:00:00Z", "dns", "a.example", "block"), 1);
        assert_eq!(n("2026-09-02T09:00:00Z", "web", "a.example", "allow"), 2);
        // The unidentified query is in no person's roll-up.
        let total: i64 = rows.activity.iter().map(|(_, n)| *n).sum();
        assert_eq!(total, 7);
    }

    #[test]
    fn the_site_of_a_web_target_is_its_host() {
        assert_eq!(site_of(EventKind::Web, "a.example/x/y"), "a.example");
        assert_eq!(site_of(EventKind::Web, "a.example:443"), "a.example");
        assert_eq!(
            site_of(EventKind::Web, "[2001:db8::1]:443"),
            "[2001:db8::1]"
        );
        assert_eq!(site_of(EventKind::Web, "a.example"), "a.example");
        assert_eq!(site_of(EventKind::Dns, "a.example"), "a.example");
        assert_eq!(site_of(EventKind::Mail, "a@x -> b@y"), "a@x -> b@y");
    }

    #[test]
    fn batch_ids_differ_between_writers() {
        let (a, b) = (BatchIds::new(), BatchIds::new());
        let (x, y) = (a.next(), a.next());
        assert_ne!(x, y);
        assert_ne!(x, b.next());
        assert!(x.ends_with(":1") && y.ends_with(":2"));
    }
}
