//! Acceptances of the acceptable-use declaration (WCS ICT policy 000 §14: "All users ...
//! confirm their understanding by dint of the acceptable use declaration at logon"):
//! who accepted which document's declaration at which version, when, on which
//! workstation and from which address. The policy says which versions are current; this
//! repository only records and answers, so a new version asks everyone again without
//! touching the rows (each is evidence and is never changed).

use crate::BeginWrite as _;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use serde::Serialize;
use sqlx::Row;

use crate::{Store, StoreError, ts_to_us, us_to_ts, with_pool};

/// One recorded acceptance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Acceptance {
    pub username: String,
    pub document: String,
    pub version: String,
    pub accepted: jiff::Timestamp,
    pub workstation: Option<String>,
    pub ip: Option<String>,
    /// Who recorded it: the person themselves, or the logon token (`token:NAME`).
    pub actor: String,
}

/// What [`Declarations::accept`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Accepted {
    pub id: i64,
    /// False when this person had accepted this version already (nothing was written).
    pub new: bool,
}

/// A current person who has not accepted every declaration asked of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outstanding {
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub year_group: Option<String>,
    pub form: Option<String>,
    /// Group names the person is a member of, sorted.
    pub groups: Vec<String>,
    /// The documents whose current version they have not accepted, in the order asked.
    pub pending: Vec<String>,
}

/// Where an acceptance was made.
#[derive(Debug, Clone, Copy, Default)]
pub struct Place<'a> {
    pub workstation: Option<&'a str>,
    pub ip: Option<IpAddr>,
}

/// Declaration acceptances; from [`Store::declarations`].
pub struct Declarations<'a> {
    pub(crate) store: &'a Store,
}

impl Declarations<'_> {
    /// Record that `username` accepted `document` at `version`. Idempotent: a second
    /// acceptance of the same version writes nothing and returns the first
    /// (`new: false`). A new acceptance is audited (action `declaration.accept`, the
    /// person as subject). An unknown username is [`StoreError::UnknownUser`], a person
    /// who has left [`StoreError::PersonLeft`]; nothing is written then. Whether the
    /// document and version are the policy's current ones is the caller's check.
    pub async fn accept(
        &self,
        actor: &str,
        username: &str,
        document: &str,
        version: &str,
        place: Place<'_>,
        now: jiff::Timestamp,
    ) -> Result<Accepted, StoreError> {
        let ip = place.ip.map(|ip| ip.to_string());
        let recorded: Option<Accepted> = with_pool!(self.store.pool(), p => {
            let mut tx = p.begin_write().await?;
            let person: Option<(i64, Option<i64>)> =
                sqlx::query_as("SELECT id, left_us FROM people WHERE username = $1")
                    .bind(username)
                    .fetch_optional(&mut *tx)
                    .await?;
            match person {
                None => None,
                Some((_, Some(_))) => return Err(StoreError::PersonLeft(username.to_string())),
                Some((pid, None)) => {
                    let inserted: Option<i64> = sqlx::query_scalar(
                        "INSERT INTO declaration_acceptances \
                         (person_id, document, version, accepted_us, workstation, ip, actor) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (person_id, document, version) DO NOTHING RETURNING id",
                    )
                    .bind(pid)
                    .bind(document)
                    .bind(version)
                    .bind(ts_to_us(now))
                    .bind(place.workstation)
                    .bind(&ip)
                    .bind(actor)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let accepted = match inserted {
                        Some(id) => Accepted { id, new: true },
                        None => Accepted {
                            id: sqlx::query_scalar(
                                "SELECT id FROM declaration_acceptances \
                                 WHERE person_id = $1 AND document = $2 AND version = $3",
                            )
                            .bind(pid)
                            .bind(document)
                            .bind(version)
                            .fetch_one(&mut *tx)
                            .await?,
                            new: false,
                        },
                    };
                    tx.commit().await?;
                    Some(accepted)
                }
            }
        });
        let accepted = recorded.ok_or_else(|| StoreError::UnknownUser(username.to_string()))?;
        if accepted.new {
            self.store
                .audit()
                .append(
                    actor,
                    "declaration.accept",
                    username,
                    &serde_json::json!({
                        "document": document,
                        "version": version,
                        "workstation": place.workstation,
                        "ip": ip,
                        "acceptance": accepted.id,
                    }),
                    now,
                )
                .await?;
        }
        Ok(accepted)
    }

    /// The (document, version) pairs each person with an open logon session has
    /// accepted, by username: what the engine needs to restrict the others.
    pub async fn accepted_by_logged_on(
        &self,
    ) -> Result<HashMap<String, BTreeSet<(String, String)>>, StoreError> {
        let rows: Vec<(String, String, String)> = with_pool!(self.store.pool(), p => {
            sqlx::query_as(
                "SELECT p.username, a.document, a.version FROM declaration_acceptances a \
                 JOIN people p ON p.id = a.person_id \
                 WHERE a.person_id IN (SELECT person_id FROM logon_sessions WHERE ended_us IS NULL)",
            )
            .fetch_all(p)
            .await?
        });
        let mut out: HashMap<String, BTreeSet<(String, String)>> = HashMap::new();
        for (username, document, version) in rows {
            out.entry(username).or_default().insert((document, version));
        }
        Ok(out)
    }

    /// Every acceptance `username` has made, oldest first. An unknown username is an error.
    pub async fn of_person(&self, username: &str) -> Result<Vec<Acceptance>, StoreError> {
        let (known, rows) = with_pool!(self.store.pool(), p => {
            let known: Option<i64> = sqlx::query_scalar("SELECT id FROM people WHERE username = $1")
                .bind(username)
                .fetch_optional(p)
                .await?;
            let rows = sqlx::query(&format!("{SELECT_ACCEPTANCES} WHERE p.username = $1 ORDER BY a.accepted_us, a.id"))
                .bind(username)
                .fetch_all(p)
                .await?;
            (known, rows.iter().map(acceptance).collect::<Result<Vec<_>, _>>()?)
        });
        if known.is_none() {
            return Err(StoreError::UnknownUser(username.to_string()));
        }
        Ok(rows)
    }

    /// Every acceptance recorded (of `document`, if given), oldest first: the evidence
    /// export.
    pub async fn all(&self, document: Option<&str>) -> Result<Vec<Acceptance>, StoreError> {
        with_pool!(self.store.pool(), p => {
            let rows = sqlx::query(&format!(
                "{SELECT_ACCEPTANCES} WHERE ($1 IS NULL OR a.document = $1) ORDER BY a.accepted_us, a.id"
            ))
            .bind(document)
            .fetch_all(p)
            .await?;
            rows.iter().map(acceptance).collect()
        })
    }

    /// Current people (not left) who have not accepted every one of `required` (document,
    /// version), ordered by year group then username.
    pub async fn outstanding(
        &self,
        required: &[(&str, &str)],
    ) -> Result<Vec<Outstanding>, StoreError> {
        if required.is_empty() {
            return Ok(Vec::new());
        }
        let (people, accepted, members) = with_pool!(self.store.pool(), p => {
            let people: Vec<PersonRow> = sqlx::query_as(
                "SELECT id, username, display_name, role, year_group, form FROM people \
                 WHERE left_us IS NULL ORDER BY username",
            )
            .fetch_all(p)
            .await?;
            let accepted: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT person_id, document, version FROM declaration_acceptances",
            )
            .fetch_all(p)
            .await?;
            let members: Vec<(i64, String)> = sqlx::query_as(
                "SELECT m.person_id, g.name FROM memberships m JOIN groups g ON g.id = m.group_id \
                 ORDER BY g.name",
            )
            .fetch_all(p)
            .await?;
            (people, accepted, members)
        });
        let accepted: BTreeSet<(i64, String, String)> = accepted.into_iter().collect();
        let mut groups: HashMap<i64, Vec<String>> = HashMap::new();
        for (pid, g) in members {
            groups.entry(pid).or_default().push(g);
        }
        let mut out = Vec::new();
        for (id, username, display_name, role, year_group, form) in people {
            let pending: Vec<String> = required
                .iter()
                .filter(|(doc, version)| {
                    !accepted.contains(&(id, (*doc).to_string(), (*version).to_string()))
                })
                .map(|(doc, _)| (*doc).to_string())
                .collect();
            if pending.is_empty() {
                continue;
            }
            out.push(Outstanding {
                username,
                display_name,
                role,
                year_group,
                form,
                groups: groups.remove(&id).unwrap_or_default(),
                pending,
            });
        }
        // Year 7 before Year 10 (as numbers), then people without a year (staff).
        out.sort_by_cached_key(|o| {
            let year: Option<u32> = o.year_group.as_deref().and_then(|y| {
                y.chars()
                    .filter(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .ok()
            });
            (
                year.is_none(),
                year,
                o.year_group.clone(),
                o.username.clone(),
            )
        });
        Ok(out)
    }
}

type PersonRow = (i64, String, String, String, Option<String>, Option<String>);

const SELECT_ACCEPTANCES: &str = "SELECT p.username, a.document, a.version, a.accepted_us, \
     a.workstation, a.ip, a.actor FROM declaration_acceptances a JOIN people p ON p.id = a.person_id";

fn acceptance<R: Row>(r: &R) -> Result<Acceptance, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'q> String: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> Option<String>: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> i64: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Acceptance {
        username: r.try_get("username")?,
        document: r.try_get("document")?,
        version: r.try_get("version")?,
        accepted: us_to_ts(r.try_get("accepted_us")?)?,
        workstation: r.try_get("workstation")?,
        ip: r.try_get("ip")?,
        actor: r.try_get("actor")?,
    })
}
