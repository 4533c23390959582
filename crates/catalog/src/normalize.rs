//! Normalisation of list entries (import side, may allocate) and of lookup targets
//! (query side, never allocates for ASCII input).
//!
//! One set of rules for both sides, after squidGuard: names are lower-cased, trailing
//! dots dropped, internationalised names turned into punycode, IP literals written in
//! their canonical form; for URLs the scheme, user info, port and fragment are dropped,
//! and a leading `www.`-style label (`www`, `web`, `ftp`, optionally followed by digits)
//! is removed from the host when a dot remains.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest host name we accept (RFC 1035 presentation form without the final dot).
pub const MAX_HOST_LEN: usize = 253;
/// Longest normalised URL entry we store.
pub const MAX_URL_ENTRY_LEN: usize = 4096;

/// Normalises one host (domain name or IP literal) from a list into `out`.
/// Returns a reason on failure, for the bad-line report.
pub(crate) fn normalize_host_into(raw: &str, out: &mut Vec<u8>) -> Result<(), &'static str> {
    out.clear();
    let s = raw.trim();
    if s.is_empty() {
        return Err("empty name");
    }
    if s.starts_with('[') || s.contains(':') {
        let inner = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        let addr: Ipv6Addr = inner.parse().map_err(|_| "invalid IPv6 address")?;
        out.extend_from_slice(addr.to_string().as_bytes());
        return Ok(());
    }
    let s = s.trim_end_matches('.');
    let s = s.strip_prefix("*.").unwrap_or(s);
    let s = s.strip_prefix('.').unwrap_or(s);
    if s.is_empty() {
        return Err("empty name");
    }
    if s.is_ascii() {
        out.extend(s.bytes().map(|b| b.to_ascii_lowercase()));
    } else {
        let ascii = idna::domain_to_ascii(s).map_err(|_| "invalid internationalised name")?;
        out.extend_from_slice(ascii.as_bytes());
    }
    if out.len() > MAX_HOST_LEN {
        return Err("name longer than 253 bytes");
    }
    if out.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
        let text = std::str::from_utf8(out).map_err(|_| "invalid IPv4 address")?;
        let addr: Ipv4Addr = text.parse().map_err(|_| "invalid IPv4 address")?;
        let canon = addr.to_string();
        out.clear();
        out.extend_from_slice(canon.as_bytes());
        return Ok(());
    }
    for label in out.split(|b| *b == b'.') {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > 63 {
            return Err("label longer than 63 bytes");
        }
        if !label
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
        {
            return Err("invalid character in name");
        }
    }
    Ok(())
}

/// Normalises a host, returning a new string (convenience for tests and small inputs).
pub fn normalize_host(raw: &str) -> Result<String, &'static str> {
    let mut out = Vec::new();
    normalize_host_into(raw, &mut out)?;
    String::from_utf8(out).map_err(|_| "invalid character in name")
}

/// The parts of a URL that matter for matching, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UrlParts<'a> {
    /// Host as written (not lower-cased), without brackets for IPv6, without port.
    pub host: &'a str,
    /// Path and query (starting with `/` or `?`, or empty), without fragment.
    pub rest: &'a str,
}

/// Splits a URL (with or without scheme) into host and path+query.
pub(crate) fn split_url(url: &str) -> UrlParts<'_> {
    let s = url.trim();
    let s = match s.find("://") {
        Some(i)
            if s[..i]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            &s[i + 3..]
        }
        _ => s,
    };
    let s = match s.find('#') {
        Some(i) => &s[..i],
        None => s,
    };
    let auth_end = s.find(['/', '?']).unwrap_or(s.len());
    let (authority, rest) = s.split_at(auth_end);
    let authority = match authority.rfind('@') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    let host = if let Some(inner) = authority.strip_prefix('[') {
        match inner.find(']') {
            Some(i) => &inner[..i],
            None => inner,
        }
    } else {
        match authority.find(':') {
            Some(i) => &authority[..i],
            None => authority,
        }
    };
    UrlParts { host, rest }
}

/// Removes a leading `www.`, `web.`, `ftp.` (optionally with digits: `www2.`) label,
/// as squidGuard does, when at least one dot remains afterwards.
pub(crate) fn strip_www(host: &[u8]) -> &[u8] {
    let Some(dot) = host.iter().position(|b| *b == b'.') else {
        return host;
    };
    let label = &host[..dot];
    let rest = &host[dot + 1..];
    let prefix_ok = [b"www".as_slice(), b"web", b"ftp"].iter().any(|p| {
        label.len() >= p.len()
            && label[..p.len()].eq_ignore_ascii_case(p)
            && label[p.len()..].iter().all(u8::is_ascii_digit)
    });
    if prefix_ok && rest.contains(&b'.') {
        rest
    } else {
        host
    }
}

/// Normalises a `urls` entry into `out`: `host/path` (host normalised, www-stripped,
/// lower case; path lower case without trailing slashes). Returns a reason on failure.
pub(crate) fn normalize_url_into(
    raw: &str,
    host_buf: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    out.clear();
    let parts = split_url(raw);
    if parts.host.is_empty() {
        return Err("URL without a host");
    }
    if parts.host.contains(char::is_whitespace) || parts.rest.contains(char::is_whitespace) {
        return Err("whitespace inside URL");
    }
    normalize_host_into(parts.host, host_buf)?;
    out.extend_from_slice(strip_www(host_buf));
    let rest = parts.rest.trim_end_matches('/');
    if !rest.is_empty() && !rest.starts_with('/') {
        // `host?query`: keep as is, the query is part of the prefix.
    }
    out.extend(rest.bytes().map(|b| b.to_ascii_lowercase()));
    if out.len() > MAX_URL_ENTRY_LEN {
        return Err("URL longer than 4096 bytes");
    }
    Ok(())
}

/// Result of preparing a lookup host in a stack buffer.
pub(crate) enum HostKey<'a> {
    /// A name (or something that is not an IP literal): matched with all its suffixes.
    Name(&'a [u8]),
    /// An IP literal: matched exactly.
    Ip(&'a [u8]),
    /// Not ASCII: must go through IDNA first (allocates).
    NeedsIdna,
    /// Empty or too long: matches nothing.
    Invalid,
}

struct StackWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl std::fmt::Write for StackWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Lower-cases `host` into `buf` (dropping one trailing dot) without allocating.
pub(crate) fn host_key<'a>(host: &str, buf: &'a mut [u8; 256]) -> HostKey<'a> {
    let bytes = host.as_bytes();
    let bytes = bytes.strip_suffix(b".").unwrap_or(bytes);
    if bytes.is_empty() {
        return HostKey::Invalid;
    }
    if !bytes.is_ascii() {
        return HostKey::NeedsIdna;
    }
    if bytes.len() > MAX_HOST_LEN {
        return HostKey::Invalid;
    }
    if bytes[0] == b'[' || bytes.contains(&b':') {
        let inner = bytes.strip_prefix(b"[").unwrap_or(bytes);
        let inner = inner.strip_suffix(b"]").unwrap_or(inner);
        let Ok(text) = std::str::from_utf8(inner) else {
            return HostKey::Invalid;
        };
        let Ok(addr) = text.parse::<Ipv6Addr>() else {
            return HostKey::Invalid;
        };
        let mut w = StackWriter {
            buf: &mut buf[..],
            len: 0,
        };
        if std::fmt::Write::write_fmt(&mut w, format_args!("{addr}")).is_err() {
            return HostKey::Invalid;
        }
        let len = w.len;
        return HostKey::Ip(&buf[..len]);
    }
    let n = bytes.len();
    let mut all_digits = true;
    for (dst, src) in buf[..n].iter_mut().zip(bytes) {
        *dst = src.to_ascii_lowercase();
        all_digits &= src.is_ascii_digit() || *src == b'.';
    }
    let key = &buf[..n];
    if all_digits {
        // Only a literal that parses as IPv4 is an IP; a malformed one matches as a name.
        if let Ok(text) = std::str::from_utf8(key)
            && text.parse::<Ipv4Addr>().is_ok()
        {
            return HostKey::Ip(key);
        }
    }
    HostKey::Name(key)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn hosts_normalise() {
        assert_eq!(normalize_host("Example.COM.").as_deref(), Ok("example.com"));
        assert_eq!(
            normalize_host("*.ads.example").as_deref(),
            Ok("ads.example")
        );
        assert_eq!(
            normalize_host("bücher.de").as_deref(),
            Ok("xn--bcher-kva.de")
        );
        assert_eq!(normalize_host("10.0.0.1").as_deref(), Ok("10.0.0.1"));
        assert!(normalize_host("10.0.0").is_err());
        assert!(normalize_host("300.1.1.1").is_err());
        assert_eq!(
            normalize_host("[2001:DB8::1]").as_deref(),
            Ok("2001:db8::1")
        );
        assert!(normalize_host("a..b").is_err());
        assert!(normalize_host("bad host").is_err());
        assert!(normalize_host(&"a".repeat(64)).is_err());
    }

    #[test]
    fn urls_split_and_normalise() {
        let p = split_url("HTTP://user:pw@WWW.Example.com:8080/A/b?c=d#frag");
        assert_eq!(p.host, "WWW.Example.com");
        assert_eq!(p.rest, "/A/b?c=d");
        let mut h = Vec::new();
        let mut o = Vec::new();
        normalize_url_into("http://www2.Example.com:80/Tools/Webmail/", &mut h, &mut o).unwrap();
        assert_eq!(o, b"example.com/tools/webmail");
        normalize_url_into("www.com/x", &mut h, &mut o).unwrap();
        assert_eq!(o, b"www.com/x");
        assert_eq!(split_url("[::1]:80/x").host, "::1");
    }
}
