//! `/api/v1/guests`: guest codes for the captive portal (staff).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::WebState;
use crate::access::{Can, op};
use crate::auth::JsonBody;
use crate::error::ApiError;
use crate::ops::guests::{self, GuestView, IssuedGuest, NewGuestBody};

/// Issue a guest code: the visitor types it on the block page to use the network (as a
/// person with the role `guest`) for the portal's sign-in time. The code is shown once.
#[utoipa::path(post, path = "/api/v1/guests", request_body = NewGuestBody,
    responses((status = 201, body = IssuedGuest), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)))]
pub async fn issue(
    State(state): State<WebState>,
    can: Can<op::IssueGuestCodes>,
    JsonBody(body): JsonBody<NewGuestBody>,
) -> Result<Response, ApiError> {
    let issued = guests::issue(&can, state.guarded(), &body).await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// Guest codes still valid: one's own (ICT support: all).
#[utoipa::path(get, path = "/api/v1/guests",
    responses((status = 200, body = Vec<GuestView>), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<WebState>,
    can: Can<op::IssueGuestCodes>,
) -> Result<Json<Vec<GuestView>>, ApiError> {
    Ok(Json(guests::list(&can, state.guarded()).await?))
}
