//! `/api/v1/sanctions`, `/api/v1/incidents`, `/api/v1/investigations` and
//! `/api/v1/people/{username}/content`: safeguarding case work behind the role matrix.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::WebState;
use crate::access::{Can, op};
use crate::auth::JsonBody;
use crate::error::ApiError;
use crate::ops::safeguarding::{
    self, ContentView, IncidentActionBody, IncidentDetail, NewIncidentBody, NewInvestigationBody,
    NewSanctionBody, SanctionQuery,
};

/// Withdraw a person's internet, email or network access, or one site, until a time.
/// DNS and the block page apply it within a second.
#[utoipa::path(post, path = "/api/v1/sanctions", request_body = NewSanctionBody,
    responses((status = 201, body = crate::ops::exceptions::Created), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn impose_sanction(
    State(state): State<WebState>,
    can: Can<op::ImposeSanctions>,
    JsonBody(body): JsonBody<NewSanctionBody>,
) -> Result<Response, ApiError> {
    let id = safeguarding::impose_sanction(&can, state.guarded(), &body).await?;
    Ok(super::created(id))
}

/// Sanctions in force (`?all=true`: ended ones too) on the people the caller may act for.
#[utoipa::path(get, path = "/api/v1/sanctions", params(SanctionQuery),
    responses((status = 200, body = Vec<Object>), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_sanctions(
    State(state): State<WebState>,
    can: Can<op::ImposeSanctions>,
    query: Result<Query<SanctionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<hallpass_store::safeguarding::SanctionRow>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(
        safeguarding::sanctions(&can, state.guarded(), &q).await?,
    ))
}

/// Lift a sanction early.
#[utoipa::path(delete, path = "/api/v1/sanctions/{id}", params(("id" = i64, Path)),
    responses((status = 204), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn lift_sanction(
    State(state): State<WebState>,
    can: Can<op::ImposeSanctions>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    safeguarding::lift_sanction(&can, state.guarded(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Open an incident (from an alert or by hand); a pupil's goes to their head of year.
#[utoipa::path(post, path = "/api/v1/incidents", request_body = NewIncidentBody,
    responses((status = 201, body = crate::ops::exceptions::Created), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn open_incident(
    State(state): State<WebState>,
    can: Can<op::ManageIncidents>,
    JsonBody(body): JsonBody<NewIncidentBody>,
) -> Result<Response, ApiError> {
    let id = safeguarding::open_incident(&can, state.guarded(), &body).await?;
    Ok(super::created(id))
}

/// Incidents the caller may see, newest first.
#[utoipa::path(get, path = "/api/v1/incidents",
    responses((status = 200, body = Vec<Object>), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_incidents(
    State(state): State<WebState>,
    can: Can<op::ManageIncidents>,
) -> Result<Json<Vec<hallpass_store::safeguarding::Incident>>, ApiError> {
    Ok(Json(safeguarding::incidents(&can, state.guarded()).await?))
}

/// One incident with its chronology (audited).
#[utoipa::path(get, path = "/api/v1/incidents/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = IncidentDetail), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_incident(
    State(state): State<WebState>,
    can: Can<op::ManageIncidents>,
    Path(id): Path<i64>,
) -> Result<Json<IncidentDetail>, ApiError> {
    Ok(Json(
        safeguarding::incident(&can, state.guarded(), id).await?,
    ))
}

/// Record an action in an incident's chronology (`outcome` closes it).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/actions", params(("id" = i64, Path)),
    request_body = IncidentActionBody,
    responses((status = 200, body = Object), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn record_action(
    State(state): State<WebState>,
    can: Can<op::ManageIncidents>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<IncidentActionBody>,
) -> Result<Json<hallpass_store::safeguarding::Incident>, ApiError> {
    Ok(Json(
        safeguarding::record_action(&can, state.guarded(), id, &body).await?,
    ))
}

/// Authorise an investigation of one person: purpose, time range, expiry.
#[utoipa::path(post, path = "/api/v1/investigations", request_body = NewInvestigationBody,
    responses((status = 201, body = crate::ops::exceptions::Created), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn open_investigation(
    State(state): State<WebState>,
    can: Can<op::AuthoriseInvestigations>,
    JsonBody(body): JsonBody<NewInvestigationBody>,
) -> Result<Response, ApiError> {
    let id = safeguarding::open_investigation(&can, state.guarded(), &body).await?;
    Ok(super::created(id))
}

/// Investigations of the people the caller may act for.
#[utoipa::path(get, path = "/api/v1/investigations",
    responses((status = 200, body = Vec<Object>), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_investigations(
    State(state): State<WebState>,
    can: Can<op::AuthoriseInvestigations>,
) -> Result<Json<Vec<hallpass_store::safeguarding::Investigation>>, ApiError> {
    Ok(Json(
        safeguarding::investigations(&can, state.guarded()).await?,
    ))
}

/// The content of a person's activity (search terms, message text, full URLs): only
/// inside the caller's open investigation of them (`403` otherwise); every read audited.
#[utoipa::path(get, path = "/api/v1/people/{username}/content", params(("username" = String, Path)),
    responses((status = 200, body = ContentView), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn person_content(
    State(state): State<WebState>,
    can: Can<op::ReadContent>,
    Path(username): Path<String>,
) -> Result<Json<ContentView>, ApiError> {
    Ok(Json(
        safeguarding::content(&can, state.guarded(), &username).await?,
    ))
}
