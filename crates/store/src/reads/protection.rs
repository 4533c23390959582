//! Data protection for one person: erasing what is held about them, and holds.
//!
//! A hold (legal or safeguarding) keeps a person's data: erasure refuses while one is in
//! force, and retention skips the person's rows until it is released. Placing and
//! releasing a hold, and every erasure, write an audit entry naming the actor.
//!
//! Erasure deletes the person's decisions (with their content), DNS visits, hourly
//! activity roll-up and logon sessions, and, when asked, the people row (memberships go with it) and their console
//! account, sessions and sign-in failures. Their `traffic_daily` rows are anonymised, not
//! dropped: folded into the unattributed row (person `''`) of the same day, year group,
//! kind, category and verdict, so the school's totals do not change when one pupil leaves
//! them. The audit log is kept as it is: it is the school's record of what was done (the
//! erasure itself among it) and its chain would break.

use crate::BeginWrite as _;
use std::collections::BTreeMap;

use serde::Serialize;

use super::{Bind, bind_all, delete_batched};
use crate::{Store, StoreError, ts_to_us, us_to_ts, with_pool};

/// A hold as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hold {
    pub id: i64,
    pub person: String,
    pub reason: String,
    pub placed_by: String,
    pub placed: jiff::Timestamp,
    pub released: Option<jiff::Timestamp>,
}

/// What [`Store::erase_person`] does beyond the person's recorded activity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EraseOptions {
    /// Also delete the people row (with memberships) and the console account.
    pub people_row: bool,
}

/// What an erasure deleted, by table (`traffic_daily`: rows anonymised).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EraseReport {
    pub person: String,
    pub rows: BTreeMap<String, u64>,
    pub audit_seq: i64,
}

/// SQL for "this person is under a hold in force", with the username in `$1`.
const HELD: &str = "SELECT COUNT(*) FROM holds WHERE person = $1 AND released_us IS NULL";

/// Fold the person-level `traffic_daily` rows matching `filter` (a condition on the
/// table's columns, using `$n` parameters from `binds`) into the unattributed rows, then
/// delete them: one transaction, returns the rows folded.
pub(crate) async fn fold_traffic(
    store: &Store,
    filter: &str,
    binds: &[Bind<'_>],
) -> Result<u64, StoreError> {
    let fold = format!(
        "INSERT INTO traffic_daily (day, person, year_group, kind, category, verdict, n) \
         SELECT day, '', year_group, kind, category, verdict, CAST(SUM(n) AS BIGINT) \
         FROM traffic_daily WHERE person <> '' AND {filter} \
         GROUP BY day, year_group, kind, category, verdict \
         ON CONFLICT (day, person, year_group, kind, category, verdict) \
         DO UPDATE SET n = traffic_daily.n + excluded.n"
    );
    let delete = format!("DELETE FROM traffic_daily WHERE person <> '' AND {filter}");
    let n = with_pool!(store.pool(), p => {
        let mut tx = p.begin_write().await?;
        bind_all!(sqlx::query(&fold), binds).execute(&mut *tx).await?;
        let n = bind_all!(sqlx::query(&delete), binds)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        n
    });
    Ok(n)
}

fn row_to_hold(r: (i64, String, String, String, i64, Option<i64>)) -> Result<Hold, StoreError> {
    Ok(Hold {
        id: r.0,
        person: r.1,
        reason: r.2,
        placed_by: r.3,
        placed: us_to_ts(r.4)?,
        released: r.5.map(us_to_ts).transpose()?,
    })
}

const HOLD_COLUMNS: &str =
    "SELECT id, person, reason, placed_by, placed_us, released_us FROM holds";

impl Store {
    /// Whether `person` is under a hold in force.
    pub async fn is_held(&self, person: &str) -> Result<bool, StoreError> {
        let n: i64 = with_pool!(self.pool(), p => {
            sqlx::query_scalar(HELD).bind(person).fetch_one(p).await?
        });
        Ok(n > 0)
    }

    /// Holds on `person` (or everyone's with `None`), in force only unless `released`.
    pub async fn holds(
        &self,
        person: Option<&str>,
        released: bool,
    ) -> Result<Vec<Hold>, StoreError> {
        let sql = format!(
            "{HOLD_COLUMNS} WHERE ($1 = '' OR person = $1) AND ($2 OR released_us IS NULL) ORDER BY id"
        );
        let rows: Vec<(i64, String, String, String, i64, Option<i64>)> = with_pool!(self.pool(), p => {
            sqlx::query_as(&sql)
                .bind(person.unwrap_or(""))
                .bind(released)
                .fetch_all(p)
                .await?
        });
        rows.into_iter().map(row_to_hold).collect()
    }

    /// Place a hold on `person`'s data (audited as `hold.place` by `actor`). A person may
    /// be held more than once (several investigations); each is released on its own.
    pub async fn place_hold(
        &self,
        person: &str,
        reason: &str,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<Hold, StoreError> {
        if person.is_empty() || reason.trim().is_empty() {
            return Err(StoreError::Invalid(
                "a hold needs a person and a reason".into(),
            ));
        }
        let now_us = ts_to_us(now);
        let id: i64 = with_pool!(self.pool(), p => {
            sqlx::query_scalar(
                "INSERT INTO holds (person, reason, placed_by, placed_us) VALUES ($1, $2, $3, $4) \
                 RETURNING id",
            )
            .bind(person)
            .bind(reason)
            .bind(actor)
            .bind(now_us)
            .fetch_one(p)
            .await?
        });
        let details = serde_json::json!({ "hold": id, "reason": reason });
        self.audit()
            .append(actor, "hold.place", person, &details, now)
            .await?;
        Ok(Hold {
            id,
            person: person.to_string(),
            reason: reason.to_string(),
            placed_by: actor.to_string(),
            placed: now,
            released: None,
        })
    }

    /// Release hold `id` (audited as `hold.release`). Releasing a released or unknown
    /// hold is an error.
    pub async fn release_hold(
        &self,
        id: i64,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<Hold, StoreError> {
        let row: Option<(i64, String, String, String, i64, Option<i64>)> = with_pool!(self.pool(), p => {
            sqlx::query_as(
                "UPDATE holds SET released_us = $1 WHERE id = $2 AND released_us IS NULL \
                 RETURNING id, person, reason, placed_by, placed_us, released_us",
            )
            .bind(ts_to_us(now))
            .bind(id)
            .fetch_optional(p)
            .await?
        });
        let Some(row) = row else {
            return Err(StoreError::Invalid(format!(
                "there is no hold {id} in force (see the holds in force)"
            )));
        };
        let hold = row_to_hold(row)?;
        let details = serde_json::json!({ "hold": id, "reason": hold.reason });
        self.audit()
            .append(actor, "hold.release", &hold.person, &details, now)
            .await?;
        Ok(hold)
    }

    /// Erase what is held about `person` (see the module documentation), unless a hold is
    /// in force ([`StoreError::Held`]). Audited as `person.erase` by `actor`.
    pub async fn erase_person(
        &self,
        person: &str,
        opts: EraseOptions,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<EraseReport, StoreError> {
        if person.is_empty() {
            return Err(StoreError::Invalid(
                "erase whom? the username is empty".into(),
            ));
        }
        if let Some(hold) = self.holds(Some(person), false).await?.into_iter().next() {
            return Err(StoreError::Held {
                person: person.to_string(),
                hold: hold.id,
                reason: hold.reason,
            });
        }
        let mut rows = BTreeMap::new();
        let who = [Bind::Text(person)];
        // Content before its decisions: it is found through them.
        let steps: [(&str, &str, &str); 14] = [
            (
                "event_content",
                "event_id",
                "event_id IN (SELECT id FROM decisions WHERE person = $1)",
            ),
            ("decisions", "id", "person = $1"),
            ("dns_visits", "id", "person = $1"),
            (
                "logon_sessions",
                "id",
                "person_id IN (SELECT id FROM people WHERE username = $1)",
            ),
            // Occurrences before their alerts: they are found through them.
            (
                "alert_occurrences",
                "id",
                "alert_id IN (SELECT id FROM alerts WHERE person = $1)",
            ),
            ("alerts", "id", "person = $1"),
            ("access_requests", "id", "person = $1"),
            ("outbox", "id", "person = $1"),
            ("sanctions", "id", "person = $1"),
            (
                "incident_actions",
                "id",
                "incident_id IN (SELECT id FROM incidents WHERE person = $1)",
            ),
            ("incidents", "id", "person = $1"),
            ("investigations", "id", "person = $1"),
            ("mail_quarantine", "id", "person = $1"),
            ("mail_journal", "id", "person = $1"),
        ];
        for (table, key, filter) in steps {
            let (n, _) = delete_batched(self, table, key, filter, &who, "1").await?;
            rows.insert(table.to_string(), n);
        }
        // No single-column key to batch by; one person's year is a few thousand rows.
        let activity = with_pool!(self.pool(), p => {
            sqlx::query("DELETE FROM activity_hourly WHERE person = $1")
                .bind(person)
                .execute(p)
                .await?
                .rows_affected()
        });
        rows.insert("activity_hourly".to_string(), activity);
        let traffic = fold_traffic(self, "person = $1", &who).await?;
        rows.insert("traffic_daily".to_string(), traffic);
        if opts.people_row {
            let deleted = with_pool!(self.pool(), p => {
                let mut tx = p.begin_write().await?;
                let mut n = BTreeMap::new();
                for (table, sql) in [
                    ("console_sessions", "DELETE FROM console_sessions WHERE username = $1"),
                    ("console_accounts", "DELETE FROM console_accounts WHERE username = $1"),
                    ("signin_failures", "DELETE FROM signin_failures WHERE key = 'user:' || CAST($1 AS TEXT)"),
                    (
                        "memberships",
                        "DELETE FROM memberships WHERE person_id IN \
                         (SELECT id FROM people WHERE username = $1)",
                    ),
                    (
                        "declaration_acceptances",
                        "DELETE FROM declaration_acceptances WHERE person_id IN \
                         (SELECT id FROM people WHERE username = $1)",
                    ),
                    (
                        "guest_codes",
                        "DELETE FROM guest_codes WHERE person_id IN \
                         (SELECT id FROM people WHERE username = $1)",
                    ),
                    ("people", "DELETE FROM people WHERE username = $1"),
                ] {
                    let k = sqlx::query(sql).bind(person).execute(&mut *tx).await?.rows_affected();
                    n.insert(table.to_string(), k);
                }
                tx.commit().await?;
                n
            });
            rows.extend(deleted);
        }
        let details = serde_json::json!({ "deleted": rows, "people_row": opts.people_row });
        let entry = self
            .audit()
            .append(actor, "person.erase", person, &details, now)
            .await?;
        Ok(EraseReport {
            person: person.to_string(),
            rows,
            audit_seq: entry.seq,
        })
    }
}
