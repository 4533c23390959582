//! Syncing people from a directory (LDAP / Active Directory): the directory is the whole
//! truth for the people it manages. [`People::sync`] adds and updates like
//! [`People::import`], and also disables the people it manages (`source`) who are no
//! longer in the directory: marked as left, logon and console sessions ended, console
//! account disabled. Nobody is deleted; a person who returns is re-enabled. A sync that
//! changes nothing writes nothing, not even an audit entry.

use crate::BeginWrite as _;
use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::people::{FieldChange, People, Person, PersonRecord, changed_fields};
use crate::{StoreError, ts_to_us, with_pool};

/// What a sync did (or, dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub added: Vec<String>,
    /// username -> what changed. A returning leaver has a `left` change (date -> `-`).
    pub changed: BTreeMap<String, Vec<FieldChange>>,
    /// Managed by this sync, no longer in the directory: disabled now.
    pub disabled: Vec<String>,
    pub unchanged: usize,
    pub dry_run: bool,
    /// Seq of the audit entry written; `None` for a dry run or when nothing changed.
    pub audit_seq: Option<i64>,
}

impl SyncReport {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.disabled.is_empty()
    }
}

impl People<'_> {
    /// Make the people `source` manages match `records`, the whole directory. `protected`
    /// are usernames the directory has but whose entries could not be read (skipped): they
    /// are neither updated nor disabled. With `dry_run` nothing is written. When something
    /// changes, one audit entry (action `people.sync`, `subject` the directory) lists who
    /// was added, changed and disabled.
    #[allow(clippy::too_many_arguments)] // each is one thing the caller decides
    pub async fn sync(
        &self,
        records: &[PersonRecord],
        protected: &[String],
        dry_run: bool,
        actor: &str,
        source: &str,
        subject: &str,
        now: jiff::Timestamp,
    ) -> Result<SyncReport, StoreError> {
        let existing: HashMap<String, Person> = self
            .list()
            .await?
            .into_iter()
            .map(|p| (p.username.clone(), p))
            .collect();
        let mut report = SyncReport {
            dry_run,
            ..SyncReport::default()
        };
        let mut to_write = Vec::new();
        for r in records {
            match existing.get(&r.username) {
                None => {
                    report.added.push(r.username.clone());
                    to_write.push(r);
                }
                Some(old) => {
                    let mut diff = changed_fields(old, r);
                    if let Some(left) = old.left_at {
                        diff.push(FieldChange {
                            field: "left".into(),
                            old: left.to_string(),
                            new: "-".into(),
                        });
                    }
                    if old.source.as_deref() != Some(source) {
                        diff.push(FieldChange {
                            field: "source".into(),
                            old: old.source.clone().unwrap_or_else(|| "-".into()),
                            new: source.into(),
                        });
                    }
                    if diff.is_empty() {
                        report.unchanged += 1;
                    } else {
                        report.changed.insert(r.username.clone(), diff);
                        to_write.push(r);
                    }
                }
            }
        }
        let present: HashSet<&str> = records
            .iter()
            .map(|r| r.username.as_str())
            .chain(protected.iter().map(String::as_str))
            .collect();
        let mut leavers: Vec<&Person> = existing
            .values()
            .filter(|p| {
                p.source.as_deref() == Some(source)
                    && p.left_at.is_none()
                    && !present.contains(p.username.as_str())
            })
            .collect();
        leavers.sort_by(|a, b| a.username.cmp(&b.username));
        report.disabled = leavers.iter().map(|p| p.username.clone()).collect();
        if dry_run || report.is_empty() {
            return Ok(report);
        }
        if !to_write.is_empty() {
            self.write(&to_write, Some(source), now).await?;
        }
        if !report.disabled.is_empty() {
            self.disable(&report.disabled, now).await?;
        }
        let details = serde_json::json!({
            "source": source,
            "added": report.added,
            "changed": report.changed.iter()
                .map(|(u, c)| (u.clone(), c.iter().map(|c| c.field.clone()).collect::<Vec<_>>()))
                .collect::<BTreeMap<_, _>>(),
            "disabled": report.disabled,
            "unchanged": report.unchanged,
        });
        let entry = self
            .store
            .audit()
            .append(actor, "people.sync", subject, &details, now)
            .await?;
        report.audit_seq = Some(entry.seq);
        Ok(report)
    }

    /// Mark `usernames` as left at `now`, end their logon and console sessions and disable
    /// their console accounts, in one transaction.
    async fn disable(&self, usernames: &[String], now: jiff::Timestamp) -> Result<(), StoreError> {
        let now_us = ts_to_us(now);
        with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            for u in usernames {
                sqlx::query("UPDATE people SET left_us = $1, updated_us = $1 WHERE username = $2")
                    .bind(now_us)
                    .bind(u)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE logon_sessions SET ended_us = $1 WHERE ended_us IS NULL AND \
                     person_id = (SELECT id FROM people WHERE username = $2)",
                )
                .bind(now_us)
                .bind(u)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE console_accounts SET disabled_us = $1, updated_us = $1 \
                     WHERE username = $2 AND disabled_us IS NULL",
                )
                .bind(now_us)
                .bind(u)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE console_sessions SET ended_us = $1 WHERE username = $2 AND ended_us IS NULL",
                )
                .bind(now_us)
                .bind(u)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
