//! The spill file: where events go when the queue is full, the database is down or slow,
//! or its file has gone.
//!
//! Append-only JSON lines, each prefixed with the CRC-32 of its JSON (`xxxxxxxx {json}\n`),
//! so a line torn by a crash is recognised and skipped (it was never acknowledged: an event
//! is acknowledged as spilled only after the fsync that follows its line). Every line
//! names the batch its event belongs to; replay stores each batch in a transaction that
//! also records its id in `committed_batches`, and skips a batch whose id is there (it
//! was committed before: a timeout after the commit, a WAL sync that failed, a crash
//! during replay), so replaying twice stores nothing twice. Replay first renames the live
//! file to `PATH.replay` (so new spills keep appending while it replays), then removes it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::Event;

#[derive(Serialize)]
struct SpillLine<'a> {
    batch: &'a str,
    event: &'a Event,
}

/// A line as read back: `batch`, or (files from versions that made event ids) `id` or
/// `uid`, which become the batch id `legacy:<id>` so that replaying them twice is safe too.
#[derive(Deserialize)]
struct SpillRecord {
    #[serde(default)]
    batch: Option<String>,
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    uid: Option<String>,
    event: Event,
}

pub(crate) fn encode_line(batch: &str, event: &Event, out: &mut Vec<u8>) -> io::Result<()> {
    let json = serde_json::to_vec(&SpillLine { batch, event })?;
    let crc = crc32fast::hash(&json);
    write!(out, "{crc:08x} ")?;
    out.extend_from_slice(&json);
    out.push(b'\n');
    Ok(())
}

fn decode_line(line: &str) -> Option<(String, Event)> {
    let (crc, json) = line.split_once(' ')?;
    let crc = u32::from_str_radix(crc, 16).ok()?;
    if crc32fast::hash(json.as_bytes()) != crc {
        return None;
    }
    let rec: SpillRecord = serde_json::from_str(json).ok()?;
    let batch = match (rec.batch, rec.id, rec.uid) {
        (Some(batch), _, _) => batch,
        (None, Some(id), _) => format!("legacy:{id}"),
        (None, None, Some(uid)) => format!("legacy:{uid}"),
        (None, None, None) => return None,
    };
    Some((batch, rec.event))
}

pub(crate) struct Spill {
    path: PathBuf,
    replay_path: PathBuf,
    file: File,
    /// Bytes in the live file.
    len: u64,
    /// Written since the last fsync.
    dirty: bool,
}

impl Spill {
    pub(crate) fn open(path: &Path) -> io::Result<Spill> {
        let file = open_live(path)?;
        let len = file.metadata()?.len();
        let mut replay = path.as_os_str().to_owned();
        replay.push(".replay");
        Ok(Spill {
            path: path.to_path_buf(),
            replay_path: PathBuf::from(replay),
            file,
            len,
            dirty: false,
        })
    }

    pub(crate) fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// A handle to fsync outside the lock, if anything was written since the last one.
    pub(crate) fn take_sync_handle(&mut self) -> io::Result<Option<File>> {
        if !self.dirty {
            return Ok(None);
        }
        self.dirty = false;
        Ok(Some(self.file.try_clone()?))
    }

    pub(crate) fn has_pending(&self) -> bool {
        self.len > 0 || self.replay_path.exists()
    }

    /// If the live file was deleted or replaced under us (the data directory removed while
    /// serving), recreate it (and its directory) and copy into it what the old one held,
    /// read back through the handle still open: events appended to a deleted file would
    /// be lost at exit. True when it had to.
    pub(crate) fn ensure_present(&mut self) -> io::Result<bool> {
        let open = self.file.metadata()?;
        let same = std::fs::metadata(&self.path)
            .is_ok_and(|now| now.dev() == open.dev() && now.ino() == open.ino());
        if same {
            return Ok(false);
        }
        let mut held = vec![0; usize::try_from(self.len).unwrap_or(usize::MAX)];
        self.file.read_exact_at(&mut held, 0)?;
        let mut fresh = open_live(&self.path)?;
        fresh.write_all(&held)?;
        fresh.sync_data()?;
        sync_dir(&self.path)?;
        self.len = fresh.metadata()?.len();
        self.file = fresh;
        self.dirty = false;
        Ok(true)
    }

    /// Make `PATH.replay` the file to replay: if it already exists (an earlier replay did not
    /// finish) keep it, else move the live file there and start a new live file. Returns the
    /// replay path, or `None` when there is nothing to replay.
    pub(crate) fn rotate(&mut self) -> io::Result<Option<PathBuf>> {
        if self.replay_path.exists() {
            return Ok(Some(self.replay_path.clone()));
        }
        if self.len == 0 {
            return Ok(None);
        }
        self.file.sync_all()?;
        std::fs::rename(&self.path, &self.replay_path)?;
        self.file = open_live(&self.path)?;
        self.len = 0;
        self.dirty = false;
        sync_dir(&self.path)?;
        Ok(Some(self.replay_path.clone()))
    }
}

/// The live file, for appending (and reading back, see [`Spill::ensure_present`]).
fn open_live(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    // 0600 whatever the process umask: the spill file holds who visited what, and a
    // library user (the test kit, a bench) does not get the binary's umask 077.
    OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

/// Read a spill file: (batch id, event) in order, and how many lines were unreadable (a
/// torn last line after a crash, or damage).
#[cfg(test)]
pub(crate) fn read_all(path: &Path) -> io::Result<(Vec<(String, Event)>, u64)> {
    let mut chunks = Chunks::open(path)?;
    let out = chunks.next_chunk(usize::MAX)?;
    Ok((out, chunks.bad))
}

/// A spill file read a chunk at a time: whole batches (consecutive lines with one id)
/// holding about `max_events` events, so a replay keeps one transaction's events in
/// memory rather than the file (which grows by the hundred thousand events while a
/// database cannot keep up).
pub(crate) struct Chunks {
    lines: io::Split<BufReader<File>>,
    /// The first line of the next chunk, read to see where a batch ended.
    next: Option<(String, Event)>,
    /// Lines that did not decode (torn by a crash before fsync).
    pub bad: u64,
}

impl Chunks {
    pub(crate) fn open(path: &Path) -> io::Result<Chunks> {
        Ok(Chunks {
            lines: BufReader::new(File::open(path)?).split(b'\n'),
            next: None,
            bad: 0,
        })
    }

    /// The next whole batches, at least `max_events` events unless the file ends first;
    /// empty at the end of the file.
    pub(crate) fn next_chunk(&mut self, max_events: usize) -> io::Result<Vec<(String, Event)>> {
        let mut out: Vec<(String, Event)> = self.next.take().into_iter().collect();
        for line in self.lines.by_ref() {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            let Some(rec) = std::str::from_utf8(&line).ok().and_then(decode_line) else {
                self.bad += 1;
                continue;
            };
            if out.len() >= max_events && out.last().is_some_and(|(batch, _)| *batch != rec.0) {
                self.next = Some(rec);
                return Ok(out);
            }
            out.push(rec);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    #[test]
    fn lines_round_trip_and_torn_lines_are_skipped() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("spill.jsonl");
        let mut spill = Spill::open(&path)?;
        let at = jiff::Timestamp::from_second(1_700_000_000)?;
        let mut buf = Vec::new();
        for i in 0..3 {
            let mut e = Event::new(EventKind::Dns, at, format!("host{i}.example"));
            e.content = Some("a\u{0}b".into());
            encode_line(&format!("run:{}", i / 2), &e, &mut buf)?;
        }
        // a line from a version that made event ids
        let legacy = format!(
            r#"{{"id":77,"event":{}}}"#,
            serde_json::to_string(&Event::new(EventKind::Dns, at, "legacy.example"))?
        );
        writeln!(buf, "{:08x} {legacy}", crc32fast::hash(legacy.as_bytes()))?;
        // a torn final line
        buf.extend_from_slice(b"0badc0de {\"batch\":");
        spill.append(&buf)?;
        let replay = spill.rotate()?.ok_or("nothing to replay")?;
        let (events, bad) = read_all(&replay)?;
        assert_eq!(bad, 1);
        assert_eq!(events.len(), 4);
        let batches: Vec<&str> = events.iter().map(|(b, _)| b.as_str()).collect();
        assert_eq!(batches, ["run:0", "run:0", "run:1", "legacy:77"]);
        assert_eq!(events[3].1.target, "legacy.example");
        for (i, (_, e)) in events[..3].iter().enumerate() {
            assert_eq!(e.target, format!("host{i}.example"));
        }
        assert!(spill.has_pending());
        std::fs::remove_file(&replay)?;
        assert!(!spill.has_pending());
        Ok(())
    }

    #[test]
    fn chunks_hold_whole_batches() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("spill.jsonl");
        let mut spill = Spill::open(&path)?;
        let at = jiff::Timestamp::from_second(1_700_000_000)?;
        let mut buf = Vec::new();
        // Batches of 3, 3 and 1 events.
        for (i, batch) in ["a", "a", "a", "b", "b", "b", "c"].into_iter().enumerate() {
            encode_line(
                batch,
                &Event::new(EventKind::Dns, at, format!("h{i}")),
                &mut buf,
            )?;
        }
        spill.append(&buf)?;
        let mut chunks = Chunks::open(&path)?;
        let sizes: Vec<Vec<String>> = std::iter::from_fn(|| {
            let chunk = chunks.next_chunk(2).ok()?;
            (!chunk.is_empty()).then(|| chunk.into_iter().map(|(b, _)| b).collect())
        })
        .collect();
        assert_eq!(
            sizes,
            vec![vec!["a"; 3], vec!["b"; 3], vec!["c"; 1]],
            "a chunk ends at a batch boundary once it holds max_events"
        );
        Ok(())
    }

    #[test]
    fn a_deleted_spill_file_is_recreated_with_what_it_held()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("data").join("spill.jsonl");
        let mut spill = Spill::open(&path)?;
        let at = jiff::Timestamp::from_second(1_700_000_000)?;
        let mut buf = Vec::new();
        encode_line(
            "run:1",
            &Event::new(EventKind::Dns, at, "kept.example"),
            &mut buf,
        )?;
        spill.append(&buf)?;
        assert!(!spill.ensure_present()?);
        std::fs::remove_dir_all(dir.path().join("data"))?;
        assert!(spill.ensure_present()?);
        let (events, bad) = read_all(&path)?;
        assert_eq!((events.len(), bad), (1, 0));
        assert_eq!(events[0].1.target, "kept.example");
        Ok(())
    }

    #[test]
    fn the_spill_file_is_private_whatever_the_umask() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("spill.jsonl");
        Spill::open(&path)?;
        let mode = std::fs::metadata(&path)?.mode() & 0o777;
        assert_eq!(mode, 0o600, "spill file mode {mode:o}");
        Ok(())
    }
}
