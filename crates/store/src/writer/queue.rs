//! What the recording handle and the writer task share: the queued event, the messages,
//! the per-thread buffers, and appending to the spill file.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::config::{Durability, StepObserver, WriteError, WriterMetrics, WriterStep};
use super::spill::{self, Spill};
use crate::event::Event;

pub(super) type Ack = oneshot::Sender<Result<Durability, WriteError>>;

pub(super) struct Pending {
    pub event: Event,
    pub ack: Option<Ack>,
    /// What the event counts for in `queue_bytes`.
    pub bytes: u64,
}

/// Rough heap and inline size of a queued event, for the byte bound.
pub(super) fn approx_bytes(e: &Event) -> u64 {
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
pub(super) const SHARD_BATCH: usize = 128;

/// One thread's buffers: events for the writer task, and events that found the queue
/// full. Those go to the spill file together (one batch, one write) rather than one
/// write and one batch id each, which under overload cost the recording threads a
/// system call and a contended lock per event and made the replay a batch per event.
#[derive(Default)]
pub(super) struct Slot {
    pub queued: Vec<Pending>,
    pub overflow: Vec<Event>,
}

/// Per-thread buffers for `EventWriter::record`: a thread locks only its own (so the
/// locks are uncontended) and sends it to the task when it holds [`SHARD_BATCH`] events.
pub(super) struct Shards(Box<[Mutex<Slot>]>);

impl Shards {
    pub(super) fn new() -> Shards {
        let n = std::thread::available_parallelism().map_or(4, |n| n.get() * 2);
        Shards((0..n.max(4)).map(|_| Mutex::new(Slot::default())).collect())
    }

    pub(super) fn mine(&self) -> &Mutex<Slot> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        thread_local! {
            static SLOT: u64 = NEXT.fetch_add(1, Relaxed);
        }
        let slot = SLOT.with(|s| *s) as usize;
        &self.0[slot % self.0.len()]
    }

    /// Move every buffered event into `out`.
    pub(super) fn drain_into(&self, out: &mut Vec<Pending>) {
        for shard in self.0.iter() {
            out.append(&mut lock(shard).queued);
        }
    }

    /// Take every event waiting to be spilled.
    pub(super) fn take_overflow(&self) -> Vec<Event> {
        let mut out = Vec::new();
        for shard in self.0.iter() {
            out.append(&mut lock(shard).overflow);
        }
        out
    }
}

// Events are the common message: boxing them would add an allocation per event.
#[allow(clippy::large_enum_variant)]
pub(super) enum Msg {
    Event(Pending),
    Batch(Vec<Pending>),
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// The spill file and who is told of its writes (tests).
pub(super) struct SpillFile {
    pub file: Mutex<Spill>,
    pub observer: Option<StepObserver>,
}

impl SpillFile {
    pub(super) fn tell(&self, step: impl FnOnce() -> WriterStep) {
        if let Some(o) = &self.observer {
            (o.0)(step());
        }
    }

    /// Append events as batch `batch`; with `fsync`, return only once they are on disk.
    pub(super) fn append(
        &self,
        metrics: &WriterMetrics,
        batch: &str,
        events: &[&Event],
        fsync: bool,
    ) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(events.len() * 400);
        for e in events {
            spill::encode_line(batch, e, &mut buf)?;
        }
        let handle = {
            let mut s = lock(&self.file);
            s.append(&buf)?;
            self.tell(|| WriterStep::SpillWritten(batch.to_string()));
            if fsync { s.take_sync_handle()? } else { None }
        };
        if let Some(f) = handle {
            f.sync_data()?;
            self.tell(|| WriterStep::SpillSynced);
        }
        metrics.spilled.fetch_add(events.len() as u64, Relaxed);
        Ok(())
    }

    /// Append events nobody awaits as batch `batch`; when the file cannot take them they
    /// are lost: counted and said loudly.
    pub(super) fn append_or_lose(&self, metrics: &WriterMetrics, batch: &str, events: &[&Event]) {
        if let Err(e) = self.append(metrics, batch, events, false) {
            metrics.lost.fetch_add(events.len() as u64, Relaxed);
            tracing::error!(error = %e, events = events.len(), "events lost: queue full and spill file unwritable");
        }
    }

    /// fsync whatever was appended since the last fsync.
    pub(super) fn sync(&self) -> std::io::Result<()> {
        let handle = lock(&self.file).take_sync_handle()?;
        if let Some(f) = handle {
            f.sync_data()?;
            self.tell(|| WriterStep::SpillSynced);
        }
        Ok(())
    }
}

pub(super) type SharedSpill = Arc<SpillFile>;

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves the spill file handle (or a buffer of events)
    // usable: keep going.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
