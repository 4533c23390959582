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

pub const MAGIC: [u8; 8] = *b"HPCATIDX";
pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: usize = 32;
const SECTIONS: usize = 5;
const SECTION_NAMES: [&str; SECTIONS] = ["meta", "category set", "host", "URL", "expression"];
/// The largest index file opened (32 GiB; UT1 with two million more hosts is about
/// 60 MB). Also what keeps sums of fst outputs from overflowing: at most (file size /
/// 32 sets) x (file size nodes) < 2^64.
pub const MAX_INDEX_BYTES: u64 = 32 << 30;

/// What the builder hands to the encoder.
pub(crate) struct Compiled {
    pub names: Vec<String>,
    pub usage: Vec<Usage>,
    /// Per category: domains, urls, expressions.
    pub counts: Vec<[u64; 3]>,
    pub aliases: Vec<(String, u8)>,
    pub sets: Vec<CategorySet>,
    pub hosts_fst: Vec<u8>,
    pub urls_fst: Vec<u8>,
    pub expressions: Vec<(u8, String)>,
}

fn usage_code(u: Usage) -> u8 {
    match u {
        Usage::Unknown => 0,
        Usage::Black => 1,
        Usage::White => 2,
    }
}

pub(crate) fn encode(c: &Compiled) -> Result<Vec<u8>, CatalogError> {
    let too_big = |what: &str| CatalogError::Build(format!("too many {what}"));
    let mut meta = Vec::new();
    meta.extend_from_slice(
        &u16::try_from(c.names.len())
            .map_err(|_| too_big("categories"))?
            .to_le_bytes(),
    );
    for (i, name) in c.names.iter().enumerate() {
        meta.push(u8::try_from(name.len()).map_err(|_| too_big("bytes in a name"))?);
        meta.extend_from_slice(name.as_bytes());
        meta.push(usage_code(c.usage[i]));
        for n in c.counts[i] {
            meta.extend_from_slice(&n.to_le_bytes());
        }
    }
    meta.extend_from_slice(
        &u16::try_from(c.aliases.len())
            .map_err(|_| too_big("aliases"))?
            .to_le_bytes(),
    );
    for (alias, id) in &c.aliases {
        meta.push(u8::try_from(alias.len()).map_err(|_| too_big("bytes in a name"))?);
        meta.extend_from_slice(alias.as_bytes());
        meta.push(*id);
    }
    let mut sets = Vec::with_capacity(4 + 32 * c.sets.len());
    sets.extend_from_slice(&(c.sets.len() as u32).to_le_bytes());
    for s in &c.sets {
        for w in s.bits() {
            sets.extend_from_slice(&w.to_le_bytes());
        }
    }
    let mut exprs = Vec::new();
    exprs.extend_from_slice(&(c.expressions.len() as u32).to_le_bytes());
    for (cat, p) in &c.expressions {
        exprs.push(*cat);
        exprs.extend_from_slice(&(p.len() as u32).to_le_bytes());
        exprs.extend_from_slice(p.as_bytes());
    }
    let sections: [&[u8]; SECTIONS] = [&meta, &sets, &c.hosts_fst, &c.urls_fst, &exprs];
    let body_len: usize = SECTIONS * 8 + sections.iter().map(|s| s.len()).sum::<usize>();
    let mut out = Vec::with_capacity(HEADER_LEN + body_len);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(body_len as u64).to_le_bytes());
    out.extend_from_slice(&[0u8; 8]); // CRC + reserved, CRC filled below
    for s in &sections {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    }
    for s in &sections {
        out.extend_from_slice(s);
    }
    let crc = crc32fast::hash(&out[HEADER_LEN..]);
    out[24..28].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

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

/// Per-category figures from [`Catalog::stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryStats {
    pub id: u8,
    pub name: String,
    pub usage: Usage,
    pub domains: u64,
    pub urls: u64,
    pub expressions: u64,
    /// Other names for this category.
    pub aliases: Vec<String>,
}

/// Figures about a catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogStats {
    pub categories: usize,
    pub aliases: usize,
    /// Distinct hosts (domains and IPs) in the index.
    pub host_keys: u64,
    /// Distinct URL prefixes in the index.
    pub url_keys: u64,
    pub expressions: u64,
    /// Distinct category sets.
    pub category_sets: usize,
    /// Size of the index in bytes.
    pub bytes: u64,
    /// Memory held by the in-memory host table built at open (0 when host lookups
    /// walk the index instead).
    pub lookup_table_bytes: u64,
    pub per_category: Vec<CategoryStats>,
}

/// Entries added and removed in one category between two catalogs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryDiff {
    pub name: String,
    pub added: u64,
    pub removed: u64,
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

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn corrupt(&self, detail: impl Into<String>) -> CatalogError {
        CatalogError::Corrupt {
            path: self.path.to_path_buf(),
            detail: detail.into(),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], CatalogError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.corrupt("section ends early")),
        }
    }
    fn u8(&mut self) -> Result<u8, CatalogError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, CatalogError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, CatalogError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, CatalogError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn string(&mut self, n: usize) -> Result<String, CatalogError> {
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| self.corrupt("name is not UTF-8"))
    }
    fn done(&self, what: &str) -> Result<(), CatalogError> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(self.corrupt(format!("unexpected bytes after the {what} section")))
        }
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

    fn parse(
        data: Arc<Backing>,
        path: &Path,
        lookups: HostLookups,
    ) -> Result<Catalog, CatalogError> {
        let all = data.bytes();
        let total = all.len() as u64;
        let pb = || PathBuf::from(path);
        if total > MAX_INDEX_BYTES {
            return Err(CatalogError::Corrupt {
                path: pb(),
                detail: format!("{total} bytes is larger than any index"),
            });
        }
        if all.len() < 8 || all[..8] != MAGIC {
            if all.len() < 8 && MAGIC.starts_with(all) {
                return Err(CatalogError::Truncated {
                    path: pb(),
                    expected: HEADER_LEN as u64,
                    actual: total,
                });
            }
            return Err(CatalogError::BadMagic { path: pb() });
        }
        if all.len() < HEADER_LEN {
            return Err(CatalogError::Truncated {
                path: pb(),
                expected: HEADER_LEN as u64,
                actual: total,
            });
        }
        let mut h = Reader {
            bytes: &all[..HEADER_LEN],
            pos: 8,
            path,
        };
        let version = h.u32()?;
        if version != FORMAT_VERSION {
            return Err(CatalogError::UnsupportedVersion {
                path: pb(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let flags = h.u32()?;
        let body_len = h.u64()?;
        let crc = h.u32()?;
        let reserved = h.u32()?;
        if flags != 0 || reserved != 0 {
            return Err(CatalogError::Corrupt {
                path: pb(),
                detail: format!("unknown header flags {flags:#x}/{reserved:#x}"),
            });
        }
        let expected_total = body_len.saturating_add(HEADER_LEN as u64);
        if total < expected_total {
            return Err(CatalogError::Truncated {
                path: pb(),
                expected: expected_total,
                actual: total,
            });
        }
        if total > expected_total {
            return Err(CatalogError::Corrupt {
                path: pb(),
                detail: format!("{} unexpected bytes after the end", total - expected_total),
            });
        }
        let body = &all[HEADER_LEN..];
        let actual = crc32fast::hash(body);
        if actual != crc {
            return Err(CatalogError::Checksum {
                path: pb(),
                expected: crc,
                actual,
            });
        }

        let mut r = Reader {
            bytes: body,
            pos: 0,
            path,
        };
        let mut ranges = [(0usize, 0usize); SECTIONS];
        let mut lens = [0u64; SECTIONS];
        for l in &mut lens {
            *l = r.u64()?;
        }
        let mut start = HEADER_LEN + SECTIONS * 8;
        for (i, l) in lens.iter().enumerate() {
            let end = usize::try_from(*l)
                .ok()
                .and_then(|len| start.checked_add(len))
                .filter(|&e| e <= all.len())
                .ok_or_else(|| {
                    r.corrupt(format!(
                        "the {} section ({l} bytes at body offset {}) runs past the end of the body",
                        SECTION_NAMES[i],
                        start - HEADER_LEN
                    ))
                })?;
            ranges[i] = (start, end);
            start = end;
        }
        if start != all.len() {
            return Err(r.corrupt("section lengths do not add up to the body length"));
        }

        // meta
        let mut m = Reader {
            bytes: &all[ranges[0].0..ranges[0].1],
            pos: 0,
            path,
        };
        let ncat = m.u16()? as usize;
        if ncat > 256 {
            return Err(m.corrupt("more than 256 categories"));
        }
        let mut names = Vec::with_capacity(ncat);
        let mut usage = Vec::with_capacity(ncat);
        let mut counts = Vec::with_capacity(ncat);
        for _ in 0..ncat {
            let n = m.u8()? as usize;
            let name = m.string(n)?;
            if names.contains(&name) {
                return Err(m.corrupt(format!("category {name:?} appears twice")));
            }
            names.push(name);
            usage.push(match m.u8()? {
                0 => Usage::Unknown,
                1 => Usage::Black,
                2 => Usage::White,
                other => return Err(m.corrupt(format!("unknown usage code {other}"))),
            });
            counts.push([m.u64()?, m.u64()?, m.u64()?]);
        }
        let nalias = m.u16()? as usize;
        let mut aliases = Vec::with_capacity(nalias);
        for _ in 0..nalias {
            let n = m.u8()? as usize;
            let name = m.string(n)?;
            let id = m.u8()?;
            if id as usize >= ncat {
                return Err(m.corrupt(format!("alias {name:?} points to a missing category")));
            }
            aliases.push((name, id));
        }
        m.done("meta")?;

        // sets
        let mut s = Reader {
            bytes: &all[ranges[1].0..ranges[1].1],
            pos: 0,
            path,
        };
        let nsets = s.u32()? as usize;
        if nsets.saturating_mul(32) != s.bytes.len().saturating_sub(4) {
            return Err(s.corrupt("category set table has the wrong size"));
        }
        let mut sets = Vec::with_capacity(nsets);
        for _ in 0..nsets {
            let set = CategorySet::from_bits([s.u64()?, s.u64()?, s.u64()?, s.u64()?]);
            if set.iter().any(|id| id as usize >= ncat) {
                return Err(s.corrupt("category set names a missing category"));
            }
            sets.push(set);
        }

        let section = |i: usize| Section {
            data: Arc::clone(&data),
            start: ranges[i].0,
            end: ranges[i].1,
        };
        let fst_err = |what: &str, detail: String| CatalogError::Corrupt {
            path: pb(),
            detail: format!("{what} section: {detail}"),
        };
        // Every value indexes the set table; see `verify_fst` for why each output must.
        let max_output = nsets.saturating_sub(1) as u64;
        for (i, what) in ["host", "URL"].into_iter().enumerate() {
            let bytes = &all[ranges[2 + i].0..ranges[2 + i].1];
            verify_fst::check(bytes, max_output).map_err(|d| fst_err(what, d))?;
        }
        let hosts = fst::Map::new(section(2)).map_err(|e| fst_err("host", e.to_string()))?;
        let urls = fst::Map::new(section(3)).map_err(|e| fst_err("URL", e.to_string()))?;
        let built = match lookups {
            HostLookups::Table => Some(HostTable::build(&hosts, &sets)),
            HostLookups::Walk => None,
        };
        let host_table = match built {
            None => None,
            Some(Ok(t)) => {
                tracing::debug!(
                    keys = hosts.len(),
                    bytes = t.bytes(),
                    "built the host lookup table"
                );
                Some(t)
            }
            Some(Err(NoTable::Corrupt(detail))) => return Err(fst_err("host", detail)),
            Some(Err(why)) => {
                tracing::info!(
                    ?why,
                    "no host lookup table for {}: host lookups walk the index",
                    path.display()
                );
                None
            }
        };

        // expressions
        let mut x = Reader {
            bytes: &all[ranges[4].0..ranges[4].1],
            pos: 0,
            path,
        };
        let nexpr = x.u32()? as usize;
        let mut expression_sources = Vec::with_capacity(nexpr.min(1 << 16));
        for _ in 0..nexpr {
            let cat = x.u8()?;
            if cat as usize >= ncat {
                return Err(x.corrupt("expression for a missing category"));
            }
            let n = x.u32()? as usize;
            let p = x.string(n)?;
            expression_sources.push((cat, p));
        }
        x.done("expressions")?;
        let mut expressions = Vec::new();
        for (cat, name) in names.iter().enumerate() {
            let pats: Vec<&str> = expression_sources
                .iter()
                .filter(|(c, _)| *c as usize == cat)
                .map(|(_, p)| p.as_str())
                .collect();
            if pats.is_empty() {
                continue;
            }
            let set = compile_expressions(&pats).map_err(|e| CatalogError::Corrupt {
                path: pb(),
                detail: format!("expression for {name:?} does not compile: {e}"),
            })?;
            expressions.push((cat as u8, set));
        }

        Ok(Catalog {
            hosts,
            host_table,
            urls,
            sets,
            names,
            usage,
            counts,
            aliases,
            expressions,
            expression_sources,
            bytes: total,
        })
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

    /// Figures about the catalog.
    pub fn stats(&self) -> CatalogStats {
        let per_category = self
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| CategoryStats {
                id: i as u8,
                name: name.clone(),
                usage: self.usage[i],
                domains: self.counts[i][0],
                urls: self.counts[i][1],
                expressions: self.counts[i][2],
                aliases: self
                    .aliases
                    .iter()
                    .filter(|(_, id)| *id as usize == i)
                    .map(|(a, _)| a.clone())
                    .collect(),
            })
            .collect();
        CatalogStats {
            categories: self.names.len(),
            aliases: self.aliases.len(),
            host_keys: self.hosts.len() as u64,
            url_keys: self.urls.len() as u64,
            expressions: self.expression_sources.len() as u64,
            category_sets: self.sets.len(),
            bytes: self.bytes,
            lookup_table_bytes: self.host_table.as_ref().map_or(0, |t| t.bytes() as u64),
            per_category,
        }
    }

    /// Per category (by name, sorted), how many entries (hosts, URLs and expressions)
    /// `new` has that `old` lacks, and the reverse. Categories without changes are
    /// included with zeros.
    pub fn diff(old: &Catalog, new: &Catalog) -> Vec<CategoryDiff> {
        use std::collections::BTreeMap;
        let mut names: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for n in old.names.iter().chain(new.names.iter()) {
            names.insert(n.as_str(), (0, 0));
        }
        let mut added = [0u64; 256];
        let mut removed = [0u64; 256];
        // old id -> new id (by name) and back.
        let o2n: Vec<Option<u8>> = old
            .names
            .iter()
            .map(|n| new.names.iter().position(|m| m == n).map(|p| p as u8))
            .collect();
        let n2o: Vec<Option<u8>> = new
            .names
            .iter()
            .map(|n| old.names.iter().position(|m| m == n).map(|p| p as u8))
            .collect();
        let mut compare = |a: CategorySet, b: CategorySet| {
            for id in a.iter() {
                let still = o2n
                    .get(id as usize)
                    .copied()
                    .flatten()
                    .is_some_and(|n| b.contains(n));
                if !still {
                    removed[id as usize] += 1;
                }
            }
            for id in b.iter() {
                let before = n2o
                    .get(id as usize)
                    .copied()
                    .flatten()
                    .is_some_and(|o| a.contains(o));
                if !before {
                    added[id as usize] += 1;
                }
            }
        };
        for (om, nm) in [(&old.hosts, &new.hosts), (&old.urls, &new.urls)] {
            merge_maps(om, nm, |a, b| {
                compare(
                    a.map(|v| old.set(Output::new(v))).unwrap_or_default(),
                    b.map(|v| new.set(Output::new(v))).unwrap_or_default(),
                )
            });
        }
        // Expressions compared as (category name, pattern).
        let mut old_ex: Vec<(&str, &str)> = old
            .expression_sources
            .iter()
            .map(|(c, p)| (old.names[*c as usize].as_str(), p.as_str()))
            .collect();
        let mut new_ex: Vec<(&str, &str)> = new
            .expression_sources
            .iter()
            .map(|(c, p)| (new.names[*c as usize].as_str(), p.as_str()))
            .collect();
        old_ex.sort();
        new_ex.sort();
        for (i, name) in old.names.iter().enumerate() {
            if let Some(e) = names.get_mut(name.as_str()) {
                e.1 += removed[i];
            }
        }
        for (i, name) in new.names.iter().enumerate() {
            if let Some(e) = names.get_mut(name.as_str()) {
                e.0 += added[i];
            }
        }
        for x in &old_ex {
            if new_ex.binary_search(x).is_err()
                && let Some(e) = names.get_mut(x.0)
            {
                e.1 += 1;
            }
        }
        for x in &new_ex {
            if old_ex.binary_search(x).is_err()
                && let Some(e) = names.get_mut(x.0)
            {
                e.0 += 1;
            }
        }
        names
            .into_iter()
            .map(|(name, (added, removed))| CategoryDiff {
                name: name.to_string(),
                added,
                removed,
            })
            .collect()
    }

    /// Every host key in the index, in index order, with its categories (host keys are
    /// stored reversed; this gives them back the right way round). For tools and tests.
    pub fn for_each_host(&self, mut f: impl FnMut(&str, CategorySet)) {
        use fst::Streamer;
        let mut s = self.hosts.stream();
        let mut buf = Vec::new();
        while let Some((k, v)) = s.next() {
            buf.clear();
            buf.extend(k.iter().rev());
            f(&String::from_utf8_lossy(&buf), self.set(Output::new(v)));
        }
    }
}

/// Walks two maps in key order, calling `f(old_value, new_value)` for every key in
/// either.
fn merge_maps(
    a: &fst::Map<Section>,
    b: &fst::Map<Section>,
    mut f: impl FnMut(Option<u64>, Option<u64>),
) {
    use fst::Streamer;
    let mut sa = a.stream();
    let mut sb = b.stream();
    let mut ka: Option<(Vec<u8>, u64)> = sa.next().map(|(k, v)| (k.to_vec(), v));
    let mut kb: Option<(Vec<u8>, u64)> = sb.next().map(|(k, v)| (k.to_vec(), v));
    loop {
        match (&ka, &kb) {
            (None, None) => break,
            (Some((_, va)), None) => {
                f(Some(*va), None);
                ka = sa.next().map(|(k, v)| (k.to_vec(), v));
            }
            (None, Some((_, vb))) => {
                f(None, Some(*vb));
                kb = sb.next().map(|(k, v)| (k.to_vec(), v));
            }
            (Some((x, va)), Some((y, vb))) => match x.cmp(y) {
                std::cmp::Ordering::Less => {
                    f(Some(*va), None);
                    ka = sa.next().map(|(k, v)| (k.to_vec(), v));
                }
                std::cmp::Ordering::Greater => {
                    f(None, Some(*vb));
                    kb = sb.next().map(|(k, v)| (k.to_vec(), v));
                }
                std::cmp::Ordering::Equal => {
                    f(Some(*va), Some(*vb));
                    ka = sa.next().map(|(k, v)| (k.to_vec(), v));
                    kb = sb.next().map(|(k, v)| (k.to_vec(), v));
                }
            },
        }
    }
}
