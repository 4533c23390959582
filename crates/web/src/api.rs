//! The REST API under `/api/v1`: JSON, one endpoint per page, documented by the OpenAPI
//! document at `/api/v1/openapi.json`, which is generated from these handlers.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::WebState;
use crate::access::{Can, SignedIn, op};
use crate::auth::{self, JsonBody, LoginReply, LoginRequest, MeReply};
use crate::error::ApiError;
use crate::ops::{
    self, AuditQuery, AuditView, Dashboard, EventPage, EventQuery, ExplainQuery, ExplainView,
    PersonDetail, PersonView,
};
use crate::policy_view::PolicyView;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hallpass console API",
        description = "Sign in with POST /api/v1/login (session cookie + CSRF token) or send \
                       `Authorization: Bearer TOKEN` (from `hallpass token create`). Errors are \
                       {\"error\", \"reason\"}: 401 unauthenticated, 403 forbidden, 400 bad input."
    ),
    components(schemas(crate::error::ErrorBody))
)]
struct ApiDoc;

/// The API routes and the OpenAPI document they generate.
pub fn router() -> (axum::Router<WebState>, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(dashboard))
        .routes(routes!(events))
        .routes(routes!(my_events))
        .routes(routes!(people))
        .routes(routes!(person))
        .routes(routes!(policy))
        .routes(routes!(explain))
        .routes(routes!(audit))
        .split_for_parts();
    (router, doc)
}

/// Start a browser session.
#[utoipa::path(post, path = "/api/v1/login", request_body = LoginRequest,
    responses((status = 200, body = LoginReply, description = "signed in; the session cookie is set"),
              (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
async fn login(
    State(state): State<WebState>,
    auth::ClientIp(ip): auth::ClientIp,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let session = auth::sign_in(&state, &body.username, &body.password, ip).await?;
    Ok(([(header::SET_COOKIE, session.cookie)], Json(session.reply)).into_response())
}

/// End the browser session (needs the X-CSRF-Token header).
#[utoipa::path(post, path = "/api/v1/logout",
    responses((status = 204), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn logout(State(state): State<WebState>, who: SignedIn) -> Result<Response, ApiError> {
    auth::sign_out(&state, &who.0).await?;
    let secure = state.guarded().config.secure_cookies;
    Ok((
        axum::http::StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, auth::clear_cookie(secure))],
    )
        .into_response())
}

/// The caller's person, role and permitted operations.
#[utoipa::path(get, path = "/api/v1/me",
    responses((status = 200, body = MeReply), (status = 401, body = crate::error::ErrorBody)))]
async fn me(who: SignedIn) -> Json<MeReply> {
    Json(auth::me_reply(&who))
}

/// Queries and blocks over 24 hours and 7 days, by category, group, year group and site.
#[utoipa::path(get, path = "/api/v1/dashboard",
    responses((status = 200, body = Dashboard), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn dashboard(
    State(state): State<WebState>,
    can: Can<op::ViewDashboard>,
) -> Result<Json<Dashboard>, ApiError> {
    Ok(Json(ops::dashboard(&can, state.guarded()).await?))
}

/// Search recorded events (metadata only). Naming a person or address is audited.
#[utoipa::path(get, path = "/api/v1/events", params(EventQuery),
    responses((status = 200, body = EventPage), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn events(
    State(state): State<WebState>,
    can: Can<op::SearchActivity>,
    query: Result<Query<EventQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(ops::search_events(&can, state.guarded(), &q).await?))
}

/// The caller's own recorded events.
#[utoipa::path(get, path = "/api/v1/me/events", params(EventQuery),
    responses((status = 200, body = EventPage), (status = 403, body = crate::error::ErrorBody)))]
async fn my_events(
    State(state): State<WebState>,
    can: Can<op::ViewOwnActivity>,
    query: Result<Query<EventQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(ops::own_events(&can, state.guarded(), &q).await?))
}

/// The roster with each person's groups and policy groups.
#[utoipa::path(get, path = "/api/v1/people",
    responses((status = 200, body = Vec<PersonView>), (status = 403, body = crate::error::ErrorBody)))]
async fn people(
    State(state): State<WebState>,
    can: Can<op::ViewPeople>,
) -> Result<Json<Vec<PersonView>>, ApiError> {
    Ok(Json(ops::people(&can, state.guarded()).await?))
}

/// One person: groups, policy groups, open logon sessions.
#[utoipa::path(get, path = "/api/v1/people/{username}", params(("username" = String, Path)),
    responses((status = 200, body = PersonDetail), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn person(
    State(state): State<WebState>,
    can: Can<op::ViewPeople>,
    Path(username): Path<String>,
) -> Result<Json<PersonDetail>, ApiError> {
    Ok(Json(ops::person(&can, state.guarded(), &username).await?))
}

/// The live policy: documents, groups and rules in order with their clauses.
#[utoipa::path(get, path = "/api/v1/policy",
    responses((status = 200, body = PolicyView), (status = 403, body = crate::error::ErrorBody)))]
async fn policy(
    State(state): State<WebState>,
    can: Can<op::ViewPolicy>,
) -> Result<Json<PolicyView>, ApiError> {
    Ok(Json(ops::policy(&can, state.guarded()).await?))
}

/// What the policy decides for a person or group, target and time, with the trace.
#[utoipa::path(get, path = "/api/v1/explain", params(ExplainQuery),
    responses((status = 200, body = ExplainView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn explain(
    State(state): State<WebState>,
    can: Can<op::Explain>,
    query: Result<Query<ExplainQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ExplainView>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(ops::explain(&can, state.guarded(), &q).await?))
}

/// The audit log, newest first, with the whole chain verified.
#[utoipa::path(get, path = "/api/v1/audit", params(AuditQuery),
    responses((status = 200, body = AuditView), (status = 403, body = crate::error::ErrorBody)))]
async fn audit(
    State(state): State<WebState>,
    can: Can<op::ViewAudit>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditView>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(ops::audit(&can, state.guarded(), &q).await?))
}
