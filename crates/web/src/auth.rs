//! Who is calling: bearer tokens and browser sessions, sign-in with rate limits and
//! lockout, sign-out, CSRF checks and the security headers every response carries.
//!
//! A session cookie holds a random secret (HttpOnly, SameSite=Strict, Secure over TLS);
//! the database keeps its SHA-256. Sessions end after `idle_timeout` without use or
//! `absolute_timeout` after sign-in, by the console's [`hallpass_clock::Clock`]. Every
//! state-changing request made with the cookie must carry the session's CSRF token (the
//! `X-CSRF-Token` header, or a `csrf_token` form field); bearer-token calls need none (a
//! browser never adds that header by itself).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::WebState;
use crate::access::{Caller, Principal, Role, SessionRef, SignedIn};
use crate::error::ApiError;
use crate::password::{new_secret, secret_hash, verify_password};

pub const SESSION_COOKIE: &str = "hallpass_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Paths that start a session: a stale cookie must not block signing in again.
const SIGN_IN_PATHS: [&str; 2] = ["/api/v1/login", "/login"];

/// The Content-Security-Policy: nothing inline, nothing from elsewhere, no framing.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every response.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The peer's address, when served with connect info (always, by [`crate::serve`]).
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_string()),
        ))
    }
}

/// Resolves the caller (token or session), enforces session timeouts and CSRF, and puts
/// the [`Caller`] in the request's extensions for the extractors in `access`.
pub async fn authenticate(State(state): State<WebState>, req: Request, next: Next) -> Response {
    match resolve(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn resolve(state: &WebState, mut req: Request) -> Result<Request, ApiError> {
    let g = state.guarded();
    let store = g.store_for_authentication_only();
    let now = g.clock.now();
    if let Some(token) = bearer(req.headers()) {
        let found = store.accounts().token(&secret_hash(token)).await?;
        let Some(found) = found else {
            return Err(ApiError::Unauthenticated);
        };
        req.extensions_mut().insert(Caller {
            principal: Principal::Token {
                name: found.name,
                scopes: found.scopes,
            },
            session: None,
        });
        return Ok(req);
    }
    let Some(secret) = cookie_value(req.headers(), SESSION_COOKIE).map(str::to_string) else {
        return Ok(req);
    };
    let hash = secret_hash(&secret);
    let Some(session) = store.accounts().session(&hash).await? else {
        return Ok(req);
    };
    if session.ended.is_some() {
        return Ok(req);
    }
    let idle = jiff::SignedDuration::try_from(g.config.idle_timeout).unwrap_or_default();
    let absolute = jiff::SignedDuration::try_from(g.config.absolute_timeout).unwrap_or_default();
    let expired = if now.duration_since(session.last_seen) > idle {
        Some("idle")
    } else if now.duration_since(session.created) > absolute {
        Some("absolute")
    } else {
        None
    };
    if let Some(why) = expired {
        store.accounts().end_session(&hash, now).await?;
        store
            .audit()
            .append(
                &session.username,
                "signout.timeout",
                &session.username,
                &serde_json::json!({ "timeout": why }),
                now,
            )
            .await?;
        return Ok(req);
    }
    let Some(account) = store.accounts().get(&session.username).await? else {
        return Ok(req);
    };
    let Ok(role) = account.role.parse::<Role>() else {
        tracing::error!(user = %account.username, role = %account.role, "account has an unknown role");
        return Ok(req);
    };
    if account.disabled.is_some() {
        return Ok(req);
    }
    store.accounts().touch_session(&hash, now).await?;
    let caller = Caller {
        principal: Principal::Account {
            username: account.username,
            display_name: account.display_name,
            role,
            years: account.years,
        },
        session: Some(SessionRef {
            secret_hash: hash,
            csrf_token: session.csrf_token.clone(),
        }),
    };
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method && !SIGN_IN_PATHS.contains(&req.uri().path()) {
        req = check_csrf(req, &session.csrf_token, g.config.max_body_bytes).await?;
    }
    req.extensions_mut().insert(caller);
    Ok(req)
}

/// The header, or a `csrf_token` field of a form body (the body is put back afterwards).
async fn check_csrf(req: Request, expected: &str, limit: usize) -> Result<Request, ApiError> {
    let missing = || {
        ApiError::Forbidden(
            "missing or wrong CSRF token (send the X-CSRF-Token header from sign-in)".into(),
        )
    };
    if let Some(given) = req.headers().get(CSRF_HEADER) {
        return if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            Ok(req)
        } else {
            Err(missing())
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(missing());
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge(format!("the request body is over {limit} bytes")))?;
    let given = std::str::from_utf8(&bytes)
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "csrf_token")
        .map(|(_, v)| v.to_string());
    match given {
        Some(v) if constant_time_eq(v.as_bytes(), expected.as_bytes()) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(missing()),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A JSON body whose problems (malformed, wrong shape, too large) are a clear `400`
/// (or `413`) with the reason, in the same `{"error", "reason"}` shape as other errors.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(rejection) => {
                let text = rejection.body_text();
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    Err(ApiError::TooLarge(format!(
                        "the request body is too large: {text}"
                    )))
                } else {
                    Err(ApiError::BadRequest(text))
                }
            }
        }
    }
}

/// `POST /api/v1/login` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// A successful sign-in: send `csrf_token` as `X-CSRF-Token` on state-changing calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginReply {
    pub csrf_token: String,
    pub username: String,
    pub role: String,
}

/// A new session: the cookie to set and what the client is told.
pub struct SignedInSession {
    pub cookie: String,
    pub reply: LoginReply,
}

fn window_start(g: &crate::ops::Guarded, now: jiff::Timestamp) -> jiff::Timestamp {
    let window = jiff::SignedDuration::try_from(g.config.lockout_window).unwrap_or_default();
    now - window
}

/// Check a username and password and start a session. Refusals are audited and counted
/// towards the per-account lockout and the per-address limit; the reply never says
/// whether the account exists.
pub async fn sign_in(
    state: &WebState,
    username: &str,
    password: &str,
    ip: Option<String>,
) -> Result<SignedInSession, ApiError> {
    let g = state.guarded();
    let account = check_credentials(g, username, password, ip.as_deref()).await?;
    let store = g.store_for_authentication_only();
    let now = g.clock.now();
    let secret = new_secret();
    let csrf = new_secret();
    store
        .accounts()
        .start_session(&secret_hash(&secret), username, &csrf, ip.as_deref(), now)
        .await?;
    store
        .audit()
        .append(
            username,
            "signin",
            username,
            &serde_json::json!({ "ip": ip, "role": account.role }),
            now,
        )
        .await?;
    let secure = if g.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    Ok(SignedInSession {
        cookie: format!("{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict{secure}"),
        reply: LoginReply {
            csrf_token: csrf,
            username: account.username,
            role: account.role,
        },
    })
}

/// The account whose username and password these are, with the same lockouts, limits
/// and audited refusals as signing in to the console (also the captive portal's check).
pub(crate) async fn check_credentials(
    g: &crate::ops::Guarded,
    username: &str,
    password: &str,
    ip: Option<&str>,
) -> Result<hallpass_store::accounts::Account, ApiError> {
    let store = g.store_for_authentication_only();
    let now = g.clock.now();
    let since = window_start(g, now);
    let ip_key = format!("ip:{}", ip.unwrap_or("unknown"));
    let user_key = format!("user:{username}");
    let audit_refusal = |reason: &'static str| {
        let details = serde_json::json!({ "reason": reason, "ip": ip });
        async move {
            store
                .audit()
                .append(username, "signin.failure", username, &details, now)
                .await
        }
    };
    if username.len() > 128 || password.len() > crate::password::MAX_PASSWORD {
        return Err(ApiError::BadRequest(
            "username or password is too long".into(),
        ));
    }
    let (ip_failures, _) = store.accounts().failures_since(&ip_key, since).await?;
    if ip_failures >= g.config.ip_failures {
        audit_refusal("address rate limited").await?;
        return Err(ApiError::TooManyAttempts(
            "too many failed sign-ins from this address: try again later".into(),
        ));
    }
    let (user_failures, _) = store.accounts().failures_since(&user_key, since).await?;
    if user_failures >= g.config.account_failures {
        audit_refusal("account locked").await?;
        return Err(ApiError::TooManyAttempts(format!(
            "this account is locked after {} failed sign-ins: try again in {} minutes, or ask \
             the network manager",
            g.config.account_failures,
            g.config.lockout_window.as_secs() / 60
        )));
    }
    let account = store.accounts().get(username).await?;
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    let given = password.to_string();
    // Argon2 is deliberately slow: off the async threads. An unknown user is checked
    // against a dummy hash, so the time taken does not tell who has an account.
    let matches = tokio::task::spawn_blocking(move || match hash {
        Some(h) => verify_password(&given, &h),
        None => {
            let _ = verify_password(&given, dummy_hash());
            false
        }
    })
    .await
    .map_err(|e| ApiError::Internal(format!("password check: {e}")))?;
    let refusal = match &account {
        None => Some("unknown user"),
        Some(_) if !matches => Some("wrong password"),
        Some(a) if a.disabled.is_some() => Some("account disabled"),
        Some(a) if a.role.parse::<Role>().is_err() => Some("unknown role"),
        Some(_) => None,
    };
    let Some(account) = account.filter(|_| refusal.is_none()) else {
        store.accounts().record_failure(&user_key, now).await?;
        store.accounts().record_failure(&ip_key, now).await?;
        audit_refusal(refusal.unwrap_or("refused")).await?;
        return Err(ApiError::WrongCredentials);
    };
    store.accounts().clear_failures(&user_key).await?;
    Ok(account)
}

/// A hash of a random password, made once, for timing-equal refusals of unknown users.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| crate::password::hash_password(&new_secret()).unwrap_or_default())
}

/// End the caller's session (audited). Tokens have no session to end.
pub async fn sign_out(state: &WebState, caller: &Caller) -> Result<(), ApiError> {
    let g = state.guarded();
    let store = g.store_for_authentication_only();
    let now = g.clock.now();
    if let Some(session) = &caller.session {
        store
            .accounts()
            .end_session(&session.secret_hash, now)
            .await?;
        store
            .audit()
            .append(
                &caller.actor(),
                "signout",
                &caller.actor(),
                &serde_json::json!({}),
                now,
            )
            .await?;
    }
    Ok(())
}

pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

/// `GET /api/v1/me`'s reply.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeReply {
    /// `account` or `token`.
    pub kind: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub role: Option<String>,
    pub years: Vec<String>,
    /// The operations (token scopes) this caller may perform.
    pub operations: Vec<String>,
}

pub fn me_reply(SignedIn(caller): &SignedIn) -> MeReply {
    let operations = caller
        .operations()
        .into_iter()
        .map(|op| op.name().to_string())
        .collect();
    match &caller.principal {
        Principal::Account {
            username,
            display_name,
            role,
            years,
        } => MeReply {
            kind: "account".into(),
            username: Some(username.clone()),
            display_name: Some(display_name.clone()),
            role: Some(role.as_str().into()),
            years: years.clone(),
            operations,
        },
        Principal::Token { name, .. } => MeReply {
            kind: "token".into(),
            username: Some(name.clone()),
            display_name: None,
            role: None,
            years: Vec::new(),
            operations,
        },
    }
}
