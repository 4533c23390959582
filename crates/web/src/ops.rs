//! Every store read and write the console performs, each behind the capability its role
//! matrix entry grants (`&Can<O>`, see `access`). The store sits in a private field of
//! [`Guarded`]: handlers elsewhere in the crate cannot reach it except through these
//! functions (and the loudly named bypass for signing in).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hallpass_engine::Engine;
use hallpass_policy::{CategoryMask, GroupSet, Identity, PersonAttrs, Request};
use hallpass_store::accounts::ActivityFilter;
use hallpass_store::{ReportFilter, Store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::{Can, op};
use crate::error::ApiError;
use crate::policy_view::{self, PolicyView};

pub mod activity;
pub mod alerts;
pub mod declarations;
pub mod exceptions;
pub mod guests;
pub mod portal;
pub mod quarantine;
pub mod safeguarding;
pub mod sessions;

/// Where the policy text shown on the policy page comes from.
#[derive(Debug, Clone)]
pub enum PolicySource {
    /// Compiled into the binary (the demo school).
    Text { name: String, text: Arc<str> },
    /// A file, read again for each view (it may be reloaded at any time).
    File(PathBuf),
}

/// Console settings.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// A session unused this long ends.
    pub idle_timeout: std::time::Duration,
    /// A session ends this long after sign-in, however busy.
    pub absolute_timeout: std::time::Duration,
    /// Mark the cookie `Secure` (set when the console is served over TLS).
    pub secure_cookies: bool,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Failed sign-ins for one account, within `lockout_window`, that lock it.
    pub account_failures: i64,
    /// Failed sign-ins from one address, within `lockout_window`, that refuse it.
    pub ip_failures: i64,
    pub lockout_window: std::time::Duration,
    /// Email a requester the outcome of their access request (through the outbox, sent
    /// by `serve`'s mailer when `[notify]` names a relay).
    pub notify_requesters: bool,
    /// How long a sign-in on the captive portal (account or guest code) identifies the
    /// address: its logon session then ends.
    pub portal_sign_in: std::time::Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            idle_timeout: std::time::Duration::from_secs(30 * 60),
            absolute_timeout: std::time::Duration::from_secs(10 * 3600),
            secure_cookies: false,
            max_body_bytes: 64 * 1024,
            account_failures: 5,
            ip_failures: 20,
            lockout_window: std::time::Duration::from_secs(15 * 60),
            notify_requesters: false,
            portal_sign_in: std::time::Duration::from_secs(8 * 3600),
        }
    }
}

/// The console's shared state; fields private so that only this module reads the store.
pub struct Guarded {
    store: Store,
    engine: Arc<Engine>,
    pub(crate) clock: hallpass_clock::Clock,
    pub(crate) config: WebConfig,
    policy: PolicySource,
}

impl Guarded {
    pub(crate) fn new(
        store: Store,
        engine: Arc<Engine>,
        clock: hallpass_clock::Clock,
        config: WebConfig,
        policy: PolicySource,
    ) -> Guarded {
        Guarded {
            store,
            engine,
            clock,
            config,
            policy,
        }
    }

    /// THE BYPASS: the store without a capability, for authentication only (signing in
    /// and out, resolving a session or token before there is a caller to check).
    pub(crate) fn store_for_authentication_only(&self) -> &Store {
        &self.store
    }

    pub(crate) fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }
}

fn span(hours: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_hours(hours)
}

/// A key and its count (a category, group, year group or site).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Count {
    pub key: String,
    pub count: i64,
}

/// The dashboard: aggregate numbers only, no person named.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Dashboard {
    #[schema(value_type = String)]
    pub at: jiff::Timestamp,
    pub queries_24h: i64,
    pub queries_7d: i64,
    pub blocked_24h: i64,
    pub blocked_7d: i64,
    /// Over the last 7 days (UTC days, from the daily roll-up).
    pub blocked_by_category: Vec<Count>,
    pub blocked_by_group: Vec<Count>,
    pub blocked_by_year_group: Vec<Count>,
    pub top_blocked_sites: Vec<Count>,
}

fn counts(rows: Vec<hallpass_store::Count>) -> Vec<Count> {
    rows.into_iter()
        .map(|c| Count {
            key: if c.key.is_empty() {
                "(none)".into()
            } else {
                c.key
            },
            count: c.count,
        })
        .collect()
}

pub async fn dashboard(_: &Can<op::ViewDashboard>, g: &Guarded) -> Result<Dashboard, ApiError> {
    let now = g.now();
    let day_ago = now - span(24);
    let week_ago = now - span(24 * 7);
    let activity = g.store.activity();
    let reports = g.store.reports();
    let week = ReportFilter::new(week_ago, now);
    let mut by_category: BTreeMap<String, i64> = BTreeMap::new();
    for row in reports.blocked_by_category_per_day(&week).await? {
        *by_category.entry(row.category).or_default() += row.count;
    }
    let mut by_category: Vec<Count> = by_category
        .into_iter()
        .map(|(key, count)| Count { key, count })
        .collect();
    by_category.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
    // Per group: the people blocked most this week, each counted in the roster groups and
    // the policy groups they are in now (bounded by the limit, not by the event count).
    let by_person = reports.blocked_by_person(&week, 5_000).await?;
    let groups_of = person_groups(g).await?;
    let mut by_group: BTreeMap<String, i64> = BTreeMap::new();
    for c in &by_person {
        if let Some(groups) = groups_of.get(&c.key) {
            for group in groups {
                *by_group.entry(group.clone()).or_default() += c.count;
            }
        }
    }
    let mut by_group: Vec<Count> = by_group
        .into_iter()
        .map(|(key, count)| Count { key, count })
        .collect();
    by_group.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
    Ok(Dashboard {
        at: now,
        queries_24h: activity.count_between(day_ago, now, None).await?,
        queries_7d: activity.count_between(week_ago, now, None).await?,
        blocked_24h: activity
            .count_between(day_ago, now, Some(hallpass_store::VERDICT_BLOCK))
            .await?,
        blocked_7d: activity
            .count_between(week_ago, now, Some(hallpass_store::VERDICT_BLOCK))
            .await?,
        blocked_by_category: by_category,
        blocked_by_group: by_group,
        blocked_by_year_group: counts(reports.blocked_by_year_group(&week).await?),
        top_blocked_sites: counts(reports.top_blocked_targets(&week, 10).await?),
    })
}

/// username -> roster groups and the policy groups the person is in now.
async fn person_groups(g: &Guarded) -> Result<HashMap<String, Vec<String>>, ApiError> {
    let people = g.store.people().list().await?;
    let snapshot = g.engine.snapshot();
    Ok(people
        .into_iter()
        .map(|p| {
            let mut groups = policy_groups(&snapshot.policy, &p);
            for m in &p.groups {
                if !groups.contains(m) {
                    groups.push(m.clone());
                }
            }
            (p.username, groups)
        })
        .collect())
}

fn group_set(policy: &hallpass_policy::Policy, p: &hallpass_store::people::Person) -> GroupSet {
    let memberships: Vec<&str> = p.groups.iter().map(String::as_str).collect();
    let year = p
        .year_group
        .as_deref()
        .and_then(hallpass_engine::parse_year_group);
    policy.groups_for_person(&PersonAttrs {
        role: &p.role,
        year_group: year,
        memberships: &memberships,
    })
}

fn policy_groups(
    policy: &hallpass_policy::Policy,
    p: &hallpass_store::people::Person,
) -> Vec<String> {
    policy
        .group_names(group_set(policy, p))
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// The activity search's filters (query string of `/activity` and `/api/v1/events`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
pub struct EventQuery {
    /// Username.
    pub person: Option<String>,
    /// Client address.
    pub ip: Option<String>,
    /// Host name (its subdomains match too).
    pub site: Option<String>,
    pub category: Option<String>,
    /// allow, block, warn, ...
    pub verdict: Option<String>,
    /// RFC 3339 time, inclusive (default: 7 days ago).
    pub from: Option<String>,
    /// RFC 3339 time, exclusive (default: now).
    pub to: Option<String>,
    /// 1-based page of 50.
    pub page: Option<i64>,
}

pub const PAGE_SIZE: i64 = 50;

/// One recorded event (metadata only).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    pub kind: String,
    #[schema(value_type = String)]
    pub at: jiff::Timestamp,
    pub person: Option<String>,
    pub year_group: Option<String>,
    pub client_ip: Option<String>,
    pub target: String,
    pub categories: String,
    pub verdict: String,
    pub rule: Option<String>,
    pub clause: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventPage {
    pub page: i64,
    pub page_size: i64,
    pub events: Vec<EventView>,
    /// Another page may follow.
    pub more: bool,
}

fn blank(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

pub(crate) fn parse_time(
    field: &str,
    v: &Option<String>,
) -> Result<Option<jiff::Timestamp>, ApiError> {
    match blank(v) {
        None => Ok(None),
        Some(text) => text
            .parse::<jiff::Timestamp>()
            .or_else(|_| {
                text.parse::<jiff::civil::DateTime>()
                    .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC))
                    .map(|z| z.timestamp())
            })
            .map(Some)
            .map_err(|e| {
                ApiError::BadRequest(format!(
                    "{field}: {text:?} is not a time (e.g. 2026-12-01T09:00:00Z): {e}"
                ))
            }),
    }
}

impl EventQuery {
    fn to_filter(&self, now: jiff::Timestamp) -> Result<ActivityFilter, ApiError> {
        let page = self.page.unwrap_or(1);
        if !(1..=2_000).contains(&page) {
            return Err(ApiError::BadRequest(format!(
                "page: {page} is out of range (1 to 2000)"
            )));
        }
        if let Some(ip) = blank(&self.ip) {
            ip.parse::<IpAddr>()
                .map_err(|_| ApiError::BadRequest(format!("ip: {ip:?} is not an IP address")))?;
        }
        let from = parse_time("from", &self.from)?.unwrap_or(now - span(24 * 7));
        let to = parse_time("to", &self.to)?.unwrap_or(now + span(1));
        if from >= to {
            return Err(ApiError::BadRequest("from must be before to".into()));
        }
        Ok(ActivityFilter {
            from: Some(from),
            to: Some(to),
            person: blank(&self.person),
            client_ip: blank(&self.ip),
            site: blank(&self.site),
            category: blank(&self.category),
            verdict: blank(&self.verdict),
            year_groups: None,
            // One more than a page, to tell whether another follows.
            limit: PAGE_SIZE + 1,
            offset: (page - 1) * PAGE_SIZE,
        })
    }
}

async fn run_search(g: &Guarded, f: ActivityFilter, page: i64) -> Result<EventPage, ApiError> {
    let mut rows = g.store.activity().search(&f).await?;
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    Ok(EventPage {
        page,
        page_size: PAGE_SIZE,
        more,
        events: rows
            .into_iter()
            .map(|r| EventView {
                kind: r.kind,
                at: r.at,
                person: r.person,
                year_group: r.year_group,
                client_ip: r.client_ip,
                target: r.target,
                categories: r.categories,
                verdict: r.verdict,
                rule: r.rule,
                clause: r.clause,
            })
            .collect(),
    })
}

/// Search everyone's events (a head of year: their years only). A search that names a
/// person or an address is itself audited: who looked at whose activity, and when.
pub async fn search_events(
    can: &Can<op::SearchActivity>,
    g: &Guarded,
    q: &EventQuery,
) -> Result<EventPage, ApiError> {
    let now = g.now();
    let mut f = q.to_filter(now)?;
    f.year_groups = can.caller().year_scope().map(<[String]>::to_vec);
    if f.person.is_some() || f.client_ip.is_some() {
        let subject = f
            .person
            .clone()
            .or_else(|| f.client_ip.clone())
            .unwrap_or_default();
        let details = serde_json::to_value(q).unwrap_or_default();
        g.store
            .audit()
            .append(
                &can.caller().actor(),
                "activity.view",
                &subject,
                &details,
                now,
            )
            .await?;
    }
    run_search(g, f, q.page.unwrap_or(1)).await
}

/// The caller's own events (last 7 days unless the query says otherwise).
pub async fn own_events(
    can: &Can<op::ViewOwnActivity>,
    g: &Guarded,
    q: &EventQuery,
) -> Result<EventPage, ApiError> {
    let Some(me) = can.caller().username() else {
        return Err(ApiError::Forbidden(
            "a token has no activity of its own".into(),
        ));
    };
    let mut f = q.to_filter(g.now())?;
    f.person = Some(me.to_string());
    f.client_ip = None;
    run_search(g, f, q.page.unwrap_or(1)).await
}

/// A person of the roster as the console shows them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PersonView {
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub year_group: Option<String>,
    pub form: Option<String>,
    /// Groups from the MIS.
    pub groups: Vec<String>,
    /// The groups the live policy puts them in now.
    pub policy_groups: Vec<String>,
}

/// One person, with their open logon sessions and console account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PersonDetail {
    pub person: PersonView,
    pub sessions: Vec<SessionView>,
    /// The console role, when they have an account.
    pub console_role: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    pub ip: String,
    pub workstation: Option<String>,
    #[schema(value_type = String)]
    pub started: jiff::Timestamp,
    #[schema(value_type = String)]
    pub last_seen: jiff::Timestamp,
}

fn in_scope(scope: Option<&[String]>, p: &hallpass_store::people::Person) -> bool {
    match scope {
        None => true,
        Some(years) => p
            .year_group
            .as_ref()
            .is_some_and(|y| years.iter().any(|s| s == y)),
    }
}

fn person_view(policy: &hallpass_policy::Policy, p: hallpass_store::people::Person) -> PersonView {
    let policy_groups = policy_groups(policy, &p);
    PersonView {
        username: p.username,
        display_name: p.display_name,
        role: p.role,
        year_group: p.year_group,
        form: p.form,
        groups: p.groups,
        policy_groups,
    }
}

/// The roster (a head of year: their years only).
pub async fn people(can: &Can<op::ViewPeople>, g: &Guarded) -> Result<Vec<PersonView>, ApiError> {
    let scope = can.caller().year_scope();
    let snapshot = g.engine.snapshot();
    Ok(g.store
        .people()
        .list()
        .await?
        .into_iter()
        .filter(|p| in_scope(scope, p))
        .map(|p| person_view(&snapshot.policy, p))
        .collect())
}

/// One person. Out of a head of year's scope is forbidden, not "not found".
pub async fn person(
    can: &Can<op::ViewPeople>,
    g: &Guarded,
    username: &str,
) -> Result<PersonDetail, ApiError> {
    let found = g
        .store
        .people()
        .list()
        .await?
        .into_iter()
        .find(|p| p.username == username)
        .ok_or_else(|| ApiError::NotFound(format!("no person {username:?} in the roster")))?;
    if !in_scope(can.caller().year_scope(), &found) {
        return Err(ApiError::Forbidden(format!(
            "{username} is not in your year groups"
        )));
    }
    let sessions = g
        .store
        .sessions()
        .active()
        .await?
        .into_iter()
        .filter(|s| s.username == username)
        .map(|s| SessionView {
            ip: s.ip.to_string(),
            workstation: s.workstation,
            started: s.started,
            last_seen: s.last_seen,
        })
        .collect();
    let console_role = g.store.accounts().get(username).await?.map(|a| a.role);
    let snapshot = g.engine.snapshot();
    Ok(PersonDetail {
        person: person_view(&snapshot.policy, found),
        sessions,
        console_role,
    })
}

/// The live policy, readably.
pub async fn policy(_: &Can<op::ViewPolicy>, g: &Guarded) -> Result<PolicyView, ApiError> {
    let (name, text) = match &g.policy {
        PolicySource::Text { name, text } => (name.clone(), text.to_string()),
        PolicySource::File(path) => (
            path.display().to_string(),
            tokio::fs::read_to_string(path).await.map_err(|e| {
                ApiError::Internal(format!("reading the policy {}: {e}", path.display()))
            })?,
        ),
    };
    let snapshot = g.engine.snapshot();
    policy_view::render(&name, &text, &snapshot.policy).map_err(ApiError::Internal)
}

/// What to explain: a person or groups, a target, a time.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
pub struct ExplainQuery {
    /// A username: their policy groups are used.
    pub person: Option<String>,
    /// A policy group (used when no person is given).
    pub group: Option<String>,
    /// Host name or URL.
    pub target: Option<String>,
    /// Local time in the school's zone (`2026-12-01 10:00`) or RFC 3339; default now.
    pub at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExplainView {
    pub target: String,
    #[schema(value_type = String)]
    pub at: jiff::Timestamp,
    pub verdict: String,
    pub rule: Option<String>,
    pub document: Option<String>,
    pub clause: Option<String>,
    pub message: String,
    pub categories: Vec<String>,
    pub groups: Vec<String>,
    pub trace: Vec<String>,
}

pub async fn explain(
    _: &Can<op::Explain>,
    g: &Guarded,
    q: &ExplainQuery,
) -> Result<ExplainView, ApiError> {
    let target = blank(&q.target)
        .ok_or_else(|| ApiError::BadRequest("target: give a host name or URL".into()))?;
    let roster_person = match blank(&q.person) {
        None => None,
        Some(username) => Some(
            g.store
                .people()
                .list()
                .await?
                .into_iter()
                .find(|p| p.username == username)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("person: no {username:?} in the roster"))
                })?,
        ),
    };
    let snapshot = g.engine.snapshot();
    let policy = &snapshot.policy;
    let groups = match (&roster_person, blank(&q.group)) {
        (Some(p), _) => group_set(policy, p),
        (None, Some(name)) => {
            let id = policy.group_id(&name).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "group: unknown group {name:?} (groups: {})",
                    policy.all_groups().collect::<Vec<_>>().join(", ")
                ))
            })?;
            let mut set = GroupSet::EMPTY;
            set.insert(id);
            set
        }
        (None, None) => {
            return Err(ApiError::BadRequest(
                "give a person or a group to explain for".into(),
            ));
        }
    };
    let at = match blank(&q.at) {
        None => g.now(),
        Some(text) => policy
            .parse_time(&text)
            .map_err(|e| ApiError::BadRequest(format!("at: {e}")))?,
    };
    let (host, path) = split_target(&target);
    // A host name is letters, digits, dots, hyphens and underscores (or an IDN's
    // non-ASCII letters): control characters, spaces and punctuation are bad input.
    let bad_char = |c: char| {
        c.is_control()
            || c.is_whitespace()
            || (c.is_ascii() && !(c.is_ascii_alphanumeric() || "-._:".contains(c)))
    };
    if host.is_empty() || host.len() > 253 || host.chars().any(bad_char) {
        return Err(ApiError::BadRequest(format!(
            "target: {target:?} has no valid host name (e.g. www.example.org or https://www.example.org/page)"
        )));
    }
    let categories = CategoryMask::from_bits(snapshot.catalog.lookup_url(&target).bits());
    let request = Request {
        identity: Identity::Groups(groups),
        person: roster_person.as_ref().map(|p| p.username.as_str()),
        host: &host,
        path: path.as_deref(),
        categories,
        file_type: None,
    };
    let (d, trace) = policy.explain(&request, &snapshot.live, at);
    Ok(ExplainView {
        target: target.clone(),
        at,
        verdict: d.verdict.as_str().to_string(),
        rule: d.rule.map(|r| r.id.to_string()),
        document: d.document.map(str::to_string),
        clause: d.clause.map(str::to_string),
        message: d.message.to_string(),
        categories: policy
            .category_names(d.categories)
            .into_iter()
            .map(str::to_string)
            .collect(),
        groups: policy
            .group_names(d.groups)
            .into_iter()
            .map(str::to_string)
            .collect(),
        trace: trace.iter().map(|s| policy.describe(s)).collect(),
    })
}

/// `https://host:port/path` -> (host, path).
fn split_target(target: &str) -> (String, Option<String>) {
    let rest = target.split_once("://").map_or(target, |(_, r)| r);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(rest[i..].to_string())),
        None => (rest, None),
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(stripped) = host.strip_prefix('[') {
        stripped.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    (host.to_ascii_lowercase(), path)
}

/// Audit log filters.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries by this actor.
    pub actor: Option<String>,
    /// Only entries whose action starts with this (e.g. `signin`, `activity.view`).
    pub action: Option<String>,
    /// How many of the newest entries to look through (default 200, at most 5000).
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditView {
    /// Whether the whole chain verified.
    pub chain_ok: bool,
    pub entries_checked: i64,
    pub head: String,
    /// The first problem, in words.
    pub problem: Option<String>,
    pub entries: Vec<AuditEntryView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntryView {
    pub seq: i64,
    #[schema(value_type = String)]
    pub at: jiff::Timestamp,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: String,
}

pub async fn audit(
    _: &Can<op::ViewAudit>,
    g: &Guarded,
    q: &AuditQuery,
) -> Result<AuditView, ApiError> {
    let limit = q.limit.unwrap_or(200);
    if !(1..=5_000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit: {limit} is out of range (1 to 5000)"
        )));
    }
    let report = g.store.audit().verify(None).await?;
    let actor = blank(&q.actor);
    let action = blank(&q.action);
    let mut entries: Vec<AuditEntryView> = g
        .store
        .audit()
        .recent(limit)
        .await?
        .into_iter()
        .filter(|e| actor.as_ref().is_none_or(|a| &e.actor == a))
        .filter(|e| {
            action
                .as_ref()
                .is_none_or(|a| e.action.starts_with(a.as_str()))
        })
        .map(|e| AuditEntryView {
            seq: e.seq,
            at: e.at,
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            details: e.details,
        })
        .collect();
    entries.reverse();
    Ok(AuditView {
        chain_ok: report.ok(),
        entries_checked: report.entries,
        head: report.head,
        problem: report.problem.map(|p| p.to_string()),
        entries,
    })
}
