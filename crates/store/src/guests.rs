//! The captive portal's guest codes: a member of staff issues a code for a visitor; the
//! visitor becomes a person with the role `guest` (so the policy's guest group applies),
//! and the code, typed on the block page until it expires, starts a logon session for
//! them at their address. The caller makes the code and its username; only the code's
//! hash is kept.

use crate::BeginWrite as _;

use serde::Serialize;

use crate::{Store, StoreError, ts_to_us, us_to_ts, with_pool};

/// A guest code as the console lists it (never the code itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestCode {
    pub id: i64,
    /// The guest's username (`guest-...`).
    pub username: String,
    pub display_name: String,
    pub issued_by: String,
    pub issued: jiff::Timestamp,
    pub expires: jiff::Timestamp,
}

/// Guest codes; from [`Store::guests`].
pub struct Guests<'a> {
    pub(crate) store: &'a Store,
}

impl Guests<'_> {
    /// Creates the guest `username` (role `guest`) and their code, valid until `expires`;
    /// audited (`guest.issue`). Returns the code's id. A username that exists is refused.
    pub async fn issue(
        &self,
        actor: &str,
        username: &str,
        display_name: &str,
        code_hash: &str,
        expires: jiff::Timestamp,
        now: jiff::Timestamp,
    ) -> Result<i64, StoreError> {
        let now_us = ts_to_us(now);
        let id = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM people WHERE username = $1")
                .bind(username)
                .fetch_optional(&mut *tx)
                .await?;
            if taken.is_some() {
                return Err(StoreError::Invalid(format!("{username} exists already")));
            }
            let person: i64 = sqlx::query_scalar(
                "INSERT INTO people (username, display_name, role, updated_us) \
                 VALUES ($1, $2, 'guest', $3) RETURNING id",
            )
            .bind(username)
            .bind(display_name)
            .bind(now_us)
            .fetch_one(&mut *tx)
            .await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO guest_codes (code_hash, person_id, issued_by, issued_us, expires_us) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(code_hash)
            .bind(person)
            .bind(actor)
            .bind(now_us)
            .bind(ts_to_us(expires))
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            id
        });
        self.store
            .audit()
            .append(
                actor,
                "guest.issue",
                username,
                &serde_json::json!({
                    "code": id,
                    "name": display_name,
                    "expires": expires.to_string(),
                }),
                now,
            )
            .await?;
        Ok(id)
    }

    /// The guest whose code hashes to `code_hash`, if it has not expired at `now`.
    pub async fn redeem(
        &self,
        code_hash: &str,
        now: jiff::Timestamp,
    ) -> Result<Option<String>, StoreError> {
        Ok(with_pool!(self.store.pool(), p => {
            sqlx::query_scalar(
                "SELECT p.username FROM guest_codes g JOIN people p ON p.id = g.person_id \
                 WHERE g.code_hash = $1 AND g.expires_us > $2",
            )
            .bind(code_hash)
            .bind(ts_to_us(now))
            .fetch_optional(p)
            .await?
        }))
    }

    /// Codes still valid at `now` (issued by `issued_by`, if given), newest first.
    pub async fn valid(
        &self,
        issued_by: Option<&str>,
        now: jiff::Timestamp,
    ) -> Result<Vec<GuestCode>, StoreError> {
        let rows: Vec<(i64, String, String, String, i64, i64)> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(
                "SELECT g.id, p.username, p.display_name, g.issued_by, g.issued_us, g.expires_us \
                 FROM guest_codes g JOIN people p ON p.id = g.person_id \
                 WHERE g.expires_us > $1 AND ($2 IS NULL OR g.issued_by = $2) ORDER BY g.id DESC",
            )
            .bind(ts_to_us(now))
            .bind(issued_by)
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|(id, username, display_name, issued_by, issued, expires)| {
                Ok(GuestCode {
                    id,
                    username,
                    display_name,
                    issued_by,
                    issued: us_to_ts(issued)?,
                    expires: us_to_ts(expires)?,
                })
            })
            .collect()
    }
}
