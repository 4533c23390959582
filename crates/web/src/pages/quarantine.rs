//! The console's page for held mail: what the email filter holds, and a form on each
//! waiting message to release or delete it with a reason.

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::{Layout, render};
use crate::WebState;
use crate::access::{Can, op};
use crate::error::ApiError;
use crate::ops::quarantine::{
    self, BlockView, HeldView, NewBlockBody, QuarantineDecisionBody, QuarantineQuery,
};

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/quarantine", get(page))
        .route("/quarantine/{id}", post(decide))
        .route("/quarantine/blocks", post(add_block))
        .route("/quarantine/blocks/{id}/remove", post(remove_block))
}

#[derive(Template)]
#[template(path = "quarantine.html")]
struct QuarantinePage {
    layout: Layout,
    notice: Option<String>,
    held: Vec<HeldView>,
    blocks: Vec<BlockView>,
}

/// The block form's fields.
#[derive(Debug, Deserialize)]
struct BlockForm {
    sender: String,
    reason: String,
}

/// A lifted block's reason.
#[derive(Debug, Deserialize)]
struct ReasonForm {
    reason: String,
}

/// The page with `notice` on top.
async fn show(
    can: &Can<op::ManageQuarantine>,
    g: &crate::ops::Guarded,
    notice: Option<String>,
) -> Result<Response, ApiError> {
    let held = quarantine::list(can, g, &QuarantineQuery { all: Some(true) }).await?;
    let blocks = quarantine::blocks(can, g).await?;
    Ok(render(&QuarantinePage {
        layout: Layout::new("Held mail", Some(can.caller())),
        notice,
        held,
        blocks,
    }))
}

async fn add_block(
    State(state): State<WebState>,
    can: Can<op::ManageQuarantine>,
    body: Result<Form<BlockForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let BlockForm { sender, reason } = body
        .map(|Form(f)| f)
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let g = state.guarded();
    let added = quarantine::block(&can, g, &NewBlockBody { sender, reason }).await?;
    show(&can, g, Some(format!("{} is blocked.", added.sender))).await
}

async fn remove_block(
    State(state): State<WebState>,
    can: Can<op::ManageQuarantine>,
    Path(id): Path<i64>,
    body: Result<Form<ReasonForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let ReasonForm { reason } = body
        .map(|Form(f)| f)
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let g = state.guarded();
    quarantine::unblock(&can, g, id, &QuarantineDecisionBody { reason }).await?;
    show(&can, g, Some(format!("Block {id} lifted."))).await
}

/// The form's fields (`csrf_token` beside them is the middleware's).
#[derive(Debug, Deserialize)]
struct DecisionForm {
    /// `release` or `delete`.
    decision: String,
    reason: String,
}

async fn page(
    State(state): State<WebState>,
    can: Can<op::ManageQuarantine>,
) -> Result<Response, ApiError> {
    show(&can, state.guarded(), None).await
}

async fn decide(
    State(state): State<WebState>,
    can: Can<op::ManageQuarantine>,
    Path(id): Path<i64>,
    body: Result<Form<DecisionForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let DecisionForm { decision, reason } = body
        .map(|Form(f)| f)
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let g = state.guarded();
    let body = QuarantineDecisionBody { reason };
    let notice = match decision.as_str() {
        "release" => {
            quarantine::release(&can, g, id, &body).await?;
            format!("Message {id} released: it is delivered within a few seconds.")
        }
        "delete" => {
            quarantine::delete(&can, g, id, &body).await?;
            format!("Message {id} deleted.")
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "decision: `{other}` is neither release nor delete"
            )));
        }
    };
    show(&can, g, Some(notice)).await
}
