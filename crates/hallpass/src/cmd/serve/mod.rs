//! `hallpass serve`: the long-running services, wired together as a table.
//!
//! Start-up: configuration, store (migrations), event writer, policy and catalog, the
//! first snapshot: the [`Shared`] state. Then every service in [`services::SERVICES`] is
//! built from its settings and that state, binding its sockets; only when all are bound
//! is the banner printed (from the bound addresses) and do they start serving. All run
//! until one stop signal (Ctrl-C, SIGTERM, or the first service to fail); then the event
//! writer drains and the process exits, 0 on a signal, non-zero after a failure.

mod admin;
mod demo;
mod dns;
pub mod followers;
pub mod health;
mod inputs;
mod live;
pub mod mail;
pub mod mailer;
pub mod portal;
pub mod proxy;
pub mod radius;
pub mod safeguarding;
pub mod services;
pub mod shared;
pub mod shared_credentials;
pub mod web;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use hallpass_clock::Clock;
use hallpass_engine::{Engine, Snapshot};
use hallpass_store::{EventWriter, EventWriterConfig};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use inputs::Sources;
pub use services::{Build, Service};
pub use shared::Shared;

/// Run the filtering services.
///
/// With no options this runs the built-in demo school (the WCS example policy, the demo
/// category lists, SQLite in ./hallpass-data) on loopback ports, and prints them. Options
/// override the configuration file, which overrides the defaults.
///
/// The web console is served too (`console: http://ADDR:PORT/` in what it prints). The
/// demo creates one console account per role and prints each name and password, new at
/// every start; for a real school create accounts with `hallpass account add`.
///
/// Reload the policy and catalog with SIGHUP, or just save the files: an invalid new
/// policy is refused with an error in the log and the old one keeps serving.
#[derive(Debug, Default, clap::Args)]
#[command(
    after_help = "Examples:\n  hallpass serve\n  hallpass serve --config /etc/hallpass/hallpass.toml\n  \
hallpass serve --dns-listen 0.0.0.0:53 --upstream 192.0.2.53 --policy school.toml --catalog ut1.hpidx"
)]
pub struct ServeArgs {
    /// Configuration file (TOML, `version = 1`); see README for every key.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to answer DNS on, UDP and TCP (repeatable). Default 127.0.0.1:5300.
    #[arg(long, value_name = "ADDR:PORT")]
    pub dns_listen: Vec<SocketAddr>,
    /// Upstream resolver for allowed names (repeatable, tried in order). Default: the
    /// nameservers in /etc/resolv.conf.
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub upstream: Vec<String>,
    /// Address of the admin HTTP port (/metrics, /healthz). Default 127.0.0.1:9153.
    #[arg(long, value_name = "ADDR:PORT")]
    pub admin_listen: Option<SocketAddr>,
    /// Address of the console (web pages and /api/v1). Default 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR:PORT")]
    pub web_listen: Option<SocketAddr>,
    /// Do not start the console (as `[web] enabled = false`): a node that only filters.
    #[arg(long)]
    pub no_web: bool,
    /// Address of the block page that DNS block answers lead browsers to (why a site is
    /// blocked, request access, continue past a warning). Default 127.0.0.1:8081.
    #[arg(long, value_name = "ADDR:PORT")]
    pub portal_listen: Option<SocketAddr>,
    /// Do not start the block page (as `[portal] enabled = false`).
    #[arg(long)]
    pub no_portal: bool,
    /// Acceptable-use policy file. Default: the built-in demo school's.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Category index (from `hallpass catalog import`), or a UT1 tarball or directory.
    /// Default: the built-in demo lists.
    #[arg(long, value_name = "PATH")]
    pub catalog: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB. Default DATA_DIR/hallpass.db.
    #[arg(long, value_name = "URL", env = "HALLPASS_DATABASE")]
    pub database: Option<String>,
    /// Directory for the database, the event spill file and the audit key. Default
    /// ./hallpass-data. Private to this user (0700, files 0600); refused if other users
    /// can write it. With a sqlite:// --database, give one of the two.
    #[arg(long, value_name = "DIR", env = "HALLPASS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The audit key file. Default DATA_DIR/audit.key, created on first use.
    #[arg(long, value_name = "FILE", env = "HALLPASS_AUDIT_KEY")]
    pub audit_key: Option<PathBuf>,
    /// Receive RADIUS accounting (UDP, usually 0.0.0.0:1813) from Wi-Fi controllers and
    /// 802.1X switches, so a user's Start/Stop opens and ends their session. Off by
    /// default; needs [[radius.clients]] (network and shared secret) in --config.
    #[arg(long, value_name = "ADDR:PORT")]
    pub radius_listen: Option<SocketAddr>,
    /// Run the email filter: accept SMTP here from the school's mail server (Postfix
    /// content_filter / smtpd_proxy_filter, or as its smarthost), e.g. 127.0.0.1:10025.
    /// Off by default; needs --smtp-next-hop. Same as `[mail] listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub smtp_listen: Option<SocketAddr>,
    /// Run the email filter as a milter: the school's Postfix asks it about each message
    /// (smtpd_milters = inet:ADDR:PORT) and delivers itself, e.g. 127.0.0.1:10027. Off by
    /// default; needs --smtp-next-hop for released messages. Same as `[mail] milter_listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub milter_listen: Option<SocketAddr>,
    /// Where the email filter passes accepted mail on (Postfix's re-injection listener
    /// or the next relay), e.g. 127.0.0.1:10026; with only --milter-listen, where
    /// messages released from quarantine go. Same as `[mail] next_hop`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub smtp_next_hop: Option<SocketAddr>,
    /// Run the web proxy on this address (browsers and devices set it as their HTTP and
    /// HTTPS proxy, or load http://ADDR:PORT/proxy.pac). Off unless given here or in
    /// [proxy] listen; the demo school runs it on 127.0.0.1:3128.
    #[arg(long, value_name = "ADDR:PORT")]
    pub proxy_listen: Option<SocketAddr>,
    /// Do not start the web proxy, even in the demo.
    #[arg(long, conflicts_with = "proxy_listen")]
    pub no_proxy: bool,
    /// Send everything the web proxy forwards to this parent proxy (HOST:PORT), e.g. a
    /// regional broadband consortium's filter, instead of to the sites directly.
    #[arg(long, value_name = "HOST:PORT")]
    pub proxy_parent: Option<String>,
    /// Make web proxy clients without a logon session sign in with their console
    /// account (for shared machines), as `[proxy] auth = true`.
    #[arg(long)]
    pub proxy_auth: bool,
}

const DEFAULT_DNS_LISTEN: &str = "127.0.0.1:5300";
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9153";

/// Everything `serve` needs, after the configuration file, flags and defaults are merged.
#[derive(Debug, Clone)]
pub struct Settings {
    pub sources: Sources,
    /// The database, data directory and audit key.
    pub store: crate::cmd::store::StoreLocation,
    pub dns: dns::DnsSettings,
    pub admin_listen: SocketAddr,
    pub web_listen: SocketAddr,
    /// Whether the console runs (`--no-web`, `[web] enabled`).
    pub web_enabled: bool,
    /// The block page's address; `None` when it is off (`--no-portal`).
    pub portal_listen: Option<SocketAddr>,
    /// Where RADIUS accounting is received (`--radius-listen`, `[radius] listen`); off
    /// when `None`.
    pub radius_listen: Option<SocketAddr>,
    /// The email filter (`--smtp-listen`, `[mail]`); off when `None`.
    pub mail: Option<mail::MailSettings>,
    /// Where the web proxy listens (`--proxy-listen`, `[proxy] listen`, the demo's
    /// default); off when `None`.
    pub proxy_listen: Option<SocketAddr>,
    /// The parent proxy everything is forwarded to (`--proxy-parent`, `[proxy] parent`).
    pub proxy_parent: Option<hallpass_proxy::HostPort>,
    /// Proxy authentication against console accounts (`--proxy-auth`, `[proxy] auth`).
    pub proxy_auth: bool,
    pub config: Config,
}

impl Settings {
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Settings> {
        let config = match &args.config {
            Some(path) => Config::load(path).map_err(|errors| anyhow::anyhow!("{errors}"))?,
            None => Config {
                version: crate::config::CONFIG_VERSION,
                ..Config::default()
            },
        };
        let mut upstreams = Vec::new();
        for text in &args.upstream {
            upstreams
                .push(dns::parse_upstream(text).with_context(|| format!("--upstream {text}"))?);
        }
        if upstreams.is_empty() {
            upstreams = config.dns.upstreams.clone();
        }
        if upstreams.is_empty() {
            upstreams = dns::system_resolvers();
        }
        anyhow::ensure!(
            !upstreams.is_empty(),
            "no upstream resolver: give --upstream ADDR[:PORT] (none found in /etc/resolv.conf)"
        );
        let listen = if !args.dns_listen.is_empty() {
            args.dns_listen
        } else if !config.dns.listen.is_empty() {
            config.dns.listen.clone()
        } else {
            vec![parse_default(DEFAULT_DNS_LISTEN)?]
        };
        let portal_listen = if args.no_portal || config.portal.enabled == Some(false) {
            None
        } else {
            Some(match args.portal_listen.or(config.portal.listen) {
                Some(addr) => addr,
                None => parse_default(portal::DEFAULT_PORTAL_LISTEN)?,
            })
        };
        let proxy_listen = if args.no_proxy {
            None
        } else {
            match args.proxy_listen.or(config.proxy.listen) {
                Some(addr) => Some(addr),
                // The demo school (no policy given) shows the proxy too.
                None if args.policy.is_none() && config.policy.is_none() => {
                    Some(parse_default(proxy::DEFAULT_PROXY_LISTEN)?)
                }
                None => None,
            }
        };
        let proxy_parent = match args
            .proxy_parent
            .as_deref()
            .or(config.proxy.parent.as_deref())
        {
            Some(text) => Some(proxy::parse_parent(text)?),
            None => None,
        };
        // The demo's block answers lead to its own block page when that has one address.
        let demo_block_page = match portal_listen.map(|a| a.ip()) {
            Some(std::net::IpAddr::V4(ip)) if !ip.is_unspecified() => Some(ip),
            _ => None,
        };
        let store = crate::cmd::store::StoreLocation::resolve(
            args.database.or_else(|| config.database.clone()),
            args.data_dir.or_else(|| config.data_dir.clone()),
            args.audit_key.or_else(|| config.audit_key.clone()),
        )?;
        let mail = mail::resolve(
            mail::MailFlags {
                smtp_listen: args.smtp_listen,
                milter_listen: args.milter_listen,
                next_hop: args.smtp_next_hop,
            },
            &config.mail,
        )?;
        Ok(Settings {
            sources: Sources {
                policy: args.policy.or_else(|| config.policy.clone()),
                catalog: args.catalog.or_else(|| config.catalog.clone()),
                demo_block_page,
            },
            store,
            dns: dns::DnsSettings::from_config(listen, upstreams, &config.dns),
            admin_listen: match args.admin_listen.or(config.admin.listen) {
                Some(addr) => addr,
                None => parse_default(DEFAULT_ADMIN_LISTEN)?,
            },
            web_listen: match args.web_listen.or(config.web.listen) {
                Some(addr) => addr,
                None => parse_default(web::DEFAULT_WEB_LISTEN)?,
            },
            web_enabled: !args.no_web && config.web.enabled.unwrap_or(true),
            portal_listen,
            radius_listen: radius_listen(args.radius_listen, &config)?,
            mail,
            proxy_listen,
            proxy_parent,
            proxy_auth: args.proxy_auth || config.proxy.auth.unwrap_or(false),
            config,
        })
    }
}

/// `--radius-listen` over `[radius] listen`; either needs a client to accept.
fn radius_listen(flag: Option<SocketAddr>, config: &Config) -> anyhow::Result<Option<SocketAddr>> {
    let listen = flag.or(config.radius.listen);
    if let Some(addr) = listen {
        anyhow::ensure!(
            !config.radius.clients.is_empty(),
            "RADIUS accounting on {addr} needs at least one [[radius.clients]] entry (network \
             and secret) in the configuration file (--config): without one every packet \
             would be dropped"
        );
    }
    Ok(listen)
}

fn parse_default(text: &str) -> anyhow::Result<SocketAddr> {
    text.parse()
        .with_context(|| format!("built-in default address {text}"))
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hallpass")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(settings))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let bound = start(settings, Options::default()).await?;
    // The banner is for whoever started us; a closed stdout (a supervisor that
    // discards it) must not stop the server.
    let _ = bound.print_banner();
    let stop = bound.shared.stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown_signal() => {
                tracing::info!("stopping: no new queries; draining recorded events");
                stop.cancel();
            }
            () = stop.cancelled() => {}
        }
    });
    bound.run().await
}

/// What a caller other than the command line may change (the test kit).
#[derive(Default)]
pub struct Options {
    /// The one clock every service reads (the system's by default).
    pub clock: Clock,
    /// Services appended to [`services::SERVICES`] (a test's, e.g. one that fails).
    pub extra: Vec<Build>,
}

/// Every service built and bound, none serving yet.
pub struct Bound {
    pub shared: Shared,
    services: Vec<Service>,
    addrs: BTreeMap<&'static str, Vec<SocketAddr>>,
    banner: Vec<String>,
    demo: bool,
    school: String,
}

/// Opens the store and event writer, loads the first snapshot and builds (binds) every
/// service. Nothing serves until [`Bound::run`]; an error leaves nothing bound.
pub async fn start(settings: Settings, options: Options) -> anyhow::Result<Bound> {
    let clock = options.clock;
    // serve always keeps files in the data directory (the spill file), whatever the
    // database: it must be private first.
    hallpass_store::data_dir::secure(&settings.store.dir)?;
    let store = settings.store.connect().await?;
    // The audit key is made (or found missing) now, not at the first logon, and the head
    // goes to the log: kept off the machine by the log's reader, it anchors the chain.
    let head = store
        .audit()
        .anchor(clock.now())
        .await
        .context("anchoring the audit log")?;
    tracing::info!(
        audit_head = %head.map_or_else(|| "empty".to_string(), |h| h.to_string()),
        audit_key_id = %store.audit().key_id().await.unwrap_or_default(),
        "audit log head (keep it: hallpass audit verify --head SEQ:HASH)"
    );
    let demo = settings.sources.policy.is_none();
    if demo {
        demo::seed(&store, &clock).await?;
    }

    let mut writer_config = EventWriterConfig::new(settings.store.dir.join("events.spill"));
    if let Some(queue) = settings.config.events.queue {
        writer_config.capacity = queue;
    }
    if let Some(mib) = settings.config.events.queue_mib {
        writer_config.max_queue_bytes = mib.saturating_mul(1 << 20);
    }
    if let Some(batch) = settings.config.events.batch {
        writer_config.max_batch = batch;
    }
    if let Some(ms) = settings.config.events.linger_ms {
        writer_config.linger = std::time::Duration::from_millis(ms);
    }
    let (writer, writer_task) =
        EventWriter::start(store.clone(), writer_config).context("starting the event writer")?;

    let sources = settings.sources.clone();
    let loading = sources.clone();
    let first = async {
        let loaded = tokio::task::spawn_blocking(move || loading.load()).await??;
        if demo {
            demo::accept_declarations(&store, &loaded.policy, &clock).await?;
        }
        let identities = hallpass_engine::sessions::read_identities(&store, &loaded.policy).await?;
        anyhow::Ok((loaded, identities))
    };
    let (loaded, identities) = match first.await {
        Ok(first) => first,
        Err(error) => {
            writer.shutdown().await;
            store.close().await;
            return Err(error);
        }
    };
    let school = loaded.policy.school_name().to_string();
    let engine = Arc::new(Engine::new(Snapshot::new(
        loaded.policy,
        loaded.catalog,
        Arc::new(identities),
        Arc::default(),
    )));
    let shared = Shared {
        engine,
        writer,
        store,
        health: Arc::new(health::Health::new(clock.clone())),
        clock,
        metrics: Arc::default(),
        stop: CancellationToken::new(),
        sources,
        loaded_stamps: loaded.stamps,
    };

    let table: Vec<Build> = services::SERVICES
        .iter()
        .copied()
        .chain(options.extra)
        .collect();
    let mut services = match services::build_all(&table, &shared, &settings).await {
        Ok(services) => services,
        Err(error) => {
            shared.writer.shutdown().await;
            shared.store.close().await;
            return Err(error.context("cannot start"));
        }
    };
    services.push(followers::event_writer(&shared, writer_task));
    let mut addrs = BTreeMap::new();
    let mut banner = Vec::new();
    for service in &services {
        addrs.insert(service.name, service.addrs.clone());
        banner.extend(service.banner.iter().cloned());
    }
    Ok(Bound {
        shared,
        services,
        addrs,
        banner,
        demo,
        school,
    })
}

impl Bound {
    /// The addresses `service` is bound to (empty for an unknown name or a follower).
    pub fn addrs(&self, service: &str) -> &[SocketAddr] {
        self.addrs.get(service).map_or(&[], Vec::as_slice)
    }

    /// The services' banner lines (addresses; the demo's console accounts), as printed.
    pub fn banner(&self) -> &[String] {
        &self.banner
    }

    /// Prints what is being served where, from the bound addresses.
    pub fn print_banner(&self) -> std::io::Result<()> {
        say!("Hallpass is filtering for {}", self.school);
        say!("  {}", self.shared.sources.describe());
        for line in &self.banner {
            say!("  {line}");
        }
        say!(
            "  database   {}",
            hallpass_store::redact_url(self.shared.store.url())
        );
        if self.demo {
            say!("Demo school: logon sessions for the built-in demo people:");
            for (ip, username, who) in demo::SESSIONS {
                say!("  {ip:<10} {username:<13} {who}");
            }
            say!("  (any other address is unidentified: the policy blocks it, clause 2.1)");
            if let Some(addr) = self.addrs("dns").first() {
                say!(
                    "Try: dig @{} -p {} www.facebook.com -b 127.0.0.3   (marketing: allowed)",
                    addr.ip(),
                    addr.port()
                );
            }
        }
        say!("Stop with Ctrl-C (or SIGTERM); reload the policy with SIGHUP.");
        Ok(())
    }

    /// Serves until the stop signal ([`Shared::stop`]) or the first failure, then drains
    /// the event writer and closes the store. `Err` when a service failed.
    pub async fn run(self) -> anyhow::Result<()> {
        let result = services::run_all(self.services, &self.shared).await;
        self.shared.writer.shutdown().await;
        self.shared.store.close().await;
        match &result {
            Ok(()) => tracing::info!("stopped"),
            Err(error) => tracing::error!("stopped after a failure: {error:#}"),
        }
        result
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn join(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
