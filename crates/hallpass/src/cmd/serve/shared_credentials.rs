//! The `shared-credentials` follower: every few seconds it looks at the open logon
//! sessions for one account on two devices at once (beyond a grace, so moving from one
//! PC to another is not an offence) and raises a conduct alert with the evidence: both
//! sessions' times, workstations and addresses. A pair already recorded raises nothing
//! more, so one pair of sessions is exactly one alert however long it lasts.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use hallpass_store::alerts::{NewAlert, Raised};
use serde::Deserialize;

use super::Settings;
use super::services::Service;
use super::shared::Shared;

/// `[shared_credentials]` in the configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SharedCredentialsSection {
    /// Look for shared log-ins (default true).
    pub enabled: Option<bool>,
    /// Seconds two sessions may overlap before it counts (default 120).
    pub grace_seconds: Option<u64>,
    /// The policy document and clause the alert cites (default: the policy's first
    /// document, clause 2.2 as in the WCS ICT policy: "must not use anyone else's log-in").
    pub document: Option<String>,
    pub clause: Option<String>,
}

const DEFAULT_GRACE: Duration = Duration::from_secs(120);
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// More pairs for the same account within a day join its open alert (count + 1).
const FOLD: Duration = Duration::from_secs(24 * 3600);

pub fn service<'a>(
    shared: &'a Shared,
    settings: &'a Settings,
) -> BoxFuture<'a, anyhow::Result<Option<Service>>> {
    let section = settings.config.shared_credentials.clone();
    let shared = shared.clone();
    Box::pin(async move {
        if section.enabled == Some(false) {
            return Ok(None);
        }
        let grace = section
            .grace_seconds
            .map_or(DEFAULT_GRACE, Duration::from_secs);
        Ok(Some(Service::follower("shared-credentials", async move {
            let mut tick = tokio::time::interval(CHECK_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shared.stop.cancelled() => return Ok(()),
                    _ = tick.tick() => {}
                }
                if let Err(error) = check(&shared, &section, grace).await {
                    tracing::warn!("shared log-in check failed (tried again shortly): {error:#}");
                }
            }
        })))
    })
}

/// One look at the open sessions; returns how many new alerts or folds it recorded.
pub async fn check(
    shared: &Shared,
    section: &SharedCredentialsSection,
    grace: Duration,
) -> anyhow::Result<usize> {
    let sessions = shared.store.sessions().active().await?;
    let now = shared.clock.now();
    let snapshot = Arc::clone(&shared.engine.current());
    let document = section
        .document
        .clone()
        .or_else(|| snapshot.policy.documents().first().map(|d| d.id.clone()));
    let clause = section.clause.clone().unwrap_or_else(|| "2.2".to_string());
    let mut recorded = 0;
    for found in hallpass_engine::shared_credentials::find(&sessions, grace, now) {
        let [a, b] = found.sessions;
        // Staff cases go to the headteacher, not to colleagues; pupils' to ICT support.
        let route = if a.role == "student" || a.role == "guest" {
            "network_manager"
        } else {
            "headteacher"
        };
        let place = |s: &hallpass_store::sessions::ActiveSession| match &s.workstation {
            Some(ws) => format!("{ws} ({})", s.ip),
            None => s.ip.to_string(),
        };
        let summary = format!(
            "{} was logged on at {} and {} at once for {} minutes",
            found.username,
            place(a),
            place(b),
            found.overlap.as_secs() / 60
        );
        let sessions_seen = [a, b].map(|s| {
            serde_json::json!({
                "ip": s.ip.to_string(),
                "workstation": s.workstation,
                "started": s.started.to_string(),
                "last_seen": s.last_seen.to_string(),
            })
        });
        let evidence = serde_json::json!({
            "sessions": sessions_seen,
            "overlap_seconds": found.overlap.as_secs(),
        });
        let raised = shared
            .store
            .alerts()
            .raise(
                &NewAlert {
                    person: found.username,
                    year_group: a.year_group.as_deref(),
                    kind: "conduct",
                    theme: "shared-credentials",
                    severity: 2,
                    route,
                    document: document.as_deref(),
                    clause: Some(&clause),
                    summary: &summary,
                    key: &found.key,
                    evidence: &evidence,
                },
                FOLD,
                now,
            )
            .await?;
        match raised {
            Raised::Known(_) => {}
            Raised::New(id) | Raised::Folded(id) => {
                recorded += 1;
                tracing::warn!(
                    alert = id,
                    person = found.username,
                    "shared log-in: {summary}"
                );
            }
        }
    }
    Ok(recorded)
}
