//! The Hallpass console: who may sign in, what each role may see and do, server-rendered
//! pages and the REST API under `/api/v1`.
//!
//! * `access`: THE ROLE MATRIX (operation x role) and the `Can<Op>` capability handlers
//!   receive; `ops`: every store read behind a capability.
//! * `auth`: sessions, tokens, sign-in limits, CSRF, security headers; `password`: the
//!   password rules of policy 000 §10.4 and Argon2id.
//! * `api` (JSON + OpenAPI), `pages` (HTML via askama, SVG charts drawn on the server,
//!   no script at all).
//!
//! Time comes from the [`hallpass_clock::Clock`] in [`WebState`], so tests move it.

pub mod access;
mod api;
pub mod auth;
pub mod error;
pub mod ops;
mod pages;
pub mod password;
mod policy_view;
pub mod portal;
mod svg;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio_util::sync::CancellationToken;

pub use access::{MATRIX, Op, Role, role_allows};
pub use ops::{PolicySource, WebConfig};

/// What the console's handlers share. Cheap to clone.
#[derive(Clone)]
pub struct WebState {
    inner: Arc<ops::Guarded>,
}

impl WebState {
    pub fn new(
        store: hallpass_store::Store,
        engine: Arc<hallpass_engine::Engine>,
        clock: hallpass_clock::Clock,
        config: WebConfig,
        policy: PolicySource,
    ) -> WebState {
        WebState {
            inner: Arc::new(ops::Guarded::new(store, engine, clock, config, policy)),
        }
    }

    pub(crate) fn guarded(&self) -> &ops::Guarded {
        &self.inner
    }
}

/// The console's routes: pages, `/api/v1` and its OpenAPI document.
pub fn router(state: WebState) -> Router {
    let (api, doc) = api::router();
    let doc = Arc::new(doc);
    let limit = state.guarded().config.max_body_bytes;
    Router::new()
        .merge(api)
        .merge(pages::router())
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = Arc::clone(&doc);
                async move { axum::Json((*doc).clone()) }
            }),
        )
        .fallback(|| async { error::ApiError::NotFound("no such page or endpoint".into()) })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(pages::html_errors))
        .layer(axum::middleware::from_fn(auth::security_headers))
        .with_state(state)
}

/// Serve the console on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: WebState,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}
