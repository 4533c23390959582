//! The queries behind the reports: allowed, warned and blocked traffic by category, by
//! group, by year group and by day, and blocked attempts per person and per target.
//!
//! Traffic counts come from `traffic_daily`, the roll-up the event writer keeps in the same
//! transaction as the events (per UTC day, person, year group, kind, category and verdict;
//! category `''` counts each event once whatever its categories; an allowed DNS visit
//! counts every query it stands for). Its primary key starts with the day, so a month's
//! report reads that month's rows whatever else the store holds. Groups are joined through
//! `traffic_daily.person` and the memberships as they are now (not as they were on the
//! day). Rows anonymised by retention or erasure (person `''`) still count everywhere but in
//! the per-group report. A person's year group is the one recorded with the event.
//!
//! Per person and per target come from `decisions` (every block is a row there) through
//! its time index.

use serde::Serialize;
use sqlx::QueryBuilder;

use crate::{EventKind, Store, StoreError, VERDICT_BLOCK, ts_to_us, with_pool};

const US_PER_DAY: i64 = 86_400_000_000;

/// Which events a report counts. `from` is inclusive, `to` exclusive; `traffic_daily`
/// has day resolution, so the roll-up reports count the UTC days `from..to` touches.
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

/// What a traffic report is broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficBy {
    /// Category name (an event in two categories counts in both).
    Category,
    /// Group name (roster memberships as they are now; a person in two groups counts in
    /// both; unattributed and anonymised traffic is in none).
    Group,
    /// Year group as recorded (`''`: unknown or unattributed).
    YearGroup,
    /// UTC day, `YYYY-MM-DD`.
    Day,
}

/// Allowed, warned and blocked events under one key. DNS: allowed counts queries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrafficCount {
    pub key: String,
    pub allowed: i64,
    pub warned: i64,
    pub blocked: i64,
}

impl TrafficCount {
    pub fn total(&self) -> i64 {
        self.allowed + self.warned + self.blocked
    }
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

/// ` AND ...` for the filter's days, year group and kind over `traffic_daily` as `t`.
fn push_traffic_filter<'a, DB: sqlx::Database>(qb: &mut QueryBuilder<'a, DB>, f: &ReportFilter)
where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let (d0, d1) = f.days();
    qb.push(" AND t.day >= ")
        .push_bind(d0)
        .push(" AND t.day <= ")
        .push_bind(d1);
    if let Some(y) = &f.year_group {
        qb.push(" AND t.year_group = ").push_bind(y.clone());
    }
    if let Some(k) = f.kind {
        qb.push(" AND t.kind = ").push_bind(k.as_str());
    }
}

impl Reports<'_> {
    /// Allowed, warned and blocked traffic in `f`, broken down `by`: most first (by day:
    /// in date order). The database sums per key and verdict (no per-row CASE); the three
    /// verdicts are put side by side here.
    pub async fn traffic(
        &self,
        f: &ReportFilter,
        by: TrafficBy,
    ) -> Result<Vec<TrafficCount>, StoreError> {
        let sql_head = match by {
            TrafficBy::Category => {
                "SELECT t.category, t.verdict, CAST(SUM(t.n) AS BIGINT) FROM traffic_daily t \
                 WHERE t.category <> ''"
            }
            TrafficBy::YearGroup => {
                "SELECT t.year_group, t.verdict, CAST(SUM(t.n) AS BIGINT) FROM traffic_daily t \
                 WHERE t.category = ''"
            }
            TrafficBy::Day => {
                "SELECT CAST(t.day AS TEXT), t.verdict, CAST(SUM(t.n) AS BIGINT) \
                 FROM traffic_daily t WHERE t.category = ''"
            }
            // Per person first (a few rows each), then through their memberships.
            TrafficBy::Group => {
                "SELECT g.name, s.verdict, CAST(SUM(s.n) AS BIGINT) FROM (SELECT t.person, \
                 t.verdict, SUM(t.n) AS n FROM traffic_daily t WHERE t.category = '' \
                 AND t.person <> ''"
            }
        };
        let group_by = match by {
            // Day first: with traffic_daily_day_category (day, category, verdict, ...) the
            // database aggregates in index order, with no sort; the days are summed here.
            TrafficBy::Category => " GROUP BY t.day, t.category, t.verdict",
            TrafficBy::YearGroup => " GROUP BY t.year_group, t.verdict",
            TrafficBy::Day => " GROUP BY t.day, t.verdict",
            TrafficBy::Group => {
                " GROUP BY t.person, t.verdict) s JOIN people p ON p.username = s.person \
                 JOIN memberships m ON m.person_id = p.id JOIN groups g ON g.id = m.group_id \
                 GROUP BY g.name, s.verdict"
            }
        };
        let rows: Vec<(String, String, i64)> = with_pool!(self.store.pool(), p => {
            let mut qb = QueryBuilder::new(sql_head);
            push_traffic_filter(&mut qb, f);
            qb.push(group_by);
            qb.build_query_as().fetch_all(p).await?
        });
        let mut keyed: std::collections::HashMap<String, TrafficCount> =
            std::collections::HashMap::new();
        for (key, verdict, n) in rows {
            let c = keyed.entry(key.clone()).or_insert_with(|| TrafficCount {
                key,
                allowed: 0,
                warned: 0,
                blocked: 0,
            });
            match verdict.as_str() {
                "block" => c.blocked += n,
                "warn" => c.warned += n,
                _ => c.allowed += n,
            }
        }
        let mut out: Vec<TrafficCount> = keyed.into_values().collect();
        if by == TrafficBy::Day {
            let mut dated = Vec::with_capacity(out.len());
            for mut c in out {
                let day: i64 = c
                    .key
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("traffic_daily day {:?}", c.key)))?;
                c.key = day_to_date(day)?.to_string();
                dated.push(c);
            }
            dated.sort_by(|a, b| a.key.cmp(&b.key));
            out = dated;
        } else {
            out.sort_by(|a, b| b.total().cmp(&a.total()).then_with(|| a.key.cmp(&b.key)));
        }
        Ok(out)
    }

    /// Blocked attempts per category per day (an event in two categories counts in both).
    pub async fn blocked_by_category_per_day(
        &self,
        f: &ReportFilter,
    ) -> Result<Vec<CategoryDay>, StoreError> {
        let rows: Vec<(i64, String, i64)> = with_pool!(self.store.pool(), p => {
            let mut qb = QueryBuilder::new(format!(
                "SELECT CAST(t.day AS BIGINT), t.category, CAST(SUM(t.n) AS BIGINT) \
                 FROM traffic_daily t WHERE t.category <> '' AND t.verdict = '{VERDICT_BLOCK}'"
            ));
            push_traffic_filter(&mut qb, f);
            qb.push(" GROUP BY t.day, t.category ORDER BY t.day, t.category");
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
        let rows = self.traffic(f, TrafficBy::YearGroup).await?;
        let mut counts: Vec<Count> = rows
            .into_iter()
            .filter(|r| r.blocked > 0)
            .map(|r| Count {
                key: r.key,
                count: r.blocked,
            })
            .collect();
        counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        Ok(counts)
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
            // Through decisions_at: the window's rows, blocked ones counted.
            let mut qb = QueryBuilder::new(format!(
                "SELECT {column}, COUNT(*) AS total FROM decisions WHERE at_us >= "
            ));
            qb.push_bind(from).push(" AND at_us < ").push_bind(to);
            qb.push(format!(
                " AND verdict = '{VERDICT_BLOCK}' AND {column} IS NOT NULL"
            ));
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
