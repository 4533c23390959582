//! The in-memory host table: what [`crate::Catalog::lookup_host`] reads instead of
//! walking the hosts fst.
//!
//! Walking the fst costs about one dependent cache miss per byte of the host in a
//! 20 MB automaton. The table answers "is this exact key listed, and with which set?"
//! with about one cache miss per label-boundary suffix; the suffixes of a host are
//! hashed in one pass over it and probed with no branch on loaded data, so their misses
//! overlap.
//!
//! Layout: open addressing over 64-byte buckets of eight `u64` slots, filled to at most
//! [`LOAD_PERCENT`]%. A slot is a 48-bit fingerprint of the key above a 16-bit index into
//! the catalog's category sets; `0` is the empty slot (fingerprints are never 0). A key's
//! home bucket comes from its hash by multiply-shift range reduction (any bucket count,
//! not only powers of two); a full bucket overflows into the next one (wrapping). Slots
//! fill in order, so a bucket whose last slot is empty ends every probe sequence
//! passing through it.
//!
//! In front of the buckets sits a blocked Bloom filter of the same keys (one 64-bit word
//! per probe, four bits set per key, [`FILTER_BITS_PER_KEY`] bits per key, about 3 MB for
//! UT1 + 2M): most suffixes of a host are not listed (`com`, `co.uk`, the parent of a
//! listed name), and the filter, small enough to stay in cache, turns them away before
//! they touch the 27 MB of buckets. Only suffixes it passes (the listed ones and about
//! 2% of the others) cost a bucket's cache miss.
//!
//! Keys are exactly the fst's keys (byte-reversed normalised hosts). Only fingerprints
//! are stored, so a key that is not listed matches a slot with probability about
//! 8 / 2^48 (3e-14) per probe (the occupied slots it is compared with, nearly always one
//! bucket). Listed keys never collide: the build retries with another seed when two
//! keys on one probe sequence share a fingerprint, and gives up (the catalog then walks
//! the fst) after [`SEEDS`] tries.

use fst::Streamer;

use crate::normalize::MAX_HOST_LEN;
use crate::set::CategorySet;

const SLOTS: usize = 8;
const BUCKET_BYTES: usize = 64;
const EMPTY: u64 = 0;
/// Highest load. At 80% about 43% of the buckets are full, and a miss whose home bucket
/// is full costs a mispredicted branch and a second line; at 70% about 25% are (11.4
/// bytes per key), measured the faster of the two by 10-20%.
const LOAD_PERCENT: usize = 70;
/// Builds tried with different seeds before giving up on fingerprint collisions.
const SEEDS: u64 = 4;
/// Set indexes must fit the slot's 16 bits.
const MAX_SETS: usize = u16::MAX as usize;
/// Bloom filter size: about 2% of unlisted keys get through with four bits per key.
const FILTER_BITS_PER_KEY: usize = 10;
/// Suffixes hashed before their buckets are probed as one batch.
const BATCH: usize = 8;

const K_WORD: u64 = 0x9E37_79B9_7F4A_7C15;
const K_FINISH: u64 = 0xD6E8_FEB8_6659_FD93;
const K_FP: u64 = 0xA076_1D64_78BD_642F;

/// Tables at least this big live in their own mapping, advised to use transparent huge
/// pages: with 4 KiB pages nearly every probe of a 27 MB table is also a TLB miss
/// (measured: about 4% more lookups per second with them).
const HUGE_PAGE: usize = 2 << 20;

type Bucket = [u8; BUCKET_BYTES];

/// The table's memory: zeroed, and `offset` makes the buckets start on a cache line
/// (and on a huge page when mapped).
enum Storage {
    Mapped(memmap2::MmapMut),
    Heap(Vec<u8>),
}

impl Storage {
    fn new(len: usize) -> Storage {
        if len >= HUGE_PAGE
            && let Ok(map) = memmap2::MmapMut::map_anon(len + HUGE_PAGE)
        {
            // Advice only: without it (or without THP) the table still works.
            #[cfg(target_os = "linux")]
            let _ = map.advise(memmap2::Advice::HugePage);
            return Storage::Mapped(map);
        }
        Storage::Heap(vec![0; len + BUCKET_BYTES])
    }

    fn raw(&self) -> &[u8] {
        match self {
            Storage::Mapped(m) => m,
            Storage::Heap(v) => v,
        }
    }

    fn raw_mut(&mut self) -> &mut [u8] {
        match self {
            Storage::Mapped(m) => m,
            Storage::Heap(v) => v,
        }
    }

    /// Where the aligned buckets start.
    fn offset(&self) -> usize {
        let align = match self {
            Storage::Mapped(_) => HUGE_PAGE,
            Storage::Heap(_) => BUCKET_BYTES,
        };
        let addr = self.raw().as_ptr() as usize;
        (align - addr % align) % align
    }
}

#[inline(always)]
fn slot(bucket: &Bucket, i: usize) -> u64 {
    u64::from_ne_bytes(bucket.as_chunks::<8>().0[i])
}

/// 128-bit product folded to 64 bits: every input bit reaches every output bit.
#[inline(always)]
fn folded_mul(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Word-at-a-time helpers (SWAR) for ASCII words: every byte below 0x80.
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// `b` in every byte of a word.
const fn splat(b: u8) -> u64 {
    0x0101_0101_0101_0101 * b as u64
}

/// The high bit of every zero byte of `t` (exact, for ASCII words).
#[inline(always)]
fn zero_bytes(t: u64) -> u64 {
    !(((t & LOW7).wrapping_add(LOW7)) | t) & HIGH
}

/// `w` with `A`..=`Z` lower-cased (ASCII words).
#[inline(always)]
fn lower(w: u64) -> u64 {
    let ge_a = w.wrapping_add(splat(0x80 - b'A'));
    let gt_z = w.wrapping_add(splat(0x80 - b'Z' - 1));
    w | (((ge_a ^ gt_z) & HIGH) >> 2)
}

#[inline(always)]
fn start(seed: u64) -> u64 {
    seed.wrapping_mul(K_FP) ^ K_WORD
}

/// Absorbs one whole 8-byte word of a key.
#[inline(always)]
fn absorb(h: u64, word: u64) -> u64 {
    folded_mul(h ^ word, K_WORD)
}

/// (home bucket, fingerprint) of a key from the state after its whole words, its last
/// `len % 8` bytes (`partial`, first byte lowest) and its length.
#[inline(always)]
fn finish(h: u64, partial: u64, len: usize, buckets: u64) -> (usize, u64) {
    // Keys are at most 253 bytes and `partial` at most 7, so the length has the top
    // byte to itself.
    let f = folded_mul(h ^ partial ^ ((len as u64) << 56), K_FINISH);
    let home = ((u128::from(f) * u128::from(buckets)) >> 64) as usize;
    // Bucket mates share the high bits of `f`; multiplying spreads its low bits into
    // the fingerprint as well.
    let fp = f.wrapping_mul(K_FP) >> 16;
    (home, fp.max(1))
}

/// The hash of a key as the fst stores it (byte-reversed host): 8-byte little-endian
/// words from its first byte. The lookup computes the same values from the host read
/// backwards, one word at a time.
fn hash_key(seed: u64, key: &[u8], buckets: u64) -> (usize, u64) {
    let (words, tail) = key.as_chunks::<8>();
    let mut h = start(seed);
    for w in words {
        h = absorb(h, u64::from_le_bytes(*w));
    }
    let mut last = [0u8; 8];
    last[..tail.len()].copy_from_slice(tail);
    finish(h, u64::from_le_bytes(last), key.len(), buckets)
}

/// The table; see the module documentation.
pub(crate) struct HostTable {
    storage: Storage,
    offset: usize,
    nbuckets: usize,
    seed: u64,
    /// The catalog's sets and an empty one after them (what a miss adds), so a
    /// probe picks its set without branching on whether it hit.
    sets: Box<[CategorySet]>,
    /// The blocked Bloom filter over the keys' fingerprints.
    filter: Box<[u64]>,
}

/// The filter word and the four bits of a fingerprint: the word from its high bits (by
/// multiply-shift, any word count), the bits from its low 24.
#[inline(always)]
fn filter_pos(fp: u64, words: usize) -> (usize, u64) {
    let word = ((u128::from(fp) * words as u128) >> 48) as usize;
    let mask = (1u64 << (fp & 63))
        | (1u64 << ((fp >> 6) & 63))
        | (1u64 << ((fp >> 12) & 63))
        | (1u64 << ((fp >> 18) & 63));
    (word, mask)
}

/// Why a table was not built (the catalog then walks the fst, except when corrupt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoTable {
    TooManySets,
    TooBig,
    Collisions,
    /// The keys streamed do not match the fst's footer, or one is longer than any host:
    /// the index is refused.
    Corrupt(String),
}

/// How filling the table with one seed went.
enum Fill {
    Done,
    Collision,
    Corrupt(String),
}

impl HostTable {
    /// Builds the table from the hosts fst in one streaming pass per seed tried (the
    /// buckets are the only allocation). Entries whose value is not a set index are
    /// left out: the fst walk ignores them too.
    pub(crate) fn build<D: AsRef<[u8]>>(
        hosts: &fst::Map<D>,
        sets: &[CategorySet],
    ) -> Result<HostTable, NoTable> {
        let nsets = sets.len();
        if nsets > MAX_SETS {
            return Err(NoTable::TooManySets);
        }
        let keys = hosts.len();
        // At least one empty slot, so every probe sequence ends.
        let slots = keys
            .checked_mul(100)
            .map(|x| x / LOAD_PERCENT + 1)
            .ok_or(NoTable::TooBig)?;
        let nbuckets = slots.div_ceil(SLOTS);
        let len = nbuckets.checked_mul(BUCKET_BYTES).ok_or(NoTable::TooBig)?;
        let words = keys
            .checked_mul(FILTER_BITS_PER_KEY)
            .ok_or(NoTable::TooBig)?
            .div_ceil(64)
            .max(1);
        let mut table = HostTable {
            storage: Storage::new(len),
            offset: 0,
            nbuckets,
            seed: 0,
            sets: sets.iter().copied().chain([CategorySet::EMPTY]).collect(),
            filter: vec![0u64; words].into_boxed_slice(),
        };
        table.offset = table.storage.offset();
        for seed in 0..SEEDS {
            table.seed = seed;
            if seed > 0 {
                table.filter.fill(0);
            }
            let mut filter = std::mem::take(&mut table.filter);
            let buckets = table.buckets_mut();
            // `fill` indexes buckets by hash: it needs them all.
            if buckets.len() != nbuckets {
                return Err(NoTable::TooBig);
            }
            if seed > 0 {
                buckets.fill([0; BUCKET_BYTES]);
            }
            let filled = fill(buckets, &mut filter, hosts, nsets, seed);
            table.filter = filter;
            match filled {
                Fill::Done => return Ok(table),
                Fill::Collision => {}
                Fill::Corrupt(detail) => return Err(NoTable::Corrupt(detail)),
            }
        }
        Err(NoTable::Collisions)
    }

    fn buckets(&self) -> &[Bucket] {
        let raw = self.storage.raw();
        let end = self.offset + self.nbuckets * BUCKET_BYTES;
        // `Storage::new` made room for the alignment offset.
        raw.get(self.offset..end).unwrap_or(&[]).as_chunks().0
    }

    fn buckets_mut(&mut self) -> &mut [Bucket] {
        let end = self.offset + self.nbuckets * BUCKET_BYTES;
        let raw = self.storage.raw_mut();
        raw.get_mut(self.offset..end)
            .unwrap_or(&mut [])
            .as_chunks_mut()
            .0
    }

    /// Memory the table holds: buckets, filter and its copy of the sets.
    pub(crate) fn bytes(&self) -> usize {
        self.nbuckets * BUCKET_BYTES
            + std::mem::size_of_val(&*self.filter)
            + std::mem::size_of_val(&*self.sets)
    }

    /// The categories of a plain host name as typed (any case, one trailing dot
    /// allowed), or `None` when it needs the general path first: `host_key` for IP
    /// literals, names ending in a digit (which might be one), non-ASCII names and
    /// anything with `:` or `[`.
    #[inline]
    pub(crate) fn lookup_name(&self, host: &str) -> Option<CategorySet> {
        let bytes = host.as_bytes();
        let bytes = bytes.strip_suffix(b".").unwrap_or(bytes);
        match (bytes.first(), bytes.last()) {
            (Some(b'['), _) | (_, None) => return None,
            (_, Some(last)) if last.is_ascii_digit() => return None,
            _ if bytes.len() > MAX_HOST_LEN => return None,
            _ => {}
        }
        self.scan(bytes, false, true)
    }

    /// The union of the sets of every listed key equal to `key` (a normalised host as
    /// `host_key` makes it, not reversed) or, unless `exact`, to a suffix of it starting
    /// after a `.`: the same answer as walking the reversed key through the fst.
    #[inline]
    pub(crate) fn lookup(&self, key: &[u8], exact: bool) -> CategorySet {
        self.scan(key, exact, false).unwrap_or_default()
    }

    /// One pass over `bytes` from the end, a word at a time: lower-cases, finds the
    /// dots, and finishes the hash of every suffix that starts after one (its reversed
    /// form is a prefix of what has been read). With `strict`, gives up (`None`) on
    /// non-ASCII bytes and `:`, which the general path handles.
    #[inline(always)]
    fn scan(&self, bytes: &[u8], exact: bool, strict: bool) -> Option<CategorySet> {
        let buckets = self.buckets();
        let sets = &self.sets[..];
        let nb = buckets.len() as u64;
        let mut acc = CategorySet::EMPTY;
        let mut batch = [(0usize, 0u64); BATCH];
        let mut m = 0;
        let mut h = start(self.seed);
        let (head, words) = bytes.as_rchunks::<8>();
        let mut first = [0u8; 8];
        first[8 - head.len()..].copy_from_slice(head);
        let head_word = u64::from_be_bytes(first);
        // Word `j` holds reversed bytes 8j..8j+8, the first of them lowest (a
        // big-endian read of the host), as `hash_key` reads the stored key.
        let all = words.iter().rev().map(|w| (u64::from_be_bytes(*w), true));
        let mut last = 0;
        for (j, (raw, whole)) in all.chain([(head_word, false)]).enumerate() {
            if strict && (raw & HIGH != 0 || zero_bytes(raw ^ splat(b':')) != 0) {
                return None;
            }
            let w = lower(raw);
            if !exact {
                let mut dots = zero_bytes(w ^ splat(b'.'));
                if j == 0 {
                    // A dot at the very end would stand for the empty key.
                    dots &= !0x80;
                }
                while dots != 0 {
                    let k = (dots.trailing_zeros() / 8) as usize;
                    let partial = w & ((1u64 << (8 * k)) - 1);
                    batch[m] = finish(h, partial, 8 * j + k, nb);
                    m += 1;
                    if m == BATCH {
                        acc |= probe_all(buckets, &self.filter, &batch, sets);
                        m = 0;
                    }
                    dots &= dots - 1;
                }
            }
            if whole {
                h = absorb(h, w);
            } else {
                last = w;
            }
        }
        batch[m] = finish(h, last, bytes.len(), nb);
        Some(acc | probe_all(buckets, &self.filter, &batch[..=m], sets))
    }
}

/// Probes a batch of (home, fingerprint) pairs: the filter first (it stays in cache),
/// then the buckets of what it passes. Past the filter nothing on the common path
/// branches on loaded data, so the CPU keeps the cache misses of the batch (and of the
/// next lookup) in flight at once; only a miss whose home bucket is full branches off
/// to the buckets after it. `sets` ends with an empty set, what a miss contributes.
#[inline(always)]
fn probe_all(
    buckets: &[Bucket],
    filter: &[u64],
    batch: &[(usize, u64)],
    sets: &[CategorySet],
) -> CategorySet {
    let none = sets.len().saturating_sub(1);
    let mut acc = CategorySet::EMPTY;
    for &(home, fp) in batch {
        let (word, mask) = filter_pos(fp, filter.len());
        if filter.get(word).is_none_or(|w| w & mask != mask) {
            continue;
        }
        let Some(bucket) = buckets.get(home) else {
            continue;
        };
        let mut hit = find(bucket, fp);
        if hit == EMPTY && slot(bucket, SLOTS - 1) != EMPTY {
            hit = probe_after(buckets, home, fp);
        }
        let i = if hit == EMPTY {
            none
        } else {
            (hit & 0xFFFF) as usize
        };
        acc |= sets.get(i).copied().unwrap_or_default();
    }
    acc
}

/// The slot holding `fp` in a bucket, or `EMPTY`.
#[inline(always)]
fn find(bucket: &Bucket, fp: u64) -> u64 {
    let mut hit = EMPTY;
    for i in 0..SLOTS {
        let s = slot(bucket, i);
        if s >> 16 == fp {
            hit = s;
        }
    }
    hit
}

/// Continues a probe past a full home bucket.
#[cold]
fn probe_after(buckets: &[Bucket], home: usize, fp: u64) -> u64 {
    let mut b = home;
    // Ends: `build` leaves at least one empty slot, and a bucket with an empty slot
    // ends the sequence. The bound is belt and braces.
    for _ in 1..buckets.len() {
        b = if b + 1 == buckets.len() { 0 } else { b + 1 };
        let Some(bucket) = buckets.get(b) else {
            return EMPTY;
        };
        let hit = find(bucket, fp);
        if hit != EMPTY || slot(bucket, SLOTS - 1) == EMPTY {
            return hit;
        }
    }
    EMPTY
}

/// Keys hashed before their buckets are touched and then filled: the touches are
/// independent loads, so the cache misses of a batch overlap instead of each waiting
/// behind the previous insertion's branches.
const FILL_BATCH: usize = 32;

/// Inserts every key with `seed`; `Collision` when two keys on one probe sequence share
/// a fingerprint (the lookup could not tell them apart). The footer's key count sized
/// the table, so more keys than it says (which would leave no empty slot) or fewer, or
/// a key longer than any host, make the index corrupt.
fn fill<D: AsRef<[u8]>>(
    buckets: &mut [Bucket],
    filter: &mut [u64],
    hosts: &fst::Map<D>,
    nsets: usize,
    seed: u64,
) -> Fill {
    let nb = buckets.len() as u64;
    let mut pending = [(0usize, 0u64); FILL_BATCH];
    let mut m = 0;
    let expected = hosts.len();
    let mut seen = 0usize;
    let mut stream = hosts.stream();
    while let Some((key, value)) = stream.next() {
        seen += 1;
        if seen > expected {
            return Fill::Corrupt(format!("more keys than the {expected} its footer says"));
        }
        if key.len() > MAX_HOST_LEN {
            return Fill::Corrupt(format!(
                "a key of {} bytes (hosts have at most {MAX_HOST_LEN})",
                key.len()
            ));
        }
        let Some(set) = usize::try_from(value).ok().filter(|&v| v < nsets) else {
            continue;
        };
        let (home, fp) = hash_key(seed, key, nb);
        let (word, mask) = filter_pos(fp, filter.len());
        if let Some(w) = filter.get_mut(word) {
            *w |= mask;
        }
        // `set < nsets <= MAX_SETS`, so it fits the low 16 bits.
        pending[m] = (home, (fp << 16) | set as u64);
        m += 1;
        if m == FILL_BATCH {
            if !insert_all(buckets, &pending) {
                return Fill::Collision;
            }
            m = 0;
        }
    }
    if seen != expected {
        return Fill::Corrupt(format!("{seen} keys where its footer says {expected}"));
    }
    if insert_all(buckets, &pending[..m]) {
        Fill::Done
    } else {
        Fill::Collision
    }
}

fn insert_all(buckets: &mut [Bucket], pending: &[(usize, u64)]) -> bool {
    let mut touched = 0u64;
    for &(home, _) in pending {
        touched = touched.wrapping_add(buckets.get(home).map_or(0, |b| slot(b, 0)));
    }
    // Keeps the touching loads from being optimised away.
    std::hint::black_box(touched);
    pending
        .iter()
        .all(|&(home, entry)| insert(buckets, home, entry))
}

/// Puts `entry` in the first free slot from its home bucket on; false when a slot on
/// the way has the same fingerprint.
fn insert(buckets: &mut [Bucket], home: usize, entry: u64) -> bool {
    let fp = entry >> 16;
    let mut b = home;
    // Ends: there are more slots than keys.
    loop {
        let Some(bucket) = buckets.get_mut(b) else {
            return false;
        };
        for s in bucket.as_chunks_mut::<8>().0 {
            let old = u64::from_ne_bytes(*s);
            if old == EMPTY {
                *s = entry.to_ne_bytes();
                return true;
            }
            if old >> 16 == fp {
                return false;
            }
        }
        b = if b + 1 == buckets.len() { 0 } else { b + 1 };
    }
}
