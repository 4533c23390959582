//! The console's pages for alerts (routed to the caller's role) and for who is logged on
//! where. Forms post to page routes that call the same `ops` functions as the API, then
//! redirect back (post/redirect/get).

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{Layout, query, render};
use crate::WebState;
use crate::access::{Can, op};
use crate::error::ApiError;
use crate::ops::alerts::{self, AlertDetail, AlertQuery, AlertStatusBody, AlertView};
use crate::ops::sessions::{self, SessionView};

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/alerts", get(alerts_page))
        .route("/alerts/{id}", get(alert_page))
        .route("/alerts/{id}/status", post(set_status))
        .route("/sessions", get(sessions_page))
}

#[derive(Debug, Default, Deserialize)]
struct AlertsQuery {
    /// `all` shows closed alerts too.
    show: Option<String>,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    layout: Layout,
    all: bool,
    alerts: Vec<AlertView>,
}

async fn alerts_page(
    State(state): State<WebState>,
    can: Can<op::HandleAlerts>,
    q: Result<Query<AlertsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let all = q.show.as_deref() == Some("all");
    let list = alerts::list(
        &can,
        state.guarded(),
        &AlertQuery {
            open: Some(!all),
            person: None,
        },
    )
    .await?;
    Ok(render(&AlertsPage {
        layout: Layout::new("Alerts", Some(can.caller())),
        all,
        alerts: list,
    }))
}

#[derive(Template)]
#[template(path = "alert.html")]
struct AlertPage {
    layout: Layout,
    detail: AlertDetail,
    evidence: Vec<(String, String)>,
    /// The caller may open an incident from it.
    incidents: bool,
}

async fn alert_page(
    State(state): State<WebState>,
    can: Can<op::HandleAlerts>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let detail = alerts::get(&can, state.guarded(), id).await?;
    let evidence = detail
        .occurrences
        .iter()
        .map(|o| (o.at.to_string(), o.evidence.to_string()))
        .collect();
    Ok(render(&AlertPage {
        layout: Layout::new(&format!("Alert #{id}"), Some(can.caller())),
        detail,
        evidence,
        incidents: can.also::<op::ManageIncidents>().is_some(),
    }))
}

/// The form carries `csrf_token` beside its fields.
#[derive(Debug, Deserialize)]
struct StatusForm {
    status: String,
    #[serde(default)]
    outcome: String,
}

async fn set_status(
    State(state): State<WebState>,
    can: Can<op::HandleAlerts>,
    Path(id): Path<i64>,
    body: Result<Form<StatusForm>, axum::extract::rejection::FormRejection>,
) -> Result<Redirect, ApiError> {
    let Form(f) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let body = AlertStatusBody {
        status: f.status,
        outcome: Some(f.outcome).filter(|o| !o.trim().is_empty()),
    };
    alerts::set_status(&can, state.guarded(), id, &body).await?;
    Ok(Redirect::to(&format!("/alerts/{id}")))
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    layout: Layout,
    sessions: Vec<SessionView>,
}

async fn sessions_page(
    State(state): State<WebState>,
    can: Can<op::LogonSessions>,
) -> Result<Response, ApiError> {
    Ok(render(&SessionsPage {
        layout: Layout::new("Logged on now", Some(can.caller())),
        sessions: sessions::active(&can, state.guarded()).await?,
    }))
}
