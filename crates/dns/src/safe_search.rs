//! Safe search by DNS: which search-engine host names are answered with a CNAME to the
//! engine's enforced-safe-search host, and the DNS canaries that tell browsers and
//! operating systems to turn off their own encrypted resolvers.
//!
//! Pure functions over lowercase names without the trailing dot (as given to
//! [`crate::QueryFilter::check`]); the integrator's filter calls them for the groups the
//! policy says.
//!
//! Sources: Google "Lock SafeSearch for devices and networks" (every Google search
//! domain → `forcesafesearch.google.com`); Google "Manage YouTube settings" (five hosts →
//! `restrict.youtube.com` / `restrictmoderate.youtube.com`); Microsoft "Block adult
//! content with SafeSearch" (`www.bing.com` → `strict.bing.com`); DuckDuckGo's safe search
//! help (→ `safe.duckduckgo.com`).

/// Google's enforced SafeSearch host.
pub const GOOGLE_TARGET: &str = "forcesafesearch.google.com";
/// YouTube Restricted Mode, strict.
pub const YOUTUBE_STRICT_TARGET: &str = "restrict.youtube.com";
/// YouTube Restricted Mode, moderate.
pub const YOUTUBE_MODERATE_TARGET: &str = "restrictmoderate.youtube.com";
/// Bing strict SafeSearch.
pub const BING_TARGET: &str = "strict.bing.com";
/// DuckDuckGo safe search.
pub const DUCKDUCKGO_TARGET: &str = "safe.duckduckgo.com";

/// The host names YouTube honours Restricted Mode by DNS for.
pub const YOUTUBE_HOSTS: &[&str] = &[
    "www.youtube.com",
    "m.youtube.com",
    "youtubei.googleapis.com",
    "youtube.googleapis.com",
    "www.youtube-nocookie.com",
];

/// Bing host names mapped to strict SafeSearch.
pub const BING_HOSTS: &[&str] = &["www.bing.com", "bing.com"];

/// DuckDuckGo host names mapped to safe search.
pub const DUCKDUCKGO_HOSTS: &[&str] = &[
    "duckduckgo.com",
    "www.duckduckgo.com",
    "start.duckduckgo.com",
];

/// Names whose NXDOMAIN tells clients to keep using the network's resolver: Firefox's
/// DoH canary and Apple's iCloud Private Relay.
pub const CANARIES: &[&str] = &[
    "use-application-dns.net",
    "mask.icloud.com",
    "mask-h2.icloud.com",
];

/// YouTube Restricted Mode level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum YouTubeMode {
    #[default]
    Off,
    Moderate,
    Strict,
}

/// Which engines to force into safe search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SafeSearchSettings {
    pub google: bool,
    pub youtube: YouTubeMode,
    pub bing: bool,
    pub duckduckgo: bool,
}

impl SafeSearchSettings {
    /// Everything on, YouTube strict.
    pub const STRICT: SafeSearchSettings = SafeSearchSettings {
        google: true,
        youtube: YouTubeMode::Strict,
        bing: true,
        duckduckgo: true,
    };
}

/// The safe-search target for `qname` under `settings`, or `None` when the name is not
/// a search host (or that engine is not enforced).
pub fn target_for(qname: &str, settings: &SafeSearchSettings) -> Option<&'static str> {
    if settings.google && is_google_search_host(qname) {
        return Some(GOOGLE_TARGET);
    }
    match settings.youtube {
        YouTubeMode::Off => {}
        mode => {
            if YOUTUBE_HOSTS.contains(&qname) {
                return Some(if mode == YouTubeMode::Strict {
                    YOUTUBE_STRICT_TARGET
                } else {
                    YOUTUBE_MODERATE_TARGET
                });
            }
        }
    }
    if settings.bing && BING_HOSTS.contains(&qname) {
        return Some(BING_TARGET);
    }
    if settings.duckduckgo && DUCKDUCKGO_HOSTS.contains(&qname) {
        return Some(DUCKDUCKGO_TARGET);
    }
    None
}

/// True for `use-application-dns.net`, `mask.icloud.com` and `mask-h2.icloud.com`.
pub fn is_canary(qname: &str) -> bool {
    CANARIES.contains(&qname)
}

/// True for Google's search domains: `google.<suffix>` and `www.google.<suffix>`, where
/// the suffix has the shape of every entry in Google's supported-domains list: `com`,
/// `cat`, a two-letter country code, `co.<cc>` or `com.<cc>`.
pub fn is_google_search_host(qname: &str) -> bool {
    let rest = qname.strip_prefix("www.").unwrap_or(qname);
    let Some(suffix) = rest.strip_prefix("google.") else {
        return false;
    };
    let is_cc = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_lowercase());
    match suffix.split_once('.') {
        None => suffix == "com" || suffix == "cat" || is_cc(suffix),
        Some((second, cc)) => (second == "co" || second == "com") && is_cc(cc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_domains() {
        for h in [
            "google.com",
            "www.google.com",
            "www.google.co.uk",
            "google.co.uk",
            "www.google.de",
            "www.google.com.au",
            "google.cat",
        ] {
            assert!(is_google_search_host(h), "{h}");
        }
        for h in [
            "mail.google.com",
            "google.com.evil.net",
            "googlecom",
            "google.example.com",
            "forcesafesearch.google.com",
            "www.google.co.uk.x",
            "google.",
        ] {
            assert!(!is_google_search_host(h), "{h}");
        }
    }

    #[test]
    fn targets() {
        let all = SafeSearchSettings::STRICT;
        assert_eq!(target_for("www.google.co.uk", &all), Some(GOOGLE_TARGET));
        assert_eq!(
            target_for("m.youtube.com", &all),
            Some(YOUTUBE_STRICT_TARGET)
        );
        let moderate = SafeSearchSettings {
            youtube: YouTubeMode::Moderate,
            ..Default::default()
        };
        assert_eq!(
            target_for("www.youtube-nocookie.com", &moderate),
            Some(YOUTUBE_MODERATE_TARGET)
        );
        assert_eq!(target_for("www.google.com", &moderate), None);
        assert_eq!(target_for("www.bing.com", &all), Some(BING_TARGET));
        assert_eq!(target_for("duckduckgo.com", &all), Some(DUCKDUCKGO_TARGET));
        assert_eq!(target_for("example.com", &all), None);
        assert_eq!(
            target_for("www.google.com", &SafeSearchSettings::default()),
            None
        );
    }

    #[test]
    fn canaries() {
        assert!(is_canary("use-application-dns.net"));
        assert!(is_canary("mask.icloud.com"));
        assert!(is_canary("mask-h2.icloud.com"));
        assert!(!is_canary("icloud.com"));
    }
}
