//! The tamper-evident audit log: every action and every view of someone's activity.
//!
//! Entries are numbered from 1 (`seq`). Each stores the hash of the entry before it
//! (`prev_hash`; 64 zeros for the first) and its own `hash`: SHA-256, hex, over a canonical
//! encoding of every field (see [`entry_hash`]). Changing any field, removing an entry or
//! reordering entries breaks the chain, and [`AuditLog::verify`] names the first entry
//! affected. Removing entries from the end is only visible against a head kept elsewhere
//! (`hallpass audit head` prints `SEQ:HASH`; `serve` logs it at start and exports it in
//! `/metrics`), which `verify(Some(head))` checks.
//!
//! A chain anyone who can write the database could rewrite whole, recomputing every hash.
//! So the chain is anchored outside the database by a key ([`crate::audit_key`]): from the
//! entry that puts the key in use (action `audit.keyed`, whose details name the scheme
//! and the key's id) every hash is an HMAC-SHA256 under that key ([`keyed_entry_hash`]).
//! Entries before it (chains written by earlier versions) keep their plain SHA-256 hashes
//! and stay verifiable.

use crate::BeginWrite as _;
use hmac::Mac as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::audit_key::{self, AuditKey, KeyState, MARKER_ACTION, SCHEME};
pub use crate::audit_verify::{VerifyProblem, VerifyReport};
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
    encode_fields(
        |bytes| h.update(bytes),
        [seq, at_us],
        [actor, action, subject, details, prev_hash],
    );
    hex::encode(h.finalize())
}

/// The hash of an entry in the keyed part of the chain: HMAC-SHA256 under the audit key
/// over the domain tag `hallpass-audit-v2-hmac` then the same fields as [`entry_hash`].
// The key and the entry's seven fields, in the order they are hashed: a struct would only
// rename them.
#[allow(clippy::too_many_arguments)]
pub fn keyed_entry_hash(
    key: &AuditKey,
    seq: i64,
    at_us: i64,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
    prev_hash: &str,
) -> String {
    let mut mac = key.mac();
    mac.update(b"hallpass-audit-v2-hmac\0");
    encode_fields(
        |bytes| mac.update(bytes),
        [seq, at_us],
        [actor, action, subject, details, prev_hash],
    );
    hex::encode(mac.finalize().into_bytes())
}

/// Each field as an 8-byte big-endian length then its bytes (numbers in decimal).
fn encode_fields(mut update: impl FnMut(&[u8]), numbers: [i64; 2], texts: [&str; 5]) {
    let numbers = numbers.map(|n| n.to_string());
    for field in numbers.iter().map(String::as_str).chain(texts) {
        update(&(field.len() as u64).to_be_bytes());
        update(field.as_bytes());
    }
}

/// A head kept outside the database: `SEQ:HASH` as `hallpass audit head` prints it, or a
/// bare `HASH` (then a missing head cannot say whether the log was cut or rewritten).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: Option<i64>,
    /// 64 lowercase hex digits.
    pub hash: String,
}

impl AuditHead {
    pub fn parse(text: &str) -> Result<AuditHead, StoreError> {
        let text = text.trim();
        let malformed = |why: &str| StoreError::MalformedHead {
            given: text.to_string(),
            why: why.to_string(),
        };
        let (seq, hash) = match text.split_once(':') {
            Some((seq, hash)) => {
                let seq = seq.parse::<i64>().ok().filter(|s| *s >= 1).ok_or_else(|| {
                    malformed("before the `:` must be the entry number (1 or more)")
                })?;
                (Some(seq), hash)
            }
            None => (None, text),
        };
        if !hash.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(malformed(
                "a head is 64 hex digits (SEQ:HASH as `hallpass audit head` prints it)",
            ));
        }
        if hash.len() != 64 {
            return Err(malformed(&format!(
                "a head is 64 hex digits, this has {}",
                hash.len()
            )));
        }
        let hash = hash.to_ascii_lowercase();
        if hash == GENESIS_HASH {
            return Err(malformed(
                "64 zeros stands for \"no entry yet\"; it is no entry's hash",
            ));
        }
        Ok(AuditHead { seq, hash })
    }
}

impl std::fmt::Display for AuditHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "{seq}:{}", self.hash),
            None => f.write_str(&self.hash),
        }
    }
}

/// Access to the audit log; from [`Store::audit`].
pub struct AuditLog<'a> {
    pub(crate) store: &'a Store,
}

impl AuditLog<'_> {
    /// Append an entry. Appends from this process are serialised by a lock; across
    /// processes the transaction and the primary key on `seq` make a racing append fail and
    /// retry, so the chain never forks. With an audit key file ([`Store::use_audit_key_file`])
    /// the entry is keyed; the first keyed append creates the key and the marker entry.
    pub async fn append(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        details: &serde_json::Value,
        now: jiff::Timestamp,
    ) -> Result<AuditEntry, StoreError> {
        let details = details.to_string();
        let mut state = self.store.inner.audit_lock.lock().await;
        let key = self.ready_key(&mut state, now).await?;
        let entry = self
            .append_locked(key.as_ref(), actor, action, subject, &details, now, false)
            .await?
            .ok_or_else(|| StoreError::Invalid("audit append failed".into()))?;
        drop(state);
        // What was audited was written first: live-state followers may look now.
        self.store.changed();
        Ok(entry)
    }

    /// Appends under the audit lock. `Ok(None)` only for a `marker` when the chain already
    /// has a keyed part (another process put a key in use first).
    #[allow(clippy::too_many_arguments)]
    async fn append_locked(
        &self,
        key: Option<&AuditKey>,
        actor: &str,
        action: &str,
        subject: &str,
        details: &str,
        now: jiff::Timestamp,
        marker: bool,
    ) -> Result<Option<AuditEntry>, StoreError> {
        let mut last_err = None;
        for attempt in 0..20u64 {
            match self
                .try_append(key, actor, action, subject, details, now, marker)
                .await
            {
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

    #[allow(clippy::too_many_arguments)]
    async fn try_append(
        &self,
        key: Option<&AuditKey>,
        actor: &str,
        action: &str,
        subject: &str,
        details: &str,
        now: jiff::Timestamp,
        marker: bool,
    ) -> Result<Option<AuditEntry>, sqlx::Error> {
        let at_us = ts_to_us(now);
        with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            if marker {
                let keyed: Option<i64> = sqlx::query_scalar(
                    "SELECT seq FROM audit_log WHERE action = $1 ORDER BY seq LIMIT 1",
                )
                .bind(MARKER_ACTION)
                .fetch_optional(&mut *tx)
                .await?;
                if keyed.is_some() {
                    return Ok(None);
                }
            }
            let last: Option<(i64, String)> =
                sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut *tx)
                    .await?;
            let (seq, prev_hash) = match last {
                Some((s, h)) => (s + 1, h),
                None => (1, GENESIS_HASH.to_string()),
            };
            let hash = match key {
                Some(key) => keyed_entry_hash(key, seq, at_us, actor, action, subject, details, &prev_hash),
                None => entry_hash(seq, at_us, actor, action, subject, details, &prev_hash),
            };
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
            Ok(Some(AuditEntry {
                seq,
                at: now,
                actor: actor.to_string(),
                action: action.to_string(),
                subject: subject.to_string(),
                details: details.to_string(),
                prev_hash,
                hash,
            }))
        })
    }

    /// The first entry of the keyed part: (seq, key id), if the chain has one.
    async fn first_marker(&self) -> Result<Option<(i64, String)>, StoreError> {
        let row: Option<(i64, String)> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(
                "SELECT seq, details FROM audit_log WHERE action = $1 ORDER BY seq LIMIT 1",
            )
            .bind(MARKER_ACTION)
            .fetch_optional(p)
            .await?
        });
        Ok(row.map(|(seq, details)| (seq, marker_key_id(&details))))
    }

    /// The key appends use, making it (and the marker entry) on first use; `None` when
    /// this store has no key file and the chain has no keyed part.
    async fn ready_key(
        &self,
        state: &mut KeyState,
        now: jiff::Timestamp,
    ) -> Result<Option<AuditKey>, StoreError> {
        if let Some(key) = &state.ready {
            return Ok(Some(key.clone()));
        }
        let Some(file) = state.file.clone() else {
            if !state.unkeyed_checked {
                if let Some((seq, key_id)) = self.first_marker().await? {
                    return Err(StoreError::AuditKey(format!(
                        "the audit log is keyed from entry {seq} on (audit key id {key_id}) \
                         and no audit key is configured: give the key file"
                    )));
                }
                state.unkeyed_checked = true;
            }
            return Ok(None);
        };
        let pending = audit_key::pending_path(&file);
        let marker = self.first_marker().await?;
        let key = match audit_key::read(&file)? {
            Some(key) => key,
            None => match audit_key::read(&pending)? {
                Some(key) => key,
                None => {
                    if let Some((seq, key_id)) = &marker {
                        return Err(StoreError::AuditKey(format!(
                            "the audit key {} is missing, but the audit log is keyed from \
                             entry {seq} on (key id {key_id}): restore the key file you kept \
                             (README: what the operator keeps); Hallpass will not start a \
                             new key on a keyed log",
                            file.display()
                        )));
                    }
                    let key = AuditKey::generate();
                    match audit_key::create_new(&pending, &key) {
                        Ok(()) => key,
                        // Another process of this data directory made one first: use it.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                            audit_key::read(&pending)?.ok_or_else(|| {
                                StoreError::AuditKey(format!("{} vanished", pending.display()))
                            })?
                        }
                        Err(e) => {
                            return Err(StoreError::AuditKey(format!(
                                "cannot create the audit key {}: {e}",
                                pending.display()
                            )));
                        }
                    }
                }
            },
        };
        let from_seq = match &marker {
            Some((seq, key_id)) if *key_id == key.id() => *seq,
            Some((seq, key_id)) => {
                return Err(StoreError::AuditKey(format!(
                    "the audit log is keyed from entry {seq} on with key id {key_id}, but {} \
                     holds key id {}: give this node the key file the log was started with",
                    file.display(),
                    key.id()
                )));
            }
            None => {
                let details = serde_json::json!({ "scheme": SCHEME, "key_id": key.id() });
                match self
                    .append_locked(
                        Some(&key),
                        "hallpass",
                        MARKER_ACTION,
                        &key.id(),
                        &details.to_string(),
                        now,
                        true,
                    )
                    .await?
                {
                    Some(entry) => {
                        tracing::info!(
                            seq = entry.seq,
                            key_id = %key.id(),
                            file = %file.display(),
                            "the audit log is now keyed: keep a copy of the key off this machine"
                        );
                        entry.seq
                    }
                    None => {
                        return Err(StoreError::AuditKey(format!(
                            "another process put a different audit key in use on this log \
                             while {} was being created: copy that key here",
                            file.display()
                        )));
                    }
                }
            }
        };
        let key = key.with_from_seq(Some(from_seq));
        if audit_key::read(&file)?.and_then(|k| k.from_seq) != Some(from_seq) {
            audit_key::replace(&file, &key).map_err(|e| {
                StoreError::AuditKey(format!(
                    "cannot write the audit key {}: {e}",
                    file.display()
                ))
            })?;
        }
        let _ = std::fs::remove_file(&pending);
        state.ready = Some(key.clone());
        Ok(Some(key))
    }

    /// The key `verify` checks with: the ready one, else read from the key file (or its
    /// pending file), never created.
    pub(crate) async fn key_for_verify(&self) -> Result<Option<AuditKey>, StoreError> {
        let state = self.store.inner.audit_lock.lock().await;
        if let Some(key) = &state.ready {
            return Ok(Some(key.clone()));
        }
        let Some(file) = state.file.clone() else {
            return Ok(None);
        };
        drop(state);
        match audit_key::read(&file)? {
            Some(key) => Ok(Some(key)),
            // A pending key has no marker yet, so nothing to hold the chain to.
            None => Ok(audit_key::read(&audit_key::pending_path(&file))?
                .map(|key| key.with_from_seq(None))),
        }
    }

    /// Puts the audit key in use now if it is not yet (creating it and the marker entry),
    /// so a missing or wrong key is found at start rather than at the first append; returns
    /// the head.
    pub async fn anchor(&self, now: jiff::Timestamp) -> Result<Option<AuditHead>, StoreError> {
        let mut state = self.store.inner.audit_lock.lock().await;
        self.ready_key(&mut state, now).await?;
        drop(state);
        self.head_entry().await
    }

    /// The hash of the last entry (the genesis hash when the log is empty).
    pub async fn head(&self) -> Result<String, StoreError> {
        Ok(self
            .head_entry()
            .await?
            .map_or_else(|| GENESIS_HASH.to_string(), |head| head.hash))
    }

    /// The last entry's seq and hash, `None` when the log is empty: what to keep
    /// elsewhere (`SEQ:HASH`) and give back to [`AuditLog::verify`].
    pub async fn head_entry(&self) -> Result<Option<AuditHead>, StoreError> {
        let h: Option<(i64, String)> = with_pool!(self.store.pool(), p => {
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(p)
                .await?
        });
        Ok(h.map(|(seq, hash)| AuditHead {
            seq: Some(seq),
            hash,
        }))
    }

    /// The id of the audit key in use, once there is one (for logs and `/metrics`).
    pub async fn key_id(&self) -> Option<String> {
        self.key_for_verify().await.ok().flatten().map(|k| k.id())
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
}

/// The key id a marker entry's details name ("" when they name none).
pub(crate) fn marker_key_id(details: &str) -> String {
    serde_json::from_str::<serde_json::Value>(details)
        .ok()
        .and_then(|v| {
            v.get("key_id")
                .and_then(|id| id.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

pub(crate) fn row_to_entry<R>(r: &R) -> Result<AuditEntry, StoreError>
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
