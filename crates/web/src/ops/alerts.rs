//! Alerts routed to the caller's role: listed, opened (audited: an alert is a view of a
//! person's activity) and moved on. Which routes a role handles is decided here, from
//! the caller the capability carries; a token with the `alerts.handle` scope sees the
//! ICT support route only (a machine reading conduct alerts for a ticketing system).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Guarded;
use crate::access::{Can, Role, op};
use crate::error::ApiError;

/// An alert as the console shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertView {
    pub id: i64,
    pub person: String,
    /// `conduct` or `safeguarding`.
    pub kind: String,
    pub theme: String,
    /// 1 (low) to 5 (imminent risk).
    pub severity: i64,
    /// The role it is routed to.
    pub route: String,
    pub document: Option<String>,
    pub clause: Option<String>,
    pub summary: String,
    /// `new`, `acknowledged`, `escalated` or `closed`.
    pub status: String,
    pub outcome: Option<String>,
    /// How many occurrences folded into it.
    pub count: i64,
    #[schema(value_type = String)]
    pub first: jiff::Timestamp,
    #[schema(value_type = String)]
    pub last: jiff::Timestamp,
    pub updated_by: Option<String>,
}

/// One alert with its evidence (metadata only).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertDetail {
    pub alert: AlertView,
    pub occurrences: Vec<OccurrenceView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OccurrenceView {
    #[schema(value_type = String)]
    pub at: jiff::Timestamp,
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
}

/// `GET /api/v1/alerts?open=true`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// Only alerts not closed (default true).
    pub open: Option<bool>,
    /// Only this person's.
    pub person: Option<String>,
}

/// `POST /api/v1/alerts/{id}/status`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertStatusBody {
    /// `acknowledged`, `escalated` or `closed`.
    pub status: String,
    /// What was found or done; required to close.
    pub outcome: Option<String>,
}

impl From<hallpass_store::alerts::Alert> for AlertView {
    fn from(a: hallpass_store::alerts::Alert) -> AlertView {
        AlertView {
            id: a.id,
            person: a.person,
            kind: a.kind,
            theme: a.theme,
            severity: a.severity,
            route: a.route,
            document: a.document,
            clause: a.clause,
            summary: a.summary,
            status: a.status,
            outcome: a.outcome,
            count: a.count,
            first: a.first,
            last: a.last,
            updated_by: a.updated_by,
        }
    }
}

/// The routes the caller handles.
pub fn routes_for(can: &Can<op::HandleAlerts>) -> &'static [&'static str] {
    match can.caller().role() {
        Some(Role::NetworkManager) | None => &["network_manager"],
        Some(Role::Dsl) => &["dsl", "head_of_year"],
        Some(Role::HeadOfYear) => &["head_of_year"],
        Some(Role::Headteacher) => &["headteacher"],
        // The matrix gives HandleAlerts to no other role; should it change, they see none.
        Some(_) => &[],
    }
}

pub async fn list(
    can: &Can<op::HandleAlerts>,
    g: &Guarded,
    q: &AlertQuery,
) -> Result<Vec<AlertView>, ApiError> {
    let person = q.person.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let alerts = g
        .store
        .alerts()
        .list(&hallpass_store::alerts::AlertFilter {
            routes: routes_for(can),
            open_only: q.open.unwrap_or(true),
            person,
            year_groups: can.caller().year_scope(),
            limit: 500,
        })
        .await?;
    if let Some(person) = person {
        g.store
            .audit()
            .append(
                &can.caller().actor(),
                "alerts.view",
                person,
                &serde_json::json!({ "open_only": q.open.unwrap_or(true) }),
                g.now(),
            )
            .await?;
    }
    Ok(alerts.into_iter().map(AlertView::from).collect())
}

/// One alert the caller handles (another route's is "not found": its existence is not
/// the caller's business). Audited as a view of the person's activity.
pub async fn get(
    can: &Can<op::HandleAlerts>,
    g: &Guarded,
    id: i64,
) -> Result<AlertDetail, ApiError> {
    let (alert, occurrences) = visible(can, g, id).await?;
    g.store
        .audit()
        .append(
            &can.caller().actor(),
            "alert.view",
            &alert.person,
            &serde_json::json!({ "alert": id }),
            g.now(),
        )
        .await?;
    Ok(AlertDetail {
        alert: alert.into(),
        occurrences: occurrences
            .into_iter()
            .map(|o| OccurrenceView {
                at: o.at,
                evidence: o.evidence,
            })
            .collect(),
    })
}

pub async fn set_status(
    can: &Can<op::HandleAlerts>,
    g: &Guarded,
    id: i64,
    body: &AlertStatusBody,
) -> Result<AlertView, ApiError> {
    visible(can, g, id).await?;
    if body
        .outcome
        .as_ref()
        .is_some_and(|o| o.chars().count() > 2000)
    {
        return Err(ApiError::BadRequest(
            "outcome: at most 2000 characters".into(),
        ));
    }
    let alert = g
        .store
        .alerts()
        .set_status(
            &can.caller().actor(),
            id,
            body.status.trim(),
            body.outcome.as_deref(),
            g.now(),
        )
        .await?;
    Ok(alert.into())
}

async fn visible(
    can: &Can<op::HandleAlerts>,
    g: &Guarded,
    id: i64,
) -> Result<
    (
        hallpass_store::alerts::Alert,
        Vec<hallpass_store::alerts::Occurrence>,
    ),
    ApiError,
> {
    let (alert, occurrences) = g.store.alerts().get(id).await?;
    let in_years = can
        .caller()
        .year_scope()
        .is_none_or(|years| alert.year_group.as_ref().is_some_and(|y| years.contains(y)));
    if !routes_for(can).contains(&alert.route.as_str()) || !in_years {
        return Err(ApiError::NotFound(format!("no alert {id}")));
    }
    Ok((alert, occurrences))
}
