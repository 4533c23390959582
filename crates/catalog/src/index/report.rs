//! What a catalog holds, for people and tools: per-category figures, the difference
//! between two catalogs, every host in order.

use fst::raw::Output;

use super::{Catalog, Section};
use crate::Usage;
use crate::set::CategorySet;

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

impl Catalog {
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
