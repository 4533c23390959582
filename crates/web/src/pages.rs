//! Server-rendered pages (askama templates in `templates/`), readable without any script:
//! there is none (the CSP forbids it). Each page calls the same `ops` function as its API.

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::WebState;
use crate::access::{Caller, Can, Op, SignedIn, op};
use crate::auth;
use crate::error::{ApiError, ErrorReason};
use crate::ops::{self, AuditQuery, AuditView, Dashboard, EventPage, EventQuery, ExplainQuery};
use crate::ops::{ExplainView, PersonDetail, PersonView};
use crate::policy_view::PolicyView;
use crate::svg;

mod activity;
mod alerts;
mod declarations;
mod exceptions;
mod guests;
mod quarantine;
mod safeguarding;

const CSS: &str = include_str!("../static/console.css");

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login_form))
        .route("/logout", axum::routing::post(logout_form))
        .route("/dashboard", get(dashboard))
        .route("/activity", get(activity))
        .route("/my-activity", get(my_activity))
        .route("/people", get(people))
        .route("/people/{username}", get(person))
        .route("/policy", get(policy))
        .route("/audit", get(audit))
        .route("/static/console.css", get(css))
        .merge(exceptions::router())
        .merge(activity::router())
        .merge(alerts::router())
        .merge(declarations::router())
        .merge(guests::router())
        .merge(quarantine::router())
        .merge(safeguarding::router())
}

/// What every page's header shows.
pub struct Layout {
    title: String,
    nav: Vec<(&'static str, &'static str)>,
    user: Option<String>,
    role: String,
    csrf: String,
}

impl Layout {
    fn new(title: &str, caller: Option<&Caller>) -> Layout {
        let Some(caller) = caller else {
            return Layout {
                title: title.into(),
                nav: Vec::new(),
                user: None,
                role: String::new(),
                csrf: String::new(),
            };
        };
        let pages = [
            (Op::ViewDashboard, "/dashboard", "Dashboard"),
            (Op::SearchActivity, "/activity", "Activity"),
            (Op::ViewOwnActivity, "/my-activity", "My activity"),
            (Op::ViewPeople, "/people", "People"),
            (Op::ViewPolicy, "/policy", "Policy"),
            (Op::RequestAccess, "/requests", "Requests"),
            (Op::OverrideRules, "/overrides", "Overrides"),
            (Op::HandleAlerts, "/alerts", "Alerts"),
            (Op::ManageIncidents, "/incidents", "Incidents"),
            (Op::ImposeSanctions, "/sanctions", "Sanctions"),
            (
                Op::AuthoriseInvestigations,
                "/investigations",
                "Investigations",
            ),
            (Op::LogonSessions, "/sessions", "Logged on"),
            (Op::ViewDeclarations, "/declarations", "Declarations"),
            (Op::IssueGuestCodes, "/guests", "Guests"),
            (Op::ManageQuarantine, "/quarantine", "Held mail"),
            (Op::ViewAudit, "/audit", "Audit"),
        ];
        Layout {
            title: title.into(),
            nav: pages
                .into_iter()
                .filter(|(op, _, _)| caller.may(*op))
                .map(|(_, href, label)| (href, label))
                .collect(),
            user: Some(caller.actor()),
            role: caller
                .role()
                .map(|r| r.as_str().to_string())
                .unwrap_or_default(),
            csrf: caller
                .session
                .as_ref()
                .map(|s| s.csrf_token.clone())
                .unwrap_or_default(),
        }
    }
}

fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::Internal(format!("rendering the page: {e}")).into_response(),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    reason: String,
}

/// On pages (not `/api`): an unauthenticated request goes to the sign-in page, and other
/// errors become an HTML page with the same reason the API would give.
pub async fn html_errors(req: Request, next: Next) -> Response {
    let is_page = !req.uri().path().starts_with("/api/");
    let caller = req.extensions().get::<Caller>().cloned();
    let response = next.run(req).await;
    if !is_page || response.status().is_success() || response.status().is_redirection() {
        return response;
    }
    if response.status() == StatusCode::UNAUTHORIZED
        && response.extensions().get::<LoginFailed>().is_none()
    {
        return Redirect::to("/login").into_response();
    }
    let Some(ErrorReason(reason)) = response.extensions().get::<ErrorReason>().cloned() else {
        return response;
    };
    let status = response.status();
    let title = status.canonical_reason().unwrap_or("Error");
    let mut page = render(&ErrorPage {
        layout: Layout::new(title, caller.as_ref()),
        reason,
    });
    *page.status_mut() = status;
    page
}

/// Marks the sign-in page's own 401 (shown, not redirected).
#[derive(Clone)]
struct LoginFailed;

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

async fn home(who: Result<SignedIn, ApiError>) -> Redirect {
    match who {
        Ok(SignedIn(caller)) if caller.may(Op::ViewDashboard) => Redirect::to("/dashboard"),
        Ok(SignedIn(caller)) if caller.may(Op::ViewOwnActivity) => Redirect::to("/my-activity"),
        Ok(_) => Redirect::to("/policy"),
        Err(_) => Redirect::to("/login"),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    error: Option<String>,
}

async fn login_page() -> Response {
    render(&LoginPage {
        layout: Layout::new("Sign in", None),
        error: None,
    })
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

async fn login_form(
    State(state): State<WebState>,
    auth::ClientIp(ip): auth::ClientIp,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let result = match form {
        Ok(Form(f)) => auth::sign_in(&state, &f.username, &f.password, ip).await,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::TooLarge(e.body_text()))
        }
        Err(e) => Err(ApiError::BadRequest(e.body_text())),
    };
    match result {
        Ok(session) => ([(header::SET_COOKIE, session.cookie)], Redirect::to("/")).into_response(),
        Err(e) => {
            let status = e.status();
            let mut page = render(&LoginPage {
                layout: Layout::new("Sign in", None),
                error: Some(e.to_string()),
            });
            *page.status_mut() = status;
            page.extensions_mut().insert(LoginFailed);
            page
        }
    }
}

async fn logout_form(State(state): State<WebState>, who: SignedIn) -> Result<Response, ApiError> {
    auth::sign_out(&state, &who.0).await?;
    let secure = state.guarded().config.secure_cookies;
    Ok((
        [(header::SET_COOKIE, auth::clear_cookie(secure))],
        Redirect::to("/login"),
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    d: Dashboard,
    by_category: String,
    by_group: String,
    by_year: String,
    top_sites: String,
}

async fn dashboard(
    State(state): State<WebState>,
    can: Can<op::ViewDashboard>,
) -> Result<Response, ApiError> {
    let d = ops::dashboard(&can, state.guarded()).await?;
    Ok(render(&DashboardPage {
        layout: Layout::new("Dashboard", Some(can.caller())),
        by_category: svg::bars("Blocked by category", &d.blocked_by_category, 12),
        by_group: svg::bars("Blocked by group", &d.blocked_by_group, 12),
        by_year: svg::bars("Blocked by year group", &d.blocked_by_year_group, 14),
        top_sites: svg::bars("Top blocked sites", &d.top_blocked_sites, 10),
        d,
    }))
}

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    layout: Layout,
    searchable: bool,
    q: EventQuery,
    page: EventPage,
    prev_link: String,
    next_link: String,
}

fn page_link(base: &str, q: &EventQuery, page: i64) -> String {
    let mut q = q.clone();
    q.page = Some(page);
    let mut parts = Vec::new();
    for (k, v) in [
        ("person", &q.person),
        ("ip", &q.ip),
        ("site", &q.site),
        ("category", &q.category),
        ("verdict", &q.verdict),
        ("from", &q.from),
        ("to", &q.to),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            parts.push(format!("{k}={}", url_encode(v)));
        }
    }
    parts.push(format!("page={page}"));
    format!("{base}?{}", parts.join("&"))
}

fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

async fn activity(
    State(state): State<WebState>,
    can: Can<op::SearchActivity>,
    q: Result<Query<EventQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let page = ops::search_events(&can, state.guarded(), &q).await?;
    Ok(render(&ActivityPage {
        layout: Layout::new("Activity", Some(can.caller())),
        searchable: true,
        prev_link: page_link("/activity", &q, page.page - 1),
        next_link: page_link("/activity", &q, page.page + 1),
        q,
        page,
    }))
}

async fn my_activity(
    State(state): State<WebState>,
    can: Can<op::ViewOwnActivity>,
    q: Result<Query<EventQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let page = ops::own_events(&can, state.guarded(), &q).await?;
    Ok(render(&ActivityPage {
        layout: Layout::new("My activity", Some(can.caller())),
        searchable: false,
        prev_link: page_link("/my-activity", &q, page.page - 1),
        next_link: page_link("/my-activity", &q, page.page + 1),
        q,
        page,
    }))
}

#[derive(Template)]
#[template(path = "people.html")]
struct PeoplePage {
    layout: Layout,
    people: Vec<PersonView>,
}

async fn people(
    State(state): State<WebState>,
    can: Can<op::ViewPeople>,
) -> Result<Response, ApiError> {
    let people = ops::people(&can, state.guarded()).await?;
    Ok(render(&PeoplePage {
        layout: Layout::new("People and groups", Some(can.caller())),
        people,
    }))
}

#[derive(Template)]
#[template(path = "person.html")]
struct PersonPage {
    layout: Layout,
    d: PersonDetail,
    can_view_activity: bool,
}

async fn person(
    State(state): State<WebState>,
    can: Can<op::ViewPeople>,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    let d = ops::person(&can, state.guarded(), &username).await?;
    Ok(render(&PersonPage {
        layout: Layout::new(&username, Some(can.caller())),
        can_view_activity: can.caller().may(Op::SearchActivity),
        d,
    }))
}

#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyPage {
    layout: Layout,
    p: PolicyView,
    can_explain: bool,
    q: ExplainQuery,
    explained: Option<ExplainView>,
    explain_error: Option<String>,
}

async fn policy(
    State(state): State<WebState>,
    can: Can<op::ViewPolicy>,
    explain: Result<Can<op::Explain>, ApiError>,
    q: Result<Query<ExplainQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let p = ops::policy(&can, state.guarded()).await?;
    let asked = q.target.as_deref().is_some_and(|t| !t.trim().is_empty());
    let (explained, explain_error) = match (&explain, asked) {
        (Ok(can_explain), true) => match ops::explain(can_explain, state.guarded(), &q).await {
            Ok(x) => (Some(x), None),
            Err(e) => (None, Some(e.to_string())),
        },
        _ => (None, None),
    };
    Ok(render(&PolicyPage {
        layout: Layout::new("Policy", Some(can.caller())),
        can_explain: explain.is_ok(),
        p,
        q,
        explained,
        explain_error,
    }))
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    a: AuditView,
    q: AuditQuery,
}

async fn audit(
    State(state): State<WebState>,
    can: Can<op::ViewAudit>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let a = ops::audit(&can, state.guarded(), &q).await?;
    Ok(render(&AuditPage {
        layout: Layout::new("Audit log", Some(can.caller())),
        a,
        q,
    }))
}
