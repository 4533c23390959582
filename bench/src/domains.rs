//! Synthetic, realistic-looking domain names for the catalog benchmarks: words and
//! syllables joined (sometimes with a hyphen or digits) under a weighted mix of TLDs,
//! deterministic for a given seed.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SYLLABLES: &[&str] = &[
    "ba", "be", "bi", "bo", "bu", "ca", "co", "cu", "da", "de", "di", "do", "fa", "fe", "fi", "fo",
    "ga", "ge", "go", "ha", "he", "hi", "ho", "ja", "jo", "ka", "ke", "ki", "ko", "la", "le", "li",
    "lo", "lu", "ma", "me", "mi", "mo", "mu", "na", "ne", "ni", "no", "nu", "pa", "pe", "pi", "po",
    "ra", "re", "ri", "ro", "ru", "sa", "se", "si", "so", "su", "ta", "te", "ti", "to", "tu", "va",
    "ve", "vi", "vo", "za", "zo", "an", "en", "in", "on", "ar", "er", "or", "al", "el", "il", "ol",
    "ex", "ix", "ox", "sta", "tra", "pro", "pla", "gro", "cla",
];

const WORDS: &[&str] = &[
    "online", "casino", "shop", "store", "news", "blog", "games", "play", "free", "best", "top",
    "web", "net", "cloud", "media", "video", "music", "photo", "live", "world", "city", "home",
    "market", "deal", "cash", "bet", "poker", "slots", "chat", "date", "love", "sport", "travel",
    "hotel", "tech", "soft", "app", "data", "host", "mail", "secure", "bank", "pay", "crypto",
    "coin", "trade", "health", "pharma", "shop", "fashion", "style", "auto", "car", "food",
    "pizza", "cafe", "book", "school", "learn", "kids", "team", "club", "fan", "hub", "zone",
    "land", "star", "sun", "moon", "blue", "red", "green", "gold", "silver", "fast", "smart",
    "easy", "direct", "global", "local", "digital", "studio", "lab", "works", "box",
];

const TLDS: &[(&str, u32)] = &[
    ("com", 45),
    ("net", 8),
    ("org", 6),
    ("info", 4),
    ("fr", 4),
    ("de", 4),
    ("co.uk", 4),
    ("ru", 3),
    ("io", 2),
    ("biz", 2),
    ("nl", 2),
    ("it", 2),
    ("es", 2),
    ("pl", 2),
    ("xyz", 2),
    ("online", 1),
    ("site", 1),
    ("top", 1),
    ("be", 1),
    ("ch", 1),
    ("com.br", 1),
    ("cz", 1),
    ("eu", 1),
    ("us", 1),
];

const SUBDOMAINS: &[&str] = &[
    "www", "m", "api", "cdn", "static", "img", "mail", "app", "shop", "blog", "news", "en", "fr",
    "login", "secure", "media", "video", "a1", "eu", "us",
];

fn word(rng: &mut StdRng, out: &mut String) {
    if rng.random_bool(0.5) {
        out.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    } else {
        for _ in 0..rng.random_range(2..=4) {
            out.push_str(SYLLABLES[rng.random_range(0..SYLLABLES.len())]);
        }
    }
}

fn tld(rng: &mut StdRng) -> &'static str {
    let total: u32 = TLDS.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total);
    for (t, w) in TLDS {
        if pick < *w {
            return t;
        }
        pick -= w;
    }
    "com"
}

/// One registrable domain name, e.g. `bestcasino-24.com`, `lomaripo.co.uk`.
pub fn domain(rng: &mut StdRng) -> String {
    let mut s = String::with_capacity(24);
    word(rng, &mut s);
    match rng.random_range(0..10) {
        0..=3 => word(rng, &mut s),
        4 => {
            s.push('-');
            word(rng, &mut s);
        }
        5 => {
            let n: u32 = rng.random_range(1..1000);
            s.push_str(&n.to_string());
        }
        _ => {}
    }
    s.push('.');
    s.push_str(tld(rng));
    s
}

/// `n` distinct synthetic domains, a fraction with a subdomain label, deterministic.
pub fn domains(n: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut d = domain(&mut rng);
        if rng.random_bool(0.1) {
            d = format!("{}.{d}", SUBDOMAINS[rng.random_range(0..SUBDOMAINS.len())]);
        }
        if seen.insert(d.clone()) {
            out.push(d);
        }
    }
    out
}

/// Hosts to look up: about half are listed domains or subdomains of them (hits), the
/// rest fresh names (mostly misses); 2 to 5 labels each.
pub fn lookup_mix(listed: &[String], n: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut host = if !listed.is_empty() && rng.random_bool(0.5) {
            listed[rng.random_range(0..listed.len())].clone()
        } else {
            domain(&mut rng)
        };
        let labels = host.split('.').count();
        let want = rng.random_range(2..=5usize);
        for _ in labels..want {
            host = format!(
                "{}.{host}",
                SUBDOMAINS[rng.random_range(0..SUBDOMAINS.len())]
            );
        }
        if host.split('.').count() <= 5 {
            out.push(host);
        }
    }
    out
}
