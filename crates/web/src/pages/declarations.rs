//! The console's page of who has not accepted the current acceptable-use declarations
//! (000 §14), by year and filtered by group or year, with the same list as CSV.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Layout, query, render};
use crate::WebState;
use crate::access::{Can, op};
use crate::error::ApiError;
use crate::ops::declarations::{self, Outstanding, OutstandingQuery};

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/declarations", get(declarations_page))
        .route("/declarations.csv", get(declarations_csv))
}

#[derive(Template)]
#[template(path = "declarations.html")]
struct DeclarationsPage {
    layout: Layout,
    o: Outstanding,
    group: String,
    year: String,
    /// The filters again, for the CSV link (each value percent-encoded).
    csv_query: String,
}

async fn declarations_page(
    State(state): State<WebState>,
    can: Can<op::ViewDeclarations>,
    q: Result<Query<OutstandingQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let o = declarations::outstanding(&can, state.guarded(), &q).await?;
    let group = q.group.unwrap_or_default();
    let year = q.year.unwrap_or_default();
    let csv_query = format!(
        "group={}&year={}",
        percent_encode(&group),
        percent_encode(&year)
    );
    Ok(render(&DeclarationsPage {
        layout: Layout::new("Acceptable use declarations", Some(can.caller())),
        o,
        group,
        year,
        csv_query,
    }))
}

async fn declarations_csv(
    State(state): State<WebState>,
    can: Can<op::ViewDeclarations>,
    q: Result<Query<OutstandingQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let o = declarations::outstanding(&can, state.guarded(), &q).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"declarations-outstanding.csv\"",
            ),
        ],
        declarations::outstanding_csv(&o),
    )
        .into_response())
}

/// Encodes a query-string value (unreserved characters pass).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
