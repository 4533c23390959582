//! The console's page for guest codes (the captive portal): issue one for a visitor and
//! see the codes still valid. A new code is shown once, on the answer to the form.

use askama::Template;
use axum::Router;
use axum::extract::{Form, State};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::{Layout, render};
use crate::WebState;
use crate::access::{Can, op};
use crate::error::ApiError;
use crate::ops::guests::{self, GuestView, IssuedGuest, NewGuestBody};

pub fn router() -> Router<WebState> {
    Router::new().route("/guests", get(guests_page).post(issue))
}

#[derive(Template)]
#[template(path = "guests.html")]
struct GuestsPage {
    layout: Layout,
    issued: Option<IssuedGuest>,
    codes: Vec<GuestView>,
}

/// The form's fields (`csrf_token` beside them is the middleware's).
#[derive(Debug, Deserialize)]
struct GuestForm {
    name: String,
    hours: u32,
}

async fn guests_page(
    State(state): State<WebState>,
    can: Can<op::IssueGuestCodes>,
) -> Result<Response, ApiError> {
    let codes = guests::list(&can, state.guarded()).await?;
    Ok(render(&GuestsPage {
        layout: Layout::new("Guest codes", Some(can.caller())),
        issued: None,
        codes,
    }))
}

async fn issue(
    State(state): State<WebState>,
    can: Can<op::IssueGuestCodes>,
    body: Result<Form<GuestForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let GuestForm { name, hours } = body
        .map(|Form(f)| f)
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let g = state.guarded();
    let issued = guests::issue(
        &can,
        g,
        &NewGuestBody {
            name,
            hours: Some(hours),
        },
    )
    .await?;
    let codes = guests::list(&can, g).await?;
    Ok(render(&GuestsPage {
        layout: Layout::new("Guest codes", Some(can.caller())),
        issued: Some(issued),
        codes,
    }))
}
