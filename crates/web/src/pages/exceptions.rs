//! The console's pages for access requests (everyone files; reviewers approve or deny)
//! and teacher overrides. Each form posts to a page route that calls the same `ops`
//! function as the API, then redirects back with a notice (post/redirect/get), so a
//! refresh never files or approves twice. Refusals show the API's reason.

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{Layout, query, render};
use crate::WebState;
use crate::access::{Can, op};
use crate::auth;
use crate::error::ApiError;
use crate::ops::exceptions::{
    self, ApproveBody, DenyBody, GrantView, NewOverrideBody, NewRequestBody, OverridableRule,
    OverrideView, RequestView,
};

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/requests", get(requests_page).post(file_request))
        .route("/requests/{id}/approve", post(approve))
        .route("/requests/{id}/deny", post(deny))
        .route("/overrides", get(overrides_page).post(create_override))
        .route("/overrides/{id}/revoke", post(revoke_override))
}

/// `?done=` after a form: which notice to show. Fixed texts, so nothing from the query
/// string is echoed into the page.
#[derive(Debug, Default, Deserialize)]
struct Done {
    done: Option<String>,
}

fn notice(done: &Done) -> Option<&'static str> {
    Some(match done.done.as_deref()? {
        "filed" => {
            "Your request was sent. It is reviewed by ICT support (or the DSL); the outcome shows here."
        }
        "approved" => "Approved: the site opens within a second for whoever the grant covers.",
        "denied" => "Denied: the person who asked sees your reason.",
        "created" => "Override in force: the class can reach it within a second.",
        "revoked" => "Override revoked: the rule applies again.",
        _ => return None,
    })
}

/// A form's value turned into `Form`'s error: the request was malformed.
fn form<T>(f: Result<Form<T>, axum::extract::rejection::FormRejection>) -> Result<T, ApiError> {
    f.map(|Form(f)| f)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// How long an approval lasts, as the form offers it.
const DURATIONS: &[(&str, &str)] = &[
    ("hour", "An hour"),
    ("day", "A day"),
    ("date", "Until the date below"),
    ("policy-change", "Until the policy changes"),
];

#[derive(Template)]
#[template(path = "requests.html")]
struct RequestsPage {
    layout: Layout,
    notice: Option<&'static str>,
    reviewer: bool,
    pending: Vec<RequestView>,
    decided: Vec<RequestView>,
    grants: Vec<GrantView>,
    scopes: &'static [&'static str],
    groups: Vec<String>,
    durations: &'static [(&'static str, &'static str)],
}

async fn requests_page(
    State(state): State<WebState>,
    can: Can<op::RequestAccess>,
    done: Result<Query<Done>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let done = query(done)?;
    let g = state.guarded();
    let (pending, decided) = exceptions::list_requests(&can, g)
        .await?
        .into_iter()
        .partition(|r| r.status == "pending");
    let review = can.also::<op::ReviewRequests>();
    let grants = match &review {
        Some(review) => exceptions::open_grants(review, g).await?,
        None => Vec::new(),
    };
    Ok(render(&RequestsPage {
        layout: Layout::new("Access requests", Some(can.caller())),
        notice: notice(&done),
        reviewer: review.is_some(),
        pending,
        decided,
        grants,
        scopes: exceptions::scopes_for(can.caller().role()),
        groups: exceptions::policy_groups(g),
        durations: DURATIONS,
    }))
}

/// The page forms carry `csrf_token` beside their fields, so they are read into these
/// (which ignore it) rather than the API's bodies (which refuse unknown fields).
#[derive(Debug, Deserialize)]
struct RequestForm {
    target: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
struct DenyForm {
    reason: String,
}

async fn file_request(
    State(state): State<WebState>,
    can: Can<op::RequestAccess>,
    ip: auth::ClientIp,
    body: Result<Form<RequestForm>, axum::extract::rejection::FormRejection>,
) -> Result<Redirect, ApiError> {
    let RequestForm { target, reason } = form(body)?;
    let body = NewRequestBody { target, reason };
    let ip = crate::api::client_ip(&ip)?;
    exceptions::file_request(&can, state.guarded(), ip, &body).await?;
    Ok(Redirect::to("/requests?done=filed"))
}

#[derive(Debug, Deserialize)]
struct ApproveForm {
    scope: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    target: String,
    duration: String,
    #[serde(default)]
    date: String,
}

async fn approve(
    State(state): State<WebState>,
    can: Can<op::ReviewRequests>,
    Path(id): Path<i64>,
    body: Result<Form<ApproveForm>, axum::extract::rejection::FormRejection>,
) -> Result<Redirect, ApiError> {
    let f = form(body)?;
    let g = state.guarded();
    let now = g.now();
    let until = match f.duration.as_str() {
        "hour" => (now + jiff::SignedDuration::from_hours(1)).to_string(),
        "day" => (now + jiff::SignedDuration::from_hours(24)).to_string(),
        // The end of that day in the school's time zone (the policy parses local times).
        "date" if !f.date.trim().is_empty() => format!("{}T23:59:59", f.date.trim()),
        "date" => {
            return Err(ApiError::BadRequest(
                "date: give the last day of access".into(),
            ));
        }
        "policy-change" => "policy-change".to_string(),
        other => {
            return Err(ApiError::BadRequest(format!(
                "duration: {other:?} is not one of hour, day, date, policy-change"
            )));
        }
    };
    let body = ApproveBody {
        scope: f.scope,
        group: Some(f.group).filter(|g| !g.trim().is_empty()),
        target: Some(f.target).filter(|t| !t.trim().is_empty()),
        until,
    };
    exceptions::approve(&can, g, id, &body).await?;
    Ok(Redirect::to("/requests?done=approved"))
}

async fn deny(
    State(state): State<WebState>,
    can: Can<op::ReviewRequests>,
    Path(id): Path<i64>,
    body: Result<Form<DenyForm>, axum::extract::rejection::FormRejection>,
) -> Result<Redirect, ApiError> {
    let body = DenyBody {
        reason: form(body)?.reason,
    };
    exceptions::deny(&can, state.guarded(), id, &body).await?;
    Ok(Redirect::to("/requests?done=denied"))
}

/// How long an override lasts, as the form offers it (minutes; 0 = this lesson).
const LENGTHS: &[(u32, &str)] = &[
    (0, "This lesson"),
    (15, "15 minutes"),
    (30, "30 minutes"),
    (60, "An hour"),
];

#[derive(Template)]
#[template(path = "overrides.html")]
struct OverridesPage {
    layout: Layout,
    notice: Option<&'static str>,
    lesson: Option<(String, String)>,
    rules: Vec<OverridableRule>,
    groups: Vec<String>,
    lengths: &'static [(u32, &'static str)],
    overrides: Vec<OverrideView>,
}

async fn overrides_page(
    State(state): State<WebState>,
    can: Can<op::OverrideRules>,
    done: Result<Query<Done>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let done = query(done)?;
    let g = state.guarded();
    let lesson = exceptions::current_lesson(g).map(|l| (l.name, l.ends_at));
    Ok(render(&OverridesPage {
        layout: Layout::new("Teacher overrides", Some(can.caller())),
        notice: notice(&done),
        lesson,
        rules: exceptions::overridable_rules(&can, g),
        groups: exceptions::policy_groups(g),
        lengths: LENGTHS,
        overrides: exceptions::list_overrides(&can, g).await?,
    }))
}

#[derive(Debug, Deserialize)]
struct OverrideForm {
    group: String,
    rule: String,
    minutes: u32,
}

async fn create_override(
    State(state): State<WebState>,
    can: Can<op::OverrideRules>,
    body: Result<Form<OverrideForm>, axum::extract::rejection::FormRejection>,
) -> Result<Redirect, ApiError> {
    let f = form(body)?;
    let g = state.guarded();
    let now = g.now();
    let wanted = now + jiff::SignedDuration::from_mins(i64::from(f.minutes));
    // A length past the end of the lesson means "this lesson": an override never
    // outlasts it, and the teacher should not have to do the sum.
    let until = match exceptions::current_lesson(g) {
        _ if f.minutes == 0 => None,
        Some(lesson) if wanted >= lesson.end => None,
        _ => Some(wanted.to_string()),
    };
    let body = NewOverrideBody {
        group: f.group,
        rule: f.rule,
        until,
    };
    exceptions::create_override(&can, g, &body).await?;
    Ok(Redirect::to("/overrides?done=created"))
}

async fn revoke_override(
    State(state): State<WebState>,
    can: Can<op::OverrideRules>,
    Path(id): Path<i64>,
) -> Result<Redirect, ApiError> {
    exceptions::revoke_override(&can, state.guarded(), id).await?;
    Ok(Redirect::to("/overrides?done=revoked"))
}
