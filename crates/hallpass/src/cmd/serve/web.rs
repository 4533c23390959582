//! The console as one of `serve`'s services: its `[web]` section, binding its listener,
//! and (for the demo school) one account per role with generated passwords.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use futures::future::BoxFuture;
use hallpass_engine::Engine;
use hallpass_store::Store;
use hallpass_web::{PolicySource, Role, WebConfig, WebState};
use serde::Deserialize;

use super::Settings;
use super::services::Service;
use super::shared::Shared;

/// `[web]` in the configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebSection {
    /// Start the console at all. Default true; `false` (or `serve --no-web`) leaves it
    /// off, for a node that only filters.
    pub enabled: Option<bool>,
    /// Address of the console (pages and `/api/v1`). Default 127.0.0.1:8080.
    pub listen: Option<SocketAddr>,
    /// Mark the session cookie `Secure`: set when a TLS proxy fronts the console.
    pub secure_cookies: Option<bool>,
}

pub const DEFAULT_WEB_LISTEN: &str = "127.0.0.1:8080";

/// Demo staff, one per console role the demo roster has no person for.
const DEMO_STAFF: &str = "username,display_name,role,year_group,form,email,mis_id\n\
ms.netman,Ms Netman,staff,,,ms.netman@demo.example,D0200\n\
mr.dsl,Mr Dsl,staff,,,mr.dsl@demo.example,D0201\n\
ms.hoy,Ms Head-of-Year,staff,,,ms.hoy@demo.example,D0202\n\
mr.head,Mr Head,staff,,,mr.head@demo.example,D0203\n\
ms.dpo,Ms Dpo,staff,,,ms.dpo@demo.example,D0204\n\
mr.governor,Mr Governor,staff,,,mr.governor@demo.example,D0205\n";

/// The demo's account per role: username, and for head_of_year the years.
const DEMO_ACCOUNTS: [(Role, &str, &[&str]); 8] = [
    (Role::NetworkManager, "ms.netman", &[]),
    (Role::Dsl, "mr.dsl", &[]),
    (Role::HeadOfYear, "ms.hoy", &["9"]),
    (Role::Headteacher, "mr.head", &[]),
    (Role::Dpo, "ms.dpo", &[]),
    (Role::Teacher, "mr.teacher", &[]),
    (Role::Governor, "mr.governor", &[]),
    (Role::Student, "ava.student", &[]),
];

/// A bound console, ready to serve.
pub struct Console {
    listener: tokio::net::TcpListener,
    state: WebState,
    pub addr: SocketAddr,
    /// role, username, password: the demo's accounts (empty otherwise).
    pub demo_accounts: Vec<(Role, String, String)>,
}

impl Console {
    /// Bind the console's address and build its state; for the demo, (re)create the
    /// demo accounts with fresh passwords.
    pub async fn bind(
        listen: SocketAddr,
        config: WebConfig,
        store: &Store,
        engine: Arc<Engine>,
        policy_file: Option<PathBuf>,
        demo: bool,
        clock: hallpass_clock::Clock,
    ) -> anyhow::Result<Console> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen for the console on {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        let policy = match policy_file {
            Some(path) => PolicySource::File(path),
            None => PolicySource::Text {
                name: "examples/policies/wcs.toml (built in)".into(),
                text: include_str!("../../../../../examples/policies/wcs.toml").into(),
            },
        };
        let demo_accounts = if demo {
            seed_demo_accounts(store, clock.now()).await?
        } else {
            Vec::new()
        };
        let state = WebState::new(store.clone(), engine, clock, config, policy);
        Ok(Console {
            listener,
            state,
            addr,
            demo_accounts,
        })
    }

    /// The banner lines for whoever started `serve`.
    fn banner(&self) -> Vec<String> {
        let mut lines = vec![format!("console: http://{}/", self.addr)];
        if !self.demo_accounts.is_empty() {
            lines.push("Demo console accounts (passwords are new at each start):".into());
            for (role, username, password) in &self.demo_accounts {
                lines.push(format!("  {:<16} {username:<13} {password}", role.as_str()));
            }
        }
        lines
    }
}

/// The console's entry in `serve`'s table of services.
pub fn service<'a>(
    shared: &'a Shared,
    settings: &'a Settings,
) -> BoxFuture<'a, anyhow::Result<Option<Service>>> {
    Box::pin(async move {
        if !settings.web_enabled {
            return Ok(None);
        }
        let config = WebConfig {
            secure_cookies: settings.config.web.secure_cookies.unwrap_or(false),
            notify_requesters: settings.config.notify.enabled(),
            ..WebConfig::default()
        };
        let console = Console::bind(
            settings.web_listen,
            config,
            &shared.store,
            Arc::clone(&shared.engine),
            settings.sources.policy.clone(),
            settings.sources.policy.is_none(),
            shared.clock.clone(),
        )
        .await?;
        let addr = console.addr;
        let banner = console.banner();
        let stop = shared.stop.clone();
        let run = async move {
            hallpass_web::serve(console.listener, console.state, stop)
                .await
                .map_err(|error| anyhow::anyhow!("console on {addr}: {error}"))
        };
        Ok(Some(Service {
            name: "console",
            addrs: vec![addr],
            banner,
            run: Box::pin(run),
        }))
    })
}

async fn seed_demo_accounts(
    store: &Store,
    now: jiff::Timestamp,
) -> anyhow::Result<Vec<(Role, String, String)>> {
    let staff = hallpass_store::people::parse_roster(DEMO_STAFF.as_bytes())
        .map_err(|errors| anyhow::anyhow!("demo staff: {errors:?}"))?;
    store
        .people()
        .import(&staff, false, "hallpass-demo", "built-in demo staff", now)
        .await
        .context("importing the demo staff")?;
    let mut out = Vec::new();
    for (role, username, years) in DEMO_ACCOUNTS {
        let password = hallpass_web::password::generate_password(username);
        let hash = hallpass_web::password::hash_password(&password)?;
        let accounts = store.accounts();
        if accounts.get(username).await?.is_some() {
            accounts
                .set_password(username, &hash, "hallpass-demo", now)
                .await?;
        } else {
            let years: Vec<String> = years.iter().map(|y| (*y).to_string()).collect();
            accounts
                .add(username, role.as_str(), &years, &hash, "hallpass-demo", now)
                .await
                .with_context(|| format!("demo account {username}"))?;
        }
        out.push((role, username.to_string(), password));
    }
    Ok(out)
}
