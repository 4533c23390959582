//! The read side of the store: what the features built on it ask of one person's data.
//!
//! * [`timeline`]: one person's activity, newest first, paged by a keyset cursor over
//!   `decisions` and `dns_visits` through their `(person, time)` indexes.
//! * [`export`]: everything held about one person (a subject access request), streamed
//!   as JSON Lines so a large export never sits in memory.
//! * [`hourly`]: one person's activity over a long range from the per-hour, per-site
//!   roll-up (`activity_hourly`), with per-day and per-site totals.
//! * [`protection`]: erasing one person's data, and holds that keep it from erasure and
//!   from retention.
//!
//! Retention (`crate::retention`) and the reports (`crate::reports`) read the same tables.

pub mod export;
pub mod hourly;
pub mod protection;
pub mod timeline;

/// Escape `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
pub(crate) fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The start of the UTC minute holding `us` (the key `dns_visits` is indexed by).
pub(crate) fn minute_floor(us: i64) -> i64 {
    const MINUTE: i64 = 60_000_000;
    us.div_euclid(MINUTE) * MINUTE
}

/// A parameter of SQL put together at run time (see [`bind_all`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Bind<'a> {
    Int(i64),
    Text(&'a str),
}

/// Bind each of `$binds` (a slice of [`Bind`]) to the query `$q`, in order.
macro_rules! bind_all {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for b in $binds {
            q = match *b {
                $crate::reads::Bind::Int(v) => q.bind(v),
                $crate::reads::Bind::Text(v) => q.bind(v),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

/// Rows deleted per statement, so writers get the database between statements.
pub(crate) const BATCH: i64 = 10_000;

/// Delete from `table` the rows matching `filter` (SQL over its columns, `$n` parameters
/// from `binds`), at most [`BATCH`] per statement, until none is left. Returns how many
/// rows went and the sum of `returning` over them (`"1"` to count rows again).
pub(crate) async fn delete_batched(
    store: &crate::Store,
    table: &str,
    key: &str,
    filter: &str,
    binds: &[Bind<'_>],
    returning: &str,
) -> Result<(u64, u64), crate::StoreError> {
    let sql = format!(
        "DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {filter} LIMIT {BATCH}) \
         RETURNING CAST({returning} AS BIGINT)"
    );
    let (mut rows, mut sum) = (0u64, 0u64);
    loop {
        let got: Vec<i64> = crate::with_pool!(store.pool(), p => {
            bind_all!(sqlx::query_scalar(&sql), binds).fetch_all(p).await?
        });
        rows += got.len() as u64;
        sum += got
            .iter()
            .map(|&v| u64::try_from(v).unwrap_or(0))
            .sum::<u64>();
        if (got.len() as i64) < BATCH {
            return Ok((rows, sum));
        }
    }
}

/// `COUNT(*)` and `SUM(sum)` of the rows of `table` matching `filter` (a dry run).
pub(crate) async fn count_where(
    store: &crate::Store,
    table: &str,
    filter: &str,
    binds: &[Bind<'_>],
    sum: &str,
) -> Result<(u64, u64), crate::StoreError> {
    let sql = format!(
        "SELECT COUNT(*), CAST(COALESCE(SUM({sum}), 0) AS BIGINT) FROM {table} WHERE {filter}"
    );
    let (n, s): (i64, i64) = crate::with_pool!(store.pool(), p => {
        bind_all!(sqlx::query_as(&sql), binds).fetch_one(p).await?
    });
    Ok((u64::try_from(n).unwrap_or(0), u64::try_from(s).unwrap_or(0)))
}
