//! The writer's settings, counters and outcomes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Settings for [`super::EventWriter::start`].
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
    /// The longest a batch may take to commit before it is spilled (fsynced) instead, and
    /// the database treated as down until a replay succeeds. This also bounds how long an
    /// event waits in memory while the database is slow or locked: what arrives meanwhile
    /// is spilled as soon as the attempt gives up, so a crash loses at most about this
    /// much. Default 1 s.
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
    /// For tests: told of every commit, sync and acknowledgement, in order.
    #[doc(hidden)]
    pub observer: Option<StepObserver>,
}

impl EventWriterConfig {
    /// Defaults: 65,536 queued events or 16 MiB, batches of up to 4,096 with no linger,
    /// 1 s commit timeout (the in-memory bound), retry every 2 s. 16 MiB is tens of
    /// thousands of events, seconds of a large school's peak; beyond it events go to the
    /// spill file in batches, which costs disk, not memory (the DNS bench at 250,000
    /// queries a second: 93 MiB resident with 32 MiB it was 105).
    pub fn new(spill_path: impl Into<PathBuf>) -> EventWriterConfig {
        EventWriterConfig {
            capacity: 65_536,
            max_queue_bytes: 16 << 20,
            max_batch: 4_096,
            spill_path: spill_path.into(),
            commit_timeout: Duration::from_secs(1),
            retry_interval: Duration::from_secs(2),
            linger: Duration::ZERO,
            clock: hallpass_clock::Clock::system(),
            observer: None,
        }
    }
}

/// What the writer did, as a test observes it ([`EventWriterConfig::observer`]).
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriterStep {
    /// A transaction holding these batches committed (not yet known to be on disk on
    /// SQLite, which syncs the WAL itself).
    Committed(Vec<String>),
    /// Every commit so far is on disk (SQLite: the WAL fsynced; PostgreSQL: the commit).
    Synced,
    /// A batch's events were appended to the spill file (not yet fsynced).
    SpillWritten(String),
    /// Everything appended to the spill file so far is on disk.
    SpillSynced,
    /// An event of this batch was acknowledged.
    Acked(String, Durability),
}

/// A test's observer of [`WriterStep`]s.
#[doc(hidden)]
#[derive(Clone)]
pub struct StepObserver(pub Arc<dyn Fn(WriterStep) + Send + Sync>);

impl std::fmt::Debug for StepObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StepObserver")
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
    /// Spill files replayed to the end (and removed).
    pub spill_files_replayed: AtomicU64,
    /// Batches whose commit failed or timed out.
    pub failed_batches: AtomicU64,
    /// Unreadable spill lines skipped at replay (a line torn by a crash before its fsync).
    pub spill_corrupt: AtomicU64,
    /// Events that could not be stored anywhere (spill file unwritable): lost.
    pub lost: AtomicU64,
    /// The SQLite database file was deleted or replaced while the writer ran: nothing is
    /// written to the database any more (events are spilled) until a restart.
    pub database_missing: AtomicBool,
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
    pub spill_files_replayed: u64,
    pub failed_batches: u64,
    pub spill_corrupt: u64,
    pub lost: u64,
    pub database_missing: bool,
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
            spill_files_replayed: self.spill_files_replayed.load(Relaxed),
            failed_batches: self.failed_batches.load(Relaxed),
            spill_corrupt: self.spill_corrupt.load(Relaxed),
            lost: self.lost.load(Relaxed),
            database_missing: self.database_missing.load(Relaxed),
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
