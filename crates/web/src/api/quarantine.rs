//! `/api/v1/quarantine`: the email filter's held messages (op `ManageQuarantine`).

use axum::Json;
use axum::extract::{Path, Query, State};

use crate::WebState;
use crate::access::{Can, op};
use crate::auth::JsonBody;
use crate::error::ApiError;
use crate::ops::quarantine::{
    self, BlockView, HeldView, NewBlockBody, QuarantineDecisionBody, QuarantineQuery,
};

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

/// Senders blocked from the console (beside the policy file's blocked senders).
#[utoipa::path(get, path = "/api/v1/mail/blocks",
    responses((status = 200, body = Vec<BlockView>), (status = 403, body = crate::error::ErrorBody)))]
pub async fn blocks(
    State(state): State<WebState>,
    can: Can<op::ManageQuarantine>,
) -> Result<Json<Vec<BlockView>>, ApiError> {
    Ok(Json(quarantine::blocks(&can, state.guarded()).await?))
}

/// Block a sender (an address or a domain) with a reason; audited. Their mail is
/// refused with `550 5.7.1 Sender blocked by ICT support: REASON`.
#[utoipa::path(post, path = "/api/v1/mail/blocks", request_body = NewBlockBody,
    responses((status = 201, body = BlockView), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)))]
pub async fn block(
    State(state): State<WebState>,
    can: Can<op::ManageQuarantine>,
    JsonBody(body): JsonBody<NewBlockBody>,
) -> Result<(axum::http::StatusCode, Json<BlockView>), ApiError> {
    let added = quarantine::block(&can, state.guarded(), &body).await?;
    Ok((axum::http::StatusCode::CREATED, Json(added)))
}

/// Lift a sender block with a reason; audited.
#[utoipa::path(delete, path = "/api/v1/mail/blocks/{id}", params(("id" = i64, Path)),
    request_body = QuarantineDecisionBody,
    responses((status = 204), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn unblock(
    State(state): State<WebState>,
    can: Can<op::ManageQuarantine>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<QuarantineDecisionBody>,
) -> Result<axum::http::StatusCode, ApiError> {
    quarantine::unblock(&can, state.guarded(), id, &body).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
