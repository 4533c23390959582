//! The email filter's quarantine: messages a mail rule held, kept whole (envelope and
//! original bytes) until someone the role matrix allows releases or deletes them, with a
//! reason, audited. A release is only asked for here; the mail service claims it
//! (`release` -> `releasing`), delivers it through the next hop and marks it `released`,
//! so each released message goes out once: a failed attempt goes back to `release`, and
//! a crash mid-delivery leaves it `releasing` (shown as such), never sent twice.
//!
//! Also the mail journal: a copy of every delivered message, kept for a retention period
//! (000 §3.3.1), read only through an investigation.

use crate::BeginWrite as _;

use serde::Serialize;

use crate::{Store, StoreError, ts_to_us, us_to_ts, with_pool};

/// A message to hold, from the mail service.
#[derive(Debug, Clone)]
pub struct NewHeld<'a> {
    pub sender: &'a str,
    pub recipients: &'a [String],
    pub person: Option<&'a str>,
    pub rule: Option<&'a str>,
    pub document: Option<&'a str>,
    pub clause: Option<&'a str>,
    pub reason: &'a str,
    pub detectors: &'a [String],
    pub message: &'a [u8],
}

/// A held message as the console lists it: the envelope and why, never the content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Held {
    pub id: i64,
    pub held: jiff::Timestamp,
    pub sender: String,
    pub recipients: Vec<String>,
    pub person: Option<String>,
    pub rule: Option<String>,
    pub document: Option<String>,
    pub clause: Option<String>,
    pub reason: String,
    pub detectors: Vec<String>,
    pub size: i64,
    /// `held`, `release`, `releasing`, `released`, `refused` (by the next hop) or `deleted`.
    pub status: String,
    pub decided_by: Option<String>,
    pub decided: Option<jiff::Timestamp>,
    pub decision_reason: Option<String>,
    pub released: Option<jiff::Timestamp>,
}

/// A release the mail service is to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub id: i64,
    pub sender: String,
    pub recipients: Vec<String>,
    pub message: Vec<u8>,
}

/// How a claimed release went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// The next hop took it: `released`.
    Delivered,
    /// The next hop was down: back to `release`, tried again.
    Retry,
    /// The next hop refused it for good (its reply): `refused`, not tried again.
    Refused(String),
}

/// The quarantine; from [`Store::quarantine`].
pub struct Quarantine<'a> {
    pub(crate) store: &'a Store,
}

type HeldRow = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

const HELD_COLUMNS: &str = "id, held_us, sender, recipients, person, rule, document, clause, \
     reason, detectors, size, status, decided_by, decided_us, decision_reason, released_us";

fn json_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("mail_quarantine: {e}")))
}

fn held_from(r: HeldRow) -> Result<Held, StoreError> {
    Ok(Held {
        id: r.0,
        held: us_to_ts(r.1)?,
        sender: r.2,
        recipients: json_list(&r.3)?,
        person: r.4,
        rule: r.5,
        document: r.6,
        clause: r.7,
        reason: r.8,
        detectors: json_list(&r.9)?,
        size: r.10,
        status: r.11,
        decided_by: r.12,
        decided: r.13.map(us_to_ts).transpose()?,
        decision_reason: r.14,
        released: r.15.map(us_to_ts).transpose()?,
    })
}

impl Quarantine<'_> {
    /// Keeps a held message; its id.
    pub async fn hold(&self, m: &NewHeld<'_>, now: jiff::Timestamp) -> Result<i64, StoreError> {
        let recipients =
            serde_json::to_string(m.recipients).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let detectors =
            serde_json::to_string(m.detectors).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let size = i64::try_from(m.message.len()).unwrap_or(i64::MAX);
        let sql = "INSERT INTO mail_quarantine (held_us, sender, recipients, person, rule, \
                   document, clause, reason, detectors, size, message, status) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'held') RETURNING id";
        let id: i64 = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar(sql)
                .bind(ts_to_us(now))
                .bind(m.sender)
                .bind(&recipients)
                .bind(m.person)
                .bind(m.rule)
                .bind(m.document)
                .bind(m.clause)
                .bind(m.reason)
                .bind(&detectors)
                .bind(size)
                .bind(m.message)
                .fetch_one(p)
                .await?
        });
        Ok(id)
    }

    /// Held messages, newest first: those still waiting (`held`, `release`,
    /// `releasing`), or with `all` the decided ones too; at most `limit`.
    pub async fn list(&self, all: bool, limit: i64) -> Result<Vec<Held>, StoreError> {
        let filter = if all {
            ""
        } else {
            "WHERE status IN ('held', 'release', 'releasing') "
        };
        let sql = format!(
            "SELECT {HELD_COLUMNS} FROM mail_quarantine {filter}ORDER BY held_us DESC, id DESC LIMIT $1"
        );
        let rows: Vec<HeldRow> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(&sql).bind(limit).fetch_all(p).await?
        });
        rows.into_iter().map(held_from).collect()
    }

    /// One held message's listing.
    pub async fn get(&self, id: i64) -> Result<Held, StoreError> {
        let sql = format!("SELECT {HELD_COLUMNS} FROM mail_quarantine WHERE id = $1");
        let row: Option<HeldRow> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(&sql).bind(id).fetch_optional(p).await?
        });
        held_from(row.ok_or_else(|| StoreError::NotFound(format!("no held message {id}")))?)
    }

    /// Moves a `held` message on: `release` (the mail service delivers it) or `deleted`
    /// (its bytes dropped), by `actor` with `reason`; audited. Anything not `held`
    /// any more is refused, so a message is released or deleted once.
    async fn decide(
        &self,
        id: i64,
        to: &str,
        actor: &str,
        reason: &str,
        now: jiff::Timestamp,
    ) -> Result<Held, StoreError> {
        let now_us = ts_to_us(now);
        // A deleted message's bytes go with the decision.
        let sql = if to == "deleted" {
            "UPDATE mail_quarantine SET status = $1, decided_by = $2, decided_us = $3, \
             decision_reason = $4, message = $5 WHERE id = $6 AND status = 'held'"
        } else {
            "UPDATE mail_quarantine SET status = $1, decided_by = $2, decided_us = $3, \
             decision_reason = $4 WHERE id = $5 AND status = 'held'"
        };
        let changed = with_pool!(self.store.pool(), p => {
            let mut q = sqlx::query(sql).bind(to).bind(actor).bind(now_us).bind(reason);
            if to == "deleted" {
                q = q.bind(Vec::<u8>::new());
            }
            q.bind(id).execute(p).await?.rows_affected()
        });
        let held = self.get(id).await?;
        if changed == 0 {
            return Err(StoreError::Invalid(format!(
                "held message {id} is {} already: it can be released or deleted only while held",
                held.status
            )));
        }
        let action = if to == "deleted" {
            "mail.quarantine.delete"
        } else {
            "mail.quarantine.release"
        };
        self.store
            .audit()
            .append(
                actor,
                action,
                &format!("quarantine:{id}"),
                &serde_json::json!({
                    "reason": reason, "sender": held.sender, "recipients": held.recipients,
                    "rule": held.rule, "clause": held.clause,
                }),
                now,
            )
            .await?;
        Ok(held)
    }

    /// Asks for a held message to be delivered (by the mail service, once).
    pub async fn release(
        &self,
        id: i64,
        actor: &str,
        reason: &str,
        now: jiff::Timestamp,
    ) -> Result<Held, StoreError> {
        self.decide(id, "release", actor, reason, now).await
    }

    /// Deletes a held message: its bytes are dropped, the row stays as the record.
    pub async fn delete(
        &self,
        id: i64,
        actor: &str,
        reason: &str,
        now: jiff::Timestamp,
    ) -> Result<Held, StoreError> {
        self.decide(id, "deleted", actor, reason, now).await
    }

    /// Claims up to `limit` asked-for releases for delivery (`release` -> `releasing`).
    pub async fn claim_releases(&self, limit: i64) -> Result<Vec<Release>, StoreError> {
        let rows: Vec<(i64, String, String, Vec<u8>)> = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let rows: Vec<(i64, String, String, Vec<u8>)> = sqlx::query_as(
                "SELECT id, sender, recipients, message FROM mail_quarantine \
                 WHERE status = 'release' ORDER BY id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            for r in &rows {
                sqlx::query("UPDATE mail_quarantine SET status = 'releasing' WHERE id = $1")
                    .bind(r.0)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            rows
        });
        rows.into_iter()
            .map(|r| {
                Ok(Release {
                    id: r.0,
                    sender: r.1,
                    recipients: json_list(&r.2)?,
                    message: r.3,
                })
            })
            .collect()
    }

    /// Records how a claimed release went.
    pub async fn finish_release(
        &self,
        id: i64,
        outcome: &ReleaseOutcome,
        now: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        let (status, note) = match outcome {
            ReleaseOutcome::Delivered => ("released", None),
            ReleaseOutcome::Retry => ("release", None),
            ReleaseOutcome::Refused(why) => ("refused", Some(why.as_str())),
        };
        let released = (status == "released").then(|| ts_to_us(now));
        with_pool!(self.store.pool(), p => {
            sqlx::query(
                "UPDATE mail_quarantine SET status = $1, released_us = $2, \
                 decision_reason = CASE WHEN $3 IS NULL THEN decision_reason \
                 ELSE coalesce(decision_reason, '') || ' (refused by the next hop: ' || $3 || ')' END \
                 WHERE id = $4 AND status = 'releasing'",
            )
            .bind(status)
            .bind(released)
            .bind(note)
            .bind(id)
            .execute(p)
            .await?;
        });
        Ok(())
    }
}

/// A delivered message for the journal.
#[derive(Debug, Clone)]
pub struct NewJournal<'a> {
    /// When the next hop accepted it.
    pub at: jiff::Timestamp,
    pub direction: &'a str,
    pub sender: &'a str,
    pub recipients: &'a [String],
    pub person: Option<&'a str>,
    pub message: &'a [u8],
}

impl Quarantine<'_> {
    /// Keeps copies of delivered messages (000 §3.3.1), all in one transaction: the mail
    /// service writes them in batches, so a busy hour takes the write lock once per
    /// batch rather than once per message.
    ///
    /// Committed without waiting for the disk, as the event writer commits events (SQLite
    /// `synchronous = NORMAL` for this transaction, PostgreSQL `synchronous_commit = off`):
    /// a power cut can lose the last moments of copies, a crash of Hallpass cannot. Each
    /// copy is a whole message, so a sync per batch would make the journal the busiest
    /// writer on the disk, slowing the MTA's own queue syncs (bench/mail).
    pub async fn journal(&self, copies: &[NewJournal<'_>]) -> Result<(), StoreError> {
        if copies.is_empty() {
            return Ok(());
        }
        let rows = copies
            .iter()
            .map(|m| {
                let recipients = serde_json::to_string(m.recipients)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                Ok((
                    m,
                    recipients,
                    i64::try_from(m.message.len()).unwrap_or(i64::MAX),
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        macro_rules! insert_all {
            ($tx:expr) => {
                for (m, recipients, size) in &rows {
                    sqlx::query(
                        "INSERT INTO mail_journal (at_us, direction, sender, recipients, person, \
                         size, message) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(ts_to_us(m.at))
                    .bind(m.direction)
                    .bind(m.sender)
                    .bind(recipients)
                    .bind(m.person)
                    .bind(size)
                    .bind(m.message)
                    .execute(&mut *$tx)
                    .await?;
                }
            };
        }
        match self.store.pool() {
            crate::Pool::Sqlite(p) => {
                // The pragma is the connection's: set for this transaction and back, and
                // a connection that cannot be set back is closed rather than reused.
                let mut conn = p.acquire().await?;
                sqlx::query("PRAGMA synchronous = NORMAL")
                    .execute(&mut *conn)
                    .await?;
                let written: Result<(), StoreError> = async {
                    let mut tx =
                        sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
                    insert_all!(tx);
                    tx.commit().await?;
                    Ok(())
                }
                .await;
                let restored = sqlx::query("PRAGMA synchronous = FULL")
                    .execute(&mut *conn)
                    .await;
                if restored.is_err() {
                    drop(conn.detach());
                }
                written
            }
            crate::Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("SET LOCAL synchronous_commit = off")
                    .execute(&mut *tx)
                    .await?;
                insert_all!(tx);
                tx.commit().await?;
                Ok(())
            }
        }
    }

    /// Drops journal copies older than `before` (the retention period); how many.
    pub async fn purge_journal(&self, before: jiff::Timestamp) -> Result<u64, StoreError> {
        let n = with_pool!(self.store.pool(), p => {
            // A hold keeps a person's mail, as it keeps the rest of their data.
            sqlx::query(
                "DELETE FROM mail_journal WHERE at_us < $1 AND (person IS NULL OR person NOT IN \
                 (SELECT person FROM holds WHERE released_us IS NULL))",
            )
                .bind(ts_to_us(before))
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n)
    }
}

/// A journaled message, as an investigation reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub id: i64,
    pub at: jiff::Timestamp,
    /// inbound | outbound | internal
    pub direction: String,
    pub sender: String,
    pub recipients: Vec<String>,
    pub size: i64,
    /// The original bytes, as they arrived.
    pub message: Vec<u8>,
}

type JournalRow = (i64, i64, String, String, String, i64, Vec<u8>);

impl Quarantine<'_> {
    /// The journal's messages `person` sent, or sent to `address` (their roster email),
    /// with `from <= at < to`, oldest first, at most `limit`. Content: the caller is an
    /// investigation (the console's gating), which audits the read.
    pub async fn journal_of(
        &self,
        person: &str,
        address: Option<&str>,
        from: jiff::Timestamp,
        to: jiff::Timestamp,
        limit: i64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        // The recipients are a JSON array of addresses: match one element, quotes and all.
        let to_address = address
            .map(|a| format!("%\"{}\"%", crate::reads::like_escape(&a.to_lowercase())))
            .unwrap_or_default();
        let rows: Vec<JournalRow> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(
                "SELECT id, at_us, direction, sender, recipients, size, message FROM mail_journal \
                 WHERE at_us >= $1 AND at_us < $2 \
                 AND (person = $3 OR ($4 <> '' AND LOWER(recipients) LIKE $4 ESCAPE '\\')) \
                 ORDER BY at_us, id LIMIT $5",
            )
            .bind(ts_to_us(from))
            .bind(ts_to_us(to))
            .bind(person)
            .bind(&to_address)
            .bind(limit)
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(JournalEntry {
                    id: r.0,
                    at: us_to_ts(r.1)?,
                    direction: r.2,
                    sender: r.3,
                    recipients: json_list(&r.4)?,
                    size: r.5,
                    message: r.6,
                })
            })
            .collect()
    }
}

/// A sender blocked from the console: an address (`a@b.example`) or a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SenderBlock {
    pub id: i64,
    pub sender: String,
    pub reason: String,
    pub added_by: String,
    pub added: jiff::Timestamp,
}

impl Quarantine<'_> {
    /// The console's sender blocks, oldest first.
    pub async fn sender_blocks(&self) -> Result<Vec<SenderBlock>, StoreError> {
        let rows: Vec<(i64, String, String, String, i64)> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(
                "SELECT id, sender, reason, added_by, added_us FROM mail_sender_blocks ORDER BY id",
            )
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(SenderBlock {
                    id: r.0,
                    sender: r.1,
                    reason: r.2,
                    added_by: r.3,
                    added: us_to_ts(r.4)?,
                })
            })
            .collect()
    }

    /// Blocks `sender` (already checked and lower-cased by the caller); audited
    /// (`mail.block.add`). A sender blocked already is refused.
    pub async fn block_sender(
        &self,
        sender: &str,
        reason: &str,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<SenderBlock, StoreError> {
        let exists: Option<i64> = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar("SELECT id FROM mail_sender_blocks WHERE sender = $1")
                .bind(sender)
                .fetch_optional(p)
                .await?
        });
        if let Some(id) = exists {
            return Err(StoreError::Invalid(format!(
                "{sender} is blocked already (block {id})"
            )));
        }
        let id: i64 = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar(
                "INSERT INTO mail_sender_blocks (sender, reason, added_by, added_us) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(sender)
            .bind(reason)
            .bind(actor)
            .bind(ts_to_us(now))
            .fetch_one(p)
            .await?
        });
        self.store
            .audit()
            .append(
                actor,
                "mail.block.add",
                sender,
                &serde_json::json!({ "block": id, "reason": reason }),
                now,
            )
            .await?;
        Ok(SenderBlock {
            id,
            sender: sender.to_owned(),
            reason: reason.to_owned(),
            added_by: actor.to_owned(),
            added: now,
        })
    }

    /// Lifts block `id`; audited (`mail.block.remove`) with `reason`.
    pub async fn unblock_sender(
        &self,
        id: i64,
        reason: &str,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        let sender: Option<String> = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar("DELETE FROM mail_sender_blocks WHERE id = $1 RETURNING sender")
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        let sender = sender.ok_or_else(|| StoreError::NotFound(format!("no sender block {id}")))?;
        self.store
            .audit()
            .append(
                actor,
                "mail.block.remove",
                &sender,
                &serde_json::json!({ "block": id, "reason": reason }),
                now,
            )
            .await?;
        Ok(())
    }
}
