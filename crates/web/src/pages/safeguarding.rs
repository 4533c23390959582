//! The console's pages for safeguarding case work: incidents (list, open, chronology,
//! actions, a sanction from the case), sanctions in force (lift), investigations
//! (authorise) and the content an investigation unlocks. Forms post to page routes that
//! call the same `ops::safeguarding` functions as the API, then redirect back.

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{Layout, query, render};
use crate::WebState;
use crate::access::{Can, op};
use crate::error::ApiError;
use crate::ops::safeguarding::{
    self, ContentView, IncidentActionBody, IncidentDetail, NewIncidentBody, NewInvestigationBody,
    NewSanctionBody, SanctionQuery,
};
use hallpass_store::safeguarding::{Incident, Investigation, SanctionRow};

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/incidents", get(incidents_page).post(open_incident))
        .route("/incidents/{id}", get(incident_page))
        .route("/incidents/{id}/actions", post(record_action))
        .route("/incidents/{id}/sanction", post(sanction_from_case))
        .route("/sanctions", get(sanctions_page))
        .route("/sanctions/{id}/lift", post(lift_sanction))
        .route(
            "/investigations",
            get(investigations_page).post(open_investigation),
        )
        .route("/people/{username}/content", get(content_page))
}

fn form<T>(f: Result<Form<T>, axum::extract::rejection::FormRejection>) -> Result<T, ApiError> {
    f.map(|Form(f)| f)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// `?person=` prefills the "open an incident" form (from an alert's page).
#[derive(Debug, Default, Deserialize)]
struct Prefill {
    person: Option<String>,
    alert: Option<i64>,
}

#[derive(Template)]
#[template(path = "incidents.html")]
struct IncidentsPage {
    layout: Layout,
    person: String,
    alert: String,
    incidents: Vec<Incident>,
}

async fn incidents_page(
    State(state): State<WebState>,
    can: Can<op::ManageIncidents>,
    q: Result<Query<Prefill>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    Ok(render(&IncidentsPage {
        layout: Layout::new("Incidents", Some(can.caller())),
        person: q.person.unwrap_or_default(),
        alert: q.alert.map(|a| a.to_string()).unwrap_or_default(),
        incidents: safeguarding::incidents(&can, state.guarded()).await?,
    }))
}

/// The page forms carry `csrf_token` beside their fields.
#[derive(Debug, Deserialize)]
struct IncidentForm {
    person: String,
    title: String,
    #[serde(default)]
    alert: String,
}

async fn open_incident(
    State(state): State<WebState>,
    can: Can<op::ManageIncidents>,
    body: Result<Form<IncidentForm>, axum::extract::rejection::FormRejection>,
) -> Result<Redirect, ApiError> {
    let f = form(body)?;
    let alert = match f.alert.trim() {
        "" => None,
        a => Some(
            a.parse()
                .map_err(|_| ApiError::BadRequest(format!("alert: {a:?} is not a number")))?,
        ),
    };
    let body = NewIncidentBody {
        person: f.person,
        title: f.title,
        alert,
    };
    let id = safeguarding::open_incident(&can, state.guarded(), &body).await?;
    Ok(Redirect::to(&format!("/incidents/{id}")))
}

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage {
    layout: Layout,
    detail: IncidentDetail,
    kinds: &'static [&'static str],
    sanction_kinds: &'static [&'static str],
}

async fn incident_page(
    State(state): State<WebState>,
    can: Can<op::ManageIncidents>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let detail = safeguarding::incident(&can, state.guarded(), id).await?;
    Ok(render(&IncidentPage {
        layout: Layout::new(&format!("Incident #{id}"), Some(can.caller())),
        detail,
        kinds: &[
            "note",
            "interview",
            "parents-informed",
            "referral-police",
            "referral-social-care",
            "outcome",
        ],
        sanction_kinds: hallpass_store::safeguarding::SANCTION_KINDS,
    }))
}

#[derive(Debug, Deserialize)]
struct ActionForm {
    kind: String,
    details: String,
}

async fn record_action(
    State(state): State<WebState>,
    can: Can<op::ManageIncidents>,
    Path(id): Path<i64>,
    body: Result<Form<ActionForm>, axum::extract::rejection::FormRejection>,
) -> Result<Redirect, ApiError> {
    let f = form(body)?;
    let body = IncidentActionBody {
        kind: f.kind,
        details: f.details,
    };
    safeguarding::record_action(&can, state.guarded(), id, &body).await?;
    Ok(Redirect::to(&format!("/incidents/{id}")))
}

#[derive(Debug, Deserialize)]
struct SanctionForm {
    person: String,
    kind: String,
    #[serde(default)]
    target: String,
    until: String,
    reason: String,
}

/// A sanction from the case's page (needs the sanction operation too).
async fn sanction_from_case(
    State(state): State<WebState>,
    can: Can<op::ImposeSanctions>,
    Path(id): Path<i64>,
    body: Result<Form<SanctionForm>, axum::extract::rejection::FormRejection>,
) -> Result<Redirect, ApiError> {
    let f = form(body)?;
    let body = NewSanctionBody {
        person: f.person,
        kind: f.kind,
        target: Some(f.target).filter(|t| !t.trim().is_empty()),
        // A date-time field gives `YYYY-MM-DDTHH:MM`, school time.
        until: f.until.replace('T', " "),
        reason: f.reason,
        incident: Some(id),
        clause: None,
    };
    safeguarding::impose_sanction(&can, state.guarded(), &body).await?;
    Ok(Redirect::to(&format!("/incidents/{id}")))
}

#[derive(Template)]
#[template(path = "sanctions.html")]
struct SanctionsPage {
    layout: Layout,
    sanctions: Vec<SanctionRow>,
}

async fn sanctions_page(
    State(state): State<WebState>,
    can: Can<op::ImposeSanctions>,
) -> Result<Response, ApiError> {
    let sanctions =
        safeguarding::sanctions(&can, state.guarded(), &SanctionQuery { all: Some(false) }).await?;
    Ok(render(&SanctionsPage {
        layout: Layout::new("Sanctions in force", Some(can.caller())),
        sanctions,
    }))
}

async fn lift_sanction(
    State(state): State<WebState>,
    can: Can<op::ImposeSanctions>,
    Path(id): Path<i64>,
) -> Result<Redirect, ApiError> {
    safeguarding::lift_sanction(&can, state.guarded(), id).await?;
    Ok(Redirect::to("/sanctions"))
}

#[derive(Template)]
#[template(path = "investigations.html")]
struct InvestigationsPage {
    layout: Layout,
    investigations: Vec<Investigation>,
}

async fn investigations_page(
    State(state): State<WebState>,
    can: Can<op::AuthoriseInvestigations>,
) -> Result<Response, ApiError> {
    Ok(render(&InvestigationsPage {
        layout: Layout::new("Investigations", Some(can.caller())),
        investigations: safeguarding::investigations(&can, state.guarded()).await?,
    }))
}

#[derive(Debug, Deserialize)]
struct InvestigationForm {
    person: String,
    purpose: String,
    from: String,
    to: String,
    until: String,
}

async fn open_investigation(
    State(state): State<WebState>,
    can: Can<op::AuthoriseInvestigations>,
    body: Result<Form<InvestigationForm>, axum::extract::rejection::FormRejection>,
) -> Result<Redirect, ApiError> {
    let f = form(body)?;
    let local = |t: String| t.replace('T', " ");
    let body = NewInvestigationBody {
        person: f.person.clone(),
        purpose: f.purpose,
        from: local(f.from),
        to: local(f.to),
        until: local(f.until),
    };
    safeguarding::open_investigation(&can, state.guarded(), &body).await?;
    Ok(Redirect::to(&format!(
        "/people/{}/content",
        f.person.trim()
    )))
}

#[derive(Template)]
#[template(path = "content.html")]
struct ContentPage {
    layout: Layout,
    view: ContentView,
}

async fn content_page(
    State(state): State<WebState>,
    can: Can<op::ReadContent>,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    let view = safeguarding::content(&can, state.guarded(), &username).await?;
    Ok(render(&ContentPage {
        layout: Layout::new(&format!("Content: {username}"), Some(can.caller())),
        view,
    }))
}
