//! Retention: delete what has been kept longer than the configuration allows, in batches,
//! with one audit entry per run. Periods are per event kind, and separately for content
//! (content never outlives its event's period either). Logon sessions that ended longer ago
//! than the `logon` period go too. Decisions go by time (`decisions_at`), DNS visits when
//! their last query is due (`dns_visits_minute`); a visit counts as the queries it holds.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::event::EventKind;
use crate::{Store, StoreError, ts_to_us, with_pool};

const DAY: u64 = 86_400;
/// Rows deleted per statement (each its own short transaction, so writers keep going).
const BATCH: i64 = 10_000;

/// How long each kind of record is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub dns: Duration,
    pub web: Duration,
    pub mail: Duration,
    pub file: Duration,
    pub logon: Duration,
    /// Content (search terms, message bodies, file names), whatever its kind.
    pub content: Duration,
}

impl Default for Retention {
    /// DNS 90 days, web 180, mail, file and logon 365, content 30.
    fn default() -> Self {
        Retention {
            dns: Duration::from_secs(90 * DAY),
            web: Duration::from_secs(180 * DAY),
            mail: Duration::from_secs(365 * DAY),
            file: Duration::from_secs(365 * DAY),
            logon: Duration::from_secs(365 * DAY),
            content: Duration::from_secs(30 * DAY),
        }
    }
}

impl Retention {
    pub fn for_kind(&self, kind: EventKind) -> Duration {
        match kind {
            EventKind::Dns => self.dns,
            EventKind::Web => self.web,
            EventKind::Mail => self.mail,
            EventKind::File => self.file,
            EventKind::Logon => self.logon,
        }
    }
}

/// What a retention run deleted (or, dry run, would delete).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionCounts {
    /// Events deleted, by kind name.
    pub events: BTreeMap<String, u64>,
    pub content: u64,
    pub sessions: u64,
    pub dry_run: bool,
    /// Seq of the run's audit entry (None for a dry run).
    pub audit_seq: Option<i64>,
}

impl RetentionCounts {
    pub fn total_events(&self) -> u64 {
        self.events.values().sum()
    }
}

/// Visits a retention run deletes: those whose last query is due (DNS only).
const VISITS_DUE: &str = "SELECT CAST(COALESCE(SUM(queries), 0) AS BIGINT) FROM dns_visits \
     WHERE minute_us < $1 AND last_us < $1 AND $2 = 'dns'";

fn cutoff(now: jiff::Timestamp, keep: Duration) -> i64 {
    let keep_us = i64::try_from(keep.as_micros()).unwrap_or(i64::MAX);
    ts_to_us(now).saturating_sub(keep_us)
}

pub(crate) async fn run(
    store: &Store,
    cfg: &Retention,
    now: jiff::Timestamp,
    dry_run: bool,
) -> Result<RetentionCounts, StoreError> {
    let mut counts = RetentionCounts {
        dry_run,
        ..RetentionCounts::default()
    };
    for kind in EventKind::ALL {
        let events_before = cutoff(now, cfg.for_kind(kind));
        // Content goes with its event, or earlier.
        let content_before = cutoff(now, cfg.for_kind(kind).min(cfg.content));
        let k = kind.as_str();
        let (ev, ct) = if dry_run {
            with_pool!(store.pool(), p => {
                let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM decisions WHERE at_us < $1 AND kind = $2")
                    .bind(events_before).bind(k).fetch_one(p).await?;
                let packed: i64 = sqlx::query_scalar(VISITS_DUE)
                    .bind(events_before).bind(k).fetch_one(p).await?;
                let ev = rows + packed;
                let ct: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM event_content WHERE kind = $1 AND at_us < $2")
                    .bind(k).bind(content_before).fetch_one(p).await?;
                (ev as u64, ct as u64)
            })
        } else {
            let mut ct = 0u64;
            loop {
                let n = with_pool!(store.pool(), p => {
                    sqlx::query(
                        "DELETE FROM event_content WHERE event_id IN \
                         (SELECT event_id FROM event_content WHERE kind = $1 AND at_us < $2 LIMIT $3)",
                    )
                    .bind(k).bind(content_before).bind(BATCH)
                    .execute(p).await?.rows_affected()
                });
                ct += n;
                if n < BATCH as u64 {
                    break;
                }
            }
            let mut ev = 0u64;
            loop {
                let n = with_pool!(store.pool(), p => {
                    sqlx::query(
                        "DELETE FROM decisions WHERE id IN \
                         (SELECT id FROM decisions WHERE at_us < $1 AND kind = $2 LIMIT $3)",
                    )
                    .bind(events_before).bind(k).bind(BATCH)
                    .execute(p).await?.rows_affected()
                });
                ev += n;
                if n < BATCH as u64 {
                    break;
                }
            }
            if kind == EventKind::Dns {
                loop {
                    // A visit goes when its last query is due.
                    let deleted: Vec<i32> = with_pool!(store.pool(), p => {
                        sqlx::query_scalar(
                            "DELETE FROM dns_visits WHERE id IN \
                             (SELECT id FROM dns_visits WHERE minute_us < $1 AND last_us < $1 LIMIT $2) \
                             RETURNING queries",
                        )
                        .bind(events_before).bind(BATCH)
                        .fetch_all(p).await?
                    });
                    ev += deleted.iter().map(|&n| n as u64).sum::<u64>();
                    if deleted.len() < BATCH as usize {
                        break;
                    }
                }
            }
            (ev, ct)
        };
        counts.events.insert(k.to_string(), ev);
        counts.content += ct;
    }
    if !dry_run {
        // A batch id matters only while a spill file may still hold the batch: keep them
        // as long as the longest event retention.
        let longest = EventKind::ALL
            .iter()
            .map(|k| cfg.for_kind(*k))
            .max()
            .unwrap_or_default();
        with_pool!(store.pool(), p => {
            sqlx::query("DELETE FROM committed_batches WHERE committed_us < $1")
                .bind(cutoff(now, longest)).execute(p).await?;
        });
    }
    let sessions_before = cutoff(now, cfg.logon);
    counts.sessions = with_pool!(store.pool(), p => {
        if dry_run {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM logon_sessions WHERE ended_us IS NOT NULL AND ended_us < $1")
                .bind(sessions_before).fetch_one(p).await?;
            n as u64
        } else {
            sqlx::query("DELETE FROM logon_sessions WHERE ended_us IS NOT NULL AND ended_us < $1")
                .bind(sessions_before).execute(p).await?.rows_affected()
        }
    });
    if !dry_run {
        let days = |d: Duration| d.as_secs() / DAY;
        let details = serde_json::json!({
            "deleted": {
                "events": counts.events,
                "content": counts.content,
                "sessions": counts.sessions,
            },
            "retention_days": {
                "dns": days(cfg.dns), "web": days(cfg.web), "mail": days(cfg.mail),
                "file": days(cfg.file), "logon": days(cfg.logon), "content": days(cfg.content),
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
