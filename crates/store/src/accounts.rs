//! The console's own records: accounts (a role for a person of the roster, with an
//! Argon2id hash), browser sessions, API tokens and failed sign-ins.
//!
//! This module only persists: hashing, password rules and what a role may do live in the
//! web crate (`hallpass-web`). Secrets never reach the database: sessions and tokens are
//! stored as the SHA-256 of the random secret the client holds, so a copy of the database
//! signs nobody in. Account changes write an audit entry here, in the same call.

use crate::BeginWrite as _;
use serde::Serialize;
use sqlx::Row;

use crate::reads::{like_escape, minute_floor};
use crate::{Store, StoreError, ts_to_us, us_to_ts, with_pool};

/// A console account as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub username: String,
    pub display_name: String,
    pub role: String,
    /// Year groups a head of year is scoped to (empty for other roles).
    pub years: Vec<String>,
    #[serde(skip)]
    pub password_hash: String,
    pub created: jiff::Timestamp,
    pub disabled: Option<jiff::Timestamp>,
}

/// A browser session as stored (looked up by the hash of its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub secret_hash: String,
    pub username: String,
    pub csrf_token: String,
    pub created: jiff::Timestamp,
    pub last_seen: jiff::Timestamp,
    pub ended: Option<jiff::Timestamp>,
}

/// An API token as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub name: String,
    pub scopes: Vec<String>,
    pub created: jiff::Timestamp,
    pub revoked: Option<jiff::Timestamp>,
}

/// Console accounts, sessions, tokens and sign-in failures; from [`Store::accounts`].
pub struct Accounts<'a> {
    pub(crate) store: &'a Store,
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn opt_ts(us: Option<i64>) -> Result<Option<jiff::Timestamp>, StoreError> {
    us.map(us_to_ts).transpose()
}

const ACCOUNT_COLUMNS: &str = "a.username, p.display_name, a.role, a.years, a.password_hash, \
     a.created_us, a.disabled_us FROM console_accounts a JOIN people p ON p.username = a.username";

impl Accounts<'_> {
    /// Create an account for `username`, who must be in the roster. Refused (nothing
    /// written) when the person is unknown or already has an account.
    pub async fn add(
        &self,
        username: &str,
        role: &str,
        years: &[String],
        password_hash: &str,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<Account, StoreError> {
        let now_us = ts_to_us(now);
        let years_text = years.join(",");
        let outcome: Result<(), StoreError> = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let person: Option<i64> = sqlx::query_scalar("SELECT id FROM people WHERE username = $1")
                .bind(username)
                .fetch_optional(&mut *tx)
                .await?;
            if person.is_none() {
                Err(StoreError::UnknownUser(username.to_string()))
            } else {
                let taken: Option<String> = sqlx::query_scalar(
                    "SELECT username FROM console_accounts WHERE username = $1",
                )
                .bind(username)
                .fetch_optional(&mut *tx)
                .await?;
                if taken.is_some() {
                    Err(StoreError::Invalid(format!(
                        "{username:?} already has a console account (change its password with \
                         `hallpass account passwd`)"
                    )))
                } else {
                    sqlx::query(
                        "INSERT INTO console_accounts (username, role, years, password_hash, created_us, updated_us) \
                         VALUES ($1, $2, $3, $4, $5, $5)",
                    )
                    .bind(username)
                    .bind(role)
                    .bind(&years_text)
                    .bind(password_hash)
                    .bind(now_us)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }
            }
        });
        outcome?;
        let details = serde_json::json!({ "role": role, "years": years });
        self.store
            .audit()
            .append(actor, "account.add", username, &details, now)
            .await?;
        self.get(username)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("account {username} vanished")))
    }

    /// The account of `username`, if any (disabled ones too).
    pub async fn get(&self, username: &str) -> Result<Option<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} WHERE a.username = $1");
        let row = with_pool!(self.store.pool(), p => {
            match sqlx::query(&sql).bind(username).fetch_optional(p).await? {
                None => None,
                Some(r) => Some(row_to_account(&r)?),
            }
        });
        Ok(row)
    }

    /// Every account, by username.
    pub async fn list(&self) -> Result<Vec<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} ORDER BY a.username");
        let rows = with_pool!(self.store.pool(), p => {
            let rows = sqlx::query(&sql).fetch_all(p).await?;
            rows.iter().map(row_to_account).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Replace the password hash; ends the account's open sessions.
    pub async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        let now_us = ts_to_us(now);
        let changed = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let n = sqlx::query(
                "UPDATE console_accounts SET password_hash = $1, updated_us = $2 WHERE username = $3",
            )
            .bind(password_hash)
            .bind(now_us)
            .bind(username)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query("UPDATE console_sessions SET ended_us = $1 WHERE username = $2 AND ended_us IS NULL")
                .bind(now_us)
                .bind(username)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            n
        });
        if changed == 0 {
            return Err(no_account(username));
        }
        self.store
            .audit()
            .append(
                actor,
                "account.passwd",
                username,
                &serde_json::json!({}),
                now,
            )
            .await?;
        Ok(())
    }

    /// Disable the account (it can no longer sign in) and end its sessions.
    pub async fn disable(
        &self,
        username: &str,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        let now_us = ts_to_us(now);
        let changed = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let n = sqlx::query(
                "UPDATE console_accounts SET disabled_us = COALESCE(disabled_us, $1), updated_us = $1 \
                 WHERE username = $2",
            )
            .bind(now_us)
            .bind(username)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query("UPDATE console_sessions SET ended_us = $1 WHERE username = $2 AND ended_us IS NULL")
                .bind(now_us)
                .bind(username)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            n
        });
        if changed == 0 {
            return Err(no_account(username));
        }
        self.store
            .audit()
            .append(
                actor,
                "account.disable",
                username,
                &serde_json::json!({}),
                now,
            )
            .await?;
        Ok(())
    }

    /// Record a new browser session (the caller keeps the secret; this stores its hash).
    pub async fn start_session(
        &self,
        secret_hash: &str,
        username: &str,
        csrf_token: &str,
        client_ip: Option<&str>,
        now: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        let now_us = ts_to_us(now);
        with_pool!(self.store.pool(), p => {
            sqlx::query(
                "INSERT INTO console_sessions (secret_hash, username, csrf_token, client_ip, created_us, last_seen_us) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(secret_hash)
            .bind(username)
            .bind(csrf_token)
            .bind(client_ip)
            .bind(now_us)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// The session with this secret hash, if it exists (ended ones too: the caller decides).
    pub async fn session(&self, secret_hash: &str) -> Result<Option<ConsoleSession>, StoreError> {
        let row = with_pool!(self.store.pool(), p => {
            let row: Option<(String, String, String, i64, i64, Option<i64>)> = sqlx::query_as(
                "SELECT secret_hash, username, csrf_token, created_us, last_seen_us, ended_us \
                 FROM console_sessions WHERE secret_hash = $1",
            )
            .bind(secret_hash)
            .fetch_optional(p)
            .await?;
            row
        });
        row.map(
            |(secret_hash, username, csrf_token, created, last_seen, ended)| {
                Ok(ConsoleSession {
                    secret_hash,
                    username,
                    csrf_token,
                    created: us_to_ts(created)?,
                    last_seen: us_to_ts(last_seen)?,
                    ended: opt_ts(ended)?,
                })
            },
        )
        .transpose()
    }

    /// Note activity on a session (for the idle timeout).
    pub async fn touch_session(
        &self,
        secret_hash: &str,
        now: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        with_pool!(self.store.pool(), p => {
            sqlx::query("UPDATE console_sessions SET last_seen_us = $1 WHERE secret_hash = $2")
                .bind(ts_to_us(now))
                .bind(secret_hash)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// End a session (sign-out or timeout). Returns whether it was open.
    pub async fn end_session(
        &self,
        secret_hash: &str,
        now: jiff::Timestamp,
    ) -> Result<bool, StoreError> {
        let n = with_pool!(self.store.pool(), p => {
            sqlx::query("UPDATE console_sessions SET ended_us = $1 WHERE secret_hash = $2 AND ended_us IS NULL")
                .bind(ts_to_us(now))
                .bind(secret_hash)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Store a new API token (its hash) with the operations it may perform.
    pub async fn create_token(
        &self,
        name: &str,
        secret_hash: &str,
        scopes: &[String],
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        let scopes_text = scopes.join(",");
        let inserted = with_pool!(self.store.pool(), p => {
            sqlx::query(
                "INSERT INTO api_tokens (name, secret_hash, scopes, created_us) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(secret_hash)
            .bind(&scopes_text)
            .bind(ts_to_us(now))
            .execute(p)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            return Err(StoreError::Invalid(format!(
                "a token named {name:?} already exists: choose another name"
            )));
        }
        let details = serde_json::json!({ "scopes": scopes });
        self.store
            .audit()
            .append(actor, "token.create", name, &details, now)
            .await?;
        Ok(())
    }

    /// The live (not revoked) token with this secret hash.
    pub async fn token(&self, secret_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        let row = with_pool!(self.store.pool(), p => {
            let row: Option<(String, String, i64, Option<i64>)> = sqlx::query_as(
                "SELECT name, scopes, created_us, revoked_us FROM api_tokens \
                 WHERE secret_hash = $1 AND revoked_us IS NULL",
            )
            .bind(secret_hash)
            .fetch_optional(p)
            .await?;
            row
        });
        row.map(|(name, scopes, created, revoked)| {
            Ok(ApiToken {
                name,
                scopes: split_list(&scopes),
                created: us_to_ts(created)?,
                revoked: opt_ts(revoked)?,
            })
        })
        .transpose()
    }

    /// Record a failed sign-in under `key` (`user:NAME` or `ip:ADDR`).
    pub async fn record_failure(&self, key: &str, now: jiff::Timestamp) -> Result<(), StoreError> {
        with_pool!(self.store.pool(), p => {
            sqlx::query("INSERT INTO signin_failures (key, at_us) VALUES ($1, $2)")
                .bind(key)
                .bind(ts_to_us(now))
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Failed sign-ins under `key` since `since`: how many, and the latest.
    pub async fn failures_since(
        &self,
        key: &str,
        since: jiff::Timestamp,
    ) -> Result<(i64, Option<jiff::Timestamp>), StoreError> {
        let (n, last): (i64, Option<i64>) = with_pool!(self.store.pool(), p => {
            sqlx::query_as(
                "SELECT COUNT(*), MAX(at_us) FROM signin_failures WHERE key = $1 AND at_us >= $2",
            )
            .bind(key)
            .bind(ts_to_us(since))
            .fetch_one(p)
            .await?
        });
        Ok((n, opt_ts(last)?))
    }

    /// Forget the failures under `key` (after a successful sign-in).
    pub async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        with_pool!(self.store.pool(), p => {
            sqlx::query("DELETE FROM signin_failures WHERE key = $1")
                .bind(key)
                .execute(p)
                .await?;
        });
        Ok(())
    }
}

fn no_account(username: &str) -> StoreError {
    StoreError::Invalid(format!(
        "{username:?} has no console account (see `hallpass account list`)"
    ))
}

fn row_to_account<R>(r: &R) -> Result<Account, StoreError>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'d> i64: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> Option<i64>: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> String: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    let years: String = r.try_get("years")?;
    Ok(Account {
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        role: r.try_get("role")?,
        years: split_list(&years),
        password_hash: r.try_get("password_hash")?,
        created: us_to_ts(r.try_get("created_us")?)?,
        disabled: opt_ts(r.try_get("disabled_us")?)?,
    })
}

impl Store {
    /// Console accounts, sessions, API tokens and sign-in failures.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts { store: self }
    }

    /// The console's activity search (metadata only).
    pub fn activity(&self) -> Activity<'_> {
        Activity { store: self }
    }
}

/// Which recorded events an activity search returns. `from` inclusive, `to` exclusive;
/// every other field narrows when set. `year_groups`, when set, restricts to those years
/// (a head of year's scope).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFilter {
    pub from: Option<jiff::Timestamp>,
    pub to: Option<jiff::Timestamp>,
    pub person: Option<String>,
    pub client_ip: Option<String>,
    /// A host name: matches it and its subdomains.
    pub site: Option<String>,
    pub category: Option<String>,
    pub verdict: Option<String>,
    pub year_groups: Option<Vec<String>>,
    pub limit: i64,
    pub offset: i64,
}

/// One recorded event, metadata only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityRow {
    pub kind: String,
    pub at: jiff::Timestamp,
    pub person: Option<String>,
    pub year_group: Option<String>,
    pub client_ip: Option<String>,
    pub target: String,
    pub categories: String,
    pub verdict: String,
    pub rule: Option<String>,
    pub document: Option<String>,
    pub clause: Option<String>,
}

/// The activity search; from [`Store::activity`].
pub struct Activity<'a> {
    store: &'a Store,
}

type ActivityTuple = (
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

const US_PER_DAY: i64 = 86_400_000_000;

impl Activity<'_> {
    /// Events matching `f`, newest first: one page of at most `f.limit` (1..=500) rows.
    /// Decisions through their time index, and DNS visits (allowed queries, one row per
    /// name and minute, at their first query) through theirs; never the `events` view.
    pub async fn search(&self, f: &ActivityFilter) -> Result<Vec<ActivityRow>, StoreError> {
        let rows = self.search_rows(f).await?;
        rows.into_iter()
            .map(|r| {
                Ok(ActivityRow {
                    kind: r.0,
                    at: us_to_ts(r.1)?,
                    person: r.2.filter(|p| !p.is_empty()),
                    year_group: r.3,
                    client_ip: r.4,
                    target: r.5,
                    categories: r.6,
                    verdict: r.7,
                    rule: r.8,
                    document: r.9,
                    clause: r.10,
                })
            })
            .collect()
    }

    async fn search_rows(&self, f: &ActivityFilter) -> Result<Vec<ActivityTuple>, StoreError> {
        let limit = f.limit.clamp(1, 500);
        let offset = f.offset.clamp(0, 100_000);
        // Each arm needs at most the rows up to the end of the page.
        let arm_limit = limit + offset;
        let from = f.from.map_or(0, ts_to_us).max(0);
        let to = f.to.map_or(i64::MAX / 2, ts_to_us);
        // Visits are allowed queries: never a block or a warn.
        let visits_too = !matches!(f.verdict.as_deref(), Some("block" | "warn"));
        let rows: Vec<ActivityTuple> = with_pool!(self.store.pool(), p => {
            let mut qb = sqlx::QueryBuilder::new("SELECT * FROM (SELECT * FROM (");
            // The same filters on each arm; `$target` names the arm's target column.
            macro_rules! filters {
                ($target:literal) => {{
                    if let Some(person) = &f.person {
                        qb.push(" AND person = ").push_bind(person.clone());
                    }
                    if let Some(ip) = &f.client_ip {
                        qb.push(" AND client_ip = ").push_bind(ip.clone());
                    }
                    if let Some(site) = &f.site {
                        let site = site.trim_end_matches('.').to_ascii_lowercase();
                        qb.push(concat!(" AND (", $target, " = ")).push_bind(site.clone());
                        qb.push(concat!(" OR ", $target, " LIKE "))
                            .push_bind(format!("%.{}", like_escape(&site)));
                        qb.push(" ESCAPE '\\')");
                    }
                    if let Some(category) = &f.category {
                        qb.push(" AND (',' || categories || ',') LIKE ")
                            .push_bind(format!("%,{},%", like_escape(category)));
                        qb.push(" ESCAPE '\\'");
                    }
                    if let Some(verdict) = &f.verdict {
                        qb.push(" AND verdict = ").push_bind(verdict.clone());
                    }
                    if let Some(years) = &f.year_groups {
                        if years.is_empty() {
                            qb.push(" AND 1 = 0");
                        } else {
                            qb.push(" AND year_group IN (");
                            let mut sep = qb.separated(", ");
                            for y in years {
                                sep.push_bind(y.clone());
                            }
                            qb.push(")");
                        }
                    }
                }};
            }
            qb.push(
                "SELECT kind, at_us, person, year_group, client_ip, target, categories, \
                 verdict, rule, document, clause FROM decisions WHERE at_us >= ",
            );
            qb.push_bind(from).push(" AND at_us < ").push_bind(to);
            filters!("target");
            qb.push(" ORDER BY at_us DESC LIMIT ").push_bind(arm_limit);
            qb.push(") AS d");
            if visits_too {
                qb.push(
                    " UNION ALL SELECT * FROM (SELECT 'dns' AS kind, first_us AS at_us, person, \
                     year_group, client_ip, name AS target, categories, verdict, rule, document, \
                     clause FROM dns_visits WHERE minute_us >= ",
                );
                qb.push_bind(minute_floor(from))
                    .push(" AND minute_us <= ")
                    .push_bind(minute_floor(to.saturating_sub(1)));
                qb.push(" AND first_us >= ").push_bind(from);
                qb.push(" AND first_us < ").push_bind(to);
                filters!("name");
                qb.push(" ORDER BY minute_us DESC, first_us DESC LIMIT ").push_bind(arm_limit);
                qb.push(") AS v");
            }
            qb.push(") AS found ORDER BY at_us DESC LIMIT ").push_bind(limit);
            qb.push(" OFFSET ").push_bind(offset);
            qb.build_query_as().fetch_all(p).await?
        });
        Ok(rows)
    }

    /// Recorded events in `from..to` (DNS visits count every query they stand for), all
    /// verdicts or only `verdict` (the dashboard's numbers). Whole UTC days inside the range
    /// come from the `traffic_daily` roll-up; the partial days at its ends are counted
    /// from `decisions` and `dns_visits` through their time indexes, so the count is exact
    /// and a week costs about what its two end days do. (In the roll-up `safe_search`
    /// counts as `allow`; a verdict other than allow, warn or block is counted exactly.)
    pub async fn count_between(
        &self,
        from: jiff::Timestamp,
        to: jiff::Timestamp,
        verdict: Option<&str>,
    ) -> Result<i64, StoreError> {
        let (from, to) = (ts_to_us(from), ts_to_us(to));
        if from >= to {
            return Ok(0);
        }
        let rolled_up = verdict.is_none_or(|v| matches!(v, "allow" | "warn" | "block"));
        let first_full = from.div_euclid(US_PER_DAY) + i64::from(from.rem_euclid(US_PER_DAY) != 0);
        let end_full = to.div_euclid(US_PER_DAY);
        if !rolled_up || first_full >= end_full {
            return self.count_exact(from, to, verdict).await;
        }
        let v = verdict.unwrap_or("");
        let days: i64 = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM traffic_daily \
                 WHERE day >= $1 AND day < $2 AND category = '' AND ($3 = '' OR verdict = $3)",
            )
            .bind(first_full)
            .bind(end_full)
            .bind(v)
            .fetch_one(p)
            .await?
        });
        let head = self
            .count_exact(from, first_full * US_PER_DAY, verdict)
            .await?;
        let tail = self.count_exact(end_full * US_PER_DAY, to, verdict).await?;
        Ok(days + head + tail)
    }

    /// Decisions plus visit queries in `from..to`, from the tables themselves.
    async fn count_exact(
        &self,
        from: i64,
        to: i64,
        verdict: Option<&str>,
    ) -> Result<i64, StoreError> {
        if from >= to {
            return Ok(0);
        }
        let v = verdict.unwrap_or("");
        let n: i64 = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar(
                "SELECT CAST((SELECT COUNT(*) FROM decisions \
                 WHERE at_us >= $1 AND at_us < $2 AND ($5 = '' OR verdict = $5)) \
                 + (SELECT COALESCE(SUM(queries), 0) FROM dns_visits \
                 WHERE minute_us >= $3 AND minute_us <= $4 AND first_us >= $1 AND first_us < $2 \
                 AND ($5 = '' OR verdict = $5)) AS BIGINT)",
            )
            .bind(from)
            .bind(to)
            .bind(minute_floor(from))
            .bind(minute_floor(to - 1))
            .bind(v)
            .fetch_one(p)
            .await?
        });
        Ok(n)
    }
}
