//! Live exceptions people make: access requests from the block page, the grants an
//! approval opens, warnings acknowledged with "continue", and teacher overrides. Every
//! change is audited in the same call. The engine reads what is open ([`Exceptions::open`])
//! every quarter second and swaps it into the snapshot, so a click reaches DNS within a
//! second; what ends ([`Exceptions::expire`]) is marked and audited once.

use crate::BeginWrite as _;
use serde::Serialize;

use crate::{Store, StoreError, ts_to_us, us_to_ts, with_pool};

mod decisions;
mod live;

pub use decisions::DecisionRef;

/// An access request as filed and decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessRequest {
    pub id: i64,
    pub person: String,
    pub client_ip: String,
    /// The site (host) or URL asked for.
    pub target: String,
    pub reason: String,
    /// The rule that blocked it, when the block page knew it.
    pub rule: Option<String>,
    /// A safeguarding-alert rule: reviewed by the DSL, never by ICT support.
    pub safeguarding: bool,
    /// `pending`, `approved` or `denied`.
    pub status: String,
    pub created: jiff::Timestamp,
    pub decided_by: Option<String>,
    pub decided: Option<jiff::Timestamp>,
    /// The reason for a denial, or the approval's summary.
    pub decision_note: Option<String>,
    pub grant_id: Option<i64>,
    /// For "until the policy changes": the policy-file change to review.
    pub draft: Option<String>,
}

/// What a new request says.
#[derive(Debug, Clone)]
pub struct NewRequest<'a> {
    pub person: &'a str,
    pub client_ip: &'a str,
    pub target: &'a str,
    pub reason: &'a str,
    pub rule: Option<&'a str>,
    pub safeguarding: bool,
}

/// How many requests one address may file per window, and the window.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimit {
    pub per_client: i64,
    pub window: std::time::Duration,
}

impl Default for RequestLimit {
    fn default() -> Self {
        RequestLimit {
            per_client: 5,
            window: std::time::Duration::from_secs(10 * 60),
        }
    }
}

/// Whom a grant opens a site for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "scope", content = "subject", rename_all = "snake_case")]
pub enum GrantScope {
    Person(String),
    Group(String),
    Everyone,
}

impl GrantScope {
    fn columns(&self) -> (&'static str, &str) {
        match self {
            GrantScope::Person(p) => ("person", p),
            GrantScope::Group(g) => ("group", g),
            GrantScope::Everyone => ("everyone", ""),
        }
    }

    fn from_columns(scope: &str, subject: String) -> Result<GrantScope, StoreError> {
        match scope {
            "person" => Ok(GrantScope::Person(subject)),
            "group" => Ok(GrantScope::Group(subject)),
            "everyone" => Ok(GrantScope::Everyone),
            other => Err(StoreError::Corrupt(format!("grant scope {other:?}"))),
        }
    }
}

/// An open or ended grant (kind `grant`) or warning acknowledgement (kind `ack`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantRow {
    pub id: i64,
    pub kind: String,
    #[serde(flatten)]
    pub scope: GrantScope,
    /// A domain (and its subdomains), or `domain/path` for a URL prefix.
    pub target: String,
    /// `None`: until the policy changes.
    pub until: Option<jiff::Timestamp>,
    pub request_id: Option<i64>,
    pub created_by: String,
    pub created: jiff::Timestamp,
    pub ended: Option<jiff::Timestamp>,
    pub ended_why: Option<String>,
}

/// A teacher override of one rule for one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverrideRow {
    pub id: i64,
    pub group: String,
    pub rule: String,
    pub until: jiff::Timestamp,
    pub created_by: String,
    pub created: jiff::Timestamp,
    pub ended: Option<jiff::Timestamp>,
    pub ended_why: Option<String>,
}

/// Everything in force: what the engine turns into the snapshot's `Live`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenExceptions {
    pub grants: Vec<GrantRow>,
    pub acknowledged: Vec<GrantRow>,
    pub overrides: Vec<OverrideRow>,
    /// Sanctions in force (`store::safeguarding`).
    pub sanctions: Vec<crate::safeguarding::SanctionRow>,
}

/// An approval: who the grant is for, what it opens, until when.
#[derive(Debug, Clone)]
pub struct Approval {
    pub scope: GrantScope,
    pub target: String,
    /// `None`: until the policy changes.
    pub until: Option<jiff::Timestamp>,
    pub draft: Option<String>,
}

/// Live exceptions; from [`Store::exceptions`].
pub struct Exceptions<'a> {
    pub(crate) store: &'a Store,
}

const REQUEST_COLUMNS: &str = "SELECT id, person, client_ip, target, reason, rule, safeguarding, status, \
     created_us, decided_by, decided_us, decision_note, grant_id, draft FROM access_requests";
const GRANT_COLUMNS: &str = "SELECT id, kind, scope, subject, target, until_us, request_id, created_by, \
     created_us, ended_us, ended_why FROM grants";
const OVERRIDE_COLUMNS: &str = "SELECT id, group_name, rule, until_us, created_by, created_us, ended_us, \
     ended_why FROM overrides";

type RequestTuple = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    bool,
    String,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
);
type GrantTuple = (
    i64,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    String,
    i64,
    Option<i64>,
    Option<String>,
);
type OverrideTuple = (
    i64,
    String,
    String,
    i64,
    String,
    i64,
    Option<i64>,
    Option<String>,
);

fn ts(us: i64) -> Result<jiff::Timestamp, StoreError> {
    us_to_ts(us)
}

fn opt_ts(us: Option<i64>) -> Result<Option<jiff::Timestamp>, StoreError> {
    us.map(ts).transpose()
}

fn to_request(r: RequestTuple) -> Result<AccessRequest, StoreError> {
    Ok(AccessRequest {
        id: r.0,
        person: r.1,
        client_ip: r.2,
        target: r.3,
        reason: r.4,
        rule: r.5,
        safeguarding: r.6,
        status: r.7,
        created: ts(r.8)?,
        decided_by: r.9,
        decided: opt_ts(r.10)?,
        decision_note: r.11,
        grant_id: r.12,
        draft: r.13,
    })
}

fn to_grant(r: GrantTuple) -> Result<GrantRow, StoreError> {
    Ok(GrantRow {
        id: r.0,
        kind: r.1,
        scope: GrantScope::from_columns(&r.2, r.3)?,
        target: r.4,
        until: opt_ts(r.5)?,
        request_id: r.6,
        created_by: r.7,
        created: ts(r.8)?,
        ended: opt_ts(r.9)?,
        ended_why: r.10,
    })
}

fn to_override(r: OverrideTuple) -> Result<OverrideRow, StoreError> {
    Ok(OverrideRow {
        id: r.0,
        group: r.1,
        rule: r.2,
        until: ts(r.3)?,
        created_by: r.4,
        created: ts(r.5)?,
        ended: opt_ts(r.6)?,
        ended_why: r.7,
    })
}

/// (id, kind, subject, target) of a grant that ended.
type EndedGrant = (i64, String, String, String);
/// (id, group, rule) of an override that ended.
type EndedOverride = (i64, String, String);

/// Refused because one address filed too many requests in the window.
pub const RATE_LIMITED: &str = "too many access requests from this address";

impl Exceptions<'_> {
    /// File a request (audited as `request.file`). More than `limit.per_client` from one
    /// address within `limit.window` is refused with [`StoreError::Invalid`] starting
    /// with [`RATE_LIMITED`], and nothing is stored.
    pub async fn file_request(
        &self,
        request: &NewRequest<'_>,
        limit: RequestLimit,
        now: jiff::Timestamp,
    ) -> Result<i64, StoreError> {
        if request.target.trim().is_empty() || request.reason.trim().is_empty() {
            return Err(StoreError::Invalid(
                "a request needs a site and a reason".into(),
            ));
        }
        let now_us = ts_to_us(now);
        let since = now_us - i64::try_from(limit.window.as_micros()).unwrap_or(i64::MAX);
        let id: Option<i64> = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let recent: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM access_requests WHERE client_ip = $1 AND created_us > $2",
            )
            .bind(request.client_ip)
            .bind(since)
            .fetch_one(&mut *tx)
            .await?;
            if recent >= limit.per_client {
                None
            } else {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO access_requests (person, client_ip, target, reason, rule, safeguarding, \
                     status, created_us) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7) RETURNING id",
                )
                .bind(request.person)
                .bind(request.client_ip)
                .bind(request.target)
                .bind(request.reason)
                .bind(request.rule)
                .bind(request.safeguarding)
                .bind(now_us)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Some(id)
            }
        });
        let Some(id) = id else {
            return Err(StoreError::Invalid(format!(
                "{RATE_LIMITED} ({} in {} minutes): try again later",
                limit.per_client,
                limit.window.as_secs() / 60
            )));
        };
        let details = serde_json::json!({
            "request": id, "target": request.target, "client_ip": request.client_ip,
            "rule": request.rule, "safeguarding": request.safeguarding,
        });
        self.store
            .audit()
            .append(
                request.person,
                "request.file",
                request.person,
                &details,
                now,
            )
            .await?;
        Ok(id)
    }

    /// Requests, newest first: all (`status` None) or with one status; only one person's
    /// with `person`; `safeguarding` Some(x) keeps only those that are (or are not) for
    /// safeguarding rules.
    pub async fn requests(
        &self,
        status: Option<&str>,
        person: Option<&str>,
        safeguarding: Option<bool>,
        limit: i64,
    ) -> Result<Vec<AccessRequest>, StoreError> {
        let sql = format!(
            "{REQUEST_COLUMNS} WHERE ($1 = '' OR status = $1) AND ($2 = '' OR person = $2) \
             AND ($3 = 2 OR safeguarding = ($3 = 1)) ORDER BY id DESC LIMIT $4"
        );
        let filter: i64 = match safeguarding {
            None => 2,
            Some(true) => 1,
            Some(false) => 0,
        };
        let rows: Vec<RequestTuple> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(&sql)
                .bind(status.unwrap_or(""))
                .bind(person.unwrap_or(""))
                .bind(filter)
                .bind(limit)
                .fetch_all(p)
                .await?
        });
        rows.into_iter().map(to_request).collect()
    }

    pub async fn request(&self, id: i64) -> Result<Option<AccessRequest>, StoreError> {
        let sql = format!("{REQUEST_COLUMNS} WHERE id = $1");
        let row: Option<RequestTuple> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(&sql).bind(id).fetch_optional(p).await?
        });
        row.map(to_request).transpose()
    }

    /// Approve pending request `id`: opens a grant and marks the request approved, in one
    /// transaction (audited as `request.approve`). A request that is not pending is
    /// refused and nothing changes.
    pub async fn approve(
        &self,
        id: i64,
        approval: &Approval,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<GrantRow, StoreError> {
        if approval.until.is_some_and(|until| until <= now) {
            return Err(StoreError::Invalid(
                "the grant would end before it starts: give a time in the future".into(),
            ));
        }
        let now_us = ts_to_us(now);
        let (scope, subject) = approval.scope.columns();
        let until_us = approval.until.map(ts_to_us);
        let note = match approval.until {
            Some(until) => format!("approved for {} until {until}", describe(&approval.scope)),
            None => format!(
                "approved for {} until the policy changes",
                describe(&approval.scope)
            ),
        };
        let grant_id: Option<i64> = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let updated = sqlx::query(
                "UPDATE access_requests SET status = 'approved', decided_by = $1, decided_us = $2, \
                 decision_note = $3, draft = $4 WHERE id = $5 AND status = 'pending'",
            )
            .bind(actor)
            .bind(now_us)
            .bind(&note)
            .bind(approval.draft.as_deref())
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                None
            } else {
                let grant: i64 = sqlx::query_scalar(
                    "INSERT INTO grants (kind, scope, subject, target, until_us, request_id, created_by, \
                     created_us) VALUES ('grant', $1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(scope)
                .bind(subject)
                .bind(&approval.target)
                .bind(until_us)
                .bind(id)
                .bind(actor)
                .bind(now_us)
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query("UPDATE access_requests SET grant_id = $1 WHERE id = $2")
                    .bind(grant)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Some(grant)
            }
        });
        let Some(grant_id) = grant_id else {
            return Err(self.not_pending(id).await);
        };
        let requester = self
            .request(id)
            .await?
            .map(|r| r.person)
            .unwrap_or_default();
        let details = serde_json::json!({
            "request": id, "grant": grant_id, "scope": scope, "subject": subject,
            "target": approval.target, "until": approval.until.map(|t| t.to_string()),
        });
        self.store
            .audit()
            .append(actor, "request.approve", &requester, &details, now)
            .await?;
        Ok(GrantRow {
            id: grant_id,
            kind: "grant".into(),
            scope: approval.scope.clone(),
            target: approval.target.clone(),
            until: approval.until,
            request_id: Some(id),
            created_by: actor.into(),
            created: now,
            ended: None,
            ended_why: None,
        })
    }

    /// Deny pending request `id` with `reason` (audited as `request.deny`).
    pub async fn deny(
        &self,
        id: i64,
        reason: &str,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        if reason.trim().is_empty() {
            return Err(StoreError::Invalid("a denial needs a reason".into()));
        }
        let updated = with_pool!(self.store.pool(), p => {
            sqlx::query(
                "UPDATE access_requests SET status = 'denied', decided_by = $1, decided_us = $2, \
                 decision_note = $3 WHERE id = $4 AND status = 'pending'",
            )
            .bind(actor)
            .bind(ts_to_us(now))
            .bind(reason)
            .bind(id)
            .execute(p)
            .await?
            .rows_affected()
        });
        if updated == 0 {
            return Err(self.not_pending(id).await);
        }
        let requester = self
            .request(id)
            .await?
            .map(|r| r.person)
            .unwrap_or_default();
        let details = serde_json::json!({ "request": id, "reason": reason });
        self.store
            .audit()
            .append(actor, "request.deny", &requester, &details, now)
            .await?;
        Ok(())
    }

    async fn not_pending(&self, id: i64) -> StoreError {
        match self.request(id).await {
            Ok(Some(r)) => StoreError::Invalid(format!(
                "request {id} is already {} (by {})",
                r.status,
                r.decided_by.unwrap_or_default()
            )),
            Ok(None) => StoreError::NotFound(format!("no access request {id}")),
            Err(e) => e,
        }
    }
}

fn describe(scope: &GrantScope) -> String {
    match scope {
        GrantScope::Person(p) => format!("person {p}"),
        GrantScope::Group(g) => format!("group {g}"),
        GrantScope::Everyone => "everyone".into(),
    }
}
