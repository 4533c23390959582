//! The admin HTTP port: Prometheus `/metrics` and `/healthz`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hallpass_engine::Engine;
use hallpass_store::EventWriter;
use tokio_util::sync::CancellationToken;

/// What the admin endpoints read.
#[derive(Clone)]
pub struct AdminState {
    pub engine: Arc<Engine>,
    pub writer: EventWriter,
    pub dns_metrics: Arc<hallpass_dns::Metrics>,
}

pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen for admin HTTP on {addr}: {error}"))
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    Ok(())
}

async fn healthz(State(state): State<AdminState>) -> impl IntoResponse {
    let snapshot = state.engine.snapshot();
    (
        StatusCode::OK,
        format!(
            "ok generation={} sessions={}\n",
            snapshot.generation,
            snapshot.identities.len()
        ),
    )
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let mut out = String::with_capacity(8 * 1024);
    state.dns_metrics.render_prometheus(&mut out);
    let writer = state.writer.metrics().snapshot();
    let snapshot = state.engine.snapshot();
    let gauges: [(&str, &str, &str, u64); 9] = [
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
