//! Line-oriented list parsers: plain domain lists, hosts files, adblock-style lists,
//! and UT1's `urls` and `expressions` files. Bad lines are counted and a few kept as
//! examples; they never fail an import.

use std::fmt;
use std::io::{BufRead, Read as _};

use crate::error::CatalogError;

/// How many bad lines an [`ImportReport`] keeps verbatim.
pub const MAX_EXAMPLES: usize = 10;

/// The syntax of a list of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// Decide from the content (first non-comment lines).
    Auto,
    /// One domain (or IP literal) per line; `#` starts a comment.
    Plain,
    /// `0.0.0.0 name [name...]` / `127.0.0.1 name`; `#` starts a comment.
    Hosts,
    /// Adblock-style `||name^` rules; `!` starts a comment, other rules are ignored.
    Adblock,
}

impl std::str::FromStr for ListFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(ListFormat::Auto),
            "plain" | "domains" => Ok(ListFormat::Plain),
            "hosts" => Ok(ListFormat::Hosts),
            "adblock" | "abp" => Ok(ListFormat::Adblock),
            other => Err(format!(
                "unknown list format {other:?} (expected auto, plain, hosts or adblock)"
            )),
        }
    }
}

/// One rejected line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub file: String,
    pub line: u64,
    pub reason: String,
    pub text: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {:?}",
            self.file, self.line, self.reason, self.text
        )
    }
}

/// What an import did: counts, and the first few bad lines (file and line number).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// List files read.
    pub files: u64,
    /// Lines read (including comments and blanks).
    pub lines: u64,
    /// Entries added (before de-duplication across files).
    pub entries: u64,
    /// Lines that are valid but carry nothing we use (comments, blank lines, adblock
    /// cosmetic or exception rules, `localhost` in hosts files).
    pub ignored: u64,
    /// Lines rejected.
    pub bad_lines: u64,
    /// The first [`MAX_EXAMPLES`] rejected lines.
    pub examples: Vec<BadLine>,
}

impl ImportReport {
    pub(crate) fn bad(&mut self, file: &str, line: u64, reason: &str, text: &str) {
        self.bad_lines += 1;
        if self.examples.len() < MAX_EXAMPLES {
            let mut text = text.trim().to_string();
            if text.len() > 200 {
                let mut cut = 200;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            self.examples.push(BadLine {
                file: file.to_string(),
                line,
                reason: reason.to_string(),
                text,
            });
        }
    }

    /// Adds another report's counts and examples to this one.
    pub fn merge(&mut self, other: ImportReport) {
        self.files += other.files;
        self.lines += other.lines;
        self.entries += other.entries;
        self.ignored += other.ignored;
        self.bad_lines += other.bad_lines;
        for ex in other.examples {
            if self.examples.len() < MAX_EXAMPLES {
                self.examples.push(ex);
            }
        }
    }
}

/// What one line of a list turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// Nothing to add (comment, blank, unsupported-but-valid rule).
    Ignore,
    /// One or more names (hosts files may list several on a line).
    Names(Vec<&'a str>),
    /// A single name (the common case, no allocation).
    Name(&'a str),
    Bad(&'static str),
}

fn strip_hash_comment(line: &str) -> &str {
    match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    }
}

const HOSTS_IGNORED: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
    "0.0.0.0",
];

/// Parses one line of a list in the given (non-`Auto`) format.
pub(crate) fn parse_line(format: ListFormat, line: &str) -> Line<'_> {
    match format {
        ListFormat::Plain | ListFormat::Auto => {
            let body = strip_hash_comment(line).trim();
            if body.is_empty() {
                return Line::Ignore;
            }
            let mut tokens = body.split_whitespace();
            let first = tokens.next().unwrap_or("");
            if tokens.next().is_some() {
                return Line::Bad("more than one name on the line");
            }
            Line::Name(first)
        }
        ListFormat::Hosts => {
            let body = strip_hash_comment(line).trim();
            if body.is_empty() {
                return Line::Ignore;
            }
            let mut tokens = body.split_whitespace();
            let ip = tokens.next().unwrap_or("");
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Line::Bad("hosts line does not start with an IP address");
            }
            let names: Vec<&str> = tokens
                .filter(|n| !HOSTS_IGNORED.contains(&n.to_ascii_lowercase().as_str()))
                .collect();
            if names.is_empty() {
                if body.split_whitespace().count() == 1 {
                    return Line::Bad("hosts line without a name");
                }
                return Line::Ignore;
            }
            if names.len() == 1 {
                return Line::Name(names[0]);
            }
            Line::Names(names)
        }
        ListFormat::Adblock => {
            let body = line.trim();
            if body.is_empty() || body.starts_with('!') || body.starts_with('[') {
                return Line::Ignore;
            }
            if body.starts_with("@@") || body.contains("##") || body.contains("#@#") {
                return Line::Ignore;
            }
            let Some(rule) = body.strip_prefix("||") else {
                if body.starts_with('#') {
                    return Line::Ignore;
                }
                return Line::Bad("not an adblock ||name^ rule");
            };
            let (name, options) = match rule.find('^') {
                Some(i) => (&rule[..i], &rule[i + 1..]),
                None => match rule.find('$') {
                    Some(i) => (&rule[..i], &rule[i..]),
                    None => (rule, ""),
                },
            };
            let options = options.strip_prefix('|').unwrap_or(options);
            if !(options.is_empty() || options == "$important" || options == "$all") {
                // Rules limited to some request types or pages do not name a whole host.
                return Line::Ignore;
            }
            if name.contains(['/', '*']) {
                return Line::Ignore;
            }
            Line::Name(name)
        }
    }
}

/// Guesses the format of a list from its first meaningful lines.
pub fn detect_format(sample: &[u8]) -> ListFormat {
    let text = String::from_utf8_lossy(sample);
    let mut hosts = 0;
    let mut adblock = 0;
    let mut plain = 0;
    for line in text.lines().take(2000) {
        let t = line.trim();
        if t.starts_with("[Adblock") || t.starts_with("||") || t.starts_with('!') {
            adblock += 1;
            continue;
        }
        let t = strip_hash_comment(t).trim();
        if t.is_empty() {
            continue;
        }
        let mut tokens = t.split_whitespace();
        let first = tokens.next().unwrap_or("");
        if tokens.next().is_some() && first.parse::<std::net::IpAddr>().is_ok() {
            hosts += 1;
        } else {
            plain += 1;
        }
    }
    if adblock > hosts && adblock > plain / 4 {
        ListFormat::Adblock
    } else if hosts > plain {
        ListFormat::Hosts
    } else {
        ListFormat::Plain
    }
}

/// Reads `reader` line by line (bytes, tolerating CRLF and invalid UTF-8, which is
/// reported as a bad line) and calls `f(line_number, line)` for each.
/// The most a list file may hold (UT1's largest, `adult/domains`, is about 100 MB).
pub const MAX_LIST_BYTES: u64 = 2 << 30;
/// Longer lines are reported as bad and skipped (no list needs them; a file without
/// newlines is not a list).
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// Why an index file given as a list is refused.
pub(crate) const INDEX_IS_NOT_A_LIST: &str = "this is a Hallpass catalog index, not a list \
    (give it to --catalog, or import the lists it was built from)";

/// Refuses what is plainly not a text list, from its first bytes: an index file, binary
/// data (a NUL byte) or text that is not UTF-8.
pub(crate) fn sniff(sample: &[u8], file: &str) -> Result<(), CatalogError> {
    let refuse = |detail: String| {
        Err(CatalogError::NotAList {
            source_name: file.to_string(),
            detail,
        })
    };
    if sample.starts_with(&crate::index::MAGIC) {
        return refuse(INDEX_IS_NOT_A_LIST.into());
    }
    if let Some(at) = sample.iter().position(|&b| b == 0) {
        return refuse(format!(
            "binary data (a NUL byte at offset {at}), not a text list"
        ));
    }
    match std::str::from_utf8(sample) {
        // A sample may end in the middle of a character.
        Err(e) if e.error_len().is_some() => refuse(format!(
            "not UTF-8 text (invalid byte at offset {}); convert it first (iconv -t UTF-8) \
             if it is a list",
            e.valid_up_to()
        )),
        _ => Ok(()),
    }
}

/// Calls `f` with every line (number from 1, text without the line ending). Refuses
/// binary input (see [`sniff`]; a NUL byte on any line) and more than
/// [`MAX_LIST_BYTES`]; lines over [`MAX_LINE_BYTES`] and lines that are not UTF-8 are
/// reported as bad and skipped.
pub(crate) fn for_each_line<R: BufRead>(
    mut reader: R,
    file: &str,
    report: &mut ImportReport,
    mut f: impl FnMut(u64, &str, &mut ImportReport),
) -> Result<(), CatalogError> {
    let io = |e| CatalogError::io(file, e);
    sniff(reader.fill_buf().map_err(io)?, file)?;
    let too_large = || CatalogError::ListTooLarge {
        source_name: file.to_string(),
        limit: MAX_LIST_BYTES,
    };
    let mut buf = Vec::with_capacity(256);
    let mut n = 0u64;
    let mut total = 0u64;
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if read == 0 {
            break;
        }
        total += read as u64;
        n += 1;
        report.lines += 1;
        if buf.len() > MAX_LINE_BYTES && !buf.ends_with(b"\n") {
            total += skip_line(&mut reader, MAX_LIST_BYTES.saturating_sub(total)).map_err(io)?;
            if total > MAX_LIST_BYTES {
                return Err(too_large());
            }
            let start = String::from_utf8_lossy(&buf[..80]);
            report.bad(file, n, "line longer than 64 KiB", &start);
            continue;
        }
        if total > MAX_LIST_BYTES {
            return Err(too_large());
        }
        if buf.contains(&0) {
            return Err(CatalogError::NotAList {
                source_name: file.to_string(),
                detail: format!("binary data (a NUL byte) on line {n}, not a text list"),
            });
        }
        let mut line = buf.as_slice();
        line = line.strip_suffix(b"\n").unwrap_or(line);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        if n == 1 {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        match std::str::from_utf8(line) {
            Ok(text) => f(n, text, report),
            Err(_) => {
                let lossy = String::from_utf8_lossy(line);
                report.bad(file, n, "line is not UTF-8", &lossy);
            }
        }
    }
    Ok(())
}

/// Reads past the rest of a line (its newline included), at most `limit + 1` bytes;
/// returns how many were read.
fn skip_line<R: BufRead>(reader: &mut R, limit: u64) -> std::io::Result<u64> {
    let mut skipped = 0u64;
    while skipped <= limit {
        let avail = reader.fill_buf()?;
        if avail.is_empty() {
            break;
        }
        if let Some(i) = avail.iter().position(|&b| b == b'\n') {
            reader.consume(i + 1);
            skipped += i as u64 + 1;
            break;
        }
        let len = avail.len();
        reader.consume(len);
        skipped += len as u64;
    }
    Ok(skipped)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(parse_line(ListFormat::Plain, " # c"), Line::Ignore);
        assert_eq!(
            parse_line(ListFormat::Plain, "a.com # c"),
            Line::Name("a.com")
        );
        assert_eq!(
            parse_line(ListFormat::Hosts, "0.0.0.0 a.com"),
            Line::Name("a.com")
        );
        assert_eq!(
            parse_line(ListFormat::Hosts, "127.0.0.1 localhost"),
            Line::Ignore
        );
        assert_eq!(
            parse_line(ListFormat::Hosts, "0.0.0.0 a.com b.com"),
            Line::Names(vec!["a.com", "b.com"])
        );
        assert!(matches!(
            parse_line(ListFormat::Hosts, "a.com"),
            Line::Bad(_)
        ));
        assert_eq!(
            parse_line(ListFormat::Adblock, "||ads.example^"),
            Line::Name("ads.example")
        );
        assert_eq!(
            parse_line(ListFormat::Adblock, "||ads.example^$third-party"),
            Line::Ignore
        );
        assert_eq!(parse_line(ListFormat::Adblock, "! comment"), Line::Ignore);
        assert_eq!(
            parse_line(ListFormat::Adblock, "example.com##.banner"),
            Line::Ignore
        );
    }

    #[test]
    fn detect() {
        assert_eq!(
            detect_format(b"# hosts\n0.0.0.0 a.com\n0.0.0.0 b.com\n"),
            ListFormat::Hosts
        );
        assert_eq!(
            detect_format(b"[Adblock Plus 2.0]\n||a.com^\n||b.com^\n"),
            ListFormat::Adblock
        );
        assert_eq!(detect_format(b"a.com\nb.com\n"), ListFormat::Plain);
    }
}
