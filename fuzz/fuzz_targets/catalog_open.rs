//! Opening an index from arbitrary bytes: errors, never panics. The first byte selects
//! whether the header's length and checksum are fixed up first, so that the fuzzer
//! also reaches the section parsers behind the checksum.
#![no_main]

use hallpass_catalog::Catalog;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 {
        // A well-formed header around arbitrary body bytes.
        let body = bytes.clone();
        bytes.clear();
        bytes.extend_from_slice(b"HPCATIDX");
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&body);
    }
    if let Ok(c) = Catalog::from_bytes(bytes) {
        let _ = c.stats();
        let _ = c.lookup_host("www.example.com");
        let _ = c.lookup_url("http://www.example.com/a/b?c");
    }
});
