//! What a request's approval, a warning's "continue" and a teacher override leave open,
//! and how it ends: revoked, expired, or when the policy changes.

use super::*;

impl Exceptions<'_> {
    /// "Continue" on a warning page: `person` may reach `domain` until `until` (audited
    /// as `warning.acknowledge`).
    pub async fn acknowledge(
        &self,
        person: &str,
        domain: &str,
        until: jiff::Timestamp,
        now: jiff::Timestamp,
    ) -> Result<i64, StoreError> {
        let id: i64 = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar(
                "INSERT INTO grants (kind, scope, subject, target, until_us, created_by, created_us) \
                 VALUES ('ack', 'person', $1, $2, $3, $1, $4) RETURNING id",
            )
            .bind(person)
            .bind(domain)
            .bind(ts_to_us(until))
            .bind(ts_to_us(now))
            .fetch_one(p)
            .await?
        });
        let details =
            serde_json::json!({ "ack": id, "domain": domain, "until": until.to_string() });
        self.store
            .audit()
            .append(person, "warning.acknowledge", person, &details, now)
            .await?;
        Ok(id)
    }

    /// A teacher override of `rule` for `group` until `until` (audited as
    /// `override.create`). The caller has checked the rule may be overridden.
    pub async fn add_override(
        &self,
        group: &str,
        rule: &str,
        until: jiff::Timestamp,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<OverrideRow, StoreError> {
        if until <= now {
            return Err(StoreError::Invalid(
                "the override would end before it starts: give a time in the future".into(),
            ));
        }
        let id: i64 = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar(
                "INSERT INTO overrides (group_name, rule, until_us, created_by, created_us) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(group)
            .bind(rule)
            .bind(ts_to_us(until))
            .bind(actor)
            .bind(ts_to_us(now))
            .fetch_one(p)
            .await?
        });
        let details = serde_json::json!({
            "override": id, "group": group, "rule": rule, "until": until.to_string(),
        });
        self.store
            .audit()
            .append(actor, "override.create", group, &details, now)
            .await?;
        Ok(OverrideRow {
            id,
            group: group.into(),
            rule: rule.into(),
            until,
            created_by: actor.into(),
            created: now,
            ended: None,
            ended_why: None,
        })
    }

    pub async fn override_by_id(&self, id: i64) -> Result<Option<OverrideRow>, StoreError> {
        let sql = format!("{OVERRIDE_COLUMNS} WHERE id = $1");
        let row: Option<OverrideTuple> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(&sql).bind(id).fetch_optional(p).await?
        });
        row.map(to_override).transpose()
    }

    /// Overrides in force at `now` (ended ones too with `include_ended`), newest first.
    pub async fn overrides(
        &self,
        now: jiff::Timestamp,
        include_ended: bool,
    ) -> Result<Vec<OverrideRow>, StoreError> {
        let sql = format!(
            "{OVERRIDE_COLUMNS} WHERE $1 OR (ended_us IS NULL AND until_us > $2) ORDER BY id DESC LIMIT 500"
        );
        let rows: Vec<OverrideTuple> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(&sql).bind(include_ended).bind(ts_to_us(now)).fetch_all(p).await?
        });
        rows.into_iter().map(to_override).collect()
    }

    /// Grants (kind `grant`) in force at `now` (or all, newest first, with `include_ended`).
    pub async fn grants(
        &self,
        now: jiff::Timestamp,
        include_ended: bool,
    ) -> Result<Vec<GrantRow>, StoreError> {
        let sql = format!(
            "{GRANT_COLUMNS} WHERE kind = 'grant' AND ($1 OR (ended_us IS NULL AND \
             (until_us IS NULL OR until_us > $2))) ORDER BY id DESC LIMIT 500"
        );
        let rows: Vec<GrantTuple> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(&sql).bind(include_ended).bind(ts_to_us(now)).fetch_all(p).await?
        });
        rows.into_iter().map(to_grant).collect()
    }

    /// End override `id` early (audited as `override.revoke`). `Ok(false)`: it was not
    /// open.
    pub async fn revoke_override(
        &self,
        id: i64,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<bool, StoreError> {
        let updated = with_pool!(self.store.pool(), p => {
            sqlx::query(
                "UPDATE overrides SET ended_us = $1, ended_why = 'revoked' \
                 WHERE id = $2 AND ended_us IS NULL AND until_us > $1",
            )
            .bind(ts_to_us(now))
            .bind(id)
            .execute(p)
            .await?
            .rows_affected()
        });
        if updated > 0 {
            let details = serde_json::json!({ "override": id });
            self.store
                .audit()
                .append(actor, "override.revoke", "", &details, now)
                .await?;
        }
        Ok(updated > 0)
    }

    /// End grant `id` early (audited as `grant.revoke`).
    pub async fn revoke_grant(
        &self,
        id: i64,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<bool, StoreError> {
        let updated = with_pool!(self.store.pool(), p => {
            sqlx::query(
                "UPDATE grants SET ended_us = $1, ended_why = 'revoked' WHERE id = $2 AND ended_us IS NULL",
            )
            .bind(ts_to_us(now))
            .bind(id)
            .execute(p)
            .await?
            .rows_affected()
        });
        if updated > 0 {
            let details = serde_json::json!({ "grant": id });
            self.store
                .audit()
                .append(actor, "grant.revoke", "", &details, now)
                .await?;
        }
        Ok(updated > 0)
    }

    /// Everything open at `now`, for the engine's snapshot.
    pub async fn open(&self, now: jiff::Timestamp) -> Result<OpenExceptions, StoreError> {
        let now_us = ts_to_us(now);
        let grants_sql = format!(
            "{GRANT_COLUMNS} WHERE ended_us IS NULL AND (until_us IS NULL OR until_us > $1) ORDER BY id"
        );
        let overrides_sql =
            format!("{OVERRIDE_COLUMNS} WHERE ended_us IS NULL AND until_us > $1 ORDER BY id");
        let (grants, overrides): (Vec<GrantTuple>, Vec<OverrideTuple>) = with_pool!(self.store.pool(), p => {
            let g = sqlx::query_as(&grants_sql).bind(now_us).fetch_all(p).await?;
            let o = sqlx::query_as(&overrides_sql).bind(now_us).fetch_all(p).await?;
            (g, o)
        });
        let mut open = OpenExceptions::default();
        for g in grants {
            let g = to_grant(g)?;
            if g.kind == "ack" {
                open.acknowledged.push(g);
            } else {
                open.grants.push(g);
            }
        }
        open.overrides = overrides
            .into_iter()
            .map(to_override)
            .collect::<Result<_, _>>()?;
        open.sanctions = self.store.safeguarding().sanctions_in_force(now).await?;
        Ok(open)
    }

    /// Marks grants and overrides whose time has come as ended (`expired`), auditing each
    /// once (`grant.expire`, `override.expire`; acknowledgements end silently). Returns
    /// how many ended. Decisions never wait for this: they compare the end time with the
    /// clock, so an exception stops on time even between two calls.
    pub async fn expire(&self, now: jiff::Timestamp) -> Result<usize, StoreError> {
        let now_us = ts_to_us(now);
        // Called every few hundred milliseconds and almost always with nothing due: a
        // plain read first, so the write lock is only taken when something ends.
        let due: bool = with_pool!(self.store.pool(), p => {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM grants WHERE ended_us IS NULL \
                 AND until_us IS NOT NULL AND until_us <= $1) \
                 OR EXISTS (SELECT 1 FROM overrides WHERE ended_us IS NULL AND until_us <= $1)",
            )
            .bind(now_us)
            .fetch_one(p)
            .await?
        });
        if !due {
            return Ok(0);
        }
        let (grants, overrides): (Vec<EndedGrant>, Vec<EndedOverride>) = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let g: Vec<(i64, String, String, String)> = sqlx::query_as(
                "SELECT id, kind, subject, target FROM grants \
                 WHERE ended_us IS NULL AND until_us IS NOT NULL AND until_us <= $1",
            )
            .bind(now_us)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE grants SET ended_us = until_us, ended_why = 'expired' \
                 WHERE ended_us IS NULL AND until_us IS NOT NULL AND until_us <= $1",
            )
            .bind(now_us)
            .execute(&mut *tx)
            .await?;
            let o: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT id, group_name, rule FROM overrides WHERE ended_us IS NULL AND until_us <= $1",
            )
            .bind(now_us)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE overrides SET ended_us = until_us, ended_why = 'expired' \
                 WHERE ended_us IS NULL AND until_us <= $1",
            )
            .bind(now_us)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            (g, o)
        });
        let audit = self.store.audit();
        for (id, kind, subject, target) in &grants {
            if kind == "grant" {
                let details = serde_json::json!({ "grant": id, "target": target });
                audit
                    .append("hallpass", "grant.expire", subject, &details, now)
                    .await?;
            }
        }
        for (id, group, rule) in &overrides {
            let details = serde_json::json!({ "override": id, "rule": rule });
            audit
                .append("hallpass", "override.expire", group, &details, now)
                .await?;
        }
        Ok(grants.len() + overrides.len())
    }

    /// Ends every grant made "until the policy changes" (audited as `grant.expire` with
    /// the reason): called when a changed policy is loaded.
    pub async fn end_policy_change_grants(
        &self,
        now: jiff::Timestamp,
    ) -> Result<usize, StoreError> {
        let ids: Vec<(i64, String)> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(
                "UPDATE grants SET ended_us = $1, ended_why = 'policy-change' \
                 WHERE ended_us IS NULL AND until_us IS NULL RETURNING id, subject",
            )
            .bind(ts_to_us(now))
            .fetch_all(p)
            .await?
        });
        for (id, subject) in &ids {
            let details = serde_json::json!({ "grant": id, "why": "the policy changed" });
            self.store
                .audit()
                .append("hallpass", "grant.expire", subject, &details, now)
                .await?;
        }
        Ok(ids.len())
    }
}
