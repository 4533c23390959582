//! Opening the index file: every section's bounds, counts and fst checked before a
//! catalog is handed out, so a damaged file is refused rather than read.

use super::*;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn corrupt(&self, detail: impl Into<String>) -> CatalogError {
        CatalogError::Corrupt {
            path: self.path.to_path_buf(),
            detail: detail.into(),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], CatalogError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.corrupt("section ends early")),
        }
    }
    fn u8(&mut self) -> Result<u8, CatalogError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, CatalogError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, CatalogError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, CatalogError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn string(&mut self, n: usize) -> Result<String, CatalogError> {
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| self.corrupt("name is not UTF-8"))
    }
    fn done(&self, what: &str) -> Result<(), CatalogError> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(self.corrupt(format!("unexpected bytes after the {what} section")))
        }
    }
}

impl Catalog {
    pub(super) fn parse(
        data: Arc<Backing>,
        path: &Path,
        lookups: HostLookups,
    ) -> Result<Catalog, CatalogError> {
        let all = data.bytes();
        let total = all.len() as u64;
        let pb = || PathBuf::from(path);
        if total > MAX_INDEX_BYTES {
            return Err(CatalogError::Corrupt {
                path: pb(),
                detail: format!("{total} bytes is larger than any index"),
            });
        }
        if all.len() < 8 || all[..8] != MAGIC {
            if all.len() < 8 && MAGIC.starts_with(all) {
                return Err(CatalogError::Truncated {
                    path: pb(),
                    expected: HEADER_LEN as u64,
                    actual: total,
                });
            }
            return Err(CatalogError::BadMagic { path: pb() });
        }
        if all.len() < HEADER_LEN {
            return Err(CatalogError::Truncated {
                path: pb(),
                expected: HEADER_LEN as u64,
                actual: total,
            });
        }
        let mut h = Reader {
            bytes: &all[..HEADER_LEN],
            pos: 8,
            path,
        };
        let version = h.u32()?;
        if version != FORMAT_VERSION {
            return Err(CatalogError::UnsupportedVersion {
                path: pb(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let flags = h.u32()?;
        let body_len = h.u64()?;
        let crc = h.u32()?;
        let reserved = h.u32()?;
        if flags != 0 || reserved != 0 {
            return Err(CatalogError::Corrupt {
                path: pb(),
                detail: format!("unknown header flags {flags:#x}/{reserved:#x}"),
            });
        }
        let expected_total = body_len.saturating_add(HEADER_LEN as u64);
        if total < expected_total {
            return Err(CatalogError::Truncated {
                path: pb(),
                expected: expected_total,
                actual: total,
            });
        }
        if total > expected_total {
            return Err(CatalogError::Corrupt {
                path: pb(),
                detail: format!("{} unexpected bytes after the end", total - expected_total),
            });
        }
        let body = &all[HEADER_LEN..];
        let actual = crc32fast::hash(body);
        if actual != crc {
            return Err(CatalogError::Checksum {
                path: pb(),
                expected: crc,
                actual,
            });
        }

        let mut r = Reader {
            bytes: body,
            pos: 0,
            path,
        };
        let mut ranges = [(0usize, 0usize); SECTIONS];
        let mut lens = [0u64; SECTIONS];
        for l in &mut lens {
            *l = r.u64()?;
        }
        let mut start = HEADER_LEN + SECTIONS * 8;
        for (i, l) in lens.iter().enumerate() {
            let end = usize::try_from(*l)
                .ok()
                .and_then(|len| start.checked_add(len))
                .filter(|&e| e <= all.len())
                .ok_or_else(|| {
                    r.corrupt(format!(
                        "the {} section ({l} bytes at body offset {}) runs past the end of the body",
                        SECTION_NAMES[i],
                        start - HEADER_LEN
                    ))
                })?;
            ranges[i] = (start, end);
            start = end;
        }
        if start != all.len() {
            return Err(r.corrupt("section lengths do not add up to the body length"));
        }

        // meta
        let mut m = Reader {
            bytes: &all[ranges[0].0..ranges[0].1],
            pos: 0,
            path,
        };
        let ncat = m.u16()? as usize;
        if ncat > 256 {
            return Err(m.corrupt("more than 256 categories"));
        }
        let mut names = Vec::with_capacity(ncat);
        let mut usage = Vec::with_capacity(ncat);
        let mut counts = Vec::with_capacity(ncat);
        for _ in 0..ncat {
            let n = m.u8()? as usize;
            let name = m.string(n)?;
            if names.contains(&name) {
                return Err(m.corrupt(format!("category {name:?} appears twice")));
            }
            names.push(name);
            usage.push(match m.u8()? {
                0 => Usage::Unknown,
                1 => Usage::Black,
                2 => Usage::White,
                other => return Err(m.corrupt(format!("unknown usage code {other}"))),
            });
            counts.push([m.u64()?, m.u64()?, m.u64()?]);
        }
        let nalias = m.u16()? as usize;
        let mut aliases = Vec::with_capacity(nalias);
        for _ in 0..nalias {
            let n = m.u8()? as usize;
            let name = m.string(n)?;
            let id = m.u8()?;
            if id as usize >= ncat {
                return Err(m.corrupt(format!("alias {name:?} points to a missing category")));
            }
            aliases.push((name, id));
        }
        m.done("meta")?;

        // sets
        let mut s = Reader {
            bytes: &all[ranges[1].0..ranges[1].1],
            pos: 0,
            path,
        };
        let nsets = s.u32()? as usize;
        if nsets.saturating_mul(32) != s.bytes.len().saturating_sub(4) {
            return Err(s.corrupt("category set table has the wrong size"));
        }
        let mut sets = Vec::with_capacity(nsets);
        for _ in 0..nsets {
            let set = CategorySet::from_bits([s.u64()?, s.u64()?, s.u64()?, s.u64()?]);
            if set.iter().any(|id| id as usize >= ncat) {
                return Err(s.corrupt("category set names a missing category"));
            }
            sets.push(set);
        }

        let section = |i: usize| Section {
            data: Arc::clone(&data),
            start: ranges[i].0,
            end: ranges[i].1,
        };
        let fst_err = |what: &str, detail: String| CatalogError::Corrupt {
            path: pb(),
            detail: format!("{what} section: {detail}"),
        };
        // Every value indexes the set table; see `verify_fst` for why each output must.
        let max_output = nsets.saturating_sub(1) as u64;
        for (i, what) in ["host", "URL"].into_iter().enumerate() {
            let bytes = &all[ranges[2 + i].0..ranges[2 + i].1];
            verify_fst::check(bytes, max_output).map_err(|d| fst_err(what, d))?;
        }
        let hosts = fst::Map::new(section(2)).map_err(|e| fst_err("host", e.to_string()))?;
        let urls = fst::Map::new(section(3)).map_err(|e| fst_err("URL", e.to_string()))?;
        let built = match lookups {
            HostLookups::Table => Some(HostTable::build(&hosts, &sets)),
            HostLookups::Walk => None,
        };
        let host_table = match built {
            None => None,
            Some(Ok(t)) => {
                tracing::debug!(
                    keys = hosts.len(),
                    bytes = t.bytes(),
                    "built the host lookup table"
                );
                Some(t)
            }
            Some(Err(NoTable::Corrupt(detail))) => return Err(fst_err("host", detail)),
            Some(Err(why)) => {
                tracing::info!(
                    ?why,
                    "no host lookup table for {}: host lookups walk the index",
                    path.display()
                );
                None
            }
        };

        // expressions
        let mut x = Reader {
            bytes: &all[ranges[4].0..ranges[4].1],
            pos: 0,
            path,
        };
        let nexpr = x.u32()? as usize;
        let mut expression_sources = Vec::with_capacity(nexpr.min(1 << 16));
        for _ in 0..nexpr {
            let cat = x.u8()?;
            if cat as usize >= ncat {
                return Err(x.corrupt("expression for a missing category"));
            }
            let n = x.u32()? as usize;
            let p = x.string(n)?;
            expression_sources.push((cat, p));
        }
        x.done("expressions")?;
        let mut expressions = Vec::new();
        for (cat, name) in names.iter().enumerate() {
            let pats: Vec<&str> = expression_sources
                .iter()
                .filter(|(c, _)| *c as usize == cat)
                .map(|(_, p)| p.as_str())
                .collect();
            if pats.is_empty() {
                continue;
            }
            let set = compile_expressions(&pats).map_err(|e| CatalogError::Corrupt {
                path: pb(),
                detail: format!("expression for {name:?} does not compile: {e}"),
            })?;
            expressions.push((cat as u8, set));
        }

        if host_table.is_some() {
            data.release_resident_pages();
        }
        Ok(Catalog {
            hosts,
            host_table,
            urls,
            sets,
            names,
            usage,
            counts,
            aliases,
            expressions,
            expression_sources,
            bytes: total,
        })
    }
}
