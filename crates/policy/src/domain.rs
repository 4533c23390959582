//! Host name helpers for the hot path: lower-casing into a stack buffer and walking a
//! host's label suffixes, so domain rules match subdomains without allocating.

/// Longest host we match on; DNS names are at most 253 characters.
const MAX_HOST: usize = 255;

/// A lower-cased copy of a host, without a trailing dot, held on the stack.
pub(crate) struct HostBuf {
    buf: [u8; MAX_HOST],
    len: usize,
}

impl HostBuf {
    /// `None` for hosts too long to be DNS names: they match no domain rule (category
    /// rules and defaults still apply).
    pub(crate) fn new(host: &str) -> Option<Self> {
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.len() > MAX_HOST {
            return None;
        }
        let mut buf = [0u8; MAX_HOST];
        for (dst, src) in buf.iter_mut().zip(host.bytes()) {
            *dst = src.to_ascii_lowercase();
        }
        Some(Self {
            buf,
            len: host.len(),
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        // Lower-casing ASCII bytes keeps valid UTF-8 valid, so this never falls back.
        self.buf
            .get(..self.len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

/// The host itself, then each parent domain: `a.b.c` -> `a.b.c`, `b.c`, `c`.
pub(crate) fn suffixes(host: &str) -> impl Iterator<Item = &str> {
    std::iter::once(host).chain(host.match_indices('.').map(move |(i, _)| &host[i + 1..]))
}

/// `host` is `domain` or a subdomain of it (ASCII case-insensitive).
pub(crate) fn domain_matches(host: &str, domain: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if host.len() < domain.len() || domain.is_empty() {
        return false;
    }
    let cut = host.len() - domain.len();
    let tail_ok = host
        .get(cut..)
        .is_some_and(|t| t.eq_ignore_ascii_case(domain));
    tail_ok && (cut == 0 || host.as_bytes().get(cut - 1) == Some(&b'.'))
}

/// Sorted domain list lookup: does any suffix of `host` appear in `sorted`?
pub(crate) fn any_suffix_in(host: &str, sorted: &[Box<str>]) -> bool {
    !sorted.is_empty()
        && suffixes(host).any(|s| sorted.binary_search_by(|d| d.as_ref().cmp(s)).is_ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn suffix_walk_and_matching() {
        let v: Vec<&str> = suffixes("a.b.example.com").collect();
        assert_eq!(
            v,
            ["a.b.example.com", "b.example.com", "example.com", "com"]
        );
        assert!(domain_matches("WWW.Example.com.", "example.com"));
        assert!(!domain_matches("badexample.com", "example.com"));
        let list: Vec<Box<str>> = vec!["example.com".into(), "hotmail.com".into()];
        assert!(any_suffix_in("mail.hotmail.com", &list));
        assert!(!any_suffix_in("nothotmail.com", &list));
        assert_eq!(
            HostBuf::new("MiXeD.Org.")
                .map(|h| h.as_str().to_owned())
                .as_deref(),
            Some("mixed.org")
        );
    }
}
