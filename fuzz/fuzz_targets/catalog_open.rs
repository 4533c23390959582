//! Opening an index from arbitrary bytes: errors, never panics; whatever opens answers
//! every lookup, stream, statistic and diff. The first byte picks the mode:
//!
//! - 0, 3, 6...: the bytes as they are (the header and checksum checks);
//! - 1, 4, 7...: the bytes as a body behind a well-formed header, checksum fixed up;
//! - 2, 5, 8...: the sample index (`hallpass_catalog::fuzzing::sample_index`) damaged as
//!   the bytes say, checksum fixed up: a valid structure with a few changes, which is
//!   what reaches the section, set and fst checks (random bodies rarely get past the
//!   section lengths).
//!
//! Bit 7 of the first byte selects the host table or the fst walk for host lookups.
#![no_main]

use std::sync::OnceLock;

use hallpass_catalog::fuzzing::{damage, fix_checksum, open_and_exercise, sample_index};
use hallpass_catalog::{Catalog, FORMAT_VERSION, HostLookups};
use libfuzzer_sys::fuzz_target;

struct Sample {
    bytes: Vec<u8>,
    catalog: Catalog,
}

static SAMPLE: OnceLock<Sample> = OnceLock::new();

fn sample() -> &'static Sample {
    SAMPLE.get_or_init(|| {
        let bytes = sample_index().expect("the sample index builds");
        let catalog = Catalog::from_bytes(bytes.clone()).expect("the sample index opens");
        Sample { bytes, catalog }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let sample = sample();
    let bytes = match mode % 3 {
        0 => rest.to_vec(),
        1 => {
            let mut bytes = Vec::with_capacity(32 + rest.len());
            bytes.extend_from_slice(b"HPCATIDX");
            bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
            bytes.extend_from_slice(&[0; 20]); // flags, length, CRC, reserved
            bytes.extend_from_slice(rest);
            fix_checksum(&mut bytes);
            bytes
        }
        _ => damage(&sample.bytes, rest),
    };
    let lookups = if mode & 0x80 == 0 {
        HostLookups::Table
    } else {
        HostLookups::Walk
    };
    let _ = open_and_exercise(bytes, lookups, &sample.catalog);
});
