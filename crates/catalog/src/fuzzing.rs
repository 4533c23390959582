//! Helpers shared by the fuzz targets (`fuzz/`) and the damaged-index tests: a sample
//! index with every kind of section and fst node, a way to damage it from fuzzer bytes,
//! and the checksum fix-up that lets damaged bodies past the CRC-32 to the structural
//! checks behind it. Not part of the catalog's API (hidden from its documentation).

use crate::builder::CatalogBuilder;
use crate::error::CatalogError;
use crate::index::{Catalog, HEADER_LEN, HostLookups};
use crate::{CategorySet, Usage};

/// Byte range of the body length in the header (see the format in [`crate::index`]).
const BODY_LEN_AT: std::ops::Range<usize> = 16..24;
/// Byte range of the body's CRC-32 in the header.
const CRC_AT: std::ops::Range<usize> = 24..28;

/// Rewrites the header's body length and CRC-32 to match the body as it is, so that only
/// the structure of a damaged index is wrong. Bytes shorter than a header are left alone
/// (there is no checksum to fix).
pub fn fix_checksum(bytes: &mut [u8]) {
    if bytes.len() < HEADER_LEN {
        return;
    }
    let body_len = (bytes.len() - HEADER_LEN) as u64;
    bytes[BODY_LEN_AT].copy_from_slice(&body_len.to_le_bytes());
    let crc = crc32fast::hash(&bytes[HEADER_LEN..]);
    bytes[CRC_AT].copy_from_slice(&crc.to_le_bytes());
}

/// A small index with every kind of fst node (one with more than 32 transitions, one-
/// transition nodes with and without outputs, final nodes with outputs), IP entries, URL
/// entries, expressions, aliases and both usages.
pub fn sample_index() -> Result<Vec<u8>, CatalogError> {
    let mut b = CatalogBuilder::new();
    let cats = ["adult", "chat", "gambling", "games", "malware", "webmail"];
    for (i, c) in "abcdefghijklmnopqrstuvwxyz0123456789-".chars().enumerate() {
        let cat = cats[i % cats.len()];
        b.add_domain(cat, &format!("site{i}{c}.example"))?;
        b.add_domain(cats[(i + 1) % cats.len()], &format!("www.s{c}.test"))?;
        if i % 3 == 0 {
            b.add_domain(cats[(i + 2) % cats.len()], &format!("s{c}.test"))?;
        }
    }
    b.add_domain("malware", "192.0.2.7")?;
    b.add_domain("malware", "[2001:db8::7]")?;
    b.add_url("webmail", "http://portal.example/mail/")?;
    b.add_url("webmail", "portal.example/webmail")?;
    b.add_url("games", "play.example/flash/games")?;
    b.add_expression("adult", "(porn|xxx)")?;
    b.add_expression("games", "/games?/")?;
    b.add_alias("betting", "gambling")?;
    b.set_usage("gambling", Usage::Black)?;
    b.set_usage("webmail", Usage::White)?;
    b.to_bytes()
}

/// `good` damaged as `edits` say, with the checksum fixed up. `edits` is read as a
/// series of 4-byte operations `[op, pos_lo, pos_hi, value]`, `pos` counted from the
/// start of the body (modulo its length): op 0-3 xor the byte with `value` (0 taken as
/// 0xff), 4 sets it to `value`, 5 cuts the body `pos` bytes from its end, 6 appends
/// `value + 1` copies of `pos`'s low byte, 7 overwrites the eight bytes at `pos` with
/// `value` repeated. A trailing partial operation is ignored.
pub fn damage(good: &[u8], edits: &[u8]) -> Vec<u8> {
    let mut bytes = good.to_vec();
    for op in edits.chunks_exact(4) {
        let body = bytes.len().saturating_sub(HEADER_LEN);
        if body == 0 {
            break;
        }
        let pos = usize::from(u16::from_le_bytes([op[1], op[2]])) % body;
        let at = HEADER_LEN + pos;
        let value = op[3];
        match op[0] % 8 {
            0..=3 => bytes[at] ^= if value == 0 { 0xFF } else { value },
            4 => bytes[at] = value,
            5 => bytes.truncate(bytes.len() - (pos + 1).min(body)),
            6 => bytes.extend(std::iter::repeat_n(op[1], usize::from(value) + 1)),
            _ => {
                let end = (at + 8).min(bytes.len());
                bytes[at..end].fill(value);
            }
        }
    }
    fix_checksum(&mut bytes);
    bytes
}

/// Hosts and URLs a damaged catalog is asked about: listed ones, parents, IPs, misses.
const PROBE_HOSTS: &[&str] = &[
    "site0a.example",
    "deep.site5f.example",
    "www.sq.test",
    "sa.test",
    "192.0.2.7",
    "[2001:db8::7]",
    "example",
    "test",
    "unlisted.invalid",
    "bücher.example",
    "",
];
const PROBE_URLS: &[&str] = &[
    "http://portal.example/mail/inbox",
    "https://www.portal.example/webmail?x=1",
    "play.example/flash/games/x.swf",
    "http://xxx.site1b.example/porn/games/",
    "site0a.example",
];

/// Everything a reader of a catalog may do with it, against `good` for the comparisons.
/// Returns how many host entries it streamed (so the work is not optimised away).
pub fn exercise(c: &Catalog, good: &Catalog) -> u64 {
    let mut seen = CategorySet::EMPTY;
    for h in PROBE_HOSTS {
        seen |= c.lookup_host(h);
        seen |= c.lookup_host_walk(h);
    }
    for u in PROBE_URLS {
        seen |= c.lookup_url(u);
    }
    let s = c.stats();
    let mut n = u64::from(s.per_category.len() == s.categories);
    c.for_each_host(|_, set| {
        n += 1;
        n += c.names_of(set).count() as u64;
    });
    n += Catalog::diff(good, c).len() as u64;
    n += Catalog::diff(c, good).len() as u64;
    n += format!("{c:?}").len() as u64;
    n += c.vocabulary().count() as u64;
    n + c.names_of(seen).count() as u64
}

/// What one fuzz input did: refused (with the error), or opened and exercised.
pub fn open_and_exercise(
    bytes: Vec<u8>,
    lookups: HostLookups,
    good: &Catalog,
) -> Result<u64, CatalogError> {
    let c = Catalog::from_bytes_with(bytes, lookups)?;
    Ok(exercise(&c, good))
}
