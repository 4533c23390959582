//! The mail journal's writer. A delivered message's copy (000 §3.3.1) is queued as the
//! relay answers 250 and written to the store by one task, in batches of one transaction
//! each: the SMTP session never waits on the database, and a busy hour takes the write
//! lock once per batch instead of once per message.
//!
//! The trade-off, said in the README: a copy is in memory between the 250 and its batch's
//! commit (well under a second when the store keeps up), so a crash in that window loses
//! it; the message itself was delivered. The queue is bounded by bytes: when the store
//! falls that far behind, the relay waits for room before it answers, so the journal is
//! never silently skipped. At the stop the queue is written out before `serve` exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hallpass_store::Store;
use hallpass_store::quarantine::NewJournal;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::super::shared::MetricsSource;

/// Bytes of messages the queue holds before the relay waits for room, counted in KiB.
const QUEUE_KIB: u32 = 64 * 1024;
/// Most copies in one transaction.
const BATCH_COPIES: usize = 256;
/// Most message bytes in one transaction.
const BATCH_BYTES: usize = 16 << 20;
/// Attempts at a batch before its copies are given up (each logged).
const ATTEMPTS: u32 = 3;

/// One copy waiting for its batch; holds its room in the queue until written.
struct Copy {
    at: jiff::Timestamp,
    direction: String,
    sender: String,
    recipients: Vec<String>,
    person: Option<String>,
    message: Vec<u8>,
    /// The queue room it holds (KiB), given back when it is written.
    kib: u32,
    _room: OwnedSemaphorePermit,
}

/// Counts for `/metrics`.
#[derive(Default)]
struct Counters {
    written: AtomicU64,
    lost: AtomicU64,
    queued_kib: AtomicU64,
}

impl MetricsSource for Counters {
    fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = write!(
            out,
            "# HELP hallpass_mail_journal_written_total Delivered messages copied into the mail journal.\n\
             # TYPE hallpass_mail_journal_written_total counter\n\
             hallpass_mail_journal_written_total {}\n\
             # HELP hallpass_mail_journal_lost_total Journal copies the store could not take.\n\
             # TYPE hallpass_mail_journal_lost_total counter\n\
             hallpass_mail_journal_lost_total {}\n\
             # HELP hallpass_mail_journal_queued_kib Message bytes waiting for the journal (KiB).\n\
             # TYPE hallpass_mail_journal_queued_kib gauge\n\
             hallpass_mail_journal_queued_kib {}\n",
            self.written.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
            self.queued_kib.load(Ordering::Relaxed),
        );
    }
}

/// The relay's side of the journal: [`Journal::keep`] queues a copy.
pub(super) struct Journal {
    tx: mpsc::UnboundedSender<Copy>,
    room: Arc<Semaphore>,
    counters: Arc<Counters>,
    closing: CancellationToken,
}

impl Journal {
    /// The queue, its metrics, and the task that writes it (to run until
    /// [`Journal::close`], after which it writes what is queued and ends).
    pub(super) fn start(
        store: Store,
    ) -> (
        Journal,
        Arc<dyn MetricsSource>,
        impl std::future::Future<Output = ()>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let closing = CancellationToken::new();
        let writer = write_batches(store, rx, Arc::clone(&counters), closing.clone());
        let journal = Journal {
            tx,
            room: Arc::new(Semaphore::new(QUEUE_KIB as usize)),
            counters: Arc::clone(&counters),
            closing,
        };
        (journal, counters, writer)
    }

    /// Queues a copy of a delivered message; waits only while the queue is full.
    pub(super) async fn keep(&self, m: NewJournal<'_>) {
        let kib = u32::try_from(m.message.len() / 1024 + 1)
            .unwrap_or(QUEUE_KIB)
            .min(QUEUE_KIB);
        let Ok(room) = Arc::clone(&self.room).acquire_many_owned(kib).await else {
            // The semaphore is never closed; were it, the copy is still logged as lost.
            return self.lost(m.sender, "the journal queue is closed");
        };
        self.counters
            .queued_kib
            .fetch_add(u64::from(kib), Ordering::Relaxed);
        let copy = Copy {
            at: m.at,
            direction: m.direction.to_owned(),
            sender: m.sender.to_owned(),
            recipients: m.recipients.to_vec(),
            person: m.person.map(str::to_owned),
            message: m.message.to_vec(),
            kib,
            _room: room,
        };
        if self.tx.send(copy).is_err() {
            self.counters
                .queued_kib
                .fetch_sub(u64::from(kib), Ordering::Relaxed);
            self.lost(m.sender, "the mail service is stopping");
        }
    }

    /// Stops taking copies; the writer writes what is queued, then ends.
    pub(super) fn close(&self) {
        self.closing.cancel();
    }

    fn lost(&self, sender: &str, why: &str) {
        self.counters.lost.fetch_add(1, Ordering::Relaxed);
        tracing::error!(%sender, why, "mail: a delivered message was not journaled");
    }
}

async fn write_batches(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<Copy>,
    counters: Arc<Counters>,
    closing: CancellationToken,
) {
    let mut batch: Vec<Copy> = Vec::new();
    loop {
        let first = tokio::select! {
            got = rx.recv() => got,
            () = closing.cancelled(), if !rx.is_closed() => {
                // Refuse new copies; the ones queued are still received, then `None`.
                rx.close();
                continue;
            }
        };
        let Some(first) = first else { return };
        let mut bytes = first.message.len();
        batch.push(first);
        while batch.len() < BATCH_COPIES && bytes < BATCH_BYTES {
            match rx.try_recv() {
                Ok(copy) => {
                    bytes += copy.message.len();
                    batch.push(copy);
                }
                Err(_) => break,
            }
        }
        write(&store, &batch, &counters).await;
        let kib: u64 = batch.iter().map(|c| u64::from(c.kib)).sum();
        counters.queued_kib.fetch_sub(kib, Ordering::Relaxed);
        batch.clear();
    }
}

/// Writes one batch, trying again while the database is busy; logs what it gives up.
async fn write(store: &Store, batch: &[Copy], counters: &Counters) {
    let copies: Vec<NewJournal<'_>> = batch
        .iter()
        .map(|c| NewJournal {
            at: c.at,
            direction: &c.direction,
            sender: &c.sender,
            recipients: &c.recipients,
            person: c.person.as_deref(),
            message: &c.message,
        })
        .collect();
    let n = copies.len() as u64;
    for attempt in 1..=ATTEMPTS {
        match store.quarantine().journal(&copies).await {
            Ok(()) => {
                counters.written.fetch_add(n, Ordering::Relaxed);
                return;
            }
            Err(error) if attempt < ATTEMPTS => {
                tracing::warn!(%error, copies = n, attempt, "mail: journal batch not written yet; trying again");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
            Err(error) => {
                // The messages were delivered: a journal the store cannot take is an
                // operator's problem to see (log and metric), not a reason to stop mail.
                counters.lost.fetch_add(n, Ordering::Relaxed);
                for c in batch {
                    tracing::error!(%error, sender = %c.sender, "mail: a delivered message was not journaled");
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Copies queued before the close are all written, in batches, and the writer then
    /// ends; a copy offered after the close is counted lost, not written.
    #[tokio::test]
    async fn close_writes_out_what_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect_data_dir(dir.path()).await.unwrap();
        let (journal, metrics, writer) = Journal::start(store.clone());
        let writer = tokio::spawn(writer);
        let to = ["parent@gmail.com".to_string()];
        let at = jiff::Timestamp::from_second(1_796_000_000).unwrap();
        let delivered = |message: &'static [u8]| NewJournal {
            at,
            direction: "outbound",
            sender: "teacher@wcs.london",
            recipients: &to,
            person: Some("t.teacher"),
            message,
        };
        for _ in 0..600 {
            journal
                .keep(delivered(b"Subject: one of many\r\n\r\nx\r\n"))
                .await;
        }
        journal.close();
        writer.await.unwrap();
        journal
            .keep(delivered(b"Subject: too late\r\n\r\nx\r\n"))
            .await;

        let count = hallpass_store::testing::query_strings(
            &store,
            "SELECT CAST(COUNT(*) AS TEXT) FROM mail_journal WHERE person = 't.teacher'",
        )
        .await
        .unwrap();
        assert_eq!(count, ["600"]);
        let mut text = String::new();
        metrics.render(&mut text);
        assert!(
            text.contains("hallpass_mail_journal_written_total 600\n"),
            "{text}"
        );
        assert!(
            text.contains("hallpass_mail_journal_lost_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("hallpass_mail_journal_queued_kib 0\n"),
            "{text}"
        );
    }
}
