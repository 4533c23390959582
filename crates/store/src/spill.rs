//! The spill file: where events go when the queue is full or the database is down.
//!
//! Append-only JSON lines, each prefixed with the CRC-32 of its JSON (`xxxxxxxx {json}\n`),
//! so a line torn by a crash is recognised and skipped (it was never acknowledged: an event
//! is acknowledged as spilled only after the fsync that follows its line). Replay first
//! renames the live file to `PATH.replay` (so new spills keep appending while it replays),
//! inserts its events in order, skipping those whose id is already stored with the same
//! event (so replaying twice after a crash inserts nothing twice), then removes it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventId};

#[derive(Serialize)]
struct SpillLine<'a> {
    id: i64,
    event: &'a Event,
}

/// A line as read back: `id`, or `uid` (32 hex digits) in files written by versions that
/// keyed events by a 16-byte uid.
#[derive(Deserialize)]
struct SpillRecord {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    uid: Option<String>,
    event: Event,
}

pub(crate) fn encode_line(id: &EventId, event: &Event, out: &mut Vec<u8>) -> io::Result<()> {
    let json = serde_json::to_vec(&SpillLine { id: id.0, event })?;
    let crc = crc32fast::hash(&json);
    write!(out, "{crc:08x} ")?;
    out.extend_from_slice(&json);
    out.push(b'\n');
    Ok(())
}

fn decode_line(line: &str) -> Option<(EventId, Event)> {
    let (crc, json) = line.split_once(' ')?;
    let crc = u32::from_str_radix(crc, 16).ok()?;
    if crc32fast::hash(json.as_bytes()) != crc {
        return None;
    }
    let rec: SpillRecord = serde_json::from_str(json).ok()?;
    let id = match (rec.id, rec.uid) {
        (Some(id), _) => EventId(id),
        (None, Some(uid)) => EventId::from_legacy_uid(&uid)?,
        (None, None) => return None,
    };
    Some((id, rec.event))
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
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
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
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.len = 0;
        self.dirty = false;
        sync_dir(&self.path)?;
        Ok(Some(self.replay_path.clone()))
    }
}

pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

/// Read a spill file: the events in order, and how many lines were unreadable (a torn last
/// line after a crash, or damage).
pub(crate) fn read_all(path: &Path) -> io::Result<(Vec<(EventId, Event)>, u64)> {
    let reader = BufReader::new(File::open(path)?);
    let mut out = Vec::new();
    let mut bad = 0;
    for line in reader.split(b'\n') {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        match std::str::from_utf8(&line).ok().and_then(decode_line) {
            Some(rec) => out.push(rec),
            None => bad += 1,
        }
    }
    Ok((out, bad))
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
        let ids = crate::event::EventIds::new();
        let uids: Vec<EventId> = (0..3).map(|_| ids.next(at)).collect();
        for (i, uid) in uids.iter().enumerate() {
            let mut e = Event::new(EventKind::Dns, at, format!("host{i}.example"));
            e.content = Some("a\u{0}b".into());
            encode_line(uid, &e, &mut buf)?;
        }
        // a line from a version that keyed events by a 16-byte uid
        let legacy = format!(
            r#"{{"uid":"{}00112233445566778899","event":{}}}"#,
            hex::encode(&at.as_millisecond().to_be_bytes()[2..]),
            serde_json::to_string(&Event::new(EventKind::Dns, at, "legacy.example"))?
        );
        writeln!(buf, "{:08x} {legacy}", crc32fast::hash(legacy.as_bytes()))?;
        // a torn final line
        buf.extend_from_slice(b"0badc0de {\"id\":");
        spill.append(&buf)?;
        let replay = spill.rotate()?.ok_or("nothing to replay")?;
        let (events, bad) = read_all(&replay)?;
        assert_eq!(bad, 1);
        assert_eq!(events.len(), 4);
        let (legacy_id, legacy) = &events[3];
        assert_eq!(legacy.target, "legacy.example");
        assert_eq!(legacy_id.millis(), at.as_millisecond());
        for (i, (uid, e)) in events[..3].iter().enumerate() {
            assert_eq!(*uid, uids[i]);
            assert_eq!(e.target, format!("host{i}.example"));
        }
        assert!(spill.has_pending());
        std::fs::remove_file(&replay)?;
        assert!(!spill.has_pending());
        Ok(())
    }
}
