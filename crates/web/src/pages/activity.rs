//! The console's view of one person's activity over a range (by default the last year):
//! a column per day and the sites visited, from the hourly roll-up, with a form to narrow
//! the range or the kind and to say why (the reason goes in the audit entry).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;

use super::{Layout, query, render};
use crate::WebState;
use crate::access::{Can, op};
use crate::error::ApiError;
use crate::ops::activity::{self, ActivityRangeQuery, PersonActivity};
use crate::svg;

pub fn router() -> Router<WebState> {
    Router::new().route("/people/{username}/activity", get(activity_page))
}

#[derive(Template)]
#[template(path = "person_activity.html")]
struct ActivityPage {
    layout: Layout,
    q: ActivityRangeQuery,
    a: PersonActivity,
    chart: String,
}

async fn activity_page(
    State(state): State<WebState>,
    can: Can<op::SearchActivity>,
    Path(username): Path<String>,
    q: Result<Query<ActivityRangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let a = activity::person_activity(&can, state.guarded(), &username, &q).await?;
    let days: Vec<(String, i64, i64)> = a
        .days
        .iter()
        .map(|d| {
            let label = d.day.map(|d| d.to_string()).unwrap_or_default();
            (label, d.allowed + d.other, d.blocked + d.warned)
        })
        .collect();
    let chart = svg::day_columns(&format!("{username}'s activity per day"), &days);
    Ok(render(&ActivityPage {
        layout: Layout::new(&format!("Activity: {username}"), Some(can.caller())),
        q,
        a,
        chart,
    }))
}
