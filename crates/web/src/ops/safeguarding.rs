//! Safeguarding case work behind the role matrix: sanctions, incidents, investigations
//! and the content they unlock. Who may act on whom is decided here, from the caller the
//! capability carries: heads of year their years' pupils, the DSL and network managers
//! pupils, the headteacher everyone (staff cases are the headteacher's alone). A person
//! outside the caller's reach is "not found", as if they were not there.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Guarded;
use crate::access::{Caller, Can, Role, op};
use crate::error::ApiError;
use hallpass_store::safeguarding::{
    Incident, Investigation, NewIncident, NewSanction, SanctionRow,
};

/// `POST /api/v1/sanctions`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSanctionBody {
    pub person: String,
    /// `internet`, `email`, `network` or `site`.
    pub kind: String,
    /// The site (host), for kind `site`.
    pub target: Option<String>,
    /// RFC 3339, or `YYYY-MM-DD HH:MM` in the school's time zone.
    pub until: String,
    pub reason: String,
    /// The incident it belongs to (recorded in its chronology).
    pub incident: Option<i64>,
    /// The policy clause it cites (e.g. `8.1.1`).
    pub clause: Option<String>,
}

/// `GET /api/v1/sanctions?all=true`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SanctionQuery {
    /// Ended sanctions too (default: those in force).
    pub all: Option<bool>,
}

/// `POST /api/v1/incidents`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIncidentBody {
    pub person: String,
    pub title: String,
    /// The alert it was opened from.
    pub alert: Option<i64>,
}

/// `POST /api/v1/incidents/{id}/actions`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentActionBody {
    /// `note`, `interview`, `parents-informed`, `referral-police`,
    /// `referral-social-care` or `outcome` (which closes the incident).
    pub kind: String,
    /// Who, how and when, in words (e.g. "Mother, by phone, 10:15").
    pub details: String,
}

/// An incident with its chronology.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentDetail {
    #[schema(value_type = Object)]
    pub incident: Incident,
    #[schema(value_type = Vec<Object>)]
    pub actions: Vec<hallpass_store::safeguarding::IncidentAction>,
}

/// `POST /api/v1/investigations`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvestigationBody {
    pub person: String,
    /// Why: the allegation or concern (required).
    pub purpose: String,
    /// The activity it may read: from and to (RFC 3339 or `YYYY-MM-DD HH:MM`).
    pub from: String,
    pub to: String,
    /// When the authorisation ends.
    pub until: String,
}

/// One piece of recorded content.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContentItem {
    /// The decision it belongs to.
    pub event: i64,
    /// What it is (`search`, `url`, `message`...).
    pub kind: String,
    #[schema(value_type = String)]
    pub at: jiff::Timestamp,
    pub content: String,
}

/// A message from the mail journal, as an investigation shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JournalMessage {
    pub id: i64,
    #[schema(value_type = String)]
    pub at: jiff::Timestamp,
    /// inbound | outbound | internal
    pub direction: String,
    pub sender: String,
    pub recipients: Vec<String>,
    pub size: i64,
    /// The message as it arrived (headers and body), up to 16 KiB.
    pub text: String,
    /// Whether `text` stops short of the whole message.
    pub truncated: bool,
}

/// How much of a journaled message the view shows.
const JOURNAL_TEXT_BYTES: usize = 16 << 10;
/// Journaled messages shown at most.
const JOURNAL_MESSAGES: i64 = 500;

/// A person's content, as an investigation shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContentView {
    pub person: String,
    pub investigation: i64,
    pub purpose: String,
    pub items: Vec<ContentItem>,
    /// Mail they sent or were sent in the investigation's range (000 §3.3.1: kept even
    /// when they deleted it).
    pub messages: Vec<JournalMessage>,
}

/// Who a case is about.
pub(crate) struct Subject {
    pub(crate) username: String,
    pub(crate) year_group: Option<String>,
    pub(crate) staff: bool,
}

pub(crate) async fn subject(g: &Guarded, username: &str) -> Result<Subject, ApiError> {
    let username = username.trim();
    let Some((role, year_group)) = g.store.people().role_and_year(username).await? else {
        return Err(ApiError::NotFound(format!(
            "no person {username:?} in the roster"
        )));
    };
    Ok(Subject {
        username: username.to_string(),
        year_group,
        staff: !matches!(role.as_str(), "student" | "guest" | "visitor"),
    })
}

/// Whether `caller` may act on (or see cases about) someone with these attributes.
pub(crate) fn reaches(caller: &Caller, staff: bool, year_group: Option<&str>) -> bool {
    match caller.role() {
        Some(Role::Headteacher) => true,
        Some(Role::HeadOfYear) => {
            !staff
                && caller
                    .year_scope()
                    .is_some_and(|years| year_group.is_some_and(|y| years.iter().any(|v| v == y)))
        }
        // DSL, network managers and tokens: pupils, never staff.
        _ => !staff,
    }
}

pub(crate) fn out_of_reach(username: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no person {username:?} you may act for (heads of year: their years; staff: the headteacher)"
    ))
}

fn actor(caller: &Caller) -> String {
    caller.actor()
}

pub async fn impose_sanction(
    can: &Can<op::ImposeSanctions>,
    g: &Guarded,
    body: &NewSanctionBody,
) -> Result<i64, ApiError> {
    let who = subject(g, &body.person).await?;
    if !reaches(can.caller(), who.staff, who.year_group.as_deref()) {
        return Err(out_of_reach(&who.username));
    }
    let policy = g.engine.snapshot().policy.clone();
    let until = policy
        .parse_time(body.until.trim())
        .map_err(|e| ApiError::BadRequest(format!("until: {e}")))?;
    let target = match body.target.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => Some(
            super::exceptions::normalise_target(t)
                .map_err(|e| ApiError::BadRequest(format!("target: {e}")))?,
        ),
        _ => None,
    };
    if body.clause.as_ref().is_some_and(|c| c.chars().count() > 40) {
        return Err(ApiError::BadRequest("clause: at most 40 characters".into()));
    }
    Ok(g.store
        .safeguarding()
        .sanction(
            &actor(can.caller()),
            &NewSanction {
                person: &who.username,
                kind: body.kind.trim(),
                target: target.as_deref(),
                until,
                reason: &body.reason,
                clause: body.clause.as_deref(),
                incident: body.incident,
            },
            g.now(),
        )
        .await?)
}

pub async fn sanctions(
    can: &Can<op::ImposeSanctions>,
    g: &Guarded,
    q: &SanctionQuery,
) -> Result<Vec<SanctionRow>, ApiError> {
    let now = g.now();
    let rows = g
        .store
        .safeguarding()
        .sanctions(None, (!q.all.unwrap_or(false)).then_some(now))
        .await?;
    let mut seen = Vec::with_capacity(rows.len());
    for row in rows {
        let who = subject(g, &row.person).await;
        if who.is_ok_and(|w| reaches(can.caller(), w.staff, w.year_group.as_deref())) {
            seen.push(row);
        }
    }
    Ok(seen)
}

pub async fn lift_sanction(
    can: &Can<op::ImposeSanctions>,
    g: &Guarded,
    id: i64,
) -> Result<(), ApiError> {
    let row = g.store.safeguarding().sanction_by_id(id).await?;
    let who = subject(g, &row.person).await?;
    if !reaches(can.caller(), who.staff, who.year_group.as_deref()) {
        return Err(ApiError::NotFound(format!("no sanction {id}")));
    }
    g.store
        .safeguarding()
        .revoke_sanction(&actor(can.caller()), id, g.now())
        .await?;
    Ok(())
}

/// Open an incident; a pupil's is assigned to their head of year (the first console
/// account of that role whose years include theirs), a member of staff's to nobody (the
/// headteacher's alone).
pub async fn open_incident(
    can: &Can<op::ManageIncidents>,
    g: &Guarded,
    body: &NewIncidentBody,
) -> Result<i64, ApiError> {
    let who = subject(g, &body.person).await?;
    if !reaches(can.caller(), who.staff, who.year_group.as_deref()) {
        return Err(out_of_reach(&who.username));
    }
    if let Some(alert) = body.alert {
        let (found, _) = g.store.alerts().get(alert).await?;
        if found.person != who.username {
            return Err(ApiError::BadRequest(format!(
                "alert: alert {alert} is about {}, not {}",
                found.person, who.username
            )));
        }
    }
    let head_of_year = match (&who.year_group, who.staff) {
        (Some(year), false) => g
            .store
            .accounts()
            .list()
            .await?
            .into_iter()
            .filter(|a| a.role == "head_of_year" && a.disabled.is_none())
            .find(|a| a.years.iter().any(|y| y == year))
            .map(|a| a.username),
        _ => None,
    };
    Ok(g.store
        .safeguarding()
        .open_incident(
            &actor(can.caller()),
            &NewIncident {
                person: &who.username,
                year_group: who.year_group.as_deref(),
                staff_case: who.staff,
                title: &body.title,
                alert: body.alert,
                assigned_to: head_of_year.as_deref(),
            },
            g.now(),
        )
        .await?)
}

fn sees_incident(caller: &Caller, incident: &Incident) -> bool {
    reaches(caller, incident.staff_case, incident.year_group.as_deref())
}

pub async fn incidents(
    can: &Can<op::ManageIncidents>,
    g: &Guarded,
) -> Result<Vec<Incident>, ApiError> {
    Ok(g.store
        .safeguarding()
        .incidents(false)
        .await?
        .into_iter()
        .filter(|i| sees_incident(can.caller(), i))
        .collect())
}

async fn visible_incident(
    can: &Can<op::ManageIncidents>,
    g: &Guarded,
    id: i64,
) -> Result<Incident, ApiError> {
    let incident = g.store.safeguarding().incident(id).await?;
    if !sees_incident(can.caller(), &incident) {
        return Err(ApiError::NotFound(format!("no incident {id}")));
    }
    Ok(incident)
}

/// One incident and its chronology; the view is audited (`incident.view`).
pub async fn incident(
    can: &Can<op::ManageIncidents>,
    g: &Guarded,
    id: i64,
) -> Result<IncidentDetail, ApiError> {
    let incident = visible_incident(can, g, id).await?;
    let actions = g.store.safeguarding().actions(id).await?;
    g.store
        .audit()
        .append(
            &actor(can.caller()),
            "incident.view",
            &incident.person,
            &serde_json::json!({ "incident": id }),
            g.now(),
        )
        .await?;
    Ok(IncidentDetail { incident, actions })
}

pub async fn record_action(
    can: &Can<op::ManageIncidents>,
    g: &Guarded,
    id: i64,
    body: &IncidentActionBody,
) -> Result<Incident, ApiError> {
    visible_incident(can, g, id).await?;
    Ok(g.store
        .safeguarding()
        .record_action(
            &actor(can.caller()),
            id,
            body.kind.trim(),
            &body.details,
            g.now(),
        )
        .await?)
}

/// Authorise an investigation. The DSL may for a pupil (a child-protection concern); a
/// member of staff's only the headteacher.
pub async fn open_investigation(
    can: &Can<op::AuthoriseInvestigations>,
    g: &Guarded,
    body: &NewInvestigationBody,
) -> Result<i64, ApiError> {
    let who = subject(g, &body.person).await?;
    if !reaches(can.caller(), who.staff, who.year_group.as_deref()) {
        return Err(out_of_reach(&who.username));
    }
    let policy = g.engine.snapshot().policy.clone();
    let time = |field: &str, text: &str| {
        policy
            .parse_time(text.trim())
            .map_err(|e| ApiError::BadRequest(format!("{field}: {e}")))
    };
    let (from, to, until) = (
        time("from", &body.from)?,
        time("to", &body.to)?,
        time("until", &body.until)?,
    );
    Ok(g.store
        .safeguarding()
        .open_investigation(
            &actor(can.caller()),
            &who.username,
            &body.purpose,
            from,
            to,
            until,
            g.now(),
        )
        .await?)
}

pub async fn investigations(
    can: &Can<op::AuthoriseInvestigations>,
    g: &Guarded,
) -> Result<Vec<Investigation>, ApiError> {
    let all = g.store.safeguarding().investigations(None).await?;
    let mut seen = Vec::with_capacity(all.len());
    for i in all {
        let who = subject(g, &i.person).await;
        if who.is_ok_and(|w| reaches(can.caller(), w.staff, w.year_group.as_deref())) {
            seen.push(i);
        }
    }
    Ok(seen)
}

/// The content of `username`'s activity within the caller's open investigation of them
/// (its time range); `403` without one. Every read is audited (`content.view`, with the
/// investigation and its purpose), so the person's record shows who looked and why.
pub async fn content(
    can: &Can<op::ReadContent>,
    g: &Guarded,
    username: &str,
) -> Result<ContentView, ApiError> {
    let who = subject(g, username).await?;
    let reader = can.caller().username().ok_or_else(|| {
        ApiError::Forbidden(
            "content is read by a person inside an investigation, never by a token".into(),
        )
    })?;
    let now = g.now();
    let Some(investigation) = g
        .store
        .safeguarding()
        .open_investigation_for(reader, &who.username, now)
        .await?
    else {
        return Err(ApiError::Forbidden(format!(
            "no open investigation of {} authorised by {reader}: content is visible only \
             inside one (POST /api/v1/investigations)",
            who.username
        )));
    };
    let items = g
        .store
        .safeguarding()
        .content_of(&who.username, investigation.from, investigation.to)
        .await?;
    let address = g.store.people().email_of(&who.username).await?;
    let messages: Vec<JournalMessage> = g
        .store
        .quarantine()
        .journal_of(
            &who.username,
            address.as_deref(),
            investigation.from,
            investigation.to,
            JOURNAL_MESSAGES,
        )
        .await?
        .into_iter()
        .map(|m| {
            let shown = &m.message[..m.message.len().min(JOURNAL_TEXT_BYTES)];
            JournalMessage {
                id: m.id,
                at: m.at,
                direction: m.direction,
                sender: m.sender,
                recipients: m.recipients,
                size: m.size,
                text: String::from_utf8_lossy(shown).into_owned(),
                truncated: shown.len() < m.message.len(),
            }
        })
        .collect();
    g.store
        .audit()
        .append(
            reader,
            "content.view",
            &who.username,
            &serde_json::json!({
                "investigation": investigation.id,
                "purpose": investigation.purpose,
                "items": items.len(),
                "messages": messages.len(),
            }),
            now,
        )
        .await?;
    Ok(ContentView {
        person: who.username,
        investigation: investigation.id,
        purpose: investigation.purpose,
        items: items
            .into_iter()
            .map(|(event, kind, at, content)| ContentItem {
                event,
                kind,
                at,
                content,
            })
            .collect(),
        messages,
    })
}
