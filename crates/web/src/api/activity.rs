//! `/api/v1/people/{username}/activity`: one person's activity over a range from the
//! hourly roll-up (per-day totals, sites), behind the role matrix and audited.

use axum::Json;
use axum::extract::{Path, Query, State};

use crate::WebState;
use crate::access::{Can, op};
use crate::error::ApiError;
use crate::ops::activity::{self, ActivityRangeQuery, PersonActivity};

/// A person's activity per day and per site (metadata only; default: the last 365 days).
/// Heads of year: pupils of their years. Every call is an `activity.view` audit entry.
#[utoipa::path(get, path = "/api/v1/people/{username}/activity",
    params(("username" = String, Path), ActivityRangeQuery),
    responses((status = 200, body = PersonActivity), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn person_activity(
    State(state): State<WebState>,
    can: Can<op::SearchActivity>,
    Path(username): Path<String>,
    query: Result<Query<ActivityRangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PersonActivity>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(
        activity::person_activity(&can, state.guarded(), &username, &q).await?,
    ))
}
