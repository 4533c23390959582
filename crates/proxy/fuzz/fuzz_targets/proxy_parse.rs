//! Arbitrary bytes through every parser the web proxy has of its own (hyper parses HTTP):
//! a tunnel's first bytes as a TLS ClientHello (the SNI peek), a `CONNECT` target, an
//! absolute URL and its path's normal form, and a search engine's query string (search
//! terms, safe search parameters). Never a panic; the normal form is idempotent and
//! starts with `/`; a forced safe search parameter is in the query it returns.
#![no_main]

use hallpass_policy::{SafeSearch, YouTubeMode};
use hallpass_proxy::search::{Engine, enforce_query, form_decode, search_terms};
use hallpass_proxy::sni::{MAX_HELLO_BYTES, peek};
use hallpass_proxy::target::{normalise_host, normalise_path, parse_absolute, parse_connect};
use libfuzzer_sys::fuzz_target;

const ENGINES: [Engine; 6] = [
    Engine::Google,
    Engine::Bing,
    Engine::DuckDuckGo,
    Engine::YouTube,
    Engine::Yahoo,
    Engine::Ecosia,
];

fuzz_target!(|data: &[u8]| {
    let _ = peek(&data[..data.len().min(MAX_HELLO_BYTES)]);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(target) = parse_connect(text) {
        // The normal form parses back to itself.
        assert_eq!(parse_connect(&target.authority()).as_ref(), Ok(&target));
    }
    let _ = normalise_host(text);
    let once = normalise_path(text);
    assert!(once.starts_with('/'));
    assert_eq!(normalise_path(&once), once);
    if let Ok(uri) = text.parse::<http::Uri>()
        && let Ok(target) = parse_absolute(&uri)
    {
        let _ = (target.url(), target.record_target(), target.extension());
    }
    let _ = form_decode(text);
    let all = SafeSearch {
        google: true,
        youtube: YouTubeMode::Strict,
        bing: true,
        duckduckgo: true,
    };
    let (path, query) = text.split_once('?').unwrap_or(("/search", text));
    for engine in ENGINES {
        let _ = search_terms(engine, path, Some(query));
        if let Some(forced) = enforce_query(engine, &all, path, Some(query)) {
            // Enforcing again changes nothing.
            assert_eq!(enforce_query(engine, &all, path, Some(&forced)), None);
        }
    }
});
