//! What a client asks the proxy for, parsed and normalised (pure): the authority of a
//! `CONNECT`, the host, port and path of an absolute-form URL. Decisions and records
//! use the normal form, so `/%70orn/../x` and `/x` are one path to the policy and the
//! URL lists, as they are to the origin.

use std::fmt::Write as _;
use std::net::IpAddr;

/// Longest host name accepted (RFC 1035's 253 characters, without a trailing dot).
const MAX_HOST_LEN: usize = 253;

/// Why a request target was refused (the client gets `400` with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the CONNECT target must be HOST:PORT, got {0:?}")]
    ConnectForm(String),
    #[error("the port {0:?} is not a number from 1 to 65535")]
    Port(String),
    #[error("{0:?} is not a host name or IP address")]
    Host(String),
    #[error("only http:// URLs can be forwarded (https goes through CONNECT), got {0:?}")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
}

/// A host and port, the host in its normal form (lower case, no trailing dot, IPv6
/// without brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// `host:port`, with brackets around an IPv6 address.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parses the authority-form target of `CONNECT` (RFC 9110 §9.3.6): `HOST:PORT`, the port
/// required, `[v6]:PORT` for IPv6.
pub fn parse_connect(authority: &str) -> Result<HostPort, TargetError> {
    let (host, port) =
        split_host_port(authority).ok_or_else(|| TargetError::ConnectForm(truncate(authority)))?;
    let port = parse_port(port)?;
    Ok(HostPort {
        host: normalise_host(host)?,
        port,
    })
}

/// An absolute-form `http://` request target, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebTarget {
    pub host: String,
    pub port: u16,
    /// The normalised path, starting with `/`, without the query.
    pub path: String,
    /// The query after `?`, as sent (it is content, never metadata).
    pub query: Option<String>,
    /// Inside an inspected tunnel (`https://`); otherwise `http://`.
    pub https: bool,
}

impl WebTarget {
    /// `host/path`: what a record names (no scheme, port 80 left out, no query).
    pub fn record_target(&self) -> String {
        format!("{}{}", self.authority(), self.path)
    }

    /// Path and query, as the policy's URL prefixes and the catalog's lists read it.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }

    /// `host[:port]` as a `Host` header and a URL write it: the port only when not the
    /// scheme's (80, or 443 for https), an IPv6 address in brackets.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.https { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The full URL (for the content record and the block page).
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority(), self.path_and_query())
    }

    /// The extension of the last path segment (`exe` of `/dl/setup.EXE`), if it has one
    /// of 1 to 10 letters and digits.
    pub fn extension(&self) -> Option<&str> {
        extension_of(&self.path)
    }
}

/// Parses an absolute-form request target (`http://host[:port]/path?query`).
pub fn parse_absolute(uri: &http::Uri) -> Result<WebTarget, TargetError> {
    match uri.scheme_str() {
        Some(scheme) if scheme.eq_ignore_ascii_case("http") => {}
        Some(other) => return Err(TargetError::Scheme(truncate(other))),
        None => return Err(TargetError::NoHost),
    }
    let authority = uri.authority().ok_or(TargetError::NoHost)?;
    let host = normalise_host(authority.host())?;
    let port = authority.port_u16().unwrap_or(80);
    if port == 0 {
        return Err(TargetError::Port("0".to_string()));
    }
    Ok(WebTarget {
        host,
        port,
        path: normalise_path(uri.path()),
        query: uri.query().map(str::to_string),
        https: false,
    })
}

/// Splits `host:port` / `[v6]:port`; `None` without a port.
fn split_host_port(text: &str) -> Option<(&str, &str)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host, port));
    }
    let (host, port) = text.rsplit_once(':')?;
    // An unbracketed IPv6 address is ambiguous: refuse it.
    if host.contains(':') {
        return None;
    }
    Some((host, port))
}

fn parse_port(text: &str) -> Result<u16, TargetError> {
    match text.parse::<u16>() {
        Ok(port) if port != 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(TargetError::Port(truncate(text))),
    }
}

/// Lower case, no trailing dot, brackets removed; letters, digits, `-`, `_` and dots
/// only (IDNs arrive as punycode from clients), or an IP address.
pub fn normalise_host(host: &str) -> Result<String, TargetError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip.to_canonical().to_string());
    }
    let name = bare.strip_suffix('.').unwrap_or(bare);
    let valid = !name.is_empty()
        && name.len() <= MAX_HOST_LEN
        && name
            .split('.')
            .all(|label| !label.is_empty() && label.len() <= 63)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        return Err(TargetError::Host(truncate(host)));
    }
    Ok(name.to_ascii_lowercase())
}

/// The path as the origin resolves it: percent-escapes of unreserved characters decoded
/// (`%70` is `p`), other escapes in upper case, a stray `%` escaped, dot segments removed (RFC 3986 §5.2.4),
/// repeated slashes collapsed. Always starts with `/`.
pub fn normalise_path(path: &str) -> String {
    let decoded = decode_unreserved(path);
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = decoded.ends_with('/');
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    // `/a/..` and `/a/.` name a directory.
    if decoded.ends_with("/..") || decoded.ends_with("/.") || decoded == "." || decoded == ".." {
        trailing_slash = true;
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    out
}

fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(i + 1).and_then(|b| hex_value(*b)),
                bytes.get(i + 2).and_then(|b| hex_value(*b)),
            )
        {
            let value = high * 16 + low;
            if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(value));
            } else {
                let _ = write!(out, "%{value:02X}");
            }
            i += 3;
            continue;
        }
        // A '%' that starts no escape is written as one (`%25`), so that a second pass
        // cannot decode what the first one assembled (`%%32%65`).
        if bytes[i] == b'%' {
            out.push_str("%25");
            i += 1;
            continue;
        }
        // `path` is a str and '%' is ASCII, so everything up to the next '%' is whole
        // characters.
        let next = path[i..].find('%').map_or(path.len(), |at| at + i);
        out.push_str(&path[i..next]);
        i = next;
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The extension of the last segment of `path`, if it looks like one.
pub fn extension_of(path: &str) -> Option<&str> {
    let last = path.rsplit('/').next()?;
    let (stem, extension) = last.rsplit_once('.')?;
    let plausible = !stem.is_empty()
        && (1..=10).contains(&extension.len())
        && extension.bytes().all(|b| b.is_ascii_alphanumeric());
    plausible.then_some(extension)
}

/// Input echoed in an error, cut to a readable length.
fn truncate(text: &str) -> String {
    text.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn web(url: &str) -> WebTarget {
        parse_absolute(&url.parse::<http::Uri>().unwrap()).unwrap()
    }

    #[test]
    fn connect_targets() {
        let t = parse_connect("WWW.Example.COM.:443").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("www.example.com", 443));
        let t = parse_connect("[2001:db8::1]:8443").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("2001:db8::1", 8443));
        assert_eq!(t.authority(), "[2001:db8::1]:8443");
        assert_eq!(parse_connect("192.0.2.1:443").unwrap().host, "192.0.2.1");
        for bad in [
            "example.com",
            "example.com:",
            "example.com:0",
            "example.com:65536",
            "example.com:+443",
            "2001:db8::1:443",
            "exa mple.com:443",
            ":443",
            "a..b:443",
            "[::1:443",
        ] {
            assert!(parse_connect(bad).is_err(), "{bad} was accepted");
        }
        let long = format!("{}.com:443", "a".repeat(260));
        assert!(parse_connect(&long).is_err());
    }

    #[test]
    fn absolute_urls() {
        let t = web("http://Www.Example.com:8080/A/b.EXE?x=1&y=2");
        assert_eq!(t.host, "www.example.com");
        assert_eq!(t.port, 8080);
        assert_eq!(t.path, "/A/b.EXE");
        assert_eq!(t.query.as_deref(), Some("x=1&y=2"));
        assert_eq!(t.record_target(), "www.example.com:8080/A/b.EXE");
        assert_eq!(t.extension(), Some("EXE"));
        assert_eq!(t.url(), "http://www.example.com:8080/A/b.EXE?x=1&y=2");
        let t = web("http://example.com");
        assert_eq!((t.path.as_str(), t.port), ("/", 80));
        assert_eq!(t.authority(), "example.com");
        let t = web("http://[2001:DB8::1]/x");
        assert_eq!(
            (t.host.as_str(), t.authority()),
            ("2001:db8::1", "[2001:db8::1]".into())
        );
        assert_eq!(t.url(), "http://[2001:db8::1]/x");
        assert_eq!(t.record_target(), "[2001:db8::1]/x");
        assert_eq!(web("http://[::1]:8080/").authority(), "[::1]:8080");
        assert_eq!(web("http://example.com").record_target(), "example.com/");
        assert!(parse_absolute(&"https://example.com/".parse().unwrap()).is_err());
        assert!(parse_absolute(&"/relative".parse().unwrap()).is_err());
    }

    #[test]
    fn paths_are_normalised() {
        for (raw, normal) in [
            ("/", "/"),
            ("", "/"),
            ("/a//b", "/a/b"),
            ("/a/./b/../c", "/a/c"),
            ("/../../etc", "/etc"),
            ("/%70orn/", "/porn/"),
            ("/a%2fb", "/a%2Fb"),
            ("/a%2Fb", "/a%2Fb"),
            ("/100%", "/100%25"),
            ("/%zz", "/%25zz"),
            ("/%%32%65%2e/x", "/%252e./x"),
            ("/dir/..", "/"),
            ("/a/b/.", "/a/b/"),
            ("/é/ü", "/é/ü"),
        ] {
            assert_eq!(normalise_path(raw), normal, "{raw}");
        }
    }

    #[test]
    fn extensions() {
        assert_eq!(extension_of("/x/setup.exe"), Some("exe"));
        assert_eq!(extension_of("/x.tar.gz"), Some("gz"));
        assert_eq!(extension_of("/x/.bashrc"), None);
        assert_eq!(extension_of("/x.dir/file"), None);
        assert_eq!(extension_of("/file."), None);
        assert_eq!(extension_of("/a.b c"), None);
    }

    proptest::proptest! {
        /// Normalising never panics, always gives an absolute path, and is idempotent.
        #[test]
        fn normalise_is_idempotent(path in "[/a-z.%0-9A-F]{0,40}") {
            let once = normalise_path(&path);
            proptest::prop_assert!(once.starts_with('/'));
            proptest::prop_assert_eq!(normalise_path(&once), once.clone());
        }

        #[test]
        fn connect_parsing_never_panics(text in "\\PC{0,60}") {
            let _ = parse_connect(&text);
        }
    }
}
