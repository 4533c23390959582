//! The queries behind the reports: blocked attempts per category per day, per year group,
//! per person, and the most blocked targets.
//!
//! Per category / per year group come from `traffic_daily`, a roll-up the event writer keeps
//! in the same transaction as the events (a replayed batch that was committed before is
//! skipped whole, so replay does not double count). That makes them independent of the size of `events`: a month
//! for one year group reads a few hundred rows whatever the table holds. It has day
//! resolution (UTC days). We roll up rather than only denormalising the year group onto the
//! event row because an event carries several categories in one column: counting per
//! category from `events` would mean splitting strings over millions of rows. The year
//! group is stored on the event too (as of the event), which the per-person and
//! per-target queries filter on. They read blocked decisions by time (`decisions_at`).

use serde::Serialize;
use sqlx::QueryBuilder;

use crate::event::{EventKind, VERDICT_BLOCK};
use crate::{Store, StoreError, ts_to_us, with_pool};

const US_PER_DAY: i64 = 86_400_000_000;

/// Which events a report counts. `from` is inclusive, `to` exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFilter {
    pub from: jiff::Timestamp,
    pub to: jiff::Timestamp,
    pub year_group: Option<String>,
    pub kind: Option<EventKind>,
}

impl ReportFilter {
    pub fn new(from: jiff::Timestamp, to: jiff::Timestamp) -> ReportFilter {
        ReportFilter {
            from,
            to,
            year_group: None,
            kind: None,
        }
    }

    /// The UTC days touched by `from..to`, inclusive.
    fn days(&self) -> (i64, i64) {
        let from = ts_to_us(self.from).div_euclid(US_PER_DAY);
        let to = (ts_to_us(self.to) - 1).div_euclid(US_PER_DAY);
        (from, to)
    }
}

/// Blocked attempts in one category on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryDay {
    pub day: jiff::civil::Date,
    pub category: String,
    pub count: i64,
}

/// A key (year group, username, target) and its count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    pub key: String,
    pub count: i64,
}

/// Report queries; from [`Store::reports`].
pub struct Reports<'a> {
    pub(crate) store: &'a Store,
}

fn day_to_date(day: i64) -> Result<jiff::civil::Date, StoreError> {
    jiff::Timestamp::from_second(day * 86_400)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
        .map_err(|e| StoreError::Corrupt(format!("day {day}: {e}")))
}

impl Reports<'_> {
    /// Blocked attempts per category per day (an event in two categories counts in both).
    pub async fn blocked_by_category_per_day(
        &self,
        f: &ReportFilter,
    ) -> Result<Vec<CategoryDay>, StoreError> {
        let (d0, d1) = f.days();
        let rows: Vec<(i64, String, i64)> = with_pool!(self.store.pool(), p => {
            let mut qb = QueryBuilder::new(
                "SELECT day, category, CAST(SUM(n) AS BIGINT) FROM traffic_daily WHERE verdict = 'block' AND category <> ''",
            );
            if let Some(y) = &f.year_group {
                qb.push(" AND year_group = ").push_bind(y.clone());
            }
            qb.push(" AND day >= ").push_bind(d0).push(" AND day <= ").push_bind(d1);
            if let Some(k) = f.kind {
                qb.push(" AND kind = ").push_bind(k.as_str());
            }
            qb.push(" GROUP BY day, category ORDER BY day, category");
            qb.build_query_as().fetch_all(p).await?
        });
        rows.into_iter()
            .map(|(day, category, count)| {
                Ok(CategoryDay {
                    day: day_to_date(day)?,
                    category,
                    count,
                })
            })
            .collect()
    }

    /// Blocked attempts per year group ('' = unattributed or no year group), most first.
    pub async fn blocked_by_year_group(&self, f: &ReportFilter) -> Result<Vec<Count>, StoreError> {
        let (d0, d1) = f.days();
        let rows: Vec<(String, i64)> = with_pool!(self.store.pool(), p => {
            let mut qb = QueryBuilder::new(
                "SELECT year_group, CAST(SUM(n) AS BIGINT) AS total FROM traffic_daily WHERE verdict = 'block' AND category = ''",
            );
            if let Some(y) = &f.year_group {
                qb.push(" AND year_group = ").push_bind(y.clone());
            }
            qb.push(" AND day >= ").push_bind(d0).push(" AND day <= ").push_bind(d1);
            if let Some(k) = f.kind {
                qb.push(" AND kind = ").push_bind(k.as_str());
            }
            qb.push(" GROUP BY year_group ORDER BY total DESC, year_group");
            qb.build_query_as().fetch_all(p).await?
        });
        Ok(rows
            .into_iter()
            .map(|(key, count)| Count { key, count })
            .collect())
    }

    /// Blocked attempts per person (attributed events only), most first.
    pub async fn blocked_by_person(
        &self,
        f: &ReportFilter,
        limit: i64,
    ) -> Result<Vec<Count>, StoreError> {
        self.blocked_grouped("person", f, limit).await
    }

    /// The most blocked targets (host names, URLs, ...), most first.
    pub async fn top_blocked_targets(
        &self,
        f: &ReportFilter,
        limit: i64,
    ) -> Result<Vec<Count>, StoreError> {
        self.blocked_grouped("target", f, limit).await
    }

    async fn blocked_grouped(
        &self,
        column: &'static str,
        f: &ReportFilter,
        limit: i64,
    ) -> Result<Vec<Count>, StoreError> {
        let (from, to) = (ts_to_us(f.from), ts_to_us(f.to));
        let rows: Vec<(String, i64)> = with_pool!(self.store.pool(), p => {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {column}, COUNT(*) AS total FROM (\
                 SELECT {column}, kind, year_group FROM decisions \
                 WHERE verdict = '{VERDICT_BLOCK}' AND at_us >= "
            ));
            qb.push_bind(from).push(" AND at_us < ").push_bind(to);
            qb.push(format!(") AS blocked_events WHERE {column} IS NOT NULL"));
            if let Some(y) = &f.year_group {
                qb.push(" AND year_group = ").push_bind(y.clone());
            }
            if let Some(k) = f.kind {
                qb.push(" AND kind = ").push_bind(k.as_str());
            }
            qb.push(format!(" GROUP BY {column} ORDER BY total DESC, {column} LIMIT "));
            qb.push_bind(limit);
            qb.build_query_as().fetch_all(p).await?
        });
        Ok(rows
            .into_iter()
            .map(|(key, count)| Count { key, count })
            .collect())
    }
}
