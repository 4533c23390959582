//! The admin HTTP port: Prometheus `/metrics` and `/healthz`.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::BoxFuture;

use super::Settings;
use super::services::Service;
use super::shared::Shared;

/// The admin listener: binds `admin_listen`; serves until the stop signal.
pub fn service<'a>(
    shared: &'a Shared,
    settings: &'a Settings,
) -> BoxFuture<'a, anyhow::Result<Option<Service>>> {
    Box::pin(async move {
        let addr = settings.admin_listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|error| anyhow::anyhow!("admin HTTP: cannot listen on {addr}: {error}"))?;
        let bound = listener.local_addr()?;
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .with_state(shared.clone());
        let stop = shared.stop.clone();
        let run = async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .map_err(|error| anyhow::anyhow!("admin HTTP on {bound}: {error}"))
        };
        Ok(Some(Service {
            name: "admin",
            addrs: vec![bound],
            banner: vec![format!(
                "admin      http://{bound}/metrics  http://{bound}/healthz"
            )],
            run: Box::pin(run),
        }))
    })
}

/// `200 ok ...` when every service runs and nothing is degraded; otherwise `503` with a
/// line `degraded: PROBLEM` for each problem.
async fn healthz(State(shared): State<Shared>) -> impl IntoResponse {
    let mut problems = shared.health.problems();
    problems.extend(writer_problems(&shared));
    let snapshot = shared.engine.snapshot();
    if problems.is_empty() {
        return (
            StatusCode::OK,
            format!(
                "ok generation={} sessions={}\n",
                snapshot.generation,
                snapshot.identities.len()
            ),
        );
    }
    let mut body = String::new();
    for problem in problems {
        let _ = writeln!(body, "degraded: {problem}");
    }
    (StatusCode::SERVICE_UNAVAILABLE, body)
}

/// What the event writer's counters say is wrong.
fn writer_problems(shared: &Shared) -> Vec<String> {
    let writer = shared.writer.metrics().snapshot();
    // The database file deleted or replaced under the server, and the like.
    let mut problems = shared.writer.problems();
    if writer.lost > 0 {
        problems.push(format!(
            "{} events lost (neither committed nor spilled)",
            writer.lost
        ));
    }
    problems
}

async fn metrics(State(shared): State<Shared>) -> impl IntoResponse {
    let mut out = String::with_capacity(8 * 1024);
    shared.metrics.render(&mut out);
    let writer = shared.writer.metrics().snapshot();
    let snapshot = shared.engine.snapshot();
    let gauges: [(&str, &str, &str, u64); 10] = [
        (
            "hallpass_event_queue_depth",
            "gauge",
            "Events waiting for the database writer.",
            writer.queue_depth,
        ),
        (
            "hallpass_event_queue_bytes",
            "gauge",
            "Approximate memory held by events waiting for the database writer.",
            writer.queue_bytes,
        ),
        (
            "hallpass_events_lost_total",
            "counter",
            "Events that could be neither committed nor spilled (spill file unwritable).",
            writer.lost,
        ),
        (
            "hallpass_events_written_total",
            "counter",
            "Events committed to the database.",
            writer.events_written,
        ),
        (
            "hallpass_event_batches_total",
            "counter",
            "Database transactions committed by the event writer.",
            writer.batches,
        ),
        (
            "hallpass_events_spilled_total",
            "counter",
            "Events written to the local spill file because the database was slow or down.",
            writer.spilled,
        ),
        (
            "hallpass_events_replayed_total",
            "counter",
            "Spilled events replayed into the database.",
            writer.replayed,
        ),
        (
            "hallpass_snapshot_generation",
            "gauge",
            "Generation of the policy snapshot in force.",
            snapshot.generation,
        ),
        (
            "hallpass_sessions_active",
            "gauge",
            "Logon sessions known to the enforcement points.",
            snapshot.identities.len() as u64,
        ),
        (
            "hallpass_reload_refused_total",
            "counter",
            "Reloads of the policy or catalog refused (the previous ones kept serving).",
            shared.health.reload_refused_total(),
        ),
    ];
    for (name, kind, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    snapshot.render_metrics(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
