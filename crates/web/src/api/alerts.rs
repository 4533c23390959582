//! `/api/v1/alerts`: alerts routed to the caller's role (op `HandleAlerts`).

use axum::Json;
use axum::extract::{Path, Query, State};

use crate::WebState;
use crate::access::{Can, op};
use crate::auth::JsonBody;
use crate::error::ApiError;
use crate::ops::alerts::{self, AlertDetail, AlertQuery, AlertStatusBody, AlertView};

/// Alerts routed to the caller's role, newest first (open ones unless `open=false`).
/// Naming a person is audited.
#[utoipa::path(get, path = "/api/v1/alerts", params(AlertQuery),
    responses((status = 200, body = Vec<AlertView>), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_alerts(
    State(state): State<WebState>,
    can: Can<op::HandleAlerts>,
    query: Result<Query<AlertQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AlertView>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(alerts::list(&can, state.guarded(), &q).await?))
}

/// One alert with its evidence (metadata only); the view is audited.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = AlertDetail), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_alert(
    State(state): State<WebState>,
    can: Can<op::HandleAlerts>,
    Path(id): Path<i64>,
) -> Result<Json<AlertDetail>, ApiError> {
    Ok(Json(alerts::get(&can, state.guarded(), id).await?))
}

/// Acknowledge, escalate or close (with the outcome) an alert; audited.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/status", params(("id" = i64, Path)),
    request_body = AlertStatusBody,
    responses((status = 200, body = AlertView), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn set_alert_status(
    State(state): State<WebState>,
    can: Can<op::HandleAlerts>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<AlertStatusBody>,
) -> Result<Json<AlertView>, ApiError> {
    Ok(Json(
        alerts::set_status(&can, state.guarded(), id, &body).await?,
    ))
}
