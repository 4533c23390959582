//! Lookups of arbitrary hosts and URLs in the demo catalog: never panic.
#![no_main]

use std::sync::OnceLock;

use hallpass_catalog::Catalog;
use libfuzzer_sys::fuzz_target;

static DEMO: OnceLock<Catalog> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let c = DEMO.get_or_init(|| Catalog::demo().expect("demo catalog"));
    let s = String::from_utf8_lossy(data);
    let _ = c.lookup_host(&s);
    let _ = c.lookup_url(&s);
});
