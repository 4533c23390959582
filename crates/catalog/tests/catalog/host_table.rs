//! The in-memory host table answers exactly as the fst walk does, and catalogs it
//! cannot serve fall back to the walk.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use hallpass_catalog::{CatalogBuilder, CategorySet};
use proptest::prelude::*;

const CATS: &[&str] = &["a", "b", "c", "d", "e", "f", "g", "h"];

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("com".to_string()),
        Just("x".to_string()),
        Just("ab".to_string()),
        Just("www".to_string()),
        Just("_dmarc".to_string()),
        Just("a-very-long-label-of-more-than-eight".to_string()),
        "[a-d0-9-]{1,12}",
    ]
}

fn domain() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::collection::vec(label(), 1..12).prop_map(|l| l.join(".")),
        1 => (0u8..3, 0u8..3).prop_map(|(a, b)| format!("10.0.{a}.{b}")),
        1 => (0u16..3).prop_map(|a| format!("2001:db8::{a}")),
    ]
}

/// What a lookup may be given: listed names and their relatives in any case, with or
/// without a trailing dot, IP literals in several spellings, and odd strings.
fn query(listed: Vec<String>) -> impl Strategy<Value = String> {
    let pick = prop::sample::select(if listed.is_empty() {
        vec!["com".to_string()]
    } else {
        listed
    });
    let rel = (
        pick,
        prop_oneof![
            Just(""),
            Just("www."),
            Just("a.b.c.d.e.f.g.h.i."),
            Just("x"),
            Just("."),
            Just("Ü."),
            Just("a:b."),
            Just("["),
        ],
        prop_oneof![Just(""), Just("."), Just(".."), Just(".com"), Just("1")],
        any::<u64>(),
    )
        .prop_map(|(d, pre, post, mask)| {
            let s = format!("{pre}{d}{post}");
            s.chars()
                .enumerate()
                .map(|(i, c)| {
                    if mask >> (i % 64) & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect()
        });
    prop_oneof![
        6 => rel,
        1 => domain(),
        1 => Just("[2001:db8::1]".to_string()),
        1 => Just("2001:DB8:0::2".to_string()),
        1 => ".{0,40}",
        1 => "[a-c.]{0,300}",
    ]
}

fn entries() -> impl Strategy<Value = Vec<(usize, String)>> {
    prop::collection::vec((0usize..CATS.len(), domain()), 0..80)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn table_matches_walk(
        (entries, queries) in entries().prop_flat_map(|e| {
            let listed: Vec<String> = e.iter().map(|(_, d)| d.clone()).collect();
            (Just(e), prop::collection::vec(query(listed), 1..80))
        })
    ) {
        let mut b = CatalogBuilder::new();
        for c in CATS {
            b.add_category(c).unwrap();
        }
        for (cat, d) in &entries {
            let _ = b.add_domain(CATS[*cat], d);
        }
        let catalog = b.build().unwrap();
        prop_assert!(catalog.stats().lookup_table_bytes > 0);
        for q in &queries {
            prop_assert_eq!(catalog.lookup_host(q), catalog.lookup_host_walk(q), "host {:?}", q);
        }
    }
}

#[test]
fn long_names_and_many_labels() {
    let mut b = CatalogBuilder::new();
    let deep = (0..60)
        .map(|i| format!("l{i}"))
        .collect::<Vec<_>>()
        .join(".");
    for (i, d) in [
        "example.com",
        "a.b.c.d.e.f.g.h.i.j.k.example.com",
        &deep,
        "12345678.abcdefgh.example",
        "abcdefg.example",
    ]
    .iter()
    .enumerate()
    {
        b.add_domain(["a", "b", "c", "d", "e"][i], d).unwrap();
    }
    let c = b.build().unwrap();
    assert!(c.stats().lookup_table_bytes > 0);
    let hosts = [
        format!("x.{deep}"),
        deep.clone(),
        format!("{deep}."),
        "z.a.b.c.d.e.f.g.h.i.j.k.EXAMPLE.com".to_string(),
        "b.c.d.e.f.g.h.i.j.k.example.com".to_string(),
        "x.12345678.abcdefgh.example".to_string(),
        "abcdefg.example".to_string(),
        "xabcdefg.example".to_string(),
        "a".repeat(63) + "." + &"b".repeat(63) + "." + &"c".repeat(63) + ".example.com",
        "a".repeat(254),
    ];
    for h in &hosts {
        assert_eq!(c.lookup_host(h), c.lookup_host_walk(h), "{h}");
    }
    assert_eq!(c.lookup_host(&format!("x.{deep}")).len(), 1);
    assert_eq!(
        c.lookup_host("z.a.b.c.d.e.f.g.h.i.j.k.example.com").len(),
        2
    );
}

#[test]
fn too_many_category_sets_fall_back_to_the_walk() {
    // 65,536 distinct category sets (singles, pairs, then triples of 256 categories):
    // more than a slot's 16-bit set index can name, so lookups walk the fst.
    let names: Vec<String> = (0..256).map(|i| format!("c{i:03}")).collect();
    let mut sets: Vec<Vec<usize>> = (0..256).map(|i| vec![i]).collect();
    for i in 0..256 {
        for j in i + 1..256 {
            sets.push(vec![i, j]);
        }
    }
    'outer: for i in 0..256 {
        for j in i + 1..256 {
            for k in j + 1..256 {
                if sets.len() == 65_536 {
                    break 'outer;
                }
                sets.push(vec![i, j, k]);
            }
        }
    }
    assert_eq!(sets.len(), 65_536);
    let mut b = CatalogBuilder::new();
    for n in &names {
        b.add_category(n).unwrap();
    }
    for (h, set) in sets.iter().enumerate() {
        for &cat in set {
            b.add_domain(&names[cat], &format!("h{h}.example")).unwrap();
        }
    }
    let c = b.build().unwrap();
    let stats = c.stats();
    assert_eq!(stats.category_sets, 65_536);
    assert_eq!(stats.lookup_table_bytes, 0);
    for h in (0..sets.len()).step_by(997).chain([65_535]) {
        let mut want = CategorySet::EMPTY;
        for &cat in &sets[h] {
            want.insert(c.category_id(&names[cat]).unwrap());
        }
        for q in [format!("h{h}.example"), format!("WWW.h{h}.example.")] {
            assert_eq!(c.lookup_host(&q), want, "{q}");
            assert_eq!(c.lookup_host_walk(&q), want, "{q}");
        }
    }
    assert!(c.lookup_host("nothing.example").is_empty());
}
