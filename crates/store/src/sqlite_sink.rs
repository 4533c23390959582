//! The event writer's insert path on SQLite: one `rusqlite` connection, owned by the
//! writer's own thread, inserting events with cached statements of 16 rows (a fresh
//! batch) or of one row (a replay, where each row's outcome matters).
//!
//! Why not sqlx here, as everywhere else: an sqlx SQLite connection runs on a worker
//! thread of its own, so every statement crosses a channel, and binds are copied into
//! owned arguments to make that crossing. A statement per event would spend more on the
//! crossing than on the insert; one statement per thousand events (what PostgreSQL gets)
//! fits, but copies every value twice and binds 21,000 parameters per statement, past
//! SQLite's small-allocation caches. Driving SQLite directly on the writer's thread binds
//! each value once into a statement that is reused for every chunk: the recording cost per
//! DNS query dropped by about a third (see ARCHITECTURE.md). Both drivers use the same
//! bundled `libsqlite3-sys`, so it is one SQLite library in the process; sqlx still creates
//! and migrates the database and runs every other query.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hallpass_clock::Clock;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Statement, ToSql, TransactionBehavior, params,
};

use crate::event::{Event, EventId, clean, write_ip};
use crate::segment::{self, CLAIM, CLAIM_HOLDER, IdClaims, SegmentRange};
use crate::writer::{
    EVENT_COLUMNS, Rollup, STORED_EVENT, STORED_IN_SEGMENT, StoredEvent, add_rollup, categories,
    is_same_event,
};
use crate::{SQLITE_SETTINGS, ts_to_us};

/// Parameters per event row: the columns the writer stores, in [`EVENT_COLUMNS`] order.
const EVENT_PARAMS: usize = EVENT_COLUMNS.len();
/// Rows per multi-row INSERT of a fresh batch. One statement step per row costs a seek
/// from the root of the table and a statement reset; sixteen rows per step saved about 7%
/// of the writer's CPU in `store-ingest` (a prototype gained nothing more at 57).
const ROWS_PER_STATEMENT: usize = 16;
const INSERT_CONTENT: &str = "INSERT INTO event_content (event_id, kind, at_us, content) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (event_id) DO NOTHING";
const INSERT_SEGMENT: &str = "INSERT OR FAIL INTO event_segments \
     (first_id, last_id, kind, blocked, n, events) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// Every packed event in segments whose first id is in `?1..=?2` and that reach `?3`.
const PACKED_IN_WINDOW: &str = "SELECT event_id, kind, at_us, target FROM packed_events \
     WHERE first_id BETWEEN ?1 AND ?2 AND last_id >= ?3";
const ADD_BLOCKED: &str = "INSERT INTO blocked_daily (year_group, day, kind, category, n) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (year_group, day, kind, category) \
     DO UPDATE SET n = blocked_daily.n + excluded.n";

/// Progress-handler interval, in SQLite virtual machine instructions: often enough that a
/// deadline is noticed within a millisecond or so, rare enough to cost nothing.
const DEADLINE_CHECK_OPS: i32 = 10_000;

/// The three event INSERT statements the writer uses.
#[derive(Clone, Copy)]
enum Insert {
    /// A fresh batch, [`ROWS_PER_STATEMENT`] rows at a time, then [`Insert::FreshRow`]
    /// for the rest. `OR FAIL`: a stored id fails the statement (fresh ids: another writer
    /// has the same slot). `OR FAIL` rather than the default `ABORT` also spares a
    /// multi-row statement SQLite's statement journal, a copy of every page it changes,
    /// kept to undo just that statement: the whole transaction is rolled back instead.
    FreshChunk,
    FreshRow,
    /// A replayed row: not inserted if its id is stored (it may have been committed
    /// before); the caller then compares.
    ReplayRow,
}

impl Insert {
    fn rows(self) -> usize {
        match self {
            Insert::FreshChunk => ROWS_PER_STATEMENT,
            Insert::FreshRow | Insert::ReplayRow => 1,
        }
    }

    /// The statement's text, built once rather than at every transaction.
    fn sql(self) -> &'static str {
        static TEXT: [OnceLock<String>; 3] = [const { OnceLock::new() }; 3];
        TEXT[self as usize].get_or_init(|| {
            let row = format!("({})", vec!["?"; EVENT_PARAMS].join(", "));
            let values = vec![row; self.rows()].join(", ");
            let columns = EVENT_COLUMNS.join(", ");
            match self {
                Insert::FreshChunk | Insert::FreshRow => {
                    format!("INSERT OR FAIL INTO event_rows ({columns}) VALUES {values}")
                }
                Insert::ReplayRow => format!(
                    "INSERT INTO event_rows ({columns}) VALUES {values} \
                     ON CONFLICT (event_id) DO NOTHING"
                ),
            }
        })
    }
}

/// How long a commit may stay unsynced when nobody waits for its events (DNS queries):
/// the most a power cut can take of them, which also lose whatever waits in the queue.
const SYNC_INTERVAL: Duration = Duration::from_millis(100);

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

    /// Insert `items`, their content and the blocked roll-up in one transaction.
    ///
    /// A fresh batch (`maybe_stored` false: ids made for this batch) goes in multi-row
    /// statements and must insert every row: an id already stored there means another
    /// writer has the same slot, and the whole batch fails ([`is_already_stored`]; the
    /// writer changes slot, spills the batch, and replays it). A replay (`maybe_stored`)
    /// goes row by row: a row whose id is stored with the same event (committed before)
    /// is skipped and not counted in the roll-up again, so a batch replayed twice changes
    /// nothing; a row whose id another event took moves to the next free id in its
    /// millisecond ([`EventId::alternatives`]: the same one at every replay).
    ///
    /// Gives up with an error once `timeout` has passed: waiting for another connection's
    /// lock (the busy timeout) or executing (the progress handler interrupts it).
    pub(crate) fn insert(
        &mut self,
        items: &[(EventId, &Event)],
        maybe_stored: bool,
        claims: &mut IdClaims,
        timeout: Duration,
    ) -> rusqlite::Result<()> {
        let deadline = self.clock.instant() + timeout;
        self.conn.busy_timeout(timeout)?;
        let clock = self.clock.clone();
        self.conn.progress_handler(
            DEADLINE_CHECK_OPS,
            Some(move || clock.instant() >= deadline),
        );
        let result = self.insert_in_transaction(items, maybe_stored, claims);
        self.conn.progress_handler(0, None::<fn() -> bool>);
        if result.is_ok() {
            self.unsynced_since
                .get_or_insert_with(|| self.clock.instant());
        }
        result
    }

    fn insert_in_transaction(
        &mut self,
        items: &[(EventId, &Event)],
        maybe_stored: bool,
        claims: &mut IdClaims,
    ) -> rusqlite::Result<()> {
        // IMMEDIATE: take the write lock up front, so waiting for it is the busy timeout's
        // job and a transaction never fails half way for want of it.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut rollup: Rollup = Rollup::new();
        // One buffer for every row's client address, rather than a string per row.
        let mut ip_text = String::with_capacity(48);
        // The id each event is stored under (a replay may give one a new id).
        let mut stored_ids = Vec::new();
        // Id slots claimed in this transaction (fresh packed events).
        let mut claimed = Vec::new();
        {
            if maybe_stored {
                let mut insert = tx.prepare_cached(Insert::ReplayRow.sql())?;
                let mut stored = tx.prepare_cached(STORED_EVENT)?;
                let mut in_segment = tx.prepare_cached(STORED_IN_SEGMENT)?;
                let packed_ids = packed_among(&tx, items)?;
                for &(first, e) in items {
                    let mut outcome = None;
                    for id in first.alternatives() {
                        // A fresh batch may have packed it (or another event with its id).
                        let packed = if id == first {
                            packed_ids.get(&id.0).cloned()
                        } else {
                            let range = SegmentRange::holding(id);
                            in_segment
                                .query_row(params![id.0, range.from, range.to], |r| {
                                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                                })
                                .optional()?
                        };
                        if let Some((kind, at_us, target)) = packed {
                            if is_same_event(&kind, at_us, &target, e) {
                                outcome = Some((id, false));
                                break;
                            }
                            continue;
                        }
                        bind_event(&mut insert, 0, &id, e, &mut ip_text)?;
                        if insert.raw_execute()? == 1 {
                            outcome = Some((id, true));
                            break;
                        }
                        let (kind, at_us, target): StoredEvent =
                            stored.query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                        if is_same_event(&kind, at_us, &target, e) {
                            outcome = Some((id, false));
                            break;
                        }
                    }
                    // Every alternative taken by another event: fail like a fresh batch.
                    let Some((id, inserted)) = outcome else {
                        return Err(no_free_id(first));
                    };
                    if inserted && e.is_blocked() {
                        add_rollup(&mut rollup, e);
                    }
                    stored_ids.push(id);
                }
            } else {
                let (mut packed, rows): (Vec<_>, Vec<_>) =
                    items.iter().copied().partition(|(_, e)| segment::packs(e));
                claimed = claims.needed(&packed);
                for &(minute, slot) in &claimed {
                    tx.prepare_cached(CLAIM)?
                        .execute(params![minute, slot, claims.writer])?;
                    let holder: i64 = tx
                        .prepare_cached(CLAIM_HOLDER)?
                        .query_row(params![minute, slot], |r| r.get(0))?;
                    if holder != claims.writer {
                        return Err(clash(format!(
                            "event id slot {slot} in minute {minute} is another writer's"
                        )));
                    }
                }
                let mut insert = tx.prepare_cached(INSERT_SEGMENT)?;
                for s in segment::pack(&mut packed) {
                    let kind = s.kind.as_str();
                    insert.execute(params![s.first.0, s.last.0, kind, s.blocked, s.n, s.events])?;
                }
                let (chunked, tail) = rows.split_at(rows.len() - rows.len() % ROWS_PER_STATEMENT);
                for (statement, part) in [(Insert::FreshChunk, chunked), (Insert::FreshRow, tail)] {
                    if part.is_empty() {
                        continue;
                    }
                    let mut insert = tx.prepare_cached(statement.sql())?;
                    for chunk in part.chunks_exact(statement.rows()) {
                        for (row, (id, e)) in chunk.iter().enumerate() {
                            bind_event(&mut insert, row * EVENT_PARAMS, id, e, &mut ip_text)?;
                        }
                        insert.raw_execute()?;
                    }
                }
                // Every row was inserted (or the statement failed).
                for (_, e) in items.iter().filter(|(_, e)| e.is_blocked()) {
                    add_rollup(&mut rollup, e);
                }
                stored_ids.extend(items.iter().map(|(id, _)| *id));
            }
            let mut content = tx.prepare_cached(INSERT_CONTENT)?;
            for (id, (_, e)) in stored_ids.iter().zip(items) {
                if let Some(text) = &e.content {
                    content
                        .execute(params![id.0, e.kind.as_str(), ts_to_us(e.at), clean(text),])?;
                }
            }
            let mut blocked = tx.prepare_cached(ADD_BLOCKED)?;
            for ((year_group, day, kind, category), n) in &rollup {
                blocked.execute(params![year_group, day, kind, category, n])?;
            }
        }
        tx.commit()?;
        claims.committed(claimed);
        Ok(())
    }
}

/// The packed events holding any of `items`' ids, by id: one pass over the segments of
/// the ids' time window, where a query per id would unpack the segments around each one
/// (replaying 20,000 events among 180,000 packed ones took 5.8 s that way).
fn packed_among(
    tx: &rusqlite::Transaction<'_>,
    items: &[(EventId, &Event)],
) -> rusqlite::Result<std::collections::HashMap<i64, StoredEvent>> {
    let wanted: std::collections::HashSet<i64> = items.iter().map(|(id, _)| id.0).collect();
    let (Some(&low), Some(&high)) = (wanted.iter().min(), wanted.iter().max()) else {
        return Ok(Default::default());
    };
    let mut window = tx.prepare_cached(PACKED_IN_WINDOW)?;
    let mut found = std::collections::HashMap::new();
    let from = SegmentRange::holding(EventId(low)).from;
    let mut rows = window.query(params![from, high, low])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        if wanted.contains(&id) {
            found.insert(id, (row.get(1)?, row.get(2)?, row.get(3)?));
        }
    }
    Ok(found)
}

fn no_free_id(id: EventId) -> rusqlite::Error {
    clash(format!("every alternative to event id {} is taken", id.0))
}

/// An error that fails a fresh batch as an id already stored does ([`is_already_stored`]).
fn clash(why: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY),
        Some(why),
    )
}

/// Whether `err` is a fresh batch failing on an id already stored.
pub(crate) fn is_already_stored(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// Bind event `e` to the parameters after `offset` (0 for a statement's first row).
fn bind_event(
    insert: &mut Statement<'_>,
    offset: usize,
    id: &EventId,
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
    let values: [&dyn ToSql; EVENT_PARAMS] = [
        &id.0,
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
    for (i, value) in values.into_iter().enumerate() {
        // Parameters are numbered from 1.
        insert.raw_bind_parameter(offset + i + 1, value)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{EventKind, Store};

    fn blocked_events(n: usize) -> Vec<(EventId, Event)> {
        let at = "2026-09-02T09:00:00Z".parse().unwrap();
        let ids = crate::event::EventIds::new();
        (0..n)
            .map(|i| {
                let mut e = Event::new(EventKind::Dns, at, format!("game{i}.example"));
                e.verdict = "block".into();
                e.year_group = Some("9".into());
                e.categories = vec!["games".into()];
                e.content = (i % 2 == 0).then(|| format!("search {i}"));
                (ids.next(at), e)
            })
            .collect()
    }

    /// Allowed DNS queries (packed when fresh) with every field set on some of them.
    fn allowed_queries(n: usize) -> Vec<(EventId, Event)> {
        let start = Clock::system().now();
        let ids = crate::event::EventIds::new();
        (0..n)
            .map(|i| {
                let at = start + jiff::SignedDuration::from_micros(i as i64 * 7);
                let mut e = Event::new(EventKind::Dns, at, format!("site{i}.example"));
                e.verdict = "allow".into();
                if i % 3 == 0 {
                    e.person = Some(format!("pupil\"{i}"));
                    e.year_group = Some("8".into());
                    e.device = Some("LAP-07".into());
                    e.rule = Some("allow-news".into());
                    e.document = Some("aup".into());
                    e.clause = Some("4.2".into());
                }
                let ip = if i % 2 == 0 {
                    "10.1.2.3"
                } else {
                    "2001:db8::7"
                };
                e.client_ip = Some(ip.parse().unwrap());
                e.categories = match i % 3 {
                    0 => vec![],
                    1 => vec!["news".into()],
                    _ => vec!["search".into(), "education".into()],
                };
                if i == 5 {
                    e.bytes = Some(1234);
                    e.set_detail(&serde_json::json!({"note": "odd \u{1} one", "n": 2}));
                }
                e.dns = Some(crate::event::DnsDetail {
                    qtype: [1, 28, 65][i % 3],
                    rcode: if i % 4 == 3 { 3 } else { 0 },
                    answer: "allowed".into(),
                    cache_hit: i % 2 == 0,
                    stale: i % 5 == 0,
                    upstream_us: (i % 2 == 1).then_some(1_500 + i as u32),
                });
                (ids.next(at), e)
            })
            .collect()
    }

    fn refs(v: &[(EventId, Event)]) -> Vec<(EventId, &Event)> {
        v.iter().map(|(id, e)| (*id, e)).collect()
    }

    /// Every row of the `events` view, in id order, as SQLite values.
    fn all_events(path: &Path) -> Vec<Vec<rusqlite::types::Value>> {
        let conn = Connection::open(path).unwrap();
        let mut q = conn
            .prepare(&format!(
                "SELECT {} FROM events ORDER BY event_id",
                EVENT_COLUMNS.join(", ")
            ))
            .unwrap();
        q.query_map([], |r| {
            (0..EVENT_PARAMS)
                .map(|i| r.get(i))
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
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
        let events = blocked_events(300);
        let items: Vec<(EventId, &Event)> = events.iter().map(|(u, e)| (*u, e)).collect();
        let mut sink = SqliteSink::open(store.sqlite_path(), Clock::system()).unwrap();
        // 300 = 18 statements of 16 rows and 12 single rows.
        sink.insert(&items, false, &mut IdClaims::new(), Duration::from_secs(5))
            .unwrap();
        sink.insert(&items, true, &mut IdClaims::new(), Duration::from_secs(5))
            .unwrap();
        assert_eq!(count(&store, "SELECT COUNT(*) FROM events").await, 300);
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM event_content").await,
            150
        );
        // one row per category plus the all-categories row, each counting 300
        assert_eq!(
            count(
                &store,
                "SELECT SUM(n) FROM blocked_daily WHERE category = 'games'"
            )
            .await,
            300
        );
        assert_eq!(
            count(
                &store,
                "SELECT SUM(n) FROM blocked_daily WHERE category = ''"
            )
            .await,
            300
        );
    }

    #[tokio::test]
    async fn a_fresh_batch_holding_a_stored_id_fails_whole_and_its_replay_fills_the_gap() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect_data_dir(dir.path()).await.unwrap();
        let mut events = blocked_events(100);
        for (_, e) in &mut events {
            // With content: every event a row (packed queries have no content).
            e.content.get_or_insert_with(|| "search".into());
        }
        let items: Vec<(EventId, &Event)> = events.iter().map(|(u, e)| (*u, e)).collect();
        let mut sink = SqliteSink::open(store.sqlite_path(), Clock::system()).unwrap();
        // Row 40 is already stored (in a 16-row statement); row 99 in the single-row tail.
        for stored in [40, 99] {
            sink.insert(
                &items[stored..=stored],
                false,
                &mut IdClaims::new(),
                Duration::from_secs(5),
            )
            .unwrap();
            let err = sink
                .insert(&items, false, &mut IdClaims::new(), Duration::from_secs(5))
                .unwrap_err();
            assert!(is_already_stored(&err), "{err:?}");
            assert_eq!(count(&store, "SELECT COUNT(*) FROM events").await, 1);
            assert_eq!(
                count(
                    &store,
                    "SELECT SUM(n) FROM blocked_daily WHERE category = ''"
                )
                .await,
                1
            );
            // What the writer does next: spill, then replay row by row.
            sink.insert(&items, true, &mut IdClaims::new(), Duration::from_secs(5))
                .unwrap();
            assert_eq!(count(&store, "SELECT COUNT(*) FROM events").await, 100);
            assert_eq!(
                count(
                    &store,
                    "SELECT SUM(n) FROM blocked_daily WHERE category = ''"
                )
                .await,
                100
            );
            sqlx::query("DELETE FROM event_rows; DELETE FROM blocked_daily")
                .execute(match store.pool() {
                    crate::Pool::Sqlite(p) => p,
                    crate::Pool::Postgres(_) => unreachable!(),
                })
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_replayed_event_whose_id_another_event_took_moves_to_the_same_alternative() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect_data_dir(dir.path()).await.unwrap();
        let events = blocked_events(3);
        let mut sink = SqliteSink::open(store.sqlite_path(), Clock::system()).unwrap();
        // Another writer stored a different event under the first event's id.
        let mut other = events[0].1.clone();
        other.target = "another-writer.example".into();
        other.content = None;
        sink.insert(
            &[(events[0].0, &other)],
            false,
            &mut IdClaims::new(),
            Duration::from_secs(5),
        )
        .unwrap();
        let items: Vec<(EventId, &Event)> = events.iter().map(|(u, e)| (*u, e)).collect();
        for _ in 0..2 {
            // Replayed twice (a crash before the spill file was removed): the same result.
            sink.insert(&items, true, &mut IdClaims::new(), Duration::from_secs(5))
                .unwrap();
            assert_eq!(count(&store, "SELECT COUNT(*) FROM events").await, 4);
            let moved = format!(
                "SELECT event_id FROM events WHERE target = 'game0.example' AND event_id <> {}",
                events[0].0.0
            );
            let alternative = events[0].0.alternatives().nth(1).unwrap();
            assert_eq!(count(&store, &moved).await, alternative.0);
            // Its content went with it, under its new id.
            let content = "SELECT COUNT(*) FROM event_content c JOIN events e USING (event_id) \
                           WHERE e.target LIKE 'game%'";
            assert_eq!(count(&store, content).await, 2);
            let blocked = "SELECT SUM(n) FROM blocked_daily WHERE category = ''";
            assert_eq!(count(&store, blocked).await, 4);
        }
    }

    #[tokio::test]
    async fn commits_wait_for_a_sync_at_most_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect_data_dir(dir.path()).await.unwrap();
        let events = blocked_events(3);
        let items: Vec<(EventId, &Event)> = events.iter().map(|(u, e)| (*u, e)).collect();
        let mut sink = SqliteSink::open(store.sqlite_path(), Clock::manual()).unwrap();
        let mode: i64 = sink
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 1, "NORMAL: the sink syncs the WAL itself");
        sink.sync_wal().unwrap(); // nothing committed: nothing to do
        assert!(sink.wal.is_none());
        sink.insert(&items, false, &mut IdClaims::new(), Duration::from_secs(5))
            .unwrap();
        assert!(sink.unsynced_since.is_some() && !sink.sync_due());
        sink.clock.advance(SYNC_INTERVAL); // the sink's clock is a manual one here
        assert!(sink.sync_due());
        sink.sync_wal().unwrap();
        assert!(sink.unsynced_since.is_none() && !sink.sync_due());
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect_data_dir(dir.path()).await.unwrap();
        let events = blocked_events(2_000);
        let items: Vec<(EventId, &Event)> = events.iter().map(|(u, e)| (*u, e)).collect();
        let mut sink = SqliteSink::open(store.sqlite_path(), Clock::system()).unwrap();

        // Another connection holds the write lock: the busy timeout gives up.
        let holder = Connection::open(store.sqlite_path()).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = Clock::system().instant();
        let err = sink
            .insert(
                &items,
                false,
                &mut IdClaims::new(),
                Duration::from_millis(200),
            )
            .unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy)
        );
        assert!(started.elapsed() >= Duration::from_millis(200));
        holder.execute_batch("ROLLBACK").unwrap();

        // A deadline already passed: the progress handler interrupts the inserts.
        let err = sink
            .insert(&items, false, &mut IdClaims::new(), Duration::ZERO)
            .unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::OperationInterrupted)
        );
        assert_eq!(count(&store, "SELECT COUNT(*) FROM events").await, 0);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM blocked_daily").await, 0);

        // The same connection works again afterwards.
        sink.insert(&items, false, &mut IdClaims::new(), Duration::from_secs(5))
            .unwrap();
        assert_eq!(count(&store, "SELECT COUNT(*) FROM events").await, 2_000);
    }

    #[tokio::test]
    async fn packed_queries_read_back_through_the_view_as_rows_would() {
        let events = allowed_queries(600);
        let items: Vec<(EventId, &Event)> = events.iter().map(|(u, e)| (*u, e)).collect();
        let (packed_dir, rows_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let packed = Store::connect_data_dir(packed_dir.path()).await.unwrap();
        let rows = Store::connect_data_dir(rows_dir.path()).await.unwrap();
        // Fresh: packed. Replayed: a row each.
        SqliteSink::open(packed.sqlite_path(), Clock::system())
            .unwrap()
            .insert(&items, false, &mut IdClaims::new(), Duration::from_secs(5))
            .unwrap();
        SqliteSink::open(rows.sqlite_path(), Clock::system())
            .unwrap()
            .insert(&items, true, &mut IdClaims::new(), Duration::from_secs(5))
            .unwrap();
        assert_eq!(count(&packed, "SELECT COUNT(*) FROM event_rows").await, 0);
        assert_eq!(
            count(&packed, "SELECT COUNT(*) FROM event_segments").await,
            3
        );
        assert_eq!(count(&rows, "SELECT COUNT(*) FROM event_rows").await, 600);
        assert_eq!(packed.event_count().await.unwrap(), 600);
        let (from_segments, from_rows) = (
            all_events(packed.sqlite_path()),
            all_events(rows.sqlite_path()),
        );
        assert_eq!(from_segments.len(), 600);
        for (a, b) in from_segments.iter().zip(&from_rows) {
            assert_eq!(a, b);
        }
    }

    #[tokio::test]
    async fn a_replay_of_packed_queries_stores_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect_data_dir(dir.path()).await.unwrap();
        let mut events = allowed_queries(300);
        events.extend(blocked_events(20));
        let items: Vec<(EventId, &Event)> = events.iter().map(|(u, e)| (*u, e)).collect();
        let mut sink = SqliteSink::open(store.sqlite_path(), Clock::system()).unwrap();
        sink.insert(&items, false, &mut IdClaims::new(), Duration::from_secs(5))
            .unwrap();
        // Allowed queries in two segments, blocked ones in a third; those with content
        // (half the blocked ones) in rows.
        let segments = "SELECT COUNT(*) FROM event_segments";
        assert_eq!(count(&store, segments).await, 3);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM event_rows").await, 10);
        // A crash after the commit and before the spill file went: replayed, twice.
        for _ in 0..2 {
            sink.insert(&items, true, &mut IdClaims::new(), Duration::from_secs(5))
                .unwrap();
            assert_eq!(count(&store, segments).await, 3);
            assert_eq!(count(&store, "SELECT COUNT(*) FROM event_rows").await, 10);
            assert_eq!(count(&store, "SELECT COUNT(*) FROM events").await, 320);
            let blocked = "SELECT SUM(n) FROM blocked_daily WHERE category = ''";
            assert_eq!(count(&store, blocked).await, 20);
        }
    }

    #[tokio::test]
    async fn a_replayed_event_whose_id_a_packed_event_holds_moves_to_an_alternative() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect_data_dir(dir.path()).await.unwrap();
        let events = allowed_queries(2);
        let (id, first) = &events[0];
        let mut sink = SqliteSink::open(store.sqlite_path(), Clock::system()).unwrap();
        // Another writer packed a different query under the same id.
        let mut other = first.clone();
        other.target = "another-writer.example".into();
        sink.insert(
            &[(*id, &other)],
            false,
            &mut IdClaims::new(),
            Duration::from_secs(5),
        )
        .unwrap();
        for _ in 0..2 {
            sink.insert(
                &[(*id, first)],
                true,
                &mut IdClaims::new(),
                Duration::from_secs(5),
            )
            .unwrap();
            let moved = "SELECT event_id FROM events WHERE target = 'site0.example'";
            assert_eq!(
                count(&store, moved).await,
                id.alternatives().nth(1).unwrap().0
            );
            assert_eq!(count(&store, "SELECT COUNT(*) FROM events").await, 2);
        }
    }

    #[tokio::test]
    async fn a_second_writer_in_the_same_slot_fails_at_its_claim_and_its_replay_moves_the_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect_data_dir(dir.path()).await.unwrap();
        let ours = allowed_queries(50);
        // Another writer that drew the same slot made the same ids for other queries.
        let theirs: Vec<(EventId, Event)> = ours
            .iter()
            .map(|(id, e)| {
                let mut other = e.clone();
                other.target = format!("other-{}", e.target);
                (*id, other)
            })
            .collect();
        let mut sink = SqliteSink::open(store.sqlite_path(), Clock::system()).unwrap();
        let (mut our_claims, mut their_claims) = (IdClaims::new(), IdClaims::new());
        let timeout = Duration::from_secs(5);
        sink.insert(&refs(&theirs), false, &mut their_claims, timeout)
            .unwrap();
        let err = sink
            .insert(&refs(&ours), false, &mut our_claims, timeout)
            .unwrap_err();
        assert!(is_already_stored(&err), "{err:?}");
        assert_eq!(
            store.event_count().await.unwrap(),
            50,
            "nothing of ours stored"
        );
        // The writer moves slot, spills, and replays: rows under free ids.
        sink.insert(&refs(&ours), true, &mut our_claims, timeout)
            .unwrap();
        assert_eq!(store.event_count().await.unwrap(), 100);
        let distinct = "SELECT COUNT(DISTINCT event_id) FROM events";
        assert_eq!(count(&store, distinct).await, 100);
        // They hold the claim: their next batch in that minute asks nothing.
        assert!(their_claims.needed(&refs(&theirs)).is_empty());
    }
}
