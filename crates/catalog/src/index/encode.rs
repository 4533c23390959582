//! Writing the index file: what the builder compiled, laid out as the format in the
//! parent module's documentation describes.

use crate::Usage;
use crate::error::CatalogError;
use crate::set::CategorySet;

use super::{FORMAT_VERSION, HEADER_LEN, MAGIC, SECTIONS};

/// What the builder hands to the encoder.
pub(crate) struct Compiled {
    pub names: Vec<String>,
    pub usage: Vec<Usage>,
    /// Per category: domains, urls, expressions.
    pub counts: Vec<[u64; 3]>,
    pub aliases: Vec<(String, u8)>,
    pub sets: Vec<CategorySet>,
    pub hosts_fst: Vec<u8>,
    pub urls_fst: Vec<u8>,
    pub expressions: Vec<(u8, String)>,
}

fn usage_code(u: Usage) -> u8 {
    match u {
        Usage::Unknown => 0,
        Usage::Black => 1,
        Usage::White => 2,
    }
}

pub(crate) fn encode(c: &Compiled) -> Result<Vec<u8>, CatalogError> {
    let too_big = |what: &str| CatalogError::Build(format!("too many {what}"));
    let mut meta = Vec::new();
    meta.extend_from_slice(
        &u16::try_from(c.names.len())
            .map_err(|_| too_big("categories"))?
            .to_le_bytes(),
    );
    for (i, name) in c.names.iter().enumerate() {
        meta.push(u8::try_from(name.len()).map_err(|_| too_big("bytes in a name"))?);
        meta.extend_from_slice(name.as_bytes());
        meta.push(usage_code(c.usage[i]));
        for n in c.counts[i] {
            meta.extend_from_slice(&n.to_le_bytes());
        }
    }
    meta.extend_from_slice(
        &u16::try_from(c.aliases.len())
            .map_err(|_| too_big("aliases"))?
            .to_le_bytes(),
    );
    for (alias, id) in &c.aliases {
        meta.push(u8::try_from(alias.len()).map_err(|_| too_big("bytes in a name"))?);
        meta.extend_from_slice(alias.as_bytes());
        meta.push(*id);
    }
    let mut sets = Vec::with_capacity(4 + 32 * c.sets.len());
    sets.extend_from_slice(&(c.sets.len() as u32).to_le_bytes());
    for s in &c.sets {
        for w in s.bits() {
            sets.extend_from_slice(&w.to_le_bytes());
        }
    }
    let mut exprs = Vec::new();
    exprs.extend_from_slice(&(c.expressions.len() as u32).to_le_bytes());
    for (cat, p) in &c.expressions {
        exprs.push(*cat);
        exprs.extend_from_slice(&(p.len() as u32).to_le_bytes());
        exprs.extend_from_slice(p.as_bytes());
    }
    let sections: [&[u8]; SECTIONS] = [&meta, &sets, &c.hosts_fst, &c.urls_fst, &exprs];
    let body_len: usize = SECTIONS * 8 + sections.iter().map(|s| s.len()).sum::<usize>();
    let mut out = Vec::with_capacity(HEADER_LEN + body_len);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(body_len as u64).to_le_bytes());
    out.extend_from_slice(&[0u8; 8]); // CRC + reserved, CRC filled below
    for s in &sections {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    }
    for s in &sections {
        out.extend_from_slice(s);
    }
    let crc = crc32fast::hash(&out[HEADER_LEN..]);
    out[24..28].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}
