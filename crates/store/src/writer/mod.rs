//! The event writer: a bounded queue that enforcement points hand events to without waiting
//! on the database, drained by one task that commits one transaction per batch.
//!
//! * [`EventWriter::record`] never blocks and never awaits: if the queue is full (by count or
//!   by bytes) or the writer has stopped, the event is appended to the spill file instead
//!   and counted. Recorded events wait in small per-thread buffers that reach the writer
//!   task as one message each (a channel send per event cost more than storing it); the
//!   task also empties partly filled buffers at every batch and every 50 ms.
//! * [`EventWriter::record_acked`] resolves once the event is durable: committed in the
//!   database and synced ([`Durability::Committed`]) or, when its batch could not be
//!   committed, fsynced in the spill file ([`Durability::Spilled`]), from which it is
//!   replayed when the database is back and at every start. Either way a crash after the
//!   ack loses nothing.
//! * Every batch has an id (the writer run's random id and a sequence number), stored in
//!   `committed_batches` in the batch's own transaction and written beside each of its
//!   events when it is spilled. A replay skips a batch whose id is stored, so a batch
//!   that was in fact committed (a timeout after the commit, a WAL sync that failed, a
//!   crash during replay) is not stored twice. Row ids are the database's.
//! * An event waits in memory at most about [`EventWriterConfig::commit_timeout`]
//!   (default 1 s): a commit that takes longer is abandoned and its batch spilled, and
//!   what queued meanwhile is spilled too until the database answers again.
//! * While anything is waiting in the spill file, new batches are appended after it (not
//!   written around it) until a replay succeeds, so the database receives events in order.
//! * SQLite: the database file is checked at every batch and every idle tick; deleted or
//!   replaced, the writer says so once, loudly, stops writing to it, spills (recreating
//!   the spill file if it went too) and reports it in [`EventWriter::problems`].
//!
//! Modules: [`config`] (settings, counters), `queue` (what the handle and the task share),
//! `task` (the writer task, with `task/replay` and `task/year_groups`), `rows` (decisions, visits, roll-up: what both write paths
//! store), `sqlite_sink` and `postgres_sink` (one each, neither imports the other),
//! `spill` (the file format).

pub mod config;
mod postgres_sink;
mod queue;
mod rows;
mod spill;
mod sqlite_sink;
mod task;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use config::{
    Durability, EventWriterConfig, StepObserver, WriteError, WriterMetrics, WriterMetricsSnapshot,
    WriterStep,
};
use queue::{Msg, Pending, SHARD_BATCH, Shards, SharedSpill, SpillFile, approx_bytes, lock};
use rows::BatchIds;
use spill::Spill;

use crate::event::Event;
use crate::{Store, StoreError};

/// The handle enforcement points record events through. Clone it freely.
#[derive(Clone)]
pub struct EventWriter {
    tx: mpsc::Sender<Msg>,
    spill: SharedSpill,
    metrics: Arc<WriterMetrics>,
    shards: Arc<Shards>,
    batch_ids: Arc<BatchIds>,
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
        let spill = Arc::new(SpillFile {
            file: std::sync::Mutex::new(Spill::open(&config.spill_path)?),
            observer: config.observer.clone(),
        });
        let metrics = Arc::new(WriterMetrics::default());
        let shards = Arc::new(Shards::new());
        let batch_ids = Arc::new(BatchIds::new());
        let (tx, rx) = mpsc::channel(config.capacity.max(1));
        let writer = EventWriter {
            tx,
            spill: spill.clone(),
            metrics: metrics.clone(),
            shards: shards.clone(),
            batch_ids: batch_ids.clone(),
            capacity: config.capacity.max(1) as u64,
            max_queue_bytes: config.max_queue_bytes,
        };
        let handle = task::spawn(task::Parts {
            store,
            shards,
            batch_ids,
            config,
            spill,
            metrics,
            rx,
        })?;
        Ok((writer, handle))
    }

    /// Queue an event. Never blocks, never waits for the database: when the queue is full
    /// the event goes to the spill file (fsynced with the writer's next batch).
    pub fn record(&self, event: Event) {
        let bytes = approx_bytes(&event);
        let m = &self.metrics;
        if self.tx.is_closed() {
            self.spill_or_lose(&[&event]);
            return;
        }
        if m.queue_depth.load(Relaxed) >= self.capacity
            || m.queue_bytes.load(Relaxed) + bytes > self.max_queue_bytes
        {
            self.overflow(event);
            return;
        }
        m.queue_depth.fetch_add(1, Relaxed);
        m.queue_bytes.fetch_add(bytes, Relaxed);
        let shard = self.shards.mine();
        let full = {
            let mut slot = lock(shard);
            slot.queued.push(Pending {
                event,
                ack: None,
                bytes,
            });
            (slot.queued.len() >= SHARD_BATCH)
                .then(|| std::mem::replace(&mut slot.queued, Vec::with_capacity(SHARD_BATCH)))
        };
        if let Some(batch) = full {
            self.send_batch(batch);
        }
        if self.tx.is_closed() {
            // The writer stopped while this event was being buffered; its last drain may
            // have missed it: spill what is left here.
            let left = std::mem::take(&mut lock(shard).queued);
            self.unqueue_and_spill(left);
        }
    }

    /// The queue is full: keep the event in this thread's overflow buffer, spilled as one
    /// batch when it holds [`SHARD_BATCH`] events or at the writer task's next drain
    /// (every batch, and every 50 ms when idle).
    fn overflow(&self, event: Event) {
        let shard = self.shards.mine();
        let full = {
            let mut slot = lock(shard);
            slot.overflow.push(event);
            (slot.overflow.len() >= SHARD_BATCH).then(|| std::mem::take(&mut slot.overflow))
        };
        if let Some(events) = full {
            self.spill_events(&events);
        }
        if self.tx.is_closed() {
            // The writer stopped meanwhile: nothing will drain this buffer again.
            let left = std::mem::take(&mut lock(shard).overflow);
            self.spill_events(&left);
        }
    }

    fn spill_events(&self, events: &[Event]) {
        if !events.is_empty() {
            let items: Vec<&Event> = events.iter().collect();
            self.spill_or_lose(&items);
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
        let items: Vec<&Event> = events.iter().map(|p| &p.event).collect();
        self.spill_or_lose(&items);
    }

    fn spill_or_lose(&self, events: &[&Event]) {
        // Each spill from here is a batch of its own: the task never saw these events.
        let batch = self.batch_ids.next();
        self.spill.append_or_lose(&self.metrics, &batch, events);
    }

    /// Send what the per-thread buffers hold to the writer task (waiting for room).
    async fn send_buffered(&self) {
        self.spill_events(&self.shards.take_overflow());
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

    /// Queue an event and wait until it is durable (its batch committed and synced, or
    /// fsynced in the spill file if the database is down). Waits for room in the queue if
    /// it is full.
    pub async fn record_acked(&self, event: Event) -> Result<Durability, WriteError> {
        let (ack, done) = oneshot::channel();
        let bytes = approx_bytes(&event);
        self.metrics.queue_depth.fetch_add(1, Relaxed);
        self.metrics.queue_bytes.fetch_add(bytes, Relaxed);
        let p = Pending {
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
                self.spill_now(&[&p.event], true)
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

    /// What is wrong with recording now, for `/healthz`: empty when nothing is.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.metrics.database_missing.load(Relaxed) {
            out.push(
                "the SQLite database file was deleted or replaced while serving: events are \
                 being spilled, not stored; restore the data directory and restart"
                    .to_string(),
            );
        }
        out
    }

    fn spill_now(&self, events: &[&Event], fsync: bool) -> std::io::Result<()> {
        // Each spill from here is a batch of its own: the task never saw these events.
        let batch = self.batch_ids.next();
        self.spill.append(&self.metrics, &batch, events, fsync)
    }
}
