//! Search engines as the proxy sees them inside an inspected (or plain HTTP) request
//! (pure): which engine a host is, safe search enforced by the engines' own URL
//! parameters (Google `safe=active`, Bing `adlt=strict`, DuckDuckGo `kp=1`) and
//! YouTube's `YouTube-Restrict` header, and the search terms a request carries, decoded,
//! for the content record. Applying them to a request is [`enforce_safe_search`].

use hallpass_policy::{SafeSearch, YouTubeMode};

/// The engines the proxy knows; also what `inspect = ["search_engines"]` inspects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Google,
    Bing,
    DuckDuckGo,
    YouTube,
    Yahoo,
    Ecosia,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Google => "google",
            Engine::Bing => "bing",
            Engine::DuckDuckGo => "duckduckgo",
            Engine::YouTube => "youtube",
            Engine::Yahoo => "yahoo",
            Engine::Ecosia => "ecosia",
        }
    }
}

/// The engine `host` (normalised: lower case, no trailing dot) belongs to.
pub fn engine_of(host: &str) -> Option<Engine> {
    let bare = host.strip_prefix("www.").unwrap_or(host);
    // google.com, google.co.uk, google.de...: the registrable name is `google`.
    if let Some(rest) = bare.strip_prefix("google.")
        && !rest.is_empty()
        && rest.split('.').count() <= 2
        && rest.split('.').all(|label| (2..=3).contains(&label.len()))
    {
        return Some(Engine::Google);
    }
    match bare {
        "bing.com" | "cn.bing.com" => Some(Engine::Bing),
        "duckduckgo.com" | "html.duckduckgo.com" | "lite.duckduckgo.com" => {
            Some(Engine::DuckDuckGo)
        }
        "youtube.com"
        | "m.youtube.com"
        | "music.youtube.com"
        | "youtube-nocookie.com"
        | "youtubei.googleapis.com"
        | "youtube.googleapis.com" => Some(Engine::YouTube),
        "search.yahoo.com" => Some(Engine::Yahoo),
        "ecosia.org" => Some(Engine::Ecosia),
        _ => None,
    }
}

/// The query to send instead of `query` so the engine's safe search is on for a group
/// with `settings`; `None` when the request needs no change.
pub fn enforce_query(
    engine: Engine,
    settings: &SafeSearch,
    path: &str,
    query: Option<&str>,
) -> Option<String> {
    let (key, value) = match engine {
        Engine::Google if settings.google && is_search_path(engine, path, query) => {
            ("safe", "active")
        }
        Engine::Bing if settings.bing && is_search_path(engine, path, query) => ("adlt", "strict"),
        Engine::DuckDuckGo if settings.duckduckgo && is_search_path(engine, path, query) => {
            ("kp", "1")
        }
        _ => return None,
    };
    let wanted = format!("{key}={value}");
    let pairs: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .collect();
    let mut kept: Vec<&str> = pairs
        .iter()
        .copied()
        // Decoded: `saf%65=off` is `safe=off` to the engine.
        .filter(|pair| form_decode(pair.split('=').next().unwrap_or("")) != key)
        .collect();
    if kept.len() + 1 == pairs.len() && pairs.contains(&wanted.as_str()) {
        return None;
    }
    kept.push(&wanted);
    Some(kept.join("&"))
}

/// `YouTube-Restrict`'s value for a group with `settings` on a YouTube host.
pub fn youtube_restrict(engine: Engine, settings: &SafeSearch) -> Option<&'static str> {
    match (engine, settings.youtube) {
        (Engine::YouTube, YouTubeMode::Strict) => Some("Strict"),
        (Engine::YouTube, YouTubeMode::Moderate) => Some("Moderate"),
        _ => None,
    }
}

/// Sets `engine`'s safe search on `request` as `settings` ask: its parameter in the
/// query (the origin sees it; the block page and records show the URL as asked) or
/// YouTube's header. Whether anything changed.
pub fn enforce_safe_search<B>(
    engine: Engine,
    settings: &hallpass_policy::SafeSearch,
    request: &mut http::Request<B>,
    target: &mut crate::target::WebTarget,
) -> bool {
    let mut changed = false;
    if let Some(value) = youtube_restrict(engine, settings) {
        request
            .headers_mut()
            .insert("youtube-restrict", http::HeaderValue::from_static(value));
        changed = true;
    }
    if let Some(query) = enforce_query(engine, settings, &target.path, target.query.as_deref()) {
        // The path as the client sent it (only the query changes), in the form it came.
        let path = request.uri().path().to_string();
        let uri = match (request.uri().scheme_str(), request.uri().authority()) {
            (Some(scheme), Some(authority)) => format!("{scheme}://{authority}{path}?{query}"),
            _ => format!("{path}?{query}"),
        };
        if let Ok(uri) = uri.parse() {
            *request.uri_mut() = uri;
            target.query = Some(query);
            changed = true;
        }
    }
    changed
}

/// Whether `path` is where `engine` answers searches (where its parameters matter).
fn is_search_path(engine: Engine, path: &str, query: Option<&str>) -> bool {
    match engine {
        Engine::Google | Engine::Bing => path.contains("search") || param(query, "q").is_some(),
        Engine::DuckDuckGo => path == "/" || path.starts_with("/html") || path.starts_with("/lite"),
        _ => false,
    }
}

/// The search terms of a request to `engine` (decoded, trimmed), if it is a search.
pub fn search_terms(engine: Engine, path: &str, query: Option<&str>) -> Option<String> {
    let key = match engine {
        Engine::YouTube if path.starts_with("/results") => "search_query",
        Engine::YouTube => return None,
        Engine::Yahoo => "p",
        Engine::Google | Engine::Bing if !is_search_path(engine, path, query) => return None,
        _ => "q",
    };
    let terms = param(query, key)?;
    let terms = terms.trim();
    (!terms.is_empty()).then(|| terms.chars().take(MAX_TERMS_CHARS).collect())
}

/// Search terms longer than this are cut (they are content, not a document).
const MAX_TERMS_CHARS: usize = 500;

/// The first value of `key` in a query string, form-decoded.
fn param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (form_decode(k) == key).then(|| form_decode(v))
    })
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; bytes
/// that are not UTF-8 become U+FFFD.
pub fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: SafeSearch = SafeSearch {
        google: true,
        youtube: YouTubeMode::Strict,
        bing: true,
        duckduckgo: true,
    };

    #[test]
    fn engines_by_host() {
        assert_eq!(engine_of("www.google.com"), Some(Engine::Google));
        assert_eq!(engine_of("www.google.co.uk"), Some(Engine::Google));
        assert_eq!(engine_of("google.de"), Some(Engine::Google));
        assert_eq!(engine_of("google.example.org"), None);
        assert_eq!(engine_of("mail.google.com"), None);
        assert_eq!(engine_of("www.bing.com"), Some(Engine::Bing));
        assert_eq!(engine_of("duckduckgo.com"), Some(Engine::DuckDuckGo));
        assert_eq!(engine_of("m.youtube.com"), Some(Engine::YouTube));
        assert_eq!(engine_of("notgoogle.com"), None);
    }

    #[test]
    fn safe_search_parameters_are_forced() {
        let google = |q| enforce_query(Engine::Google, &ALL, "/search", q);
        assert_eq!(
            google(Some("q=cats")).as_deref(),
            Some("q=cats&safe=active")
        );
        assert_eq!(
            google(Some("q=cats&safe=off&hl=en")).as_deref(),
            Some("q=cats&hl=en&safe=active")
        );
        assert_eq!(google(Some("q=cats&safe=active")), None);
        assert_eq!(
            google(Some("safe=active&safe=off")).as_deref(),
            Some("safe=active")
        );
        assert_eq!(google(None).as_deref(), Some("safe=active"));
        assert_eq!(
            google(Some("saf%65=off&q=x")).as_deref(),
            Some("q=x&safe=active")
        );
        assert_eq!(
            enforce_query(Engine::Bing, &ALL, "/search", Some("q=x&adlt=off")).as_deref(),
            Some("q=x&adlt=strict")
        );
        assert_eq!(
            enforce_query(Engine::DuckDuckGo, &ALL, "/", Some("q=x")).as_deref(),
            Some("q=x&kp=1")
        );
        // Not a search, or not asked for by the group's settings.
        assert_eq!(enforce_query(Engine::Google, &ALL, "/logo.png", None), None);
        let off = SafeSearch::default();
        assert_eq!(
            enforce_query(Engine::Google, &off, "/search", Some("q=x")),
            None
        );
        assert_eq!(youtube_restrict(Engine::YouTube, &ALL), Some("Strict"));
        assert_eq!(youtube_restrict(Engine::YouTube, &off), None);
        assert_eq!(youtube_restrict(Engine::Google, &ALL), None);
    }

    #[test]
    fn search_terms_are_decoded() {
        let terms = |engine, path, q| search_terms(engine, path, Some(q));
        assert_eq!(
            terms(Engine::Google, "/search", "q=how+to+make+friends&hl=en").as_deref(),
            Some("how to make friends")
        );
        assert_eq!(
            terms(Engine::Bing, "/search", "q=caf%C3%A9%20au%20lait").as_deref(),
            Some("café au lait")
        );
        assert_eq!(
            terms(Engine::YouTube, "/results", "search_query=lego").as_deref(),
            Some("lego")
        );
        assert_eq!(terms(Engine::YouTube, "/watch", "v=abc"), None);
        assert_eq!(terms(Engine::Google, "/search", "q=+++"), None);
        assert_eq!(
            terms(Engine::Yahoo, "/search", "p=x%ZZ").as_deref(),
            Some("x%ZZ")
        );
        assert_eq!(form_decode("%ff%"), "\u{fffd}%");
    }
}
