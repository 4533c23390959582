//! The index file: atomic writes, memory-mapped opening, and refusal of damaged files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use hallpass_catalog::{Catalog, CatalogBuilder, CatalogError, ListFormat, Usage};

fn sample() -> CatalogBuilder {
    let mut b = CatalogBuilder::new();
    b.add_domain("gambling", "casino.example").unwrap();
    b.add_domain("gambling", "Bücher-Wetten.example.").unwrap();
    b.add_domain("chat", "chat.example").unwrap();
    b.add_domain("chat", "casino.example").unwrap();
    b.add_domain("malware", "192.0.2.7").unwrap();
    b.add_domain("malware", "[2001:DB8::7]").unwrap();
    b.add_url("webmail", "http://www.portal.example:8080/Mail/")
        .unwrap();
    b.add_expression("ads", "/banners?/").unwrap();
    b.add_alias("betting", "gambling").unwrap();
    b.set_usage("gambling", Usage::Black).unwrap();
    b
}

#[test]
fn write_open_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.idx");
    let bytes = sample().write_to(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), bytes);
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let c = Catalog::open(&path).unwrap();
    let id = |n| c.category_id(n).unwrap();
    assert_eq!(
        c.category_names(),
        ["ads", "chat", "gambling", "malware", "webmail"]
    );
    assert_eq!(id("betting"), id("gambling"));
    assert_eq!(id("GAMBLING"), id("gambling"));
    let both = c.lookup_host("www.Casino.Example.");
    assert!(both.contains(id("gambling")) && both.contains(id("chat")));
    assert_eq!(both.len(), 2);
    assert!(
        c.lookup_host("xn--bcher-wetten-dlb.example")
            .contains(id("gambling"))
    );
    assert!(
        c.lookup_host("bücher-wetten.example")
            .contains(id("gambling"))
    );
    assert!(c.lookup_host("notcasino.example").is_empty());
    assert!(c.lookup_host("192.0.2.7").contains(id("malware")));
    // Not an IP literal (five labels): matched as a name, by suffix.
    assert!(c.lookup_host("1.192.0.2.7").contains(id("malware")));
    assert!(c.lookup_host("192.0.2.70").is_empty());
    assert!(c.lookup_host("[2001:db8:0::7]").contains(id("malware")));
    assert!(c.lookup_host(&"a.".repeat(200)).is_empty());
    assert!(c.lookup_host("").is_empty());
    assert!(
        c.lookup_url("portal.example/mail/inbox")
            .contains(id("webmail"))
    );
    assert!(
        c.lookup_url("https://web2.portal.example/MAIL")
            .contains(id("webmail"))
    );
    assert!(
        !c.lookup_url("https://portal.example/mailer")
            .contains(id("webmail"))
    );
    assert!(
        !c.lookup_url("https://other.portal.example/mail")
            .contains(id("webmail"))
    );
    assert!(
        c.lookup_url("http://x.example/img/Banner/1.gif")
            .contains(id("ads"))
    );
    assert_eq!(c.usage(id("gambling")), Some(Usage::Black));
    assert_eq!(c.usage(id("chat")), Some(Usage::Unknown));
    let s = c.stats();
    assert_eq!(s.categories, 5);
    assert_eq!(s.aliases, 1);
    assert_eq!(s.host_keys, 5);
    assert_eq!(s.url_keys, 1);
    assert_eq!(s.expressions, 1);
    assert_eq!(s.bytes, bytes);
    // Replacing the file while a mapping is open leaves the mapping valid.
    let mut b2 = CatalogBuilder::new();
    b2.add_domain("other", "x.example").unwrap();
    b2.write_to(&path).unwrap();
    assert!(c.lookup_host("casino.example").contains(id("gambling")));
    let c2 = Catalog::open(&path).unwrap();
    assert_eq!(c2.category_names(), ["other"]);
}

fn expect_err(bytes: Vec<u8>) -> CatalogError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.idx");
    std::fs::write(&path, &bytes).unwrap();
    let from_file = Catalog::open(&path).unwrap_err();
    let from_mem = Catalog::from_bytes(bytes).unwrap_err();
    assert_eq!(
        std::mem::discriminant(&from_file),
        std::mem::discriminant(&from_mem)
    );
    eprintln!("{from_file}");
    from_file
}

#[test]
fn damaged_files_are_refused_with_clear_errors() {
    let good = sample().to_bytes().unwrap();
    assert!(Catalog::from_bytes(good.clone()).is_ok());

    let e = expect_err(b"hello world, not an index at all".to_vec());
    assert!(matches!(e, CatalogError::BadMagic { .. }), "{e}");
    assert!(e.to_string().contains("not a Hallpass catalog index"));

    let e = expect_err(Vec::new());
    assert!(matches!(e, CatalogError::Truncated { .. }), "{e}");

    for cut in [10, 31, 32, good.len() / 2, good.len() - 1] {
        let e = expect_err(good[..cut].to_vec());
        assert!(
            matches!(e, CatalogError::Truncated { .. }),
            "cut {cut}: {e}"
        );
        assert!(e.to_string().contains("truncated"));
    }

    let mut v = good.clone();
    v[8..12].copy_from_slice(&2u32.to_le_bytes());
    let e = expect_err(v);
    assert!(
        matches!(
            e,
            CatalogError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("version 2"));

    let mut v = good.clone();
    let last = v.len() - 1;
    v[last] ^= 0x55;
    let e = expect_err(v);
    assert!(matches!(e, CatalogError::Checksum { .. }), "{e}");
    assert!(e.to_string().contains("corrupt"));

    let mut v = good.clone();
    v.push(0);
    let e = expect_err(v);
    assert!(matches!(e, CatalogError::Corrupt { .. }), "{e}");

    let missing = Catalog::open("/nonexistent/catalog.idx").unwrap_err();
    assert!(matches!(missing, CatalogError::Io { .. }));
    assert!(missing.to_string().contains("/nonexistent/catalog.idx"));
}

#[test]
fn bad_lines_are_reported_with_file_and_line() {
    let text = "good.example\n\n# comment\nbad name here\nUPPER.example.\n300.1.1.1\nok.example\n";
    let mut b = CatalogBuilder::new();
    let r = b
        .import_list("x", "lists/x.txt", text.as_bytes(), ListFormat::Plain)
        .unwrap();
    assert_eq!(r.entries, 3);
    assert_eq!(r.bad_lines, 2);
    assert_eq!(r.ignored, 2);
    assert_eq!(r.lines, 7);
    assert_eq!(r.examples[0].file, "lists/x.txt");
    assert_eq!(r.examples[0].line, 4);
    assert_eq!(r.examples[1].line, 6);
    assert!(r.examples[0].to_string().starts_with("lists/x.txt:4: "));

    let many: String = (0..50).map(|i| format!("bad line {i}\n")).collect();
    let r = b
        .import_list("x", "many", many.as_bytes(), ListFormat::Plain)
        .unwrap();
    assert_eq!(r.bad_lines, 50);
    assert_eq!(r.examples.len(), hallpass_catalog::MAX_EXAMPLES);
}

#[test]
fn hosts_and_adblock_lists() {
    let hosts = "# hosts\n127.0.0.1 localhost\n0.0.0.0 ads.example tracker.example\n127.0.0.1 Spy.Example\n::1 ip6-localhost\n";
    let adblock = "[Adblock Plus 2.0]\n! comment\n||ads2.example^\n||cdn.example^$third-party\n@@||good.example^\nexample.com##.banner\n||evil.example^$important\n";
    let mut b = CatalogBuilder::new();
    let r = b
        .import_list("ads", "hosts", hosts.as_bytes(), ListFormat::Auto)
        .unwrap();
    assert_eq!((r.entries, r.bad_lines), (3, 0), "{r:?}");
    let r = b
        .import_list("ads", "abp", adblock.as_bytes(), ListFormat::Auto)
        .unwrap();
    assert_eq!((r.entries, r.bad_lines), (2, 0), "{r:?}");
    let c = b.build().unwrap();
    for h in [
        "ads.example",
        "x.tracker.example",
        "spy.example",
        "ads2.example",
        "evil.example",
    ] {
        assert!(!c.lookup_host(h).is_empty(), "{h}");
    }
    for h in ["localhost", "cdn.example", "good.example", "example.com"] {
        assert!(c.lookup_host(h).is_empty(), "{h}");
    }
}

#[test]
fn aliases_errors() {
    let mut b = CatalogBuilder::new();
    b.add_domain("a", "a.example").unwrap();
    b.add_alias("b", "missing").unwrap();
    assert!(matches!(
        b.build(),
        Err(CatalogError::UnknownAliasTarget { .. })
    ));
    let mut b = CatalogBuilder::new();
    b.add_domain("a", "a.example").unwrap();
    b.add_alias("a", "a").unwrap();
    assert!(matches!(b.build(), Err(CatalogError::AliasConflict { .. })));
    let mut b = CatalogBuilder::new();
    b.add_domain("a", "a.example").unwrap();
    b.add_alias("c", "b").unwrap();
    b.add_alias("b", "a").unwrap();
    let c = b.build().unwrap();
    assert_eq!(c.category_id("c"), c.category_id("a"));
    let mut b = CatalogBuilder::new();
    for i in 0..256 {
        b.add_category(&format!("c{i}")).unwrap();
    }
    assert!(matches!(
        b.add_category("one-more"),
        Err(CatalogError::TooManyCategories { .. })
    ));
    let c = b.build().unwrap();
    assert_eq!(c.category_names().len(), 256);
    assert_eq!(
        c.category_id("c99"),
        Some(c.category_names().iter().position(|n| n == "c99").unwrap() as u8)
    );
}

#[test]
fn diff_counts_per_category() {
    let mut b = CatalogBuilder::new();
    b.import_list(
        "games",
        "g",
        "a.example\nb.example\nc.example\n".as_bytes(),
        ListFormat::Plain,
    )
    .unwrap();
    b.import_list("chat", "c", "a.example\n".as_bytes(), ListFormat::Plain)
        .unwrap();
    let old = b.build().unwrap();
    let mut b = CatalogBuilder::new();
    b.import_list(
        "games",
        "g",
        "a.example\nd.example\n".as_bytes(),
        ListFormat::Plain,
    )
    .unwrap();
    b.import_list("webmail", "w", "a.example\n".as_bytes(), ListFormat::Plain)
        .unwrap();
    b.add_url("webmail", "x.example/mail").unwrap();
    let new = b.build().unwrap();
    let d = Catalog::diff(&old, &new);
    let get = |n: &str| {
        d.iter()
            .find(|r| r.name == n)
            .map(|r| (r.added, r.removed))
            .unwrap()
    };
    assert_eq!(get("games"), (1, 2));
    assert_eq!(get("chat"), (0, 1));
    assert_eq!(get("webmail"), (2, 0));
}

#[test]
fn catalog_is_shareable_between_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Catalog>();
    let c = std::sync::Arc::new(Catalog::demo().unwrap());
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let c = std::sync::Arc::clone(&c);
            std::thread::spawn(move || c.lookup_host("www.gmail.com").len())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 1);
    }
}
