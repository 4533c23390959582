//! Errors a request can end in, as HTTP: `401` unauthenticated, `403` forbidden, `400` bad
//! input, each with a JSON body `{"error": CODE, "reason": TEXT}`. Pages turn them into
//! HTML (see `pages::html_errors`) using the [`ErrorReason`] extension.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("sign in first (POST /api/v1/login) or send a bearer token")]
    Unauthenticated,
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    TooManyAttempts(String),
    #[error("the server could not complete the request: {0}")]
    Internal(String),
}

impl From<hallpass_store::StoreError> for ApiError {
    fn from(e: hallpass_store::StoreError) -> ApiError {
        match e {
            hallpass_store::StoreError::UnknownUser(u) => {
                ApiError::NotFound(format!("no person {u:?} in the roster"))
            }
            hallpass_store::StoreError::PersonLeft(u) => ApiError::Forbidden(format!(
                "{u} has left (disabled by the directory sync): no session is opened"
            )),
            hallpass_store::StoreError::Invalid(reason)
                if reason.starts_with(hallpass_store::exceptions::RATE_LIMITED) =>
            {
                ApiError::TooManyAttempts(reason)
            }
            hallpass_store::StoreError::Invalid(reason) => ApiError::BadRequest(reason),
            hallpass_store::StoreError::NotFound(what) => ApiError::NotFound(what),
            other => {
                tracing::error!("store error in the console: {other}");
                ApiError::Internal("database error (see the server log)".into())
            }
        }
    }
}

/// The reason text of an error response, for pages that render it as HTML.
#[derive(Debug, Clone)]
pub struct ErrorReason(pub String);

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated | ApiError::WrongCredentials => StatusCode::UNAUTHORIZED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::WrongCredentials => "wrong_credentials",
            ApiError::TooLarge(_) => "too_large",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::TooManyAttempts(_) => "too_many_attempts",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let reason = self.to_string();
        let body = serde_json::json!({ "error": self.code(), "reason": reason });
        let mut response = (self.status(), Json(body)).into_response();
        response.extensions_mut().insert(ErrorReason(reason));
        response
    }
}

/// The body of every error reply (for the OpenAPI document).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// unauthenticated, wrong_credentials, forbidden, bad_request, too_large, not_found,
    /// too_many_attempts, internal.
    pub error: String,
    pub reason: String,
}
