//! The email filter's quarantine in the console: held messages listed by their envelope
//! and the rule that held them (never their content: that stays behind an
//! investigation), released (the mail service delivers each once) or deleted, with a
//! reason; the store audits both.

use hallpass_store::quarantine::Held;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Guarded;
use crate::access::{Can, op};
use crate::error::ApiError;

/// `GET /api/v1/quarantine`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct QuarantineQuery {
    /// Also the released, refused and deleted ones (default: only those waiting).
    pub all: Option<bool>,
}

/// Why a message is released or deleted (kept in the audit log).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuarantineDecisionBody {
    pub reason: String,
}

/// A held message: envelope, rule and status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeldView {
    pub id: i64,
    #[schema(value_type = String)]
    pub held: jiff::Timestamp,
    pub sender: String,
    pub recipients: Vec<String>,
    pub person: Option<String>,
    pub rule: Option<String>,
    pub document: Option<String>,
    pub clause: Option<String>,
    pub reason: String,
    /// What fired: `attachment:encrypted-archive`, `language:offensive-language`, ...
    pub detectors: Vec<String>,
    pub size: i64,
    /// `held`, `release` (waiting for the mail service), `releasing`, `released`,
    /// `refused` (by the next hop) or `deleted`.
    pub status: String,
    pub decided_by: Option<String>,
    #[schema(value_type = Option<String>)]
    pub decided: Option<jiff::Timestamp>,
    pub decision_reason: Option<String>,
    #[schema(value_type = Option<String>)]
    pub released: Option<jiff::Timestamp>,
}

impl From<Held> for HeldView {
    fn from(h: Held) -> HeldView {
        HeldView {
            id: h.id,
            held: h.held,
            sender: h.sender,
            recipients: h.recipients,
            person: h.person,
            rule: h.rule,
            document: h.document,
            clause: h.clause,
            reason: h.reason,
            detectors: h.detectors,
            size: h.size,
            status: h.status,
            decided_by: h.decided_by,
            decided: h.decided,
            decision_reason: h.decision_reason,
            released: h.released,
        }
    }
}

/// At most this many rows in one listing.
const LIST_LIMIT: i64 = 500;

pub async fn list(
    _can: &Can<op::ManageQuarantine>,
    g: &Guarded,
    q: &QuarantineQuery,
) -> Result<Vec<HeldView>, ApiError> {
    Ok(g.store
        .quarantine()
        .list(q.all.unwrap_or(false), LIST_LIMIT)
        .await?
        .into_iter()
        .map(HeldView::from)
        .collect())
}

fn reason(body: &QuarantineDecisionBody) -> Result<&str, ApiError> {
    let r = body.reason.trim();
    if r.is_empty() || r.chars().count() > 500 || r.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::BadRequest(
            "reason: why, in 1 to 500 characters (kept in the audit log)".into(),
        ));
    }
    Ok(r)
}

/// Releases a held message: the mail service delivers it once, within seconds.
pub async fn release(
    can: &Can<op::ManageQuarantine>,
    g: &Guarded,
    id: i64,
    body: &QuarantineDecisionBody,
) -> Result<HeldView, ApiError> {
    let reason = reason(body)?;
    let held = g
        .store
        .quarantine()
        .release(id, &can.caller().actor(), reason, g.now())
        .await?;
    Ok(held.into())
}

/// Deletes a held message: its bytes are dropped, the listing stays.
pub async fn delete(
    can: &Can<op::ManageQuarantine>,
    g: &Guarded,
    id: i64,
    body: &QuarantineDecisionBody,
) -> Result<HeldView, ApiError> {
    let reason = reason(body)?;
    let held = g
        .store
        .quarantine()
        .delete(id, &can.caller().actor(), reason, g.now())
        .await?;
    Ok(held.into())
}
