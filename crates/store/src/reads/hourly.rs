//! One person's activity over a long range from the hourly roll-up (`activity_hourly`):
//! what investigations, heads of year and subject access requests ask first ("what has
//! this pupil been doing this year?"), answered from counts per hour and site instead of
//! the raw decisions and visits (which a year of a large school holds by the hundred
//! million, and which retention removes long before the roll-up).
//!
//! The rows come through the primary key, person first, so the cost is the pupil's own
//! rows whatever else the store holds. [`summarise`] folds them into per-day totals and
//! per-site totals in the school's time zone (the rows are UTC hours, so a day boundary in
//! British Summer Time is still exact). Metadata only: no content is in the roll-up.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::{Store, StoreError, ts_to_us, us_to_ts, with_pool};

/// The most rows one read returns: a very busy pupil's year is a few tens of thousands.
pub const MAX_HOURLY_ROWS: usize = 200_000;

/// Events of one kind, to one site, with one verdict and set of categories, in one hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HourlyActivity {
    /// The start of the UTC hour.
    pub hour: jiff::Timestamp,
    pub kind: String,
    pub site: String,
    pub verdict: String,
    pub categories: Vec<String>,
    /// Events (allowed DNS queries count one each).
    pub n: i64,
}

/// One day's totals, in the school's time zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DayTotals {
    pub day: Option<jiff::civil::Date>,
    pub allowed: i64,
    pub blocked: i64,
    pub warned: i64,
    /// Other verdicts (quarantined mail, deferred, ...).
    pub other: i64,
}

/// One site's totals over the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteTotals {
    pub site: String,
    pub kind: String,
    pub categories: Vec<String>,
    pub allowed: i64,
    pub blocked: i64,
    pub warned: i64,
    pub other: i64,
    pub first_hour: jiff::Timestamp,
    pub last_hour: jiff::Timestamp,
}

impl SiteTotals {
    pub fn total(&self) -> i64 {
        self.allowed + self.blocked + self.warned + self.other
    }
}

/// A person's activity over a range: per day (oldest first) and per site (busiest first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ActivitySummary {
    pub days: Vec<DayTotals>,
    pub sites: Vec<SiteTotals>,
    pub total: i64,
}

/// Add `n` events of `verdict` to the four counters.
fn count(
    verdict: &str,
    n: i64,
    allowed: &mut i64,
    blocked: &mut i64,
    warned: &mut i64,
    other: &mut i64,
) {
    match verdict {
        "allow" | "safe_search" => *allowed += n,
        "block" => *blocked += n,
        "warn" => *warned += n,
        _ => *other += n,
    }
}

/// Fold hourly rows into per-day totals (in `tz`) and per-site totals.
pub fn summarise(rows: &[HourlyActivity], tz: &jiff::tz::TimeZone) -> ActivitySummary {
    let mut days: BTreeMap<jiff::civil::Date, DayTotals> = BTreeMap::new();
    let mut sites: HashMap<(&str, &str), SiteTotals> = HashMap::new();
    let mut total = 0;
    for r in rows {
        total += r.n;
        let date = r.hour.to_zoned(tz.clone()).date();
        let d = days.entry(date).or_insert_with(|| DayTotals {
            day: Some(date),
            ..DayTotals::default()
        });
        count(
            &r.verdict,
            r.n,
            &mut d.allowed,
            &mut d.blocked,
            &mut d.warned,
            &mut d.other,
        );
        let s = sites
            .entry((r.kind.as_str(), r.site.as_str()))
            .or_insert_with(|| SiteTotals {
                site: r.site.clone(),
                kind: r.kind.clone(),
                categories: Vec::new(),
                allowed: 0,
                blocked: 0,
                warned: 0,
                other: 0,
                first_hour: r.hour,
                last_hour: r.hour,
            });
        count(
            &r.verdict,
            r.n,
            &mut s.allowed,
            &mut s.blocked,
            &mut s.warned,
            &mut s.other,
        );
        s.first_hour = s.first_hour.min(r.hour);
        s.last_hour = s.last_hour.max(r.hour);
        for c in &r.categories {
            if !s.categories.contains(c) {
                s.categories.push(c.clone());
            }
        }
    }
    let mut sites: Vec<SiteTotals> = sites.into_values().collect();
    sites.sort_by(|a, b| {
        b.total()
            .cmp(&a.total())
            .then_with(|| a.site.cmp(&b.site))
            .then_with(|| a.kind.cmp(&b.kind))
    });
    ActivitySummary {
        days: days.into_values().collect(),
        sites,
        total,
    }
}

type Row = (i64, String, String, String, String, i64);

impl Store {
    /// `person`'s hourly activity with `from <= hour < to`, newest first; `kind` narrows
    /// to one kind of event. More than [`MAX_HOURLY_ROWS`] rows is an error naming a
    /// shorter range, not a silent cut.
    pub async fn hourly_activity(
        &self,
        person: &str,
        from: jiff::Timestamp,
        to: jiff::Timestamp,
        kind: Option<&str>,
    ) -> Result<Vec<HourlyActivity>, StoreError> {
        if from >= to {
            return Err(StoreError::Invalid(format!(
                "the range is empty: from {from} is not before to {to}"
            )));
        }
        let limit = i64::try_from(MAX_HOURLY_ROWS + 1).unwrap_or(i64::MAX);
        let sql = "SELECT hour_us, kind, site, verdict, categories, CAST(n AS BIGINT) \
                   FROM activity_hourly \
                   WHERE person = $1 AND hour_us >= $2 AND hour_us < $3 \
                   AND ($4 IS NULL OR kind = $4) \
                   ORDER BY hour_us DESC LIMIT $5";
        let rows: Vec<Row> = with_pool!(self.pool(), p => {
            sqlx::query_as(sql)
                .bind(person)
                .bind(ts_to_us(from))
                .bind(ts_to_us(to))
                .bind(kind)
                .bind(limit)
                .fetch_all(p)
                .await?
        });
        if rows.len() > MAX_HOURLY_ROWS {
            return Err(StoreError::Invalid(format!(
                "{person} has more than {MAX_HOURLY_ROWS} hourly activity rows from {from} to \
                 {to}; ask for a shorter range"
            )));
        }
        rows.into_iter()
            .map(|(hour_us, kind, site, verdict, categories, n)| {
                Ok(HourlyActivity {
                    hour: us_to_ts(hour_us)?,
                    kind,
                    site,
                    verdict,
                    categories: categories
                        .split(',')
                        .filter(|c| !c.is_empty())
                        .map(str::to_string)
                        .collect(),
                    n,
                })
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(hour: &str, site: &str, verdict: &str, n: i64) -> HourlyActivity {
        HourlyActivity {
            hour: hour.parse().unwrap(),
            kind: "dns".into(),
            site: site.into(),
            verdict: verdict.into(),
            categories: vec!["games".into()],
            n,
        }
    }

    #[test]
    fn days_are_the_school_s_and_sites_busiest_first() {
        let rows = [
            // 23:00 UTC on 1 June is midnight on 2 June in London (BST).
            row("2026-06-01T23:00:00Z", "a.example", "allow", 5),
            row("2026-06-01T22:00:00Z", "a.example", "block", 2),
            row("2026-06-01T09:00:00Z", "b.example", "allow", 10),
            row("2026-06-01T09:00:00Z", "b.example", "quarantine", 1),
        ];
        let tz = jiff::tz::TimeZone::get("Europe/London").unwrap();
        let s = summarise(&rows, &tz);
        assert_eq!(s.total, 18);
        assert_eq!(s.days.len(), 2);
        assert_eq!(s.days[0].day, Some(jiff::civil::date(2026, 6, 1)));
        assert_eq!(
            (s.days[0].allowed, s.days[0].blocked, s.days[0].other),
            (10, 2, 1)
        );
        assert_eq!(s.days[1].day, Some(jiff::civil::date(2026, 6, 2)));
        assert_eq!(s.days[1].allowed, 5);
        assert_eq!(s.sites[0].site, "b.example");
        assert_eq!(s.sites[0].total(), 11);
        assert_eq!((s.sites[1].allowed, s.sites[1].blocked), (5, 2));
        assert_eq!(
            s.sites[1].first_hour,
            "2026-06-01T22:00:00Z".parse().unwrap()
        );
        assert_eq!(
            s.sites[1].last_hour,
            "2026-06-01T23:00:00Z".parse().unwrap()
        );
    }
}
