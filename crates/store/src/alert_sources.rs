//! What the safeguarding follower reads to raise alerts: recorded decisions made by a
//! rule (a block or warn whose rule carries `alert`), and recorded content (search terms)
//! for risk-phrase detection. Both are read after a cursor, in id order, in batches.

use crate::{Store, StoreError, ts_to_us, us_to_ts, with_pool};

/// A recorded decision made by a rule, about an identified person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDecision {
    pub id: i64,
    pub at: jiff::Timestamp,
    pub person: String,
    pub year_group: Option<String>,
    pub client_ip: Option<String>,
    pub target: String,
    pub verdict: String,
    pub rule: String,
    /// The event's kind (`web`, `dns`, `mail`...).
    pub kind: String,
}

/// A piece of recorded content with the decision it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentRow {
    pub event_id: i64,
    pub kind: String,
    pub at: jiff::Timestamp,
    pub content: String,
    pub person: Option<String>,
    pub year_group: Option<String>,
    pub target: String,
}

/// From [`Store::alert_sources`].
pub struct AlertSources<'a> {
    pub(crate) store: &'a Store,
}

impl AlertSources<'_> {
    /// Where to start after a restart: just before the first decision and content recorded
    /// since `since` (occurrence keys make a second look at them harmless).
    pub async fn cursors_since(&self, since: jiff::Timestamp) -> Result<(i64, i64), StoreError> {
        let since = ts_to_us(since);
        // One statement per table, so the "first since" and the "newest" come from one
        // snapshot: read apart, a row committed between them was skipped.
        let (d, c): (i64, i64) = with_pool!(self.store.pool(), p => {
            let d = sqlx::query_scalar(
                "SELECT CAST(COALESCE((SELECT MIN(id) FROM decisions WHERE at_us >= $1) - 1, \
                 (SELECT MAX(id) FROM decisions), 0) AS BIGINT)",
            )
            .bind(since)
            .fetch_one(p)
            .await?;
            let c = sqlx::query_scalar(
                "SELECT CAST(COALESCE((SELECT MIN(event_id) FROM event_content WHERE at_us >= $1) - 1, \
                 (SELECT MAX(event_id) FROM event_content), 0) AS BIGINT)",
            )
            .bind(since)
            .fetch_one(p)
            .await?;
            (d, c)
        });
        Ok((d, c))
    }

    /// Blocks and warnings by one of `rules`, about a known person, with `after < id <=
    /// upto`, in id order; for mail, every message a rule decided (a mail rule may hold
    /// or deliver and still alert) but the deferred ones, which come again on retry.
    pub async fn rule_decisions(
        &self,
        after: i64,
        upto: i64,
        rules: &[&str],
        limit: i64,
    ) -> Result<Vec<RuleDecision>, StoreError> {
        type Row = (
            i64,
            i64,
            String,
            Option<String>,
            Option<String>,
            String,
            String,
            String,
            String,
        );
        if rules.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..rules.len()).map(|i| format!("${}", i + 4)).collect();
        let sql = format!(
            "SELECT id, at_us, person, year_group, client_ip, target, verdict, rule, kind FROM decisions \
             WHERE id > $1 AND id <= $2 AND rule IN ({}) AND person IS NOT NULL \
             AND (verdict IN ('block', 'warn') OR kind = 'mail' AND verdict <> 'deferred') \
             ORDER BY id LIMIT $3",
            placeholders.join(", ")
        );
        let rows: Vec<Row> = with_pool!(self.store.pool(), p => {
            let mut q = sqlx::query_as(&sql).bind(after).bind(upto).bind(limit);
            for rule in rules {
                q = q.bind(*rule);
            }
            q.fetch_all(p).await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(RuleDecision {
                    id: r.0,
                    at: us_to_ts(r.1)?,
                    person: r.2,
                    year_group: r.3,
                    client_ip: r.4,
                    target: r.5,
                    verdict: r.6,
                    rule: r.7,
                    kind: r.8,
                })
            })
            .collect()
    }

    /// The highest decision id (for a cursor that moves past decisions without a rule).
    pub async fn last_decision(&self) -> Result<i64, StoreError> {
        let id: Option<i64> = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar("SELECT MAX(id) FROM decisions").fetch_one(p).await?
        });
        Ok(id.unwrap_or(0))
    }

    /// Content of the given kinds with event id above `after`.
    pub async fn content_after(
        &self,
        after: i64,
        kinds: &[&str],
        limit: i64,
    ) -> Result<Vec<ContentRow>, StoreError> {
        type Row = (
            i64,
            String,
            i64,
            String,
            Option<String>,
            Option<String>,
            String,
        );
        let placeholders: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "SELECT c.event_id, c.kind, c.at_us, c.content, d.person, d.year_group, d.target \
             FROM event_content c JOIN decisions d ON d.id = c.event_id \
             WHERE c.event_id > $1 AND c.kind IN ({}) ORDER BY c.event_id LIMIT $2",
            placeholders.join(", ")
        );
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<Row> = with_pool!(self.store.pool(), p => {
            let mut q = sqlx::query_as(&sql).bind(after).bind(limit);
            for kind in kinds {
                q = q.bind(*kind);
            }
            q.fetch_all(p).await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(ContentRow {
                    event_id: r.0,
                    kind: r.1,
                    at: us_to_ts(r.2)?,
                    content: r.3,
                    person: r.4,
                    year_group: r.5,
                    target: r.6,
                })
            })
            .collect()
    }
}
