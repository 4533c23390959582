//! The REST API under `/api/v1`: JSON, one endpoint per page, documented by the OpenAPI
//! document at `/api/v1/openapi.json`, which is generated from these handlers.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod activity;
mod alerts;
mod declarations;
mod guests;
mod quarantine;
mod safeguarding;
mod sessions;

use crate::WebState;
use crate::access::{Can, SignedIn, op};
use crate::auth::{self, JsonBody, LoginReply, LoginRequest, MeReply};
use crate::error::ApiError;
use crate::ops::exceptions::{
    ApproveBody, Created, DenyBody, GrantView, NewOverrideBody, NewRequestBody, OverridableRule,
    OverrideView, RequestView,
};
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
        .routes(routes!(file_request, list_requests))
        .routes(routes!(get_request))
        .routes(routes!(approve_request))
        .routes(routes!(deny_request))
        .routes(routes!(grants))
        .routes(routes!(create_override, list_overrides))
        .routes(routes!(revoke_override))
        .routes(routes!(overridable_rules))
        .routes(routes!(
            sessions::start_session,
            sessions::list_sessions,
            sessions::end_session_at
        ))
        .routes(routes!(sessions::end_session))
        .routes(routes!(sessions::heartbeat))
        .routes(routes!(alerts::list_alerts))
        .routes(routes!(alerts::get_alert))
        .routes(routes!(alerts::set_alert_status))
        .routes(routes!(
            safeguarding::impose_sanction,
            safeguarding::list_sanctions
        ))
        .routes(routes!(safeguarding::lift_sanction))
        .routes(routes!(
            safeguarding::open_incident,
            safeguarding::list_incidents
        ))
        .routes(routes!(safeguarding::get_incident))
        .routes(routes!(safeguarding::record_action))
        .routes(routes!(
            safeguarding::open_investigation,
            safeguarding::list_investigations
        ))
        .routes(routes!(safeguarding::person_content))
        .routes(routes!(activity::person_activity))
        .routes(routes!(declarations::pending))
        .routes(routes!(declarations::accept))
        .routes(routes!(declarations::outstanding))
        .routes(routes!(guests::issue, guests::list))
        .routes(routes!(quarantine::list))
        .routes(routes!(quarantine::release))
        .routes(routes!(quarantine::delete))
        .routes(routes!(quarantine::blocks, quarantine::block))
        .routes(routes!(quarantine::unblock))
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

pub(crate) fn client_ip(ip: &auth::ClientIp) -> Result<std::net::IpAddr, ApiError> {
    ip.0.as_deref()
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| ApiError::Internal("the client's address is unknown".into()))
}

pub(crate) fn created(id: i64) -> Response {
    (axum::http::StatusCode::CREATED, Json(Created { id })).into_response()
}

/// Ask for a blocked site to be opened. Never grants anything by itself; rate limited
/// per address (429).
#[utoipa::path(post, path = "/api/v1/requests", request_body = NewRequestBody,
    responses((status = 201, body = Created), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
async fn file_request(
    State(state): State<WebState>,
    can: Can<op::RequestAccess>,
    ip: auth::ClientIp,
    JsonBody(body): JsonBody<NewRequestBody>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ip)?;
    let id = ops::exceptions::file_request(&can, state.guarded(), ip, &body).await?;
    Ok(created(id))
}

/// A reviewer's queue (ICT support: ordinary rules; the DSL: safeguarding rules), or the
/// caller's own requests.
#[utoipa::path(get, path = "/api/v1/requests",
    responses((status = 200, body = Vec<RequestView>), (status = 403, body = crate::error::ErrorBody)))]
async fn list_requests(
    State(state): State<WebState>,
    can: Can<op::RequestAccess>,
) -> Result<Json<Vec<RequestView>>, ApiError> {
    Ok(Json(
        ops::exceptions::list_requests(&can, state.guarded()).await?,
    ))
}

/// One request: its requester's own, or one in the caller's review queue.
#[utoipa::path(get, path = "/api/v1/requests/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = RequestView), (status = 404, body = crate::error::ErrorBody)))]
async fn get_request(
    State(state): State<WebState>,
    can: Can<op::RequestAccess>,
    Path(id): Path<i64>,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(
        ops::exceptions::get_request(&can, state.guarded(), id).await?,
    ))
}

/// Approve: opens the site for the requester, a group or everyone, until a time or until
/// the policy changes (which also drafts the policy-file change).
#[utoipa::path(post, path = "/api/v1/requests/{id}/approve", params(("id" = i64, Path)), request_body = ApproveBody,
    responses((status = 200, body = GrantView), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn approve_request(
    State(state): State<WebState>,
    can: Can<op::ReviewRequests>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<ApproveBody>,
) -> Result<Json<GrantView>, ApiError> {
    Ok(Json(
        ops::exceptions::approve(&can, state.guarded(), id, &body).await?,
    ))
}

/// Deny, with a reason the requester sees.
#[utoipa::path(post, path = "/api/v1/requests/{id}/deny", params(("id" = i64, Path)), request_body = DenyBody,
    responses((status = 204), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn deny_request(
    State(state): State<WebState>,
    can: Can<op::ReviewRequests>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<DenyBody>,
) -> Result<axum::http::StatusCode, ApiError> {
    ops::exceptions::deny(&can, state.guarded(), id, &body).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Grants in force.
#[utoipa::path(get, path = "/api/v1/grants",
    responses((status = 200, body = Vec<GrantView>), (status = 403, body = crate::error::ErrorBody)))]
async fn grants(
    State(state): State<WebState>,
    can: Can<op::ReviewRequests>,
) -> Result<Json<Vec<GrantView>>, ApiError> {
    Ok(Json(
        ops::exceptions::open_grants(&can, state.guarded()).await?,
    ))
}

/// Lift a rule marked `teacher_override` for one group until the end of the lesson (or
/// sooner).
#[utoipa::path(post, path = "/api/v1/overrides", request_body = NewOverrideBody,
    responses((status = 201, body = Created), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)))]
async fn create_override(
    State(state): State<WebState>,
    can: Can<op::OverrideRules>,
    JsonBody(body): JsonBody<NewOverrideBody>,
) -> Result<Response, ApiError> {
    let row = ops::exceptions::create_override(&can, state.guarded(), &body).await?;
    Ok(created(row.id))
}

/// Overrides in force: a teacher's own; all for heads of year and ICT support.
#[utoipa::path(get, path = "/api/v1/overrides",
    responses((status = 200, body = Vec<OverrideView>), (status = 403, body = crate::error::ErrorBody)))]
async fn list_overrides(
    State(state): State<WebState>,
    can: Can<op::OverrideRules>,
) -> Result<Json<Vec<OverrideView>>, ApiError> {
    Ok(Json(
        ops::exceptions::list_overrides(&can, state.guarded()).await?,
    ))
}

/// End an override early.
#[utoipa::path(delete, path = "/api/v1/overrides/{id}", params(("id" = i64, Path)),
    responses((status = 204), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn revoke_override(
    State(state): State<WebState>,
    can: Can<op::OverrideRules>,
    Path(id): Path<i64>,
) -> Result<axum::http::StatusCode, ApiError> {
    ops::exceptions::revoke_override(&can, state.guarded(), id).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The rules a teacher may lift (marked `teacher_override`).
#[utoipa::path(get, path = "/api/v1/overrides/rules",
    responses((status = 200, body = Vec<OverridableRule>), (status = 403, body = crate::error::ErrorBody)))]
async fn overridable_rules(
    State(state): State<WebState>,
    can: Can<op::OverrideRules>,
) -> Json<Vec<OverridableRule>> {
    Json(ops::exceptions::overridable_rules(&can, state.guarded()))
}
