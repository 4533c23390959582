//! Property tests: the compiled index against a naive reference (a map of entries,
//! walking suffixes / prefixes), and no panics on arbitrary input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::HashMap;

use hallpass_catalog::{Catalog, CatalogBuilder, CatalogError, CategorySet, ListFormat};
use proptest::prelude::*;

const CATS: &[&str] = &["adult", "chat", "games", "webmail", "zz-last"];

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("com".to_string()),
        Just("a".to_string()),
        Just("b".to_string()),
        Just("ab".to_string()),
        Just("x-y".to_string()),
        Just("www".to_string()),
        Just("9".to_string()),
        "[a-c0-9]{1,3}",
    ]
}

fn domain() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::collection::vec(label(), 1..5).prop_map(|l| l.join(".")),
        1 => (0u8..3, 0u8..3).prop_map(|(a, b)| format!("10.0.{a}.{b}")),
    ]
}

fn reference_host(entries: &HashMap<String, CategorySet>, host: &str) -> CategorySet {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return entries.get(&host).copied().unwrap_or_default();
    }
    let mut acc = CategorySet::EMPTY;
    let mut rest = host.as_str();
    loop {
        if let Some(s) = entries.get(rest) {
            acc |= *s;
        }
        match rest.find('.') {
            Some(i) => rest = &rest[i + 1..],
            None => break,
        }
    }
    acc
}

fn vary_case(s: &str, mask: u64) -> String {
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
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn hosts_match_reference(
        entries in prop::collection::vec((0usize..CATS.len(), domain()), 0..60),
        queries in prop::collection::vec((domain(), any::<u64>(), any::<bool>()), 1..60),
    ) {
        let mut b = CatalogBuilder::new();
        let mut reference: HashMap<String, CategorySet> = HashMap::new();
        for c in CATS {
            b.add_category(c).unwrap();
        }
        let names: Vec<&str> = { let mut v = CATS.to_vec(); v.sort(); v };
        for (cat, d) in &entries {
            if b.add_domain(CATS[*cat], d).is_err() {
                // All-numeric names that are not IPv4 addresses are refused.
                prop_assert!(d.bytes().all(|c| c.is_ascii_digit() || c == b'.'));
                continue;
            }
            let id = names.iter().position(|n| *n == CATS[*cat]).unwrap() as u8;
            reference.entry(d.clone()).or_default().insert(id);
        }
        let catalog = b.build().unwrap();
        prop_assert_eq!(catalog.category_names().iter().map(String::as_str).collect::<Vec<_>>(), names.clone());
        // Query listed entries, their subdomains and random names.
        let mut hosts: Vec<String> = entries.iter().map(|(_, d)| d.clone()).collect();
        hosts.extend(entries.iter().map(|(_, d)| format!("sub.{d}")));
        hosts.extend(entries.iter().map(|(_, d)| format!("x{d}")));
        for (q, mask, dot) in &queries {
            let mut h = vary_case(q, *mask);
            if *dot { h.push('.'); }
            hosts.push(h);
        }
        for h in &hosts {
            prop_assert_eq!(catalog.lookup_host(h), reference_host(&reference, h), "host {}", h);
        }
        // The file image round-trips.
        let again = Catalog::from_bytes(b.to_bytes().unwrap()).unwrap();
        for h in &hosts {
            prop_assert_eq!(again.lookup_host(h), catalog.lookup_host(h));
        }
    }

    #[test]
    fn urls_match_reference(
        entries in prop::collection::vec((0usize..CATS.len(), domain(), "(/[a-c]{1,2}){0,3}"), 0..40),
        queries in prop::collection::vec((domain(), "(/[a-c]{1,2}){0,4}", any::<bool>()), 1..40),
    ) {
        let mut b = CatalogBuilder::new();
        for c in CATS {
            b.add_category(c).unwrap();
        }
        let names: Vec<&str> = { let mut v = CATS.to_vec(); v.sort(); v };
        let mut reference: Vec<(String, u8)> = Vec::new();
        for (cat, host, path) in &entries {
            if b.add_url(CATS[*cat], &format!("{host}{path}")).is_err() {
                prop_assert!(host.bytes().all(|c| c.is_ascii_digit() || c == b'.'));
                continue;
            }
            let id = names.iter().position(|n| *n == CATS[*cat]).unwrap() as u8;
            reference.push((format!("{}{path}", strip_www(host)), id));
        }
        let catalog = b.build().unwrap();
        let mut urls: Vec<String> = entries.iter().map(|(_, h, p)| format!("http://{h}{p}/more")).collect();
        for (h, p, www) in &queries {
            urls.push(format!("{}{h}:8080{p}", if *www { "https://www." } else { "" }));
        }
        for u in &urls {
            let rest = u.split_once("://").map(|x| x.1).unwrap_or(u);
            let (auth, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = auth.split(':').next().unwrap();
            let key = format!("{}{path}", strip_www(host));
            let mut want = CategorySet::EMPTY;
            for (k, id) in &reference {
                if key == *k || (key.starts_with(k.as_str()) && matches!(key.as_bytes()[k.len()], b'/' | b'?')) {
                    want.insert(*id);
                }
            }
            prop_assert_eq!(catalog.lookup_url(u), want, "url {}", u);
        }
    }

    #[test]
    fn no_panic_on_random_index_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Catalog::from_bytes(bytes);
    }

    #[test]
    fn no_panic_on_damaged_index(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut b = CatalogBuilder::new();
        b.add_domain("a", "example.com").unwrap();
        b.add_url("b", "example.org/x").unwrap();
        b.add_expression("c", "ban+er").unwrap();
        let good = b.to_bytes().unwrap();
        let mut bad = good.clone();
        let i = pos.index(bad.len());
        bad[i] = byte;
        let r = Catalog::from_bytes(bad.clone());
        if bad != good {
            prop_assert!(r.is_err());
        }
        let cut = cut.index(good.len());
        prop_assert!(Catalog::from_bytes(good[..cut].to_vec()).is_err());
    }

    #[test]
    fn no_panic_on_random_lists(text in prop::collection::vec(any::<u8>(), 0..2048), fmt in 0u8..4) {
        let format = [ListFormat::Auto, ListFormat::Plain, ListFormat::Hosts, ListFormat::Adblock][fmt as usize];
        let mut b = CatalogBuilder::new();
        let result = b.import_list("x", "random", text.as_slice(), format);
        // Binary input is refused whole: a NUL anywhere, or bytes that are not UTF-8
        // (short of a character cut off at the very end).
        let not_utf8 = std::str::from_utf8(&text).err().is_some_and(|e| e.error_len().is_some());
        if text.contains(&0) || not_utf8 {
            prop_assert!(matches!(result, Err(CatalogError::NotAList { .. })), "{result:?}");
            return Ok(());
        }
        let report = result.unwrap();
        let expected_lines = text.split(|&b| b == b'\n').count() as u64
            - u64::from(text.is_empty() || text.ends_with(b"\n"));
        prop_assert_eq!(report.lines, expected_lines);
        // Every line is ignored, bad, or gives entries: one for a plain or adblock line,
        // one or more (each an entry or bad) for a hosts line.
        let accounted = report.entries + report.bad_lines + report.ignored;
        if matches!(format, ListFormat::Plain | ListFormat::Adblock) {
            prop_assert_eq!(accounted, report.lines, "{:?}", report);
        } else {
            prop_assert!(accounted >= report.lines, "{:?}", report);
        }
        let c = b.build().unwrap();
        let _ = c.lookup_host(&String::from_utf8_lossy(&text));
        let _ = c.lookup_url(&String::from_utf8_lossy(&text));
    }

    #[test]
    fn no_panic_on_random_lookups(s in ".{0,300}") {
        let c = Catalog::demo().unwrap();
        let _ = c.lookup_host(&s);
        let _ = c.lookup_url(&s);
    }
}

fn strip_www(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    if let Some((first, rest)) = host.split_once('.') {
        let is_www = ["www", "web", "ftp"]
            .iter()
            .any(|p| first.starts_with(p) && first[p.len()..].bytes().all(|b| b.is_ascii_digit()));
        if is_www && rest.contains('.') {
            return rest.to_string();
        }
    }
    host
}

#[test]
fn random_tarballs_do_not_panic() {
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::default();
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..1024), |bytes| {
            let mut b = CatalogBuilder::new();
            let _ = b.import_ut1_tarball(bytes.as_slice(), "random", &mut |_| {});
            Ok(())
        })
        .unwrap();
}
