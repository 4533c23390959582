//! `/api/v1/quarantine`: the email filter's held messages (op `ManageQuarantine`).

use axum::Json;
use axum::extract::{Path, Query, State};

use crate::WebState;
use crate::access::{Can, op};
use crate::auth::JsonBody;
use crate::error::ApiError;
use crate::ops::quarantine::{self, HeldView, QuarantineDecisionBody, QuarantineQuery};

/// Held messages, newest first: envelope, rule, clause and detectors, never the content.
#[utoipa::path(get, path = "/api/v1/quarantine", params(QuarantineQuery),
    responses((status = 200, body = Vec<HeldView>), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<WebState>,
    can: Can<op::ManageQuarantine>,
    query: Result<Query<QuarantineQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<HeldView>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(quarantine::list(&can, state.guarded(), &q).await?))
}

/// Release a held message with a reason (audited): delivered once by the mail service.
#[utoipa::path(post, path = "/api/v1/quarantine/{id}/release", params(("id" = i64, Path)),
    request_body = QuarantineDecisionBody,
    responses((status = 200, body = HeldView), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn release(
    State(state): State<WebState>,
    can: Can<op::ManageQuarantine>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<QuarantineDecisionBody>,
) -> Result<Json<HeldView>, ApiError> {
    Ok(Json(
        quarantine::release(&can, state.guarded(), id, &body).await?,
    ))
}

/// Delete a held message with a reason (audited): its bytes are dropped.
#[utoipa::path(delete, path = "/api/v1/quarantine/{id}", params(("id" = i64, Path)),
    request_body = QuarantineDecisionBody,
    responses((status = 200, body = HeldView), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<WebState>,
    can: Can<op::ManageQuarantine>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<QuarantineDecisionBody>,
) -> Result<Json<HeldView>, ApiError> {
    Ok(Json(
        quarantine::delete(&can, state.guarded(), id, &body).await?,
    ))
}
