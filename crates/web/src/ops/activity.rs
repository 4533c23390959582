//! One person's activity over a long range (by default the last year), from the store's
//! hourly roll-up: per-day totals and the sites visited, for a head of year, the DSL or a
//! network manager looking into a pupil, and for a subject access request. Metadata only
//! (counts per site and hour); content stays behind an investigation. Every view is an
//! `activity.view` audit entry, so the person's record shows who looked and why.
//!
//! Who may look: the `SearchActivity` operation, then the same reach as case work (heads
//! of year: pupils of their years; staff activity: nobody through this route).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::safeguarding::{out_of_reach, reaches, subject};
use super::{Guarded, blank, parse_time};
use crate::access::{Can, op};
use crate::error::ApiError;

/// The longest range one view covers.
const MAX_RANGE_DAYS: i64 = 400;
/// Sites listed at most (busiest first); the totals count them all.
pub const MAX_SITES: usize = 500;

/// `?from=&to=&kind=` (times RFC 3339 or `YYYY-MM-DD`; default: the last 365 days).
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
pub struct ActivityRangeQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    /// `dns`, `web`, `mail`, `file` or `logon`.
    pub kind: Option<String>,
    /// Why the caller is looking (recorded in the audit entry).
    pub reason: Option<String>,
}

/// A person's activity over a range.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PersonActivity {
    pub person: String,
    pub year_group: Option<String>,
    #[schema(value_type = String)]
    pub from: jiff::Timestamp,
    #[schema(value_type = String)]
    pub to: jiff::Timestamp,
    /// Events counted (allowed DNS queries one each).
    pub total: i64,
    /// Per day in the school's time zone, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub days: Vec<hallpass_store::DayTotals>,
    /// Per site, busiest first (at most 500).
    #[schema(value_type = Vec<Object>)]
    pub sites: Vec<hallpass_store::SiteTotals>,
    /// Sites beyond those listed.
    pub more_sites: usize,
}

pub async fn person_activity(
    can: &Can<op::SearchActivity>,
    g: &Guarded,
    username: &str,
    q: &ActivityRangeQuery,
) -> Result<PersonActivity, ApiError> {
    let now = g.now();
    let to = parse_time("to", &q.to)?.unwrap_or(now);
    let from = parse_time("from", &q.from)?
        .unwrap_or_else(|| to - jiff::SignedDuration::from_hours(24 * 365));
    if from >= to {
        return Err(ApiError::BadRequest("from must be before to".into()));
    }
    if to.duration_since(from) > jiff::SignedDuration::from_hours(24 * MAX_RANGE_DAYS) {
        return Err(ApiError::BadRequest(format!(
            "the range is longer than {MAX_RANGE_DAYS} days; ask for a shorter one"
        )));
    }
    let kind = blank(&q.kind);
    if let Some(k) = &kind
        && k.parse::<hallpass_store::EventKind>().is_err()
    {
        return Err(ApiError::BadRequest(format!(
            "kind: {k:?} is not one of dns, web, mail, file, logon"
        )));
    }
    let who = subject(g, username).await?;
    if !reaches(can.caller(), who.staff, who.year_group.as_deref()) {
        return Err(out_of_reach(username));
    }
    g.store
        .audit()
        .append(
            &can.caller().actor(),
            "activity.view",
            &who.username,
            &serde_json::json!({
                "view": "hourly",
                "from": from.to_string(),
                "to": to.to_string(),
                "kind": kind,
                "reason": blank(&q.reason),
            }),
            now,
        )
        .await?;
    let rows = g
        .store
        .hourly_activity(&who.username, from, to, kind.as_deref())
        .await?;
    let tz = g.engine.snapshot().policy.timezone().clone();
    let mut summary = hallpass_store::summarise(&rows, &tz);
    let more_sites = summary.sites.len().saturating_sub(MAX_SITES);
    summary.sites.truncate(MAX_SITES);
    Ok(PersonActivity {
        person: who.username,
        year_group: who.year_group,
        from,
        to,
        total: summary.total,
        days: summary.days,
        sites: summary.sites,
        more_sites,
    })
}
