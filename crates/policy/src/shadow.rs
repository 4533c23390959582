//! Shadowed rules: a later rule that can never decide because an earlier rule matches
//! every request it matches. Sound, not complete: we only claim shadowing when each of
//! the earlier rule's conditions is provably at least as wide, and when nothing that can
//! lift the earlier rule (teacher override, access grant) leaves the later one reachable.

use std::collections::HashMap;

use crate::decide::{AlertKind, Verdict};
use crate::domain::{domain_matches, suffixes};
use crate::policy::Rule;

/// Pairs `(later, earlier)`: `later` is shadowed by `earlier` (the first such).
///
/// Comparing every rule with every earlier one is quadratic (60,000 rules took over a
/// minute), so earlier rules are indexed by what they match: a rule can only cover a
/// later one that matches a site if it lists each of that rule's categories, a suffix of
/// each of its domains, and so on. Each later rule is compared only with the earlier
/// rules in its smallest such bucket, plus the earlier rules that match every site.
/// [`covers`] still decides, so the result is exactly that of the pairwise check.
pub(crate) fn shadowed(rules: &[Rule]) -> Vec<(usize, usize)> {
    shadowed_counting(rules, &mut 0)
}

/// [`shadowed`], counting the rule pairs compared in `comparisons` (for the tests).
fn shadowed_counting(rules: &[Rule], comparisons: &mut u64) -> Vec<(usize, usize)> {
    let mut index = Index::default();
    let mut out = Vec::new();
    for (j, later) in rules.iter().enumerate() {
        let first = index
            .candidate_lists(later)
            .into_iter()
            .filter_map(|list| {
                list.iter().copied().find(|&i| {
                    *comparisons += 1;
                    covers(&rules[i], later)
                })
            })
            .min();
        if let Some(i) = first {
            out.push((j, i));
        }
        index.insert(j, later);
    }
    out
}

/// Earlier rules by what they match. Every list holds rule indexes in increasing order.
#[derive(Default)]
struct Index {
    /// No site and no file types: they can cover any rule.
    universal: Vec<usize>,
    /// Rules with a site, by each category they list.
    by_category: HashMap<u8, Vec<usize>>,
    /// Rules with a site, by each domain and URL-prefix host they list (normalised).
    by_host: HashMap<String, Vec<usize>>,
    /// Rules with file types but no site, by each extension and MIME type.
    by_extension: HashMap<String, Vec<usize>>,
    by_mime: HashMap<String, Vec<usize>>,
}

/// Lower case without a trailing dot: the form [`domain_matches`] compares.
fn host_key(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

impl Index {
    fn insert(&mut self, i: usize, r: &Rule) {
        if r.has_site() {
            for c in r.categories.iter() {
                self.by_category.entry(c).or_default().push(i);
            }
            let hosts = r.domains.iter().map(|d| d.as_ref());
            let prefix_hosts = r.url_prefixes.iter().map(|(h, _)| h.as_str());
            let mut keys: Vec<String> = hosts.chain(prefix_hosts).map(host_key).collect();
            keys.sort_unstable();
            keys.dedup();
            for k in keys {
                self.by_host.entry(k).or_default().push(i);
            }
        } else if r.has_file_types() {
            for e in &r.extensions {
                let list = self.by_extension.entry(e.clone()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
            for m in &r.mimes {
                let list = self.by_mime.entry(m.clone()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        } else {
            self.universal.push(i);
        }
    }

    /// Lists that together hold every earlier rule that could cover `b`.
    fn candidate_lists<'s>(&'s self, b: &'s Rule) -> Vec<&'s [usize]> {
        let mut lists: Vec<&[usize]> = vec![&self.universal];
        if b.has_site() {
            lists.extend(self.narrowest(self.site_anchors(b)));
        }
        if b.has_file_types() {
            let anchors = b
                .extensions
                .iter()
                .map(|e| vec![bucket(&self.by_extension, e.as_str())])
                .chain(
                    b.mimes
                        .iter()
                        .map(|m| vec![bucket(&self.by_mime, m.as_str())]),
                );
            lists.extend(self.narrowest(anchors));
        }
        lists
    }

    /// For each thing `b` matches, the lists an earlier rule covering `b` must be in (one
    /// of): a category's bucket, or the buckets of a host's suffixes.
    fn site_anchors<'s>(&'s self, b: &'s Rule) -> impl Iterator<Item = Vec<&'s [usize]>> + 's {
        let categories = b
            .categories
            .iter()
            .map(|c| vec![self.by_category.get(&c).map_or(&[][..], Vec::as_slice)]);
        let hosts = b
            .domains
            .iter()
            .map(|d| d.as_ref())
            .chain(b.url_prefixes.iter().map(|(h, _)| h.as_str()))
            .map(|h| {
                let h = host_key(h);
                suffixes(&h).map(|s| bucket(&self.by_host, s)).collect()
            });
        categories.chain(hosts)
    }

    /// Of several anchors (each a union of lists, every one a necessary condition), the
    /// one with the fewest rules.
    fn narrowest<'s>(&self, anchors: impl Iterator<Item = Vec<&'s [usize]>>) -> Vec<&'s [usize]> {
        anchors
            .min_by_key(|lists| lists.iter().map(|l| l.len()).sum::<usize>())
            .unwrap_or_default()
    }
}

fn bucket<'a>(map: &'a HashMap<String, Vec<usize>>, key: &str) -> &'a [usize] {
    map.get(key).map_or(&[], Vec::as_slice)
}

fn liftable_by_override(r: &Rule) -> bool {
    r.teacher_override && r.action != Verdict::Allow
}

fn liftable_by_grant(r: &Rule) -> bool {
    r.action != Verdict::Allow && !r.alert.is_some_and(|a| a.kind == AlertKind::Safeguarding)
}

/// Every request matching `b` also matches `a`, and whatever lifts `a` also lifts `b`.
pub(crate) fn covers(a: &Rule, b: &Rule) -> bool {
    (!liftable_by_override(a) || liftable_by_override(b))
        && (!liftable_by_grant(a) || liftable_by_grant(b))
        && groups_cover(a, b)
        && time_covers(a, b)
        && site_covers(a, b)
        && file_types_cover(a, b)
}

fn groups_cover(a: &Rule, b: &Rule) -> bool {
    let inclusion = match (a.groups, b.groups) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(ga), Some(gb)) => gb.is_subset(ga),
    };
    // A person can hold any mix of groups, so `a`'s exceptions must also be `b`'s.
    inclusion && a.except_groups.is_subset(b.except_groups)
}

fn time_covers(a: &Rule, b: &Rule) -> bool {
    let during = match (a.during, b.during) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(da), Some(db)) => db & !da == 0,
    };
    during && a.outside & !b.outside == 0
}

fn site_covers(a: &Rule, b: &Rule) -> bool {
    if !a.has_site() {
        return true;
    }
    if !b.has_site() {
        return false;
    }
    let cats = b.categories.is_subset(&a.categories);
    let domains = b
        .domains
        .iter()
        .all(|d| a.domains.iter().any(|e| domain_matches(d, e)));
    let prefixes = b.url_prefixes.iter().all(|(h, p)| {
        a.domains.iter().any(|e| domain_matches(h, e))
            || a.url_prefixes
                .iter()
                .any(|(h2, p2)| domain_matches(h, h2) && p.starts_with(p2.as_str()))
    });
    cats && domains && prefixes
}

fn file_types_cover(a: &Rule, b: &Rule) -> bool {
    if !a.has_file_types() {
        return true;
    }
    b.has_file_types()
        && b.extensions.iter().all(|e| a.extensions.contains(e))
        && b.mimes.iter().all(|m| a.mimes.contains(m))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    use super::*;
    use crate::category::CategoryMask;
    use crate::groups::{GroupId, GroupSet};

    /// The pairwise check the index replaces: the reference it must agree with.
    fn shadowed_pairwise(rules: &[Rule]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (j, later) in rules.iter().enumerate() {
            if let Some(i) = rules[..j].iter().position(|earlier| covers(earlier, later)) {
                out.push((j, i));
            }
        }
        out
    }

    /// Small vocabularies so that random rules often overlap and cover each other.
    const HOSTS: [&str; 6] = ["com", "a.com", "x.a.com", "b.com", "B.com.", "x.b.com"];
    const EXTS: [&str; 3] = ["exe", "zip", "msi"];
    const MIMES: [&str; 2] = ["application/zip", "video/mp4"];

    prop_compose! {
        fn arb_rule()(
            action in 0..3u8,
            cats in proptest::collection::vec(0..4u8, 0..3),
            domains in proptest::collection::vec(0..HOSTS.len(), 0..3),
            prefixes in proptest::collection::vec((0..HOSTS.len(), 0..3usize), 0..2),
            exts in proptest::collection::vec(0..EXTS.len(), 0..2),
            mimes in proptest::collection::vec(0..MIMES.len(), 0..2),
            groups in proptest::option::of(proptest::collection::vec(0..3u8, 1..3)),
            except in proptest::collection::vec(0..3u8, 0..2),
            during in proptest::option::of(1..8u64),
            outside in 0..4u64,
            teacher_override in any::<bool>(),
        ) -> Rule {
            let set = |ids: &[u8]| ids.iter().fold(GroupSet::EMPTY, |s, &g| s.with(GroupId(g)));
            let mut domains: Vec<Box<str>> = domains.iter().map(|&d| HOSTS[d].into()).collect();
            domains.sort();
            domains.dedup();
            Rule {
                id: String::new(),
                action: [Verdict::Allow, Verdict::Warn, Verdict::Block][usize::from(action)],
                document: String::new(),
                clause: String::new(),
                message: String::new(),
                categories: cats.iter().fold(CategoryMask::EMPTY, |m, &c| m.with(c)),
                domains: domains.into_boxed_slice(),
                url_prefixes: prefixes
                    .iter()
                    .map(|&(h, p)| (HOSTS[h].to_string(), ["/", "/a", "/ab"][p].to_string()))
                    .collect(),
                extensions: exts.iter().map(|&e| EXTS[e].to_string()).collect(),
                mimes: mimes.iter().map(|&m| MIMES[m].to_string()).collect(),
                groups: groups.map(|g| set(&g)),
                except_groups: set(&except),
                during,
                outside,
                teacher_override,
                alert: None,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        #[test]
        fn the_index_finds_exactly_what_the_pairwise_check_finds(
            rules in proptest::collection::vec(arb_rule(), 0..24)
        ) {
            prop_assert_eq!(shadowed(&rules), shadowed_pairwise(&rules));
        }
    }

    fn domain_rule(domain: &str) -> Rule {
        let mut r = arb_rule()
            .new_tree(&mut proptest::test_runner::TestRunner::deterministic())
            .unwrap()
            .current();
        r.domains = vec![domain.into()].into_boxed_slice();
        r.categories = CategoryMask::EMPTY;
        r.url_prefixes.clear();
        r.groups = None;
        r.except_groups = GroupSet::EMPTY;
        r.during = None;
        r.outside = 0;
        r
    }

    #[test]
    fn comparisons_grow_linearly_with_the_rule_count() {
        // 60,000 distinct domains and a subdomain of an earlier one every 10th rule: the
        // pairwise check compared 1.8 billion pairs; the index compares each rule with
        // the few earlier rules on a suffix of its domain.
        let rules: Vec<Rule> = (0..60_000)
            .map(|i| match i % 10 {
                0 if i > 0 => domain_rule(&format!("www.site{}.example", i - 3)),
                _ => domain_rule(&format!("site{i}.example")),
            })
            .collect();
        let mut comparisons = 0;
        let found = shadowed_counting(&rules, &mut comparisons);
        assert_eq!(found.len(), 5_999);
        assert!(found.iter().all(|&(j, i)| i == j - 3), "{:?}", &found[..5]);
        assert!(
            comparisons < 2 * 60_000,
            "{comparisons} comparisons for 60,000 rules"
        );
    }

    #[test]
    fn the_random_policies_do_shadow_rules() {
        // Guard for the property above: it proves nothing if random rules never cover
        // each other.
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = proptest::collection::vec(arb_rule(), 10..24);
        let mut found = 0;
        for _ in 0..200 {
            let rules = strategy.new_tree(&mut runner).unwrap().current();
            found += shadowed_pairwise(&rules).len();
        }
        assert!(
            found >= 100,
            "only {found} shadowed rules in 200 random policies"
        );
    }
}
