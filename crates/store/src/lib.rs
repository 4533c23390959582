//! Persistence for Hallpass: everything the system records lands here. Who the people are
//! (imported from the school's MIS), who is logged on at which IP address, every filtering
//! decision as an [`Event`] (metadata, with content in a separate table so access to it can
//! be restricted and audited on its own), the hash-chained [`audit`] log of every action and
//! every view of someone's activity, retention that really deletes, and the queries behind
//! the reports. One school runs it embedded on SQLite (`sqlite://PATH`, the default, in the
//! data directory); a trust points every node at one PostgreSQL server (`postgres://...`).
//! Both are first-class: one schema (two migration directories because the DDL differs in
//! type names), one query layer, one test suite run against both. The one exception is the
//! event writer's SQLite inserts, which go through a `rusqlite` connection of the writer's
//! own (`writer::sqlite_sink`, which says why).
//!
//! Enforcement points never wait for the database: they hand events to the [`EventWriter`],
//! a bounded queue drained by one task that commits a batch per transaction (group commit),
//! spills to an append-only local file when the database is slow or down and replays it when
//! it comes back.
//!
//! # Why an enum over two pools and not `sqlx::Any`
//! `Any` erases types to a lowest common denominator (no `BYTEA`/`BLOB` columns, no
//! typed binds in `QueryBuilder`, an extra conversion layer on the hot insert path). Instead
//! a private `Pool` enum holds a `SqlitePool` or a `PgPool`, and the `with_pool!` macro
//! expands one block of code, written once, into both arms, so every query is the same SQL
//! text on both databases (`$1` placeholders, which SQLite also understands) and is type
//! checked against each driver. Portable SQL only: integers for times (microseconds since
//! the epoch), text for IP addresses, `ON CONFLICT`, `RETURNING`, `CAST(... AS BIGINT)`.
//!
//! Time is always a parameter (`now: jiff::Timestamp`); nothing here reads the clock except
//! the event writer's retry back-off.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub mod accounts;
pub mod alert_sources;
pub mod alerts;
pub mod audit;
pub mod audit_key;
mod audit_verify;
pub mod data_dir;
pub mod declarations;
mod event;
pub mod exceptions;
pub mod guests;
pub mod people;
mod people_sync;
pub mod quarantine;
pub mod reads;
pub mod reports;
pub mod retention;
mod roster;
pub mod safeguarding;
pub mod sessions;
pub mod writer;

pub use audit::{AuditEntry, AuditHead, AuditLog, VerifyProblem, VerifyReport};
pub use data_dir::DataDirError;
pub use event::{
    DetailObject, DnsDetail, Event, EventDetail, EventKind, VERDICT_BLOCK, detail_json,
};
pub use people::{ImportReport, People, PersonRecord, RosterError};
pub use people_sync::SyncReport;
pub use reads::export::{BlockingWriter, ExportOptions, ExportSummary};
pub use reads::hourly::{ActivitySummary, DayTotals, HourlyActivity, SiteTotals, summarise};
pub use reads::protection::{EraseOptions, EraseReport, Hold};
pub use reads::timeline::{
    TimelineCursor, TimelineEntry, TimelinePage, TimelineQuery, TimelineSource,
};
pub use reports::{CategoryDay, Count, ReportFilter, Reports, TrafficBy, TrafficCount};
pub use retention::{Retention, RetentionCounts};
pub use sessions::{ActiveSession, Sessions};
pub use writer::{Durability, EventWriter, EventWriterConfig, WriteError, WriterMetrics};
#[doc(hidden)]
pub use writer::{StepObserver, WriterStep};

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or opened. `url` has its password redacted.
    #[error("database {url} is unavailable: {cause}")]
    Unavailable { url: String, cause: sqlx::Error },
    #[error(
        "unsupported database URL {0}: expected sqlite://PATH or postgres://USER@HOST/DATABASE"
    )]
    UnsupportedUrl(String),
    #[error("migrating database {url}: {cause}")]
    Migrate {
        url: String,
        cause: sqlx::migrate::MigrateError,
    },
    /// sqlx's own text already says "error returned from database": not said twice.
    #[error("{0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("unknown user {0:?}: import people first (hallpass people import)")]
    UnknownUser(String),
    /// The person was disabled by `hallpass directory sync` (no longer in the directory).
    #[error("{0:?} has left (disabled by the directory sync): no logon session is recorded")]
    PersonLeft(String),
    #[error("{0}")]
    Invalid(String),
    /// What was named does not exist.
    #[error("{0}")]
    NotFound(String),
    #[error("corrupt data in the database: {0}")]
    Corrupt(String),
    /// The audit key file is missing, unreadable or not the chain's key.
    #[error("{0}")]
    AuditKey(String),
    /// A head given to [`AuditLog::verify`] that is not one (`--head`).
    #[error("malformed head {given:?}: {why}")]
    MalformedHead { given: String, why: String },
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// Erasure refused: the person's data is under a hold in force.
    #[error("{person:?} is under hold {hold} ({reason}): release it before erasing their data")]
    Held {
        person: String,
        hold: i64,
        reason: String,
    },
}

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long SQLite waits for a lock held by another connection before failing.
    pub busy_timeout: Duration,
    /// How long to wait for a database connection (PostgreSQL: also the connect timeout).
    pub acquire_timeout: Duration,
    /// Pool size (SQLite serialises writers anyway; readers use the rest).
    pub max_connections: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            busy_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            max_connections: 8,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Expand one block of code for whichever database the pool holds: `$p` is bound to the
/// concrete pool in each arm, so the same SQL and the same Rust compile against both drivers.
macro_rules! with_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::Pool::Sqlite($p) => $body,
            $crate::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_pool;

/// A transaction that will write. On SQLite it takes the write lock at `BEGIN` (`BEGIN
/// IMMEDIATE`): a deferred transaction that reads and then writes fails at once with
/// `SQLITE_BUSY_SNAPSHOT` (517, "database is locked") when another connection wrote in
/// between, and the busy timeout cannot help it. PostgreSQL: an ordinary `BEGIN`.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>>
    + Send;
}

impl BeginWrite for sqlx::SqlitePool {
    type Db = sqlx::Sqlite;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>>
    + Send {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl BeginWrite for sqlx::PgPool {
    type Db = sqlx::Postgres;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>>
    + Send {
        self.begin()
    }
}

/// Which database a store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

struct Inner {
    pool: Pool,
    url: String,
    /// SQLite: the database file, which the event writer opens a connection of its own to.
    sqlite_path: PathBuf,
    /// SQLite: the file's (device, inode) when opened, so the event writer can tell when
    /// it is deleted or replaced under a running server.
    sqlite_identity: Option<(u64, u64)>,
    /// Serialises audit appends in this process (the transaction and the primary key on
    /// `seq` serialise them across processes), and holds the audit key (`audit_key`).
    audit_lock: tokio::sync::Mutex<audit_key::KeyState>,
    /// Bumped after every audited change made through this store (a logon, an approval,
    /// an override...), so the engine's followers re-read at once instead of waiting for
    /// their next poll. Polling still catches changes made by other processes.
    changes: tokio::sync::watch::Sender<u64>,
}

/// A connection pool to the Hallpass database, with migrations applied. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.inner.url)
            .finish()
    }
}

/// Settings for every connection to a SQLite store: the store's pool and the event
/// writer's own connection (`sqlite_sink`).
/// * `synchronous = FULL`: a commit is on disk when it returns, so an acknowledged event
///   survives power loss, not just a process crash. (The event writer's connection then
///   switches to NORMAL and syncs the WAL itself: see `sqlite_sink`.)
/// * 8 MiB of page cache per connection (the default is 2 MiB, which the event table's
///   B-tree paths outgrow). Inserts append (event ids are time-ordered), so pages just
///   written are rarely read again: a larger cache only fills with them and shows up as
///   resident memory in the DNS server. 8 and 16 MiB ingest at the same rate (bench/store).
/// * Checkpoint the WAL every 32 MiB rather than every 4 MiB: pages that several batches
///   touch (the ends of the B-trees) are copied into the database once.
pub(crate) const SQLITE_SETTINGS: [(&str, &str); 3] = [
    ("synchronous", "FULL"),
    ("cache_size", "-8192"),
    ("wal_autocheckpoint", "8192"),
];

/// The default database file inside a data directory.
pub const DEFAULT_DB_FILE: &str = "hallpass.db";

impl Store {
    /// Connect to `sqlite://PATH` (created if missing, WAL, synchronous=FULL) or
    /// `postgres://...`, and apply migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, &StoreOptions::default()).await
    }

    /// Open the default SQLite database `DIR/hallpass.db`, creating `DIR` (0700) if needed,
    /// with the audit key `DIR/audit.key` (see [`audit_key`]).
    pub async fn connect_data_dir(dir: &Path) -> Result<Store, StoreError> {
        data_dir::create_private_dir(dir)?;
        let path = dir.join(DEFAULT_DB_FILE);
        let co = SqliteConnectOptions::new().filename(&path);
        let store =
            Store::connect_sqlite(co, sqlite_url_for(&path), &StoreOptions::default()).await?;
        store
            .use_audit_key_file(dir.join(audit_key::DEFAULT_KEY_FILE))
            .await;
        Ok(store)
    }

    /// Anchor the audit log with the key in `path` (created 0600 on first append if the
    /// chain has no keyed part yet). Without this the chain stays unkeyed.
    pub async fn use_audit_key_file(&self, path: PathBuf) {
        let mut state = self.inner.audit_lock.lock().await;
        *state = audit_key::KeyState {
            file: Some(path),
            ..audit_key::KeyState::default()
        };
    }

    /// [`Store::connect`] with explicit options.
    pub async fn connect_with(url: &str, opts: &StoreOptions) -> Result<Store, StoreError> {
        let shown = redact_url(url);
        let unavailable = |cause| StoreError::Unavailable {
            url: shown.clone(),
            cause,
        };
        let pool = if url.starts_with("sqlite:") {
            // An in-memory database would lose every record at exit, and the event
            // writer's own connection (sqlite_sink) needs a file to share.
            if url.contains(":memory:") || url.contains("mode=memory") {
                return Err(StoreError::UnsupportedUrl(shown));
            }
            let co = SqliteConnectOptions::from_str(url)
                .map_err(|_| StoreError::UnsupportedUrl(shown.clone()))?;
            return Store::connect_sqlite(co, shown, opts).await;
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let co = PgConnectOptions::from_str(url)
                .map_err(|_| StoreError::UnsupportedUrl(shown.clone()))?;
            // One direct connection first: the pool would only report a timeout, this
            // reports why (refused, authentication failed, no such database).
            let first = tokio::time::timeout(opts.acquire_timeout, PgConnection::connect_with(&co))
                .await
                .map_err(|_| unavailable(sqlx::Error::PoolTimedOut))?
                .map_err(unavailable)?;
            first.close().await.map_err(unavailable)?;
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections.max(1))
                .acquire_timeout(opts.acquire_timeout)
                .connect_with(co)
                .await
                .map_err(unavailable)?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(shown));
        };
        Store::finish(pool, shown, PathBuf::new()).await
    }

    async fn connect_sqlite(
        co: SqliteConnectOptions,
        shown: String,
        opts: &StoreOptions,
    ) -> Result<Store, StoreError> {
        let unavailable = |cause| StoreError::Unavailable {
            url: shown.clone(),
            cause,
        };
        if let Some(parent) = co.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            data_dir::create_private_dir(parent).map_err(|e| unavailable(sqlx::Error::Io(e)))?;
        }
        // Created 0600 here: SQLite would create it 0644, and gives its -wal and -shm
        // files the database's mode.
        if co.get_filename() != Path::new("") {
            data_dir::create_private_file(co.get_filename())
                .map_err(|e| unavailable(sqlx::Error::Io(e)))?;
        }
        let co = SQLITE_SETTINGS
            .iter()
            .fold(co, |co, (name, value)| co.pragma(*name, *value))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(opts.busy_timeout)
            .foreign_keys(true);
        let path = co.get_filename().to_path_buf();
        let pool = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(co)
            .await
            .map_err(unavailable)?;
        Store::finish(Pool::Sqlite(pool), shown, path).await
    }

    async fn finish(pool: Pool, shown: String, sqlite_path: PathBuf) -> Result<Store, StoreError> {
        let migrator = match &pool {
            Pool::Sqlite(_) => sqlx::migrate!("./migrations/sqlite"),
            Pool::Postgres(_) => sqlx::migrate!("./migrations/postgres"),
        };
        // An upgrade may copy every event (0003 re-keys them): say so before it starts.
        let applied_sql = "SELECT MAX(version) FROM _sqlx_migrations WHERE success";
        let applied: Option<i64> =
            with_pool!(&pool, p => sqlx::query_scalar(applied_sql).fetch_one(p).await)
                .ok()
                .flatten();
        let latest = migrator.iter().map(|m| m.version).max();
        if let (Some(from), Some(to)) = (applied, latest)
            && from < to
        {
            tracing::info!(
                database = %shown, from, to,
                "upgrading the database schema; on a large store this copies every event \
                 (about 10 seconds per million on SQLite): let it finish"
            );
        }
        let migrated = with_pool!(&pool, p => migrator.run(p).await);
        migrated.map_err(|cause| StoreError::Migrate {
            url: shown.clone(),
            cause,
        })?;
        let sqlite_identity = match pool {
            Pool::Sqlite(_) => {
                use std::os::unix::fs::MetadataExt;
                std::fs::metadata(&sqlite_path)
                    .ok()
                    .map(|m| (m.dev(), m.ino()))
            }
            Pool::Postgres(_) => None,
        };
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                url: shown,
                sqlite_path,
                sqlite_identity,
                audit_lock: tokio::sync::Mutex::new(audit_key::KeyState::default()),
                changes: tokio::sync::watch::Sender::new(0),
            }),
        })
    }

    /// The URL this store was opened with, password redacted.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    pub fn backend(&self) -> Backend {
        match self.inner.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite database file (empty on PostgreSQL).
    pub(crate) fn sqlite_path(&self) -> &Path {
        &self.inner.sqlite_path
    }

    /// SQLite: the database file's (device, inode) when the store opened it.
    pub(crate) fn sqlite_identity(&self) -> Option<(u64, u64)> {
        self.inner.sqlite_identity
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Woken after each audited change made through this store: followers of live state
    /// (sessions, exceptions) select on it beside their poll interval.
    pub fn watch_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    pub(crate) fn changed(&self) {
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The hash-chained audit log.
    pub fn audit(&self) -> AuditLog<'_> {
        AuditLog { store: self }
    }

    /// People, groups and memberships.
    pub fn people(&self) -> People<'_> {
        People { store: self }
    }

    /// Logon sessions: which person is at which IP address.
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions { store: self }
    }

    /// Acceptances of the acceptable-use declaration.
    pub fn declarations(&self) -> declarations::Declarations<'_> {
        declarations::Declarations { store: self }
    }

    /// The email filter's held messages.
    pub fn quarantine(&self) -> quarantine::Quarantine<'_> {
        quarantine::Quarantine { store: self }
    }

    /// The captive portal's guest codes.
    pub fn guests(&self) -> guests::Guests<'_> {
        guests::Guests { store: self }
    }

    /// Access requests, grants, warning acknowledgements and teacher overrides.
    pub fn exceptions(&self) -> exceptions::Exceptions<'_> {
        exceptions::Exceptions { store: self }
    }

    /// Alerts raised about people (conduct, safeguarding), routed by role.
    pub fn alerts(&self) -> alerts::Alerts<'_> {
        alerts::Alerts { store: self }
    }

    /// What the safeguarding follower reads: rule decisions and recorded content.
    pub fn alert_sources(&self) -> alert_sources::AlertSources<'_> {
        alert_sources::AlertSources { store: self }
    }

    /// Sanctions, incidents and investigations.
    pub fn safeguarding(&self) -> safeguarding::Safeguarding<'_> {
        safeguarding::Safeguarding { store: self }
    }

    /// Notification emails waiting for the SMTP relay.
    pub fn outbox(&self) -> alerts::Outbox<'_> {
        alerts::Outbox { store: self }
    }

    /// The queries behind the reports.
    pub fn reports(&self) -> Reports<'_> {
        Reports { store: self }
    }

    /// Delete what has expired under `cfg` (in batches) and write one audit entry.
    pub async fn retention_run(
        &self,
        cfg: &Retention,
        now: jiff::Timestamp,
    ) -> Result<RetentionCounts, StoreError> {
        retention::run(self, cfg, now, false).await
    }

    /// Count what [`Store::retention_run`] would delete, changing nothing.
    pub async fn retention_dry_run(
        &self,
        cfg: &Retention,
        now: jiff::Timestamp,
    ) -> Result<RetentionCounts, StoreError> {
        retention::run(self, cfg, now, true).await
    }

    /// Number of stored events (all kinds): every decision, and every query a visit counts.
    pub async fn event_count(&self) -> Result<i64, StoreError> {
        let n: i64 = with_pool!(self.pool(), p => {
            sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM decisions) \
                 + (SELECT CAST(COALESCE(SUM(queries), 0) AS BIGINT) FROM dns_visits)",
            )
            .fetch_one(p)
            .await?
        });
        Ok(n)
    }

    /// Close the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        with_pool!(self.pool(), p => p.close().await)
    }
}

/// The file a `sqlite:` URL names (`None` for another scheme or an unparsable URL).
pub fn sqlite_path_of_url(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    SqliteConnectOptions::from_str(url)
        .ok()
        .map(|co| co.get_filename().to_path_buf())
}

/// `sqlite://` URL for a file path.
pub fn sqlite_url_for(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// The URL with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_string();
    };
    format!(
        "{}{}:***{}",
        &url[..scheme_end + 3],
        &userinfo[..colon],
        &rest[at..]
    )
}

/// Microseconds since the Unix epoch, the representation of every time in the database.
pub(crate) fn ts_to_us(t: jiff::Timestamp) -> i64 {
    // as_microsecond is exact for the whole jiff range (fits i64).
    t.as_microsecond()
}

pub(crate) fn us_to_ts(us: i64) -> Result<jiff::Timestamp, StoreError> {
    jiff::Timestamp::from_microsecond(us)
        .map_err(|e| StoreError::Corrupt(format!("time {us} out of range: {e}")))
}

/// Where the data directory is when none is given.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("HALLPASS_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("./hallpass-data"))
}

/// For tests that tamper with the database behind the store's back (the audit chain must
/// notice). Not for production code: nothing else should write outside the store's API.
#[doc(hidden)]
pub mod testing {
    use super::*;

    /// Run raw SQL (several statements allowed) straight against the store's database.
    pub async fn execute_raw_sql_bypassing_the_store(
        store: &Store,
        sql: &str,
    ) -> Result<(), StoreError> {
        with_pool!(store.pool(), p => {
            sqlx::raw_sql(sql).execute(p).await?;
        });
        Ok(())
    }

    /// The first column of every row `sql` returns, as text (for tests that check
    /// exactly what a table holds).
    pub async fn query_strings(store: &Store, sql: &str) -> Result<Vec<String>, StoreError> {
        let rows: Vec<String> = with_pool!(store.pool(), p => {
            sqlx::query_scalar(sql).fetch_all(p).await?
        });
        Ok(rows)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://hp:s3cret@db.example:5432/hallpass"),
            "postgres://hp:***@db.example:5432/hallpass"
        );
        assert_eq!(
            redact_url("postgres://hp@db/hallpass"),
            "postgres://hp@db/hallpass"
        );
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
