//! Errors of the catalog crate.

use std::path::PathBuf;

/// Everything that can go wrong importing lists, building or opening an index.
/// Bad lines in a list are not errors: they are counted in an [`crate::ImportReport`].
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The I/O error is part of the message, not a separate source: `anyhow`'s `{:#}`
    /// would print it twice.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is {kind}, not {expected}")]
    NotAFile {
        path: PathBuf,
        kind: &'static str,
        expected: &'static str,
    },
    #[error("{source_name}: {detail}")]
    NotAList { source_name: String, detail: String },
    #[error("{source_name}: larger than {limit} bytes, the most a list may hold")]
    ListTooLarge { source_name: String, limit: u64 },
    #[error("{path}: not a Hallpass catalog index (bad magic number)")]
    BadMagic { path: PathBuf },
    #[error(
        "{path}: catalog index format version {found} is not supported (this build reads version {supported}); rebuild it with `hallpass catalog import`"
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{path}: catalog index is truncated ({actual} bytes, expected {expected})")]
    Truncated {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("{path}: catalog index is corrupt (checksum {actual:08x}, header says {expected:08x})")]
    Checksum {
        path: PathBuf,
        expected: u32,
        actual: u32,
    },
    #[error("{path}: catalog index is corrupt: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("too many categories: a catalog holds at most 256 (adding {name:?})")]
    TooManyCategories { name: String },
    #[error("invalid category name {name:?}: {reason}")]
    InvalidCategoryName { name: String, reason: &'static str },
    #[error("invalid entry {entry:?} for category {category:?}: {reason}")]
    InvalidEntry {
        category: String,
        entry: String,
        reason: String,
    },
    #[error("alias {alias:?} points to unknown category {target:?}")]
    UnknownAliasTarget { alias: String, target: String },
    #[error("alias {alias:?} conflicts with a category of the same name")]
    AliasConflict { alias: String },
    #[error("{source_name}: cannot read archive: {detail}")]
    Archive { source_name: String, detail: String },
    #[error("{path}: cannot tell what kind of list this is: {detail}")]
    UnknownSource { path: PathBuf, detail: String },
    #[error("building the index failed: {0}")]
    Build(String),
}

impl CatalogError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CatalogError::Io {
            path: path.into(),
            error: source,
        }
    }
}

/// What a file that is not a regular file is, for messages ("/tmp is a directory").
pub(crate) fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}
