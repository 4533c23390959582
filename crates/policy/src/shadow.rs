//! Shadowed rules: a later rule that can never decide because an earlier rule matches
//! every request it matches. Sound, not complete: we only claim shadowing when each of
//! the earlier rule's conditions is provably at least as wide, and when nothing that can
//! lift the earlier rule (teacher override, access grant) leaves the later one reachable.

use crate::decide::{AlertKind, Verdict};
use crate::domain::domain_matches;
use crate::policy::Rule;

/// Pairs `(later, earlier)`: `later` is shadowed by `earlier` (the first such).
pub(crate) fn shadowed(rules: &[Rule]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (j, later) in rules.iter().enumerate() {
        if let Some(i) = rules[..j].iter().position(|earlier| covers(earlier, later)) {
            out.push((j, i));
        }
    }
    out
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
