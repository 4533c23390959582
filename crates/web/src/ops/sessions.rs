//! Logon sessions from logon scripts and agents (a `sessions` token): who is at which
//! address. Starting one ends whatever session held the address; the engine's session
//! follower puts it in the snapshot within half a second, so the DNS filter (and the
//! block page) apply that person's policy from then on.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Guarded;
use crate::access::{Can, op};
use crate::error::ApiError;

/// `POST /api/v1/sessions`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSessionBody {
    /// The username, as in the roster (`ava.student`; a `DOMAIN\` prefix or `@realm`
    /// suffix from Windows is removed).
    pub user: String,
    /// The workstation's address (IPv4 or IPv6).
    pub ip: String,
    /// The workstation's name (`%COMPUTERNAME%`).
    pub workstation: Option<String>,
}

/// `DELETE /api/v1/sessions?ip=ADDR`.
#[derive(Debug, Clone, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EndByAddress {
    pub ip: String,
}

/// Who is logged on where.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    pub ip: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub workstation: Option<String>,
    #[schema(value_type = String)]
    pub started: jiff::Timestamp,
    #[schema(value_type = String)]
    pub last_seen: jiff::Timestamp,
    /// How long they have been logged on, in minutes.
    pub minutes: i64,
}

/// `DOMAIN\user` and `user@realm` (as Windows and RADIUS give them) to `user`.
pub fn bare_username(text: &str) -> &str {
    let text = text.trim();
    let text = text.rsplit_once('\\').map_or(text, |(_, u)| u);
    text.split_once('@').map_or(text, |(u, _)| u)
}

fn parse_ip(text: &str) -> Result<IpAddr, ApiError> {
    text.trim().parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "ip: {text:?} is not an IP address (e.g. 10.1.2.3 or 2001:db8::5)"
        ))
    })
}

fn actor(can: &Can<op::LogonSessions>) -> String {
    can.caller().actor()
}

pub async fn start(
    can: &Can<op::LogonSessions>,
    g: &Guarded,
    body: &NewSessionBody,
) -> Result<i64, ApiError> {
    let user = bare_username(&body.user);
    if user.is_empty() {
        return Err(ApiError::BadRequest("user: give the username".into()));
    }
    let ip = parse_ip(&body.ip)?;
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(ApiError::BadRequest(format!(
            "ip: {ip} is not a workstation's address"
        )));
    }
    let workstation = body
        .workstation
        .as_deref()
        .map(str::trim)
        .filter(|w| !w.is_empty());
    if workstation.is_some_and(|w| w.chars().count() > 253 || w.chars().any(char::is_control)) {
        return Err(ApiError::BadRequest(
            "workstation: at most 253 characters, no control characters".into(),
        ));
    }
    Ok(g.store
        .sessions()
        .start(&actor(can), user, ip, workstation, g.now())
        .await?)
}

pub async fn end(can: &Can<op::LogonSessions>, g: &Guarded, id: i64) -> Result<(), ApiError> {
    match g.store.sessions().end_id(&actor(can), id, g.now()).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!(
            "no open session {id} (ended already, or never started)"
        ))),
    }
}

pub async fn end_at(can: &Can<op::LogonSessions>, g: &Guarded, ip: &str) -> Result<u64, ApiError> {
    let ip = parse_ip(ip)?;
    Ok(g.store
        .sessions()
        .end_by_ip(&actor(can), ip, g.now())
        .await?)
}

pub async fn heartbeat(_: &Can<op::LogonSessions>, g: &Guarded, id: i64) -> Result<(), ApiError> {
    if g.store.sessions().heartbeat(id, g.now()).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "no open session {id}: log on again (POST /api/v1/sessions)"
        )))
    }
}

pub async fn active(_: &Can<op::LogonSessions>, g: &Guarded) -> Result<Vec<SessionView>, ApiError> {
    let now = g.now();
    Ok(g.store
        .sessions()
        .active()
        .await?
        .into_iter()
        .map(|s| SessionView {
            ip: s.ip.to_string(),
            minutes: now.duration_since(s.started).as_mins().max(0),
            username: s.username,
            display_name: s.display_name,
            role: s.role,
            workstation: s.workstation,
            started: s.started,
            last_seen: s.last_seen,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::bare_username;

    #[test]
    fn windows_and_realm_forms_become_the_username() {
        assert_eq!(bare_username("WCS\\ava.student"), "ava.student");
        assert_eq!(bare_username("ava.student@wcs.local"), "ava.student");
        assert_eq!(bare_username(" ava.student "), "ava.student");
    }
}
