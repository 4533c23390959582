//! The event writer's insert path on SQLite: one `rusqlite` connection, owned by the
//! writer's own thread, inserting a batch's decisions and visits with cached statements of
//! 16 rows (and one row for the rest, and for a decision with content, whose id the
//! content row needs).
//!
//! Why not sqlx here, as everywhere else: an sqlx SQLite connection runs on a worker
//! thread of its own, so every statement crosses a channel, and binds are copied into
//! owned arguments to make that crossing. Driving SQLite directly on the writer's thread
//! binds each value once into a statement that is reused for every chunk: the recording
//! cost per DNS query dropped by about a third (see ARCHITECTURE.md). Both drivers use the
//! same bundled `libsqlite3-sys`, so it is one SQLite library in the process; sqlx still
//! creates and migrates the database and runs every other query.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hallpass_clock::Clock;
use rusqlite::{Connection, OpenFlags, Statement, ToSql, TransactionBehavior, params};

use super::rows::{Batch, DECISION_COLUMNS, Rows, Stored, VISIT_COLUMNS, Visit, categories};
use crate::event::{Event, clean, write_ip};
use crate::{SQLITE_SETTINGS, ts_to_us};

/// Rows per multi-row INSERT. One statement step per row costs a seek from the root of
/// the table and a statement reset; sixteen rows per step saved about 7% of the writer's
/// CPU in `store-ingest` (a prototype gained nothing more at 57).
const ROWS_PER_STATEMENT: usize = 16;
const RECORD_BATCH: &str = "INSERT INTO committed_batches (batch_id, committed_us, events) \
     VALUES (?1, ?2, ?3) ON CONFLICT (batch_id) DO NOTHING";
const INSERT_CONTENT: &str = "INSERT INTO event_content (event_id, kind, at_us, content) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (event_id) DO NOTHING";
const ADD_TRAFFIC: &str = "INSERT INTO traffic_daily \
     (day, person, year_group, kind, category, verdict, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT (day, person, year_group, kind, category, verdict) \
     DO UPDATE SET n = traffic_daily.n + excluded.n";
const ADD_ACTIVITY: &str = "INSERT INTO activity_hourly \
     (person, hour_us, kind, site, verdict, categories, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT (person, hour_us, kind, site, verdict, categories) \
     DO UPDATE SET n = activity_hourly.n + excluded.n";

/// Progress-handler interval, in SQLite virtual machine instructions: often enough that a
/// deadline is noticed within a millisecond or so, rare enough to cost nothing.
const DEADLINE_CHECK_OPS: i32 = 10_000;

/// The four row INSERT statements: decisions and visits, 16 rows or one.
#[derive(Clone, Copy)]
enum Insert {
    Decisions,
    Decision,
    Visits,
    Visit,
}

impl Insert {
    fn rows(self) -> usize {
        match self {
            Insert::Decisions | Insert::Visits => ROWS_PER_STATEMENT,
            Insert::Decision | Insert::Visit => 1,
        }
    }

    fn columns(self) -> &'static [&'static str] {
        match self {
            Insert::Decisions | Insert::Decision => &DECISION_COLUMNS,
            Insert::Visits | Insert::Visit => &VISIT_COLUMNS,
        }
    }

    /// The statement's text, built once rather than at every transaction. No `OR`
    /// clause: the ids are the database's, so nothing can clash.
    fn sql(self) -> &'static str {
        static TEXT: [OnceLock<String>; 4] = [const { OnceLock::new() }; 4];
        TEXT[self as usize].get_or_init(|| {
            let table = match self {
                Insert::Decisions | Insert::Decision => "decisions",
                Insert::Visits | Insert::Visit => "dns_visits",
            };
            let row = format!("({})", vec!["?"; self.columns().len()].join(", "));
            let values = vec![row; self.rows()].join(", ");
            format!(
                "INSERT INTO {table} ({}) VALUES {values}",
                self.columns().join(", ")
            )
        })
    }
}

/// How long a commit may stay unsynced when nobody waits for its events (DNS queries):
/// the most a power cut can take of them, which also lose whatever waits in the queue.
const SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// (device, inode) of a file, to tell when the database was deleted or replaced.
pub(crate) fn file_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// A write connection to the store's SQLite file, for the event writer only.
///
/// It commits with `synchronous = NORMAL`, which in WAL mode skips the fsync at commit,
/// and the writer syncs the WAL itself ([`SqliteSink::sync_wal`]): before acknowledging an
/// awaited event or a flush, before removing a replayed spill file, and otherwise at most
/// [`SYNC_INTERVAL`] after a commit. An fsync per commit (FULL) was a tenth of the
/// writer's CPU under DNS load. The store's other connections stay FULL.
pub(crate) struct SqliteSink {
    conn: Connection,
    wal_path: std::path::PathBuf,
    /// The WAL file, opened at the first sync (it exists once something is committed).
    wal: Option<std::fs::File>,
    /// When the oldest commit not yet synced was made.
    unsynced_since: Option<Instant>,
    /// Where deadlines and sync ages read the time (a test's manual clock moves them).
    clock: Clock,
}

impl SqliteSink {
    /// Open the database file that [`crate::Store`] created and migrated (never create it
    /// here: a missing file means the store is gone, not that a new one should start).
    pub(crate) fn open(path: &Path, clock: Clock) -> rusqlite::Result<SqliteSink> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // The same settings as the store's own connections. The WAL journal mode is a
        // property of the file, set when the store opened it.
        for (name, value) in SQLITE_SETTINGS {
            conn.execute_batch(&format!("PRAGMA {name} = {value}"))?;
        }
        conn.execute_batch("PRAGMA synchronous = NORMAL")?;
        let mut wal_path = path.as_os_str().to_owned();
        wal_path.push("-wal");
        Ok(SqliteSink {
            conn,
            wal_path: wal_path.into(),
            wal: None,
            unsynced_since: None,
            clock,
        })
    }

    /// Whether the oldest unsynced commit is [`SYNC_INTERVAL`] old.
    pub(crate) fn sync_due(&self) -> bool {
        self.unsynced_since
            .is_some_and(|t| self.clock.instant().saturating_duration_since(t) >= SYNC_INTERVAL)
    }

    /// Whether something committed is not yet synced.
    pub(crate) fn unsynced(&self) -> bool {
        self.unsynced_since.is_some()
    }

    /// fsync the WAL, making every commit so far durable (what `synchronous = FULL` does
    /// at each commit). Nothing to do when nothing was committed since the last sync.
    pub(crate) fn sync_wal(&mut self) -> std::io::Result<()> {
        if self.unsynced_since.is_none() {
            return Ok(());
        }
        let wal = match &self.wal {
            Some(wal) => wal,
            None => self.wal.insert(std::fs::File::open(&self.wal_path)?),
        };
        wal.sync_data()?;
        self.unsynced_since = None;
        Ok(())
    }

    /// Store `batches` in one transaction: for each, its id in `committed_batches` and,
    /// unless the id was there already (a replay of a batch committed before), its
    /// decisions (with content), visits and roll-up.
    ///
    /// Gives up with an error once `timeout` has passed: waiting for another connection's
    /// lock (the busy timeout) or executing (the progress handler interrupts it).
    pub(crate) fn insert(
        &mut self,
        batches: &[Batch<'_>],
        timeout: Duration,
    ) -> rusqlite::Result<Stored> {
        let deadline = self.clock.instant() + timeout;
        self.conn.busy_timeout(timeout)?;
        let clock = self.clock.clone();
        self.conn.progress_handler(
            DEADLINE_CHECK_OPS,
            Some(move || clock.instant() >= deadline),
        );
        let result = self.insert_in_transaction(batches);
        self.conn.progress_handler(0, None::<fn() -> bool>);
        if result.is_ok() {
            self.unsynced_since
                .get_or_insert_with(|| self.clock.instant());
        }
        result
    }

    fn insert_in_transaction(&mut self, batches: &[Batch<'_>]) -> rusqlite::Result<Stored> {
        // IMMEDIATE: take the write lock up front, so waiting for it is the busy timeout's
        // job and a transaction never fails half way for want of it.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now_us = ts_to_us(self.clock.now());
        let mut stored = Stored::default();
        let mut fresh: Vec<&Event> = Vec::new();
        {
            let mut record = tx.prepare_cached(RECORD_BATCH)?;
            for b in batches {
                let n = i64::try_from(b.events.len()).unwrap_or(i64::MAX);
                if record.execute(params![b.id, now_us, n])? == 1 {
                    fresh.extend(b.events.iter().copied());
                } else {
                    stored.skipped_batches += 1;
                }
            }
        }
        stored.events = fresh.len() as u64;
        let rows = Rows::of(fresh);
        // One buffer for every row's client address, rather than a string per row.
        let mut ip_text = String::with_capacity(48);
        {
            // A decision with content goes alone, so that its id is the last one inserted.
            let (with_content, plain): (Vec<&Event>, Vec<&Event>) =
                rows.decisions.iter().partition(|e| e.content.is_some());
            insert_chunked(
                &tx,
                Insert::Decisions,
                Insert::Decision,
                &plain,
                |s, o, e| bind_decision(s, o, e, &mut ip_text),
            )?;
            let mut one = tx.prepare_cached(Insert::Decision.sql())?;
            let mut content = tx.prepare_cached(INSERT_CONTENT)?;
            for e in with_content {
                bind_decision(&mut one, 0, e, &mut ip_text)?;
                one.raw_execute()?;
                let id = tx.last_insert_rowid();
                let text = clean(e.content.as_deref().unwrap_or_default());
                content.execute(params![id, e.kind.as_str(), ts_to_us(e.at), text])?;
            }
            let visits: Vec<&Visit<'_>> = rows.visits.iter().collect();
            insert_chunked(&tx, Insert::Visits, Insert::Visit, &visits, |s, o, v| {
                bind_visit(s, o, v, &mut ip_text)
            })?;
            let mut traffic = tx.prepare_cached(ADD_TRAFFIC)?;
            for ((day, person, year_group, kind, category, verdict), n) in &rows.traffic {
                traffic.execute(params![day, person, year_group, kind, category, verdict, n])?;
            }
            let mut activity = tx.prepare_cached(ADD_ACTIVITY)?;
            for ((person, hour, kind, site, verdict, categories), n) in &rows.activity {
                activity.execute(params![person, hour, kind, site, verdict, categories, n])?;
            }
        }
        tx.commit()?;
        Ok(stored)
    }
}

/// Insert `items` with `many` (16 rows a statement) and the rest with `one`.
fn insert_chunked<T>(
    tx: &rusqlite::Transaction<'_>,
    many: Insert,
    one: Insert,
    items: &[T],
    mut bind: impl FnMut(&mut Statement<'_>, usize, &T) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let (chunked, tail) = items.split_at(items.len() - items.len() % ROWS_PER_STATEMENT);
    for (statement, part) in [(many, chunked), (one, tail)] {
        if part.is_empty() {
            continue;
        }
        let width = statement.columns().len();
        let mut insert = tx.prepare_cached(statement.sql())?;
        for chunk in part.chunks_exact(statement.rows()) {
            for (row, item) in chunk.iter().enumerate() {
                bind(&mut insert, row * width, item)?;
            }
            insert.raw_execute()?;
        }
    }
    Ok(())
}

fn bind_all(
    insert: &mut Statement<'_>,
    offset: usize,
    values: &[&dyn ToSql],
) -> rusqlite::Result<()> {
    for (i, value) in values.iter().enumerate() {
        // Parameters are numbered from 1.
        insert.raw_bind_parameter(offset + i + 1, *value)?;
    }
    Ok(())
}

/// Bind decision `e` to the parameters after `offset` (0 for a statement's first row).
fn bind_decision(
    insert: &mut Statement<'_>,
    offset: usize,
    e: &Event,
    ip_text: &mut String,
) -> rusqlite::Result<()> {
    let client_ip = match e.client_ip {
        Some(ip) => {
            write_ip(ip_text, ip);
            Some(ip_text.as_str())
        }
        None => None,
    };
    let dns = e.dns.as_ref();
    let values: [&dyn ToSql; DECISION_COLUMNS.len()] = [
        &e.kind.as_str(),
        &ts_to_us(e.at),
        &e.person.as_deref().map(clean),
        &e.year_group.as_deref().map(clean),
        &client_ip,
        &e.device.as_deref().map(clean),
        &clean(&e.target),
        &categories(&e.categories),
        &clean(&e.verdict),
        &e.rule.as_deref().map(clean),
        &e.document.as_deref().map(clean),
        &e.clause.as_deref().map(clean),
        &e.bytes,
        &e.detail.as_ref().map(|d| clean(d.as_str())),
        &dns.map(|d| d.qtype),
        &dns.map(|d| d.rcode),
        &dns.map(|d| clean(&d.answer)),
        &dns.map(|d| d.cache_hit),
        &dns.map(|d| d.stale),
        &dns.and_then(|d| d.upstream_us),
    ];
    bind_all(insert, offset, &values)
}

/// Bind visit `v` to the parameters after `offset`.
fn bind_visit(
    insert: &mut Statement<'_>,
    offset: usize,
    v: &Visit<'_>,
    ip_text: &mut String,
) -> rusqlite::Result<()> {
    let k = &v.key;
    match k.client_ip {
        Some(ip) => write_ip(ip_text, ip),
        None => ip_text.clear(),
    }
    let values: [&dyn ToSql; VISIT_COLUMNS.len()] = [
        &k.minute_us,
        &v.first_us,
        &v.last_us,
        &k.person.map(clean),
        &k.year_group.map(clean),
        &ip_text.as_str(),
        &k.device.map(clean),
        &clean(k.name),
        &categories(k.categories),
        &clean(k.verdict),
        &k.rule.map(clean),
        &k.document.map(clean),
        &k.clause.map(clean),
        &v.queries,
        &v.cache_hits,
    ];
    bind_all(insert, offset, &values)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{EventKind, Store};

    fn events(n: usize) -> Vec<Event> {
        let at: jiff::Timestamp = "2026-09-02T09:00:00Z".parse().unwrap();
        (0..n)
            .map(|i| {
                let at = at + jiff::SignedDuration::from_millis(i as i64);
                let mut e = Event::new(EventKind::Dns, at, format!("site{}.example", i % 7));
                e.verdict = if i % 5 == 0 { "block" } else { "allow" }.into();
                e.person = Some(format!("pupil{}", i % 3));
                e.year_group = Some("9".into());
                e.client_ip = Some("10.1.2.3".parse().unwrap());
                e.categories = vec!["games".into()];
                if i % 10 == 0 {
                    e.kind = EventKind::Web;
                    e.content = Some(format!("search {i}"));
                }
                e
            })
            .collect()
    }

    async fn count(store: &Store, sql: &str) -> i64 {
        let crate::Pool::Sqlite(p) = store.pool() else {
            unreachable!()
        };
        sqlx::query_scalar(sql).fetch_one(p).await.unwrap()
    }

    #[tokio::test]
    async fn a_batch_inserted_twice_is_stored_and_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect_data_dir(dir.path()).await.unwrap();
        let events = events(300);
        let batch = Batch {
            id: "run:1",
            events: events.iter().collect(),
        };
        let mut sink = SqliteSink::open(store.sqlite_path(), Clock::system()).unwrap();
        let first = sink
            .insert(std::slice::from_ref(&batch), Duration::from_secs(5))
            .unwrap();
        assert_eq!(
            first,
            Stored {
                events: 300,
                skipped_batches: 0
            }
        );
        let again = sink.insert(&[batch], Duration::from_secs(5)).unwrap();
        assert_eq!(
            again,
            Stored {
                events: 0,
                skipped_batches: 1
            }
        );
        // 60 blocks (30 of them web with content) and 240 allowed queries.
        assert_eq!(count(&store, "SELECT COUNT(*) FROM decisions").await, 60);
        assert_eq!(
            count(&store, "SELECT CAST(SUM(queries) AS BIGINT) FROM events").await,
            300
        );
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM event_content").await,
            30
        );
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM event_content c JOIN decisions d ON d.id = c.event_id \
                 WHERE d.kind = 'web' AND c.content LIKE 'search %'"
            )
            .await,
            30,
            "each content row is keyed by its own decision"
        );
        assert_eq!(
            count(
                &store,
                "SELECT SUM(n) FROM traffic_daily WHERE category = ''"
            )
            .await,
            300
        );
        assert_eq!(
            count(
                &store,
                "SELECT SUM(n) FROM traffic_daily WHERE category = 'games'"
            )
            .await,
            300
        );
    }

    #[tokio::test]
    async fn commits_wait_for_a_sync_at_most_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect_data_dir(dir.path()).await.unwrap();
        let events = events(3);
        let batch = Batch {
            id: "run:1",
            events: events.iter().collect(),
        };
        let mut sink = SqliteSink::open(store.sqlite_path(), Clock::manual()).unwrap();
        let mode: i64 = sink
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 1, "NORMAL: the sink syncs the WAL itself");
        sink.sync_wal().unwrap(); // nothing committed: nothing to do
        assert!(sink.wal.is_none());
        sink.insert(&[batch], Duration::from_secs(5)).unwrap();
        assert!(sink.unsynced() && !sink.sync_due());
        sink.clock.advance(SYNC_INTERVAL); // the sink's clock is a manual one here
        assert!(sink.sync_due());
        sink.sync_wal().unwrap();
        assert!(!sink.unsynced() && !sink.sync_due());
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect_data_dir(dir.path()).await.unwrap();
        let events = events(2_000);
        let batch = || Batch {
            id: "run:1",
            events: events.iter().collect(),
        };
        let mut sink = SqliteSink::open(store.sqlite_path(), Clock::system()).unwrap();

        // Another connection holds the write lock: the busy timeout gives up.
        let holder = Connection::open(store.sqlite_path()).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = Clock::system().instant();
        let err = sink
            .insert(&[batch()], Duration::from_millis(200))
            .unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy)
        );
        assert!(started.elapsed() >= Duration::from_millis(200));
        holder.execute_batch("ROLLBACK").unwrap();

        // A deadline already passed: the progress handler interrupts the inserts.
        let err = sink.insert(&[batch()], Duration::ZERO).unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::OperationInterrupted)
        );
        assert_eq!(count(&store, "SELECT COUNT(*) FROM events").await, 0);
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM committed_batches").await,
            0
        );
        assert_eq!(count(&store, "SELECT COUNT(*) FROM traffic_daily").await, 0);

        // The same connection works again afterwards.
        sink.insert(&[batch()], Duration::from_secs(5)).unwrap();
        assert_eq!(
            count(&store, "SELECT CAST(SUM(queries) AS BIGINT) FROM events").await,
            2_000
        );
    }
}
