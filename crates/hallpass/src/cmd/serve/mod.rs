//! `hallpass serve`: the long-running services, wired together.
//!
//! Start-up order: configuration, store (migrations), event writer, policy and catalog,
//! the first snapshot, then the listeners. Shutdown (Ctrl-C or SIGTERM) runs it backwards:
//! listeners stop taking queries, the event writer drains, the process exits 0.

mod admin;
mod demo;
mod dns;
mod inputs;
mod live;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use hallpass_engine::{Engine, Snapshot};
use hallpass_store::{EventWriter, EventWriterConfig, Store};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use inputs::Sources;

/// Run the filtering services.
///
/// With no options this runs the built-in demo school (the WCS example policy, the demo
/// category lists, SQLite in ./hallpass-data) on loopback ports, and prints them. Options
/// override the configuration file, which overrides the defaults.
///
/// Reload the policy and catalog with SIGHUP, or just save the files: an invalid new
/// policy is refused with an error in the log and the old one keeps serving.
#[derive(Debug, clap::Args)]
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
    /// Directory for the database and the event spill file. Default ./hallpass-data.
    #[arg(long, value_name = "DIR", env = "HALLPASS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

const DEFAULT_DNS_LISTEN: &str = "127.0.0.1:5300";
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9153";

/// Everything `serve` needs, after the configuration file, flags and defaults are merged.
#[derive(Debug, Clone)]
pub struct Settings {
    pub sources: Sources,
    pub database: Option<String>,
    pub data_dir: PathBuf,
    pub dns: dns::DnsSettings,
    pub admin_listen: SocketAddr,
    pub web_listen: SocketAddr,
    pub config: Config,
}

impl Settings {
    fn resolve(args: ServeArgs) -> anyhow::Result<Settings> {
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
        Ok(Settings {
            sources: Sources {
                policy: args.policy.or_else(|| config.policy.clone()),
                catalog: args.catalog.or_else(|| config.catalog.clone()),
            },
            database: args.database.or_else(|| config.database.clone()),
            data_dir: args
                .data_dir
                .or_else(|| config.data_dir.clone())
                .unwrap_or_else(hallpass_store::default_data_dir),
            dns: dns::DnsSettings::from_config(listen, upstreams, &config.dns),
            admin_listen: match args.admin_listen.or(config.admin.listen) {
                Some(addr) => addr,
                None => parse_default(DEFAULT_ADMIN_LISTEN)?,
            },
            web_listen: match args.web_listen.or(config.web.listen) {
                Some(addr) => addr,
                None => parse_default(web::DEFAULT_WEB_LISTEN)?,
            },
            config,
        })
    }
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
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    let store = match &settings.database {
        Some(url) => Store::connect(url).await,
        None => Store::connect_data_dir(&settings.data_dir).await,
    }
    .context("opening the database")?;
    let demo = settings.sources.policy.is_none();
    if demo {
        demo::seed(&store).await?;
    }

    let mut writer_config = EventWriterConfig::new(settings.data_dir.join("events.spill"));
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
    let loaded = tokio::task::spawn_blocking(move || loading.load()).await??;
    let identities = hallpass_engine::sessions::read_identities(&store, &loaded.policy).await?;
    let school = loaded.policy.school_name().to_string();
    let engine = Arc::new(Engine::new(Snapshot::new(
        loaded.policy,
        loaded.catalog,
        Arc::new(identities),
        Arc::default(),
    )));

    let stop = CancellationToken::new();
    let dns = dns::start(&settings.dns, Arc::clone(&engine), writer.clone()).await?;
    let admin_listener = admin::bind(settings.admin_listen).await?;
    let admin_addr = admin_listener.local_addr()?;
    let console = web::Console::bind(
        settings.web_listen,
        &settings.config.web,
        &store,
        Arc::clone(&engine),
        sources.policy.clone(),
        demo,
    )
    .await?;

    // The banner is for whoever started us; a closed stdout (a supervisor that
    // discards it) must not stop the server.
    let banner = || -> std::io::Result<()> {
        say!("Hallpass is filtering for {school}");
        say!("  {}", sources.describe());
        for addr in dns.local_addrs() {
            say!("  DNS        udp+tcp {addr}");
        }
        say!("  upstreams  {}", join(&settings.dns.upstreams));
        say!("  admin      http://{admin_addr}/metrics  http://{admin_addr}/healthz");
        say!("  database   {}", hallpass_store::redact_url(store.url()));
        console.banner()?;
        if demo {
            say!("Demo school: logon sessions for the built-in demo people:");
            for (ip, username, who) in demo::SESSIONS {
                say!("  {ip:<10} {username:<13} {who}");
            }
            say!("  (any other address is unidentified: the policy blocks it, clause 2.1)");
            if let Some(addr) = dns.local_addrs().first() {
                say!(
                    "Try: dig @{} -p {} www.facebook.com -b 127.0.0.3   (marketing: allowed)",
                    addr.ip(),
                    addr.port()
                );
            }
        }
        say!("Stop with Ctrl-C (or SIGTERM); reload the policy with SIGHUP.");
        Ok(())
    };
    let _ = banner();

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(hallpass_engine::sessions::follow_sessions(
        Arc::clone(&engine),
        store.clone(),
        stop.clone(),
    ));
    tasks.spawn(live::follow_files(
        Arc::clone(&engine),
        store.clone(),
        sources,
        loaded.stamps,
        stop.clone(),
    ));
    tasks.spawn(retention_daily(
        store.clone(),
        settings.config.retention.clone(),
        stop.clone(),
    ));
    tasks.spawn(console.run(stop.clone()));
    let admin_state = admin::AdminState {
        engine: Arc::clone(&engine),
        writer: writer.clone(),
        dns_metrics: dns.metrics(),
    };
    let admin_stop = stop.clone();
    tasks.spawn(async move {
        if let Err(error) = admin::serve(admin_listener, admin_state, admin_stop).await {
            tracing::error!("admin HTTP stopped: {error:#}");
        }
    });

    shutdown_signal().await;
    tracing::info!("stopping: no new queries; draining recorded events");
    stop.cancel();
    dns.shutdown().await;
    while tasks.join_next().await.is_some() {}
    writer.shutdown().await;
    let _ = writer_task.await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Runs retention once a day (the first run an hour after start, off the busy start-up).
async fn retention_daily(
    store: Store,
    config: crate::config::RetentionConfig,
    stop: CancellationToken,
) {
    let retention = retention_from_config(&config);
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + std::time::Duration::from_secs(3600),
        std::time::Duration::from_secs(24 * 3600),
    );
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store
            .retention_run(&retention, jiff::Timestamp::now())
            .await
        {
            Ok(report) => tracing::info!(
                events = report.total_events(),
                content = report.content,
                sessions = report.sessions,
                "retention run deleted expired records"
            ),
            Err(error) => tracing::error!("retention run failed: {error:#}"),
        }
    }
}

/// The configured retention periods, with the store's defaults for those not given.
fn retention_from_config(config: &crate::config::RetentionConfig) -> hallpass_store::Retention {
    let days = |value: Option<u32>, default: std::time::Duration| {
        value.map_or(default, |days| {
            std::time::Duration::from_secs(u64::from(days) * 24 * 3600)
        })
    };
    let defaults = hallpass_store::Retention::default();
    hallpass_store::Retention {
        dns: days(config.dns_days, defaults.dns),
        web: days(config.web_days, defaults.web),
        mail: days(config.mail_days, defaults.mail),
        file: days(config.file_days, defaults.file),
        logon: days(config.logon_days, defaults.logon),
        content: days(config.content_days, defaults.content),
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
