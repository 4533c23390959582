//! The event writer: a bounded queue that enforcement points hand events to without waiting
//! on the database, drained by one task that commits one transaction per batch.
//!
//! * [`EventWriter::record`] never blocks and never awaits: if the queue is full (by count or
//!   by bytes) or the writer has stopped, the event is appended to the spill file instead
//!   and counted. Recorded events wait in small per-thread buffers that reach the writer
//!   task as one message each (a channel send per event cost more than storing it); the
//!   task also empties partly filled buffers at every batch and every 50 ms.
//! * [`EventWriter::record_acked`] resolves once the event is durable: committed in the
//!   database ([`Durability::Committed`]) or, when its batch could not be committed,
//!   fsynced in the spill file ([`Durability::Spilled`]), from which it is replayed when the
//!   database is back and at every start. Either way a crash after the ack loses nothing.
//! * Every event gets an [`EventId`] when it is recorded, unique within the writer (see
//!   [`EventIds`]). A fresh batch fails whole on an id already stored (another writer on
//!   the same database has the same slot): the writer moves to another slot and spills the
//!   batch. A replay skips a row whose id is stored with the same event, so replaying a
//!   batch that was in fact committed (a timeout after the commit, a crash during replay)
//!   inserts nothing twice, and moves a row whose id another event took to the next free
//!   one of [`EventId::alternatives`].
//! * While anything is waiting in the spill file, new batches are appended after it (not
//!   written around it) until a replay succeeds, so the database receives events in order.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::QueryBuilder;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::event::{Event, EventId, EventIds, clean};
use crate::segment::{CLAIM, CLAIM_HOLDER, IdClaims, SegmentRange};
use crate::spill::{self, Spill};
use crate::sqlite_sink::SqliteSink;
use crate::{Store, StoreError, ts_to_us, with_pool};

/// Settings for [`EventWriter::start`].
#[derive(Debug, Clone)]
pub struct EventWriterConfig {
    /// Events the queue holds before `record` spills to disk.
    pub capacity: usize,
    /// Approximate bytes of queued events before `record` spills to disk: bounds the
    /// memory a slow database can make the queue take.
    pub max_queue_bytes: u64,
    /// Most events committed in one transaction.
    pub max_batch: usize,
    /// The append-only spill file (`PATH.replay` is used beside it during replay).
    pub spill_path: PathBuf,
    /// A batch that has not committed within this time is spilled (and the database is
    /// treated as down until a replay succeeds).
    pub commit_timeout: Duration,
    /// How long to wait after a failure before trying the database again.
    pub retry_interval: Duration,
    /// How long a batch of unacknowledged events may wait for more before it is
    /// committed (unless it is full first). Fewer, larger transactions mean fewer commits
    /// and round trips (worth it with a remote PostgreSQL), but on a busy host each
    /// batch becomes a longer burst of CPU that other work waits behind: with the DNS
    /// server on SQLite, 10 ms saved no CPU per event and raised its p99 latency by a
    /// millisecond, so the default is 0 (commit whatever has arrived). An event that
    /// someone awaits (`record_acked`, `flush`) never waits for this.
    pub linger: Duration,
    /// Where the writer reads the time (the system's; a test's manual clock).
    pub clock: hallpass_clock::Clock,
}

impl EventWriterConfig {
    /// Defaults: 65,536 queued events or 32 MiB, batches of up to 4,096 with no linger,
    /// 10 s commit timeout, retry every 2 s.
    pub fn new(spill_path: impl Into<PathBuf>) -> EventWriterConfig {
        EventWriterConfig {
            capacity: 65_536,
            max_queue_bytes: 32 << 20,
            max_batch: 4_096,
            spill_path: spill_path.into(),
            commit_timeout: Duration::from_secs(10),
            retry_interval: Duration::from_secs(2),
            linger: Duration::ZERO,
            clock: hallpass_clock::Clock::system(),
        }
    }
}

/// Counters, updated as the writer works (read them with `load(Relaxed)` or
/// [`WriterMetrics::snapshot`]).
#[derive(Debug, Default)]
pub struct WriterMetrics {
    /// Events handed to the queue and not yet taken by the writer task.
    pub queue_depth: AtomicU64,
    /// Approximate bytes of those events.
    pub queue_bytes: AtomicU64,
    /// Transactions committed (one per batch).
    pub batches: AtomicU64,
    /// Events committed to the database from the queue.
    pub events_written: AtomicU64,
    /// Events written to the spill file (queue full, writer stopped, or batch failed).
    pub spilled: AtomicU64,
    /// Events committed to the database from the spill file.
    pub replayed: AtomicU64,
    /// Batches whose commit failed or timed out.
    pub failed_batches: AtomicU64,
    /// Unreadable spill lines skipped at replay (a line torn by a crash before its fsync).
    pub spill_corrupt: AtomicU64,
    /// Events that could not be stored anywhere (spill file unwritable): lost.
    pub lost: AtomicU64,
}

/// A plain copy of [`WriterMetrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterMetricsSnapshot {
    pub queue_depth: u64,
    pub queue_bytes: u64,
    pub batches: u64,
    pub events_written: u64,
    pub spilled: u64,
    pub replayed: u64,
    pub failed_batches: u64,
    pub spill_corrupt: u64,
    pub lost: u64,
}

impl WriterMetrics {
    pub fn snapshot(&self) -> WriterMetricsSnapshot {
        WriterMetricsSnapshot {
            queue_depth: self.queue_depth.load(Relaxed),
            queue_bytes: self.queue_bytes.load(Relaxed),
            batches: self.batches.load(Relaxed),
            events_written: self.events_written.load(Relaxed),
            spilled: self.spilled.load(Relaxed),
            replayed: self.replayed.load(Relaxed),
            failed_batches: self.failed_batches.load(Relaxed),
            spill_corrupt: self.spill_corrupt.load(Relaxed),
            lost: self.lost.load(Relaxed),
        }
    }
}

/// Where an acknowledged event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Committed in the database.
    Committed,
    /// Fsynced in the spill file; it will be replayed into the database.
    Spilled,
}

/// An event that could not be made durable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("the event could not be committed or spilled: {0}")]
    Lost(String),
    #[error("the event writer stopped before acknowledging the event")]
    Stopped,
}

type Ack = oneshot::Sender<Result<Durability, WriteError>>;

struct Pending {
    id: EventId,
    event: Event,
    ack: Option<Ack>,
    /// What the event counts for in `queue_bytes`.
    bytes: u64,
}

/// Rough heap and inline size of a queued event, for the byte bound.
fn approx_bytes(e: &Event) -> u64 {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let text = e.target.len()
        + opt(&e.person)
        + opt(&e.year_group)
        + opt(&e.device)
        + opt(&e.rule)
        + opt(&e.document)
        + opt(&e.clause)
        + opt(&e.content)
        + e.verdict.len()
        + e.detail.as_ref().map_or(0, |d| d.as_str().len())
        + e.dns.as_ref().map_or(0, |d| d.answer.len())
        + e.categories.iter().map(|c| c.len() + 24).sum::<usize>();
    // The struct, and about 16 bytes of allocator overhead for each of its ~10 strings.
    (std::mem::size_of::<Pending>() + 160 + text) as u64
}

/// Events recorded per thread before they go to the writer task as one message.
const SHARD_BATCH: usize = 128;

/// Per-thread buffers for [`EventWriter::record`]: a thread locks only its own (so the
/// locks are uncontended) and sends it to the task when it holds [`SHARD_BATCH`] events.
struct Shards(Box<[Mutex<Vec<Pending>>]>);

impl Shards {
    fn new() -> Shards {
        let n = std::thread::available_parallelism().map_or(4, |n| n.get() * 2);
        Shards((0..n.max(4)).map(|_| Mutex::new(Vec::new())).collect())
    }

    fn mine(&self) -> &Mutex<Vec<Pending>> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        thread_local! {
            static SLOT: u64 = NEXT.fetch_add(1, Relaxed);
        }
        let slot = SLOT.with(|s| *s) as usize;
        &self.0[slot % self.0.len()]
    }

    /// Move every buffered event into `out`.
    fn drain_into(&self, out: &mut Vec<Pending>) {
        for shard in self.0.iter() {
            out.append(&mut lock(shard));
        }
    }
}

// Events are the common message: boxing them would add an allocation per event.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Event(Pending),
    Batch(Vec<Pending>),
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// The handle enforcement points record events through. Clone it freely.
#[derive(Clone)]
pub struct EventWriter {
    tx: mpsc::Sender<Msg>,
    spill: Arc<Mutex<Spill>>,
    metrics: Arc<WriterMetrics>,
    shards: Arc<Shards>,
    ids: Arc<EventIds>,
    capacity: u64,
    max_queue_bytes: u64,
}

impl std::fmt::Debug for EventWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventWriter")
            .field("metrics", &self.metrics.snapshot())
            .finish()
    }
}

impl EventWriter {
    /// Open the spill file and spawn the writer task on the current tokio runtime. The task
    /// first replays whatever an earlier run left in the spill file.
    pub fn start(
        store: Store,
        config: EventWriterConfig,
    ) -> Result<(EventWriter, JoinHandle<()>), StoreError> {
        let spill = Arc::new(Mutex::new(Spill::open(&config.spill_path)?));
        let metrics = Arc::new(WriterMetrics::default());
        let shards = Arc::new(Shards::new());
        let ids = Arc::new(EventIds::new());
        let (tx, rx) = mpsc::channel(config.capacity.max(1));
        let writer = EventWriter {
            tx,
            spill: spill.clone(),
            metrics: metrics.clone(),
            shards: shards.clone(),
            ids: ids.clone(),
            capacity: config.capacity.max(1) as u64,
            max_queue_bytes: config.max_queue_bytes,
        };
        let task = Task {
            store,
            shards,
            ids,
            max_batch: config.max_batch.max(1),
            config,
            spill: spill.clone(),
            metrics: metrics.clone(),
            retry_at: None,
            year_groups: HashMap::new(),
            year_groups_at: Instant::now(),
            sink: None,
            claims: IdClaims::new(),
        };
        let handle = match task.store.backend() {
            crate::Backend::Sqlite => spawn_on_own_thread(task.run(rx))?,
            // A PostgreSQL connection belongs to the runtime that opened it, and the
            // pool's connections are shared with the rest of the process.
            crate::Backend::Postgres => tokio::spawn(task.run(rx)),
        };
        Ok((writer, handle))
    }

    /// Queue an event. Never blocks, never waits for the database: when the queue is full
    /// the event goes to the spill file (fsynced with the writer's next batch).
    pub fn record(&self, event: Event) {
        let id = self.ids.next(event.at);
        let bytes = approx_bytes(&event);
        let m = &self.metrics;
        if self.tx.is_closed()
            || m.queue_depth.load(Relaxed) >= self.capacity
            || m.queue_bytes.load(Relaxed) + bytes > self.max_queue_bytes
        {
            self.spill_or_lose(&[(id, &event)]);
            return;
        }
        m.queue_depth.fetch_add(1, Relaxed);
        m.queue_bytes.fetch_add(bytes, Relaxed);
        let shard = self.shards.mine();
        let full = {
            let mut buffer = lock(shard);
            buffer.push(Pending {
                id,
                event,
                ack: None,
                bytes,
            });
            (buffer.len() >= SHARD_BATCH)
                .then(|| std::mem::replace(&mut *buffer, Vec::with_capacity(SHARD_BATCH)))
        };
        if let Some(batch) = full {
            self.send_batch(batch);
        }
        if self.tx.is_closed() {
            // The writer stopped while this event was being buffered; its last drain may
            // have missed it: spill what is left here.
            let left = std::mem::take(&mut *lock(shard));
            self.unqueue_and_spill(left);
        }
    }

    fn send_batch(&self, batch: Vec<Pending>) {
        match self.tx.try_send(Msg::Batch(batch)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Msg::Batch(batch)))
            | Err(mpsc::error::TrySendError::Closed(Msg::Batch(batch))) => {
                self.unqueue_and_spill(batch);
            }
            Err(_) => {}
        }
    }

    fn unqueue_and_spill(&self, events: Vec<Pending>) {
        if events.is_empty() {
            return;
        }
        let bytes: u64 = events.iter().map(|p| p.bytes).sum();
        self.metrics
            .queue_depth
            .fetch_sub(events.len() as u64, Relaxed);
        self.metrics.queue_bytes.fetch_sub(bytes, Relaxed);
        let items: Vec<(EventId, &Event)> = events.iter().map(|p| (p.id, &p.event)).collect();
        self.spill_or_lose(&items);
    }

    fn spill_or_lose(&self, events: &[(EventId, &Event)]) {
        if let Err(e) = self.spill_now(events, false) {
            self.metrics.lost.fetch_add(events.len() as u64, Relaxed);
            tracing::error!(error = %e, events = events.len(), "events lost: queue full and spill file unwritable");
        }
    }

    /// Send what the per-thread buffers hold to the writer task (waiting for room).
    async fn send_buffered(&self) {
        let mut buffered = Vec::new();
        self.shards.drain_into(&mut buffered);
        if buffered.is_empty() {
            return;
        }
        if let Err(mpsc::error::SendError(Msg::Batch(batch))) =
            self.tx.send(Msg::Batch(buffered)).await
        {
            self.unqueue_and_spill(batch);
        }
    }

    /// Queue an event and wait until it is durable (its batch committed, or fsynced in the
    /// spill file if the database is down). Waits for room in the queue if it is full.
    pub async fn record_acked(&self, event: Event) -> Result<Durability, WriteError> {
        let id = self.ids.next(event.at);
        let (ack, done) = oneshot::channel();
        let bytes = approx_bytes(&event);
        self.metrics.queue_depth.fetch_add(1, Relaxed);
        self.metrics.queue_bytes.fetch_add(bytes, Relaxed);
        let p = Pending {
            id,
            event,
            ack: Some(ack),
            bytes,
        };
        match self.tx.send(Msg::Event(p)).await {
            Ok(()) => done.await.unwrap_or(Err(WriteError::Stopped)),
            Err(mpsc::error::SendError(msg)) => {
                self.metrics.queue_depth.fetch_sub(1, Relaxed);
                self.metrics.queue_bytes.fetch_sub(bytes, Relaxed);
                let Msg::Event(p) = msg else {
                    return Err(WriteError::Stopped);
                };
                // The writer has stopped: make it durable here.
                self.spill_now(&[(p.id, &p.event)], true)
                    .map(|()| Durability::Spilled)
                    .map_err(|e| {
                        self.metrics.lost.fetch_add(1, Relaxed);
                        WriteError::Lost(e.to_string())
                    })
            }
        }
    }

    /// Wait until everything queued before this call has been committed or spilled.
    pub async fn flush(&self) {
        self.send_buffered().await;
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Drain the queue, replay the spill file if the database allows, fsync, and stop the
    /// writer task. Events recorded afterwards go straight to the spill file.
    pub async fn shutdown(&self) {
        self.send_buffered().await;
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// The writer's counters.
    pub fn metrics(&self) -> &WriterMetrics {
        &self.metrics
    }

    fn spill_now(&self, events: &[(EventId, &Event)], fsync: bool) -> std::io::Result<()> {
        spill_events(&self.spill, &self.metrics, events, fsync)
    }
}

/// Append events to the spill file; with `fsync`, return only once they are on disk.
fn spill_events(
    spill: &Mutex<Spill>,
    metrics: &WriterMetrics,
    events: &[(EventId, &Event)],
    fsync: bool,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(events.len() * 400);
    for (id, e) in events {
        spill::encode_line(id, e, &mut buf)?;
    }
    let handle = {
        let mut s = lock(spill);
        s.append(&buf)?;
        if fsync { s.take_sync_handle()? } else { None }
    };
    if let Some(f) = handle {
        f.sync_data()?;
    }
    metrics.spilled.fetch_add(events.len() as u64, Relaxed);
    Ok(())
}

/// fsync whatever `record` appended since the last fsync.
fn sync_spill(spill: &Mutex<Spill>) -> std::io::Result<()> {
    let handle = lock(spill).take_sync_handle()?;
    if let Some(f) = handle {
        f.sync_data()?;
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves the spill file handle (or a buffer of events)
    // usable: keep going.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Rows per PostgreSQL INSERT statement: 21 columns x 1,000 rows stays under its 65,535
/// bind parameters.
const ROWS_PER_STATEMENT: usize = 1_000;
/// Rows in the first statement of a pipelined batch (a cached power-of-two shape).
const PIPELINE_HEAD_ROWS: usize = 64;
const US_PER_DAY: i64 = 86_400_000_000;

struct Task {
    store: Store,
    shards: Arc<Shards>,
    /// The writer's id generator: moved to another slot when a fresh batch clashes.
    ids: Arc<EventIds>,
    config: EventWriterConfig,
    max_batch: usize,
    spill: Arc<Mutex<Spill>>,
    metrics: Arc<WriterMetrics>,
    /// Set after a failure: do not try the database again before this.
    retry_at: Option<Instant>,
    /// username -> year group, for events recorded without one.
    year_groups: HashMap<String, Option<String>>,
    year_groups_at: Instant,
    /// SQLite only: the writer's own connection, opened at the first batch and dropped
    /// after a failure (reopened at the next try).
    sink: Option<SqliteSink>,
    /// The id slots this writer has claimed for packed events.
    claims: IdClaims,
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
    /// Committed, but not known to be on disk: spilled, and the replay finds it stored.
    #[error("committed, but the SQLite WAL could not be synced: {0}")]
    WalSync(std::io::Error),
    #[error(
        "a new batch held event ids already stored (another writer on this database had \
         the same id slot; this one has moved); it will be replayed row by row"
    )]
    AlreadyStored,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        self.replay().await;
        let mut batch: Vec<Pending> = Vec::with_capacity(self.max_batch);
        let mut flushes = Vec::new();
        // Also how long a partly filled per-thread buffer can wait while the task is idle.
        let tick = Duration::from_millis(50);
        let mut last_maintenance = Instant::now();
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
                        last_maintenance = Instant::now();
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
            if last_maintenance.elapsed() >= Duration::from_millis(200) {
                // A busy writer never sees an idle tick: keep the spill file fsynced and
                // replayed anyway.
                self.maintenance().await;
                last_maintenance = Instant::now();
            } else if let Err(e) = sync_spill(&self.spill) {
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
        let deadline = Instant::now() + self.config.linger;
        let awaited = |batch: &[Pending], flushes: &[_], stop: &Option<_>| {
            stop.is_some() || !flushes.is_empty() || batch.iter().any(|p| p.ack.is_some())
        };
        while !batch.is_empty() && batch.len() < self.max_batch && !awaited(batch, flushes, stop) {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
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
        self.replay().await;
        self.sync_wal();
        if let Err(e) = sync_spill(&self.spill) {
            tracing::error!(error = %e, "cannot fsync the event spill file");
        }
    }

    async fn maintenance(&mut self) {
        self.sync_wal();
        if let Err(e) = sync_spill(&self.spill) {
            tracing::error!(error = %e, "cannot fsync the event spill file");
        }
        let pending = lock(&self.spill).has_pending();
        if pending && self.may_try() {
            self.replay().await;
        }
    }

    /// SQLite: make what is committed durable (see [`SqliteSink`]).
    fn sync_wal(&mut self) {
        if let Some(sink) = &mut self.sink
            && let Err(e) = sink.sync_wal()
        {
            tracing::error!(error = %e, "cannot fsync the SQLite WAL");
            self.sink = None;
        }
    }

    fn may_try(&self) -> bool {
        self.retry_at.is_none_or(|t| Instant::now() >= t)
    }

    fn failed(&mut self) {
        self.retry_at = Some(Instant::now() + self.config.retry_interval);
    }

    /// Commit one batch, or spill it. Acknowledges every event in it.
    async fn write(&mut self, batch: &mut Vec<Pending>) {
        if batch.is_empty() {
            return;
        }
        let mut to_db = self.may_try();
        if to_db && lock(&self.spill).has_pending() {
            // Keep order: what waits in the spill file goes first.
            to_db = self.replay().await;
        }
        if to_db {
            self.resolve_year_groups(batch.iter_mut().map(|p| &mut p.event).collect())
                .await;
            let items: Vec<(EventId, &Event)> = batch.iter().map(|p| (p.id, &p.event)).collect();
            let awaited = batch.iter().any(|p| p.ack.is_some());
            match self.insert(&items, false, awaited).await {
                Ok(()) => {
                    self.metrics.batches.fetch_add(1, Relaxed);
                    self.metrics
                        .events_written
                        .fetch_add(batch.len() as u64, Relaxed);
                    for p in batch.drain(..) {
                        if let Some(ack) = p.ack {
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
        let items: Vec<(EventId, &Event)> = batch.iter().map(|p| (p.id, &p.event)).collect();
        let result = spill_events(&self.spill, &self.metrics, &items, true);
        if let Err(e) = &result {
            self.metrics.lost.fetch_add(batch.len() as u64, Relaxed);
            tracing::error!(error = %e, events = batch.len(), "events lost: database down and spill file unwritable");
        }
        for p in batch.drain(..) {
            if let Some(ack) = p.ack {
                let _ = ack.send(match &result {
                    Ok(()) => Ok(Durability::Spilled),
                    Err(e) => Err(WriteError::Lost(e.to_string())),
                });
            }
        }
    }

    /// Replay the spill file into the database. True when nothing is left to replay.
    async fn replay(&mut self) -> bool {
        // Bounded: `record` may keep spilling while we replay.
        for _ in 0..4 {
            let rotated = lock(&self.spill).rotate();
            let path = match rotated {
                Ok(Some(path)) => path,
                Ok(None) => return true,
                Err(e) => {
                    tracing::error!(error = %e, "cannot rotate the event spill file");
                    self.failed();
                    return false;
                }
            };
            let (mut events, bad) = match spill::read_all(&path) {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!(error = %e, path = %path.display(), "cannot read the spill file");
                    self.failed();
                    return false;
                }
            };
            for chunk in events.chunks_mut(self.max_batch) {
                self.resolve_year_groups(chunk.iter_mut().map(|(_, e)| e).collect())
                    .await;
                let items: Vec<(EventId, &Event)> = chunk.iter().map(|(u, e)| (*u, e)).collect();
                // A replayed batch may have been committed before (a timeout after the
                // commit, a crash during replay): count only what is really inserted.
                // Durable before the spill file goes.
                if let Err(e) = self.insert(&items, true, true).await {
                    tracing::warn!(error = %e, "replaying spilled events failed; will retry");
                    self.failed();
                    return false;
                }
            }
            if let Err(e) = std::fs::remove_file(&path).and_then(|()| spill::sync_dir(&path)) {
                tracing::error!(error = %e, "cannot remove the replayed spill file");
                self.failed();
                return false;
            }
            self.metrics.spill_corrupt.fetch_add(bad, Relaxed);
            self.metrics
                .replayed
                .fetch_add(events.len() as u64, Relaxed);
            if bad > 0 {
                tracing::warn!(
                    lines = bad,
                    "skipped unreadable spill lines (torn by a crash before fsync)"
                );
            }
            tracing::info!(events = events.len(), "replayed spilled events");
            self.retry_at = None;
        }
        !lock(&self.spill).has_pending()
    }

    /// One transaction for `items`, within the commit timeout. SQLite blocks this thread,
    /// which is the writer's own; PostgreSQL awaits. With `maybe_stored` (a replay) rows
    /// stored before are skipped and the roll-up counts only rows really inserted; a fresh
    /// batch fails whole on a stored id ([`InsertError::AlreadyStored`]), and the writer
    /// moves to another id slot. With `durable`, it returns once the batch is on disk
    /// (on SQLite a commit is otherwise synced within [`SqliteSink`]'s interval).
    async fn insert(
        &mut self,
        items: &[(EventId, &Event)],
        maybe_stored: bool,
        durable: bool,
    ) -> Result<(), InsertError> {
        let result = self.insert_in(items, maybe_stored, durable).await;
        if let Err(InsertError::AlreadyStored) = result {
            self.ids.change_slot();
        }
        result
    }

    async fn insert_in(
        &mut self,
        items: &[(EventId, &Event)],
        maybe_stored: bool,
        durable: bool,
    ) -> Result<(), InsertError> {
        let timeout = self.config.commit_timeout;
        let pg = match self.store.pool() {
            crate::Pool::Postgres(pg) => pg,
            crate::Pool::Sqlite(_) => {
                let sink = match &mut self.sink {
                    Some(sink) => sink,
                    None => self.sink.insert(SqliteSink::open(
                        self.store.sqlite_path(),
                        self.config.clock.clone(),
                    )?),
                };
                let inserted = sink
                    .insert(items, maybe_stored, &mut self.claims, timeout)
                    .map_err(|e| match e {
                        e if crate::sqlite_sink::is_already_stored(&e) => {
                            InsertError::AlreadyStored
                        }
                        e if e.sqlite_error_code()
                            == Some(rusqlite::ErrorCode::OperationInterrupted) =>
                        {
                            InsertError::TimedOut(timeout)
                        }
                        e => e.into(),
                    })
                    .and_then(|()| {
                        if durable || sink.sync_due() {
                            sink.sync_wal().map_err(InsertError::WalSync)
                        } else {
                            Ok(())
                        }
                    });
                if inserted.is_err() {
                    // A connection that failed may be in any state: start afresh next time.
                    self.sink = None;
                }
                return inserted;
            }
        };
        let inserting = insert_events(pg, items, maybe_stored, &mut self.claims);
        match tokio::time::timeout(timeout, inserting).await {
            Ok(Err(InsertError::Postgres(e))) if is_unique_violation(&e) => {
                Err(InsertError::AlreadyStored)
            }
            Ok(done) => done,
            Err(_) => Err(InsertError::TimedOut(timeout)),
        }
    }

    /// Fill in `year_group` for attributed events recorded without one.
    async fn resolve_year_groups(&mut self, mut events: Vec<&mut Event>) {
        if self.year_groups_at.elapsed() > Duration::from_secs(60)
            || self.year_groups.len() > 200_000
        {
            self.year_groups.clear();
            self.year_groups_at = Instant::now();
        }
        let mut missing: Vec<&str> = Vec::new();
        for e in events.iter() {
            if e.year_group.is_none()
                && let Some(person) = &e.person
                && !self.year_groups.contains_key(person)
                && !missing.contains(&person.as_str())
            {
                missing.push(person);
            }
        }
        if !missing.is_empty() {
            match lookup_year_groups(&self.store, &missing).await {
                Ok(found) => {
                    for name in missing {
                        let yg = found.get(name).cloned().flatten();
                        self.year_groups.insert(name.to_string(), yg);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "year group lookup failed"),
            }
        }
        for e in events.iter_mut() {
            if e.year_group.is_none()
                && let Some(person) = &e.person
                && let Some(yg) = self.year_groups.get(person)
            {
                e.year_group = yg.clone();
            }
        }
    }
}

async fn lookup_year_groups(
    store: &Store,
    names: &[&str],
) -> Result<HashMap<String, Option<String>>, sqlx::Error> {
    let mut out = HashMap::new();
    for chunk in names.chunks(500) {
        let rows: Vec<(String, Option<String>)> = with_pool!(store.pool(), p => {
            let mut qb = QueryBuilder::new("SELECT username, year_group FROM people WHERE username IN (");
            let mut sep = qb.separated(", ");
            for n in chunk {
                sep.push_bind(*n);
            }
            qb.push(")");
            qb.build_query_as().fetch_all(p).await?
        });
        out.extend(rows);
    }
    Ok(out)
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

/// Binds the events of `$chunk` (`(EventId, &Event)` pairs) to query `$q`, in
/// [`EVENT_COLUMNS`] order (PostgreSQL).
macro_rules! bind_rows {
    ($q:expr, $chunk:expr) => {{
        let mut q = $q;
        for (id, e) in $chunk {
            q = q
                .bind(id.0)
                .bind(e.kind.as_str())
                .bind(ts_to_us(e.at))
                .bind(e.person.as_deref().map(clean))
                .bind(e.year_group.as_deref().map(clean))
                .bind(e.client_ip.map(|ip| ip.to_string()))
                .bind(e.device.as_deref().map(clean))
                .bind(clean(&e.target))
                .bind(categories(&e.categories))
                .bind(clean(&e.verdict))
                .bind(e.rule.as_deref().map(clean))
                .bind(e.document.as_deref().map(clean))
                .bind(e.clause.as_deref().map(clean))
                .bind(e.bytes)
                .bind(e.detail.as_ref().map(|d| clean(d.as_str())))
                .bind(e.dns.as_ref().map(|d| i32::from(d.qtype)))
                .bind(e.dns.as_ref().map(|d| i32::from(d.rcode)))
                .bind(e.dns.as_ref().map(|d| clean(&d.answer)))
                .bind(e.dns.as_ref().map(|d| d.cache_hit))
                .bind(e.dns.as_ref().map(|d| d.stale))
                .bind(
                    e.dns
                        .as_ref()
                        .and_then(|d| d.upstream_us)
                        .map(|us| i32::try_from(us).unwrap_or(i32::MAX)),
                );
        }
        q
    }};
}

/// PostgreSQL: one transaction with the events, their content, and the blocked-attempts
/// roll-up, in multi-row statements. A fresh batch fails on a stored id (a unique
/// violation). With `maybe_stored` (replay) stored ids are skipped (`ON CONFLICT DO
/// NOTHING`), the roll-up counts only the rows `RETURNING` reports as inserted, and each
/// row not inserted is compared with what holds its id: the same event is left alone,
/// another one moves it to an alternative id (as on SQLite, see `SqliteSink::insert`).
async fn insert_events(
    p: &sqlx::PgPool,
    items: &[(EventId, &Event)],
    maybe_stored: bool,
    claims: &mut IdClaims,
) -> Result<(), InsertError> {
    let mut tx = p.begin().await?;
    // Id slots claimed in this transaction (fresh packed events).
    let mut claimed = Vec::new();
    let mut rollup: Rollup = HashMap::new();
    // The id each event is stored under (a replay may move one).
    let mut stored_ids: Vec<EventId> = items.iter().map(|(id, _)| *id).collect();
    if maybe_stored {
        // Replay. An event of the kind fresh batches pack may be in a segment already.
        let packed_ids: Vec<i64> = items
            .iter()
            .filter(|(_, e)| crate::segment::packs(e))
            .map(|(id, _)| id.0)
            .collect();
        let in_segments = stored_in_segments(&mut tx, &packed_ids).await?;
        let mut to_insert: Vec<(usize, (EventId, &Event))> = Vec::with_capacity(items.len());
        for (i, &(id, e)) in items.iter().enumerate() {
            match in_segments.get(&id.0) {
                // Stored before: leave it, count nothing.
                Some((kind, at_us, target)) if is_same_event(kind, *at_us, target, e) => {}
                // Another event holds the id.
                Some(_) => stored_ids[i] = replay_clash(&mut tx, id, e, &mut rollup).await?,
                None => to_insert.push((i, (id, e))),
            }
        }
        // Count in the roll-up only the rows RETURNING reports as inserted.
        for chunk in statement_chunks(&to_insert) {
            let sql = event_insert_sql(chunk.len(), true);
            let rows = chunk.iter().map(|(_, item)| item);
            let inserted: Vec<i64> = bind_rows!(sqlx::query_scalar(&sql), rows)
                .fetch_all(&mut *tx)
                .await?;
            let inserted: std::collections::HashSet<i64> = inserted.into_iter().collect();
            for &(i, (id, e)) in chunk {
                if !inserted.contains(&id.0) {
                    stored_ids[i] = replay_clash(&mut tx, id, e, &mut rollup).await?;
                } else if e.is_blocked() {
                    add_rollup(&mut rollup, e);
                }
            }
        }
    } else {
        // Fresh ids. DNS queries go packed, a row per segment.
        let (mut packed, rows): (Vec<_>, Vec<_>) = items
            .iter()
            .copied()
            .partition(|(_, e)| crate::segment::packs(e));
        claimed = claims.needed(&packed);
        for &(minute, slot) in &claimed {
            sqlx::query(CLAIM)
                .bind(minute)
                .bind(slot as i32)
                .bind(claims.writer)
                .execute(&mut *tx)
                .await?;
            let holder: i64 = sqlx::query_scalar(CLAIM_HOLDER)
                .bind(minute)
                .bind(slot as i32)
                .fetch_one(&mut *tx)
                .await?;
            if holder != claims.writer {
                return Err(InsertError::AlreadyStored);
            }
        }
        let segments = crate::segment::pack(&mut packed);
        for chunk in segments.chunks(ROWS_PER_STATEMENT) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO event_segments (first_id, last_id, kind, blocked, n, events) ",
            );
            qb.push_values(chunk, |mut b, s| {
                b.push_bind(s.first.0)
                    .push_bind(s.last.0)
                    .push_bind(s.kind.as_str())
                    .push_bind(i32::from(s.blocked))
                    .push_bind(s.n)
                    .push_bind(&s.events);
            });
            qb.build().execute(&mut *tx).await?;
        }
        // Pipelined: while the database executes one
        // statement, this task binds the next (join! polls the execute future first,
        // which hands the statement to the driver, then builds the next one).
        // A short first statement gets the database busy sooner: it waits for nothing
        // but that statement's binds, and everything after overlaps.
        let (head, tail) = rows.split_at(rows.len().min(PIPELINE_HEAD_ROWS));
        let mut chunks = statement_chunks(head);
        chunks.extend(statement_chunks(tail));
        let sqls: Vec<_> = chunks
            .iter()
            .map(|c| event_insert_sql(c.len(), false))
            .collect();
        let build = |i: usize| bind_rows!(sqlx::query(&sqls[i]), chunks[i]);
        let mut next = (!chunks.is_empty()).then(|| build(0));
        let mut i = 0;
        while let Some(q) = next.take() {
            i += 1;
            let (done, built) = futures::join!(q.execute(&mut *tx), async {
                (i < chunks.len()).then(|| build(i))
            });
            done?;
            next = built;
        }
        // Every event was stored, packed or in a row (or the statement failed).
        for (_, e) in items.iter().filter(|(_, e)| e.is_blocked()) {
            add_rollup(&mut rollup, e);
        }
    }
    let with_content: Vec<(EventId, &Event)> = stored_ids
        .iter()
        .zip(items)
        .filter(|(_, (_, e))| e.content.is_some())
        .map(|(id, (_, e))| (*id, *e))
        .collect();
    for chunk in statement_chunks(&with_content) {
        let mut qb =
            QueryBuilder::new("INSERT INTO event_content (event_id, kind, at_us, content) ");
        qb.push_values(chunk, |mut b, (id, e)| {
            b.push_bind(id.0)
                .push_bind(e.kind.as_str())
                .push_bind(ts_to_us(e.at))
                .push_bind(clean(e.content.as_deref().unwrap_or_default()));
        });
        qb.push(" ON CONFLICT (event_id) DO NOTHING");
        qb.build().execute(&mut *tx).await?;
    }
    let rollup: Vec<_> = rollup.into_iter().collect();
    for chunk in rollup.chunks(ROWS_PER_STATEMENT) {
        let mut qb =
            QueryBuilder::new("INSERT INTO blocked_daily (year_group, day, kind, category, n) ");
        qb.push_values(chunk, |mut b, ((yg, day, kind, cat), n)| {
            b.push_bind(yg.clone())
                .push_bind(*day)
                .push_bind(*kind)
                .push_bind(cat.clone())
                .push_bind(*n);
        });
        qb.push(
            " ON CONFLICT (year_group, day, kind, category) DO UPDATE SET n = blocked_daily.n + excluded.n",
        );
        qb.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    claims.committed(claimed);
    Ok(())
}

/// Which of `ids` (events a replay may have packed before) segments hold: id -> (kind,
/// time, target), to compare with the replayed event.
async fn stored_in_segments(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    ids: &[i64],
) -> Result<HashMap<i64, StoredEvent>, sqlx::Error> {
    let (Some(&low), Some(&high)) = (ids.iter().min(), ids.iter().max()) else {
        return Ok(HashMap::new());
    };
    let rows: Vec<(i64, String, i64, String)> = sqlx::query_as(
        "SELECT event_id, kind, at_us, target FROM packed_events \
         WHERE first_id BETWEEN $1 AND $2 AND last_id >= $3 AND event_id = ANY($4)",
    )
    .bind(SegmentRange::holding(EventId(low)).from)
    .bind(high)
    .bind(low)
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, kind, at_us, target)| (id, (kind, at_us, target)))
        .collect())
}

/// A replayed row whose id was stored: the id it is stored under. Counted in `rollup`
/// only if this inserted it (not when the same event was stored there before).
async fn replay_clash<'a>(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: EventId,
    e: &'a Event,
    rollup: &mut Rollup<'a>,
) -> Result<EventId, sqlx::Error> {
    let sql = event_insert_sql(1, true);
    for alternative in id.alternatives() {
        let mut stored: Option<StoredEvent> = sqlx::query_as(STORED_EVENT)
            .bind(alternative.0)
            .fetch_optional(&mut **tx)
            .await?;
        if stored.is_none() {
            let range = SegmentRange::holding(alternative);
            stored = sqlx::query_as(STORED_IN_SEGMENT)
                .bind(alternative.0)
                .bind(range.from)
                .bind(range.to)
                .fetch_optional(&mut **tx)
                .await?;
        }
        let (kind, at_us, target) = stored.unwrap_or_default();
        if kind.is_empty() {
            let chunk = [(alternative, e)];
            let inserted: Option<i64> = bind_rows!(sqlx::query_scalar(&sql), &chunk)
                .fetch_optional(&mut **tx)
                .await?;
            if inserted.is_some() {
                if e.is_blocked() {
                    add_rollup(rollup, e);
                }
                return Ok(alternative);
            }
        } else if is_same_event(&kind, at_us, &target, e) {
            return Ok(alternative);
        }
    }
    Err(sqlx::Error::Protocol(format!(
        "every alternative to event id {} is taken",
        id.0
    )))
}

/// What a replay compares when an id is already stored (both databases): the same event,
/// or another that took the id (a writer in the same slot). See [`is_same_event`].
pub(crate) const STORED_EVENT: &str =
    "SELECT kind, at_us, target FROM event_rows WHERE event_id = $1";

/// [`STORED_EVENT`] for packed events (both databases): the event with id `$1` in the
/// segments whose first id is in `$2..=$3` ([`crate::segment::SegmentRange`]). `$1` comes
/// first in the text because SQLite numbers `$N` parameters in order of appearance.
pub(crate) const STORED_IN_SEGMENT: &str = "SELECT kind, at_us, target FROM packed_events \
     WHERE event_id = $1 AND last_id >= $1 AND first_id BETWEEN $2 AND $3";

/// A stored event as a replay compares it: kind, time, target ([`is_same_event`]).
pub(crate) type StoredEvent = (String, i64, String);

/// Whether the stored row (`kind`, `at_us`, `target`) is event `e`: a replay compares
/// before skipping a row whose id is stored.
pub(crate) fn is_same_event(kind: &str, at_us: i64, target: &str, e: &Event) -> bool {
    kind == e.kind.as_str() && at_us == ts_to_us(e.at) && target == clean(&e.target)
}

/// A unique violation: a fresh batch held an id already stored.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}

/// (year group, day, kind, category) -> blocked events, borrowing from the batch.
pub(crate) type Rollup<'a> = HashMap<
    (
        std::borrow::Cow<'a, str>,
        i64,
        &'static str,
        std::borrow::Cow<'a, str>,
    ),
    i64,
>;

pub(crate) fn add_rollup<'a>(rollup: &mut Rollup<'a>, e: &'a Event) {
    let yg = e.year_group.as_deref().map(clean).unwrap_or_default();
    let day = ts_to_us(e.at).div_euclid(US_PER_DAY);
    *rollup
        .entry((yg.clone(), day, e.kind.as_str(), "".into()))
        .or_default() += 1;
    for c in &e.categories {
        *rollup
            .entry((yg.clone(), day, e.kind.as_str(), clean(c)))
            .or_default() += 1;
    }
}

pub(crate) fn categories(c: &[String]) -> std::borrow::Cow<'_, str> {
    match c {
        [] => std::borrow::Cow::Borrowed(""),
        [one] => clean(one),
        many => std::borrow::Cow::Owned(clean(&many.join(",")).into_owned()),
    }
}

/// Split rows into statements of 1,000 rows, then the rest in powers of two, so that only
/// a dozen statement shapes exist and each is prepared once and cached.
fn statement_chunks<T>(mut rows: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    while !rows.is_empty() {
        let n = if rows.len() >= ROWS_PER_STATEMENT {
            ROWS_PER_STATEMENT
        } else {
            1 << rows.len().ilog2()
        };
        let (head, tail) = rows.split_at(n);
        out.push(head);
        rows = tail;
    }
    out
}

/// The `events` columns the writer fills, in the order both insert paths bind them.
pub(crate) const EVENT_COLUMNS: [&str; 21] = [
    "event_id",
    "kind",
    "at_us",
    "person",
    "year_group",
    "client_ip",
    "device",
    "target",
    "categories",
    "verdict",
    "rule",
    "document",
    "clause",
    "bytes",
    "detail",
    "dns_qtype",
    "dns_rcode",
    "dns_answer",
    "dns_cache_hit",
    "dns_stale",
    "dns_upstream_us",
];

/// The multi-row INSERT (PostgreSQL) for `rows` events, built once per shape: formatting
/// 21,000 placeholders for every statement showed up in profiles.
fn event_insert_sql(rows: usize, returning: bool) -> std::borrow::Cow<'static, str> {
    static CACHE: [std::sync::OnceLock<String>; 22] = [const { std::sync::OnceLock::new() }; 22];
    let build = || {
        let cols = EVENT_COLUMNS.len();
        let mut sql = format!(
            "INSERT INTO event_rows ({}) VALUES ",
            EVENT_COLUMNS.join(", ")
        );
        for r in 0..rows {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..cols {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push('$');
                sql.push_str(&(r * cols + c + 1).to_string());
            }
            sql.push(')');
        }
        // A replay skips stored ids (and compares); a fresh batch fails on one.
        if returning {
            sql.push_str(" ON CONFLICT (event_id) DO NOTHING RETURNING event_id");
        }
        sql
    };
    let shape = if rows == ROWS_PER_STATEMENT {
        Some(0)
    } else if rows.is_power_of_two() && rows < ROWS_PER_STATEMENT {
        Some(rows.ilog2() as usize + 1)
    } else {
        None
    };
    match shape {
        Some(i) => std::borrow::Cow::Borrowed(
            CACHE[i * 2 + usize::from(returning)]
                .get_or_init(build)
                .as_str(),
        ),
        None => std::borrow::Cow::Owned(build()),
    }
}
