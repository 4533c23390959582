//! A structural check of an `fst` map, run when an index is opened.
//!
//! `fst` trusts its bytes: a node address out of range, a pack size of 0 or 9..15, an
//! output that overflows or a transition pointing back up all panic (or loop) inside
//! its decoder, and `fst::Map::new` only checks the footer of an empty map. The index
//! checksum catches accidents; this catches the rest (a file crafted to pass it) before
//! any lookup or stream touches the map.
//!
//! The `fst` builder writes its 16-byte header, then every node contiguously, each
//! node's address being its last byte, then a 20-byte footer (key count, root address,
//! checksum); the root is the last node. So every node is found by decoding backwards
//! from the root, each node once: a linear pass. It checks, for every node, what the
//! decoder of fst 0.4 (format version 3) would read:
//!
//! - the node lies within the node area and the next node down ends right below it;
//! - pack sizes are 1..=8 for transition addresses (0..=8 for outputs);
//! - every transition leads to the empty final state or to the address of a node
//!   strictly below this one, so the automaton has no cycle and every walk ends;
//! - every output (transition and final) is at most `max_output`: in a valid map each
//!   is part of a key's value, so no sum along a path overflows and every value indexes
//!   the category set table;
//! - a node without transitions is final (but the root of an empty map), so every walk
//!   reaches a key within the height of the automaton (streams stay proportional to
//!   what they return);
//! - the footer's key count is the number of keys (counted per node, not per key), so
//!   what is allocated for the keys is what they need.

/// `fst`'s format version this check understands (fst 0.4 writes 3).
const FST_VERSION: u64 = 3;
/// Header: version and type, 8 bytes each.
const HEADER: usize = 16;
/// Footer: key count and root address (8 bytes each) and a 4-byte checksum.
const FOOTER: usize = 20;
/// Nodes with more transitions than this carry a 256-byte index.
const TRANS_INDEX_THRESHOLD: usize = 32;

/// Whether a one-transition node's 6-bit input code stands for a common byte (else
/// the input byte is stored before the state byte).
fn has_inline_input(code: u8) -> bool {
    code != 0
}

fn read_uint(bytes: &[u8], at: usize, n: usize) -> Option<u64> {
    let slice = bytes.get(at..at.checked_add(n)?)?;
    let mut v = 0u64;
    for (i, b) in slice.iter().enumerate() {
        v |= u64::from(*b) << (8 * i);
    }
    Some(v)
}

/// A fixed-size bit set over addresses.
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
}

/// One decoded node: the lowest address it occupies, whether it is final, and whether
/// it is a root without transitions that is not final (what an empty map has).
struct Decoded {
    end: usize,
    is_final: bool,
    dead_end: bool,
}

/// Checks `bytes` (a whole fst) as described in the module documentation.
pub(crate) fn check(bytes: &[u8], max_output: u64) -> Result<(), String> {
    let len = bytes.len();
    if len < HEADER + FOOTER {
        return Err(format!("{len} bytes is too short"));
    }
    let version = read_uint(bytes, 0, 8).unwrap_or(0);
    if version != FST_VERSION {
        return Err(format!("format version {version} (expected {FST_VERSION})"));
    }
    let nodes_end = len - FOOTER;
    let keys = read_uint(bytes, nodes_end, 8).unwrap_or(0);
    let root = read_uint(bytes, nodes_end + 8, 8).unwrap_or(0);
    if root == 0 {
        // The empty final state: no nodes at all.
        if nodes_end != HEADER {
            return Err("root is empty but nodes follow".to_string());
        }
        return if keys <= 1 {
            Ok(())
        } else {
            Err(format!("{keys} keys in an empty map"))
        };
    }
    if root != (nodes_end - 1) as u64 {
        return Err(format!(
            "root address {root} is not the last node (expected {})",
            nodes_end - 1
        ));
    }
    let mut nodes = Bits::new(nodes_end);
    let mut targets = Bits::new(nodes_end);
    let mut addr = nodes_end - 1;
    let mut count = 0usize;
    loop {
        let root = addr == nodes_end - 1;
        let node = decode(bytes, addr, root, max_output, |t| {
            if t != 0 {
                targets.set(t);
            }
        })
        .map_err(|what| format!("node at {addr}: {what}"))?;
        nodes.set(addr);
        count += 1;
        if node.dead_end && keys != 0 {
            return Err(format!("{keys} keys in an empty map"));
        }
        if node.end == HEADER {
            break;
        }
        addr = node.end - 1;
    }
    // Every transition target is a node (or the empty final state, not recorded).
    for (i, (want, have)) in targets.0.iter().zip(&nodes.0).enumerate() {
        let stray = want & !have;
        if stray != 0 {
            let at = i * 64 + stray.trailing_zeros() as usize;
            return Err(format!("a transition leads to {at}, which is not a node"));
        }
    }
    let counted = count_keys(bytes, nodes_end, &nodes, count, max_output)?;
    if counted != keys {
        return Err(format!(
            "its footer says {keys} keys but it holds {counted}"
        ));
    }
    Ok(())
}

/// The number of keys: paths from the root to a final state, counted forwards in
/// descending address order (every transition leads down, so a node's count is
/// complete when it is reached), one `u32` per node. Saturates (a real map has far
/// fewer keys than 2^32; the footer then disagrees).
fn count_keys(
    bytes: &[u8],
    nodes_end: usize,
    nodes: &Bits,
    count: usize,
    max_output: u64,
) -> Result<u64, String> {
    // Rank directory: nodes before each word of the bit set.
    let mut ranks = Vec::with_capacity(nodes.0.len());
    let mut before = 0u32;
    for w in &nodes.0 {
        ranks.push(before);
        before += w.count_ones();
    }
    let rank = |a: usize| -> usize {
        let w = a / 64;
        let mask = (1u64 << (a % 64)) - 1;
        ranks[w] as usize + (nodes.0[w] & mask).count_ones() as usize
    };
    let mut paths = vec![0u32; count];
    let mut keys = 0u64;
    let mut addr = nodes_end - 1;
    paths[rank(addr)] = 1;
    loop {
        let here = paths[rank(addr)];
        let mut arrivals = 0u64;
        let node = decode(bytes, addr, addr == nodes_end - 1, max_output, |t| {
            if t == 0 {
                arrivals += u64::from(here); // the empty final state: a key
            } else {
                let p = &mut paths[rank(t)];
                *p = p.saturating_add(here);
            }
        })?;
        if node.is_final {
            arrivals += u64::from(here);
        }
        keys = keys.saturating_add(arrivals);
        if node.end == HEADER {
            return Ok(keys);
        }
        addr = node.end - 1;
    }
}

/// Decodes the node whose last byte is `addr`, calling `visit` with the address of each
/// transition's target (0 for the empty final state).
fn decode(
    bytes: &[u8],
    addr: usize,
    root: bool,
    max_output: u64,
    mut visit: impl FnMut(usize),
) -> Result<Decoded, String> {
    let below = |at: usize, n: usize| -> Result<usize, String> {
        at.checked_sub(n)
            .filter(|&a| a >= HEADER)
            .ok_or_else(|| "runs into the header".to_string())
    };
    let byte = |at: usize| bytes.get(at).copied().ok_or("out of range".to_string());
    let output = |at: usize, n: usize| -> Result<u64, String> {
        if n == 0 {
            return Ok(0);
        }
        let v = read_uint(bytes, at, n).ok_or("output out of range")?;
        if v > max_output {
            return Err(format!("output {v} exceeds {max_output}"));
        }
        Ok(v)
    };
    let mut target = |end: usize, delta: u64| -> Result<(), String> {
        if delta == 0 {
            visit(0); // the empty final state
            return Ok(());
        }
        let t = usize::try_from(delta)
            .ok()
            .and_then(|d| end.checked_sub(d))
            .filter(|&t| t >= HEADER)
            .ok_or_else(|| format!("transition delta {delta} leaves the node area"))?;
        visit(t);
        Ok(())
    };
    let state = byte(addr)?;
    match state >> 6 {
        0b11 => {
            // One transition to the node just below, no output.
            let input_len = usize::from(!has_inline_input(state & 0x3F));
            let end = below(addr, input_len)?;
            target(end, 1)?;
            Ok(Decoded {
                end,
                is_final: false,
                dead_end: false,
            })
        }
        0b10 => {
            let input_len = usize::from(!has_inline_input(state & 0x3F));
            let sizes_at = below(addr, input_len + 1)?;
            let sizes = byte(sizes_at)?;
            let (tsize, osize) = ((sizes >> 4) as usize, (sizes & 0x0F) as usize);
            if !(1..=8).contains(&tsize) || osize > 8 {
                return Err(format!("bad pack sizes {sizes:#04x}"));
            }
            let end = below(sizes_at, tsize + osize)?;
            output(end, osize)?;
            let delta = read_uint(bytes, sizes_at - tsize, tsize).ok_or("address out of range")?;
            target(end, delta)?;
            Ok(Decoded {
                end,
                is_final: false,
                dead_end: false,
            })
        }
        _ => {
            let is_final = state & 0x40 != 0;
            let inline = (state & 0x3F) as usize;
            let ntrans_len = usize::from(inline == 0);
            let ntrans = if inline != 0 {
                inline
            } else {
                match byte(below(addr, 1)?)? {
                    1 => 256,
                    n => n as usize,
                }
            };
            let dead_end = ntrans == 0 && !is_final;
            if dead_end && !root {
                return Err("a dead end (no transitions, not final)".into());
            }
            let sizes_at = below(addr, ntrans_len + 1)?;
            let sizes = byte(sizes_at)?;
            let (tsize, osize) = ((sizes >> 4) as usize, (sizes & 0x0F) as usize);
            if tsize > 8 || (ntrans > 0 && tsize == 0) || osize > 8 {
                return Err(format!("bad pack sizes {sizes:#04x}"));
            }
            let index = if ntrans > TRANS_INDEX_THRESHOLD {
                256
            } else {
                0
            };
            let inputs_at = below(sizes_at, index + ntrans)?;
            let addrs_at = below(inputs_at, ntrans * tsize)?;
            let outs_at = below(addrs_at, ntrans * osize)?;
            let final_size = if is_final { osize } else { 0 };
            let end = below(outs_at, final_size)?;
            if is_final {
                output(end, osize)?;
            }
            for i in 0..ntrans {
                output(outs_at + i * osize, osize)?;
                let delta =
                    read_uint(bytes, addrs_at + i * tsize, tsize).ok_or("address out of range")?;
                target(end, delta)?;
            }
            Ok(Decoded {
                end,
                is_final,
                dead_end,
            })
        }
    }
}
