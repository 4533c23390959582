//! The demo catalog: small lists written for the project (`demo/<category>`), built in
//! memory at start for the built-in demo school. Names follow UT1's categories so that
//! policies written for UT1 work unchanged.

use crate::{Catalog, CatalogBuilder, CatalogError, ListFormat, Usage};

/// `(category, list)` pairs embedded in the binary.
pub(crate) const DEMO_LISTS: &[(&str, &str)] = &[
    ("adult", include_str!("../demo/adult")),
    ("aggressive", include_str!("../demo/aggressive")),
    ("astrology", include_str!("../demo/astrology")),
    ("audio-video", include_str!("../demo/audio-video")),
    ("celebrity", include_str!("../demo/celebrity")),
    ("chat", include_str!("../demo/chat")),
    ("cryptojacking", include_str!("../demo/cryptojacking")),
    (
        "dangerous_material",
        include_str!("../demo/dangerous_material"),
    ),
    ("dating", include_str!("../demo/dating")),
    ("ddos", include_str!("../demo/ddos")),
    ("dialer", include_str!("../demo/dialer")),
    ("doh", include_str!("../demo/doh")),
    ("drugs", include_str!("../demo/drugs")),
    ("gambling", include_str!("../demo/gambling")),
    ("games", include_str!("../demo/games")),
    ("hacking", include_str!("../demo/hacking")),
    ("lingerie", include_str!("../demo/lingerie")),
    ("malware", include_str!("../demo/malware")),
    ("manga", include_str!("../demo/manga")),
    ("mixed_adult", include_str!("../demo/mixed_adult")),
    ("phishing", include_str!("../demo/phishing")),
    ("radio", include_str!("../demo/radio")),
    ("redirector", include_str!("../demo/redirector")),
    (
        "residential-proxies",
        include_str!("../demo/residential-proxies"),
    ),
    ("shopping", include_str!("../demo/shopping")),
    ("social_networks", include_str!("../demo/social_networks")),
    ("sports", include_str!("../demo/sports")),
    ("stalkerware", include_str!("../demo/stalkerware")),
    (
        "strict_redirector",
        include_str!("../demo/strict_redirector"),
    ),
    (
        "strong_redirector",
        include_str!("../demo/strong_redirector"),
    ),
    ("tricheur", include_str!("../demo/tricheur")),
    ("update", include_str!("../demo/update")),
    ("vpn", include_str!("../demo/vpn")),
    ("warez", include_str!("../demo/warez")),
    ("webmail", include_str!("../demo/webmail")),
];

/// UT1-style aliases of the demo categories.
pub(crate) const DEMO_ALIASES: &[(&str, &str)] = &[
    ("porn", "adult"),
    ("violence", "aggressive"),
    ("agressif", "aggressive"),
    ("drogue", "drugs"),
    ("proxy", "redirector"),
];

impl Catalog {
    /// The demo catalog (a few hundred entries; builds in well under a millisecond).
    pub fn demo() -> Result<Catalog, CatalogError> {
        let mut b = CatalogBuilder::new();
        for (cat, text) in DEMO_LISTS {
            let report = b.import_list(
                cat,
                &format!("demo/{cat}"),
                text.as_bytes(),
                ListFormat::Plain,
            )?;
            if report.bad_lines > 0 {
                return Err(CatalogError::Build(format!(
                    "demo list {cat} has bad lines: {:?}",
                    report.examples
                )));
            }
            b.set_usage(cat, Usage::Black)?;
        }
        for (alias, target) in DEMO_ALIASES {
            b.add_alias(alias, target)?;
        }
        b.build()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn demo_catalog() {
        let c = Catalog::demo().unwrap();
        let id = |n| c.category_id(n).unwrap();
        assert!(c.lookup_host("gmail.com").contains(id("webmail")));
        assert!(
            c.lookup_host("www.facebook.com")
                .contains(id("social_networks"))
        );
        assert!(
            c.lookup_host("store.steampowered.com")
                .contains(id("games"))
        );
        assert!(c.lookup_host("dns.google").contains(id("doh")));
        assert!(c.lookup_host("discord.com").contains(id("chat")));
        assert_eq!(id("violence"), id("aggressive"));
        assert_eq!(id("porn"), id("adult"));
        assert!(c.lookup_host("bbc.co.uk").is_empty());
        for (_, cat) in c.vocabulary() {
            assert!((cat as usize) < c.category_names().len());
        }
    }
}
