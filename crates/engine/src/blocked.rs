//! Blocked answers per category, for the admin port's `/metrics`.
//!
//! Category ids belong to one catalog: a new catalog may number its categories
//! differently. So each catalog gets its own counters, indexed by id (one relaxed atomic
//! add per category of a blocked name, no lock, no lookup by name), shared by every
//! snapshot built on that catalog. When the last snapshot holding them goes, they are
//! folded into a table by name, which outlives catalog swaps: a counter never goes back.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use hallpass_catalog::{Catalog, CategorySet};

/// The counters of one catalog's categories.
pub(crate) struct BlockedCounts {
    names: Vec<String>,
    by_id: Box<[AtomicU64]>,
    shared: Arc<Shared>,
}

/// What outlives a catalog: counts folded in by category name, and blocked answers
/// whose name is in no category (explicit rules, group defaults, canaries).
#[derive(Default)]
struct Shared {
    by_name: Mutex<BTreeMap<String, u64>>,
    uncategorised: AtomicU64,
}

impl BlockedCounts {
    /// Counters for a first catalog.
    pub(crate) fn new(catalog: &Catalog) -> BlockedCounts {
        BlockedCounts::with_shared(catalog, Arc::default())
    }

    /// Counters for `catalog`: these ones again if they are for that catalog, else new
    /// ones that keep counting into the same totals.
    pub(crate) fn for_catalog(
        self: &Arc<BlockedCounts>,
        current: &Arc<Catalog>,
        next: &Arc<Catalog>,
    ) -> Arc<BlockedCounts> {
        if Arc::ptr_eq(current, next) {
            Arc::clone(self)
        } else {
            Arc::new(BlockedCounts::with_shared(next, Arc::clone(&self.shared)))
        }
    }

    fn with_shared(catalog: &Catalog, shared: Arc<Shared>) -> BlockedCounts {
        let names = catalog.category_names().to_vec();
        let by_id = names.iter().map(|_| AtomicU64::new(0)).collect();
        BlockedCounts {
            names,
            by_id,
            shared,
        }
    }

    /// One blocked answer for a name in `categories` (possibly none).
    pub(crate) fn count(&self, categories: CategorySet) {
        if categories.is_empty() {
            self.shared.uncategorised.fetch_add(1, Relaxed);
            return;
        }
        for id in categories.iter() {
            if let Some(counter) = self.by_id.get(usize::from(id)) {
                counter.fetch_add(1, Relaxed);
            }
        }
    }

    /// Prometheus text: `hallpass_dns_blocked_total{category="..."}` for every category
    /// that has blocked something, and the uncategorised count.
    pub(crate) fn render(&self, out: &mut String) {
        let mut totals = lock(&self.shared.by_name).clone();
        for (name, counter) in self.names.iter().zip(self.by_id.iter()) {
            let n = counter.load(Relaxed);
            if n > 0 {
                *totals.entry(name.clone()).or_default() += n;
            }
        }
        out.push_str(
            "# HELP hallpass_dns_blocked_total Blocked DNS answers by the category of the \
             name (a name in two categories counts in both).\n\
             # TYPE hallpass_dns_blocked_total counter\n",
        );
        for (name, n) in &totals {
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "hallpass_dns_blocked_total{{category=\"{}\"}} {n}",
                label_value(name)
            );
        }
        let _ = write!(
            out,
            "# HELP hallpass_dns_blocked_uncategorised_total Blocked DNS answers for names in \
             no category (explicit rules, group defaults, canaries).\n\
             # TYPE hallpass_dns_blocked_uncategorised_total counter\n\
             hallpass_dns_blocked_uncategorised_total {}\n",
            self.shared.uncategorised.load(Relaxed)
        );
    }
}

impl Drop for BlockedCounts {
    fn drop(&mut self) {
        let mut by_name = lock(&self.shared.by_name);
        for (name, counter) in self.names.iter().zip(self.by_id.iter()) {
            let n = counter.load(Relaxed);
            if n > 0 {
                *by_name.entry(name.clone()).or_default() += n;
            }
        }
    }
}

/// A poisoned lock only means a panic elsewhere while adding counts; the map is usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(lists: &[(&str, &str)]) -> Arc<Catalog> {
        let mut b = hallpass_catalog::CatalogBuilder::new();
        for (category, domain) in lists {
            b.add_domain(category, domain).unwrap();
        }
        Arc::new(b.build().unwrap())
    }

    fn rendered(counts: &BlockedCounts) -> String {
        let mut out = String::new();
        counts.render(&mut out);
        out
    }

    #[test]
    fn counts_survive_a_new_catalog_that_numbers_categories_differently() {
        let first = catalog(&[("games", "games.example"), ("adult", "adult.example")]);
        let counts = Arc::new(BlockedCounts::new(&first));
        counts.count(first.lookup_host("games.example"));
        counts.count(first.lookup_host("games.example"));
        counts.count(first.lookup_host("adult.example"));
        counts.count(first.lookup_host("unlisted.example"));
        let text = rendered(&counts);
        assert!(
            text.contains("hallpass_dns_blocked_total{category=\"games\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("hallpass_dns_blocked_total{category=\"adult\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("hallpass_dns_blocked_uncategorised_total 1\n"),
            "{text}"
        );

        // The same catalog keeps the same counters.
        assert!(Arc::ptr_eq(&counts.for_catalog(&first, &first), &counts));

        // A new catalog with a category that sorts before both ("ads" < "adult"), so the
        // builder numbers "adult" and "games" one higher: counting by the old ids would
        // put this catalog's "adult" into the old "games" counter.
        let second = catalog(&[
            ("adult", "adult.example"),
            ("games", "games.example"),
            ("ads", "ads.example"),
        ]);
        assert_ne!(
            first.lookup_host("adult.example"),
            second.lookup_host("adult.example"),
            "the second catalog must number the categories differently"
        );
        let next = counts.for_catalog(&first, &second);
        drop(counts);
        next.count(second.lookup_host("adult.example"));
        let text = rendered(&next);
        assert!(!text.contains("category=\"ads\""), "{text}");
        assert!(
            text.contains("hallpass_dns_blocked_total{category=\"games\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("hallpass_dns_blocked_total{category=\"adult\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("hallpass_dns_blocked_uncategorised_total 1\n"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
