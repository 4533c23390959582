//! List parsers (plain, hosts, adblock, auto-detected) on arbitrary bytes: never panic;
//! binary input is refused as not a list; whatever is imported compiles and can be
//! looked up.
#![no_main]

use hallpass_catalog::{CatalogBuilder, CatalogError, ListFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, text)) = data.split_first() else {
        return;
    };
    let format = [
        ListFormat::Auto,
        ListFormat::Plain,
        ListFormat::Hosts,
        ListFormat::Adblock,
    ][(sel % 4) as usize];
    let mut b = CatalogBuilder::new();
    // Binary or non-UTF-8 input is refused as not a list (an index, a NUL byte, bytes
    // that are not UTF-8); anything else is imported, bad lines counted, never failed.
    let report = match b.import_list("fuzz", "fuzz", text, format) {
        Ok(report) => report,
        Err(CatalogError::NotAList { .. }) => return,
        Err(e) => panic!("a list failed to import: {e}"),
    };
    assert!(report.examples.len() <= hallpass_catalog::MAX_EXAMPLES);
    let catalog = b.build().expect("build");
    let s = String::from_utf8_lossy(text);
    for line in s.lines().take(16) {
        let _ = catalog.lookup_host(line);
        let _ = catalog.lookup_url(line);
    }
});
