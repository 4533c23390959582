//! The compiled index file and the [`Catalog`] that reads it.
//!
//! # Format (version 1, all integers little-endian)
//!
//! ```text
//! header (32 bytes)
//!   0  8  magic "HPCATIDX"
//!   8  4  format version (1)
//!  12  4  flags (0)
//!  16  8  body length in bytes
//!  24  4  CRC-32 (IEEE) of the body
//!  28  4  reserved (0)
//! body
//!   5 x u64  section lengths: meta, sets, hosts, urls, expressions
//!   meta     u16 category count; per category: u8 name length, name, u8 usage
//!            (0 unknown, 1 black, 2 white), u64 domains, u64 urls, u64 expressions;
//!            u16 alias count; per alias: u8 name length, name, u8 target id
//!   sets     u32 count; per set 4 x u64 (bit i = category id i), most used first
//!   hosts    fst map: byte-reversed host ("moc.elpmaxe") -> index into sets
//!   urls     fst map: "host/path" (www-stripped, lower case) -> index into sets
//!   exprs    u32 count; per expression: u8 category id, u32 length, UTF-8 pattern
//! ```
//!
//! Files are only ever replaced by rename, never modified in place, so a mapping stays
//! valid for as long as a reader holds it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fst::raw::{Fst, Output};

use crate::Usage;
use crate::builder::compile_expressions;
use crate::error::CatalogError;
use crate::host_table::{HostTable, NoTable};
use crate::normalize::{HostKey, MAX_HOST_LEN, host_key, split_url, strip_www};
use crate::set::CategorySet;
use crate::verify_fst;

mod encode;
mod read;
mod report;

pub(crate) use encode::{Compiled, encode};
pub use report::{CatalogStats, CategoryDiff, CategoryStats};

pub const MAGIC: [u8; 8] = *b"HPCATIDX";
pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: usize = 32;
const SECTIONS: usize = 5;
const SECTION_NAMES: [&str; SECTIONS] = ["meta", "category set", "host", "URL", "expression"];
/// The largest index file opened (32 GiB; UT1 with two million more hosts is about
/// 60 MB). Also what keeps sums of fst outputs from overflowing: at most (file size /
/// 32 sets) x (file size nodes) < 2^64.
pub const MAX_INDEX_BYTES: u64 = 32 << 30;

/// The bytes behind a catalog: a read-only mapping or an owned buffer.
enum Backing {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mmap(m) => m,
            Backing::Owned(v) => v,
        }
    }

    /// Give the mapped file's pages back after the open read them all (the checksum, the
    /// fst checks, the host table's build): a service looks hosts up in the table and
    /// reads the file again only for a URL entry or an expression, which fault in just
    /// the pages they touch, from the page cache. Without this the whole file stays in
    /// the process's resident memory for nothing.
    fn release_resident_pages(&self) {
        #[cfg(unix)]
        if let Backing::Mmap(m) = self {
            // SAFETY: MADV_DONTNEED on a read-only, shared file mapping only drops this
            // process's page-table entries: the slices the fst maps hold stay valid, and
            // their next read faults the same bytes back in from the file (see `open`:
            // the file is never modified in place), so no reader can observe a change.
            #[allow(unsafe_code)]
            let advised = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
            if let Err(error) = advised {
                tracing::debug!(%error, "could not release the catalog's mapped pages");
            }
        }
    }
}

/// A range of the backing bytes; what the fst maps read from.
#[derive(Clone)]
struct Section {
    data: Arc<Backing>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for Section {
    fn as_ref(&self) -> &[u8] {
        // The range was checked against the length when the section was made.
        self.data.bytes().get(self.start..self.end).unwrap_or(&[])
    }
}

/// A compiled, immutable category index. Cheap to share (`Send + Sync`); lookups never
/// allocate for ASCII input.
pub struct Catalog {
    hosts: fst::Map<Section>,
    /// What host lookups read; `None` when it could not be built (they walk `hosts`).
    host_table: Option<HostTable>,
    urls: fst::Map<Section>,
    sets: Vec<CategorySet>,
    names: Vec<String>,
    usage: Vec<Usage>,
    counts: Vec<[u64; 3]>,
    aliases: Vec<(String, u8)>,
    /// One set of expressions per category that has any.
    expressions: Vec<(u8, regex::bytes::RegexSet)>,
    expression_sources: Vec<(u8, String)>,
    bytes: u64,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("categories", &self.names.len())
            .field("hosts", &self.hosts.len())
            .field("urls", &self.urls.len())
            .field(
                "lookup_table_bytes",
                &self.host_table.as_ref().map_or(0, HostTable::bytes),
            )
            .field("expressions", &self.expression_sources.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// How a catalog answers host lookups: from the in-memory host table built when it is
/// opened (about 13 bytes per host and a second for UT1 + 2M; for a service), or by
/// walking the index (nothing built; for a command that looks up a few names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostLookups {
    Table,
    Walk,
}

impl Catalog {
    /// Opens an index file, memory-mapped read-only, after checking its header and the
    /// checksum of its body, and builds the host table.
    pub fn open(path: impl AsRef<Path>) -> Result<Catalog, CatalogError> {
        Self::open_with(path, HostLookups::Table)
    }

    /// [`Catalog::open`], choosing whether to build the host table.
    pub fn open_with(
        path: impl AsRef<Path>,
        lookups: HostLookups,
    ) -> Result<Catalog, CatalogError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| CatalogError::io(path, e))?;
        let meta = file.metadata().map_err(|e| CatalogError::io(path, e))?;
        if !meta.is_file() {
            return Err(CatalogError::NotAFile {
                path: path.to_path_buf(),
                kind: crate::error::file_kind(&meta),
                expected: "a catalog index",
            });
        }
        let len = meta.len();
        if len > MAX_INDEX_BYTES {
            return Err(CatalogError::Corrupt {
                path: path.to_path_buf(),
                detail: format!(
                    "{len} bytes is larger than any index ({MAX_INDEX_BYTES} bytes at most)"
                ),
            });
        }
        if len < HEADER_LEN as u64 {
            // Too short to map usefully; read it (at most the header) to report the
            // precise problem.
            use std::io::Read as _;
            let mut bytes = Vec::with_capacity(HEADER_LEN);
            (&file)
                .take(HEADER_LEN as u64)
                .read_to_end(&mut bytes)
                .map_err(|e| CatalogError::io(path, e))?;
            return Self::parse(Arc::new(Backing::Owned(bytes)), path, lookups);
        }
        // SAFETY: the mapping is read-only and Hallpass never modifies an index file in
        // place: new indexes are written to a temporary file and renamed over the old
        // path, which leaves existing mappings of the old file intact. Another program
        // truncating or rewriting the file in place would break this; the index
        // directory is owned by Hallpass.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| CatalogError::io(path, e))?;
        Self::parse(Arc::new(Backing::Mmap(map)), path, lookups)
    }

    /// A catalog over owned bytes (an index file's content), e.g. one built in memory,
    /// with the host table.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Catalog, CatalogError> {
        Self::from_bytes_with(bytes, HostLookups::Table)
    }

    /// [`Catalog::from_bytes`], choosing whether to build the host table.
    pub fn from_bytes_with(bytes: Vec<u8>, lookups: HostLookups) -> Result<Catalog, CatalogError> {
        Self::parse(
            Arc::new(Backing::Owned(bytes)),
            Path::new("<memory>"),
            lookups,
        )
    }

    /// Category names; a category's id is its position here.
    pub fn category_names(&self) -> &[String] {
        &self.names
    }

    /// The id of a category or alias (case-insensitive).
    pub fn category_id(&self, name: &str) -> Option<u8> {
        if let Some(i) = self.names.iter().position(|n| n.eq_ignore_ascii_case(name)) {
            return Some(i as u8);
        }
        self.aliases
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(name))
            .map(|(_, id)| *id)
    }

    /// The name of a category id.
    pub fn category_name(&self, id: u8) -> Option<&str> {
        self.names.get(id as usize).map(String::as_str)
    }

    /// Every name (categories, then aliases) with the id it stands for.
    pub fn vocabulary(&self) -> impl Iterator<Item = (&str, u8)> + '_ {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as u8))
            .chain(self.aliases.iter().map(|(a, id)| (a.as_str(), *id)))
    }

    /// Aliases and the ids they stand for.
    pub fn aliases(&self) -> &[(String, u8)] {
        &self.aliases
    }

    /// Whether a category is a black list or a white list (UT1 `usage`).
    pub fn usage(&self, id: u8) -> Option<Usage> {
        self.usage.get(id as usize).copied()
    }

    /// Names of the categories in a set.
    pub fn names_of(&self, set: CategorySet) -> impl Iterator<Item = &str> + '_ {
        set.iter().filter_map(|id| self.category_name(id))
    }

    #[inline]
    fn set(&self, out: Output) -> CategorySet {
        usize::try_from(out.value())
            .ok()
            .and_then(|i| self.sets.get(i))
            .copied()
            .unwrap_or_default()
    }

    /// Categories of a host name or IP literal: every domain entry equal to the host or
    /// a parent domain of it; an IP entry only when the host is that IP. Case and one
    /// trailing dot are ignored; hosts over 253 bytes match nothing. Allocates only for
    /// non-ASCII input (which is converted to punycode first). Reads the in-memory host
    /// table when the catalog has one, else walks the index: the same answers.
    pub fn lookup_host(&self, host: &str) -> CategorySet {
        if let Some(t) = &self.host_table
            && let Some(set) = t.lookup_name(host)
        {
            return set;
        }
        self.lookup_host_via(host, self.host_table.as_ref())
    }

    /// [`Catalog::lookup_host`] walking the index instead of the in-memory table: the
    /// reference the table is tested and benchmarked against.
    #[doc(hidden)]
    pub fn lookup_host_walk(&self, host: &str) -> CategorySet {
        self.lookup_host_via(host, None)
    }

    #[inline]
    fn lookup_host_via(&self, host: &str, table: Option<&HostTable>) -> CategorySet {
        let mut buf = [0u8; 256];
        let (key, exact) = match host_key(host, &mut buf) {
            HostKey::Name(k) => (k, false),
            HostKey::Ip(k) => (k, true),
            HostKey::Invalid => return CategorySet::EMPTY,
            HostKey::NeedsIdna => {
                return match idna::domain_to_ascii(host.trim_end_matches('.')) {
                    Ok(ascii) if ascii.is_ascii() && !ascii.is_empty() => {
                        self.lookup_host_via(&ascii, table)
                    }
                    _ => CategorySet::EMPTY,
                };
            }
        };
        match table {
            Some(t) => t.lookup(key, exact),
            None => self.walk_host(key, exact),
        }
    }

    /// Walks the reversed host through the fst once, collecting the sets of every
    /// final state reached at a label boundary.
    #[inline]
    fn walk_host(&self, key: &[u8], exact: bool) -> CategorySet {
        let fst: &Fst<Section> = self.hosts.as_fst();
        let mut node = fst.root();
        let mut out = Output::zero();
        let mut acc = CategorySet::EMPTY;
        let mut i = key.len();
        while i > 0 {
            i -= 1;
            let Some(t) = node.find_input(key[i]) else {
                return acc;
            };
            let tr = node.transition(t);
            out = out.cat(tr.out);
            node = fst.node(tr.addr);
            if node.is_final() && (i == 0 || (!exact && key[i - 1] == b'.')) {
                acc |= self.set(out.cat(node.final_output()));
            }
        }
        acc
    }

    /// Categories of a URL (with or without scheme): the host's categories, every URL
    /// entry for the same host (after dropping a `www.`-style label) whose path is a
    /// prefix of the URL's path ending at `/`, `?` or the end, and every category with
    /// an expression matching `host/path?query` (lower case, no scheme, port or
    /// fragment). A bare host is looked up as a host.
    pub fn lookup_url(&self, url: &str) -> CategorySet {
        let parts = split_url(url);
        let mut acc = self.lookup_host(parts.host);
        let mut buf = [0u8; 256];
        let host: &[u8] = match host_key(parts.host, &mut buf) {
            HostKey::Name(k) | HostKey::Ip(k) => k,
            HostKey::Invalid => return acc,
            HostKey::NeedsIdna => {
                return match idna::domain_to_ascii(parts.host.trim_end_matches('.')) {
                    Ok(ascii) if ascii.is_ascii() && ascii.len() <= MAX_HOST_LEN => {
                        self.lookup_url(&format!("{ascii}{}", parts.rest))
                    }
                    _ => acc,
                };
            }
        };
        acc |= self.walk_url(strip_www(host), parts.rest.as_bytes());
        if !self.expressions.is_empty() {
            let mut stack = [0u8; 2048];
            let mut heap = Vec::new();
            let total = host.len() + parts.rest.len();
            let text: &mut [u8] = if total <= stack.len() {
                &mut stack[..total]
            } else {
                heap.resize(total, 0);
                &mut heap
            };
            text[..host.len()].copy_from_slice(host);
            for (d, s) in text[host.len()..].iter_mut().zip(parts.rest.bytes()) {
                *d = s.to_ascii_lowercase();
            }
            for (cat, set) in &self.expressions {
                if !acc.contains(*cat) && set.is_match(text) {
                    acc.insert(*cat);
                }
            }
        }
        acc
    }

    fn walk_url(&self, host: &[u8], rest: &[u8]) -> CategorySet {
        let fst: &Fst<Section> = self.urls.as_fst();
        let mut node = fst.root();
        let mut out = Output::zero();
        let mut acc = CategorySet::EMPTY;
        let n = host.len() + rest.len();
        let byte = |j: usize| -> u8 {
            if j < host.len() {
                host[j]
            } else {
                rest[j - host.len()].to_ascii_lowercase()
            }
        };
        for j in 0..n {
            let Some(t) = node.find_input(byte(j)) else {
                return acc;
            };
            let tr = node.transition(t);
            out = out.cat(tr.out);
            node = fst.node(tr.addr);
            if node.is_final() && j + 1 >= host.len() {
                let next = if j + 1 < n { Some(byte(j + 1)) } else { None };
                if matches!(next, None | Some(b'/') | Some(b'?')) {
                    acc |= self.set(out.cat(node.final_output()));
                }
            }
        }
        acc
    }
}
