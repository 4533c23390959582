//! The acceptable-use declaration at logon (WCS ICT policy 000 §14): what a person has
//! still to accept under the live policy, recording their answer, and who has not
//! accepted the current versions. A signed-in person answers only for themselves; a
//! logon script's `sessions` token answers for the person it logs on. The engine's
//! session follower sees an acceptance within half a second and lifts the restricted
//! group.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Guarded;
use super::sessions::bare_username;
use crate::access::{Can, Principal, op};
use crate::error::ApiError;

/// A declaration the person has still to accept.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PendingDeclaration {
    /// The policy document's id (`wcs`).
    pub document: String,
    /// The version to accept (send it back with the answer).
    pub version: String,
    pub title: String,
    pub text: String,
}

/// `GET /api/v1/declarations/pending?user=NAME`.
#[derive(Debug, Clone, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PendingQuery {
    /// The username (a `DOMAIN\` prefix or `@realm` suffix is removed). A signed-in person
    /// may leave it out (themselves); a logon token must give it.
    pub user: Option<String>,
}

/// `POST /api/v1/declarations`: the person accepts a declaration.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    /// Whose answer (a signed-in person: their own username, or left out).
    pub user: Option<String>,
    pub document: String,
    /// The version shown to the person: accepting an older one is refused.
    pub version: String,
    /// The workstation's name (`%COMPUTERNAME%`).
    pub workstation: Option<String>,
    /// The workstation's address, when the caller is not the workstation itself (an
    /// agent); otherwise the request's own address is recorded.
    pub ip: Option<String>,
}

/// `GET /api/v1/declarations/outstanding`: filters.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OutstandingQuery {
    /// Only members of this roster group (e.g. `Year 9`, `Staff`).
    pub group: Option<String>,
    /// Only this year group (`9`).
    pub year: Option<String>,
}

/// A declaration in force.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CurrentDeclaration {
    pub document: String,
    pub version: String,
    pub title: String,
}

/// A person who has not accepted every current declaration.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutstandingPerson {
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub year_group: Option<String>,
    pub form: Option<String>,
    pub groups: Vec<String>,
    /// Documents whose current declaration they have not accepted.
    pub pending: Vec<String>,
}

/// How many have not accepted, in one year group (`None`: no year, e.g. staff).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct YearCount {
    pub year_group: Option<String>,
    pub people: usize,
}

/// Who has not accepted the current declarations.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Outstanding {
    pub declarations: Vec<CurrentDeclaration>,
    pub by_year: Vec<YearCount>,
    pub people: Vec<OutstandingPerson>,
}

/// The username the caller answers for: a token names anyone; a person only themselves.
fn subject(can: &Can<op::AnswerDeclarations>, user: Option<&str>) -> Result<String, ApiError> {
    let named = user.map(bare_username).filter(|u| !u.is_empty());
    match (&can.caller().principal, named) {
        (Principal::Token { .. }, Some(user)) => Ok(user.to_string()),
        (Principal::Token { .. }, None) => {
            Err(ApiError::BadRequest("user: give the username".into()))
        }
        (Principal::Account { username, .. }, None) => Ok(username.clone()),
        (Principal::Account { username, .. }, Some(user)) if user == username => Ok(user.into()),
        (Principal::Account { .. }, Some(user)) => Err(ApiError::Forbidden(format!(
            "you may answer only your own declaration, not {user}'s"
        ))),
    }
}

/// The declarations `user` has still to accept under the live policy.
pub async fn pending(
    can: &Can<op::AnswerDeclarations>,
    g: &Guarded,
    q: &PendingQuery,
) -> Result<Vec<PendingDeclaration>, ApiError> {
    let user = subject(can, q.user.as_deref())?;
    pending_for(g, &user).await
}

/// `user`'s pending declarations (also for the block page, whose caller is an address).
pub(crate) async fn pending_for(
    g: &Guarded,
    user: &str,
) -> Result<Vec<PendingDeclaration>, ApiError> {
    let accepted = g.store.declarations().of_person(user).await?;
    let snapshot = g.engine.snapshot();
    Ok(snapshot
        .policy
        .pending_declarations(|doc, version| {
            accepted
                .iter()
                .any(|a| a.document == doc && a.version == version)
        })
        .map(|d| PendingDeclaration {
            document: d.document.clone(),
            version: d.version.clone(),
            title: d.title.clone(),
            text: d.text.clone(),
        })
        .collect())
}

/// Record the caller's (or, for a logon token, the named person's) acceptance. Returns
/// the acceptance id and whether it is new (an acceptance already recorded is not
/// recorded again).
pub async fn accept(
    can: &Can<op::AnswerDeclarations>,
    g: &Guarded,
    body: &AcceptBody,
    request_ip: Option<IpAddr>,
) -> Result<hallpass_store::declarations::Accepted, ApiError> {
    let user = subject(can, body.user.as_deref())?;
    let ip = match body.ip.as_deref().map(str::trim) {
        Some(text) => Some(text.parse::<IpAddr>().map_err(|_| {
            ApiError::BadRequest(format!(
                "ip: {text:?} is not an IP address (e.g. 10.1.2.3 or 2001:db8::5)"
            ))
        })?),
        None => request_ip,
    };
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
    record(
        g,
        &can.caller().actor(),
        &user,
        &body.document,
        &body.version,
        workstation,
        ip,
    )
    .await
}

/// Checks the answer against the live policy, then records it.
pub(crate) async fn record(
    g: &Guarded,
    actor: &str,
    user: &str,
    document: &str,
    version: &str,
    workstation: Option<&str>,
    ip: Option<IpAddr>,
) -> Result<hallpass_store::declarations::Accepted, ApiError> {
    {
        let snapshot = g.engine.snapshot();
        let policy = &snapshot.policy;
        let Some(current) = policy.declaration(document) else {
            let known: Vec<&str> = policy
                .declarations()
                .iter()
                .map(|d| d.document.as_str())
                .collect();
            return Err(ApiError::BadRequest(format!(
                "document: {document:?} has no declaration in the policy (declarations: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        if current.version != version {
            return Err(ApiError::BadRequest(format!(
                "version: {version:?} is not the current version of {document}'s declaration ({:?}): fetch GET /api/v1/declarations/pending and show the person that one",
                current.version
            )));
        }
    }
    Ok(g.store
        .declarations()
        .accept(
            actor,
            user,
            document,
            version,
            hallpass_store::declarations::Place { workstation, ip },
            g.now(),
        )
        .await?)
}

/// Who has not accepted the current declarations (a head of year: their years only).
pub async fn outstanding(
    can: &Can<op::ViewDeclarations>,
    g: &Guarded,
    q: &OutstandingQuery,
) -> Result<Outstanding, ApiError> {
    let declarations: Vec<CurrentDeclaration> = g
        .engine
        .snapshot()
        .policy
        .declarations()
        .iter()
        .map(|d| CurrentDeclaration {
            document: d.document.clone(),
            version: d.version.clone(),
            title: d.title.clone(),
        })
        .collect();
    let required: Vec<(&str, &str)> = declarations
        .iter()
        .map(|d| (d.document.as_str(), d.version.as_str()))
        .collect();
    let scope = can.caller().year_scope();
    let group = q.group.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let year = q.year.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let people: Vec<OutstandingPerson> = g
        .store
        .declarations()
        .outstanding(&required)
        .await?
        .into_iter()
        .filter(|p| match scope {
            None => true,
            Some(years) => p
                .year_group
                .as_ref()
                .is_some_and(|y| years.iter().any(|s| s == y)),
        })
        .filter(|p| group.is_none_or(|g| p.groups.iter().any(|m| m == g)))
        .filter(|p| year.is_none_or(|y| p.year_group.as_deref() == Some(y)))
        .map(|p| OutstandingPerson {
            username: p.username,
            display_name: p.display_name,
            role: p.role,
            year_group: p.year_group,
            form: p.form,
            groups: p.groups,
            pending: p.pending,
        })
        .collect();
    let mut by_year: Vec<YearCount> = Vec::new();
    for p in &people {
        match by_year.iter_mut().find(|c| c.year_group == p.year_group) {
            Some(c) => c.people += 1,
            None => by_year.push(YearCount {
                year_group: p.year_group.clone(),
                people: 1,
            }),
        }
    }
    Ok(Outstanding {
        declarations,
        by_year,
        people,
    })
}

/// The outstanding list as CSV (RFC 4180), for a spreadsheet or a mail merge.
pub fn outstanding_csv(o: &Outstanding) -> String {
    fn field(text: &str) -> String {
        // A leading = + - @ would run as a formula in a spreadsheet: quote it away.
        let text = if text.starts_with(['=', '+', '-', '@']) {
            format!("'{text}")
        } else {
            text.to_string()
        };
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    }
    let mut out = String::from("username,display_name,role,year_group,form,groups,pending\n");
    for p in &o.people {
        let row = [
            field(&p.username),
            field(&p.display_name),
            field(&p.role),
            field(p.year_group.as_deref().unwrap_or("")),
            field(p.form.as_deref().unwrap_or("")),
            field(&p.groups.join(";")),
            field(&p.pending.join(";")),
        ];
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}
