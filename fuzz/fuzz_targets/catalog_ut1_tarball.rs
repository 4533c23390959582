//! The UT1 importer on arbitrary bytes as a tarball: errors, never panics.
#![no_main]

use hallpass_catalog::CatalogBuilder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut b = CatalogBuilder::new();
    if b.import_ut1_tarball(data, "fuzz", &mut |_| {}).is_ok() {
        let _ = b.build();
    }
});
