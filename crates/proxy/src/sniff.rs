//! What a download really is, from its first bytes (pure): executables (PE, ELF,
//! Mach-O), installers (MSI, DEB, RPM), archives, scripts. A file's name and its
//! `Content-Type` are the sender's word; its magic number is not, so a `setup.exe`
//! renamed `cat.jpg` is still an executable to the policy's `file_types` rules.

/// How many leading bytes the proxy holds back to sniff (infer's signatures and a
/// script's `#!` fit well within this).
pub const SNIFF_BYTES: usize = 512;

/// A type recognised from content: the policy's `file_types` rules match `extension`
/// against their `extensions` and `mime` against their `mime` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub mime: &'static str,
    pub extension: &'static str,
}

/// The type of a body starting with `head`, when its bytes say (a plain text file or an
/// unknown format is `None`).
pub fn sniff(head: &[u8]) -> Option<Sniffed> {
    if let Some(kind) = infer::get(head) {
        return Some(Sniffed {
            mime: kind.mime_type(),
            extension: kind.extension(),
        });
    }
    // infer has no signature for scripts; `#!` (a shebang) is how Unix ones start.
    if head.starts_with(b"#!") {
        return Some(Sniffed {
            mime: "text/x-shellscript",
            extension: "sh",
        });
    }
    None
}

/// The name of the first file in a ZIP archive (and so in JAR, APK, MSIX, DOCX...) whose
/// first bytes are `head`: its local file header comes first (APPNOTE 4.3.7). Only
/// the first entry is visible in the bytes held back, so this catches the common case
/// of an archive made to carry one program, not every archive that holds one.
pub fn first_zip_entry(head: &[u8]) -> Option<&str> {
    if !head.starts_with(b"PK\x03\x04") {
        return None;
    }
    let len = usize::from(u16::from_le_bytes([*head.get(26)?, *head.get(27)?]));
    let name = head.get(30..30 + len)?;
    std::str::from_utf8(name)
        .ok()
        .filter(|name| !name.is_empty())
}

/// The MIME type of a `Content-Type` header value, without parameters, lower case.
pub fn content_type_mime(value: &str) -> Option<String> {
    let mime = value.split(';').next()?.trim();
    (!mime.is_empty()).then(|| mime.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The first bytes of a minimal PE file: `MZ`, the DOS stub's offset to `PE\0\0`.
    pub(crate) fn pe_head() -> Vec<u8> {
        let mut head = vec![0u8; 256];
        head[0] = b'M';
        head[1] = b'Z';
        head[0x3c] = 0x80;
        head[0x80..0x84].copy_from_slice(b"PE\0\0");
        head
    }

    #[test]
    fn executables() {
        let pe = sniff(&pe_head()).unwrap();
        assert_eq!(pe.extension, "exe");
        let mut elf_head = b"\x7fELF\x02\x01\x01".to_vec();
        elf_head.resize(64, 0);
        let elf = sniff(&elf_head).unwrap();
        assert_eq!(elf.extension, "elf");
        let macho = sniff(&[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1, 3, 0, 0, 0]).unwrap();
        assert_eq!(macho.mime, "application/x-mach-binary");
        let script = sniff(b"#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(script.extension, "sh");
    }

    #[test]
    fn archives_and_images() {
        assert_eq!(sniff(b"PK\x03\x04\x14\0\0\0").unwrap().extension, "zip");
        let jpeg = sniff(&[0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F']).unwrap();
        assert_eq!(jpeg.mime, "image/jpeg");
        assert_eq!(sniff(b"hello, world"), None);
        assert_eq!(sniff(b""), None);
    }

    /// A ZIP archive's first local file header, for `name`.
    pub(crate) fn zip_head(name: &str) -> Vec<u8> {
        let mut head = b"PK\x03\x04".to_vec();
        head.resize(26, 0);
        head.extend_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
        head.extend_from_slice(&[0, 0]);
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b"MZ");
        head
    }

    #[test]
    fn zip_entries() {
        assert_eq!(
            first_zip_entry(&zip_head("bin/setup.exe")),
            Some("bin/setup.exe")
        );
        assert_eq!(sniff(&zip_head("a.txt")).unwrap().extension, "zip");
        assert_eq!(first_zip_entry(&zip_head("")), None);
        // A name running past the bytes held back, and not a ZIP at all.
        assert_eq!(first_zip_entry(&zip_head("setup.exe")[..35]), None);
        assert_eq!(first_zip_entry(b"MZ\x90\0"), None);
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type_mime("Application/X-MSDownload; charset=binary").as_deref(),
            Some("application/x-msdownload")
        );
        assert_eq!(content_type_mime(" ; x").as_deref(), None);
    }
}
