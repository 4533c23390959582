//! Safeguarding case work: sanctions (a person's internet, email or network access, or
//! one site, withdrawn until a time), incidents with their chronology, and investigations
//! (the only way to read the content of someone's activity). Every change is audited in
//! the same call; the engine reads the sanctions in force with the other live exceptions.

use crate::BeginWrite as _;
use serde::Serialize;

use crate::{Store, StoreError, ts_to_us, us_to_ts, with_pool};

/// The kinds of sanction.
pub const SANCTION_KINDS: &[&str] = &["internet", "email", "network", "site"];
/// The kinds of incident action.
pub const ACTION_KINDS: &[&str] = &[
    "note",
    "interview",
    "parents-informed",
    "referral-police",
    "referral-social-care",
    "sanction",
    "outcome",
];

/// A sanction as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SanctionRow {
    pub id: i64,
    pub person: String,
    /// `internet`, `email`, `network` or `site`.
    pub kind: String,
    /// The site, for kind `site`.
    pub target: Option<String>,
    pub until: jiff::Timestamp,
    pub reason: String,
    /// The policy clause it cites (e.g. 8.1.1 for a social media site), when given.
    pub clause: Option<String>,
    pub incident: Option<i64>,
    pub created_by: String,
    pub created: jiff::Timestamp,
    pub ended: Option<jiff::Timestamp>,
    pub ended_why: Option<String>,
}

/// A new sanction.
#[derive(Debug, Clone)]
pub struct NewSanction<'a> {
    pub person: &'a str,
    pub kind: &'a str,
    pub target: Option<&'a str>,
    pub until: jiff::Timestamp,
    pub reason: &'a str,
    pub clause: Option<&'a str>,
    pub incident: Option<i64>,
}

/// An incident (a case) as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    pub id: i64,
    pub person: String,
    pub year_group: Option<String>,
    /// About a member of staff: the headteacher's alone.
    pub staff_case: bool,
    pub title: String,
    pub alert: Option<i64>,
    pub assigned_to: Option<String>,
    /// `open` or `closed`.
    pub status: String,
    pub outcome: Option<String>,
    pub opened_by: String,
    pub opened: jiff::Timestamp,
    pub closed: Option<jiff::Timestamp>,
}

/// One entry of an incident's chronology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncidentAction {
    pub kind: String,
    pub details: String,
    pub by: String,
    pub at: jiff::Timestamp,
}

/// A new incident.
#[derive(Debug, Clone)]
pub struct NewIncident<'a> {
    pub person: &'a str,
    pub year_group: Option<&'a str>,
    pub staff_case: bool,
    pub title: &'a str,
    pub alert: Option<i64>,
    pub assigned_to: Option<&'a str>,
}

/// An investigation: who may read whose content, for what, over which time, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Investigation {
    pub id: i64,
    pub person: String,
    pub purpose: String,
    pub from: jiff::Timestamp,
    pub to: jiff::Timestamp,
    pub until: jiff::Timestamp,
    pub authorised_by: String,
    pub created: jiff::Timestamp,
    pub ended: Option<jiff::Timestamp>,
}

/// Sanctions, incidents and investigations; from [`Store::safeguarding`].
pub struct Safeguarding<'a> {
    pub(crate) store: &'a Store,
}

type SanctionTuple = (
    i64,
    String,
    String,
    Option<String>,
    i64,
    String,
    Option<String>,
    Option<i64>,
    String,
    i64,
    Option<i64>,
    Option<String>,
);
const SANCTION_COLUMNS: &str = "SELECT id, person, kind, target, until_us, reason, clause, incident_id, \
     created_by, created_us, ended_us, ended_why FROM sanctions";

fn to_sanction(r: SanctionTuple) -> Result<SanctionRow, StoreError> {
    Ok(SanctionRow {
        id: r.0,
        person: r.1,
        kind: r.2,
        target: r.3,
        until: us_to_ts(r.4)?,
        reason: r.5,
        clause: r.6,
        incident: r.7,
        created_by: r.8,
        created: us_to_ts(r.9)?,
        ended: r.10.map(us_to_ts).transpose()?,
        ended_why: r.11,
    })
}

#[derive(sqlx::FromRow)]
struct IncidentRecord {
    id: i64,
    person: String,
    year_group: Option<String>,
    staff_case: bool,
    title: String,
    alert_id: Option<i64>,
    assigned_to: Option<String>,
    status: String,
    outcome: Option<String>,
    opened_by: String,
    opened_us: i64,
    closed_us: Option<i64>,
}

const INCIDENT_COLUMNS: &str = "SELECT id, person, year_group, staff_case, title, alert_id, \
     assigned_to, status, outcome, opened_by, opened_us, closed_us FROM incidents";

impl IncidentRecord {
    fn into_incident(self) -> Result<Incident, StoreError> {
        Ok(Incident {
            id: self.id,
            person: self.person,
            year_group: self.year_group,
            staff_case: self.staff_case,
            title: self.title,
            alert: self.alert_id,
            assigned_to: self.assigned_to,
            status: self.status,
            outcome: self.outcome,
            opened_by: self.opened_by,
            opened: us_to_ts(self.opened_us)?,
            closed: self.closed_us.map(us_to_ts).transpose()?,
        })
    }
}

type InvestigationTuple = (i64, String, String, i64, i64, i64, String, i64, Option<i64>);
const INVESTIGATION_COLUMNS: &str = "SELECT id, person, purpose, from_us, to_us, until_us, \
     authorised_by, created_us, ended_us FROM investigations";

fn to_investigation(r: InvestigationTuple) -> Result<Investigation, StoreError> {
    Ok(Investigation {
        id: r.0,
        person: r.1,
        purpose: r.2,
        from: us_to_ts(r.3)?,
        to: us_to_ts(r.4)?,
        until: us_to_ts(r.5)?,
        authorised_by: r.6,
        created: us_to_ts(r.7)?,
        ended: r.8.map(us_to_ts).transpose()?,
    })
}

fn not_blank<'t>(field: &str, text: &'t str, max: usize) -> Result<&'t str, StoreError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(StoreError::Invalid(format!("{field}: give it")));
    }
    if text.chars().count() > max {
        return Err(StoreError::Invalid(format!(
            "{field}: at most {max} characters"
        )));
    }
    Ok(text)
}

impl Safeguarding<'_> {
    async fn person_exists(&self, person: &str) -> Result<(), StoreError> {
        let found: Option<i64> = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar("SELECT id FROM people WHERE username = $1")
                .bind(person)
                .fetch_optional(p)
                .await?
        });
        found
            .map(|_| ())
            .ok_or_else(|| StoreError::UnknownUser(person.to_string()))
    }

    /// Impose a sanction (audited, action `sanction.create`); it reaches the engine with
    /// the next read of what is in force.
    pub async fn sanction(
        &self,
        actor: &str,
        new: &NewSanction<'_>,
        now: jiff::Timestamp,
    ) -> Result<i64, StoreError> {
        if !SANCTION_KINDS.contains(&new.kind) {
            return Err(StoreError::Invalid(format!(
                "kind: {:?} is not one of {}",
                new.kind,
                SANCTION_KINDS.join(", ")
            )));
        }
        let target = new.target.map(str::trim).filter(|t| !t.is_empty());
        match (new.kind, target) {
            ("site", None) => {
                return Err(StoreError::Invalid(
                    "target: a site sanction names the site (e.g. www.tiktok.com)".into(),
                ));
            }
            (kind, Some(_)) if kind != "site" => {
                return Err(StoreError::Invalid(format!(
                    "target: only a site sanction names a site, not {kind}"
                )));
            }
            _ => {}
        }
        if new.until <= now {
            return Err(StoreError::Invalid(format!(
                "until: {} is not in the future",
                new.until
            )));
        }
        let reason = not_blank("reason", new.reason, 2000)?;
        self.person_exists(new.person).await?;
        if let Some(incident) = new.incident {
            self.incident(incident).await?;
        }
        let id: i64 = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar(
                "INSERT INTO sanctions (person, kind, target, until_us, reason, incident_id, created_by, created_us, clause) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            )
            .bind(new.person)
            .bind(new.kind)
            .bind(target)
            .bind(ts_to_us(new.until))
            .bind(reason)
            .bind(new.incident)
            .bind(actor)
            .bind(ts_to_us(now))
            .bind(new.clause.map(str::trim).filter(|c| !c.is_empty()))
            .fetch_one(p)
            .await?
        });
        if let Some(incident) = new.incident {
            let what = format!(
                "{} sanction until {}{}: {reason}",
                new.kind,
                new.until,
                target.map(|t| format!(" ({t})")).unwrap_or_default()
            );
            self.insert_action(incident, "sanction", &what, actor, now)
                .await?;
        }
        self.store
            .audit()
            .append(
                actor,
                "sanction.create",
                new.person,
                &serde_json::json!({
                    "sanction": id, "kind": new.kind, "target": target,
                    "until": new.until.to_string(), "reason": reason, "incident": new.incident,
                }),
                now,
            )
            .await?;
        Ok(id)
    }

    /// Sanctions in force at `now` (not ended, not past their end).
    pub async fn sanctions_in_force(
        &self,
        now: jiff::Timestamp,
    ) -> Result<Vec<SanctionRow>, StoreError> {
        let sql =
            format!("{SANCTION_COLUMNS} WHERE ended_us IS NULL AND until_us > $1 ORDER BY id");
        let rows: Vec<SanctionTuple> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(&sql).bind(ts_to_us(now)).fetch_all(p).await?
        });
        rows.into_iter().map(to_sanction).collect()
    }

    /// Sanctions, newest first: in force only, or all (of one person when given).
    pub async fn sanctions(
        &self,
        person: Option<&str>,
        in_force_at: Option<jiff::Timestamp>,
    ) -> Result<Vec<SanctionRow>, StoreError> {
        let mut sql = format!("{SANCTION_COLUMNS} WHERE ($1 IS NULL OR person = $1)");
        if in_force_at.is_some() {
            sql.push_str(" AND ended_us IS NULL AND until_us > $2");
        }
        sql.push_str(" ORDER BY created_us DESC, id DESC LIMIT 1000");
        let rows: Vec<SanctionTuple> = with_pool!(self.store.pool(), p => {
            let q = sqlx::query_as(&sql).bind(person);
            match in_force_at {
                Some(now) => q.bind(ts_to_us(now)).fetch_all(p).await?,
                None => q.fetch_all(p).await?,
            }
        });
        rows.into_iter().map(to_sanction).collect()
    }

    pub async fn sanction_by_id(&self, id: i64) -> Result<SanctionRow, StoreError> {
        let sql = format!("{SANCTION_COLUMNS} WHERE id = $1");
        let row: Option<SanctionTuple> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(&sql).bind(id).fetch_optional(p).await?
        });
        row.map(to_sanction)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("no sanction {id}")))
    }

    /// End a sanction early (audited, `sanction.revoke`). One already ended is an error.
    pub async fn revoke_sanction(
        &self,
        actor: &str,
        id: i64,
        now: jiff::Timestamp,
    ) -> Result<SanctionRow, StoreError> {
        let changed = with_pool!(self.store.pool(), p => {
            sqlx::query(
                "UPDATE sanctions SET ended_us = $1, ended_why = 'revoked' \
                 WHERE id = $2 AND ended_us IS NULL AND until_us > $1",
            )
            .bind(ts_to_us(now))
            .bind(id)
            .execute(p)
            .await?
            .rows_affected()
        });
        let row = self.sanction_by_id(id).await?;
        if changed == 0 {
            return Err(StoreError::Invalid(format!(
                "sanction {id} is not in force (it ended {})",
                row.ended.unwrap_or(row.until)
            )));
        }
        self.store
            .audit()
            .append(
                actor,
                "sanction.revoke",
                &row.person,
                &serde_json::json!({ "sanction": id }),
                now,
            )
            .await?;
        Ok(row)
    }

    /// Mark sanctions past their end as expired, each audited once (`sanction.expire`).
    pub async fn expire_sanctions(&self, now: jiff::Timestamp) -> Result<u64, StoreError> {
        let now_us = ts_to_us(now);
        // Most calls find nothing: a plain read first, so a follower polling this takes
        // the write lock only when a sanction has ended.
        let due: i64 = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM sanctions WHERE ended_us IS NULL AND until_us <= $1")
                .bind(now_us)
                .fetch_one(p)
                .await?
        });
        if due == 0 {
            return Ok(0);
        }
        let ended: Vec<(i64, String)> = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let ended: Vec<(i64, String)> = sqlx::query_as(
                "SELECT id, person FROM sanctions WHERE ended_us IS NULL AND until_us <= $1",
            )
            .bind(now_us)
            .fetch_all(&mut *tx)
            .await?;
            if !ended.is_empty() {
                sqlx::query(
                    "UPDATE sanctions SET ended_us = until_us, ended_why = 'expired' \
                     WHERE ended_us IS NULL AND until_us <= $1",
                )
                .bind(now_us)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            ended
        });
        for (id, person) in &ended {
            self.store
                .audit()
                .append(
                    "hallpass",
                    "sanction.expire",
                    person,
                    &serde_json::json!({ "sanction": id }),
                    now,
                )
                .await?;
        }
        Ok(ended.len() as u64)
    }

    /// Open an incident (audited, `incident.open`).
    pub async fn open_incident(
        &self,
        actor: &str,
        new: &NewIncident<'_>,
        now: jiff::Timestamp,
    ) -> Result<i64, StoreError> {
        let title = not_blank("title", new.title, 500)?;
        self.person_exists(new.person).await?;
        let id: i64 = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar(
                "INSERT INTO incidents (person, year_group, staff_case, title, alert_id, assigned_to, \
                 status, opened_by, opened_us) VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8) RETURNING id",
            )
            .bind(new.person)
            .bind(new.year_group)
            .bind(new.staff_case)
            .bind(title)
            .bind(new.alert)
            .bind(new.assigned_to)
            .bind(actor)
            .bind(ts_to_us(now))
            .fetch_one(p)
            .await?
        });
        self.store
            .audit()
            .append(
                actor,
                "incident.open",
                new.person,
                &serde_json::json!({
                    "incident": id, "title": title, "alert": new.alert,
                    "assigned_to": new.assigned_to,
                }),
                now,
            )
            .await?;
        Ok(id)
    }

    pub async fn incident(&self, id: i64) -> Result<Incident, StoreError> {
        let sql = format!("{INCIDENT_COLUMNS} WHERE id = $1");
        let row: Option<IncidentRecord> = with_pool!(self.store.pool(), p => {
            sqlx::query_as::<_, IncidentRecord>(&sql).bind(id).fetch_optional(p).await?
        });
        row.ok_or_else(|| StoreError::NotFound(format!("no incident {id}")))?
            .into_incident()
    }

    /// Incidents, newest first (the caller filters by what the reader may see).
    pub async fn incidents(&self, open_only: bool) -> Result<Vec<Incident>, StoreError> {
        let sql = format!(
            "{INCIDENT_COLUMNS} {} ORDER BY opened_us DESC, id DESC LIMIT 1000",
            if open_only {
                "WHERE status = 'open'"
            } else {
                ""
            }
        );
        let rows: Vec<IncidentRecord> = with_pool!(self.store.pool(), p => {
            sqlx::query_as::<_, IncidentRecord>(&sql).fetch_all(p).await?
        });
        rows.into_iter()
            .map(IncidentRecord::into_incident)
            .collect()
    }

    /// An incident's chronology, oldest first.
    pub async fn actions(&self, incident: i64) -> Result<Vec<IncidentAction>, StoreError> {
        let rows: Vec<(String, String, String, i64)> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(
                "SELECT kind, details, by_whom, at_us FROM incident_actions \
                 WHERE incident_id = $1 ORDER BY at_us, id",
            )
            .bind(incident)
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(IncidentAction {
                    kind: r.0,
                    details: r.1,
                    by: r.2,
                    at: us_to_ts(r.3)?,
                })
            })
            .collect()
    }

    async fn insert_action(
        &self,
        incident: i64,
        kind: &str,
        details: &str,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        with_pool!(self.store.pool(), p => {
            sqlx::query(
                "INSERT INTO incident_actions (incident_id, kind, details, by_whom, at_us) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(incident)
            .bind(kind)
            .bind(details)
            .bind(actor)
            .bind(ts_to_us(now))
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Record an action in an incident's chronology (audited, `incident.action`); kind
    /// `outcome` closes it.
    pub async fn record_action(
        &self,
        actor: &str,
        incident: i64,
        kind: &str,
        details: &str,
        now: jiff::Timestamp,
    ) -> Result<Incident, StoreError> {
        if !ACTION_KINDS.contains(&kind) || kind == "sanction" {
            return Err(StoreError::Invalid(format!(
                "kind: {kind:?} is not one of note, interview, parents-informed, \
                 referral-police, referral-social-care, outcome (a sanction is recorded by \
                 imposing it with its incident)"
            )));
        }
        let details = not_blank("details", details, 4000)?;
        let case = self.incident(incident).await?;
        if case.status != "open" {
            return Err(StoreError::Invalid(format!(
                "incident {incident} is closed"
            )));
        }
        self.insert_action(incident, kind, details, actor, now)
            .await?;
        if kind == "outcome" {
            with_pool!(self.store.pool(), p => {
                sqlx::query("UPDATE incidents SET status = 'closed', outcome = $1, closed_us = $2 WHERE id = $3")
                    .bind(details)
                    .bind(ts_to_us(now))
                    .bind(incident)
                    .execute(p)
                    .await?
                    .rows_affected()
            });
        }
        self.store
            .audit()
            .append(
                actor,
                "incident.action",
                &case.person,
                &serde_json::json!({ "incident": incident, "kind": kind }),
                now,
            )
            .await?;
        self.incident(incident).await
    }

    /// Authorise an investigation (audited, `investigation.open`).
    #[allow(clippy::too_many_arguments)] // each is one field of the authorisation
    pub async fn open_investigation(
        &self,
        actor: &str,
        person: &str,
        purpose: &str,
        from: jiff::Timestamp,
        to: jiff::Timestamp,
        until: jiff::Timestamp,
        now: jiff::Timestamp,
    ) -> Result<i64, StoreError> {
        let purpose = not_blank("purpose", purpose, 2000)?;
        if from >= to {
            return Err(StoreError::Invalid(format!(
                "from/to: {from} is not before {to}"
            )));
        }
        if until <= now {
            return Err(StoreError::Invalid(format!(
                "until: {until} is not in the future"
            )));
        }
        self.person_exists(person).await?;
        let id: i64 = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar(
                "INSERT INTO investigations (person, purpose, from_us, to_us, until_us, authorised_by, created_us) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(person)
            .bind(purpose)
            .bind(ts_to_us(from))
            .bind(ts_to_us(to))
            .bind(ts_to_us(until))
            .bind(actor)
            .bind(ts_to_us(now))
            .fetch_one(p)
            .await?
        });
        self.store
            .audit()
            .append(
                actor,
                "investigation.open",
                person,
                &serde_json::json!({
                    "investigation": id, "purpose": purpose, "from": from.to_string(),
                    "to": to.to_string(), "until": until.to_string(),
                }),
                now,
            )
            .await?;
        Ok(id)
    }

    /// The investigation of `person` authorised by `reader` open at `now`, if any.
    pub async fn open_investigation_for(
        &self,
        reader: &str,
        person: &str,
        now: jiff::Timestamp,
    ) -> Result<Option<Investigation>, StoreError> {
        let sql = format!(
            "{INVESTIGATION_COLUMNS} WHERE person = $1 AND authorised_by = $2 AND ended_us IS NULL \
             AND until_us > $3 ORDER BY until_us DESC LIMIT 1"
        );
        let row: Option<InvestigationTuple> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(&sql).bind(person).bind(reader).bind(ts_to_us(now)).fetch_optional(p).await?
        });
        row.map(to_investigation).transpose()
    }

    /// Investigations, newest first (one person's when given).
    pub async fn investigations(
        &self,
        person: Option<&str>,
    ) -> Result<Vec<Investigation>, StoreError> {
        let sql = format!(
            "{INVESTIGATION_COLUMNS} WHERE ($1 IS NULL OR person = $1) ORDER BY created_us DESC, id DESC LIMIT 1000"
        );
        let rows: Vec<InvestigationTuple> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(&sql).bind(person).fetch_all(p).await?
        });
        rows.into_iter().map(to_investigation).collect()
    }

    /// The content recorded about `person` between `from` and `to` (search terms, message
    /// text, full URLs): (decision id, kind, time, content), oldest first. Gating is the
    /// caller's: this is read only inside an open investigation.
    pub async fn content_of(
        &self,
        person: &str,
        from: jiff::Timestamp,
        to: jiff::Timestamp,
    ) -> Result<Vec<(i64, String, jiff::Timestamp, String)>, StoreError> {
        let rows: Vec<(i64, String, i64, String)> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(
                "SELECT c.event_id, c.kind, c.at_us, c.content FROM event_content c \
                 JOIN decisions d ON d.id = c.event_id \
                 WHERE d.person = $1 AND c.at_us >= $2 AND c.at_us < $3 ORDER BY c.at_us, c.event_id LIMIT 10000",
            )
            .bind(person)
            .bind(ts_to_us(from))
            .bind(ts_to_us(to))
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|r| Ok((r.0, r.1, us_to_ts(r.2)?, r.3)))
            .collect()
    }
}
