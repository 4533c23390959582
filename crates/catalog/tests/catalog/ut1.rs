//! Tests against the real UT1 blacklists from `../shared` (never copied into the repo).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hallpass_catalog::{Catalog, CatalogBuilder, Usage};

/// Where the UT1 tarball is: `../shared/data/ut1/blacklists.tar.gz` beside the
/// repository (as CI lays it out), or `HALLPASS_UT1_TARBALL` (a git worktree elsewhere).
fn tarball_path() -> PathBuf {
    match std::env::var_os("HALLPASS_UT1_TARBALL") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/ut1/blacklists.tar.gz")
        }
    }
}

/// Whether this is a CI run (`CI` set, as CI services and `.ci/run` do): there a
/// missing tarball fails the tests instead of skipping them.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The tarball, or `None` to skip (outside CI only; under CI a missing one panics).
fn tarball() -> Option<&'static Path> {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    let path = PATH.get_or_init(tarball_path);
    if path.exists() {
        return Some(path);
    }
    assert!(
        !under_ci(),
        "{} not found: CI must run the UT1 tests (put the lists at ../shared/data/ut1 \
         beside the repository, or set HALLPASS_UT1_TARBALL)",
        path.display()
    );
    eprintln!("skipping: {} not found (and not under CI)", path.display());
    None
}

/// The tarball imported once for all tests of this file.
fn ut1() -> Option<&'static Catalog> {
    static CATALOG: OnceLock<Option<Catalog>> = OnceLock::new();
    let path = tarball()?;
    CATALOG.get_or_init(|| Some(import_tarball(path))).as_ref()
}

fn import_tarball(path: &Path) -> Catalog {
    let start = hallpass_clock::Clock::system().instant();
    let mut b = CatalogBuilder::new();
    let f = std::fs::File::open(path).unwrap();
    let report = b
        .import_ut1_tarball(f, &path.display().to_string(), &mut |_| {})
        .unwrap();
    eprintln!("import: {:?} {report:?}", start.elapsed());
    assert!(report.entries > 500_000, "{report:?}");
    let c = b.build().unwrap();
    eprintln!("import + build: {:?}", start.elapsed());
    c
}

#[test]
fn ut1_known_entries_and_aliases() {
    let Some(c) = ut1() else { return };
    let id = |n: &str| {
        c.category_id(n)
            .unwrap_or_else(|| panic!("no category {n}"))
    };

    assert!(c.lookup_host("gmail.com").contains(id("webmail")));
    assert!(c.lookup_host("GMAIL.com.").contains(id("webmail")));
    let fb = c.lookup_host("facebook.com");
    assert!(
        fb.contains(id("social_networks")),
        "{:?}",
        c.names_of(fb).collect::<Vec<_>>()
    );
    // Every matching category, not just one.
    assert!(fb.len() >= 2);
    // A subdomain of a gambling domain is gambling.
    assert!(c.lookup_host("www.0-casino.info").contains(id("gambling")));
    assert!(
        c.lookup_host("deep.sub.0-casino.info")
            .contains(id("gambling"))
    );
    assert!(
        !c.lookup_host("0-casino.info.example")
            .contains(id("gambling"))
    );
    // A `urls` entry matches its path (and below), not a sibling path.
    let webmail = id("webmail");
    assert!(
        c.lookup_url("http://apps.vol.at/tools/webmail/")
            .contains(webmail)
    );
    assert!(
        c.lookup_url("https://www.apps.vol.at:443/tools/webmail/login?x=1")
            .contains(webmail)
    );
    assert!(c.lookup_url("apps.vol.at/Tools/Webmail").contains(webmail));
    assert!(
        !c.lookup_url("http://apps.vol.at/tools/other")
            .contains(webmail)
    );
    assert!(
        !c.lookup_url("http://apps.vol.at/tools/webmailer")
            .contains(webmail)
    );
    // URL lookups include host categories.
    assert!(
        c.lookup_url("https://mail.gmail.com/mail/u/0")
            .contains(webmail)
    );

    // Every alias resolves to its target's id.
    for (alias, target) in [
        ("porn", "adult"),
        ("proxy", "redirector"),
        ("aggressive", "agressif"),
        ("violence", "agressif"),
        ("drugs", "drogue"),
        ("mail", "forums"),
        ("ads", "publicite"),
    ] {
        assert_eq!(c.category_id(alias), Some(id(target)), "{alias}");
    }
    for (name, cat) in c.vocabulary() {
        assert_eq!(c.category_id(name), Some(cat), "{name}");
        assert!((cat as usize) < c.category_names().len());
    }
    assert!(c.aliases().len() >= 7);
    // Aliases are not categories of their own.
    assert!(!c.category_names().iter().any(|n| n == "porn"));
    // usage files are kept.
    assert_eq!(c.usage(id("gambling")), Some(Usage::Black));
    assert_eq!(c.usage(id("liste_blanche")), Some(Usage::White));
    // Expressions apply to URLs.
    assert!(!c.lookup_url("http://example.org/banner/x.gif").is_empty());
}

#[test]
fn ut1_dir_matches_tarball() {
    // An extracted copy of a few categories (one of them through an alias symlink),
    // compared with the same categories from the tarball.
    let Some(t) = ut1() else { return };
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(tarball().unwrap())
        .arg("-C")
        .arg(dir.path())
        .args([
            "blacklists/webmail",
            "blacklists/gambling",
            "blacklists/redirector",
            "blacklists/proxy",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let root = dir.path().join("blacklists");
    assert!(
        std::fs::symlink_metadata(root.join("proxy"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let mut b = CatalogBuilder::new();
    let report = b.import_ut1_dir(&root, &mut |_| {}).unwrap();
    assert_eq!(report.bad_lines, 0);
    let d = b.build().unwrap();
    assert_eq!(d.category_names(), ["gambling", "redirector", "webmail"]);
    assert_eq!(d.category_id("proxy"), d.category_id("redirector"));
    let ts = t.stats();
    for c in d.stats().per_category {
        let same = ts.per_category.iter().find(|x| x.name == c.name).unwrap();
        assert_eq!(
            (c.domains, c.urls, c.expressions, c.usage),
            (same.domains, same.urls, same.expressions, same.usage),
            "{}",
            c.name
        );
    }
    // A single category folder imports under its own name.
    let mut b = CatalogBuilder::new();
    b.import_path(
        &root.join("webmail"),
        None,
        hallpass_catalog::ListFormat::Auto,
        &mut |_| {},
    )
    .unwrap();
    let w = b.build().unwrap();
    assert_eq!(w.category_names(), ["webmail"]);
    assert!(!w.lookup_host("gmail.com").is_empty());
}

#[test]
fn ut1_table_matches_walk() {
    // Every listed host, a subdomain of it and a sibling, through the in-memory table
    // and through the fst walk.
    let Some(c) = ut1() else { return };
    assert!(c.stats().lookup_table_bytes > 0);
    let mut hosts = Vec::new();
    c.for_each_host(|h, _| hosts.push(h.to_string()));
    let mut checked = 0;
    for (i, h) in hosts.iter().enumerate() {
        let variants = [
            h.clone(),
            format!("www.{h}"),
            format!("X{i}.{}", h.to_ascii_uppercase()),
            format!("{h}."),
            format!("a{h}"),
        ];
        for v in &variants {
            assert_eq!(c.lookup_host(v), c.lookup_host_walk(v), "{v}");
            checked += 1;
        }
    }
    assert!(checked > 1_000_000);
}
