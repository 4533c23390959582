//! The web proxy as one of `serve`'s services: its `[proxy]` section and listener. The
//! proxy itself is `hallpass_proxy`; this binds it, hands it the shared engine, clock and
//! event writer, and registers its counters with `/metrics`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use std::time::Duration;

use futures::future::BoxFuture;
use hallpass_proxy::{HostPort, Proxy, ProxyConfig};
use hallpass_store::Store;
use serde::Deserialize;

use super::Settings;
use super::services::Service;
use super::shared::{MetricsSource, Shared};

/// `[proxy]` in the configuration file. Off unless `listen` (or `--proxy-listen`) is
/// given; the demo school runs it on [`DEFAULT_PROXY_LISTEN`].
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySection {
    /// Where browsers and devices reach the proxy (usually port 3128 or 8080).
    pub listen: Option<SocketAddr>,
    /// `HOST:PORT` of a parent proxy (a regional broadband filter) to send every request
    /// and tunnel to, instead of connecting to origins directly.
    pub parent: Option<String>,
    /// Ports `CONNECT` may reach. Default `[443]`.
    pub connect_ports: Option<Vec<u16>>,
    /// Largest request head accepted, in KiB (8-1024). Default 64.
    pub max_header_kib: Option<u64>,
    /// Seconds a client connection may take to send a request head, or stay idle between
    /// requests. Default 30.
    pub idle_timeout_s: Option<u64>,
    /// Seconds to connect to an origin (or the parent). Default 10.
    pub connect_timeout_s: Option<u64>,
    /// Seconds to wait for an origin's response. Default 60.
    pub response_timeout_s: Option<u64>,
    /// Client connections served at once. Default 4096.
    pub max_connections: Option<usize>,
    /// Ask clients without a logon session to sign in with their console account
    /// (`407` + Basic), for shared machines. Default false.
    pub auth: Option<bool>,
    /// Categories whose HTTPS the proxy inspects (ends TLS with a certificate from the
    /// school's CA, `hallpass ca init`): catalog category names, or `"search_engines"`
    /// (Google, Bing, DuckDuckGo, YouTube, Yahoo, Ecosia). Default none: off.
    pub inspect: Option<Vec<String>>,
    /// Hosts (and their subdomains) never inspected, besides the built-in banking,
    /// finance, health and government ones.
    pub never_inspect: Option<Vec<String>>,
    /// The directory holding the CA `hallpass ca init` made. Default: the data directory.
    pub ca_dir: Option<PathBuf>,
    /// A PEM file of extra CA certificates trusted for origins, besides the system's
    /// (for tests against a local HTTPS origin; not needed in a school).
    pub origin_ca: Option<PathBuf>,
    /// Minted certificates kept (one per inspected host). Default 1000.
    pub inspect_cache: Option<usize>,
}

/// Leaf certificates kept by default: a school's day of searches and their hosts.
const DEFAULT_INSPECT_CACHE: usize = 1000;

pub const DEFAULT_PROXY_LISTEN: &str = "127.0.0.1:3128";

/// `[proxy] parent` or `--proxy-parent`: `HOST:PORT`, checked at start-up.
pub fn parse_parent(text: &str) -> anyhow::Result<HostPort> {
    hallpass_proxy::target::parse_connect(text)
        .map_err(|error| anyhow::anyhow!("proxy parent {text:?}: {error}"))
}

impl MetricsSource for hallpass_proxy::Metrics {
    fn render(&self, out: &mut String) {
        self.render_prometheus(out);
    }
}

/// The proxy's settings from `[proxy]`, the DNS upstreams and the block page's address.
fn proxy_config(settings: &Settings) -> anyhow::Result<ProxyConfig> {
    let section = &settings.config.proxy;
    let defaults = ProxyConfig::default();
    let secs = |value: Option<u64>, default: Duration| value.map_or(default, Duration::from_secs);
    Ok(ProxyConfig {
        parent: settings.proxy_parent.clone(),
        upstreams: settings.dns.upstreams.clone(),
        connect_ports: section
            .connect_ports
            .clone()
            .unwrap_or(defaults.connect_ports),
        max_header_bytes: section
            .max_header_kib
            .map_or(defaults.max_header_bytes, |kib| {
                usize::try_from(kib.saturating_mul(1024)).unwrap_or(usize::MAX)
            }),
        idle_timeout: secs(section.idle_timeout_s, defaults.idle_timeout),
        connect_timeout: secs(section.connect_timeout_s, defaults.connect_timeout),
        response_timeout: secs(section.response_timeout_s, defaults.response_timeout),
        max_connections: section.max_connections.unwrap_or(defaults.max_connections),
        portal: settings.portal_listen.map(|addr| format!("http://{addr}/")),
        inspector: inspector(settings)?,
    })
}

/// The inspector when `[proxy] inspect` names categories: the CA loaded, the extra
/// origin roots read. Any problem stops start-up with the file and the reason.
fn inspector(
    settings: &Settings,
) -> anyhow::Result<Option<Arc<hallpass_proxy::inspect::Inspector>>> {
    let section = &settings.config.proxy;
    let categories = section.inspect.clone().unwrap_or_default();
    if categories.is_empty() {
        return Ok(None);
    }
    let dir = section
        .ca_dir
        .clone()
        .unwrap_or_else(|| settings.store.dir.clone());
    let ca = crate::cmd::ca::load(&dir)?;
    let extra_roots = match &section.origin_ca {
        Some(path) => {
            let text = std::fs::read(path)
                .with_context(|| format!("[proxy] origin_ca {}", path.display()))?;
            let roots = hallpass_proxy::inspect::pem_certificates(&text).map_err(|error| {
                anyhow::anyhow!("[proxy] origin_ca {}: {error}", path.display())
            })?;
            anyhow::ensure!(
                !roots.is_empty(),
                "[proxy] origin_ca {}: no certificate in it",
                path.display()
            );
            roots
        }
        None => Vec::new(),
    };
    let never_hosts = section
        .never_inspect
        .iter()
        .flatten()
        .map(|host| {
            hallpass_proxy::target::normalise_host(host)
                .map_err(|error| anyhow::anyhow!("[proxy] never_inspect: {error}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let inspector = hallpass_proxy::inspect::Inspector::new(
        ca,
        hallpass_proxy::inspect::InspectSettings {
            categories,
            never_hosts,
            cache_size: section.inspect_cache.unwrap_or(DEFAULT_INSPECT_CACHE),
        },
        extra_roots,
    )
    .context("setting up HTTPS inspection")?;
    Ok(Some(Arc::new(inspector)))
}

/// The web proxy's entry in `serve`'s table: `Ok(None)` unless enabled.
pub fn service<'a>(
    shared: &'a Shared,
    settings: &'a Settings,
) -> BoxFuture<'a, anyhow::Result<Option<Service>>> {
    Box::pin(async move {
        let Some(listen) = settings.proxy_listen else {
            return Ok(None);
        };
        let config = proxy_config(settings)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("web proxy: cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        let inspecting = config.inspector.is_some();
        let via = match &config.parent {
            Some(parent) => format!(" via parent {}", parent.authority()),
            None => String::new(),
        };
        let mut proxy = Proxy::new(
            Arc::clone(&shared.engine),
            shared.clock.clone(),
            shared.writer.clone(),
            config,
            addr,
            shared.stop.clone(),
        );
        let auth = settings.proxy_auth;
        if auth {
            proxy = proxy.with_authenticator(Arc::new(ConsoleAccounts {
                store: shared.store.clone(),
            }));
        }
        let proxy = Arc::new(proxy);
        shared
            .metrics
            .register(proxy.metrics() as Arc<dyn MetricsSource>);
        let run = async move {
            hallpass_proxy::serve(listener, proxy)
                .await
                .map_err(|error| anyhow::anyhow!("web proxy on {addr}: {error}"))
        };
        Ok(Some(Service {
            name: "proxy",
            addrs: vec![addr],
            banner: vec![format!(
                "web proxy: http://{addr} (PAC: http://{addr}/proxy.pac){via}{}{}",
                if auth {
                    ", sign-in for unknown clients"
                } else {
                    ""
                },
                if inspecting {
                    ", HTTPS inspection on"
                } else {
                    ""
                }
            )],
            run: Box::pin(run),
        }))
    })
}

/// Proxy credentials checked against the console's accounts: an enabled account whose
/// password matches, belonging to a person who has not left, identifies that person.
struct ConsoleAccounts {
    store: Store,
}

impl hallpass_proxy::Authenticator for ConsoleAccounts {
    fn authenticate(
        &self,
        username: String,
        password: String,
    ) -> std::pin::Pin<Box<dyn Future<Output = Option<hallpass_engine::Person>> + Send + 'static>>
    {
        let store = self.store.clone();
        Box::pin(async move {
            let account = match store.accounts().get(&username).await {
                Ok(Some(account)) if account.disabled.is_none() => account,
                Ok(_) => return None,
                Err(error) => {
                    tracing::warn!(%error, "web proxy: cannot read console accounts");
                    return None;
                }
            };
            let hash = account.password_hash;
            // Argon2 takes tens of milliseconds: off the async workers.
            let matches = tokio::task::spawn_blocking(move || {
                hallpass_web::password::verify_password(&password, &hash)
            })
            .await
            .unwrap_or(false);
            if !matches {
                return None;
            }
            let people = store.people().list().await.ok()?;
            let person = people
                .into_iter()
                .find(|p| p.username == username && p.left_at.is_none())?;
            // What they accepted, so a pending declaration restricts them here too.
            let accepted = store
                .declarations()
                .of_person(&username)
                .await
                .ok()?
                .into_iter()
                .map(|a| (a.document, a.version))
                .collect();
            Some(hallpass_engine::Person {
                username: Arc::from(person.username.as_str()),
                role: person.role,
                year_group: person.year_group,
                memberships: person.groups,
                accepted,
            })
        })
    }
}
