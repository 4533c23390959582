//! Replaying the spill file, a transaction of whole batches at a time.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::Task;
use crate::event::Event;
use crate::writer::config::WriterStep;
use crate::writer::queue::lock;
use crate::writer::rows::Batch;
use crate::writer::spill;

impl Task {
    /// Replay the spill file into the database. True when nothing is left to replay.
    /// Gives up for now (false, without counting a failure) once it has taken the commit
    /// timeout, so that what queues meanwhile waits no longer than that before it is
    /// spilled behind it; the next batch or tick carries on (the batches stored so far
    /// are skipped by their ids).
    pub(super) async fn replay(&mut self) -> bool {
        let deadline = self.now() + self.config.commit_timeout;
        self.replay_until(Some(deadline)).await
    }

    pub(super) async fn replay_until(&mut self, deadline: Option<Instant>) -> bool {
        if !self.check_database_file() {
            return false;
        }
        // Bounded: `record` may keep spilling while we replay.
        for _ in 0..4 {
            let rotated = lock(&self.spill.file).rotate();
            let path = match rotated {
                Ok(Some(path)) => path,
                Ok(None) => return true,
                Err(e) => {
                    tracing::error!(error = %e, "cannot rotate the event spill file");
                    self.failed();
                    return false;
                }
            };
            let unreadable = |e: std::io::Error| {
                tracing::error!(error = %e, path = %path.display(), "cannot read the spill file");
            };
            let mut chunks = match spill::Chunks::open(&path) {
                Ok(chunks) => chunks,
                Err(e) => {
                    unreadable(e);
                    self.failed();
                    return false;
                }
            };
            let (mut replayed, mut total_lines) = (0, 0);
            loop {
                let mut lines = match chunks.next_chunk(self.max_batch) {
                    Ok(lines) if lines.is_empty() => break,
                    Ok(lines) => lines,
                    Err(e) => {
                        unreadable(e);
                        self.failed();
                        return false;
                    }
                };
                total_lines += lines.len();
                self.resolve_year_groups(lines.iter_mut().map(|(_, e)| e).collect())
                    .await;
                for chunk in whole_batches(&lines, self.max_batch) {
                    if deadline.is_some_and(|d| self.now() >= d) {
                        return false;
                    }
                    // Synced once, below, before the spill file goes (a crash before that
                    // replays the file again, and the batch ids skip what was committed).
                    match self.insert(&chunk, false).await {
                        Ok(stored) => replayed += stored.events,
                        Err(e) => {
                            tracing::warn!(error = %e, "replaying spilled events failed; will retry");
                            self.failed();
                            return false;
                        }
                    }
                }
            }
            let bad = chunks.bad;
            if let Some(sink) = &mut self.sqlite
                && sink.unsynced()
            {
                if let Err(e) = sink.sync_wal() {
                    tracing::error!(error = %e, "cannot fsync the SQLite WAL after a replay");
                    self.sqlite = None;
                    self.failed();
                    return false;
                }
                self.spill.tell(|| WriterStep::Synced);
            }
            if let Err(e) = std::fs::remove_file(&path).and_then(|()| spill::sync_dir(&path)) {
                tracing::error!(error = %e, "cannot remove the replayed spill file");
                self.failed();
                return false;
            }
            self.metrics.spill_corrupt.fetch_add(bad, Relaxed);
            self.metrics.replayed.fetch_add(replayed, Relaxed);
            self.metrics.spill_files_replayed.fetch_add(1, Relaxed);
            if bad > 0 {
                tracing::warn!(
                    lines = bad,
                    "skipped unreadable spill lines (torn by a crash before fsync)"
                );
            }
            tracing::info!(
                events = replayed,
                lines = total_lines,
                "replayed spilled events"
            );
            self.retry_at = None;
        }
        !lock(&self.spill.file).has_pending()
    }
}

/// Spill lines grouped into their batches (consecutive lines with one id), then into
/// transactions of whole batches holding about `max_events` events.
fn whole_batches(lines: &[(String, Event)], max_events: usize) -> Vec<Vec<Batch<'_>>> {
    let mut out: Vec<Vec<Batch<'_>>> = Vec::new();
    let mut current: Vec<Batch<'_>> = Vec::new();
    let mut in_current = 0;
    for (id, e) in lines {
        match current.last_mut() {
            Some(b) if b.id == id.as_str() => b.events.push(e),
            _ => {
                if in_current >= max_events {
                    out.push(std::mem::take(&mut current));
                    in_current = 0;
                }
                current.push(Batch {
                    id,
                    events: vec![e],
                });
            }
        }
        in_current += 1;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::EventKind;

    #[test]
    fn spill_lines_replay_in_whole_batches() {
        let at = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let e = Event::new(EventKind::Dns, at, "a.example");
        let lines: Vec<(String, Event)> = ["a", "a", "a", "b", "c", "c", "d"]
            .iter()
            .map(|id| (id.to_string(), e.clone()))
            .collect();
        let chunks = whole_batches(&lines, 3);
        let shape: Vec<Vec<(&str, usize)>> = chunks
            .iter()
            .map(|c| c.iter().map(|b| (b.id, b.events.len())).collect())
            .collect();
        assert_eq!(
            shape,
            vec![vec![("a", 3)], vec![("b", 1), ("c", 2)], vec![("d", 1)]]
        );
    }
}
