//! `CatalogBuilder`: collects entries from any number of lists, then compiles them
//! into the index format (see [`crate::index`]).

use std::collections::HashMap;
use std::path::Path;

use crate::error::CatalogError;
use crate::index::{self, Compiled};
use crate::normalize::{normalize_host_into, normalize_url_into};
use crate::set::CategorySet;
use crate::{Catalog, Usage};

/// Longest category name.
pub const MAX_CATEGORY_NAME: usize = 64;

#[derive(Clone, Copy)]
struct Entry {
    off: u32,
    len: u16,
    cat: u8,
}

/// Keys of one kind (hosts or URLs) packed into one buffer, 8 bytes of bookkeeping
/// per entry, so that millions of entries stay within a few hundred megabytes.
#[derive(Default)]
struct KeyArena {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
}

impl KeyArena {
    fn push(
        &mut self,
        key: impl ExactSizeIterator<Item = u8>,
        cat: u8,
    ) -> Result<(), CatalogError> {
        let off = u32::try_from(self.bytes.len())
            .map_err(|_| CatalogError::Build("more than 4 GiB of list entries".into()))?;
        let len = u16::try_from(key.len())
            .map_err(|_| CatalogError::Build("entry longer than 64 KiB".into()))?;
        self.bytes.extend(key);
        self.entries.push(Entry { off, len, cat });
        Ok(())
    }

    fn key(&self, e: Entry) -> &[u8] {
        &self.bytes[e.off as usize..e.off as usize + e.len as usize]
    }

    /// Sorts entries by key (two threads: each half sorted, then merged).
    fn sort(&mut self) {
        let bytes = &self.bytes;
        let key = |e: &Entry| &bytes[e.off as usize..e.off as usize + e.len as usize];
        let n = self.entries.len();
        if n < 100_000 {
            self.entries.sort_unstable_by(|a, b| key(a).cmp(key(b)));
            return;
        }
        let (left, right) = self.entries.split_at_mut(n / 2);
        std::thread::scope(|s| {
            s.spawn(|| left.sort_unstable_by(|a, b| key(a).cmp(key(b))));
            right.sort_unstable_by(|a, b| key(a).cmp(key(b)));
        });
        let mut merged = Vec::with_capacity(n);
        let (mut i, mut j) = (0, n / 2);
        while i < n / 2 && j < n {
            if key(&self.entries[j]) < key(&self.entries[i]) {
                merged.push(self.entries[j]);
                j += 1;
            } else {
                merged.push(self.entries[i]);
                i += 1;
            }
        }
        merged.extend_from_slice(&self.entries[i..n / 2]);
        merged.extend_from_slice(&self.entries[j..]);
        self.entries = merged;
    }
}

struct CatInfo {
    name: String,
    usage: Usage,
}

/// Collects categories, entries, aliases and usage, then compiles an index.
///
/// ```
/// use hallpass_catalog::CatalogBuilder;
/// let mut b = CatalogBuilder::new();
/// b.add_domain("gambling", "casino.example").unwrap();
/// b.add_alias("betting", "gambling").unwrap();
/// let catalog = b.build().unwrap();
/// let id = catalog.category_id("betting").unwrap();
/// assert!(catalog.lookup_host("www.casino.example").contains(id));
/// ```
#[derive(Default)]
pub struct CatalogBuilder {
    cats: Vec<CatInfo>,
    by_name: HashMap<String, u8>,
    aliases: Vec<(String, String)>,
    hosts: KeyArena,
    urls: KeyArena,
    expressions: Vec<(u8, String)>,
    scratch: Vec<u8>,
    scratch2: Vec<u8>,
}

pub(crate) fn check_category_name(name: &str) -> Result<String, CatalogError> {
    let bad = |reason| CatalogError::InvalidCategoryName {
        name: name.to_string(),
        reason,
    };
    let n = name.trim();
    if n.is_empty() {
        return Err(bad("empty"));
    }
    if n.len() > MAX_CATEGORY_NAME {
        return Err(bad("longer than 64 bytes"));
    }
    if !n
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        return Err(bad("only letters, digits, '_', '-' and '.' are allowed"));
    }
    Ok(n.to_ascii_lowercase())
}

impl CatalogBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The builder's internal number for a category, creating it if needed.
    pub(crate) fn category_index(&mut self, name: &str) -> Result<u8, CatalogError> {
        if let Some(&i) = self.by_name.get(name) {
            return Ok(i);
        }
        let name = check_category_name(name)?;
        if let Some(&i) = self.by_name.get(&name) {
            return Ok(i);
        }
        let i = u8::try_from(self.cats.len())
            .map_err(|_| CatalogError::TooManyCategories { name: name.clone() })?;
        self.cats.push(CatInfo {
            name: name.clone(),
            usage: Usage::Unknown,
        });
        self.by_name.insert(name, i);
        Ok(i)
    }

    /// Declares a category (so that it exists even with no entries).
    pub fn add_category(&mut self, name: &str) -> Result<(), CatalogError> {
        self.category_index(name).map(|_| ())
    }

    /// Records whether a category is a black or white list (UT1 `usage` file).
    pub fn set_usage(&mut self, category: &str, usage: Usage) -> Result<(), CatalogError> {
        let i = self.category_index(category)?;
        self.cats[i as usize].usage = usage;
        Ok(())
    }

    /// Adds a domain (matches it and every subdomain) or an IP literal (matches exactly).
    pub fn add_domain(&mut self, category: &str, domain: &str) -> Result<(), CatalogError> {
        let cat = self.category_index(category)?;
        self.push_domain(cat, domain)
            .map_err(|reason| CatalogError::InvalidEntry {
                category: category.to_string(),
                entry: domain.to_string(),
                reason: reason.to_string(),
            })
    }

    /// Adds a URL prefix (`host/path`: matches that host with that path or below it).
    pub fn add_url(&mut self, category: &str, url: &str) -> Result<(), CatalogError> {
        let cat = self.category_index(category)?;
        self.push_url(cat, url)
            .map_err(|reason| CatalogError::InvalidEntry {
                category: category.to_string(),
                entry: url.to_string(),
                reason: reason.to_string(),
            })
    }

    /// Adds a regular expression matched (case-insensitively) against `host/path?query`.
    pub fn add_expression(&mut self, category: &str, pattern: &str) -> Result<(), CatalogError> {
        let cat = self.category_index(category)?;
        self.push_expression(cat, pattern)
            .map_err(|reason| CatalogError::InvalidEntry {
                category: category.to_string(),
                entry: pattern.to_string(),
                reason,
            })
    }

    /// Makes `alias` another name for `target` (UT1 symlinks such as `porn -> adult`).
    pub fn add_alias(&mut self, alias: &str, target: &str) -> Result<(), CatalogError> {
        let alias = check_category_name(alias)?;
        let target = check_category_name(target)?;
        self.aliases.retain(|(a, _)| *a != alias);
        self.aliases.push((alias, target));
        Ok(())
    }

    pub(crate) fn push_domain(&mut self, cat: u8, domain: &str) -> Result<(), &'static str> {
        normalize_host_into(domain, &mut self.scratch)?;
        self.hosts
            .push(self.scratch.iter().rev().copied(), cat)
            .map_err(|_| "too many entries")
    }

    pub(crate) fn push_url(&mut self, cat: u8, url: &str) -> Result<(), &'static str> {
        normalize_url_into(url, &mut self.scratch2, &mut self.scratch)?;
        self.urls
            .push(self.scratch.iter().copied(), cat)
            .map_err(|_| "too many entries")
    }

    pub(crate) fn push_expression(&mut self, cat: u8, pattern: &str) -> Result<(), String> {
        let pattern = pattern.trim();
        if pattern.is_empty() {
            return Err("empty expression".into());
        }
        compile_expressions(&[pattern]).map_err(|e| format!("invalid regular expression: {e}"))?;
        self.expressions.push((cat, pattern.to_string()));
        Ok(())
    }

    /// Number of entries added so far (hosts, URLs, expressions; duplicates included).
    pub fn entry_count(&self) -> usize {
        self.hosts.entries.len() + self.urls.entries.len() + self.expressions.len()
    }

    /// Compiles everything added so far into the bytes of an index file.
    pub fn to_bytes(&mut self) -> Result<Vec<u8>, CatalogError> {
        let compiled = self.compile()?;
        index::encode(&compiled)
    }

    /// Compiles and writes the index to `path` atomically: a temporary file in the same
    /// directory, synced, then renamed over `path`. Returns the file size.
    pub fn write_to(&mut self, path: &Path) -> Result<u64, CatalogError> {
        let bytes = self.to_bytes()?;
        write_atomically(path, &bytes)?;
        Ok(bytes.len() as u64)
    }

    /// Compiles into an in-memory [`Catalog`].
    pub fn build(&mut self) -> Result<Catalog, CatalogError> {
        Catalog::from_bytes(self.to_bytes()?)
    }

    fn compile(&mut self) -> Result<Compiled, CatalogError> {
        // Final ids: categories sorted by name.
        let mut order: Vec<u8> = (0..self.cats.len()).map(|i| i as u8).collect();
        order.sort_by(|a, b| {
            self.cats[*a as usize]
                .name
                .cmp(&self.cats[*b as usize].name)
        });
        let mut remap = [0u8; 256];
        for (final_id, &builder_id) in order.iter().enumerate() {
            remap[builder_id as usize] = final_id as u8;
        }
        let names: Vec<String> = order
            .iter()
            .map(|&i| self.cats[i as usize].name.clone())
            .collect();
        let usage: Vec<Usage> = order.iter().map(|&i| self.cats[i as usize].usage).collect();

        // Aliases resolve (through chains) to a category.
        let mut aliases = Vec::new();
        for (alias, target) in &self.aliases {
            if self.by_name.contains_key(alias) {
                return Err(CatalogError::AliasConflict {
                    alias: alias.clone(),
                });
            }
            let mut t = target.clone();
            let mut hops = 0;
            let id = loop {
                if let Some(&i) = self.by_name.get(&t) {
                    break remap[i as usize];
                }
                match self.aliases.iter().find(|(a, _)| *a == t) {
                    Some((_, next)) if hops < 256 => {
                        t = next.clone();
                        hops += 1;
                    }
                    _ => {
                        return Err(CatalogError::UnknownAliasTarget {
                            alias: alias.clone(),
                            target: target.clone(),
                        });
                    }
                }
            };
            aliases.push((alias.clone(), id));
        }
        aliases.sort();

        let mut counts = vec![[0u64; 3]; names.len()];
        let mut set_ids: HashMap<CategorySet, u32> = HashMap::new();
        let mut set_list: Vec<CategorySet> = Vec::new();
        let mut set_freq: Vec<u64> = Vec::new();

        let host_groups = group_keys(
            &mut self.hosts,
            &remap,
            &mut set_ids,
            &mut set_list,
            &mut set_freq,
            &mut counts,
            0,
        );
        let url_groups = group_keys(
            &mut self.urls,
            &remap,
            &mut set_ids,
            &mut set_list,
            &mut set_freq,
            &mut counts,
            1,
        );

        // Most frequent set first: its fst output is 0 and costs no bytes.
        let mut by_freq: Vec<u32> = (0..set_list.len() as u32).collect();
        by_freq.sort_by(|a, b| {
            set_freq[*b as usize]
                .cmp(&set_freq[*a as usize])
                .then(a.cmp(b))
        });
        let mut rank = vec![0u64; set_list.len()];
        for (r, &s) in by_freq.iter().enumerate() {
            rank[s as usize] = r as u64;
        }
        let sets: Vec<CategorySet> = by_freq.iter().map(|&s| set_list[s as usize]).collect();

        let hosts_fst = build_fst(&self.hosts, &host_groups, &rank)?;
        let urls_fst = build_fst(&self.urls, &url_groups, &rank)?;

        let mut expressions: Vec<(u8, String)> = self
            .expressions
            .iter()
            .map(|(c, p)| (remap[*c as usize], p.clone()))
            .collect();
        expressions.sort();
        expressions.dedup();
        for (c, _) in &expressions {
            counts[*c as usize][2] += 1;
        }

        Ok(Compiled {
            names,
            usage,
            counts,
            aliases,
            sets,
            hosts_fst,
            urls_fst,
            expressions,
        })
    }
}

/// Sorts an arena and returns, per distinct key (in order), the number of entries in
/// its group and the (first-come) id of its category set.
fn group_keys(
    arena: &mut KeyArena,
    remap: &[u8; 256],
    set_ids: &mut HashMap<CategorySet, u32>,
    set_list: &mut Vec<CategorySet>,
    set_freq: &mut Vec<u64>,
    counts: &mut [[u64; 3]],
    kind: usize,
) -> Vec<(u32, u32)> {
    arena.sort();
    let mut groups = Vec::new();
    let entries = &arena.entries;
    let mut i = 0;
    while i < entries.len() {
        let key = arena.key(entries[i]);
        let mut set = CategorySet::EMPTY;
        let mut j = i;
        while j < entries.len() && arena.key(entries[j]) == key {
            set.insert(remap[entries[j].cat as usize]);
            j += 1;
        }
        for c in set.iter() {
            counts[c as usize][kind] += 1;
        }
        let id = *set_ids.entry(set).or_insert_with(|| {
            set_list.push(set);
            set_freq.push(0);
            (set_list.len() - 1) as u32
        });
        set_freq[id as usize] += 1;
        groups.push(((j - i) as u32, id));
        i = j;
    }
    groups
}

fn build_fst(
    arena: &KeyArena,
    groups: &[(u32, u32)],
    rank: &[u64],
) -> Result<Vec<u8>, CatalogError> {
    let mut builder = fst::MapBuilder::memory();
    let mut i = 0usize;
    for &(n, set) in groups {
        let key = arena.key(arena.entries[i]);
        builder
            .insert(key, rank[set as usize])
            .map_err(|e| CatalogError::Build(e.to_string()))?;
        i += n as usize;
    }
    builder
        .into_inner()
        .map_err(|e| CatalogError::Build(e.to_string()))
}

/// Compiles expressions the way lookups use them.
pub(crate) fn compile_expressions(
    patterns: &[&str],
) -> Result<regex::bytes::RegexSet, regex::Error> {
    regex::bytes::RegexSetBuilder::new(patterns)
        .case_insensitive(true)
        .size_limit(50 << 20)
        .build()
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename,
/// so that readers see either the old file or the new one, never a partial file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CatalogError> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".hallpass-catalog-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| CatalogError::io(dir, e))?;
    tmp.write_all(bytes)
        .map_err(|e| CatalogError::io(tmp.path(), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Other processes (possibly other users) map the index read-only.
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| CatalogError::io(tmp.path(), e))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| CatalogError::io(tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| CatalogError::io(path, e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
