//! A policy of 10,000 rules compiles with exactly the expected shadowed-rule warnings.
//! The shadow check used to compare every rule with every earlier one (quadratic: 8,000
//! rules took 6.4 s); `shadow.rs` indexes rules instead and its unit tests prove the
//! index agrees with the pairwise check on random small policies.

use std::fmt::Write as _;

use hallpass_policy::{CategoryVocab, PolicyDoc};

const HEAD: &str = "version = 1\n[school]\nname = \"S\"\ntimezone = \"Europe/London\"\n[[documents]]\nid = \"d\"\ntitle = \"D\"\n[groups.everyone]\nunidentified = true\ndefault = \"allow\"\n";

/// `n` rules: mostly one domain each; every 10th blocks a subdomain of an earlier rule's
/// domain (shadowed by it); every 25th is a category rule (one of three, each shadowed by
/// the first rule of its category). Returns the text and the expected (later, earlier)
/// pairs.
fn generated(n: usize) -> (String, Vec<(usize, usize)>) {
    let mut text = HEAD.to_string();
    let mut expected = Vec::new();
    let mut first_of_category = [None; 3];
    for i in 0..n {
        let target = if i % 25 == 0 {
            let c = (i / 25) % 3;
            match first_of_category[c] {
                None => first_of_category[c] = Some(i),
                Some(first) => expected.push((i, first)),
            }
            format!("categories = [\"{}\"]\n", ["games", "chat", "adult"][c])
        } else if i % 10 == 0 {
            let earlier = i - 7; // a plain domain rule: neither a multiple of 10 nor 25
            expected.push((i, earlier));
            format!("domains = [\"www.site{earlier}.example\"]\n")
        } else {
            format!("domains = [\"site{i}.example\"]\n")
        };
        write!(
            text,
            "[[rules]]\nid = \"r{i}\"\naction = \"block\"\ndocument = \"d\"\nclause = \"{i}\"\n{target}"
        )
        .unwrap();
    }
    expected.sort();
    (text, expected)
}

/// The two rule numbers in "`rules[J]` (`..`) can never match: `rules[I]` (`..`) ...".
fn pair(warning: &str) -> (usize, usize) {
    assert!(warning.contains("can never match"), "{warning}");
    let numbers: Vec<usize> = warning
        .split("`rules[")
        .skip(1)
        .map(|rest| rest[..rest.find(']').unwrap()].parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), 2, "{warning}");
    (numbers[0], numbers[1])
}

#[test]
fn ten_thousand_rules_give_exactly_the_expected_shadow_warnings() {
    let (text, expected) = generated(10_000);
    let doc = PolicyDoc::parse("big.toml", &text).unwrap();
    let (policy, warnings) = doc.compile(&CategoryVocab::open()).unwrap();
    assert_eq!(policy.rule_count(), 10_000);
    let mut found: Vec<(usize, usize)> = warnings.iter().map(|w| pair(&w.to_string())).collect();
    found.sort();
    assert!(
        expected.len() > 1_000,
        "the generator shadows {} rules",
        expected.len()
    );
    assert_eq!(found, expected);
}
