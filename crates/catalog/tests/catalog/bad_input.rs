//! Inputs that are not what they claim: directories, devices, binary files, an index
//! given as a list, oversized files. Each is refused with a message naming the file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::error::Error as _;

use hallpass_catalog::{Catalog, CatalogBuilder, CatalogError, HostLookups, ListFormat};

fn import(path: &std::path::Path, category: Option<&str>) -> Result<u64, CatalogError> {
    let mut b = CatalogBuilder::new();
    b.import_path(path, category, ListFormat::Auto, &mut |_| {})
        .map(|r| r.entries)
}

#[test]
fn a_directory_or_device_is_not_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let e = Catalog::open(dir.path()).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{} is a directory, not a catalog index",
            dir.path().display()
        )
    );
    // Refused before reading: /dev/zero never ends.
    let e = Catalog::open_with("/dev/zero", HostLookups::Walk)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "/dev/zero is a character device, not a catalog index");
    let e = Catalog::load(std::path::Path::new("/dev/zero"), HostLookups::Walk)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/dev/zero is a character device"), "{e}");
    let e = import(std::path::Path::new("/dev/zero"), Some("x")).unwrap_err();
    assert!(matches!(e, CatalogError::NotAFile { .. }), "{e}");
}

#[test]
fn io_errors_say_their_cause_once() {
    let e = Catalog::open("/nonexistent/catalog.idx").unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("/nonexistent/catalog.idx: "), "{text}");
    assert_eq!(text.matches("os error 2").count(), 1, "{text}");
    // Not repeated as a source either: `{:#}` chains would print it twice.
    assert!(e.source().is_none());
}

#[test]
fn a_folder_without_lists_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ssh")).unwrap();
    std::fs::write(dir.path().join("ssh/config"), "Host *\n").unwrap();
    std::fs::write(dir.path().join("hosts"), "127.0.0.1 localhost\n").unwrap();
    let e = import(dir.path(), None).unwrap_err().to_string();
    assert!(e.contains("no category folders"), "{e}");
}

#[test]
fn binary_files_are_not_lists() {
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("catalog.hpidx");
    let mut b = CatalogBuilder::new();
    b.add_domain("ads", "ads.example").unwrap();
    b.write_to(&idx).unwrap();
    // With a category or without (it used to ask for one instead).
    for category in [Some("ads"), None] {
        let e = import(&idx, category).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "{}: this is a Hallpass catalog index",
                idx.display()
            )),
            "{category:?}: {e}"
        );
    }

    let nul = dir.path().join("nul.txt");
    std::fs::write(&nul, b"a.example\n\0\0\0\x01\x02").unwrap();
    let e = import(&nul, Some("ads")).unwrap_err().to_string();
    assert!(
        e.contains("nul.txt: binary data (a NUL byte at offset 10)"),
        "{e}"
    );

    let latin1 = dir.path().join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9.example\n").unwrap();
    let e = import(&latin1, Some("ads")).unwrap_err().to_string();
    assert!(e.contains("latin1.txt: not UTF-8 text"), "{e}");

    // A NUL further in than the first read is caught on its line.
    let late = dir.path().join("late.txt");
    let mut text = "a.example\n".repeat(20_000).into_bytes();
    text.extend_from_slice(b"b.example\0\n");
    std::fs::write(&late, text).unwrap();
    let e = import(&late, Some("ads")).unwrap_err().to_string();
    assert!(
        e.contains("late.txt: binary data (a NUL byte) on line 20001"),
        "{e}"
    );
}

#[test]
fn long_lines_are_skipped_and_huge_files_refused() {
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("long.txt");
    let mut text = "a.example\n".to_string();
    text.push_str(&"x".repeat(200_000));
    text.push_str("\nb.example\n");
    std::fs::write(&long, text).unwrap();
    let mut b = CatalogBuilder::new();
    let r = b
        .import_path(&long, Some("ads"), ListFormat::Plain, &mut |_| {})
        .unwrap();
    assert_eq!(r.entries, 2, "{r:?}");
    assert_eq!(r.bad_lines, 1);
    assert_eq!(r.examples[0].line, 2);
    assert!(r.examples[0].reason.contains("longer than"));

    // A sparse file over the limit is refused from its size, without reading it.
    let huge = dir.path().join("huge.txt");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(hallpass_catalog::MAX_LIST_BYTES + 1).unwrap();
    let e = import(&huge, Some("ads")).unwrap_err();
    assert!(matches!(e, CatalogError::ListTooLarge { .. }), "{e}");
    assert!(e.to_string().contains("huge.txt"), "{e}");
}
