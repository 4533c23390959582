//! A test kit: the real `serve` wiring, in-process, on port 0 for every listener, with a
//! temporary SQLite store and an injected clock. A test gets the bound addresses, the
//! store, the clock, a stop handle and a console client signed in as any role:
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use hallpass::testkit::{TestOptions, TestServer};
//! use hallpass_web::Role;
//! let server = TestServer::start(TestOptions::default()).await?;
//! let answer = hallpass::testkit::dns::query_a(server.dns, "127.0.0.1".parse()?, "gmail.com")?;
//! let teacher = server.client_for(Role::Teacher).await?;
//! let (status, me) = teacher.get_json("/api/v1/me").await?;
//! server.stop().await?;
//! # Ok(()) }
//! ```

pub mod console;
pub mod dns;
pub mod tools;

pub use console::{ConsoleClient, TestAccount};

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use hallpass_clock::Clock;
use hallpass_store::Store;
use hallpass_web::Role;
use tokio_util::sync::CancellationToken;

use crate::cmd::serve::{self, Build, ServeArgs, Settings, Shared};

/// What to start. `Default`: the built-in demo school (its policy, catalog, roster and
/// loopback sessions) on a manual clock at the real time, upstream `127.0.0.1:9`
/// (nothing answers: allowed names get SERVFAIL unless a test gives an upstream).
pub struct TestOptions {
    /// Policy TOML; `None` runs the demo school. Written to a file the server follows.
    pub policy: Option<String>,
    /// Roster CSV imported before start (with a policy; the demo seeds its own).
    pub roster: Option<String>,
    /// (username, group) memberships added after the roster.
    pub memberships: Vec<(String, String)>,
    /// Logon sessions open before start: (address, username).
    pub sessions: Vec<(IpAddr, String)>,
    pub clock: Clock,
    pub upstreams: Vec<SocketAddr>,
    pub upstream_timeout: Option<Duration>,
    /// Services appended to the table (e.g. one that fails).
    pub extra: Vec<Build>,
    /// Console accounts created before serving: (username of the roster, role, years).
    /// Each gets a generated password, kept for [`TestServer::client_for`]. The demo
    /// has one account per role already.
    pub accounts: Vec<(String, Role, Vec<String>)>,
    /// RADIUS accounting clients (network, shared secret): when any is given the RADIUS
    /// listener runs on a loopback port (`server.addrs("radius")`).
    pub radius: Vec<(ipnet::IpNet, String)>,
    /// A configuration file's text (`version = 1` and any sections), given to `serve` as
    /// `--config`; the test kit's own listeners and data directory still apply.
    pub config: Option<String>,
    /// With a policy: the roster's people who have NOT accepted its acceptable-use
    /// declarations (everyone else has, as in the demo).
    pub declarations_pending: Vec<String>,
    /// The email filter's next hop: when given, the mail relay runs on a loopback port
    /// (`server.addrs("mail")`) and passes accepted mail there.
    pub mail_next_hop: Option<SocketAddr>,
    /// With `mail_next_hop`: the milter runs too, on a loopback port (the last of
    /// `server.addrs("mail")`).
    pub mail_milter: bool,
    /// The web proxy always runs on a loopback port (`server.addrs("proxy")`), with the
    /// test's `upstreams` as its resolvers. These are the ports its `CONNECT` may reach
    /// (a test's origin); empty keeps the default, 443.
    pub proxy_connect_ports: Vec<u16>,
    /// A parent proxy the web proxy forwards everything to.
    pub proxy_parent: Option<SocketAddr>,
    /// Proxy authentication against console accounts (`[proxy] auth = true`).
    pub proxy_auth: bool,
    /// `[proxy] response_timeout_s` (default 60): how long the proxy waits on an origin.
    pub proxy_response_timeout_s: Option<u64>,
    /// A category index or UT1-style directory instead of the demo catalog.
    pub catalog: Option<PathBuf>,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            policy: None,
            roster: None,
            memberships: Vec::new(),
            sessions: Vec::new(),
            clock: Clock::manual(),
            upstreams: vec![SocketAddr::from(([127, 0, 0, 1], 9))],
            upstream_timeout: Some(Duration::from_millis(300)),
            extra: Vec::new(),
            accounts: Vec::new(),
            radius: Vec::new(),
            config: None,
            declarations_pending: Vec::new(),
            mail_next_hop: None,
            mail_milter: false,
            proxy_connect_ports: Vec::new(),
            proxy_parent: None,
            catalog: None,
            proxy_auth: false,
            proxy_response_timeout_s: None,
        }
    }
}

/// A running `serve`.
pub struct TestServer {
    /// The DNS listener (UDP and TCP).
    pub dns: SocketAddr,
    /// The admin HTTP listener (`/metrics`, `/healthz`).
    pub admin: SocketAddr,
    /// The console (pages and `/api/v1`).
    pub web: SocketAddr,
    /// The console accounts a test may sign in with: the demo's (as its banner printed
    /// them) and those of [`TestOptions::accounts`].
    pub accounts: Vec<TestAccount>,
    /// Everything the services share (engine, writer, store, clock, health).
    pub shared: Shared,
    pub store: Store,
    pub clock: Clock,
    /// Cancelling it stops the server, as SIGTERM does.
    pub stop: CancellationToken,
    addrs: std::collections::BTreeMap<&'static str, Vec<SocketAddr>>,
    policy_path: PathBuf,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
    dir: tempfile::TempDir,
}

impl TestServer {
    /// Seeds a temporary store, builds every service on port 0 and starts serving.
    pub async fn start(options: TestOptions) -> anyhow::Result<TestServer> {
        let dir = tempfile::tempdir().context("temporary data directory")?;
        let policy_path = dir.path().join("policy.toml");
        if let Some(policy) = &options.policy {
            std::fs::write(&policy_path, policy).context("writing the test policy")?;
            seed(dir.path(), &options).await?;
        }
        let loopback_any = SocketAddr::from(([127, 0, 0, 1], 0));
        let config = match &options.config {
            Some(text) => {
                let path = dir.path().join("hallpass.toml");
                std::fs::write(&path, text).context("writing the test configuration")?;
                Some(path)
            }
            None => None,
        };
        let args = ServeArgs {
            config,
            dns_listen: vec![loopback_any],
            upstream: options.upstreams.iter().map(ToString::to_string).collect(),
            admin_listen: Some(loopback_any),
            web_listen: Some(loopback_any),
            portal_listen: Some(loopback_any),
            proxy_listen: Some(loopback_any),
            proxy_parent: options.proxy_parent.map(|parent| parent.to_string()),
            proxy_auth: options.proxy_auth,
            policy: options.policy.as_ref().map(|_| policy_path.clone()),
            catalog: options.catalog.clone(),
            data_dir: Some(dir.path().to_path_buf()),
            smtp_listen: options.mail_next_hop.map(|_| loopback_any),
            smtp_next_hop: options.mail_next_hop,
            milter_listen: options
                .mail_next_hop
                .filter(|_| options.mail_milter)
                .map(|_| loopback_any),
            ..ServeArgs::default()
        };
        let mut settings = Settings::resolve(args)?;
        if !options.radius.is_empty() {
            settings.radius_listen = Some(loopback_any);
            settings.config.radius.clients = options
                .radius
                .iter()
                .map(|(network, secret)| serve::radius::RadiusClient {
                    network: *network,
                    secret: secret.clone(),
                })
                .collect();
        }
        settings.config.proxy.response_timeout_s = options.proxy_response_timeout_s;
        if !options.proxy_connect_ports.is_empty() {
            settings.config.proxy.connect_ports = Some(options.proxy_connect_ports.clone());
        }
        settings.dns.upstream_timeout = options.upstream_timeout;
        let bound = serve::start(
            settings,
            serve::Options {
                clock: options.clock.clone(),
                extra: options.extra,
            },
        )
        .await?;
        let first = |service: &str| {
            bound
                .addrs(service)
                .first()
                .copied()
                .with_context(|| format!("no {service} address"))
        };
        let (dns, admin, web) = (first("dns")?, first("admin")?, first("console")?);
        let mut accounts = console::accounts_from_banner(bound.banner());
        for (username, role, years) in &options.accounts {
            let password = hallpass_web::password::generate_password(username);
            let hash = hallpass_web::password::hash_password(&password)?;
            bound
                .shared
                .store
                .accounts()
                .add(
                    username,
                    role.as_str(),
                    years,
                    &hash,
                    "testkit",
                    options.clock.now(),
                )
                .await
                .with_context(|| format!("test account {username}"))?;
            accounts.push(TestAccount {
                role: *role,
                username: username.clone(),
                password,
            });
        }
        let addrs = [
            "dns", "admin", "console", "portal", "radius", "mail", "proxy",
        ]
        .into_iter()
        .map(|name| (name, bound.addrs(name).to_vec()))
        .collect();
        let shared = bound.shared.clone();
        Ok(TestServer {
            dns,
            admin,
            web,
            accounts,
            store: shared.store.clone(),
            clock: shared.clock.clone(),
            stop: shared.stop.clone(),
            shared,
            addrs,
            policy_path,
            running: tokio::spawn(bound.run()),
            dir,
        })
    }

    /// An API token with `scopes` (as `hallpass token create` makes one): its secret.
    pub async fn token(&self, name: &str, scopes: &[&str]) -> anyhow::Result<String> {
        let secret = hallpass_web::password::new_secret();
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        self.store
            .accounts()
            .create_token(
                name,
                &hallpass_web::password::secret_hash(&secret),
                &scopes,
                "testkit",
                self.clock.now(),
            )
            .await
            .with_context(|| format!("creating the token {name}"))?;
        Ok(secret)
    }

    /// The data directory (database, spill file).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The policy file the server follows (when started with a policy).
    pub fn policy_path(&self) -> &Path {
        &self.policy_path
    }

    /// The addresses a service is bound to.
    pub fn addrs(&self, service: &str) -> &[SocketAddr] {
        self.addrs.get(service).map_or(&[], Vec::as_slice)
    }

    /// The first account with `role` (the demo has one per role).
    pub fn account_for(&self, role: Role) -> anyhow::Result<&TestAccount> {
        self.accounts
            .iter()
            .find(|a| a.role == role)
            .with_context(|| {
                format!(
                    "no console account with the {role} role (add one in TestOptions::accounts)"
                )
            })
    }

    /// A console client signed in as the account of `role`, with its session cookie and
    /// CSRF token (see [`ConsoleClient`]).
    pub async fn client_for(&self, role: Role) -> anyhow::Result<ConsoleClient> {
        ConsoleClient::sign_in(self.web, self.account_for(role)?).await
    }

    /// `http://ADDR` of the console.
    pub fn web_base(&self) -> String {
        format!("http://{}", self.web)
    }

    /// `GET path` on the admin port: (status, body).
    pub fn admin_get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        http_get(self.admin, path)
    }

    /// Stops every service (as SIGTERM does) and waits: `Err` if a service had failed.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.wait().await
    }

    /// Waits for the server to end on its own (after a service failed), at most 15 s.
    pub async fn wait(self) -> anyhow::Result<()> {
        let ended = tokio::time::timeout(Duration::from_secs(15), self.running)
            .await
            .context("serve did not stop within 15 s")?;
        ended.context("serve panicked")?
    }
}

/// The roster, memberships and sessions of `options`, in the store `serve` will open.
async fn seed(dir: &Path, options: &TestOptions) -> anyhow::Result<()> {
    let store = Store::connect_data_dir(dir).await?;
    let now = options.clock.now();
    if let Some(roster) = &options.roster {
        let records = hallpass_store::people::parse_roster(roster.as_bytes())
            .map_err(|errors| anyhow::anyhow!("test roster: {errors:?}"))?;
        store
            .people()
            .import(&records, false, "testkit", "test roster", now)
            .await?;
    }
    for (username, group) in &options.memberships {
        store.people().add_membership(username, group).await?;
    }
    if let Some(policy) = &options.policy {
        accept_declarations(&store, policy, options, now).await?;
    }
    for (ip, username) in &options.sessions {
        store
            .sessions()
            .start("testkit", username, *ip, None, now)
            .await?;
    }
    store.close().await;
    Ok(())
}

/// Everyone in the roster but [`TestOptions::declarations_pending`] accepts the policy's
/// declarations at their current versions.
async fn accept_declarations(
    store: &Store,
    policy: &str,
    options: &TestOptions,
    now: jiff::Timestamp,
) -> anyhow::Result<()> {
    let declarations: Vec<(String, String)> =
        hallpass_policy::PolicyDoc::parse("policy.toml", policy)
            .ok()
            .and_then(|doc| doc.compile(&hallpass_policy::CategoryVocab::open()).ok())
            .map(|(policy, _)| {
                policy
                    .declarations()
                    .iter()
                    .map(|d| (d.document.clone(), d.version.clone()))
                    .collect()
            })
            .unwrap_or_default();
    for person in store.people().list().await? {
        if options.declarations_pending.contains(&person.username) {
            continue;
        }
        for (document, version) in &declarations {
            store
                .declarations()
                .accept(
                    "testkit",
                    &person.username,
                    document,
                    version,
                    Default::default(),
                    now,
                )
                .await?;
        }
    }
    Ok(())
}

/// A plain HTTP/1.0 `GET`: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP response: {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
