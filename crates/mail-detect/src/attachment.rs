//! One attachment: its real type from its first bytes (`infer`), what its name claims,
//! and, for a ZIP archive, its entries (one level: an archive inside is not opened).
//! Reading is bounded by [`Limits`], so a ZIP bomb costs at most those bytes.

use std::io::{Cursor, Read};

/// Something about an attachment a mail rule can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttachmentFlag {
    /// A program, by its bytes (PE, ELF, Mach-O, Java class, DEX, WebAssembly) or by an
    /// executable name (`.exe`, `.scr`, `.msi`, ...) whatever its bytes.
    Executable,
    /// A script: `#!` first line, or a script name (`.js`, `.vbs`, `.ps1`, `.bat`, ...).
    Script,
    /// A decoy extension before an executable or script one: `report.pdf.exe`.
    DoubleExtension,
    /// An archive holding an executable or script (by name or by bytes).
    NestedExecutable,
    /// An archive with password-protected entries (their contents cannot be checked).
    EncryptedArchive,
    /// Claims or looks like an archive but cannot be read as one.
    UnreadableArchive,
}

impl AttachmentFlag {
    pub const ALL: [AttachmentFlag; 6] = [
        AttachmentFlag::Executable,
        AttachmentFlag::Script,
        AttachmentFlag::DoubleExtension,
        AttachmentFlag::NestedExecutable,
        AttachmentFlag::EncryptedArchive,
        AttachmentFlag::UnreadableArchive,
    ];

    /// The name used in policy files, decisions and events.
    pub fn name(self) -> &'static str {
        match self {
            AttachmentFlag::Executable => "executable",
            AttachmentFlag::Script => "script",
            AttachmentFlag::DoubleExtension => "double-extension",
            AttachmentFlag::NestedExecutable => "nested-executable",
            AttachmentFlag::EncryptedArchive => "encrypted-archive",
            AttachmentFlag::UnreadableArchive => "unreadable-archive",
        }
    }

    pub fn from_name(name: &str) -> Option<AttachmentFlag> {
        AttachmentFlag::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Bounds on the work one attachment may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Archive entries looked at; the rest are ignored (and the archive is unreadable).
    pub max_entries: usize,
    /// Bytes of an archive's text entry kept for the personal data detectors.
    pub max_text_entry: u64,
    /// Bytes of text kept from one archive in all.
    pub max_text_total: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 1000,
            max_text_entry: 1 << 20,
            max_text_total: 4 << 20,
        }
    }
}

/// What [`inspect_attachment`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachmentReport {
    /// The MIME type by magic bytes, when recognised.
    pub real_type: Option<&'static str>,
    /// Sorted, without repeats.
    pub flags: Vec<AttachmentFlag>,
    /// Encrypted as a whole (a ZIP whose entries all need a password, an encrypted PDF,
    /// an encrypted Office file): its content is not readable in transit.
    pub encrypted: bool,
    /// Text of the readable text entries of an archive (`.txt`, `.csv`, ...), for the
    /// personal data detectors.
    pub archive_texts: Vec<String>,
}

const EXECUTABLE_TYPES: [&str; 8] = [
    "application/vnd.microsoft.portable-executable",
    "application/x-executable",
    "application/x-mach-binary",
    "application/java",
    "application/java-archive",
    "application/vnd.android.dex",
    "application/vnd.android.dey",
    "application/wasm",
];

const EXECUTABLE_EXTENSIONS: [&str; 17] = [
    "exe",
    "scr",
    "com",
    "pif",
    "msi",
    "msp",
    "dll",
    "cpl",
    "jar",
    "lnk",
    "apk",
    "app",
    "gadget",
    "application",
    "appx",
    "msix",
    "reg",
];

const SCRIPT_EXTENSIONS: [&str; 15] = [
    "js", "jse", "vbs", "vbe", "wsf", "wsh", "ps1", "psm1", "bat", "cmd", "hta", "sh", "scf",
    "inf", "msc",
];

/// Extensions a sender puts before the real one to look harmless.
const DECOY_EXTENSIONS: [&str; 22] = [
    "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "rtf", "txt", "csv", "jpg",
    "jpeg", "png", "gif", "mp3", "mp4", "zip", "htm", "html", "eml",
];

const TEXT_EXTENSIONS: [&str; 5] = ["txt", "csv", "tsv", "md", "text"];

/// Inspects one attachment with the default [`Limits`].
pub fn inspect_attachment(file_name: &str, bytes: &[u8]) -> AttachmentReport {
    inspect_attachment_with(file_name, bytes, &Limits::default())
}

pub fn inspect_attachment_with(file_name: &str, bytes: &[u8], limits: &Limits) -> AttachmentReport {
    let real_type = infer::get(bytes).map(|t| t.mime_type());
    let mut report = AttachmentReport {
        real_type,
        ..AttachmentReport::default()
    };
    report.flags.extend(name_flags(file_name));
    if real_type.is_some_and(|t| EXECUTABLE_TYPES.contains(&t)) {
        report.flags.push(AttachmentFlag::Executable);
    }
    if bytes.starts_with(b"#!") {
        report.flags.push(AttachmentFlag::Script);
    }
    let named_zip = extension(file_name).is_some_and(|e| e == "zip");
    if real_type == Some("application/zip") || named_zip {
        inspect_zip(bytes, limits, &mut report);
    }
    if real_type == Some("application/pdf") && pdf_is_encrypted(bytes) {
        report.encrypted = true;
    }
    if real_type == Some("application/x-ole-storage") || is_ole(bytes) {
        // An encrypted OOXML document is an OLE compound file holding `EncryptedPackage`
        // (MS-OFFCRYPTO); the stream name is stored in UTF-16LE.
        report.encrypted |= contains(bytes, &utf16le("EncryptedPackage"));
    }
    report.flags.sort();
    report.flags.dedup();
    report
}

fn is_ole(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1])
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A PDF with an `/Encrypt` dictionary in its trailer (looked for in the last 64 KiB,
/// where trailers and cross-reference streams are).
fn pdf_is_encrypted(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64 << 10)..];
    contains(tail, b"/Encrypt")
}

/// The last extension, lower case, without the dot.
fn extension(name: &str) -> Option<String> {
    let base = base_name(name);
    let (stem, ext) = base.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.trim().to_ascii_lowercase())
}

fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name).trim()
}

/// Flags the name alone earns: executable or script extension, double extension.
fn name_flags(name: &str) -> Vec<AttachmentFlag> {
    let mut flags = Vec::new();
    let Some(ext) = extension(name) else {
        return flags;
    };
    let executable = EXECUTABLE_EXTENSIONS.contains(&ext.as_str());
    let script = SCRIPT_EXTENSIONS.contains(&ext.as_str());
    if executable {
        flags.push(AttachmentFlag::Executable);
    }
    if script {
        flags.push(AttachmentFlag::Script);
    }
    if executable || script {
        let base = base_name(name);
        let stem = &base[..base.len() - ext.len() - 1];
        // `invoice.pdf   .exe`: padding hides the real extension in narrow columns.
        let before = stem
            .trim_end()
            .rsplit_once('.')
            .map(|(_, e)| e.trim().to_ascii_lowercase());
        if before.is_some_and(|e| DECOY_EXTENSIONS.contains(&e.as_str())) {
            flags.push(AttachmentFlag::DoubleExtension);
        }
    }
    flags
}

fn inspect_zip(bytes: &[u8], limits: &Limits, report: &mut AttachmentReport) {
    let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        report.flags.push(AttachmentFlag::UnreadableArchive);
        return;
    };
    if archive.len() > limits.max_entries {
        report.flags.push(AttachmentFlag::UnreadableArchive);
    }
    let (mut encrypted, mut files) = (0usize, 0usize);
    let mut text_total = 0usize;
    for i in 0..archive.len().min(limits.max_entries) {
        // The raw entry gives name and flags without decrypting or inflating anything.
        let (name, is_encrypted, is_dir) = match archive.by_index_raw(i) {
            // A name that is not valid text is still a name: compare it lossily.
            Ok(f) => (
                f.name()
                    .map(|n| n.into_owned())
                    .unwrap_or_else(|_| String::from_utf8_lossy(f.name_raw()).into_owned()),
                f.encrypted(),
                f.is_dir(),
            ),
            Err(_) => {
                report.flags.push(AttachmentFlag::UnreadableArchive);
                continue;
            }
        };
        if is_dir {
            continue;
        }
        files += 1;
        let by_name = name_flags(&name);
        if by_name
            .iter()
            .any(|f| matches!(f, AttachmentFlag::Executable | AttachmentFlag::Script))
        {
            report.flags.push(AttachmentFlag::NestedExecutable);
        }
        if is_encrypted {
            encrypted += 1;
            continue;
        }
        let is_text = extension(&name).is_some_and(|e| TEXT_EXTENSIONS.contains(&e.as_str()));
        let want = if is_text { limits.max_text_entry } else { 1024 };
        let mut head = Vec::new();
        match archive.by_index(i) {
            Ok(f) => {
                if f.take(want).read_to_end(&mut head).is_err() {
                    report.flags.push(AttachmentFlag::UnreadableArchive);
                    continue;
                }
            }
            Err(_) => {
                report.flags.push(AttachmentFlag::UnreadableArchive);
                continue;
            }
        }
        let inner = infer::get(&head).map(|t| t.mime_type());
        if inner.is_some_and(|t| EXECUTABLE_TYPES.contains(&t)) || head.starts_with(b"#!") {
            report.flags.push(AttachmentFlag::NestedExecutable);
        }
        if is_text && text_total < limits.max_text_total {
            let text = String::from_utf8_lossy(&head).into_owned();
            text_total += text.len();
            report.archive_texts.push(text);
        }
    }
    if encrypted > 0 {
        report.flags.push(AttachmentFlag::EncryptedArchive);
        report.encrypted = encrypted == files;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const PE: &[u8] = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8\x00\x00\x00\x00\x00\x00\x00\x40\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x00\x00\x00PE\x00\x00";
    const PDF: &[u8] =
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    /// A ZIP whose one entry has the "encrypted" general-purpose bit set, as ZipCrypto
    /// writes it (the contents are never read, so they need not be real ciphertext).
    fn encrypted_zip(name: &str) -> Vec<u8> {
        let mut bytes = zip_of(&[(name, b"0123456789abcdef")]);
        for sig in [&b"PK\x03\x04"[..], &b"PK\x01\x02"[..]] {
            let at = bytes.windows(4).position(|w| w == sig).unwrap();
            let flag_at = at + if sig[2] == 3 { 6 } else { 8 };
            bytes[flag_at] |= 1;
        }
        bytes
    }

    #[test]
    fn executable_by_bytes_whatever_its_name() {
        let r = inspect_attachment("invoice.pdf", PE);
        assert_eq!(
            r.real_type,
            Some("application/vnd.microsoft.portable-executable")
        );
        assert_eq!(r.flags, [AttachmentFlag::Executable]);
    }

    #[test]
    fn a_real_pdf_is_clean() {
        let r = inspect_attachment("invoice.pdf", PDF);
        assert_eq!(r.real_type, Some("application/pdf"));
        assert!(r.flags.is_empty());
        assert!(!r.encrypted);
    }

    #[test]
    fn names_and_double_extensions() {
        let cases: [(&str, &[AttachmentFlag]); 7] = [
            ("setup.exe", &[AttachmentFlag::Executable]),
            (
                "report.pdf.exe",
                &[AttachmentFlag::Executable, AttachmentFlag::DoubleExtension],
            ),
            (
                "photo.jpg     .scr",
                &[AttachmentFlag::Executable, AttachmentFlag::DoubleExtension],
            ),
            (
                "INVOICE.DOCX.JS",
                &[AttachmentFlag::Script, AttachmentFlag::DoubleExtension],
            ),
            ("v1.2.exe", &[AttachmentFlag::Executable]),
            ("minutes.2024.pdf", &[]),
            ("notes.txt", &[]),
        ];
        for (name, want) in cases {
            assert_eq!(inspect_attachment(name, b"hello").flags, want, "{name}");
        }
    }

    #[test]
    fn shebang_is_a_script() {
        let r = inspect_attachment("readme", b"#!/bin/sh\nrm -rf ~\n");
        assert_eq!(r.flags, [AttachmentFlag::Script]);
    }

    #[test]
    fn zip_with_a_screensaver_or_a_renamed_program() {
        let r = inspect_attachment("holiday.zip", &zip_of(&[("pics/beach.scr", b"x")]));
        assert_eq!(r.real_type, Some("application/zip"));
        assert_eq!(r.flags, [AttachmentFlag::NestedExecutable]);
        let r = inspect_attachment("files.zip", &zip_of(&[("notes.txt", PE)]));
        assert_eq!(r.flags, [AttachmentFlag::NestedExecutable]);
    }

    #[test]
    fn harmless_zip_gives_its_text_entries() {
        let r = inspect_attachment(
            "lists.zip",
            &zip_of(&[
                ("class.csv", b"Alice Smith,12/03/2012"),
                ("a.png", b"\x89PNG"),
            ]),
        );
        assert!(r.flags.is_empty(), "{r:?}");
        assert!(!r.encrypted);
        assert_eq!(r.archive_texts, ["Alice Smith,12/03/2012"]);
    }

    #[test]
    fn password_protected_zip_is_flagged_and_counts_as_encrypted() {
        let r = inspect_attachment("class.zip", &encrypted_zip("class.csv"));
        assert_eq!(r.flags, [AttachmentFlag::EncryptedArchive]);
        assert!(r.encrypted);
        assert!(r.archive_texts.is_empty());
        // The entry names are not encrypted: a hidden program is still seen.
        let r = inspect_attachment("x.zip", &encrypted_zip("run.exe"));
        assert!(r.flags.contains(&AttachmentFlag::NestedExecutable));
    }

    #[test]
    fn broken_zip_is_unreadable_not_a_panic() {
        let mut bytes = zip_of(&[("a.txt", b"hello")]);
        bytes.truncate(bytes.len() - 10);
        let r = inspect_attachment("a.zip", &bytes);
        assert_eq!(r.flags, [AttachmentFlag::UnreadableArchive]);
        let r = inspect_attachment("b.zip", b"PK\x03\x04garbage");
        assert_eq!(r.flags, [AttachmentFlag::UnreadableArchive]);
    }

    #[test]
    fn entry_limit() {
        let entries: Vec<(String, &[u8])> =
            (0..5).map(|i| (format!("{i}.txt"), &b"x"[..])).collect();
        let refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, d)| (n.as_str(), *d)).collect();
        let limits = Limits {
            max_entries: 3,
            ..Limits::default()
        };
        let r = inspect_attachment_with("many.zip", &zip_of(&refs), &limits);
        assert_eq!(r.flags, [AttachmentFlag::UnreadableArchive]);
        assert_eq!(r.archive_texts.len(), 3);
    }

    #[test]
    fn encrypted_pdf_and_office() {
        let mut pdf = PDF.to_vec();
        pdf.extend_from_slice(b"trailer\n<< /Encrypt 5 0 R >>\n");
        assert!(inspect_attachment("a.pdf", &pdf).encrypted);
        let mut ole = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        ole.resize(512, 0);
        assert!(!inspect_attachment("a.docx", &ole).encrypted);
        ole.extend(utf16le("EncryptedPackage"));
        assert!(inspect_attachment("a.docx", &ole).encrypted);
    }

    #[test]
    fn flag_names_round_trip() {
        for f in AttachmentFlag::ALL {
            assert_eq!(AttachmentFlag::from_name(f.name()), Some(f));
        }
    }
}
