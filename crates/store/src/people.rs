//! People (students, staff) imported from a school MIS export, with groups and memberships.
//!
//! [`parse_roster`] reads and validates a whole CSV file before anything is written: a file
//! with any bad line imports nothing, and every bad line is reported with its line number
//! and column. [`People::import`] is an idempotent upsert keyed on `username` that reports
//! what it added, changed and left unchanged, and writes one audit entry.

use crate::BeginWrite as _;
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sqlx::Row;

use crate::{Store, StoreError, ts_to_us, us_to_ts, with_pool};

pub use crate::roster::{PersonRecord, RosterError, parse_roster};

/// What an import did (or, dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub added: Vec<String>,
    /// username -> the fields that changed.
    pub changed: BTreeMap<String, Vec<String>>,
    pub unchanged: usize,
    pub dry_run: bool,
    /// Seq of the audit entry written (None for a dry run).
    pub audit_seq: Option<i64>,
}

/// A person as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub year_group: Option<String>,
    pub form: Option<String>,
    pub email: Option<String>,
    pub mis_id: Option<String>,
    pub site: Option<String>,
    pub groups: Vec<String>,
    /// When the directory sync disabled the person (they left the directory); `None`
    /// while they are current. A person who has left gets no logon session.
    pub left_at: Option<jiff::Timestamp>,
    /// The sync that manages the person (`ldap`), `None` for people from a CSV import.
    pub source: Option<String>,
}

/// People, groups and memberships; from [`Store::people`].
pub struct People<'a> {
    pub(crate) store: &'a Store,
}

impl People<'_> {
    /// The person's role and year group from the roster (`None`: no such person).
    pub async fn role_and_year(
        &self,
        username: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let row: Option<(String, Option<String>)> = with_pool!(self.store.pool(), p => {
            sqlx::query_as("SELECT role, year_group FROM people WHERE username = $1")
                .bind(username)
                .fetch_optional(p)
                .await?
        });
        Ok(row)
    }

    /// The person's email address from the roster (`None`: unknown person or no address).
    pub async fn email_of(&self, username: &str) -> Result<Option<String>, StoreError> {
        let email: Option<Option<String>> = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar("SELECT email FROM people WHERE username = $1")
                .bind(username)
                .fetch_optional(p)
                .await?
        });
        Ok(email.flatten().filter(|e| e.contains('@')))
    }

    /// Everyone, with their groups, ordered by username.
    pub async fn list(&self) -> Result<Vec<Person>, StoreError> {
        let (rows, members) = with_pool!(self.store.pool(), p => {
            let rows = sqlx::query(
                "SELECT p.id, p.username, p.display_name, p.role, p.year_group, p.form, p.email, \
                 p.mis_id, p.left_us, p.source, s.code AS site FROM people p LEFT JOIN sites s ON s.id = p.site_id \
                 ORDER BY p.username",
            )
            .fetch_all(p)
            .await?;
            let mut people = Vec::with_capacity(rows.len());
            for r in &rows {
                let id: i64 = r.try_get("id")?;
                let left_us: Option<i64> = r.try_get("left_us")?;
                people.push((id, Person {
                    username: r.try_get("username")?,
                    display_name: r.try_get("display_name")?,
                    role: r.try_get("role")?,
                    year_group: r.try_get("year_group")?,
                    form: r.try_get("form")?,
                    email: r.try_get("email")?,
                    mis_id: r.try_get("mis_id")?,
                    site: r.try_get("site")?,
                    groups: Vec::new(),
                    left_at: left_us.map(us_to_ts).transpose()?,
                    source: r.try_get("source")?,
                }));
            }
            let members: Vec<(i64, String)> = sqlx::query_as(
                "SELECT m.person_id, g.name FROM memberships m JOIN groups g ON g.id = m.group_id \
                 ORDER BY g.name",
            )
            .fetch_all(p)
            .await?;
            (people, members)
        });
        let mut by_id: HashMap<i64, Vec<String>> = HashMap::new();
        for (id, g) in members {
            by_id.entry(id).or_default().push(g);
        }
        Ok(rows
            .into_iter()
            .map(|(id, mut person)| {
                person.groups = by_id.remove(&id).unwrap_or_default();
                person
            })
            .collect())
    }

    /// Upsert `records` (from [`parse_roster`]). With `dry_run` nothing is written. One
    /// audit entry (action `people.import`) records the counts and the usernames affected.
    pub async fn import(
        &self,
        records: &[PersonRecord],
        dry_run: bool,
        actor: &str,
        source: &str,
        now: jiff::Timestamp,
    ) -> Result<ImportReport, StoreError> {
        let existing: HashMap<String, Person> = self
            .list()
            .await?
            .into_iter()
            .map(|p| (p.username.clone(), p))
            .collect();
        let mut report = ImportReport {
            dry_run,
            ..ImportReport::default()
        };
        let mut to_write = Vec::new();
        for r in records {
            match existing.get(&r.username) {
                None => {
                    report.added.push(r.username.clone());
                    to_write.push(r);
                }
                Some(old) => {
                    let diff: Vec<String> = changed_fields(old, r)
                        .into_iter()
                        .map(|c| c.field)
                        .collect();
                    if diff.is_empty() {
                        report.unchanged += 1;
                    } else {
                        report.changed.insert(r.username.clone(), diff);
                        to_write.push(r);
                    }
                }
            }
        }
        if dry_run {
            return Ok(report);
        }
        if !to_write.is_empty() {
            self.write(&to_write, None, now).await?;
        }
        let details = serde_json::json!({
            "source": source,
            "added": report.added.len(),
            "changed": report.changed.len(),
            "unchanged": report.unchanged,
            "added_usernames": report.added,
            "changed_usernames": report.changed.keys().collect::<Vec<_>>(),
        });
        let entry = self
            .store
            .audit()
            .append(actor, "people.import", source, &details, now)
            .await?;
        report.audit_seq = Some(entry.seq);
        Ok(report)
    }

    /// Upsert `records`. With a `source` (the directory sync) each person is marked as
    /// that sync's and re-enabled if they had left; without one (a CSV import) both are
    /// left as they were.
    pub(crate) async fn write(
        &self,
        records: &[&PersonRecord],
        source: Option<&str>,
        now: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        let now_us = ts_to_us(now);
        with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let mut sites: HashMap<String, i64> = HashMap::new();
            let mut groups: HashMap<String, i64> = HashMap::new();
            for r in records {
                let site_id = match &r.site {
                    None => None,
                    Some(code) => match sites.get(code) {
                        Some(id) => Some(*id),
                        None => {
                            sqlx::query("INSERT INTO sites (code, name) VALUES ($1, $1) ON CONFLICT (code) DO NOTHING")
                                .bind(code)
                                .execute(&mut *tx)
                                .await?;
                            let id: i64 = sqlx::query_scalar("SELECT id FROM sites WHERE code = $1")
                                .bind(code)
                                .fetch_one(&mut *tx)
                                .await?;
                            sites.insert(code.clone(), id);
                            Some(id)
                        }
                    },
                };
                let person_id: i64 = sqlx::query_scalar(
                    "INSERT INTO people (username, display_name, role, year_group, form, email, mis_id, site_id, updated_us, source) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (username) DO UPDATE SET display_name = excluded.display_name, \
                     role = excluded.role, year_group = excluded.year_group, form = excluded.form, \
                     email = excluded.email, mis_id = excluded.mis_id, site_id = excluded.site_id, \
                     updated_us = excluded.updated_us, \
                     source = COALESCE(excluded.source, people.source), \
                     left_us = CASE WHEN excluded.source IS NULL THEN people.left_us ELSE NULL END \
                     RETURNING id",
                )
                .bind(&r.username)
                .bind(&r.display_name)
                .bind(&r.role)
                .bind(&r.year_group)
                .bind(&r.form)
                .bind(&r.email)
                .bind(&r.mis_id)
                .bind(site_id)
                .bind(now_us)
                .bind(source)
                .fetch_one(&mut *tx)
                .await?;
                if let Some(gs) = &r.groups {
                    sqlx::query("DELETE FROM memberships WHERE person_id = $1")
                        .bind(person_id)
                        .execute(&mut *tx)
                        .await?;
                    for g in gs {
                        let gid = match groups.get(g) {
                            Some(id) => *id,
                            None => {
                                sqlx::query("INSERT INTO groups (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
                                    .bind(g)
                                    .execute(&mut *tx)
                                    .await?;
                                let id: i64 = sqlx::query_scalar("SELECT id FROM groups WHERE name = $1")
                                    .bind(g)
                                    .fetch_one(&mut *tx)
                                    .await?;
                                groups.insert(g.clone(), id);
                                id
                            }
                        };
                        sqlx::query("INSERT INTO memberships (group_id, person_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                            .bind(gid)
                            .bind(person_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Add `username` to `group` (created if needed).
    pub async fn add_membership(&self, username: &str, group: &str) -> Result<(), StoreError> {
        let found = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let pid: Option<i64> = sqlx::query_scalar("SELECT id FROM people WHERE username = $1")
                .bind(username)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(pid) = pid {
                sqlx::query("INSERT INTO groups (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
                    .bind(group)
                    .execute(&mut *tx)
                    .await?;
                let gid: i64 = sqlx::query_scalar("SELECT id FROM groups WHERE name = $1")
                    .bind(group)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO memberships (group_id, person_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(gid)
                    .bind(pid)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            pid.is_some()
        });
        if found {
            Ok(())
        } else {
            Err(StoreError::UnknownUser(username.to_string()))
        }
    }
}

/// One field an import or sync changes, with its old and new values as shown (`-` for
/// none, groups `;` separated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

/// The fields of `old` that `r` would change (`groups` only when `r` carries groups).
pub(crate) fn changed_fields(old: &Person, r: &PersonRecord) -> Vec<FieldChange> {
    let shown = |v: Option<&str>| v.unwrap_or("-").to_string();
    let fields: [(&str, Option<&str>, Option<&str>); 7] = [
        (
            "display_name",
            Some(old.display_name.as_str()),
            Some(r.display_name.as_str()),
        ),
        ("role", Some(old.role.as_str()), Some(r.role.as_str())),
        (
            "year_group",
            old.year_group.as_deref(),
            r.year_group.as_deref(),
        ),
        ("form", old.form.as_deref(), r.form.as_deref()),
        ("email", old.email.as_deref(), r.email.as_deref()),
        ("mis_id", old.mis_id.as_deref(), r.mis_id.as_deref()),
        ("site", old.site.as_deref(), r.site.as_deref()),
    ];
    let mut diff: Vec<FieldChange> = fields
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(name, a, b)| FieldChange {
            field: name.to_string(),
            old: shown(a),
            new: shown(b),
        })
        .collect();
    if let Some(g) = &r.groups {
        let mut want = g.clone();
        want.sort();
        want.dedup();
        let mut have = old.groups.clone();
        have.sort();
        if want != have {
            diff.push(FieldChange {
                field: "groups".to_string(),
                old: have.join(";"),
                new: want.join(";"),
            });
        }
    }
    diff
}
