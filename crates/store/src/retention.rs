//! Retention: delete what has been kept longer than the configuration allows, per data
//! class, as plain deletes by time through each table's time index, in batches (each
//! statement its own short transaction, so recording goes on), with one audit entry per
//! run. The rows of a person under a hold are skipped, whatever their age.
//!
//! Classes and their periods ([`Retention`]):
//! * decisions (blocks, warns, non-DNS events): per kind (`dns`, `web`, `mail`, `file`,
//!   `logon`), by `at_us` (`decisions_at`);
//! * visits (allowed DNS queries): `visits`, by `minute_us` (`dns_visits_minute`): a visit
//!   goes when its whole minute is past the period;
//! * content: `content`, and never longer than its decision's kind;
//! * logon sessions: ended longer ago than `logon`;
//! * `traffic_daily`: a person-level row is anonymised when the events it counts expire
//!   (allowed DNS after `visits`, blocked and warned DNS after `dns`, other kinds after
//!   their kind's period; or after `traffic_person` when set): folded into the row with
//!   person `''`, so the governors' year-on-year totals survive and no name does. Those
//!   totals are kept unless `traffic_totals` is set;
//! * `activity_hourly` (the per-person roll-up investigations and heads of year read):
//!   `activity`, by `hour_us`, an hour at a time (the table has no single-column key);
//! * `committed_batches` (replay records): after `batches`, by default the longest period
//!   of any event class (a spill file older than that would only replay expired events).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::reads::protection::fold_traffic;
use crate::reads::{Bind, count_where, delete_batched, minute_floor};
use crate::{EventKind, Store, StoreError, ts_to_us, with_pool};

const DAY: u64 = 86_400;
const US_PER_DAY: i64 = 86_400_000_000;

/// Rows of people under a hold in force are never deleted by retention.
const NOT_HELD: &str =
    "(person IS NULL OR person NOT IN (SELECT person FROM holds WHERE released_us IS NULL))";

/// How long each class of record is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// DNS decisions: blocked and warned queries.
    pub dns: Duration,
    pub web: Duration,
    pub mail: Duration,
    pub file: Duration,
    /// Logon events and ended logon sessions.
    pub logon: Duration,
    /// Content (search terms, message bodies, file names), whatever its kind.
    pub content: Duration,
    /// Allowed DNS queries (`dns_visits`).
    pub visits: Duration,
    /// The per-person hourly roll-up (`activity_hourly`).
    pub activity: Duration,
    /// Person-level `traffic_daily` rows; `None`: as long as the events they count.
    pub traffic_person: Option<Duration>,
    /// The anonymous `traffic_daily` totals; `None`: kept.
    pub traffic_totals: Option<Duration>,
    /// Replay records (`committed_batches`); `None`: the longest event period.
    pub batches: Option<Duration>,
}

impl Default for Retention {
    /// DNS 90 days (blocks and visits alike), web 180, mail, file and logon 365, content
    /// 30; the hourly roll-up 365 (a school year and its summer); traffic per person as its
    /// events, totals kept; replay records 365 (the longest).
    fn default() -> Self {
        Retention {
            dns: Duration::from_secs(90 * DAY),
            web: Duration::from_secs(180 * DAY),
            mail: Duration::from_secs(365 * DAY),
            file: Duration::from_secs(365 * DAY),
            logon: Duration::from_secs(365 * DAY),
            content: Duration::from_secs(30 * DAY),
            visits: Duration::from_secs(90 * DAY),
            activity: Duration::from_secs(365 * DAY),
            traffic_person: None,
            traffic_totals: None,
            batches: None,
        }
    }
}

impl Retention {
    /// The period of decisions of `kind`.
    pub fn for_kind(&self, kind: EventKind) -> Duration {
        match kind {
            EventKind::Dns => self.dns,
            EventKind::Web => self.web,
            EventKind::Mail => self.mail,
            EventKind::File => self.file,
            EventKind::Logon => self.logon,
        }
    }

    /// How long replay records are kept.
    pub fn batches_period(&self) -> Duration {
        self.batches.unwrap_or_else(|| {
            EventKind::ALL
                .into_iter()
                .map(|k| self.for_kind(k))
                .chain([self.visits])
                .max()
                .unwrap_or(self.visits)
        })
    }

    /// How long person-level traffic rows of `kind` with these verdicts are kept.
    fn traffic_period(&self, kind: EventKind, allowed: bool) -> Duration {
        self.traffic_person.unwrap_or(match (kind, allowed) {
            (EventKind::Dns, true) => self.visits,
            _ => self.for_kind(kind),
        })
    }
}

/// What a retention run deleted (or, dry run, would delete).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionCounts {
    /// Decisions deleted, by kind name.
    pub events: BTreeMap<String, u64>,
    /// DNS visit rows deleted, and the queries they counted.
    pub visits: u64,
    pub visit_queries: u64,
    pub content: u64,
    pub sessions: u64,
    /// Person-level traffic_daily rows folded into the anonymous totals.
    pub traffic_anonymised: u64,
    /// traffic_daily rows deleted (`traffic_totals`).
    pub traffic_deleted: u64,
    /// `activity_hourly` rows deleted.
    pub activity: u64,
    /// Replay records deleted.
    pub batches: u64,
    /// People under a hold in force, whose rows were kept.
    pub held: Vec<String>,
    pub dry_run: bool,
    /// Seq of the run's audit entry (None for a dry run).
    pub audit_seq: Option<i64>,
}

impl RetentionCounts {
    /// Decisions deleted, all kinds.
    pub fn total_events(&self) -> u64 {
        self.events.values().sum()
    }
}

fn cutoff(now: jiff::Timestamp, keep: Duration) -> i64 {
    let keep_us = i64::try_from(keep.as_micros()).unwrap_or(i64::MAX);
    ts_to_us(now).saturating_sub(keep_us)
}

/// The first UTC day not wholly before `us` (rows of earlier days are past it).
fn day_cutoff(us: i64) -> i64 {
    us.div_euclid(US_PER_DAY)
}

/// Delete (or count, dry run) the rows of `table` matching `filter`.
async fn apply(
    store: &Store,
    dry_run: bool,
    table: &str,
    key: &str,
    filter: &str,
    binds: &[Bind<'_>],
    sum: &str,
) -> Result<(u64, u64), StoreError> {
    if dry_run {
        count_where(store, table, filter, binds, sum).await
    } else {
        delete_batched(store, table, key, filter, binds, sum).await
    }
}

/// Fold (or count) the person-level traffic rows matching `filter` with `day < before`,
/// one day per transaction.
async fn anonymise_traffic(
    store: &Store,
    dry_run: bool,
    filter: &str,
    before: i64,
) -> Result<u64, StoreError> {
    let rows = format!("person <> '' AND {NOT_HELD} AND {filter}");
    if dry_run {
        let sql = format!("day < $1 AND {rows}");
        return Ok(
            count_where(store, "traffic_daily", &sql, &[Bind::Int(before)], "1")
                .await?
                .0,
        );
    }
    let next_day =
        format!("SELECT MIN(day) FROM traffic_daily WHERE day > $1 AND day < $2 AND {rows}");
    let (mut total, mut after) = (0u64, i64::MIN);
    loop {
        let day: Option<i64> = with_pool!(store.pool(), p => {
            sqlx::query_scalar(&next_day).bind(after).bind(before).fetch_one(p).await?
        });
        let Some(day) = day else { return Ok(total) };
        total += fold_traffic(
            store,
            &format!("day = $1 AND {NOT_HELD} AND {filter}"),
            &[Bind::Int(day)],
        )
        .await?;
        after = day;
    }
}

/// Delete (or count) the `activity_hourly` rows of hours wholly before `before_us`, one
/// hour per statement: a short transaction each, through `activity_hourly_hour`.
async fn expire_activity(store: &Store, dry_run: bool, before_us: i64) -> Result<u64, StoreError> {
    const US_PER_HOUR: i64 = 3_600_000_000;
    let before = before_us.div_euclid(US_PER_HOUR) * US_PER_HOUR;
    if dry_run {
        let filter = format!("hour_us < $1 AND {NOT_HELD}");
        let binds = [Bind::Int(before)];
        return Ok(count_where(store, "activity_hourly", &filter, &binds, "1")
            .await?
            .0);
    }
    let next_hour = "SELECT MIN(hour_us) FROM activity_hourly WHERE hour_us > $1 AND hour_us < $2";
    let delete = format!("DELETE FROM activity_hourly WHERE hour_us = $1 AND {NOT_HELD}");
    let (mut total, mut after) = (0u64, i64::MIN);
    loop {
        let hour: Option<i64> = with_pool!(store.pool(), p => {
            sqlx::query_scalar(next_hour).bind(after).bind(before).fetch_one(p).await?
        });
        let Some(hour) = hour else { return Ok(total) };
        total += with_pool!(store.pool(), p => {
            sqlx::query(&delete).bind(hour).execute(p).await?.rows_affected()
        });
        after = hour;
    }
}

pub(crate) async fn run(
    store: &Store,
    cfg: &Retention,
    now: jiff::Timestamp,
    dry_run: bool,
) -> Result<RetentionCounts, StoreError> {
    let mut counts = RetentionCounts {
        dry_run,
        held: store
            .holds(None, false)
            .await?
            .into_iter()
            .map(|h| h.person)
            .collect(),
        ..RetentionCounts::default()
    };
    counts.held.sort();
    counts.held.dedup();
    for kind in EventKind::ALL {
        let k = kind.as_str();
        // Content goes with its decision, or earlier. Its own (kind, at_us) index.
        let content_before = cutoff(now, cfg.for_kind(kind).min(cfg.content));
        let filter = "kind = $1 AND at_us < $2 AND event_id NOT IN (SELECT id FROM decisions \
             WHERE person IN (SELECT person FROM holds WHERE released_us IS NULL))";
        let binds = [Bind::Text(k), Bind::Int(content_before)];
        let (ct, _) = apply(
            store,
            dry_run,
            "event_content",
            "event_id",
            filter,
            &binds,
            "1",
        )
        .await?;
        counts.content += ct;

        let filter = format!("at_us < $1 AND kind = $2 AND {NOT_HELD}");
        let binds = [Bind::Int(cutoff(now, cfg.for_kind(kind))), Bind::Text(k)];
        let (ev, _) = apply(store, dry_run, "decisions", "id", &filter, &binds, "1").await?;
        counts.events.insert(k.to_string(), ev);

        for allowed in [false, true] {
            let verdicts = if allowed {
                "verdict = 'allow'"
            } else {
                "verdict <> 'allow'"
            };
            let before = day_cutoff(cutoff(now, cfg.traffic_period(kind, allowed)));
            let filter = format!("kind = '{k}' AND {verdicts}");
            counts.traffic_anonymised += anonymise_traffic(store, dry_run, &filter, before).await?;
        }
    }

    // A visit goes when its whole minute is past the period.
    let visits_before = minute_floor(cutoff(now, cfg.visits));
    let filter = format!("minute_us < $1 AND {NOT_HELD}");
    let (v, q) = apply(
        store,
        dry_run,
        "dns_visits",
        "id",
        &filter,
        &[Bind::Int(visits_before)],
        "queries",
    )
    .await?;
    counts.visits = v;
    counts.visit_queries = q;

    counts.activity = expire_activity(store, dry_run, cutoff(now, cfg.activity)).await?;

    let filter = "ended_us IS NOT NULL AND ended_us < $1 AND person_id NOT IN \
                  (SELECT p.id FROM people p JOIN holds h ON h.person = p.username \
                  WHERE h.released_us IS NULL)";
    let binds = [Bind::Int(cutoff(now, cfg.logon))];
    counts.sessions = apply(store, dry_run, "logon_sessions", "id", filter, &binds, "1")
        .await?
        .0;

    if let Some(keep) = cfg.traffic_totals {
        // No key of its own: walk it a day at a time through the primary key.
        let before = day_cutoff(cutoff(now, keep));
        let filter = format!("day = $1 AND (person = '' OR {NOT_HELD})");
        let next_day = "SELECT MIN(day) FROM traffic_daily WHERE day > $1 AND day < $2";
        let mut after = i64::MIN;
        loop {
            let day: Option<i64> = with_pool!(store.pool(), p => {
                sqlx::query_scalar(next_day).bind(after).bind(before).fetch_one(p).await?
            });
            let Some(day) = day else { break };
            let sql = format!("DELETE FROM traffic_daily WHERE {filter}");
            let n = if dry_run {
                count_where(store, "traffic_daily", &filter, &[Bind::Int(day)], "1")
                    .await?
                    .0
            } else {
                with_pool!(store.pool(), p => {
                    sqlx::query(&sql).bind(day).execute(p).await?.rows_affected()
                })
            };
            counts.traffic_deleted += n;
            after = day;
        }
    }

    let binds = [Bind::Int(cutoff(now, cfg.batches_period()))];
    counts.batches = apply(
        store,
        dry_run,
        "committed_batches",
        "batch_id",
        "committed_us < $1",
        &binds,
        "1",
    )
    .await?
    .0;

    if !dry_run {
        let days = |d: Duration| d.as_secs() / DAY;
        let details = serde_json::json!({
            "deleted": {
                "events": counts.events,
                "visits": counts.visits,
                "visit_queries": counts.visit_queries,
                "content": counts.content,
                "sessions": counts.sessions,
                "traffic_anonymised": counts.traffic_anonymised,
                "traffic_deleted": counts.traffic_deleted,
                "activity": counts.activity,
                "batches": counts.batches,
            },
            "held": counts.held,
            "retention_days": {
                "dns": days(cfg.dns), "web": days(cfg.web), "mail": days(cfg.mail),
                "file": days(cfg.file), "logon": days(cfg.logon), "content": days(cfg.content),
                "visits": days(cfg.visits),
                "activity": days(cfg.activity),
                "traffic_person": cfg.traffic_person.map(days),
                "traffic_totals": cfg.traffic_totals.map(days),
                "batches": days(cfg.batches_period()),
            },
        });
        let entry = store
            .audit()
            .append("system", "retention.run", "events", &details, now)
            .await?;
        counts.audit_seq = Some(entry.seq);
    }
    Ok(counts)
}
