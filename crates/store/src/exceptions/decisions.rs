//! The filter's recorded decisions, looked up for the block page's reference.

use super::*;

/// A recorded decision, found by its id (the block page's reference).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionRef {
    pub id: i64,
    pub kind: String,
    pub at: jiff::Timestamp,
    pub person: Option<String>,
    pub year_group: Option<String>,
    pub client_ip: Option<String>,
    pub target: String,
    pub categories: String,
    pub verdict: String,
    pub rule: Option<String>,
    pub document: Option<String>,
    pub clause: Option<String>,
}

type DecisionTuple = (
    i64,
    String,
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

const DECISION_COLUMNS: &str = "SELECT id, kind, at_us, person, year_group, client_ip, target, categories, \
     verdict, rule, document, clause FROM decisions";

fn to_decision(r: DecisionTuple) -> Result<DecisionRef, StoreError> {
    Ok(DecisionRef {
        id: r.0,
        kind: r.1,
        at: ts(r.2)?,
        person: r.3,
        year_group: r.4,
        client_ip: r.5,
        target: r.6,
        categories: r.7,
        verdict: r.8,
        rule: r.9,
        document: r.10,
        clause: r.11,
    })
}

impl Exceptions<'_> {
    /// The newest block or warn recorded for `client_ip` and `name` since `since`: what
    /// the block page shows as its reference (the DNS filter's own decision).
    pub async fn latest_decision(
        &self,
        client_ip: &str,
        name: &str,
        since: jiff::Timestamp,
    ) -> Result<Option<DecisionRef>, StoreError> {
        let sql = format!(
            "{DECISION_COLUMNS} WHERE client_ip = $1 AND target = $2 AND at_us >= $3 \
             ORDER BY at_us DESC LIMIT 1"
        );
        let row: Option<DecisionTuple> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(&sql)
                .bind(client_ip)
                .bind(name)
                .bind(ts_to_us(since))
                .fetch_optional(p)
                .await?
        });
        row.map(to_decision).transpose()
    }

    /// One recorded decision by id.
    pub async fn decision(&self, id: i64) -> Result<Option<DecisionRef>, StoreError> {
        let sql = format!("{DECISION_COLUMNS} WHERE id = $1");
        let row: Option<DecisionTuple> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(&sql).bind(id).fetch_optional(p).await?
        });
        row.map(to_decision).transpose()
    }
}
