//! `/api/v1/sessions`: logon and logoff from scripts and agents (token scope `sessions`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use crate::WebState;
use crate::access::{Can, op};
use crate::auth::JsonBody;
use crate::error::ApiError;
use crate::ops::sessions::{self, EndByAddress, NewSessionBody, SessionView};

/// `{"ended": N}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ended {
    pub ended: u64,
}

/// Record a logon: the person is at that address from now (whoever was there is logged
/// off). DNS applies their policy within a second.
#[utoipa::path(post, path = "/api/v1/sessions", request_body = NewSessionBody,
    responses((status = 201, body = crate::ops::exceptions::Created), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn start_session(
    State(state): State<WebState>,
    can: Can<op::LogonSessions>,
    JsonBody(body): JsonBody<NewSessionBody>,
) -> Result<Response, ApiError> {
    let id = sessions::start(&can, state.guarded(), &body).await?;
    Ok(super::created(id))
}

/// Who is logged on where, and since when.
#[utoipa::path(get, path = "/api/v1/sessions",
    responses((status = 200, body = Vec<SessionView>), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_sessions(
    State(state): State<WebState>,
    can: Can<op::LogonSessions>,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    Ok(Json(sessions::active(&can, state.guarded()).await?))
}

/// Record a logoff at an address (`?ip=ADDR`), whoever was logged on there.
#[utoipa::path(delete, path = "/api/v1/sessions", params(EndByAddress),
    responses((status = 200, body = Ended), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)))]
pub async fn end_session_at(
    State(state): State<WebState>,
    can: Can<op::LogonSessions>,
    query: Result<Query<EndByAddress>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Ended>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let ended = sessions::end_at(&can, state.guarded(), &q.ip).await?;
    Ok(Json(Ended { ended }))
}

/// Record a logoff of the session the logon call returned.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn end_session(
    State(state): State<WebState>,
    can: Can<op::LogonSessions>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    sessions::end(&can, state.guarded(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Keep a session alive (an agent calls this every few minutes); 404 when it has ended.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/heartbeat", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn heartbeat(
    State(state): State<WebState>,
    can: Can<op::LogonSessions>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    sessions::heartbeat(&can, state.guarded(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
