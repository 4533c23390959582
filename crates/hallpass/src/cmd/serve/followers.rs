//! The background followers of `serve`: services with no socket.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::Settings;
use super::services::Service;
use super::shared::Shared;

/// Logon sessions: a new or ended logon reaches every enforcement point within a second.
pub fn sessions<'a>(
    shared: &'a Shared,
    _: &'a Settings,
) -> BoxFuture<'a, anyhow::Result<Option<Service>>> {
    let (engine, store, stop) = (
        Arc::clone(&shared.engine),
        shared.store.clone(),
        shared.stop.clone(),
    );
    Box::pin(async move {
        Ok(Some(Service::follower("sessions", async move {
            hallpass_engine::sessions::follow_sessions(engine, store, stop).await;
            Ok(())
        })))
    })
}

/// Live exceptions (grants, warning acknowledgements, teacher overrides): a click in the
/// console or on the block page reaches every enforcement point within a second.
pub fn exceptions<'a>(
    shared: &'a Shared,
    _: &'a Settings,
) -> BoxFuture<'a, anyhow::Result<Option<Service>>> {
    let (engine, store, clock, stop) = (
        Arc::clone(&shared.engine),
        shared.store.clone(),
        shared.clock.clone(),
        shared.stop.clone(),
    );
    Box::pin(async move {
        Ok(Some(Service::follower("exceptions", async move {
            hallpass_engine::live::follow_live(engine, store, clock, stop).await;
            Ok(())
        })))
    })
}

/// The policy and catalog files: reloaded when they change or on SIGHUP.
pub fn files<'a>(
    shared: &'a Shared,
    _: &'a Settings,
) -> BoxFuture<'a, anyhow::Result<Option<Service>>> {
    let shared = shared.clone();
    Box::pin(async move {
        Ok(Some(Service::follower("files", async move {
            super::live::follow_files(shared).await;
            Ok(())
        })))
    })
}

/// Retention once a day (the first run an hour after start, off the busy start-up).
pub fn retention<'a>(
    shared: &'a Shared,
    settings: &'a Settings,
) -> BoxFuture<'a, anyhow::Result<Option<Service>>> {
    let retention = retention_from_config(&settings.config.retention);
    let (store, clock, stop) = (
        shared.store.clone(),
        shared.clock.clone(),
        shared.stop.clone(),
    );
    Box::pin(async move {
        Ok(Some(Service::follower("retention", async move {
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + Duration::from_secs(3600),
                Duration::from_secs(24 * 3600),
            );
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tick.tick() => {}
                }
                match store.retention_run(&retention, clock.now()).await {
                    Ok(report) => tracing::info!(
                        events = report.total_events(),
                        visits = report.visits,
                        content = report.content,
                        sessions = report.sessions,
                        "retention run deleted expired records"
                    ),
                    Err(error) => tracing::error!("retention run failed: {error:#}"),
                }
            }
        })))
    })
}

/// The event writer's task: it stops only when `serve` drains it, after every other
/// service; ending before the stop signal is a failure.
pub fn event_writer(shared: &Shared, task: tokio::task::JoinHandle<()>) -> Service {
    let stop = shared.stop.clone();
    Service::follower("event-writer", async move {
        tokio::select! {
            _ = stop.cancelled() => Ok(()),
            ended = task => match ended {
                Ok(()) => Err(anyhow::anyhow!("the event writer stopped")),
                Err(join) => Err(anyhow::anyhow!("the event writer failed: {join}")),
            },
        }
    })
}

/// The configured retention periods, with the store's defaults for those not given.
fn retention_from_config(config: &crate::config::RetentionConfig) -> hallpass_store::Retention {
    let days = |value: Option<u32>, default: Duration| {
        value.map_or(default, |days| {
            Duration::from_secs(u64::from(days) * 24 * 3600)
        })
    };
    let defaults = hallpass_store::Retention::default();
    let optional =
        |value: Option<u32>| value.map(|days| Duration::from_secs(u64::from(days) * 24 * 3600));
    hallpass_store::Retention {
        dns: days(config.dns_days, defaults.dns),
        visits: days(config.visits_days, defaults.visits),
        activity: days(config.activity_days, defaults.activity),
        traffic_person: optional(config.traffic_person_days),
        traffic_totals: optional(config.traffic_totals_days),
        batches: optional(config.batches_days),
        web: days(config.web_days, defaults.web),
        mail: days(config.mail_days, defaults.mail),
        file: days(config.file_days, defaults.file),
        logon: days(config.logon_days, defaults.logon),
        content: days(config.content_days, defaults.content),
    }
}

/// `[sessions]` in the configuration file.
#[derive(Debug, Clone, Default, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsSection {
    /// End a logon session not seen for this many minutes (no logoff, no heartbeat, no
    /// RADIUS interim update): a computer switched off at the wall. Off when absent, since
    /// sessions from `hallpass session start` and logon scripts without heartbeats are
    /// never refreshed; set it (e.g. 30) when every logon agent sends heartbeats.
    pub idle_minutes: Option<u32>,
}

/// Idle logon sessions end (`[sessions] idle_minutes`), checked every 5 s, audited.
pub fn session_expiry<'a>(
    shared: &'a Shared,
    settings: &'a Settings,
) -> BoxFuture<'a, anyhow::Result<Option<Service>>> {
    let idle = settings.config.sessions.idle_minutes;
    let (store, clock, stop) = (
        shared.store.clone(),
        shared.clock.clone(),
        shared.stop.clone(),
    );
    Box::pin(async move {
        let Some(minutes) = idle.filter(|m| *m > 0) else {
            return Ok(None);
        };
        let idle = jiff::SignedDuration::from_mins(i64::from(minutes));
        Ok(Some(Service::follower("session-expiry", async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tick.tick() => {}
                }
                let now = clock.now();
                match store.sessions().expire_idle(now - idle, now).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(sessions = n, "idle logon sessions ended");
                        let details = serde_json::json!({ "ended": n, "idle_minutes": minutes });
                        if let Err(error) = store
                            .audit()
                            .append("hallpass", "session.expire_idle", "", &details, now)
                            .await
                        {
                            tracing::warn!("could not audit ended idle sessions: {error:#}");
                        }
                    }
                    Err(error) => tracing::warn!("could not end idle sessions: {error:#}"),
                }
            }
        })))
    })
}
