//! The writer task: takes queued events in batches, stores each batch in one transaction
//! through the database's write path (`sqlite_sink` or `postgres_sink`), or spills it;
//! replays the spill file; watches the SQLite file.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::config::{Durability, EventWriterConfig, WriteError, WriterMetrics, WriterStep};
use super::postgres_sink::PostgresSink;
use super::queue::{Msg, Pending, Shards, SharedSpill, lock};
use super::rows::{Batch, BatchIds, Stored};
use super::sqlite_sink::{SqliteSink, file_identity};
use crate::event::Event;
use crate::{Store, StoreError, ts_to_us};

mod replay;
mod year_groups;

/// What [`spawn`] needs from the handle.
pub(super) struct Parts {
    pub store: Store,
    pub shards: Arc<Shards>,
    pub batch_ids: Arc<BatchIds>,
    pub config: EventWriterConfig,
    pub spill: SharedSpill,
    pub metrics: Arc<WriterMetrics>,
    pub rx: mpsc::Receiver<Msg>,
}

/// Start the writer task: on a thread of its own for SQLite, on the runtime for PostgreSQL.
pub(super) fn spawn(parts: Parts) -> Result<JoinHandle<()>, StoreError> {
    let Parts {
        store,
        shards,
        batch_ids,
        config,
        spill,
        metrics,
        rx,
    } = parts;
    let now = config.clock.instant();
    let task = Task {
        sqlite_identity: store.sqlite_identity(),
        store,
        shards,
        batch_ids,
        max_batch: config.max_batch.max(1),
        config,
        spill,
        metrics,
        retry_at: None,
        year_groups: HashMap::new(),
        year_groups_at: now,
        sqlite: None,
        postgres: PostgresSink::new(),
    };
    match task.store.backend() {
        crate::Backend::Sqlite => spawn_on_own_thread(task.run(rx)),
        // A PostgreSQL connection belongs to the runtime that opened it, and the pool's
        // connections are shared with the rest of the process.
        crate::Backend::Postgres => Ok(tokio::spawn(task.run(rx))),
    }
}

struct Task {
    store: Store,
    /// SQLite: the database file's (device, inode) when the store opened it.
    sqlite_identity: Option<(u64, u64)>,
    shards: Arc<Shards>,
    batch_ids: Arc<BatchIds>,
    config: EventWriterConfig,
    max_batch: usize,
    spill: SharedSpill,
    metrics: Arc<WriterMetrics>,
    /// Set after a failure: do not try the database again before this.
    retry_at: Option<Instant>,
    /// username -> year group, for events recorded without one.
    year_groups: HashMap<String, Option<String>>,
    year_groups_at: Instant,
    /// SQLite only: the writer's own connection, opened at the first batch and dropped
    /// after a failure (reopened at the next try).
    sqlite: Option<SqliteSink>,
    postgres: PostgresSink,
}

/// Why a batch did not reach the database.
#[derive(Debug, thiserror::Error)]
enum InsertError {
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("not committed within {0:?}")]
    TimedOut(Duration),
    /// Committed, but not known to be on disk: spilled, and the replay finds its batch id.
    #[error("committed, but the SQLite WAL could not be synced: {0}")]
    WalSync(std::io::Error),
    #[error("the SQLite database file was deleted or replaced")]
    DatabaseMissing,
}

impl Task {
    fn tell(&self, step: impl FnOnce() -> WriterStep) {
        self.spill.tell(step);
    }

    fn now(&self) -> Instant {
        self.config.clock.instant()
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        self.replay().await;
        let mut batch: Vec<Pending> = Vec::with_capacity(self.max_batch);
        let mut flushes = Vec::new();
        // Also how long a partly filled per-thread buffer can wait while the task is idle.
        let tick = Duration::from_millis(50);
        let mut last_maintenance = self.now();
        loop {
            // Some(message or None when every handle is gone), or None after an idle tick.
            let woken = tokio::select! {
                m = rx.recv() => Some(m),
                _ = tokio::time::sleep(tick) => None,
            };
            let mut stop = None;
            match woken {
                Some(None) => {
                    // Every handle was dropped without shutdown.
                    self.take_buffered(&mut batch);
                    self.write(&mut batch).await;
                    self.finish().await;
                    return;
                }
                Some(Some(m)) => self.take(m, &mut batch, &mut flushes, &mut stop),
                None => {
                    self.take_buffered(&mut batch);
                    if batch.is_empty() {
                        self.maintenance().await;
                        last_maintenance = self.now();
                        continue;
                    }
                }
            }
            while batch.len() < self.max_batch && stop.is_none() {
                match rx.try_recv() {
                    Ok(m) => self.take(m, &mut batch, &mut flushes, &mut stop),
                    Err(_) => break,
                }
            }
            if batch.len() < self.max_batch {
                self.take_buffered(&mut batch);
            }
            self.linger(&mut rx, &mut batch, &mut flushes, &mut stop)
                .await;
            self.write(&mut batch).await;
            if self.now().saturating_duration_since(last_maintenance) >= Duration::from_millis(200)
            {
                // A busy writer never sees an idle tick: keep the spill file fsynced and
                // replayed anyway.
                self.maintenance().await;
                last_maintenance = self.now();
            } else if let Err(e) = self.spill.sync() {
                tracing::error!(error = %e, "cannot fsync the event spill file");
            }
            if !flushes.is_empty() {
                self.sync_wal();
            }
            for f in flushes.drain(..) {
                let _ = f.send(());
            }
            if let Some(done) = stop {
                rx.close();
                while let Some(m) = rx.recv().await {
                    let mut ignored = None;
                    self.take(m, &mut batch, &mut flushes, &mut ignored);
                    if let Some(d) = ignored {
                        let _ = d.send(());
                    }
                    if batch.len() >= self.max_batch {
                        self.write(&mut batch).await;
                    }
                }
                // Recorders check for the closed channel after buffering, so anything
                // buffered after this drain is spilled by them.
                self.take_buffered(&mut batch);
                self.write(&mut batch).await;
                self.finish().await;
                for f in flushes.drain(..) {
                    let _ = f.send(());
                }
                let _ = done.send(());
                return;
            }
        }
    }

    /// Let a batch that nobody awaits fill up for [`EventWriterConfig::linger`] (or until
    /// it is full, or someone starts waiting).
    async fn linger(
        // &mut: a shared &Task held across an await would need Task to be Sync, and the
        // SQLite connection it owns is not.
        &mut self,
        rx: &mut mpsc::Receiver<Msg>,
        batch: &mut Vec<Pending>,
        flushes: &mut Vec<oneshot::Sender<()>>,
        stop: &mut Option<oneshot::Sender<()>>,
    ) {
        if self.config.linger.is_zero() {
            return;
        }
        let deadline = self.now() + self.config.linger;
        let awaited = |batch: &[Pending], flushes: &[_], stop: &Option<_>| {
            stop.is_some() || !flushes.is_empty() || batch.iter().any(|p| p.ack.is_some())
        };
        while !batch.is_empty() && batch.len() < self.max_batch && !awaited(batch, flushes, stop) {
            match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), rx.recv()).await
            {
                Ok(Some(m)) => self.take(m, batch, flushes, stop),
                // Every handle is gone (the main loop sees that next) or time is up.
                Ok(None) | Err(_) => break,
            }
        }
        if batch.len() < self.max_batch {
            self.take_buffered(batch);
        }
    }

    /// Take what the per-thread buffers hold.
    fn take_buffered(&self, batch: &mut Vec<Pending>) {
        let before = batch.len();
        self.shards.drain_into(batch);
        self.unqueued(&batch[before..]);
        // What found the queue full goes to the spill file, one batch for all threads.
        let overflow = self.shards.take_overflow();
        if !overflow.is_empty() {
            let events: Vec<&Event> = overflow.iter().collect();
            self.spill
                .append_or_lose(&self.metrics, &self.batch_ids.next(), &events);
        }
    }

    fn unqueued(&self, taken: &[Pending]) {
        let bytes: u64 = taken.iter().map(|p| p.bytes).sum();
        self.metrics
            .queue_depth
            .fetch_sub(taken.len() as u64, Relaxed);
        self.metrics.queue_bytes.fetch_sub(bytes, Relaxed);
    }

    fn take(
        &self,
        m: Msg,
        batch: &mut Vec<Pending>,
        flushes: &mut Vec<oneshot::Sender<()>>,
        stop: &mut Option<oneshot::Sender<()>>,
    ) {
        match m {
            Msg::Event(p) => {
                self.unqueued(std::slice::from_ref(&p));
                batch.push(p);
            }
            Msg::Batch(mut events) => {
                self.unqueued(&events);
                batch.append(&mut events);
            }
            Msg::Flush(f) => flushes.push(f),
            Msg::Shutdown(s) => *stop = Some(s),
        }
    }

    async fn finish(&mut self) {
        self.retry_at = None;
        // Nothing new can arrive now: replay to the end, however long it takes.
        self.replay_until(None).await;
        self.sync_wal();
        if let Err(e) = self.spill.sync() {
            tracing::error!(error = %e, "cannot fsync the event spill file");
        }
    }

    async fn maintenance(&mut self) {
        self.check_database_file();
        self.sync_wal();
        if let Err(e) = self.spill.sync() {
            tracing::error!(error = %e, "cannot fsync the event spill file");
        }
        let pending = lock(&self.spill.file).has_pending();
        if pending && self.may_try() {
            self.replay().await;
        }
    }

    /// SQLite: whether the database file is still the one the store opened. The first time
    /// it is not, say so loudly, drop the connection to it, and make sure the spill file
    /// (which is usually beside it) still exists. Never cleared: a restart is needed.
    fn check_database_file(&mut self) -> bool {
        let Some(opened) = self.sqlite_identity else {
            return true;
        };
        if self.metrics.database_missing.load(Relaxed) {
            self.keep_spill_file();
            return false;
        }
        if file_identity(self.store.sqlite_path()) == Some(opened) {
            return true;
        }
        tracing::error!(
            database = %self.store.sqlite_path().display(),
            "THE EVENT DATABASE FILE WAS DELETED OR REPLACED while serving: events are being \
             spilled to {} and not stored; restore the data directory and restart",
            self.config.spill_path.display()
        );
        self.metrics.database_missing.store(true, Relaxed);
        self.sqlite = None;
        self.keep_spill_file();
        false
    }

    fn keep_spill_file(&self) {
        match lock(&self.spill.file).ensure_present() {
            Ok(true) => tracing::error!(
                path = %self.config.spill_path.display(),
                "the event spill file was deleted too: recreated it with what it held"
            ),
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "cannot recreate the event spill file"),
        }
    }

    /// SQLite: make what is committed durable (see [`SqliteSink`]).
    fn sync_wal(&mut self) {
        if let Some(sink) = &mut self.sqlite
            && sink.unsynced()
        {
            match sink.sync_wal() {
                Ok(()) => self.spill.tell(|| WriterStep::Synced),
                Err(e) => {
                    tracing::error!(error = %e, "cannot fsync the SQLite WAL");
                    self.sqlite = None;
                }
            }
        }
    }

    fn may_try(&self) -> bool {
        self.retry_at.is_none_or(|t| self.now() >= t)
    }

    fn failed(&mut self) {
        self.retry_at = Some(self.now() + self.config.retry_interval);
    }

    /// Commit one batch, or spill it. Acknowledges every event in it.
    async fn write(&mut self, batch: &mut Vec<Pending>) {
        if batch.is_empty() {
            return;
        }
        let id = self.batch_ids.next();
        let mut to_db = self.may_try() && self.check_database_file();
        if to_db && lock(&self.spill.file).has_pending() {
            // Keep order: what waits in the spill file goes first.
            to_db = self.replay().await;
        }
        if to_db {
            self.resolve_year_groups(batch.iter_mut().map(|p| &mut p.event).collect())
                .await;
            let awaited = batch.iter().any(|p| p.ack.is_some());
            let events: Vec<&Event> = batch.iter().map(|p| &p.event).collect();
            let fresh = [Batch { id: &id, events }];
            match self.insert(&fresh, awaited).await {
                Ok(_) => {
                    self.metrics.batches.fetch_add(1, Relaxed);
                    self.metrics
                        .events_written
                        .fetch_add(batch.len() as u64, Relaxed);
                    for p in batch.drain(..) {
                        if let Some(ack) = p.ack {
                            self.tell(|| WriterStep::Acked(id.clone(), Durability::Committed));
                            let _ = ack.send(Ok(Durability::Committed));
                        }
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, events = batch.len(), "event batch not stored; spilling");
                }
            }
            self.metrics.failed_batches.fetch_add(1, Relaxed);
            self.failed();
        }
        // Spilled under the same batch id: if it was in fact committed, the replay skips it.
        let events: Vec<&Event> = batch.iter().map(|p| &p.event).collect();
        let result = self.spill.append(&self.metrics, &id, &events, true);
        if let Err(e) = &result {
            self.metrics.lost.fetch_add(batch.len() as u64, Relaxed);
            tracing::error!(error = %e, events = batch.len(), "events lost: database down and spill file unwritable");
        }
        for p in batch.drain(..) {
            if let Some(ack) = p.ack {
                if result.is_ok() {
                    self.tell(|| WriterStep::Acked(id.clone(), Durability::Spilled));
                }
                let _ = ack.send(match &result {
                    Ok(()) => Ok(Durability::Spilled),
                    Err(e) => Err(WriteError::Lost(e.to_string())),
                });
            }
        }
    }

    /// One transaction for `batches`, within the commit timeout. SQLite blocks this
    /// thread, which is the writer's own; PostgreSQL awaits. With `durable`, it returns
    /// once the transaction is on disk (on SQLite a commit is otherwise synced within
    /// [`SqliteSink`]'s interval).
    async fn insert(
        &mut self,
        batches: &[Batch<'_>],
        durable: bool,
    ) -> Result<Stored, InsertError> {
        let timeout = self.config.commit_timeout;
        let committed = |batches: &[Batch<'_>]| {
            WriterStep::Committed(batches.iter().map(|b| b.id.to_string()).collect())
        };
        let pg = match self.store.pool() {
            crate::Pool::Postgres(pg) => pg.clone(),
            crate::Pool::Sqlite(_) => {
                if !self.check_database_file() {
                    return Err(InsertError::DatabaseMissing);
                }
                let sink = match &mut self.sqlite {
                    Some(sink) => sink,
                    None => self.sqlite.insert(SqliteSink::open(
                        self.store.sqlite_path(),
                        self.config.clock.clone(),
                    )?),
                };
                let result = match sink.insert(batches, timeout) {
                    Ok(stored) => {
                        self.spill.tell(|| committed(batches));
                        if durable || sink.sync_due() {
                            match sink.sync_wal() {
                                Ok(()) => {
                                    self.spill.tell(|| WriterStep::Synced);
                                    Ok(stored)
                                }
                                Err(e) => Err(InsertError::WalSync(e)),
                            }
                        } else {
                            Ok(stored)
                        }
                    }
                    Err(e)
                        if e.sqlite_error_code()
                            == Some(rusqlite::ErrorCode::OperationInterrupted) =>
                    {
                        Err(InsertError::TimedOut(timeout))
                    }
                    Err(e) => Err(e.into()),
                };
                if result.is_err() {
                    // A connection that failed may be in any state: start afresh next time.
                    self.sqlite = None;
                }
                return result;
            }
        };
        let now_us = ts_to_us(self.config.clock.now());
        let inserting = self.postgres.insert(&pg, batches, now_us);
        match tokio::time::timeout(timeout, inserting).await {
            Ok(Ok(stored)) => {
                // A PostgreSQL commit is durable when it returns.
                self.spill.tell(|| committed(batches));
                self.spill.tell(|| WriterStep::Synced);
                Ok(stored)
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(InsertError::TimedOut(timeout)),
        }
    }
}

/// Runs the writer task on a thread of its own (SQLite). Inserting a few thousand rows is
/// milliseconds of CPU, done synchronously by [`SqliteSink`]; on a shared runtime worker
/// that would hold up the DNS listener queued behind it, while on its own thread the
/// kernel scheduler lets a listener that has packets waiting run first. The store's sqlx
/// SQLite connections (the year-group lookups) do their IO on their own threads, so
/// nothing here is tied to the runtime that opened them. The returned handle completes
/// when the task has finished.
fn spawn_on_own_thread(
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<JoinHandle<()>, StoreError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done_tx, done_rx) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("hallpass-events".into())
        .spawn(move || {
            runtime.block_on(task);
            let _ = done_tx.send(());
        })?;
    Ok(tokio::spawn(async move {
        let _ = done_rx.await;
    }))
}
