//! Selective TLS inspection: for a `CONNECT` to a host in an inspected category, the
//! proxy ends the client's TLS with a certificate for that host minted from the
//! school's CA ([`ca`]), opens its own TLS to the origin (verified against the system's
//! roots), and serves the requests inside through the same decisions as plain HTTP
//! (full URLs, block pages, safe search, search terms as content). Off unless the
//! configuration names categories; never for the built-in sensitive categories and
//! hosts (banking, health, government) nor for the school's own `never_inspect` list.

pub mod ca;
mod idle;
mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustls::pki_types::CertificateDer;

pub use ca::{CaError, SchoolCa};
pub(crate) use session::OriginLink;

/// `inspect` entry for the engines the proxy knows ([`crate::search::Engine`]): UT1 has
/// no search engine category.
pub const SEARCH_ENGINES: &str = "search_engines";

/// Catalog categories never inspected, whatever `inspect` says: money.
pub const NEVER_INSPECTED_CATEGORIES: [&str; 2] = ["bank", "financial"];

/// Host suffixes never inspected, whatever `inspect` says: governments and health
/// services (UT1 has no category for them).
pub const NEVER_INSPECTED_SUFFIXES: [&str; 16] = [
    "gov",
    "mil",
    "gov.uk",
    "police.uk",
    "nhs.uk",
    "nhs.net",
    "nhs.scot",
    "gov.scot",
    "gov.wales",
    "gouv.fr",
    "gov.ie",
    "hse.ie",
    "gov.au",
    "govt.nz",
    "gc.ca",
    "europa.eu",
];

/// A minted leaf is replaced after this long (it is valid for [`ca::LEAF_DAYS`]).
const REMINT_AFTER_S: i64 = 7 * 86_400;

/// What to inspect (the `[proxy]` section's `inspect` and `never_inspect`).
#[derive(Debug, Clone, Default)]
pub struct InspectSettings {
    /// Catalog category names, or [`SEARCH_ENGINES`].
    pub categories: Vec<String>,
    /// Hosts (and their subdomains) never inspected, added to the built-in ones.
    pub never_hosts: Vec<String>,
    /// Leaf certificates kept (one per host); the least recently used goes first.
    pub cache_size: usize,
}

/// The CA, the settings, the leaf cache and the TLS configuration towards origins.
pub struct Inspector {
    ca: SchoolCa,
    settings: InspectSettings,
    leaves: Mutex<LeafCache>,
    origin_tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspector")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Inspector {
    /// `extra_roots`: origin CAs trusted besides the system's (tests' local origins).
    pub fn new(
        ca: SchoolCa,
        settings: InspectSettings,
        extra_roots: Vec<CertificateDer<'static>>,
    ) -> Result<Inspector, CaError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            // No system store (a minimal container): Mozilla's roots, built in.
            tracing::warn!(
                "web proxy: no system CA certificates found; verifying origins with Mozilla's roots"
            );
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        roots.add_parsable_certificates(extra_roots);
        let mut origin_tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        origin_tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let capacity = settings.cache_size.max(1);
        Ok(Inspector {
            ca,
            settings,
            leaves: Mutex::new(LeafCache::new(capacity)),
            origin_tls: Arc::new(origin_tls),
        })
    }

    /// Whether a tunnel to `host`, in the catalog's `categories`, is inspected.
    pub fn inspects(&self, host: &str, categories: &[String]) -> bool {
        if host.parse::<std::net::IpAddr>().is_ok()
            || categories
                .iter()
                .any(|c| NEVER_INSPECTED_CATEGORIES.contains(&c.as_str()))
            || NEVER_INSPECTED_SUFFIXES
                .iter()
                .any(|suffix| within(host, suffix))
            || self
                .settings
                .never_hosts
                .iter()
                .any(|never| within(host, never))
        {
            return false;
        }
        self.settings.categories.iter().any(|wanted| {
            categories.contains(wanted)
                || (wanted == SEARCH_ENGINES && crate::search::engine_of(host).is_some())
        })
    }

    /// The server configuration presenting `host`'s certificate: cached, minted when
    /// missing or old.
    pub(crate) fn server_config(
        &self,
        host: &str,
        now: jiff::Timestamp,
    ) -> Result<Arc<rustls::ServerConfig>, CaError> {
        let mut leaves = self.leaves.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(config) = leaves.get(host, now) {
            return Ok(config);
        }
        let config = ca::server_config(&self.ca, host, now)?;
        leaves.put(host, Arc::clone(&config), now);
        Ok(config)
    }

    pub(crate) fn origin_tls(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.origin_tls)
    }
}

/// The certificates in a PEM text (`[proxy] origin_ca`).
pub fn pem_certificates(
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, rustls::pki_types::pem::Error> {
    use rustls::pki_types::pem::PemObject as _;
    CertificateDer::pem_slice_iter(pem).collect()
}

/// `host` is `domain` or one of its subdomains.
fn within(host: &str, domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    host == domain
        || host
            .strip_suffix(domain.as_str())
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Leaf server configurations by host, at most `capacity`, least recently used evicted.
struct LeafCache {
    entries: HashMap<String, Leaf>,
    capacity: usize,
    tick: u64,
}

struct Leaf {
    config: Arc<rustls::ServerConfig>,
    minted: jiff::Timestamp,
    used: u64,
}

impl LeafCache {
    fn new(capacity: usize) -> LeafCache {
        LeafCache {
            entries: HashMap::new(),
            capacity,
            tick: 0,
        }
    }

    fn get(&mut self, host: &str, now: jiff::Timestamp) -> Option<Arc<rustls::ServerConfig>> {
        self.tick += 1;
        let tick = self.tick;
        let leaf = self.entries.get_mut(host)?;
        if now.as_second().saturating_sub(leaf.minted.as_second()) > REMINT_AFTER_S {
            return None;
        }
        leaf.used = tick;
        Some(Arc::clone(&leaf.config))
    }

    fn put(&mut self, host: &str, config: Arc<rustls::ServerConfig>, now: jiff::Timestamp) {
        if !self.entries.contains_key(host) && self.entries.len() >= self.capacity {
            // A scan per mint (not per hit) of a few thousand entries at most.
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, leaf)| leaf.used)
                .map(|(host, _)| host.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.tick += 1;
        self.entries.insert(
            host.to_string(),
            Leaf {
                config,
                minted: now,
                used: self.tick,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn inspector(categories: &[&str], never: &[&str], cache_size: usize) -> Inspector {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let (cert, key) = ca::generate("Test", now).unwrap();
        Inspector::new(
            SchoolCa::load(&cert, &key).unwrap(),
            InspectSettings {
                categories: categories.iter().map(|c| c.to_string()).collect(),
                never_hosts: never.iter().map(|c| c.to_string()).collect(),
                cache_size,
            },
            Vec::new(),
        )
        .unwrap()
    }

    #[test]
    fn what_is_inspected() {
        let inspector = inspector(
            &[SEARCH_ENGINES, "social_networks"],
            &["counselling.example"],
            8,
        );
        let none: &[String] = &[];
        let social = ["social_networks".to_string()];
        assert!(inspector.inspects("www.google.com", none));
        assert!(inspector.inspects("www.bing.com", none));
        assert!(inspector.inspects("facebook.com", &social));
        assert!(!inspector.inspects("www.bbc.co.uk", none));
        // Never: money, government, health, the school's own list, IP addresses.
        let bank = ["social_networks".to_string(), "bank".to_string()];
        assert!(!inspector.inspects("bank.example", &bank));
        assert!(!inspector.inspects("www.gov.uk", &social));
        assert!(!inspector.inspects("www.nhs.uk", &social));
        assert!(!inspector.inspects("counselling.example", &social));
        assert!(!inspector.inspects("www.counselling.example", &social));
        assert!(inspector.inspects("notcounselling.example", &social));
        assert!(!inspector.inspects("192.0.2.1", &social));
        let off = self::inspector(&[], &[], 8);
        assert!(!off.inspects("www.google.com", none));
    }

    #[test]
    fn leaves_are_cached_bounded_and_reminted() {
        let inspector = inspector(&[SEARCH_ENGINES], &[], 2);
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let a = inspector.server_config("a.example", now).unwrap();
        let again = inspector.server_config("a.example", now).unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        inspector.server_config("b.example", now).unwrap();
        inspector.server_config("a.example", now).unwrap();
        // Full: c evicts b, the least recently used, and a stays.
        inspector.server_config("c.example", now).unwrap();
        assert_eq!(inspector.leaves.lock().unwrap().len(), 2);
        let still = inspector.server_config("a.example", now).unwrap();
        assert!(Arc::ptr_eq(&a, &still));
        let later = now + jiff::SignedDuration::from_secs(REMINT_AFTER_S + 1);
        let reminted = inspector.server_config("a.example", later).unwrap();
        assert!(!Arc::ptr_eq(&a, &reminted));
    }
}
