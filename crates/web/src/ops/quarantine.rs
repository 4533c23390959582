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

/// `POST /api/v1/mail/blocks`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBlockBody {
    /// An address (`offers@bulk.example`) or a domain (`bulk.example`, with its subdomains).
    pub sender: String,
    /// Why (kept with the block and in the audit log; part of the refusal's text).
    pub reason: String,
}

/// A sender the console blocked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BlockView {
    pub id: i64,
    pub sender: String,
    pub reason: String,
    pub added_by: String,
    #[schema(value_type = String)]
    pub added: jiff::Timestamp,
}

impl From<hallpass_store::quarantine::SenderBlock> for BlockView {
    fn from(b: hallpass_store::quarantine::SenderBlock) -> BlockView {
        BlockView {
            id: b.id,
            sender: b.sender,
            reason: b.reason,
            added_by: b.added_by,
            added: b.added,
        }
    }
}

pub async fn blocks(
    _can: &Can<op::ManageQuarantine>,
    g: &Guarded,
) -> Result<Vec<BlockView>, ApiError> {
    Ok(g.store
        .quarantine()
        .sender_blocks()
        .await?
        .into_iter()
        .map(BlockView::from)
        .collect())
}

/// The sender as stored: lower case, an address or a domain; `Err` says what is wrong.
fn block_target(raw: &str, school: &[String]) -> Result<String, ApiError> {
    let v = raw.trim().trim_matches(['<', '>']).to_ascii_lowercase();
    // `@example.com` is the domain, as in the policy file's `senders`.
    let (local, domain) = match v
        .strip_prefix('@')
        .map_or_else(|| v.rsplit_once('@'), |_| None)
    {
        Some((l, d)) => (Some(l), d.trim_end_matches('.')),
        None => (None, v.trim_start_matches('@').trim_end_matches('.')),
    };
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let domain_ok = domain.contains('.') && domain.split('.').all(label_ok);
    let local_ok = local.is_none_or(|l| {
        !l.is_empty() && l.len() <= 64 && l.chars().all(|c| c.is_ascii_graphic() && c != '@')
    });
    if !domain_ok || !local_ok {
        return Err(ApiError::BadRequest(format!(
            "sender: `{raw}` is neither an address (name@example.com) nor a domain (example.com)"
        )));
    }
    if local.is_none()
        && school
            .iter()
            .any(|s| s == domain || s.ends_with(&format!(".{domain}")))
    {
        return Err(ApiError::BadRequest(format!(
            "sender: `{domain}` is the school's own mail domain; block single addresses instead"
        )));
    }
    Ok(match local {
        Some(l) => format!("{l}@{domain}"),
        None => domain.to_owned(),
    })
}

/// Blocks a sender: their mail is refused from the next second on.
pub async fn block(
    can: &Can<op::ManageQuarantine>,
    g: &Guarded,
    body: &NewBlockBody,
) -> Result<BlockView, ApiError> {
    let school = g.engine.snapshot().policy.mail().domains().to_vec();
    let sender = block_target(&body.sender, &school)?;
    let why = QuarantineDecisionBody {
        reason: body.reason.clone(),
    };
    let reason = reason(&why)?;
    Ok(g.store
        .quarantine()
        .block_sender(&sender, reason, &can.caller().actor(), g.now())
        .await?
        .into())
}

/// Lifts a block, with a reason.
pub async fn unblock(
    can: &Can<op::ManageQuarantine>,
    g: &Guarded,
    id: i64,
    body: &QuarantineDecisionBody,
) -> Result<(), ApiError> {
    let reason = reason(body)?;
    g.store
        .quarantine()
        .unblock_sender(id, reason, &can.caller().actor(), g.now())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::block_target;

    #[test]
    fn block_targets_are_addresses_or_domains_but_not_the_school() {
        let school = vec!["wcs.london".to_string()];
        assert_eq!(
            block_target(" Offers@Bulk.Example ", &school).unwrap(),
            "offers@bulk.example"
        );
        assert_eq!(
            block_target("@bulk.example.", &school).unwrap(),
            "bulk.example"
        );
        assert_eq!(
            block_target("ex.pupil@wcs.london", &school).unwrap(),
            "ex.pupil@wcs.london"
        );
        for bad in [
            "",
            "nodot",
            "a@",
            "@",
            "a b@x.example",
            "*.x.example",
            "wcs.london",
            "london",
        ] {
            assert!(block_target(bad, &school).is_err(), "{bad}");
        }
    }
}
