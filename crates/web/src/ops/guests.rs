//! Guest codes for the captive portal: a member of staff issues one for a visitor (who
//! becomes a person with the role `guest`, so the policy's guest group applies); typed
//! on the block page, it starts a logon session for the visitor at their address.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Guarded;
use crate::access::{Can, op};
use crate::error::ApiError;

/// The longest a code stays valid.
const MAX_HOURS: u32 = 7 * 24;

/// `POST /api/v1/guests`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGuestBody {
    /// The visitor's name, as the console and the audit log show it.
    pub name: String,
    /// How long the code may be used, in hours (default 8, at most 168).
    pub hours: Option<u32>,
}

/// A new code: give it to the visitor (it is shown once, never stored).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuedGuest {
    pub id: i64,
    pub code: String,
    pub username: String,
    #[schema(value_type = String)]
    pub expires: jiff::Timestamp,
}

/// A code still valid (without the code itself).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GuestView {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub issued_by: String,
    #[schema(value_type = String)]
    pub expires: jiff::Timestamp,
}

pub async fn issue(
    can: &Can<op::IssueGuestCodes>,
    g: &Guarded,
    body: &NewGuestBody,
) -> Result<IssuedGuest, ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "name: the visitor's name, 1 to 100 characters".into(),
        ));
    }
    let hours = body.hours.unwrap_or(8);
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(ApiError::BadRequest(format!(
            "hours: {hours} is out of range (1 to {MAX_HOURS})"
        )));
    }
    let now = g.now();
    let expires = now + jiff::SignedDuration::from_hours(i64::from(hours));
    let code = crate::password::guest_code();
    let hash = crate::password::secret_hash(&crate::password::normalise_guest_code(&code));
    let suffix =
        crate::password::normalise_guest_code(&crate::password::guest_code()).to_ascii_lowercase();
    let username = format!("guest-{}", &suffix[..6]);
    let id = g
        .store
        .guests()
        .issue(&can.caller().actor(), &username, name, &hash, expires, now)
        .await?;
    Ok(IssuedGuest {
        id,
        code,
        username,
        expires,
    })
}

pub async fn list(can: &Can<op::IssueGuestCodes>, g: &Guarded) -> Result<Vec<GuestView>, ApiError> {
    // ICT support sees every code; others their own.
    let all = can.caller().role() == Some(crate::Role::NetworkManager);
    let actor = can.caller().actor();
    Ok(g.store
        .guests()
        .valid((!all).then_some(actor.as_str()), g.now())
        .await?
        .into_iter()
        .map(|c| GuestView {
            id: c.id,
            username: c.username,
            name: c.display_name,
            issued_by: c.issued_by,
            expires: c.expires,
        })
        .collect())
}
