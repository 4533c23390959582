//! Damaged index files that still pass the checksum: each is refused with an error or
//! opens into a catalog whose every lookup, stream and statistic works; none panics,
//! aborts on a huge allocation or hangs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::panic::{AssertUnwindSafe, catch_unwind};

use hallpass_catalog::fuzzing::{
    damage, exercise as exercise_all, fix_checksum, open_and_exercise, sample_index,
};
use hallpass_catalog::{Catalog, CatalogError, HostLookups};

const HEADER_LEN: usize = 32;

/// A small index with every kind of fst node, URL entries, expressions and aliases
/// (the one the fuzz targets damage too).
fn sample_bytes() -> Vec<u8> {
    sample_index().unwrap()
}

/// Everything a reader of a catalog may do with it, and its statistics consistent.
fn exercise(c: &Catalog, good: &Catalog) {
    let s = c.stats();
    assert_eq!(s.per_category.len(), s.categories);
    std::hint::black_box(exercise_all(c, good));
}

/// Small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Opens `bytes` both ways; a panic anywhere is reported with what was changed.
fn check_one(bytes: Vec<u8>, good: &Catalog, what: &str, outcomes: &mut [usize; 2]) {
    for lookups in [HostLookups::Table, HostLookups::Walk] {
        let copy = bytes.clone();
        let result = catch_unwind(AssertUnwindSafe(|| {
            match Catalog::from_bytes_with(copy, lookups) {
                Ok(c) => {
                    exercise(&c, good);
                    true
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(!msg.is_empty());
                    assert!(
                        !matches!(e, CatalogError::Checksum { .. }),
                        "checksum was fixed up: {msg}"
                    );
                    false
                }
            }
        }));
        match result {
            Ok(opened) => outcomes[usize::from(opened)] += 1,
            Err(_) => panic!("{what} ({lookups:?}): panicked"),
        }
    }
}

#[test]
fn damaged_bodies_that_pass_the_checksum_are_refused_or_harmless() {
    let good_bytes = sample_bytes();
    let good = Catalog::from_bytes(good_bytes.clone()).unwrap();
    exercise(&good, &good);
    let body = good_bytes.len() - HEADER_LEN;
    assert!(body > 1000, "sample body too small: {body}");
    let started = hallpass_clock::Clock::system().instant();
    let mut outcomes = [0usize; 2]; // refused, opened
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut mutations = 0;
    // Every byte of the body once, each set to a value the generator picks.
    for pos in HEADER_LEN..good_bytes.len() {
        let mut bytes = good_bytes.clone();
        let v = (rng.next() % 255) as u8 + 1;
        bytes[pos] ^= v;
        fix_checksum(&mut bytes);
        check_one(
            bytes,
            &good,
            &format!("byte {pos} ^= {v:#04x}"),
            &mut outcomes,
        );
        mutations += 1;
    }
    // Extreme values at random positions, and multi-byte damage.
    for round in 0..1500 {
        let mut bytes = good_bytes.clone();
        let pos = HEADER_LEN + (rng.next() as usize) % body;
        let what = match round % 5 {
            0 => {
                bytes[pos] = 0;
                "zeroed"
            }
            1 => {
                bytes[pos] = 0xFF;
                "set to 0xff"
            }
            2 => {
                let end = (pos + 8).min(bytes.len());
                bytes[pos..end].fill(0xFF);
                "8 bytes set to 0xff"
            }
            3 => {
                for _ in 0..4 {
                    let p = HEADER_LEN + (rng.next() as usize) % body;
                    bytes[p] = rng.next() as u8;
                }
                "4 random bytes"
            }
            _ => {
                let end = (pos + 1 + (rng.next() as usize) % 16).min(bytes.len());
                bytes[pos..end].reverse();
                "a run reversed"
            }
        };
        fix_checksum(&mut bytes);
        check_one(
            bytes,
            &good,
            &format!("round {round}: {what} at {pos}"),
            &mut outcomes,
        );
        mutations += 1;
    }
    // Truncated and extended bodies (the length field fixed up too).
    for cut in (1..body).step_by(97) {
        let mut bytes = good_bytes[..good_bytes.len() - cut].to_vec();
        fix_checksum(&mut bytes);
        check_one(bytes, &good, &format!("{cut} bytes cut"), &mut outcomes);
        let mut bytes = good_bytes.clone();
        bytes.extend(std::iter::repeat_n(0xA5, cut % 40 + 1));
        fix_checksum(&mut bytes);
        check_one(bytes, &good, &format!("{cut} bytes added"), &mut outcomes);
        mutations += 2;
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{mutations} damaged indexes in {elapsed:?}: {} opens refused, {} opened",
        outcomes[0], outcomes[1]
    );
    assert!(mutations > 3000);
    // Both happen: a flipped input byte or count can leave a valid (different) index.
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
    assert!(
        elapsed < std::time::Duration::from_secs(120),
        "took {elapsed:?}"
    );
}

/// The fst footers, targeted: a key count, a root address or a transition claiming
/// anything at all is refused before anything is allocated for it.
#[test]
fn fst_footers_claiming_too_much_are_refused() {
    let good_bytes = sample_bytes();
    let good = Catalog::from_bytes(good_bytes.clone()).unwrap();
    let lens: Vec<u64> = (0..5)
        .map(|i| {
            let at = HEADER_LEN + 8 * i;
            u64::from_le_bytes(good_bytes[at..at + 8].try_into().unwrap())
        })
        .collect();
    let hosts_start = HEADER_LEN + 40 + (lens[0] + lens[1]) as usize;
    let hosts_end = hosts_start + lens[2] as usize;
    let mut outcomes = [0usize; 2];
    for (field_from_end, what) in [(20, "key count"), (12, "root address")] {
        for value in [0u64, 1, 2, 1 << 40, u64::MAX, u64::MAX / 2, 17] {
            let mut bytes = good_bytes.clone();
            let at = hosts_end - field_from_end;
            bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
            fix_checksum(&mut bytes);
            let copy = bytes.clone();
            check_one(copy, &good, &format!("{what} = {value}"), &mut outcomes);
            if value >= 1 << 40 {
                let e = Catalog::from_bytes(bytes).unwrap_err().to_string();
                assert!(e.contains("host section"), "{what} = {value}: {e}");
            }
        }
    }
    // Section lengths that overflow or point past the body name the section.
    for (i, name) in ["meta", "category set", "host", "URL", "expression"]
        .iter()
        .enumerate()
    {
        let mut bytes = good_bytes.clone();
        let at = HEADER_LEN + 8 * i;
        bytes[at..at + 8].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        fix_checksum(&mut bytes);
        let e = Catalog::from_bytes(bytes).unwrap_err().to_string();
        assert!(e.contains(name), "section {i}: {e}");
    }
}

/// What the `catalog_open` fuzz target does with its input (`fuzz/fuzz_targets`): the
/// sample index damaged by the input, with the checksum fixed up. Random inputs must
/// get past the checksum and the length check to the structural checks behind them
/// (refused as corrupt there, or opened): a fuzzer stopped at the CRC tests nothing.
#[test]
fn fuzz_inputs_pass_the_checksum_and_reach_the_structure() {
    let good_bytes = sample_bytes();
    let good = Catalog::from_bytes(good_bytes.clone()).unwrap();
    let mut rng = Rng(0x0DDB_1A5E_5BAD_5EED);
    let (mut corrupt, mut opened) = (0usize, 0usize);
    for round in 0..600 {
        let len = 4 * (1 + (rng.next() as usize) % 6);
        let edits: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let bytes = damage(&good_bytes, &edits);
        let lookups = [HostLookups::Table, HostLookups::Walk][round % 2];
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            open_and_exercise(bytes, lookups, &good)
        }));
        match outcome {
            Err(_) => panic!("round {round}: edits {edits:02x?} panicked"),
            Ok(Ok(_)) => opened += 1,
            Ok(Err(CatalogError::Corrupt { .. })) => corrupt += 1,
            Ok(Err(e)) => {
                panic!("round {round}: edits {edits:02x?} stopped before the structure: {e}")
            }
        }
    }
    eprintln!("600 fuzz-style inputs: {corrupt} refused as corrupt, {opened} opened");
    assert!(
        corrupt > 100,
        "{corrupt} refused as corrupt, {opened} opened"
    );
    assert!(opened > 0, "{corrupt} refused as corrupt, {opened} opened");

    // The fix-up alone: a body changed after the fact is refused by the checksum, and
    // passes it once fixed up (a body that grew or shrank gets its length fixed too).
    let mut bytes = good_bytes.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x5A;
    let e = Catalog::from_bytes(bytes.clone()).unwrap_err();
    assert!(matches!(e, CatalogError::Checksum { .. }), "{e}");
    fix_checksum(&mut bytes);
    let e = Catalog::from_bytes(bytes).err();
    assert!(!matches!(e, Some(CatalogError::Checksum { .. })), "{e:?}");
    let mut grown = good_bytes.clone();
    grown.extend_from_slice(&[0; 3]);
    fix_checksum(&mut grown);
    let e = Catalog::from_bytes(grown).unwrap_err();
    assert!(matches!(e, CatalogError::Corrupt { .. }), "{e}");
    // Too short for a header: nothing to fix, and nothing panics.
    let mut short = good_bytes[..10].to_vec();
    fix_checksum(&mut short);
    assert_eq!(short, good_bytes[..10]);
}
