//! `/api/v1/declarations`: the acceptable-use declaration at logon (000 §14), for logon
//! scripts (token scope `sessions`) and for the signed-in person's own browser.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::WebState;
use crate::access::{Can, op};
use crate::auth::{self, JsonBody};
use crate::error::ApiError;
use crate::ops::declarations::{
    self, AcceptBody, Outstanding, OutstandingQuery, PendingDeclaration, PendingQuery,
};
use crate::ops::exceptions::Created;

/// The declarations a person has still to accept under the live policy (empty: nothing
/// to show). A logon token names the person (`?user=`); a signed-in person sees their own.
#[utoipa::path(get, path = "/api/v1/declarations/pending", params(PendingQuery),
    responses((status = 200, body = Vec<PendingDeclaration>), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn pending(
    State(state): State<WebState>,
    can: Can<op::AnswerDeclarations>,
    query: Result<Query<PendingQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<PendingDeclaration>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(
        declarations::pending(&can, state.guarded(), &q).await?,
    ))
}

/// Record that the person accepted a declaration at its current version: 201 with the
/// acceptance's id, or 200 with the same id when it was recorded already. The restricted
/// group is lifted within a second.
#[utoipa::path(post, path = "/api/v1/declarations", request_body = AcceptBody,
    responses((status = 201, body = Created), (status = 200, body = Created),
              (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn accept(
    State(state): State<WebState>,
    can: Can<op::AnswerDeclarations>,
    ip: auth::ClientIp,
    JsonBody(body): JsonBody<AcceptBody>,
) -> Result<Response, ApiError> {
    let request_ip = ip.0.as_deref().and_then(|ip| ip.parse().ok());
    let accepted = declarations::accept(&can, state.guarded(), &body, request_ip).await?;
    let status = if accepted.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(Created { id: accepted.id })).into_response())
}

/// Who has not accepted the current declarations (by year; `?group=`, `?year=` filter).
#[utoipa::path(get, path = "/api/v1/declarations/outstanding", params(OutstandingQuery),
    responses((status = 200, body = Outstanding), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)))]
pub async fn outstanding(
    State(state): State<WebState>,
    can: Can<op::ViewDeclarations>,
    query: Result<Query<OutstandingQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Outstanding>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(
        declarations::outstanding(&can, state.guarded(), &q).await?,
    ))
}
