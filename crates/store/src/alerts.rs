//! Alerts: a conduct or safeguarding concern about one person, routed to the role that
//! handles it, with a status people move on (new, acknowledged, escalated, closed with an
//! outcome). Whatever raises one (a detector, a follower) gives each occurrence a key;
//! an occurrence already recorded changes nothing, so a check that runs every few
//! seconds over the same evidence raises exactly one alert. Occurrences of the same
//! person and theme within the fold window join the open alert and raise its count.
//! Evidence is metadata (times, addresses, workstations, rule and clause), never content.

use crate::BeginWrite as _;
use serde::Serialize;

use crate::{Store, StoreError, ts_to_us, us_to_ts, with_pool};

/// The statuses an alert moves through. `Closed` needs an outcome.
pub const STATUSES: &[&str] = &["new", "acknowledged", "escalated", "closed"];

/// What raised an alert, once.
#[derive(Debug, Clone)]
pub struct NewAlert<'a> {
    /// The username the alert is about.
    pub person: &'a str,
    /// The pupil's year group, so their head of year sees it.
    pub year_group: Option<&'a str>,
    /// `conduct` or `safeguarding`.
    pub kind: &'a str,
    /// `shared-credentials`, `self-harm`, ...
    pub theme: &'a str,
    /// 1 (low) to 5 (imminent risk).
    pub severity: i64,
    /// The role that handles it (`network_manager`, `dsl`, `head_of_year`, `headteacher`).
    pub route: &'a str,
    pub document: Option<&'a str>,
    pub clause: Option<&'a str>,
    pub summary: &'a str,
    /// What happened, once: a second raise with the same key changes nothing.
    pub key: &'a str,
    /// Metadata only.
    pub evidence: &'a serde_json::Value,
}

/// What [`Alerts::raise`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    /// A new alert.
    New(i64),
    /// Folded into the open alert of that person and theme (its count went up).
    Folded(i64),
    /// That occurrence was recorded before: nothing changed.
    Known(i64),
}

impl Raised {
    pub fn id(self) -> i64 {
        match self {
            Raised::New(id) | Raised::Folded(id) | Raised::Known(id) => id,
        }
    }
}

/// An alert as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub id: i64,
    pub person: String,
    pub year_group: Option<String>,
    pub kind: String,
    pub theme: String,
    pub severity: i64,
    pub route: String,
    pub document: Option<String>,
    pub clause: Option<String>,
    pub summary: String,
    pub status: String,
    pub outcome: Option<String>,
    pub count: i64,
    pub first: jiff::Timestamp,
    pub last: jiff::Timestamp,
    pub updated_by: Option<String>,
    pub updated: Option<jiff::Timestamp>,
}

/// One occurrence of an alert, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Occurrence {
    pub at: jiff::Timestamp,
    pub evidence: serde_json::Value,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter<'a> {
    /// Only these routes (the caller's roles); empty lists none.
    pub routes: &'a [&'a str],
    /// Only alerts not closed.
    pub open_only: bool,
    /// Only this person's.
    pub person: Option<&'a str>,
    /// Only alerts about pupils in these year groups (a head of year's); `None`: all.
    pub year_groups: Option<&'a [String]>,
    pub limit: i64,
}

/// Alerts; from [`Store::alerts`].
pub struct Alerts<'a> {
    pub(crate) store: &'a Store,
}

const ALERT_COLUMNS: &str = "SELECT id, person, year_group, kind, theme, severity, route, document, clause, summary, \
     status, outcome, count, first_us, last_us, updated_by, updated_us FROM alerts";

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: i64,
    person: String,
    year_group: Option<String>,
    kind: String,
    theme: String,
    severity: i64,
    route: String,
    document: Option<String>,
    clause: Option<String>,
    summary: String,
    status: String,
    outcome: Option<String>,
    count: i64,
    first_us: i64,
    last_us: i64,
    updated_by: Option<String>,
    updated_us: Option<i64>,
}

impl AlertRow {
    fn into_alert(self) -> Result<Alert, StoreError> {
        Ok(Alert {
            id: self.id,
            person: self.person,
            year_group: self.year_group,
            kind: self.kind,
            theme: self.theme,
            severity: self.severity,
            route: self.route,
            document: self.document,
            clause: self.clause,
            summary: self.summary,
            status: self.status,
            outcome: self.outcome,
            count: self.count,
            first: us_to_ts(self.first_us)?,
            last: us_to_ts(self.last_us)?,
            updated_by: self.updated_by,
            updated: self.updated_us.map(us_to_ts).transpose()?,
        })
    }
}

impl Alerts<'_> {
    /// Record one occurrence: nothing if its key is known; else it joins the open alert of
    /// the same person and theme whose last occurrence is within `fold` of `now` (count
    /// + 1), or opens a new alert.
    pub async fn raise(
        &self,
        new: &NewAlert<'_>,
        fold: std::time::Duration,
        now: jiff::Timestamp,
    ) -> Result<Raised, StoreError> {
        if !(1..=5).contains(&new.severity) {
            return Err(StoreError::Invalid(format!(
                "alert severity {} is outside 1..5",
                new.severity
            )));
        }
        let now_us = ts_to_us(now);
        let since_us = now_us.saturating_sub(i64::try_from(fold.as_micros()).unwrap_or(i64::MAX));
        let evidence = new.evidence.to_string();
        let raised = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let known: Option<i64> =
                sqlx::query_scalar("SELECT alert_id FROM alert_occurrences WHERE key = $1")
                    .bind(new.key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(id) = known {
                return Ok(Raised::Known(id));
            }
            let open: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM alerts WHERE person = $1 AND theme = $2 AND status <> 'closed' \
                 AND last_us >= $3 ORDER BY last_us DESC LIMIT 1",
            )
            .bind(new.person)
            .bind(new.theme)
            .bind(since_us)
            .fetch_optional(&mut *tx)
            .await?;
            let raised = match open {
                Some(id) => {
                    sqlx::query(
                        "UPDATE alerts SET count = count + 1, last_us = $1, \
                         severity = CASE WHEN severity < $2 THEN $2 ELSE severity END WHERE id = $3",
                    )
                    .bind(now_us)
                    .bind(new.severity)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    Raised::Folded(id)
                }
                None => {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO alerts (person, kind, theme, severity, route, document, clause, \
                         summary, status, count, first_us, last_us, year_group) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'new', 1, $9, $9, $10) RETURNING id",
                    )
                    .bind(new.person)
                    .bind(new.kind)
                    .bind(new.theme)
                    .bind(new.severity)
                    .bind(new.route)
                    .bind(new.document)
                    .bind(new.clause)
                    .bind(new.summary)
                    .bind(now_us)
                    .bind(new.year_group)
                    .fetch_one(&mut *tx)
                    .await?;
                    Raised::New(id)
                }
            };
            sqlx::query(
                "INSERT INTO alert_occurrences (alert_id, key, at_us, evidence) VALUES ($1, $2, $3, $4)",
            )
            .bind(raised.id())
            .bind(new.key)
            .bind(now_us)
            .bind(&evidence)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            raised
        });
        Ok(raised)
    }

    /// Alerts for the given routes, newest first.
    pub async fn list(&self, filter: &AlertFilter<'_>) -> Result<Vec<Alert>, StoreError> {
        if filter.routes.is_empty() {
            return Ok(Vec::new());
        }
        // Routes are fixed role names from the caller's capability, never user text;
        // still bound, one placeholder each.
        let placeholders: Vec<String> = (0..filter.routes.len())
            .map(|i| format!("${}", i + 1))
            .collect();
        let mut sql = format!(
            "{ALERT_COLUMNS} WHERE route IN ({})",
            placeholders.join(", ")
        );
        if filter.open_only {
            sql.push_str(" AND status <> 'closed'");
        }
        let mut next = filter.routes.len() + 1;
        if filter.person.is_some() {
            sql.push_str(&format!(" AND person = ${next}"));
            next += 1;
        }
        let years = filter.year_groups.unwrap_or(&[]);
        if filter.year_groups.is_some() {
            if years.is_empty() {
                return Ok(Vec::new());
            }
            let ph: Vec<String> = (0..years.len()).map(|i| format!("${}", next + i)).collect();
            sql.push_str(&format!(" AND year_group IN ({})", ph.join(", ")));
        }
        sql.push_str(&format!(
            " ORDER BY last_us DESC, id DESC LIMIT {}",
            filter.limit.clamp(1, 1000)
        ));
        let rows: Vec<AlertRow> = with_pool!(self.store.pool(), p => {
            let mut q = sqlx::query_as::<_, AlertRow>(&sql);
            for route in filter.routes {
                q = q.bind(*route);
            }
            if let Some(person) = filter.person {
                q = q.bind(person);
            }
            for year in years {
                q = q.bind(year.as_str());
            }
            q.fetch_all(p).await?
        });
        rows.into_iter().map(AlertRow::into_alert).collect()
    }

    /// One alert and its occurrences (oldest first).
    pub async fn get(&self, id: i64) -> Result<(Alert, Vec<Occurrence>), StoreError> {
        let sql = format!("{ALERT_COLUMNS} WHERE id = $1");
        let (row, occurrences): (Option<AlertRow>, Vec<(i64, String)>) = with_pool!(self.store.pool(), p => {
            let row = sqlx::query_as::<_, AlertRow>(&sql).bind(id).fetch_optional(p).await?;
            let occ = sqlx::query_as(
                "SELECT at_us, evidence FROM alert_occurrences WHERE alert_id = $1 ORDER BY at_us, id",
            )
            .bind(id)
            .fetch_all(p)
            .await?;
            (row, occ)
        });
        let alert = row
            .ok_or_else(|| StoreError::NotFound(format!("no alert {id}")))?
            .into_alert()?;
        let occurrences = occurrences
            .into_iter()
            .map(|(at, evidence)| {
                Ok(Occurrence {
                    at: us_to_ts(at)?,
                    evidence: serde_json::from_str(&evidence)
                        .map_err(|e| StoreError::Corrupt(format!("alert {id} evidence: {e}")))?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((alert, occurrences))
    }

    /// Move an alert to `status` (one of [`STATUSES`]; `closed` needs an outcome), audited
    /// (action `alert.status`, the person as subject).
    pub async fn set_status(
        &self,
        actor: &str,
        id: i64,
        status: &str,
        outcome: Option<&str>,
        now: jiff::Timestamp,
    ) -> Result<Alert, StoreError> {
        if !STATUSES.contains(&status) || status == "new" {
            return Err(StoreError::Invalid(format!(
                "status {status:?}: give acknowledged, escalated or closed"
            )));
        }
        let outcome = outcome.map(str::trim).filter(|o| !o.is_empty());
        if status == "closed" && outcome.is_none() {
            return Err(StoreError::Invalid(
                "outcome: closing an alert needs its outcome (what was found or done)".into(),
            ));
        }
        let changed = with_pool!(self.store.pool(), p => {
            sqlx::query(
                "UPDATE alerts SET status = $1, outcome = COALESCE($2, outcome), updated_by = $3, \
                 updated_us = $4 WHERE id = $5",
            )
            .bind(status)
            .bind(outcome)
            .bind(actor)
            .bind(ts_to_us(now))
            .bind(id)
            .execute(p)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Err(StoreError::NotFound(format!("no alert {id}")));
        }
        let (alert, _) = self.get(id).await?;
        self.store
            .audit()
            .append(
                actor,
                "alert.status",
                &alert.person,
                &serde_json::json!({ "alert": id, "status": status, "outcome": outcome }),
                now,
            )
            .await?;
        Ok(alert)
    }
}

/// A notification email waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxMessage {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub attempts: i64,
}

/// Notification emails; from [`Store::outbox`]. Written where what they tell is written;
/// the mailer follower sends what is due through the school's SMTP relay.
pub struct Outbox<'a> {
    pub(crate) store: &'a Store,
}

impl Outbox<'_> {
    /// Queue one email to `recipient` (about `person`, for export and erasure).
    pub async fn enqueue(
        &self,
        recipient: &str,
        subject: &str,
        body: &str,
        person: Option<&str>,
        now: jiff::Timestamp,
    ) -> Result<i64, StoreError> {
        let now_us = ts_to_us(now);
        let id = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar(
                "INSERT INTO outbox (recipient, subject, body, person, created_us, next_us) \
                 VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
            )
            .bind(recipient)
            .bind(subject)
            .bind(body)
            .bind(person)
            .bind(now_us)
            .fetch_one(p)
            .await?
        });
        Ok(id)
    }

    /// Messages due at `now`, oldest first.
    pub async fn due(
        &self,
        now: jiff::Timestamp,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let rows: Vec<(i64, String, String, String, i64)> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(
                "SELECT id, recipient, subject, body, attempts FROM outbox \
                 WHERE sent_us IS NULL AND next_us <= $1 ORDER BY next_us, id LIMIT $2",
            )
            .bind(ts_to_us(now))
            .bind(limit)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| OutboxMessage {
                id: r.0,
                recipient: r.1,
                subject: r.2,
                body: r.3,
                attempts: r.4,
            })
            .collect())
    }

    /// The relay accepted it.
    pub async fn sent(&self, id: i64, now: jiff::Timestamp) -> Result<(), StoreError> {
        with_pool!(self.store.pool(), p => {
            sqlx::query("UPDATE outbox SET sent_us = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2")
                .bind(ts_to_us(now))
                .bind(id)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// The relay refused or was unreachable: try again at `retry_at`.
    pub async fn failed(
        &self,
        id: i64,
        error: &str,
        retry_at: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        with_pool!(self.store.pool(), p => {
            sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_us = $2 WHERE id = $3")
                .bind(error)
                .bind(ts_to_us(retry_at))
                .bind(id)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Whether a message with this recipient and subject was queued already.
    pub async fn exists(&self, recipient: &str, subject: &str) -> Result<bool, StoreError> {
        let n: i64 = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND subject = $2")
                .bind(recipient)
                .bind(subject)
                .fetch_one(p)
                .await?
        });
        Ok(n > 0)
    }

    /// How many messages wait (not yet sent).
    pub async fn waiting(&self) -> Result<i64, StoreError> {
        let n: i64 = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE sent_us IS NULL").fetch_one(p).await?
        });
        Ok(n)
    }
}
