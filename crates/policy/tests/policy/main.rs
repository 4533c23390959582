//! The policy crate's one integration-test binary: scenarios from the two example
//! policies, property tests, and diagnostics.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod alloc;
mod declarations;
mod diagnostics;
mod large;
mod mail;
mod props;
mod scenarios;

use hallpass_policy::{CategoryVocab, Policy, PolicyDoc};

pub const WCS: &str = include_str!("../../../../examples/policies/wcs.toml");
pub const WPT: &str = include_str!("../../../../examples/policies/wpt.toml");

/// The UT1 category names (as in `blacklists/`), numbered in sorted order like a
/// catalog would; symlinked aliases share their target's id.
pub fn ut1_vocab() -> CategoryVocab {
    const NAMES: &[&str] = &[
        "adult",
        "agressif",
        "ai",
        "arjel",
        "associations_religieuses",
        "astrology",
        "audio-video",
        "bank",
        "bitcoin",
        "blog",
        "celebrity",
        "chat",
        "child",
        "cleaning",
        "cooking",
        "cryptojacking",
        "dangerous_material",
        "dating",
        "ddos",
        "dialer",
        "doh",
        "download",
        "drogue",
        "dynamic-dns",
        "educational_games",
        "examen_pix",
        "exceptions_liste_bu",
        "fakenews",
        "filehosting",
        "financial",
        "forums",
        "gambling",
        "games",
        "hacking",
        "jobsearch",
        "lingerie",
        "liste_blanche",
        "liste_bu",
        "malware",
        "manga",
        "marketingware",
        "mixed_adult",
        "mobile-phone",
        "phishing",
        "press",
        "publicite",
        "radio",
        "reaffected",
        "redirector",
        "remote-control",
        "residential-proxies",
        "sect",
        "sexual_education",
        "shopping",
        "shortener",
        "social_networks",
        "special",
        "sports",
        "stalkerware",
        "strict_redirector",
        "strong_redirector",
        "translation",
        "tricheur",
        "tricheur_pix",
        "update",
        "vpn",
        "warez",
        "webhosting",
        "webmail",
    ];
    const ALIASES: &[(&str, &str)] = &[
        ("ads", "publicite"),
        ("aggressive", "agressif"),
        ("drugs", "drogue"),
        ("mail", "forums"),
        ("porn", "adult"),
        ("proxy", "redirector"),
        ("violence", "agressif"),
    ];
    let id = |n: &str| {
        NAMES
            .iter()
            .position(|x| *x == n)
            .and_then(|i| u8::try_from(i).ok())
            .unwrap()
    };
    let mut pairs: Vec<(String, u8)> = NAMES.iter().map(|n| (n.to_string(), id(n))).collect();
    pairs.extend(ALIASES.iter().map(|(a, t)| (a.to_string(), id(t))));
    CategoryVocab::new(pairs)
}

/// Parse and compile against UT1, asserting no errors and no warnings.
pub fn compile(name: &str, text: &str) -> Policy {
    let doc = PolicyDoc::parse(name, text).unwrap_or_else(|e| panic!("{name}: {e:#?}"));
    let (policy, warnings) = doc
        .compile(&ut1_vocab())
        .unwrap_or_else(|e| panic!("{name}: {e:#?}"));
    assert!(
        warnings.is_empty(),
        "{name}: unexpected warnings {warnings:#?}"
    );
    policy
}
