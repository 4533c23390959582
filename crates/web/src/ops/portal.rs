//! What the block page reads and writes. Its caller is not an account but an address: the
//! person a logon session puts there (as the DNS filter sees it), or nobody. So these
//! functions take a [`PortalClient`], which only [`identify`] makes, and never show
//! anything of anyone else: a client sees the decision for itself and its own requests.

use std::net::IpAddr;
use std::sync::Arc;

use hallpass_policy::Verdict;
use hallpass_store::exceptions::AccessRequest;

use super::Guarded;
use super::exceptions::{NewRequestBody, file_request_as, normalise_target};
use crate::error::ApiError;

/// How long "continue" on a warning lets the person reach the site.
pub const WARN_ACKNOWLEDGED_FOR: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

/// How far back the page looks for the filter's recorded decision.
const DECISION_LOOKBACK: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// The block page's caller: an address and the person a logon session puts there.
pub struct PortalClient {
    pub(crate) ip: IpAddr,
    pub(crate) person: Option<Arc<str>>,
}

impl PortalClient {
    /// The client just signed in on the captive portal, before the engine's snapshot
    /// has their session.
    pub(crate) fn signed_in(ip: IpAddr, username: &str) -> PortalClient {
        PortalClient {
            ip,
            person: Some(Arc::from(username)),
        }
    }
}

/// The client at `ip`, as the DNS filter identifies it.
pub fn identify(g: &Guarded, ip: IpAddr) -> PortalClient {
    let who = g.engine.snapshot().identify(ip);
    PortalClient {
        ip,
        person: who.person.map(|p| Arc::clone(&p.username)),
    }
}

/// The declarations the person at this address has still to accept (none for an
/// address nobody is logged on at). Read from the store, so the page is right the moment
/// an acceptance is recorded, before the engine's next snapshot.
pub async fn pending_declarations(
    g: &Guarded,
    client: &PortalClient,
) -> Result<Vec<super::declarations::PendingDeclaration>, ApiError> {
    match &client.person {
        Some(person) => match super::declarations::pending_for(g, person).await {
            // The person was removed since the snapshot: nothing of theirs to show.
            Err(ApiError::NotFound(_)) => Ok(Vec::new()),
            other => other,
        },
        None => Ok(Vec::new()),
    }
}

/// The person at this address accepts a declaration on the block page (recorded with
/// the address; the person is the actor, as they clicked it themselves).
pub async fn accept_declaration(
    g: &Guarded,
    client: &PortalClient,
    document: &str,
    version: &str,
) -> Result<(), ApiError> {
    let Some(person) = &client.person else {
        return Err(ApiError::Forbidden(
            "nobody is signed in at this device: sign in first".into(),
        ));
    };
    super::declarations::record(g, person, person, document, version, None, Some(client.ip))
        .await
        .map(|_| ())
}

/// The workstation name of the captive portal's logon sessions (they end after
/// `WebConfig::portal_sign_in`).
pub const PORTAL_WORKSTATION: &str = "captive portal";

/// What a captive-portal sign-in gives: who, and until when.
pub struct PortalSignIn {
    pub username: String,
    pub until: jiff::Timestamp,
}

/// Signs the client in on the captive portal with a console account (the console's
/// lockouts and address limit apply) or a guest code, and starts a logon session for
/// that person at the client's address for the configured time.
pub async fn sign_in(
    g: &Guarded,
    client: &PortalClient,
    username: &str,
    password: &str,
    code: &str,
) -> Result<PortalSignIn, ApiError> {
    // A device someone is signed in at (a workstation's logon) is not taken over here.
    if let Some(person) = &client.person {
        return Err(ApiError::Forbidden(format!(
            "this device is already signed in as {person}: log off first"
        )));
    }
    let ip = client.ip.to_string();
    let username = if !code.trim().is_empty() {
        redeem_code(g, &ip, code).await?
    } else {
        let username = super::sessions::bare_username(username);
        if username.is_empty() || password.is_empty() {
            return Err(ApiError::BadRequest(
                "give your username and password, or a guest code".into(),
            ));
        }
        crate::auth::check_credentials(g, username, password, Some(&ip))
            .await?
            .username
    };
    let now = g.now();
    g.store
        .sessions()
        .start(
            "portal",
            &username,
            client.ip,
            Some(PORTAL_WORKSTATION),
            now,
        )
        .await?;
    let lasts = jiff::SignedDuration::try_from(g.config.portal_sign_in).unwrap_or_default();
    Ok(PortalSignIn {
        username,
        until: now + lasts,
    })
}

/// The guest a code belongs to. A wrong code counts towards the address's limit of
/// failed sign-ins, as a wrong password does, so codes cannot be guessed.
async fn redeem_code(g: &Guarded, ip: &str, code: &str) -> Result<String, ApiError> {
    let store = g.store_for_authentication_only();
    let now = g.now();
    let window = jiff::SignedDuration::try_from(g.config.lockout_window).unwrap_or_default();
    let ip_key = format!("ip:{ip}");
    let (failures, _) = store
        .accounts()
        .failures_since(&ip_key, now - window)
        .await?;
    if failures >= g.config.ip_failures {
        return Err(ApiError::TooManyAttempts(
            "too many failed sign-ins from this address: try again later".into(),
        ));
    }
    let hash = crate::password::secret_hash(&crate::password::normalise_guest_code(code));
    match g.store.guests().redeem(&hash, now).await? {
        Some(username) => Ok(username),
        None => {
            store.accounts().record_failure(&ip_key, now).await?;
            store
                .audit()
                .append(
                    "portal",
                    "guest.refused",
                    ip,
                    &serde_json::json!({ "ip": ip, "reason": "unknown or expired code" }),
                    now,
                )
                .await?;
            Err(ApiError::WrongCredentials)
        }
    }
}

/// What the page shows for one site.
pub struct SiteView {
    pub school: String,
    pub verdict: Verdict,
    pub message: String,
    pub document: String,
    pub clause: String,
    pub categories: Vec<String>,
    /// The client has no person and the policy's unidentified group decides.
    pub unidentified: bool,
    /// A sanction in force: (until, set by).
    pub suspended: Option<(String, String)>,
    /// A safeguarding rule decided: requests go to the DSL.
    pub safeguarding: bool,
    /// The id of the filter's recorded decision for this client and site.
    pub reference: Option<i64>,
    /// The client's own requests for this site, newest first.
    pub requests: Vec<AccessRequest>,
}

/// The decision for `site` from `client`, with the filter's recorded reference.
pub async fn view(g: &Guarded, client: &PortalClient, site: &str) -> Result<SiteView, ApiError> {
    let now = g.now();
    let (mut view, suspended_by) = {
        let snapshot = g.engine.snapshot();
        let host = site.split('/').next().unwrap_or(site);
        let decided = snapshot.decide_host(client.ip, host, now);
        let d = &decided.decision;
        let rule = d
            .rule
            .as_ref()
            .and_then(|r| snapshot.policy.rule_info(r.id));
        let document = d
            .document
            .and_then(|id| snapshot.policy.document(id))
            .map_or_else(
                || d.document.unwrap_or("").to_string(),
                |doc| doc.title.clone(),
            );
        let sanction = snapshot.live.sanctions.iter().find(|s| {
            now < s.until
                && match &s.subject {
                    hallpass_policy::Subject::Person(p) => {
                        client.person.as_deref() == Some(p.as_str())
                    }
                    hallpass_policy::Subject::Group(g) => decided.who.groups.contains(*g),
                    hallpass_policy::Subject::Everyone => true,
                }
        });
        let view = SiteView {
            school: snapshot.policy.school_name().to_string(),
            verdict: d.verdict,
            message: d.message.to_string(),
            document,
            clause: d.clause.unwrap_or("").to_string(),
            categories: snapshot.category_names(&decided.categories),
            unidentified: decided.who.person.is_none()
                && decided.who.groups == snapshot.policy.unidentified_groups(),
            suspended: None,
            safeguarding: rule.is_some_and(|r| r.safeguarding),
            reference: None,
            requests: Vec::new(),
        };
        (
            view,
            sanction.map(|s| (s.until.to_string(), s.message.clone())),
        )
    };
    view.suspended = suspended_by;
    let exceptions = g.store.exceptions();
    view.reference = exceptions
        .latest_decision(&client.ip.to_string(), site, now - DECISION_LOOKBACK)
        .await?
        .map(|d| d.id);
    if let Some(person) = &client.person {
        view.requests = exceptions
            .requests(None, Some(person), None, 20)
            .await?
            .into_iter()
            .filter(|r| r.target.split('/').next() == Some(site.split('/').next().unwrap_or(site)))
            .collect();
    }
    Ok(view)
}

/// A request from the block page, in the name of the person at the client's address.
pub async fn file_request(
    g: &Guarded,
    client: &PortalClient,
    body: &NewRequestBody,
) -> Result<i64, ApiError> {
    let person = client.person.as_deref().ok_or_else(|| {
        ApiError::Forbidden(
            "this device is not signed in: sign in to a school computer to request access".into(),
        )
    })?;
    file_request_as(g, person, client.ip, body).await
}

/// "Continue" on a warning: the person may reach `site` for [`WARN_ACKNOWLEDGED_FOR`].
/// Only a warning can be acknowledged; a block cannot.
pub async fn acknowledge(
    g: &Guarded,
    client: &PortalClient,
    site: &str,
) -> Result<jiff::Timestamp, ApiError> {
    let site = normalise_target(site).map_err(ApiError::BadRequest)?;
    let person = client
        .person
        .as_deref()
        .ok_or_else(|| ApiError::Forbidden("this device is not signed in: sign in first".into()))?;
    let now = g.now();
    let verdict = g
        .engine
        .snapshot()
        .decide_host(client.ip, &site, now)
        .decision
        .verdict;
    if verdict != Verdict::Warn {
        return Err(ApiError::BadRequest(format!(
            "{site} is not a warning for you now, so there is nothing to continue past"
        )));
    }
    let until = now + WARN_ACKNOWLEDGED_FOR;
    g.store
        .exceptions()
        .acknowledge(person, &site, until, now)
        .await?;
    Ok(until)
}
