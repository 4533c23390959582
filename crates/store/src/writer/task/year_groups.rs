//! Year groups for events recorded without one, looked up in `people` and cached.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::QueryBuilder;

use super::Task;
use crate::event::Event;
use crate::{Store, with_pool};

impl Task {
    /// Fill in `year_group` for attributed events recorded without one.
    pub(super) async fn resolve_year_groups(&mut self, mut events: Vec<&mut Event>) {
        if self.now().saturating_duration_since(self.year_groups_at) > Duration::from_secs(60)
            || self.year_groups.len() > 200_000
        {
            self.year_groups.clear();
            self.year_groups_at = self.now();
        }
        let mut missing: Vec<&str> = Vec::new();
        for e in events.iter() {
            if e.year_group.is_none()
                && let Some(person) = &e.person
                && !self.year_groups.contains_key(person)
                && !missing.contains(&person.as_str())
            {
                missing.push(person);
            }
        }
        if !missing.is_empty() {
            // Bounded like a commit: a database that does not answer must not keep
            // events in memory longer than that.
            let lookup = lookup_year_groups(&self.store, &missing);
            match tokio::time::timeout(self.config.commit_timeout, lookup).await {
                Ok(Ok(found)) => {
                    for name in missing {
                        let yg = found.get(name).cloned().flatten();
                        self.year_groups.insert(name.to_string(), yg);
                    }
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "year group lookup failed"),
                Err(_) => tracing::debug!("year group lookup timed out"),
            }
        }
        for e in events.iter_mut() {
            if e.year_group.is_none()
                && let Some(person) = &e.person
                && let Some(yg) = self.year_groups.get(person)
            {
                e.year_group = yg.clone();
            }
        }
    }
}

async fn lookup_year_groups(
    store: &Store,
    names: &[&str],
) -> Result<HashMap<String, Option<String>>, sqlx::Error> {
    let mut out = HashMap::new();
    for chunk in names.chunks(500) {
        let rows: Vec<(String, Option<String>)> = with_pool!(store.pool(), p => {
            let mut qb = QueryBuilder::new("SELECT username, year_group FROM people WHERE username IN (");
            let mut sep = qb.separated(", ");
            for n in chunk {
                sep.push_bind(*n);
            }
            qb.push(")");
            qb.build_query_as().fetch_all(p).await?
        });
        out.extend(rows);
    }
    Ok(out)
}
