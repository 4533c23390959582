//! The data directory's permissions: it holds names, emails, browsing history and the
//! audit key, so it is private to the user Hallpass runs as.
//!
//! * A directory Hallpass creates is 0700, every file it creates there 0600 (the database
//!   is created 0600 before SQLite opens it, and SQLite gives its `-wal` and `-shm` files
//!   the database's mode).
//! * [`secure`] is called by everything that opens a data directory (`serve` and every
//!   command). It refuses a directory other users can write (they could replace the
//!   database or the audit key) or that another user owns, naming the fix; it tightens a
//!   directory others can only read to 0700 and the files in it to 0600 (files an older
//!   version left 0644).

use std::path::Path;

/// Why a data directory is refused.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error(
        "the data directory {dir} can be written by other users (mode {mode:04o}): they could \
         replace the database or the audit key. Make it private: chmod 700 {dir}"
    )]
    WritableByOthers { dir: String, mode: u32 },
    #[error(
        "the data directory {dir} belongs to another user (uid {owner}; Hallpass runs as uid \
         {me}). Run Hallpass as that user, or: chown -R {me} {dir} && chmod 700 {dir}"
    )]
    OwnedByAnother { dir: String, owner: u32, me: u32 },
    #[error(
        "{file} in the data directory belongs to another user (uid {owner}; Hallpass runs as \
         uid {me}), so Hallpass cannot write it. Run Hallpass as that user, or: chown {me} \
         {file} && chmod 600 {file}"
    )]
    FileOwnedByAnother { file: String, owner: u32, me: u32 },
    #[error(
        "the data directory {dir} is not writable by its owner (mode {mode:04o}): Hallpass \
         could not write the database. Run: chmod 700 {dir}"
    )]
    NotWritable { dir: String, mode: u32 },
    #[error("{path}: {what}{hint}")]
    NotADirectory {
        path: String,
        what: &'static str,
        hint: &'static str,
    },
    #[error("{path}: {what}: {cause}{hint}")]
    Io {
        path: String,
        what: &'static str,
        cause: std::io::Error,
        hint: String,
    },
}

fn io_error(path: &Path, what: &'static str, cause: std::io::Error) -> DataDirError {
    let hint = match cause.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            " (Hallpass runs as uid {}: run it as the user that owns {}, or fix the \
             owner with chown)",
            current_uid(),
            path.display()
        ),
        _ => String::new(),
    };
    DataDirError::Io {
        path: path.display().to_string(),
        what,
        cause,
        hint,
    }
}

/// Creates `dir` (and missing parents) with mode 0700.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates the database file 0600 if it does not exist, so that SQLite (which would create
/// it 0644) and its `-wal`/`-shm` files (which take the database's mode) are private.
pub(crate) fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `dir` 0700 if missing, refuses it if other users can write it or it belongs to
/// another user, and makes it and the files in it private (0700 / 0600).
pub fn secure(dir: &Path) -> Result<(), DataDirError> {
    if dir.exists() && !dir.is_dir() {
        return Err(DataDirError::NotADirectory {
            path: dir.display().to_string(),
            what: "is not a directory",
            hint: ": give --data-dir (or data_dir) a directory for the database and its files",
        });
    }
    create_private_dir(dir).map_err(|e| io_error(dir, "cannot create the data directory", e))?;
    check_and_tighten(dir)
}

#[cfg(unix)]
fn check_and_tighten(dir: &Path) -> Result<(), DataDirError> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let shown = dir.display().to_string();
    let meta =
        std::fs::metadata(dir).map_err(|e| io_error(dir, "cannot read the data directory", e))?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(DataDirError::WritableByOthers { dir: shown, mode });
    }
    let me = current_uid();
    // root may run Hallpass on a directory it gave to a service user, and the owner of
    // a directory may always run it; anyone else's directory is theirs to change.
    if meta.uid() != me && me != 0 {
        return Err(DataDirError::OwnedByAnother {
            dir: shown,
            owner: meta.uid(),
            me,
        });
    }
    if me != 0 && mode & 0o700 != 0o700 {
        return Err(DataDirError::NotWritable { dir: shown, mode });
    }
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io_error(dir, "cannot make the data directory private (chmod 700)", e))?;
        tracing::info!(dir = %shown, "the data directory was readable by other users: now 0700");
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| io_error(dir, "cannot list the data directory", e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        if meta.uid() != me && me != 0 {
            return Err(DataDirError::FileOwnedByAnother {
                file: path.display().to_string(),
                owner: meta.uid(),
                me,
            });
        }
        if meta.mode() & 0o077 == 0 {
            continue;
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error(&path, "cannot make the file private (chmod 600)", e))?;
        tracing::info!(file = %path.display(), "was readable by other users: now 0600");
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_and_tighten(_dir: &Path) -> Result<(), DataDirError> {
    Ok(())
}

/// The user id this process runs as (read from /proc, so no `unsafe` getuid call).
#[cfg(unix)]
pub fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

#[cfg(not(unix))]
pub fn current_uid() -> u32 {
    0
}
