//! The event writer's insert path on PostgreSQL: one transaction per call through the
//! store's pool, with multi-row statements (a round trip per statement matters on a
//! remote server). Decision ids are drawn from the table's identity sequence up front in
//! one query, so content rows can name their decision without a round trip per row.

use std::collections::HashMap;
use std::collections::HashSet;

use sqlx::{PgPool, Postgres, QueryBuilder};

use super::rows::{Batch, DECISION_COLUMNS, Rows, Stored, VISIT_COLUMNS, categories};
use crate::event::{Event, clean};
use crate::ts_to_us;

/// Rows per statement: 21 columns x 1,000 rows stays under PostgreSQL's 65,535 binds.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Statement texts by (table, rows), built once per shape: formatting 21,000
/// placeholders for every statement showed up in profiles.
#[derive(Default)]
pub(crate) struct PostgresSink {
    sql: HashMap<(&'static str, usize), String>,
}

impl PostgresSink {
    pub(crate) fn new() -> PostgresSink {
        PostgresSink::default()
    }

    fn values_sql(&mut self, table: &'static str, columns: &[&str], rows: usize) -> String {
        self.sql
            .entry((table, rows))
            .or_insert_with(|| {
                let cols = columns.len();
                let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
                for r in 0..rows {
                    sql.push_str(if r == 0 { "(" } else { ", (" });
                    for c in 0..cols {
                        if c > 0 {
                            sql.push_str(", ");
                        }
                        sql.push('$');
                        sql.push_str(&(r * cols + c + 1).to_string());
                    }
                    sql.push(')');
                }
                sql
            })
            .clone()
    }

    /// Store `batches` in one transaction (see `SqliteSink::insert`: the same rows).
    pub(crate) async fn insert(
        &mut self,
        pool: &PgPool,
        batches: &[Batch<'_>],
        now_us: i64,
    ) -> Result<Stored, sqlx::Error> {
        let mut tx = pool.begin().await?;
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new("INSERT INTO committed_batches (batch_id, committed_us, events) ");
        qb.push_values(batches, |mut b, batch| {
            b.push_bind(batch.id)
                .push_bind(now_us)
                .push_bind(i32::try_from(batch.events.len()).unwrap_or(i32::MAX));
        });
        qb.push(" ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id");
        let recorded: HashSet<String> = qb
            .build_query_scalar::<String>()
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let mut stored = Stored::default();
        let mut fresh: Vec<&Event> = Vec::new();
        for b in batches {
            if recorded.contains(b.id) {
                fresh.extend(b.events.iter().copied());
            } else {
                stored.skipped_batches += 1;
            }
        }
        stored.events = fresh.len() as u64;
        let rows = Rows::of(fresh);

        let ids: Vec<i64> = if rows.decisions.is_empty() {
            Vec::new()
        } else {
            sqlx::query_scalar(
                "SELECT nextval(pg_get_serial_sequence('decisions', 'id')) \
                 FROM generate_series(1, $1)",
            )
            .bind(rows.decisions.len() as i64)
            .fetch_all(&mut *tx)
            .await?
        };
        let decisions: Vec<(i64, &Event)> = ids
            .iter()
            .copied()
            .zip(rows.decisions.iter().copied())
            .collect();
        let mut columns = vec!["id"];
        columns.extend(DECISION_COLUMNS);
        for chunk in statement_chunks(&decisions) {
            let sql = self.values_sql("decisions", &columns, chunk.len());
            let mut q = sqlx::query(&sql);
            for (id, e) in chunk {
                let dns = e.dns.as_ref();
                q = q
                    .bind(*id)
                    .bind(e.kind.as_str())
                    .bind(ts_to_us(e.at))
                    .bind(e.person.as_deref().map(clean))
                    .bind(e.year_group.as_deref().map(clean))
                    .bind(e.client_ip.map(|ip| ip.to_string()))
                    .bind(e.device.as_deref().map(clean))
                    .bind(clean(&e.target))
                    .bind(categories(&e.categories))
                    .bind(clean(&e.verdict))
                    .bind(e.rule.as_deref().map(clean))
                    .bind(e.document.as_deref().map(clean))
                    .bind(e.clause.as_deref().map(clean))
                    .bind(e.bytes)
                    .bind(e.detail.as_ref().map(|d| clean(d.as_str())))
                    .bind(dns.map(|d| i32::from(d.qtype)))
                    .bind(dns.map(|d| i32::from(d.rcode)))
                    .bind(dns.map(|d| clean(&d.answer)))
                    .bind(dns.map(|d| d.cache_hit))
                    .bind(dns.map(|d| d.stale))
                    .bind(dns.and_then(|d| d.upstream_us).map(i64::from));
            }
            q.execute(&mut *tx).await?;
        }
        let with_content: Vec<&(i64, &Event)> = decisions
            .iter()
            .filter(|(_, e)| e.content.is_some())
            .collect();
        for chunk in statement_chunks(&with_content) {
            let mut qb =
                QueryBuilder::new("INSERT INTO event_content (event_id, kind, at_us, content) ");
            qb.push_values(chunk, |mut b, (id, e)| {
                b.push_bind(*id)
                    .push_bind(e.kind.as_str())
                    .push_bind(ts_to_us(e.at))
                    .push_bind(clean(e.content.as_deref().unwrap_or_default()));
            });
            qb.push(" ON CONFLICT (event_id) DO NOTHING");
            qb.build().execute(&mut *tx).await?;
        }
        for chunk in statement_chunks(&rows.visits) {
            let sql = self.values_sql("dns_visits", &VISIT_COLUMNS, chunk.len());
            let mut q = sqlx::query(&sql);
            for v in chunk {
                let k = &v.key;
                q = q
                    .bind(k.minute_us)
                    .bind(v.first_us)
                    .bind(v.last_us)
                    .bind(k.person.map(clean))
                    .bind(k.year_group.map(clean))
                    .bind(k.client_ip.map(|ip| ip.to_string()).unwrap_or_default())
                    .bind(k.device.map(clean))
                    .bind(clean(k.name))
                    .bind(categories(k.categories))
                    .bind(clean(k.verdict))
                    .bind(k.rule.map(clean))
                    .bind(k.document.map(clean))
                    .bind(k.clause.map(clean))
                    .bind(i32::try_from(v.queries).unwrap_or(i32::MAX))
                    .bind(i32::try_from(v.cache_hits).unwrap_or(i32::MAX));
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in rows.traffic.chunks(ROWS_PER_STATEMENT) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO traffic_daily (day, person, year_group, kind, category, verdict, n) ",
            );
            qb.push_values(
                chunk,
                |mut b, ((day, person, yg, kind, cat, verdict), n)| {
                    b.push_bind(*day)
                        .push_bind(person.clone())
                        .push_bind(yg.clone())
                        .push_bind(*kind)
                        .push_bind(cat.clone())
                        .push_bind(*verdict)
                        .push_bind(*n);
                },
            );
            qb.push(
                " ON CONFLICT (day, person, year_group, kind, category, verdict) \
                 DO UPDATE SET n = traffic_daily.n + excluded.n",
            );
            qb.build().execute(&mut *tx).await?;
        }
        for chunk in rows.activity.chunks(ROWS_PER_STATEMENT) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO activity_hourly (person, hour_us, kind, site, verdict, categories, n) ",
            );
            qb.push_values(
                chunk,
                |mut b, ((person, hour, kind, site, verdict, cats), n)| {
                    b.push_bind(person.clone())
                        .push_bind(*hour)
                        .push_bind(*kind)
                        .push_bind(site.clone())
                        .push_bind(verdict.clone())
                        .push_bind(cats.clone())
                        .push_bind(*n);
                },
            );
            qb.push(
                " ON CONFLICT (person, hour_us, kind, site, verdict, categories) \
                 DO UPDATE SET n = activity_hourly.n + excluded.n",
            );
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(stored)
    }
}

/// Split rows into statements of 1,000 rows, then the rest in powers of two, so that only
/// a dozen statement shapes exist and each is prepared once and cached.
fn statement_chunks<T>(mut rows: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    while !rows.is_empty() {
        let n = if rows.len() >= ROWS_PER_STATEMENT {
            ROWS_PER_STATEMENT
        } else {
            1 << rows.len().ilog2()
        };
        let (head, tail) = rows.split_at(n);
        out.push(head);
        rows = tail;
    }
    out
}
