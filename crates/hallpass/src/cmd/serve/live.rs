//! Keeping the engine's snapshot current when the policy or catalog files change or on
//! SIGHUP (logon sessions are followed by `hallpass_engine::sessions`). Every rebuild happens here, off the
//! hot path; the enforcement points only ever see a complete snapshot.

use std::time::Duration;

use hallpass_engine::Snapshot;
use hallpass_engine::sessions::read_identities;

use super::shared::Shared;

/// How often the policy and catalog files' modification times are checked.
const FILE_POLL: Duration = Duration::from_secs(1);

/// Rebuilds the snapshot when the policy or catalog file changes, or on SIGHUP. A new
/// policy or catalog that does not load is refused loudly, and `/healthz` says so until
/// a reload is accepted; the old one keeps serving.
pub async fn follow_files(shared: Shared) {
    let Shared {
        engine,
        store,
        sources,
        loaded_stamps: mut stamps,
        stop,
        health,
        ..
    } = shared;
    let mut hangup = hangup_signal();
    let mut tick = tokio::time::interval(FILE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let forced = tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => false,
            _ = recv_hangup(&mut hangup) => true,
        };
        let now = sources.stamps();
        if !forced && now == stamps {
            continue;
        }
        stamps = now;
        if forced {
            tracing::info!("SIGHUP: reloading {}", sources.describe());
        } else {
            tracing::info!("a file changed: reloading {}", sources.describe());
        }
        // Compiling a large catalog takes a while: keep it off the async workers.
        let loading = sources.clone();
        let loaded = match tokio::task::spawn_blocking(move || loading.load()).await {
            Ok(result) => result,
            Err(join) => Err(anyhow::anyhow!("reload task failed: {join}")),
        };
        match loaded {
            Ok(loaded) => {
                let identities = match read_identities(&store, &loaded.policy).await {
                    Ok(identities) => identities,
                    Err(error) => {
                        let why = format!("could not read logon sessions: {error:#}");
                        tracing::error!("reload refused: {why}");
                        health.reload_refused(&why);
                        continue;
                    }
                };
                let next: Snapshot =
                    engine
                        .current()
                        .with_policy(loaded.policy, loaded.catalog, identities);
                tracing::info!(
                    generation = next.generation,
                    "reloaded: new policy and catalog in force"
                );
                engine.replace(next);
                health.reload_accepted();
            }
            Err(error) => {
                tracing::error!(
                    "reload refused, the previous policy and catalog stay in force: {error:#}"
                );
                health.reload_refused(&format!("{error:#}"));
            }
        }
    }
}

#[cfg(unix)]
fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|error| tracing::warn!("SIGHUP reload unavailable: {error}"))
        .ok()
}

#[cfg(unix)]
async fn recv_hangup(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
fn hangup_signal() -> Option<()> {
    None
}

#[cfg(not(unix))]
async fn recv_hangup(_: &mut Option<()>) {
    std::future::pending().await
}
