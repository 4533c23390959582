//! The tamper-evident audit log: every action and every view of someone's activity.
//!
//! Entries are numbered from 1 (`seq`). Each stores the hash of the entry before it
//! (`prev_hash`; 64 zeros for the first) and its own `hash`: SHA-256, hex, over a canonical
//! encoding of every field (see [`entry_hash`]). Changing any field, removing an entry or
//! reordering entries breaks the chain, and [`AuditLog::verify`] names the first entry
//! affected. Removing entries from the end is only visible against a head hash kept
//! elsewhere (`hallpass audit head`), which `verify(Some(head))` checks.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{Store, StoreError, ts_to_us, us_to_ts, with_pool};

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: jiff::Timestamp,
    pub actor: String,
    pub action: String,
    pub subject: String,
    /// JSON text, hashed exactly as stored.
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of an entry: SHA-256 over a domain tag then each field as an 8-byte big-endian
/// length followed by its bytes, in the order seq (decimal), time (microseconds since the
/// epoch, decimal), actor, action, subject, details, prev_hash. Length prefixes make the
/// encoding unambiguous whatever the fields contain.
pub fn entry_hash(
    seq: i64,
    at_us: i64,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
    prev_hash: &str,
) -> String {
    let mut h = Sha256::new();
    h.update(b"hallpass-audit-v1\0");
    let seq = seq.to_string();
    let at = at_us.to_string();
    for field in [
        seq.as_str(),
        at.as_str(),
        actor,
        action,
        subject,
        details,
        prev_hash,
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

/// What is wrong with the chain, at the first entry where it goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum VerifyProblem {
    /// The entry's fields no longer match its hash, or its hash was rewritten (the next
    /// entry no longer links to it).
    Altered { seq: i64 },
    /// Entries `from..=to` are missing.
    Removed { from: i64, to: i64 },
    /// The entry at `seq` links to an entry other than the one before it.
    Reordered { seq: i64 },
    /// The expected head is not in the log: entries after it were removed (or it never was).
    HeadNotFound { expected: String, last_seq: i64 },
}

impl std::fmt::Display for VerifyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyProblem::Altered { seq } => write!(
                f,
                "entry {seq} was altered: its contents do not match its hash"
            ),
            VerifyProblem::Removed { from, to } if from == to => {
                write!(f, "entry {from} was removed")
            }
            VerifyProblem::Removed { from, to } => write!(f, "entries {from} to {to} were removed"),
            VerifyProblem::Reordered { seq } => write!(
                f,
                "entry {seq} is out of order: it does not follow the entry before it"
            ),
            VerifyProblem::HeadNotFound { expected, last_seq } => write!(
                f,
                "the expected head {expected} is not in the log (last entry is {last_seq}): \
                 entries were removed from the end"
            ),
        }
    }
}

/// The result of [`AuditLog::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: i64,
    /// Hash of the last entry (the genesis hash when the log is empty).
    pub head: String,
    /// The first problem found, `None` when the chain is intact.
    pub problem: Option<VerifyProblem>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Access to the audit log; from [`Store::audit`].
pub struct AuditLog<'a> {
    pub(crate) store: &'a Store,
}

impl AuditLog<'_> {
    /// Append an entry. Appends from this process are serialised by a lock; across
    /// processes the transaction and the primary key on `seq` make a racing append fail and
    /// retry, so the chain never forks.
    pub async fn append(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        details: &serde_json::Value,
        now: jiff::Timestamp,
    ) -> Result<AuditEntry, StoreError> {
        let details = details.to_string();
        let _guard = self.store.inner.audit_lock.lock().await;
        let mut last_err = None;
        for attempt in 0..20u64 {
            match self.try_append(actor, action, subject, &details, now).await {
                Ok(e) => return Ok(e),
                Err(e) => {
                    tracing::debug!(error = %e, attempt, "audit append raced; retrying");
                    last_err = Some(e);
                    tokio::time::sleep(std::time::Duration::from_millis(5 * (attempt + 1))).await;
                }
            }
        }
        Err(last_err.map_or_else(
            || StoreError::Invalid("audit append failed".into()),
            StoreError::Db,
        ))
    }

    async fn try_append(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        details: &str,
        now: jiff::Timestamp,
    ) -> Result<AuditEntry, sqlx::Error> {
        let at_us = ts_to_us(now);
        with_pool!(self.store.pool(), p => {
            let mut tx = p.begin().await?;
            let last: Option<(i64, String)> =
                sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut *tx)
                    .await?;
            let (seq, prev_hash) = match last {
                Some((s, h)) => (s + 1, h),
                None => (1, GENESIS_HASH.to_string()),
            };
            let hash = entry_hash(seq, at_us, actor, action, subject, details, &prev_hash);
            sqlx::query(
                "INSERT INTO audit_log (seq, at_us, actor, action, subject, details, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(seq)
            .bind(at_us)
            .bind(actor)
            .bind(action)
            .bind(subject)
            .bind(details)
            .bind(&prev_hash)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(AuditEntry {
                seq,
                at: now,
                actor: actor.to_string(),
                action: action.to_string(),
                subject: subject.to_string(),
                details: details.to_string(),
                prev_hash,
                hash,
            })
        })
    }

    /// The hash of the last entry (the genesis hash when the log is empty).
    pub async fn head(&self) -> Result<String, StoreError> {
        let h: Option<String> = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(p)
                .await?
        });
        Ok(h.unwrap_or_else(|| GENESIS_HASH.to_string()))
    }

    /// The newest `limit` entries, oldest first.
    pub async fn recent(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let last: Option<i64> = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar("SELECT MAX(seq) FROM audit_log").fetch_one(p).await?
        });
        match last {
            None => Ok(Vec::new()),
            Some(last) => self.entries(last - limit + 1, last).await,
        }
    }

    /// Entries with `seq` in `from..=to`, in order.
    pub async fn entries(&self, from: i64, to: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = with_pool!(self.store.pool(), p => {
            let rows = sqlx::query(
                "SELECT seq, at_us, actor, action, subject, details, prev_hash, hash \
                 FROM audit_log WHERE seq >= $1 AND seq <= $2 ORDER BY seq",
            )
            .bind(from)
            .bind(to)
            .fetch_all(p)
            .await?;
            rows.iter().map(row_to_entry).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Recompute the chain and report the first entry altered, removed or reordered; with
    /// `expected_head`, also check that entry is still in the log (nothing was cut off the
    /// end since it was taken).
    pub async fn verify(&self, expected_head: Option<&str>) -> Result<VerifyReport, StoreError> {
        // Read in pages so a long log does not have to fit in memory at once.
        const PAGE: i64 = 10_000;
        let mut expected_seq = 1i64;
        let mut prev_hash = GENESIS_HASH.to_string();
        let mut entries = 0i64;
        let mut problem = None;
        let mut head_seen = expected_head.is_none_or(|h| h == GENESIS_HASH);
        let mut after = 0i64;
        'pages: loop {
            let page = self.page_after(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in page {
                entries += 1;
                if e.seq != expected_seq {
                    problem = Some(VerifyProblem::Removed {
                        from: expected_seq,
                        to: e.seq - 1,
                    });
                    break 'pages;
                }
                let h = entry_hash(
                    e.seq,
                    ts_to_us(e.at),
                    &e.actor,
                    &e.action,
                    &e.subject,
                    &e.details,
                    &e.prev_hash,
                );
                if e.prev_hash != prev_hash {
                    problem = Some(if self.hash_exists(&e.prev_hash).await? {
                        // It links to an entry that exists, but not the one before it.
                        VerifyProblem::Reordered { seq: e.seq }
                    } else if h == e.hash && e.seq > 1 {
                        // Self-consistent but linked to a hash that is nowhere: the entry
                        // before it was rewritten together with its hash.
                        VerifyProblem::Altered { seq: e.seq - 1 }
                    } else {
                        VerifyProblem::Altered { seq: e.seq }
                    });
                    break 'pages;
                }
                if h != e.hash {
                    problem = Some(VerifyProblem::Altered { seq: e.seq });
                    break 'pages;
                }
                if expected_head == Some(e.hash.as_str()) {
                    head_seen = true;
                }
                prev_hash = e.hash;
                expected_seq += 1;
            }
        }
        if problem.is_none() && !head_seen {
            problem = Some(VerifyProblem::HeadNotFound {
                expected: expected_head.unwrap_or_default().to_string(),
                last_seq: expected_seq - 1,
            });
        }
        Ok(VerifyReport {
            entries,
            head: prev_hash,
            problem,
        })
    }

    async fn hash_exists(&self, hash: &str) -> Result<bool, StoreError> {
        let n: i64 = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE hash = $1")
                .bind(hash)
                .fetch_one(p)
                .await?
        });
        Ok(n > 0)
    }

    /// Up to `limit` entries with `seq > after`, in order.
    async fn page_after(&self, after: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = with_pool!(self.store.pool(), p => {
            let rows = sqlx::query(
                "SELECT seq, at_us, actor, action, subject, details, prev_hash, hash \
                 FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.iter().map(row_to_entry).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }
}

fn row_to_entry<R>(r: &R) -> Result<AuditEntry, StoreError>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'d> i64: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> String: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    Ok(AuditEntry {
        seq: r.try_get("seq")?,
        at: us_to_ts(r.try_get("at_us")?)?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        subject: r.try_get("subject")?,
        details: r.try_get("details")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}
