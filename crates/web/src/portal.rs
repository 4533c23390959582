//! The block page: an HTTP listener of its own (`[portal] listen`) that DNS block answers
//! point at. For whatever Host a browser asks for it shows what the filter decided for
//! this client and name: the policy's message, document and clause, the categories, who
//! the client is, the reference of the recorded decision, and a "request access" form; a
//! warning offers "continue". The client is identified by its address, as the DNS filter
//! identifies it (the logon session at that address), so the page never decides
//! differently from the filter that sent the browser here.
//!
//! A person with a pending acceptable-use declaration (000 §14) is in the policy's
//! restricted group: every site brings them here, and the page shows the declaration with
//! an accept button; accepting lifts the restriction within a second.
//!
//! Forms carry a token that must match a cookie the page set (double submit), so another
//! site cannot file requests (or accept a declaration) in a pupil's name.

use std::net::{IpAddr, SocketAddr};

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use hallpass_policy::Verdict;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::WebState;
use crate::error::ApiError;
use crate::ops::exceptions::NewRequestBody;
use crate::ops::portal::{self, PortalClient};

const TOKEN_COOKIE: &str = "hallpass_portal";

#[derive(Template)]
#[template(path = "portal.html")]
struct PortalPage {
    school: String,
    title: String,
    /// `block`, `warn`, `allow`, `suspended`, `unidentified` or `declaration`.
    verdict: &'static str,
    site: String,
    message: String,
    document: String,
    clause: String,
    categories: String,
    person: String,
    until: String,
    set_by: String,
    reference: String,
    token: String,
    can_request: bool,
    reviewer: &'static str,
    notice: Option<String>,
    error: Option<String>,
    requests: Vec<hallpass_store::exceptions::AccessRequest>,
    /// The person's pending declarations (shown with an accept button).
    declarations: Vec<crate::ops::declarations::PendingDeclaration>,
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
    token: String,
}

#[derive(Debug, Deserialize)]
struct DeclarationForm {
    document: String,
    version: String,
    token: String,
}

#[derive(Debug, Deserialize)]
struct RequestForm {
    site: String,
    reason: String,
    token: String,
}

#[derive(Debug, Deserialize)]
struct ContinueForm {
    site: String,
    token: String,
}

/// The block page's routes (any Host, any path).
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/hallpass/request", axum::routing::post(request_access))
        .route("/hallpass/continue", axum::routing::post(continue_to_site))
        .route(
            "/hallpass/declaration",
            axum::routing::post(accept_declaration),
        )
        .route("/hallpass/signin", axum::routing::post(sign_in))
        .fallback(axum::routing::get(block_page))
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .layer(axum::middleware::from_fn(crate::auth::security_headers))
        .with_state(state)
}

/// Serve the block page on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: WebState,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}

/// The site the browser asked for: the Host header without its port, lower-case.
fn host_of(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?.trim();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    crate::ops::exceptions::normalise_target(&host).ok()
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == TOKEN_COOKIE)
        .map(|(_, value)| value.to_string())
}

async fn page(
    state: &WebState,
    client: &PortalClient,
    site: &str,
    notice: Option<String>,
    error: Option<String>,
    token: &str,
) -> Result<PortalPage, ApiError> {
    let g = state.guarded();
    let view = portal::view(g, client, site).await?;
    let declarations = portal::pending_declarations(g, client).await?;
    let verdict = match (&view.suspended, view.verdict) {
        (Some(_), _) => "suspended",
        (None, _) if !declarations.is_empty() => "declaration",
        (None, Verdict::Allow) => "allow",
        (None, _) if client.person.is_none() && view.unidentified => "unidentified",
        (None, Verdict::Warn) => "warn",
        (None, Verdict::Block) => "block",
    };
    let title = match verdict {
        "suspended" => "Your internet access is suspended".to_string(),
        "allow" => format!("{site} is not blocked for you now"),
        "unidentified" => "Sign in to use the internet".to_string(),
        "signed-in" => "You are signed in".to_string(),
        "declaration" => "Accept the acceptable use declaration to use the internet".to_string(),
        "warn" => format!("Think before you visit {site}"),
        _ => format!("{site} is blocked"),
    };
    let (until, set_by) = match &view.suspended {
        Some((until, by)) => (until.clone(), by.clone()),
        None => (String::new(), String::new()),
    };
    let notice = notice.or_else(|| {
        (verdict == "allow").then(|| {
            "Your device may remember the old answer for a minute: try again shortly.".to_string()
        })
    });
    Ok(PortalPage {
        school: view.school,
        title,
        verdict,
        site: site.to_string(),
        message: view.message,
        document: view.document,
        clause: view.clause,
        categories: view.categories.join(", "),
        person: client
            .person
            .as_ref()
            .map_or_else(|| "not signed in".to_string(), |p| p.to_string()),
        until,
        set_by,
        reference: view
            .reference
            .map_or_else(|| "not recorded yet".to_string(), |id| id.to_string()),
        token: token.to_string(),
        can_request: client.person.is_some() && matches!(verdict, "block" | "warn"),
        reviewer: if view.safeguarding {
            "The designated safeguarding lead"
        } else {
            "ICT Support"
        },
        notice,
        error,
        requests: view.requests,
        declarations,
    })
}

fn render(page: &PortalPage, status: StatusCode, set_token: Option<&str>) -> Response {
    match page.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            if let Some(token) = set_token
                && let Ok(value) =
                    format!("{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict").parse()
            {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(e) => ApiError::Internal(format!("rendering the block page: {e}")).into_response(),
    }
}

fn client(state: &WebState, ip: IpAddr) -> PortalClient {
    portal::identify(state.guarded(), ip)
}

async fn block_page(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let Some(site) = host_of(&headers) else {
        return (
            StatusCode::BAD_REQUEST,
            "This is the school's block page: it shows why a site was blocked. The request named no site (Host).",
        )
            .into_response();
    };
    let client = client(&state, peer.ip());
    let (token, set) = match cookie_token(&headers) {
        Some(token) if token.len() == 64 => (token, None),
        _ => {
            let token = crate::password::new_secret();
            (token.clone(), Some(token))
        }
    };
    match page(&state, &client, &site, None, None, &token).await {
        // 403 for a block, so scripts and proxies see it is not the site's own page.
        Ok(p) => {
            let status = if p.verdict == "allow" || p.verdict == "warn" {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            render(&p, status, set.as_deref())
        }
        Err(e) => e.into_response(),
    }
}

fn token_ok(headers: &HeaderMap, form_token: &str) -> bool {
    cookie_token(headers).is_some_and(|c| c.len() == 64 && c == form_token)
}

/// What a form on the block page came to: a notice, or an error's reason, and the status.
type FormOutcome = (Option<String>, Option<String>, StatusCode);

/// The form's token does not match its cookie (an old page, or a forged post).
fn expired() -> FormOutcome {
    (
        None,
        Some("This form has expired: reload the page and try again.".to_string()),
        StatusCode::FORBIDDEN,
    )
}

/// The action was refused: its reason and status.
fn refused(e: ApiError) -> FormOutcome {
    let status = e.status();
    (None, Some(e.to_string()), status)
}

/// The block page again, for `site`, with the form's outcome on it.
async fn respond(
    state: &WebState,
    client: &portal::PortalClient,
    site: &str,
    (notice, error, status): FormOutcome,
    token: &str,
) -> Response {
    match page(state, client, site, notice, error, token).await {
        Ok(p) => render(&p, status, None),
        Err(e) => e.into_response(),
    }
}

async fn request_access(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<RequestForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return (StatusCode::BAD_REQUEST, "the request form was incomplete").into_response();
    };
    let client = client(&state, peer.ip());
    let site = crate::ops::exceptions::normalise_target(&form.site)
        .unwrap_or_else(|_| host_of(&headers).unwrap_or_default());
    let host = site.split('/').next().unwrap_or_default().to_string();
    let (notice, error, status) = if !token_ok(&headers, &form.token) {
        expired()
    } else {
        let body = NewRequestBody {
            target: form.site.clone(),
            reason: form.reason.clone(),
        };
        match portal::file_request(state.guarded(), &client, &body).await {
            Ok(id) => (
                Some(format!(
                    "Request {id} sent. The answer will show on this page."
                )),
                None,
                StatusCode::CREATED,
            ),
            Err(e) => refused(e),
        }
    };
    respond(&state, &client, &host, (notice, error, status), &form.token).await
}

async fn continue_to_site(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<ContinueForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return (StatusCode::BAD_REQUEST, "the form was incomplete").into_response();
    };
    let client = client(&state, peer.ip());
    let site = host_of(&headers)
        .filter(|h| *h == form.site)
        .or_else(|| crate::ops::exceptions::normalise_target(&form.site).ok())
        .unwrap_or_default();
    let (notice, error, status) = if !token_ok(&headers, &form.token) {
        expired()
    } else {
        match portal::acknowledge(state.guarded(), &client, &site).await {
            Ok(until) => (
                Some(format!(
                    "You can visit {site} until {until}. Reload the site in a moment."
                )),
                None,
                StatusCode::OK,
            ),
            Err(e) => refused(e),
        }
    };
    respond(&state, &client, &site, (notice, error, status), &form.token).await
}

async fn accept_declaration(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<DeclarationForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return (StatusCode::BAD_REQUEST, "the form was incomplete").into_response();
    };
    let client = client(&state, peer.ip());
    let site = host_of(&headers).unwrap_or_default();
    let (notice, error, status) = if !token_ok(&headers, &form.token) {
        expired()
    } else {
        match portal::accept_declaration(state.guarded(), &client, &form.document, &form.version)
            .await
        {
            Ok(()) => (
                Some(
                    "Thank you: your acceptance is recorded. Your own access applies within a second: reload the site."
                        .to_string(),
                ),
                None,
                StatusCode::OK,
            ),
            Err(e) => refused(e),
        }
    };
    respond(&state, &client, &site, (notice, error, status), &form.token).await
}

/// The captive portal: an unidentified client signs in (console account or guest code)
/// and its address is theirs for the configured time.
async fn sign_in(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return (StatusCode::BAD_REQUEST, "the sign-in form was incomplete").into_response();
    };
    let client = client(&state, peer.ip());
    let site = host_of(&headers).unwrap_or_default();
    let mut signed_in_as = None;
    let (notice, error, status) = if !token_ok(&headers, &form.token) {
        expired()
    } else {
        match portal::sign_in(
            state.guarded(),
            &client,
            &form.username,
            &form.password,
            &form.code,
        )
        .await
        {
            Ok(signed_in) => {
                let notice = format!(
                    "Signed in as {} until {}. Your access applies within a second: reload the site.",
                    signed_in.username,
                    signed_in.until.strftime("%H:%M UTC")
                );
                signed_in_as = Some(signed_in.username);
                (Some(notice), None, StatusCode::OK)
            }
            Err(e) => refused(e),
        }
    };
    // The page as the person now signed in sees it (their session is in the store; the
    // snapshot follows within a second), e.g. a declaration to accept.
    let client = match signed_in_as {
        Some(username) => portal::PortalClient::signed_in(client.ip, &username),
        None => client,
    };
    respond(&state, &client, &site, (notice, error, status), &form.token).await
}
