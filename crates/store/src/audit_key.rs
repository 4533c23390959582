//! The audit log's anchor outside the database: an HMAC-SHA256 key kept in a file (0600,
//! in the data directory by default, created on first use).
//!
//! Without a key, anyone who can write the database can rewrite the whole chain and
//! recompute every hash. With the key, every entry from the one that put the key in use
//! (action [`MARKER_ACTION`]) is an HMAC under it: a rewrite needs the key, not just the
//! database. The key file also records the `seq` of that marker entry, so a chain cut back
//! to before the marker, or rewritten unkeyed from there on, is caught too.
//!
//! File format (text):
//! ```text
//! hallpass audit key v1
//! key = <64 hex digits>
//! from_seq = <seq of the marker entry>     (absent until the marker is written)
//! ```
//! Creation is crash-safe: the key is first written to `FILE.pending`, the marker entry
//! appended, then `FILE` written (temporary file, fsync, rename) and the pending file
//! removed. A pending file found later is finished the same way.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::StoreError;

/// `action` of the entry that starts the keyed part of the chain.
pub const MARKER_ACTION: &str = "audit.keyed";
/// `scheme` in the marker's details.
pub const SCHEME: &str = "hmac-sha256";
/// The default key file inside a data directory.
pub const DEFAULT_KEY_FILE: &str = "audit.key";

const HEADER: &str = "hallpass audit key v1";

/// An audit key and, once the marker entry is written, the seq it is at.
#[derive(Clone)]
pub struct AuditKey {
    bytes: [u8; 32],
    /// The marker entry's seq, when known.
    pub from_seq: Option<i64>,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself: only its id.
        f.debug_struct("AuditKey")
            .field("id", &self.id())
            .field("from_seq", &self.from_seq)
            .finish()
    }
}

impl AuditKey {
    pub(crate) fn generate() -> AuditKey {
        AuditKey {
            bytes: rand::random(),
            from_seq: None,
        }
    }

    pub(crate) fn with_from_seq(self, from_seq: Option<i64>) -> AuditKey {
        AuditKey { from_seq, ..self }
    }

    /// A short public name for the key (16 hex digits of a hash of it), written in the
    /// marker entry so a verifier can tell "wrong key" from "altered".
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"hallpass-audit-key-id\0");
        h.update(self.bytes);
        hex::encode(&h.finalize()[..8])
    }

    pub(crate) fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts a key of any length, so this cannot fail for 32 bytes.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes).unwrap_or_else(|_| unreachable!())
    }

    fn render(&self) -> String {
        let mut text = format!("{HEADER}\nkey = {}\n", hex::encode(self.bytes));
        if let Some(seq) = self.from_seq {
            text.push_str(&format!("from_seq = {seq}\n"));
        }
        text
    }

    fn parse(path: &Path, text: &str) -> Result<AuditKey, StoreError> {
        let bad = |why: &str| {
            StoreError::AuditKey(format!("{}: not an audit key file: {why}", path.display()))
        };
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some(HEADER) {
            return Err(bad(&format!("the first line must be `{HEADER}`")));
        }
        let mut bytes = None;
        let mut from_seq = None;
        for line in lines {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                return Err(bad(&format!("line {line:?} is not NAME = VALUE")));
            };
            match name.trim() {
                "key" => {
                    let decoded = hex::decode(value.trim())
                        .ok()
                        .and_then(|v| <[u8; 32]>::try_from(v).ok())
                        .ok_or_else(|| bad("key must be 64 hex digits"))?;
                    bytes = Some(decoded);
                }
                "from_seq" => {
                    from_seq = Some(
                        value
                            .trim()
                            .parse::<i64>()
                            .ok()
                            .filter(|seq| *seq >= 1)
                            .ok_or_else(|| bad("from_seq must be a positive number"))?,
                    );
                }
                other => return Err(bad(&format!("unknown field {other:?}"))),
            }
        }
        Ok(AuditKey {
            bytes: bytes.ok_or_else(|| bad("no `key = ...` line"))?,
            from_seq,
        })
    }
}

/// Where the key lives and what is known of it; held under the store's audit lock.
#[derive(Debug, Default)]
pub(crate) struct KeyState {
    /// The key file; `None`: no anchor (a library user's store: the chain stays unkeyed).
    pub file: Option<PathBuf>,
    /// The key, once loaded and its marker entry known to be in the chain.
    pub ready: Option<AuditKey>,
    /// `file` is `None` and the chain was found to have no keyed part.
    pub unkeyed_checked: bool,
}

pub(crate) fn pending_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".pending");
    PathBuf::from(name)
}

/// Reads a key file; `Ok(None)` when it does not exist. Tightens a key file other users
/// can read to 0600 (refuses one it cannot tighten).
pub(crate) fn read(path: &Path) -> Result<Option<AuditKey>, StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StoreError::AuditKey(format!(
                "cannot read the audit key {}: {e}",
                path.display()
            )));
        }
    };
    make_private(path)?;
    AuditKey::parse(path, &text).map(Some)
}

#[cfg(unix)]
fn make_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            StoreError::AuditKey(format!(
                "the audit key {} can be read by other users (mode {mode:04o}) and cannot be \
                 made private: {e}; run: chmod 600 {}",
                path.display(),
                path.display()
            ))
        })?;
        tracing::warn!(path = %path.display(), "the audit key was readable by other users: now 0600");
    }
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// Creates `path` holding `key`, 0600, failing if it exists (`AlreadyExists`).
pub(crate) fn create_new(path: &Path, key: &AuditKey) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::data_dir::create_private_dir(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(key.render().as_bytes())?;
    file.sync_all()
}

/// Writes `key` to `path` atomically (temporary file, fsync, rename), 0600.
pub(crate) fn replace(path: &Path, key: &AuditKey) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    create_new(&tmp, key)?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename is durable once the directory is.
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        let mut key = AuditKey::generate();
        key.from_seq = Some(7);
        create_new(&path, &key).unwrap();
        let back = read(&path).unwrap().unwrap();
        assert_eq!((back.id(), back.from_seq), (key.id(), Some(7)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(create_new(&path, &key).is_err(), "never overwrites a key");
        std::fs::write(&path, "hallpass audit key v1\nkey = 12\n").unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("key must be 64 hex digits"), "{error}");
        assert!(read(&dir.path().join("none")).unwrap().is_none());
    }
}
