//! Logon sessions: which person is at which IP address. The engine builds its identity map
//! from [`Sessions::active`]. An IP address belongs to at most one open session: starting a
//! session on an address ends whatever session was open there.

use crate::BeginWrite as _;
use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;
use sqlx::Row;

use crate::{Store, StoreError, ts_to_us, us_to_ts, with_pool};

/// An open session with the person's attributes, for the identity map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveSession {
    pub ip: IpAddr,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub year_group: Option<String>,
    pub form: Option<String>,
    /// Group names the person is a member of, sorted.
    pub groups: Vec<String>,
    pub workstation: Option<String>,
    pub started: jiff::Timestamp,
    pub last_seen: jiff::Timestamp,
}

/// Logon sessions; from [`Store::sessions`].
pub struct Sessions<'a> {
    pub(crate) store: &'a Store,
}

impl Sessions<'_> {
    /// Open a session for `username` at `ip`, ending any session open at that address, and
    /// record it in the audit log (action `session.start`: `actor` who recorded it, the
    /// person as subject, the address and workstation). Returns the session id. An
    /// unknown username is an error (and nothing is recorded), and so is a person who has
    /// left ([`StoreError::PersonLeft`]).
    pub async fn start(
        &self,
        actor: &str,
        username: &str,
        ip: IpAddr,
        workstation: Option<&str>,
        now: jiff::Timestamp,
    ) -> Result<i64, StoreError> {
        let now_us = ts_to_us(now);
        let ip_s = ip.to_string();
        let started = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let person: Option<(i64, Option<i64>)> =
                sqlx::query_as("SELECT id, left_us FROM people WHERE username = $1")
                    .bind(username)
                    .fetch_optional(&mut *tx)
                    .await?;
            match person {
                None => None,
                // Disabled by the directory sync: a leaver gets no identity on the network.
                Some((_, Some(_))) => return Err(StoreError::PersonLeft(username.to_string())),
                Some((pid, None)) => {
                    let replaced: Vec<String> = sqlx::query_scalar(
                        "SELECT p.username FROM logon_sessions s JOIN people p ON p.id = s.person_id \
                         WHERE s.ip = $1 AND s.ended_us IS NULL ORDER BY p.username",
                    )
                    .bind(&ip_s)
                    .fetch_all(&mut *tx)
                    .await?;
                    sqlx::query("UPDATE logon_sessions SET ended_us = $1 WHERE ip = $2 AND ended_us IS NULL")
                        .bind(now_us)
                        .bind(&ip_s)
                        .execute(&mut *tx)
                        .await?;
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO logon_sessions (person_id, workstation, ip, started_us, last_seen_us) \
                         VALUES ($1, $2, $3, $4, $4) RETURNING id",
                    )
                    .bind(pid)
                    .bind(workstation)
                    .bind(&ip_s)
                    .bind(now_us)
                    .fetch_one(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Some((id, replaced))
                }
            }
        });
        let (id, replaced) =
            started.ok_or_else(|| StoreError::UnknownUser(username.to_string()))?;
        self.store
            .audit()
            .append(
                actor,
                "session.start",
                username,
                &serde_json::json!({
                    "ip": ip_s,
                    "workstation": workstation,
                    "session": id,
                    "ended_at_this_address": replaced,
                }),
                now,
            )
            .await?;
        Ok(id)
    }

    /// End the session open at `ip`, recorded in the audit log (action `session.end`,
    /// the address as subject, whose sessions ended in the details). Returns how many
    /// were ended (0 or 1).
    pub async fn end_by_ip(
        &self,
        actor: &str,
        ip: IpAddr,
        now: jiff::Timestamp,
    ) -> Result<u64, StoreError> {
        let ip_s = ip.to_string();
        let ended: Vec<String> = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let ended: Vec<String> = sqlx::query_scalar(
                "SELECT p.username FROM logon_sessions s JOIN people p ON p.id = s.person_id \
                 WHERE s.ip = $1 AND s.ended_us IS NULL ORDER BY p.username",
            )
            .bind(&ip_s)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query("UPDATE logon_sessions SET ended_us = $1 WHERE ip = $2 AND ended_us IS NULL")
                .bind(ts_to_us(now))
                .bind(&ip_s)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            ended
        });
        self.store
            .audit()
            .append(
                actor,
                "session.end",
                &ip_s,
                &serde_json::json!({ "ip": ip_s, "ended_for": ended }),
                now,
            )
            .await?;
        Ok(ended.len() as u64)
    }

    /// End every session `username` has open, recorded in the audit log (action
    /// `session.end`, the person as subject, the addresses in the details). Returns how
    /// many were ended; an unknown username is an error.
    pub async fn end(
        &self,
        actor: &str,
        username: &str,
        now: jiff::Timestamp,
    ) -> Result<u64, StoreError> {
        let ended: Option<Vec<String>> = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let pid: Option<i64> = sqlx::query_scalar("SELECT id FROM people WHERE username = $1")
                .bind(username)
                .fetch_optional(&mut *tx)
                .await?;
            match pid {
                None => None,
                Some(pid) => {
                    let ips: Vec<String> = sqlx::query_scalar(
                        "SELECT ip FROM logon_sessions WHERE person_id = $1 AND ended_us IS NULL \
                         ORDER BY ip",
                    )
                    .bind(pid)
                    .fetch_all(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE logon_sessions SET ended_us = $1 WHERE ended_us IS NULL AND person_id = $2",
                    )
                    .bind(ts_to_us(now))
                    .bind(pid)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Some(ips)
                }
            }
        });
        let ips = ended.ok_or_else(|| StoreError::UnknownUser(username.to_string()))?;
        self.store
            .audit()
            .append(
                actor,
                "session.end",
                username,
                &serde_json::json!({ "ips": ips }),
                now,
            )
            .await?;
        Ok(ips.len() as u64)
    }

    /// End the open session `id` (a logoff script's call), recorded in the audit log
    /// (action `session.end`, the person as subject, the address and session id in the
    /// details). Returns the person's username, or `None` when no such session is open
    /// (unknown, or ended already): nothing is recorded then.
    pub async fn end_id(
        &self,
        actor: &str,
        id: i64,
        now: jiff::Timestamp,
    ) -> Result<Option<String>, StoreError> {
        let ended: Option<(String, String)> = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let open: Option<(String, String)> = sqlx::query_as(
                "SELECT p.username, s.ip FROM logon_sessions s JOIN people p ON p.id = s.person_id \
                 WHERE s.id = $1 AND s.ended_us IS NULL",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if open.is_some() {
                sqlx::query("UPDATE logon_sessions SET ended_us = $1 WHERE id = $2")
                    .bind(ts_to_us(now))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            open
        });
        let Some((username, ip)) = ended else {
            return Ok(None);
        };
        self.store
            .audit()
            .append(
                actor,
                "session.end",
                &username,
                &serde_json::json!({ "ip": ip, "session": id }),
                now,
            )
            .await?;
        Ok(Some(username))
    }

    /// A heartbeat for the open session `id`. Returns false when it is not open (the
    /// agent should log on again).
    pub async fn heartbeat(&self, id: i64, now: jiff::Timestamp) -> Result<bool, StoreError> {
        let n = with_pool!(self.store.pool(), p => {
            sqlx::query("UPDATE logon_sessions SET last_seen_us = $1 WHERE id = $2 AND ended_us IS NULL")
                .bind(ts_to_us(now))
                .bind(id)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Record activity on the session open at `ip`. Returns false when none is open.
    pub async fn touch(&self, ip: IpAddr, now: jiff::Timestamp) -> Result<bool, StoreError> {
        let n = with_pool!(self.store.pool(), p => {
            sqlx::query("UPDATE logon_sessions SET last_seen_us = $1 WHERE ip = $2 AND ended_us IS NULL")
                .bind(ts_to_us(now))
                .bind(ip.to_string())
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// End sessions not seen since `before` (a logoff that never arrived). Returns how many.
    pub async fn expire_idle(
        &self,
        before: jiff::Timestamp,
        now: jiff::Timestamp,
    ) -> Result<u64, StoreError> {
        let n = with_pool!(self.store.pool(), p => {
            sqlx::query("UPDATE logon_sessions SET ended_us = $1 WHERE ended_us IS NULL AND last_seen_us < $2")
                .bind(ts_to_us(now))
                .bind(ts_to_us(before))
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n)
    }

    /// End the open sessions recorded with `workstation` (the captive portal's) that
    /// started before `started_before`: a portal sign-in lasts a configured time. Each is
    /// audited (`session.expire`, the person as subject). Returns how many ended.
    pub async fn end_started_before(
        &self,
        actor: &str,
        workstation: &str,
        started_before: jiff::Timestamp,
        now: jiff::Timestamp,
    ) -> Result<u64, StoreError> {
        let ended: Vec<(i64, String, String)> = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let ended: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT s.id, p.username, s.ip FROM logon_sessions s JOIN people p ON p.id = s.person_id \
                 WHERE s.ended_us IS NULL AND s.workstation = $1 AND s.started_us < $2 ORDER BY s.id",
            )
            .bind(workstation)
            .bind(ts_to_us(started_before))
            .fetch_all(&mut *tx)
            .await?;
            for (id, _, _) in &ended {
                sqlx::query("UPDATE logon_sessions SET ended_us = $1 WHERE id = $2")
                    .bind(ts_to_us(now))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            ended
        });
        for (id, username, ip) in &ended {
            self.store
                .audit()
                .append(
                    actor,
                    "session.expire",
                    username,
                    &serde_json::json!({ "ip": ip, "session": id, "workstation": workstation }),
                    now,
                )
                .await?;
        }
        Ok(ended.len() as u64)
    }

    /// Every open session with the person's role, year group, form and groups, by IP.
    pub async fn active(&self) -> Result<Vec<ActiveSession>, StoreError> {
        let (rows, members) = with_pool!(self.store.pool(), p => {
            let rows = sqlx::query(
                "SELECT s.ip, s.workstation, s.started_us, s.last_seen_us, p.id AS person_id, \
                 p.username, p.display_name, p.role, p.year_group, p.form \
                 FROM logon_sessions s JOIN people p ON p.id = s.person_id \
                 WHERE s.ended_us IS NULL ORDER BY s.ip",
            )
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let ip: String = r.try_get("ip")?;
                let ip: IpAddr = ip
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("session IP {ip:?}")))?;
                let person_id: i64 = r.try_get("person_id")?;
                out.push((person_id, ActiveSession {
                    ip,
                    username: r.try_get("username")?,
                    display_name: r.try_get("display_name")?,
                    role: r.try_get("role")?,
                    year_group: r.try_get("year_group")?,
                    form: r.try_get("form")?,
                    groups: Vec::new(),
                    workstation: r.try_get("workstation")?,
                    started: us_to_ts(r.try_get("started_us")?)?,
                    last_seen: us_to_ts(r.try_get("last_seen_us")?)?,
                }));
            }
            let members: Vec<(i64, String)> = sqlx::query_as(
                "SELECT m.person_id, g.name FROM memberships m JOIN groups g ON g.id = m.group_id \
                 WHERE m.person_id IN (SELECT person_id FROM logon_sessions WHERE ended_us IS NULL) \
                 ORDER BY g.name",
            )
            .fetch_all(p)
            .await?;
            (out, members)
        });
        let mut groups: HashMap<i64, Vec<String>> = HashMap::new();
        for (pid, g) in members {
            groups.entry(pid).or_default().push(g);
        }
        Ok(rows
            .into_iter()
            .map(|(pid, mut s)| {
                s.groups = groups.get(&pid).cloned().unwrap_or_default();
                s
            })
            .collect())
    }
}
