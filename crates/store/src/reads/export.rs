//! Everything held about one person, for a subject access request: every table that names
//! them, as JSON Lines (one object per row, with a `"table"` field), streamed row by row
//! from the database to the writer so a year of a pupil's activity never sits in memory.
//!
//! Tables, in this order: `people` (with `site`), `memberships` (group names),
//! `logon_sessions`, `console_accounts` (no password hash), `console_sessions` (no secret
//! or CSRF token), `signin_failures`, `holds`, `decisions`, `event_content` (only with
//! [`ExportOptions::include_content`]: reading content is the investigation's business and
//! is audited by whoever asks; without it one line says how many rows were withheld),
//! `dns_visits`, `activity_hourly`, `mail_quarantine` and `mail_journal` (what and when, not
//! the message), `traffic_daily`, and `audit_log` entries whose subject or actor is the
//! person. Times are RFC 3339 (UTC). The first line (`"table": "export"`) says who, when
//! and whether content is included; the last (`"table": "export_end"`) counts the rows, so
//! a truncated file is recognisable.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::TryStreamExt;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::{Store, StoreError, us_to_ts, with_pool};

/// What an export includes beyond metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Include `event_content` (search terms, message bodies, file names).
    pub include_content: bool,
}

/// Rows written per table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    pub rows: BTreeMap<String, u64>,
    /// Content rows that exist but were not exported (no `include_content`).
    pub content_withheld: u64,
}

impl ExportSummary {
    pub fn total(&self) -> u64 {
        self.rows.values().sum()
    }
}

/// How a column is read and shown.
#[derive(Clone, Copy)]
enum Col {
    Int,
    OptInt,
    Text,
    OptText,
    OptBool,
    /// Microseconds since the epoch, shown as RFC 3339.
    Time,
    OptTime,
    /// Comma separated, shown as an array.
    List,
}

struct Table {
    name: &'static str,
    /// One parameter, `$1`: the username or the people row's id.
    sql: &'static str,
    by_id: bool,
    cols: &'static [(&'static str, Col)],
}

const DECISION_COLS: &[(&str, Col)] = &[
    ("id", Col::Int),
    ("kind", Col::Text),
    ("at_us", Col::Time),
    ("year_group", Col::OptText),
    ("client_ip", Col::OptText),
    ("device", Col::OptText),
    ("target", Col::Text),
    ("categories", Col::List),
    ("verdict", Col::Text),
    ("rule", Col::OptText),
    ("document", Col::OptText),
    ("clause", Col::OptText),
    ("bytes", Col::OptInt),
    ("detail", Col::OptText),
    ("dns_qtype", Col::OptInt),
    ("dns_rcode", Col::OptInt),
    ("dns_answer", Col::OptText),
    ("dns_cache_hit", Col::OptBool),
    ("dns_stale", Col::OptBool),
    ("dns_upstream_us", Col::OptInt),
];

const TABLES: &[Table] = &[
    Table {
        name: "memberships",
        sql: "SELECT g.name AS group_name FROM memberships m JOIN groups g ON g.id = m.group_id \
              WHERE m.person_id = $1 ORDER BY g.name",
        by_id: true,
        cols: &[("group_name", Col::Text)],
    },
    Table {
        name: "logon_sessions",
        sql: "SELECT id, workstation, ip, started_us, last_seen_us, ended_us FROM logon_sessions \
              WHERE person_id = $1 ORDER BY started_us, id",
        by_id: true,
        cols: &[
            ("id", Col::Int),
            ("workstation", Col::OptText),
            ("ip", Col::Text),
            ("started_us", Col::Time),
            ("last_seen_us", Col::Time),
            ("ended_us", Col::OptTime),
        ],
    },
    Table {
        name: "declaration_acceptances",
        sql: "SELECT document, version, accepted_us, workstation, ip, actor FROM declaration_acceptances \
              WHERE person_id = $1 ORDER BY accepted_us, id",
        by_id: true,
        cols: &[
            ("document", Col::Text),
            ("version", Col::Text),
            ("accepted_us", Col::Time),
            ("workstation", Col::OptText),
            ("ip", Col::OptText),
            ("actor", Col::Text),
        ],
    },
    Table {
        name: "console_accounts",
        sql: "SELECT username, role, years, created_us, updated_us, disabled_us \
              FROM console_accounts WHERE username = $1",
        by_id: false,
        cols: &[
            ("username", Col::Text),
            ("role", Col::Text),
            ("years", Col::List),
            ("created_us", Col::Time),
            ("updated_us", Col::Time),
            ("disabled_us", Col::OptTime),
        ],
    },
    Table {
        name: "console_sessions",
        sql: "SELECT client_ip, created_us, last_seen_us, ended_us FROM console_sessions \
              WHERE username = $1 ORDER BY created_us",
        by_id: false,
        cols: &[
            ("client_ip", Col::OptText),
            ("created_us", Col::Time),
            ("last_seen_us", Col::Time),
            ("ended_us", Col::OptTime),
        ],
    },
    Table {
        name: "signin_failures",
        sql: "SELECT key, at_us FROM signin_failures WHERE key = 'user:' || CAST($1 AS TEXT) ORDER BY at_us",
        by_id: false,
        cols: &[("key", Col::Text), ("at_us", Col::Time)],
    },
    Table {
        name: "holds",
        sql: "SELECT id, reason, placed_by, placed_us, released_us FROM holds \
              WHERE person = $1 ORDER BY id",
        by_id: false,
        cols: &[
            ("id", Col::Int),
            ("reason", Col::Text),
            ("placed_by", Col::Text),
            ("placed_us", Col::Time),
            ("released_us", Col::OptTime),
        ],
    },
    Table {
        name: "decisions",
        sql: "SELECT id, kind, at_us, year_group, client_ip, device, target, categories, verdict, \
              rule, document, clause, bytes, detail, CAST(dns_qtype AS BIGINT) AS dns_qtype, \
              CAST(dns_rcode AS BIGINT) AS dns_rcode, dns_answer, dns_cache_hit, dns_stale, \
              dns_upstream_us FROM decisions WHERE person = $1 ORDER BY at_us, id",
        by_id: false,
        cols: DECISION_COLS,
    },
    Table {
        name: "event_content",
        sql: "SELECT c.event_id, c.kind, c.at_us, c.content FROM event_content c \
              JOIN decisions d ON d.id = c.event_id WHERE d.person = $1 ORDER BY c.event_id",
        by_id: false,
        cols: &[
            ("event_id", Col::Int),
            ("kind", Col::Text),
            ("at_us", Col::Time),
            ("content", Col::Text),
        ],
    },
    Table {
        name: "dns_visits",
        sql: "SELECT id, minute_us, first_us, last_us, year_group, client_ip, device, name, \
              categories, verdict, rule, document, clause, CAST(queries AS BIGINT) AS queries, \
              CAST(cache_hits AS BIGINT) AS cache_hits FROM dns_visits WHERE person = $1 \
              ORDER BY minute_us, id",
        by_id: false,
        cols: &[
            ("id", Col::Int),
            ("minute_us", Col::Time),
            ("first_us", Col::Time),
            ("last_us", Col::Time),
            ("year_group", Col::OptText),
            ("client_ip", Col::Text),
            ("device", Col::OptText),
            ("name", Col::Text),
            ("categories", Col::List),
            ("verdict", Col::Text),
            ("rule", Col::OptText),
            ("document", Col::OptText),
            ("clause", Col::OptText),
            ("queries", Col::Int),
            ("cache_hits", Col::Int),
        ],
    },
    Table {
        name: "activity_hourly",
        sql: "SELECT hour_us, kind, site, verdict, categories, CAST(n AS BIGINT) AS n \
              FROM activity_hourly WHERE person = $1 ORDER BY hour_us, kind, site, verdict",
        by_id: false,
        cols: &[
            ("hour_us", Col::Time),
            ("kind", Col::Text),
            ("site", Col::Text),
            ("verdict", Col::Text),
            ("categories", Col::List),
            ("n", Col::Int),
        ],
    },
    // Mail the filter held or journaled for the person: what, when and why, not the
    // message itself (content: an investigation's business, as for `event_content`).
    Table {
        name: "mail_quarantine",
        sql: "SELECT id, held_us, sender, recipients, rule, document, clause, reason, \
              CAST(size AS BIGINT) AS size, status, decided_by, decided_us, decision_reason \
              FROM mail_quarantine WHERE person = $1 ORDER BY held_us, id",
        by_id: false,
        cols: &[
            ("id", Col::Int),
            ("held_us", Col::Time),
            ("sender", Col::Text),
            ("recipients", Col::Text),
            ("rule", Col::OptText),
            ("document", Col::OptText),
            ("clause", Col::OptText),
            ("reason", Col::Text),
            ("size", Col::Int),
            ("status", Col::Text),
            ("decided_by", Col::OptText),
            ("decided_us", Col::OptTime),
            ("decision_reason", Col::OptText),
        ],
    },
    Table {
        name: "mail_journal",
        sql: "SELECT id, at_us, direction, sender, recipients, CAST(size AS BIGINT) AS size \
              FROM mail_journal WHERE person = $1 ORDER BY at_us, id",
        by_id: false,
        cols: &[
            ("id", Col::Int),
            ("at_us", Col::Time),
            ("direction", Col::Text),
            ("sender", Col::Text),
            ("recipients", Col::Text),
            ("size", Col::Int),
        ],
    },
    Table {
        name: "traffic_daily",
        sql: "SELECT CAST(day AS BIGINT) AS day, year_group, kind, category, verdict, n \
              FROM traffic_daily WHERE person = $1 ORDER BY day, kind, category, verdict",
        by_id: false,
        cols: &[
            ("day", Col::Int),
            ("year_group", Col::Text),
            ("kind", Col::Text),
            ("category", Col::Text),
            ("verdict", Col::Text),
            ("n", Col::Int),
        ],
    },
    Table {
        name: "access_requests",
        sql: "SELECT id, client_ip, target, reason, rule, status, created_us, decided_by, decided_us, \
              decision_note FROM access_requests WHERE person = $1 ORDER BY created_us, id",
        by_id: false,
        cols: &[
            ("id", Col::Int),
            ("client_ip", Col::Text),
            ("target", Col::Text),
            ("reason", Col::Text),
            ("rule", Col::OptText),
            ("status", Col::Text),
            ("created_us", Col::Time),
            ("decided_by", Col::OptText),
            ("decided_us", Col::OptTime),
            ("decision_note", Col::OptText),
        ],
    },
    Table {
        name: "alerts",
        sql: "SELECT id, kind, theme, severity, route, document, clause, summary, status, outcome, \
              count, first_us, last_us FROM alerts WHERE person = $1 ORDER BY first_us, id",
        by_id: false,
        cols: &[
            ("id", Col::Int),
            ("kind", Col::Text),
            ("theme", Col::Text),
            ("severity", Col::Int),
            ("route", Col::Text),
            ("document", Col::OptText),
            ("clause", Col::OptText),
            ("summary", Col::Text),
            ("status", Col::Text),
            ("outcome", Col::OptText),
            ("count", Col::Int),
            ("first_us", Col::Time),
            ("last_us", Col::Time),
        ],
    },
    Table {
        name: "alert_occurrences",
        sql: "SELECT o.alert_id, o.at_us, o.evidence FROM alert_occurrences o \
              JOIN alerts a ON a.id = o.alert_id WHERE a.person = $1 ORDER BY o.at_us, o.id",
        by_id: false,
        cols: &[
            ("alert_id", Col::Int),
            ("at_us", Col::Time),
            ("evidence", Col::Text),
        ],
    },
    Table {
        name: "sanctions",
        sql: "SELECT id, kind, target, until_us, reason, incident_id, created_by, created_us, ended_us, \
              ended_why FROM sanctions WHERE person = $1 ORDER BY created_us, id",
        by_id: false,
        cols: &[
            ("id", Col::Int),
            ("kind", Col::Text),
            ("target", Col::OptText),
            ("until_us", Col::Time),
            ("reason", Col::Text),
            ("incident_id", Col::OptInt),
            ("created_by", Col::Text),
            ("created_us", Col::Time),
            ("ended_us", Col::OptTime),
            ("ended_why", Col::OptText),
        ],
    },
    Table {
        name: "incidents",
        sql: "SELECT id, title, alert_id, assigned_to, status, outcome, opened_by, opened_us, closed_us \
              FROM incidents WHERE person = $1 ORDER BY opened_us, id",
        by_id: false,
        cols: &[
            ("id", Col::Int),
            ("title", Col::Text),
            ("alert_id", Col::OptInt),
            ("assigned_to", Col::OptText),
            ("status", Col::Text),
            ("outcome", Col::OptText),
            ("opened_by", Col::Text),
            ("opened_us", Col::Time),
            ("closed_us", Col::OptTime),
        ],
    },
    Table {
        name: "incident_actions",
        sql: "SELECT a.incident_id, a.kind, a.details, a.by_whom, a.at_us FROM incident_actions a \
              JOIN incidents i ON i.id = a.incident_id WHERE i.person = $1 ORDER BY a.at_us, a.id",
        by_id: false,
        cols: &[
            ("incident_id", Col::Int),
            ("kind", Col::Text),
            ("details", Col::Text),
            ("by_whom", Col::Text),
            ("at_us", Col::Time),
        ],
    },
    // Who was authorised to read this person's content, why, and when.
    Table {
        name: "investigations",
        sql: "SELECT id, purpose, from_us, to_us, until_us, authorised_by, created_us, ended_us \
              FROM investigations WHERE person = $1 ORDER BY created_us, id",
        by_id: false,
        cols: &[
            ("id", Col::Int),
            ("purpose", Col::Text),
            ("from_us", Col::Time),
            ("to_us", Col::Time),
            ("until_us", Col::Time),
            ("authorised_by", Col::Text),
            ("created_us", Col::Time),
            ("ended_us", Col::OptTime),
        ],
    },
    Table {
        name: "outbox",
        sql: "SELECT id, recipient, subject, created_us, sent_us FROM outbox \
              WHERE person = $1 ORDER BY created_us, id",
        by_id: false,
        cols: &[
            ("id", Col::Int),
            ("recipient", Col::Text),
            ("subject", Col::Text),
            ("created_us", Col::Time),
            ("sent_us", Col::OptTime),
        ],
    },
    Table {
        name: "audit_log",
        sql: "SELECT seq, at_us, actor, action, subject, details, hash FROM audit_log \
              WHERE subject = $1 OR actor = $1 ORDER BY seq",
        by_id: false,
        cols: &[
            ("seq", Col::Int),
            ("at_us", Col::Time),
            ("actor", Col::Text),
            ("action", Col::Text),
            ("subject", Col::Text),
            ("details", Col::Text),
            ("hash", Col::Text),
        ],
    },
];

fn time(us: i64) -> Result<Value, StoreError> {
    Ok(Value::String(us_to_ts(us)?.to_string()))
}

/// The JSON name of a column: times lose their `_us`.
fn json_name(name: &str, col: Col) -> &str {
    match col {
        Col::Time | Col::OptTime => name.strip_suffix("_us").unwrap_or(name),
        _ => name,
    }
}

fn row_json<R>(table: &str, r: &R, cols: &[(&str, Col)]) -> Result<Map<String, Value>, StoreError>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'d> i64: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> Option<i64>: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> String: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> Option<String>: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> Option<bool>: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    let mut m = Map::new();
    m.insert("table".into(), Value::String(table.to_string()));
    for &(name, col) in cols {
        let v = match col {
            Col::Int => Value::from(r.try_get::<i64, _>(name)?),
            Col::OptInt => r
                .try_get::<Option<i64>, _>(name)?
                .map_or(Value::Null, Value::from),
            Col::Text => Value::String(r.try_get(name)?),
            Col::OptText => r
                .try_get::<Option<String>, _>(name)?
                .map_or(Value::Null, Value::String),
            Col::OptBool => r
                .try_get::<Option<bool>, _>(name)?
                .map_or(Value::Null, Value::Bool),
            Col::Time => time(r.try_get(name)?)?,
            Col::OptTime => match r.try_get::<Option<i64>, _>(name)? {
                Some(us) => time(us)?,
                None => Value::Null,
            },
            Col::List => {
                let text: String = r.try_get(name)?;
                Value::Array(
                    text.split(',')
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_string()))
                        .collect(),
                )
            }
        };
        m.insert(json_name(name, col).to_string(), v);
    }
    Ok(m)
}

async fn write_line<W: AsyncWrite + Unpin>(
    out: &mut W,
    obj: &Map<String, Value>,
) -> Result<(), StoreError> {
    let mut line = serde_json::to_vec(obj)
        .map_err(|e| StoreError::Invalid(format!("cannot encode an export row: {e}")))?;
    line.push(b'\n');
    out.write_all(&line).await?;
    Ok(())
}

/// A blocking [`std::io::Write`] seen as an [`AsyncWrite`] (each write runs in place): for
/// callers exporting to a file or stdout from a command line.
pub struct BlockingWriter<W>(pub W);

impl<W: std::io::Write + Unpin> AsyncWrite for BlockingWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.get_mut().0.write(buf))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.get_mut().0.flush())
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl Store {
    /// Write everything held about `person` (a username) to `out` as JSON Lines (see the
    /// module documentation). Auditing the export is the caller's: it knows who asked.
    pub async fn export_person<W: AsyncWrite + Unpin>(
        &self,
        person: &str,
        opts: ExportOptions,
        now: jiff::Timestamp,
        out: &mut W,
    ) -> Result<ExportSummary, StoreError> {
        let mut summary = ExportSummary::default();
        let mut head = Map::new();
        head.insert("table".into(), "export".into());
        head.insert("person".into(), person.into());
        head.insert("generated".into(), now.to_string().into());
        head.insert("content_included".into(), opts.include_content.into());
        write_line(out, &head).await?;

        let person_id: Option<i64> = with_pool!(self.pool(), p => {
            let row = sqlx::query(
                "SELECT p.id, p.username, p.display_name, p.role, p.year_group, p.form, p.email, \
                 p.mis_id, s.code AS site, p.updated_us FROM people p \
                 LEFT JOIN sites s ON s.id = p.site_id WHERE p.username = $1",
            )
            .bind(person)
            .fetch_optional(p)
            .await?;
            match row {
                None => None,
                Some(r) => {
                    let cols: &[(&str, Col)] = &[
                        ("username", Col::Text),
                        ("display_name", Col::Text),
                        ("role", Col::Text),
                        ("year_group", Col::OptText),
                        ("form", Col::OptText),
                        ("email", Col::OptText),
                        ("mis_id", Col::OptText),
                        ("site", Col::OptText),
                        ("updated_us", Col::Time),
                    ];
                    write_line(out, &row_json("people", &r, cols)?).await?;
                    summary.rows.insert("people".into(), 1);
                    Some(r.try_get::<i64, _>("id")?)
                }
            }
        });

        for t in TABLES {
            let mut n = 0u64;
            if t.name == "event_content" && !opts.include_content {
                let withheld: i64 = with_pool!(self.pool(), p => {
                    sqlx::query_scalar(
                        "SELECT COUNT(*) FROM event_content c JOIN decisions d ON d.id = c.event_id \
                         WHERE d.person = $1",
                    )
                    .bind(person)
                    .fetch_one(p)
                    .await?
                });
                summary.content_withheld = u64::try_from(withheld).unwrap_or(0);
                let mut m = Map::new();
                m.insert("table".into(), "event_content".into());
                m.insert("withheld_rows".into(), withheld.into());
                m.insert(
                    "note".into(),
                    "content is exported only on request (include_content)".into(),
                );
                write_line(out, &m).await?;
                continue;
            }
            if t.by_id && person_id.is_none() {
                summary.rows.insert(t.name.into(), 0);
                continue;
            }
            with_pool!(self.pool(), p => {
                let q = sqlx::query(t.sql);
                let q = match (t.by_id, person_id) {
                    (true, Some(id)) => q.bind(id),
                    _ => q.bind(person),
                };
                let mut rows = q.fetch(p);
                while let Some(r) = rows.try_next().await? {
                    write_line(out, &row_json(t.name, &r, t.cols)?).await?;
                    n += 1;
                }
            });
            summary.rows.insert(t.name.into(), n);
        }
        let mut end = Map::new();
        end.insert("table".into(), "export_end".into());
        end.insert(
            "rows".into(),
            serde_json::to_value(&summary.rows).unwrap_or(Value::Null),
        );
        write_line(out, &end).await?;
        out.flush().await?;
        Ok(summary)
    }
}
