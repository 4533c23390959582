//! One person's activity timeline: every decision (blocks, warns, non-DNS events) and every
//! DNS visit (allowed queries, aggregated per name and minute, with their count), newest
//! first, one page at a time.
//!
//! Paging is by keyset, not offset: a page ends with a cursor `(at_us, source, id)` and the
//! next page starts strictly after it in the order `at_us DESC, source DESC, id DESC`
//! (decisions sort before visits at the same microsecond). Each table is read through its
//! `(person, time)` index (`decisions_person_at`, `dns_visits_person_minute`), newest first,
//! at most one page plus one row from each; the two are merged here. So a page costs the
//! same at the start of a pupil's year as at its end, whatever else the store holds.
//! A visit's time is its first query in the minute (`first_us`), as in the `events` view.

use serde::Serialize;
use sqlx::QueryBuilder;

use super::{like_escape, minute_floor};
use crate::{Store, StoreError, ts_to_us, us_to_ts, with_pool};

/// The largest page a caller may ask for.
pub const MAX_PAGE: usize = 1_000;

/// Which table an entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineSource {
    /// `dns_visits`: allowed DNS queries to one name in one minute.
    Visit = 0,
    /// `decisions`: one block, warn or non-DNS event.
    Decision = 1,
}

/// Where a page ended: the next page starts strictly after this entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimelineCursor {
    pub at_us: i64,
    pub source: TimelineSource,
    pub id: i64,
}

impl TimelineCursor {
    fn key(&self) -> (i64, TimelineSource, i64) {
        (self.at_us, self.source, self.id)
    }
}

/// `AT.SOURCE.ID` (source `d` or `v`), for a URL's query string.
impl std::fmt::Display for TimelineCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self.source {
            TimelineSource::Decision => 'd',
            TimelineSource::Visit => 'v',
        };
        write!(f, "{}.{s}.{}", self.at_us, self.id)
    }
}

impl std::str::FromStr for TimelineCursor {
    type Err = StoreError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || StoreError::Invalid(format!("{text:?} is not a timeline cursor"));
        let mut parts = text.split('.');
        let (Some(at), Some(source), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let source = match source {
            "d" => TimelineSource::Decision,
            "v" => TimelineSource::Visit,
            _ => return Err(bad()),
        };
        Ok(TimelineCursor {
            at_us: at.parse().map_err(|_| bad())?,
            source,
            id: id.parse().map_err(|_| bad())?,
        })
    }
}

/// What to read. `from` inclusive, `to` exclusive; each filter narrows when set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineQuery {
    pub from: jiff::Timestamp,
    pub to: jiff::Timestamp,
    /// `dns`, `web`, `mail`, `file`, `logon` (visits are `dns`).
    pub kind: Option<String>,
    pub verdict: Option<String>,
    /// One category name: entries listing it.
    pub category: Option<String>,
    /// A substring of the target (case-insensitive).
    pub target_contains: Option<String>,
    /// Entries per page, 1..=[`MAX_PAGE`].
    pub limit: usize,
    /// Continue after this entry (from the previous page's `next`).
    pub after: Option<TimelineCursor>,
}

impl TimelineQuery {
    pub fn new(from: jiff::Timestamp, to: jiff::Timestamp, limit: usize) -> TimelineQuery {
        TimelineQuery {
            from,
            to,
            kind: None,
            verdict: None,
            category: None,
            target_contains: None,
            limit,
            after: None,
        }
    }
}

/// One entry of a timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    pub source: TimelineSource,
    /// `decisions.id` or `dns_visits.id`.
    pub id: i64,
    pub kind: String,
    /// The decision's time, or the visit's first query.
    pub at: jiff::Timestamp,
    /// The visit's last query in its minute (the decision's time for a decision).
    pub last: jiff::Timestamp,
    /// Queries the entry stands for (1 for a decision).
    pub queries: i64,
    pub year_group: Option<String>,
    pub client_ip: Option<String>,
    pub device: Option<String>,
    pub target: String,
    pub categories: Vec<String>,
    pub verdict: String,
    pub rule: Option<String>,
    pub document: Option<String>,
    pub clause: Option<String>,
}

impl TimelineEntry {
    pub fn cursor(&self) -> TimelineCursor {
        TimelineCursor {
            at_us: ts_to_us(self.at),
            source: self.source,
            id: self.id,
        }
    }
}

/// One page, newest first; `next` is `None` on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelinePage {
    pub entries: Vec<TimelineEntry>,
    pub next: Option<TimelineCursor>,
}

type Row = (
    i64,
    String,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn split_categories(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

impl Store {
    /// One page of `person`'s activity (see the module documentation). Reading it is
    /// the caller's to audit: the store does not know who is looking.
    pub async fn timeline(
        &self,
        person: &str,
        q: &TimelineQuery,
    ) -> Result<TimelinePage, StoreError> {
        if !(1..=MAX_PAGE).contains(&q.limit) {
            return Err(StoreError::Invalid(format!(
                "a timeline page holds 1 to {MAX_PAGE} entries, not {}",
                q.limit
            )));
        }
        let from = ts_to_us(q.from);
        // Inclusive upper bound: the range end, or the cursor.
        let mut to = ts_to_us(q.to).saturating_sub(1);
        if let Some(c) = q.after {
            to = to.min(c.at_us);
        }
        let mut rows = Vec::new();
        if from <= to {
            rows.extend(
                self.timeline_arm(TimelineSource::Decision, person, q, from, to)
                    .await?,
            );
            if q.kind.as_deref().is_none_or(|k| k == "dns") {
                rows.extend(
                    self.timeline_arm(TimelineSource::Visit, person, q, from, to)
                        .await?,
                );
            }
        }
        rows.sort_by_key(|r| std::cmp::Reverse(r.0));
        let more = rows.len() > q.limit;
        rows.truncate(q.limit);
        let entries = rows
            .into_iter()
            .map(|(_, e)| e)
            .collect::<Vec<TimelineEntry>>();
        let next = if more {
            entries.last().map(TimelineEntry::cursor)
        } else {
            None
        };
        Ok(TimelinePage { entries, next })
    }

    /// Up to `limit + 1` entries of one table, newest first, after the cursor.
    async fn timeline_arm(
        &self,
        source: TimelineSource,
        person: &str,
        q: &TimelineQuery,
        from: i64,
        to: i64,
    ) -> Result<Vec<((i64, TimelineSource, i64), TimelineEntry)>, StoreError> {
        let fetch = i64::try_from(q.limit + 1).unwrap_or(i64::MAX);
        let rows: Vec<Row> = with_pool!(self.pool(), p => {
            let (time, target) = match source {
                TimelineSource::Decision => ("at_us", "target"),
                TimelineSource::Visit => ("first_us", "name"),
            };
            let mut qb = match source {
                TimelineSource::Decision => QueryBuilder::new(
                    "SELECT id, kind, at_us, at_us, CAST(1 AS BIGINT), year_group, client_ip, \
                     device, target, categories, verdict, rule, document, clause \
                     FROM decisions WHERE person = ",
                ),
                TimelineSource::Visit => QueryBuilder::new(
                    "SELECT id, 'dns', first_us, last_us, CAST(queries AS BIGINT), year_group, \
                     client_ip, device, name, categories, verdict, rule, document, clause \
                     FROM dns_visits WHERE person = ",
                ),
            };
            qb.push_bind(person.to_string());
            if source == TimelineSource::Visit {
                // The index's key: the minutes that can hold first_us in from..=to.
                qb.push(" AND minute_us >= ").push_bind(minute_floor(from));
                qb.push(" AND minute_us <= ").push_bind(minute_floor(to));
            }
            qb.push(format!(" AND {time} >= ")).push_bind(from);
            qb.push(format!(" AND {time} <= ")).push_bind(to);
            if let Some(c) = q.after {
                // Strictly after the cursor in (time DESC, source DESC, id DESC): at the
                // cursor's time, a higher source came before it, a lower one after.
                if source == c.source {
                    qb.push(format!(" AND ({time} < ")).push_bind(c.at_us);
                    qb.push(" OR id < ").push_bind(c.id).push(")");
                } else if source > c.source {
                    qb.push(format!(" AND {time} < ")).push_bind(c.at_us);
                }
            }
            if let Some(kind) = &q.kind
                && source == TimelineSource::Decision
            {
                qb.push(" AND kind = ").push_bind(kind.clone());
            }
            if let Some(verdict) = &q.verdict {
                qb.push(" AND verdict = ").push_bind(verdict.clone());
            }
            if let Some(category) = &q.category {
                qb.push(" AND (',' || categories || ',') LIKE ")
                    .push_bind(format!("%,{},%", like_escape(category)));
                qb.push(" ESCAPE '\\'");
            }
            if let Some(text) = &q.target_contains {
                qb.push(format!(" AND LOWER({target}) LIKE "))
                    .push_bind(format!("%{}%", like_escape(&text.to_lowercase())));
                qb.push(" ESCAPE '\\'");
            }
            match source {
                TimelineSource::Decision => qb.push(" ORDER BY at_us DESC, id DESC LIMIT "),
                // minute first: the index's order, so the scan stops after a page.
                TimelineSource::Visit => {
                    qb.push(" ORDER BY minute_us DESC, first_us DESC, id DESC LIMIT ")
                }
            };
            qb.push_bind(fetch);
            qb.build_query_as().fetch_all(p).await?
        });
        rows.into_iter()
            .map(|r| {
                let entry = TimelineEntry {
                    source,
                    id: r.0,
                    kind: r.1,
                    at: us_to_ts(r.2)?,
                    last: us_to_ts(r.3)?,
                    queries: r.4,
                    year_group: r.5,
                    client_ip: r.6,
                    device: r.7,
                    target: r.8,
                    categories: split_categories(&r.9),
                    verdict: r.10,
                    rule: r.11,
                    document: r.12,
                    clause: r.13,
                };
                let key = entry.cursor().key();
                Ok((key, entry))
            })
            .collect()
    }
}
