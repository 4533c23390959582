//! [`AuditLog::verify`]: recompute the chain (plain SHA-256 before the audit key's marker
//! entry, HMAC from it on) and name the first problem: altered, removed, reordered,
//! truncated, or a key missing or wrong.

use serde::Serialize;

use crate::audit::{
    AuditEntry, AuditHead, AuditLog, GENESIS_HASH, entry_hash, keyed_entry_hash, marker_key_id,
    row_to_entry,
};
use crate::audit_key::{AuditKey, MARKER_ACTION};
use crate::{StoreError, ts_to_us, with_pool};

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
    /// The expected head (a bare hash) is not in the log: entries after it were removed,
    /// or the log was rewritten.
    HeadNotFound { expected: String, last_seq: i64 },
    /// The log ends before an entry it once had: `expected_seq` (from a head kept
    /// elsewhere, or the entry the audit key was put in use at) is gone.
    Truncated { expected_seq: i64, last_seq: i64 },
    /// Entry `seq` is not the entry a head kept elsewhere recorded, though the chain is
    /// self-consistent: the log was rewritten up to there.
    HeadMismatch { seq: i64 },
    /// Entry `seq` puts the audit key in use (and so does the key file), but the chain
    /// has no such entry there: it was rewritten without the key.
    KeyedPartMissing { seq: i64 },
    /// Entries from `seq` are keyed and the key is not available to check them.
    KeyUnavailable { seq: i64, key_id: String },
    /// Entries from `seq` are keyed with `chain_key_id`, not the key given.
    WrongKey {
        seq: i64,
        chain_key_id: String,
        key_id: String,
    },
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
                 entries were cut off the end, or the log was rewritten (give the head as \
                 SEQ:HASH, as `hallpass audit head` prints it, to tell which)"
            ),
            VerifyProblem::Truncated {
                expected_seq,
                last_seq,
            } => write!(
                f,
                "the log was truncated: it ends at entry {last_seq}, but entry {expected_seq} \
                 existed (entries were removed from the end)"
            ),
            VerifyProblem::HeadMismatch { seq } => write!(
                f,
                "entry {seq} was altered: it is not the entry the head kept elsewhere \
                 recorded (the log was rewritten up to entry {seq} and its hashes recomputed)"
            ),
            VerifyProblem::KeyedPartMissing { seq } => write!(
                f,
                "entry {seq} was altered: the audit key was put in use at entry {seq}, but \
                 the log has no keyed entries (it was rewritten without the key)"
            ),
            VerifyProblem::KeyUnavailable { seq, key_id } => write!(
                f,
                "entries from {seq} on are keyed (audit key id {key_id}) and that key is not \
                 here: give the key file you kept (--audit-key FILE) to check them"
            ),
            VerifyProblem::WrongKey {
                seq,
                chain_key_id,
                key_id,
            } => write!(
                f,
                "entries from {seq} on are keyed with audit key id {chain_key_id}, but the \
                 key given has id {key_id}: give the key file you kept for this log"
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

impl AuditLog<'_> {
    /// Recompute the chain and report the first entry altered, removed or reordered; with
    /// `expected_head` (`SEQ:HASH` or `HASH`, see [`AuditHead::parse`]; a malformed one is
    /// an error), also check that entry is still in the log unchanged (nothing was cut
    /// off the end or rewritten since it was taken). Keyed entries are checked with the
    /// store's audit key.
    pub async fn verify(&self, expected_head: Option<&str>) -> Result<VerifyReport, StoreError> {
        let expected_head = expected_head.map(AuditHead::parse).transpose()?;
        let key = self.key_for_verify().await?;
        self.verify_with(expected_head.as_ref(), key.as_ref()).await
    }

    /// [`AuditLog::verify`] with an explicit key (e.g. the copy kept off the machine).
    pub async fn verify_with(
        &self,
        expected_head: Option<&AuditHead>,
        key: Option<&AuditKey>,
    ) -> Result<VerifyReport, StoreError> {
        // Read in pages so a long log does not have to fit in memory at once.
        const PAGE: i64 = 10_000;
        let mut expected_seq = 1i64;
        let mut prev_hash = GENESIS_HASH.to_string();
        let mut entries = 0i64;
        let mut problem = None;
        let mut head_seen = expected_head.is_none();
        let mut keyed = false;
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
                if !keyed && e.action == MARKER_ACTION {
                    let chain_key_id = marker_key_id(&e.details);
                    match key {
                        None => {
                            problem = Some(VerifyProblem::KeyUnavailable {
                                seq: e.seq,
                                key_id: chain_key_id,
                            });
                            break 'pages;
                        }
                        Some(key) if key.id() != chain_key_id => {
                            // A rewritten marker (its hash is checked below) or another key.
                            let h = keyed_entry_hash(
                                key,
                                e.seq,
                                ts_to_us(e.at),
                                &e.actor,
                                &e.action,
                                &e.subject,
                                &e.details,
                                &e.prev_hash,
                            );
                            problem = Some(if h == e.hash {
                                VerifyProblem::Altered { seq: e.seq }
                            } else {
                                VerifyProblem::WrongKey {
                                    seq: e.seq,
                                    chain_key_id,
                                    key_id: key.id(),
                                }
                            });
                            break 'pages;
                        }
                        Some(key) => {
                            if key.from_seq.is_some_and(|from| from != e.seq) {
                                problem = Some(VerifyProblem::Altered { seq: e.seq });
                                break 'pages;
                            }
                        }
                    }
                    keyed = true;
                }
                let h = match (keyed, key) {
                    (true, Some(key)) => keyed_entry_hash(
                        key,
                        e.seq,
                        ts_to_us(e.at),
                        &e.actor,
                        &e.action,
                        &e.subject,
                        &e.details,
                        &e.prev_hash,
                    ),
                    _ => entry_hash(
                        e.seq,
                        ts_to_us(e.at),
                        &e.actor,
                        &e.action,
                        &e.subject,
                        &e.details,
                        &e.prev_hash,
                    ),
                };
                // Where the key file says the keyed part starts, there must be its marker.
                if !keyed && key.and_then(|k| k.from_seq) == Some(e.seq) {
                    problem = Some(VerifyProblem::KeyedPartMissing { seq: e.seq });
                    break 'pages;
                }
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
                if let Some(head) = expected_head {
                    match head.seq {
                        Some(seq) if seq == e.seq => {
                            if head.hash != e.hash {
                                problem = Some(VerifyProblem::HeadMismatch { seq });
                                break 'pages;
                            }
                            head_seen = true;
                        }
                        Some(_) => {}
                        None if head.hash == e.hash => head_seen = true,
                        None => {}
                    }
                }
                prev_hash = e.hash;
                expected_seq += 1;
            }
        }
        let last_seq = expected_seq - 1;
        if problem.is_none()
            && let Some(from) = key.and_then(|k| k.from_seq)
            && !keyed
            && last_seq < from
        {
            problem = Some(VerifyProblem::Truncated {
                expected_seq: from,
                last_seq,
            });
        }
        if problem.is_none() && !head_seen {
            problem = Some(match expected_head {
                Some(AuditHead { seq: Some(seq), .. }) => VerifyProblem::Truncated {
                    expected_seq: *seq,
                    last_seq,
                },
                _ => VerifyProblem::HeadNotFound {
                    expected: expected_head.map(|h| h.hash.clone()).unwrap_or_default(),
                    last_seq,
                },
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
