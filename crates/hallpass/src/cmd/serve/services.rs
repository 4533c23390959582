//! `serve` as a table of services. Each entry builds one service from its settings and
//! the [`Shared`] state: it binds its sockets and returns a [`Service`] whose future
//! serves them. Every entry is built (every socket bound) before any future runs, so a
//! port in use fails start-up naming the service and address; then all run until the
//! one stop signal, and the first to fail stops the rest.

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::task::JoinSet;

use super::Settings;
use super::shared::Shared;

/// One running part of `serve`: an enforcement point, a listener or a follower.
pub struct Service {
    /// Short and stable: names it in logs, errors and `/healthz`.
    pub name: &'static str,
    /// The addresses it is bound to (empty for a follower), in configuration order.
    pub addrs: Vec<SocketAddr>,
    /// Lines for the start-up banner (from the bound addresses).
    pub banner: Vec<String>,
    /// Serves until `shared.stop` is cancelled, then returns `Ok`. An `Err`, or an `Ok`
    /// before the stop, is a failure: it stops every other service and `serve` exits
    /// non-zero.
    pub run: BoxFuture<'static, anyhow::Result<()>>,
}

impl Service {
    /// A service with no socket (a follower, a watcher).
    pub fn follower(
        name: &'static str,
        run: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> Service {
        Service {
            name,
            addrs: Vec::new(),
            banner: Vec::new(),
            run: Box::pin(run),
        }
    }
}

/// One entry of the table: binds (if enabled) and returns the service, `Ok(None)` when
/// its configuration leaves it off. Must not start serving: only the returned future may.
pub type Build =
    for<'a> fn(&'a Shared, &'a Settings) -> BoxFuture<'a, anyhow::Result<Option<Service>>>;

/// Every service `serve` runs, in banner order. Adding one is a function of type
/// [`Build`] and one line here.
pub const SERVICES: &[Build] = &[
    super::dns::service,
    super::admin::service,
    super::web::service,
    super::portal::service,
    super::radius::service,
    super::mail::service,
    super::proxy::service,
    super::followers::sessions,
    super::followers::exceptions,
    super::followers::session_expiry,
    super::shared_credentials::service,
    super::safeguarding::service,
    super::mailer::service,
    super::followers::files,
    super::followers::retention,
];

/// Builds every entry of `table` in order; the first error stops and drops (closes)
/// everything bound so far.
pub async fn build_all(
    table: &[Build],
    shared: &Shared,
    settings: &Settings,
) -> anyhow::Result<Vec<Service>> {
    let mut services = Vec::with_capacity(table.len());
    for build in table {
        if let Some(service) = build(shared, settings).await? {
            services.push(service);
        }
    }
    Ok(services)
}

/// How long services may take to stop once the stop signal is given.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Runs every service until `shared.stop` is cancelled (by a signal, or by the first
/// service to fail), then waits up to [`STOP_GRACE`] for all of them to finish. `Err`
/// names the services that failed.
pub async fn run_all(services: Vec<Service>, shared: &Shared) -> anyhow::Result<()> {
    let stop = shared.stop.clone();
    let mut running = JoinSet::new();
    let mut names = std::collections::HashMap::new();
    for service in services {
        let name = service.name;
        let id = running.spawn(async move { (name, service.run.await) }).id();
        names.insert(id, name);
    }
    let mut failures: Vec<String> = Vec::new();
    let grace = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(grace);
    let mut grace_armed = false;
    loop {
        tokio::select! {
            _ = stop.cancelled(), if !grace_armed => {
                grace_armed = true;
                grace.as_mut().reset(tokio::time::Instant::now() + STOP_GRACE);
            }
            _ = &mut grace, if grace_armed => {
                let mut late: Vec<&str> = names.values().copied().collect();
                late.sort_unstable();
                running.abort_all();
                failures.push(format!("did not stop within {} s: {}", STOP_GRACE.as_secs(), late.join(", ")));
                break;
            }
            joined = running.join_next_with_id() => {
                let Some(joined) = joined else { break };
                let (name, outcome) = match joined {
                    Ok((id, (name, outcome))) => {
                        names.remove(&id);
                        (name, outcome)
                    }
                    Err(join) => {
                        let name = names.remove(&join.id()).unwrap_or("?");
                        (name, Err(anyhow::anyhow!("panicked: {join}")))
                    }
                };
                let why = match outcome {
                    Ok(()) if stop.is_cancelled() => continue,
                    Ok(()) => "stopped on its own".to_string(),
                    Err(error) => format!("{error:#}"),
                };
                tracing::error!(service = name, "{why}; stopping every service");
                shared.health.service_stopped(name, &why);
                failures.push(format!("{name}: {why}"));
                stop.cancel();
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!("service failed: {}", failures.join("; ")))
    }
}
