//! Access requests, approvals and teacher overrides, each behind its capability. Who may
//! grant what (the scopes table below) and where requests go (safeguarding-rule requests
//! to the DSL, the rest to ICT support) are decided here, once, for the API and the pages.

use hallpass_policy::{GroupSet, Identity, Request, Verdict};
use hallpass_store::exceptions::{AccessRequest, Approval, GrantScope, NewRequest, RequestLimit};

use super::{Guarded, group_set, split_target};
use crate::access::{Can, Role, op};
use crate::error::ApiError;

mod views;
pub use views::{
    ApproveBody, Created, DenyBody, GrantView, NewOverrideBody, NewRequestBody, OverridableRule,
    OverrideView, RequestView,
};

/// A host name or URL, checked: `host` or `host/path` (lower-case host, no scheme, no
/// port). Anything else is refused with the reason.
pub fn normalise_target(text: &str) -> Result<String, String> {
    let text = text.trim();
    let (host, path) = split_target(text);
    let bad = |c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    let labels_ok = host
        .split('.')
        .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'));
    if host.is_empty() || host.len() > 253 || host.chars().any(bad) || !labels_ok {
        return Err(format!(
            "{text:?} is not a site: give a host name (www.example.org) or a URL (https://www.example.org/page)"
        ));
    }
    if !host.contains('.') {
        return Err(format!(
            "{text:?} is not a site on the internet: a host name has a dot (www.example.org)"
        ));
    }
    match path.as_deref() {
        None | Some("/") | Some("") => Ok(host),
        Some(p) if p.chars().any(|c| c.is_control() || c.is_whitespace()) => Err(format!(
            "{text:?}: a URL has no spaces or control characters"
        )),
        Some(p) => Ok(format!("{host}{}", p.split(['?', '#']).next().unwrap_or(p))),
    }
}

/// The grant scopes each reviewing role may give: ICT support opens sites for a person, a
/// group or the school; the headteacher for a person or a group; the DSL for a person.
pub fn scopes_for(role: Option<Role>) -> &'static [&'static str] {
    match role {
        Some(Role::NetworkManager) => &["person", "group", "everyone"],
        Some(Role::Headteacher) => &["person", "group"],
        Some(Role::Dsl) => &["person"],
        _ => &[],
    }
}

/// The rule that would decide `host` for `person` now, if it blocks or warns: (id,
/// safeguarding).
fn blocking_rule(
    g: &Guarded,
    person: &hallpass_store::people::Person,
    host: &str,
) -> Option<(String, bool)> {
    let snapshot = g.engine.snapshot();
    let policy = &snapshot.policy;
    let groups: GroupSet = group_set(policy, person);
    let categories =
        hallpass_policy::CategoryMask::from_bits(snapshot.catalog.lookup_host(host).bits());
    let decision = policy.decide(
        &Request {
            identity: Identity::Groups(groups),
            person: Some(&person.username),
            host,
            path: None,
            categories,
            file_type: None,
        },
        &snapshot.live,
        g.now(),
    );
    if decision.verdict == Verdict::Allow {
        return None;
    }
    let id = decision.rule.as_ref()?.id.to_string();
    let safeguarding = policy.rule_info(&id).is_some_and(|r| r.safeguarding);
    Some((id, safeguarding))
}

async fn roster_person(
    g: &Guarded,
    username: &str,
) -> Result<hallpass_store::people::Person, ApiError> {
    g.store
        .people()
        .list()
        .await?
        .into_iter()
        .find(|p| p.username == username)
        .ok_or_else(|| ApiError::BadRequest(format!("no {username:?} in the roster")))
}

/// How a request is filed: by a signed-in account, or by the person a logon session
/// puts at the block page's client address (the portal's caller).
pub(crate) async fn file_request_as(
    g: &Guarded,
    username: &str,
    client_ip: std::net::IpAddr,
    body: &NewRequestBody,
) -> Result<i64, ApiError> {
    let target = normalise_target(&body.target).map_err(ApiError::BadRequest)?;
    let reason = body.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::BadRequest(
            "reason: say why the site is needed".into(),
        ));
    }
    if reason.chars().count() > 2000 {
        return Err(ApiError::BadRequest(
            "reason: at most 2000 characters".into(),
        ));
    }
    let person = roster_person(g, username).await?;
    let host = target.split('/').next().unwrap_or(&target);
    let rule = blocking_rule(g, &person, host);
    let id = g
        .store
        .exceptions()
        .file_request(
            &NewRequest {
                person: username,
                client_ip: &client_ip.to_string(),
                target: &target,
                reason,
                rule: rule.as_ref().map(|(id, _)| id.as_str()),
                safeguarding: rule.as_ref().is_some_and(|(_, s)| *s),
            },
            RequestLimit::default(),
            g.now(),
        )
        .await?;
    Ok(id)
}

pub async fn file_request(
    can: &Can<op::RequestAccess>,
    g: &Guarded,
    client_ip: std::net::IpAddr,
    body: &NewRequestBody,
) -> Result<i64, ApiError> {
    let username = can.caller().username().ok_or_else(|| {
        ApiError::Forbidden("a request is made by a person: sign in with an account".into())
    })?;
    file_request_as(g, username, client_ip, body).await
}

/// A reviewer's queue (ICT support: requests for ordinary rules; the DSL: those for
/// safeguarding rules; the headteacher: both), or the caller's own requests.
pub async fn list_requests(
    can: &Can<op::RequestAccess>,
    g: &Guarded,
) -> Result<Vec<RequestView>, ApiError> {
    let exceptions = g.store.exceptions();
    let rows = match (can.also::<op::ReviewRequests>(), can.caller().role()) {
        (Some(_), Some(Role::Dsl)) => exceptions.requests(None, None, Some(true), 500).await?,
        (Some(_), Some(Role::NetworkManager)) => {
            exceptions.requests(None, None, Some(false), 500).await?
        }
        (Some(_), _) => exceptions.requests(None, None, None, 500).await?,
        (None, _) => {
            let me = can.caller().username().unwrap_or("");
            exceptions.requests(None, Some(me), None, 500).await?
        }
    };
    Ok(rows.into_iter().map(RequestView::from).collect())
}

pub async fn get_request(
    can: &Can<op::RequestAccess>,
    g: &Guarded,
    id: i64,
) -> Result<RequestView, ApiError> {
    let request = g
        .store
        .exceptions()
        .request(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no access request {id}")))?;
    let own = can.caller().username() == Some(request.person.as_str());
    let reviewer = can
        .also::<op::ReviewRequests>()
        .is_some_and(|r| may_review(&r, &request).is_ok());
    if !own && !reviewer {
        // Not found rather than forbidden: whether someone else asked is not told.
        return Err(ApiError::NotFound(format!("no access request {id}")));
    }
    Ok(request.into())
}

/// Safeguarding-rule requests go to the DSL (and the headteacher), never to ICT support.
fn may_review(can: &Can<op::ReviewRequests>, request: &AccessRequest) -> Result<(), ApiError> {
    match (can.caller().role(), request.safeguarding) {
        (Some(Role::NetworkManager), true) => Err(ApiError::Forbidden(format!(
            "request {} is for a safeguarding rule: the DSL reviews it, not ICT support",
            request.id
        ))),
        (Some(Role::Dsl), false) => Err(ApiError::Forbidden(format!(
            "request {} is for an ordinary rule: ICT support reviews it",
            request.id
        ))),
        _ => Ok(()),
    }
}

async fn pending_for_review(
    can: &Can<op::ReviewRequests>,
    g: &Guarded,
    id: i64,
) -> Result<AccessRequest, ApiError> {
    let request = g
        .store
        .exceptions()
        .request(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no access request {id}")))?;
    may_review(can, &request)?;
    Ok(request)
}

pub async fn approve(
    can: &Can<op::ReviewRequests>,
    g: &Guarded,
    id: i64,
    body: &ApproveBody,
) -> Result<GrantView, ApiError> {
    let request = pending_for_review(can, g, id).await?;
    if request.safeguarding {
        return Err(ApiError::BadRequest(format!(
            "request {id} is for the safeguarding rule {}: no grant lifts a safeguarding rule; \
             deny it, or change the policy file if the block is wrong",
            request.rule.as_deref().unwrap_or("?")
        )));
    }
    let allowed = scopes_for(can.caller().role());
    if !allowed.contains(&body.scope.as_str()) {
        return Err(ApiError::Forbidden(format!(
            "scope {:?}: your role may grant {}",
            body.scope,
            if allowed.is_empty() {
                "nothing".to_string()
            } else {
                allowed.join(", ")
            }
        )));
    }
    let policy = g.engine.snapshot().policy.clone();
    let scope = match body.scope.as_str() {
        "person" => GrantScope::Person(request.person.clone()),
        "group" => {
            let group = body.group.as_deref().map(str::trim).unwrap_or("");
            if policy.group_id(group).is_none() {
                return Err(ApiError::BadRequest(format!(
                    "group: {group:?} is not a group of the policy (groups: {})",
                    policy.all_groups().collect::<Vec<_>>().join(", ")
                )));
            }
            GrantScope::Group(group.to_string())
        }
        _ => GrantScope::Everyone,
    };
    let target = match body.target.as_deref() {
        Some(t) => normalise_target(t).map_err(|e| ApiError::BadRequest(format!("target: {e}")))?,
        None => request.target.clone(),
    };
    let now = g.now();
    let (until, draft) = if body.until.trim() == "policy-change" {
        (None, Some(draft_rule(&scope, &target, id)))
    } else {
        let until = policy
            .parse_time(body.until.trim())
            .map_err(|e| ApiError::BadRequest(format!("until: {e}, or \"policy-change\"")))?;
        if until <= now {
            return Err(ApiError::BadRequest(format!(
                "until: {until} is not in the future"
            )));
        }
        (Some(until), None)
    };
    let actor = can.caller().username().unwrap_or("token");
    let grant = g
        .store
        .exceptions()
        .approve(
            id,
            &Approval {
                scope,
                target,
                until,
                draft,
            },
            actor,
            now,
        )
        .await?;
    let lasts = match grant.until {
        Some(until) => format!(
            "until {}",
            until
                .to_zoned(policy.timezone().clone())
                .strftime("%A %-d %B %Y, %H:%M")
        ),
        None => "until the school's policy changes".to_string(),
    };
    let text = format!(
        "Your request to use {} was approved by {actor}. It is open {lasts}.\n\n         Reference: access request {id}.",
        grant.target
    );
    notify_requester(g, &request, "approved", &text).await;
    Ok(grant.into())
}

/// Email the requester the outcome, when notifications are on and the roster has their
/// address. The decision stands whatever happens here: a failure is logged, not returned.
async fn notify_requester(g: &Guarded, request: &AccessRequest, outcome: &str, text: &str) {
    if !g.config.notify_requesters {
        return;
    }
    let queued = async {
        let Some(email) = g.store.people().email_of(&request.person).await? else {
            return Ok(None);
        };
        let subject = format!("Your access request for {} was {outcome}", request.target);
        g.store
            .outbox()
            .enqueue(&email, &subject, text, Some(&request.person), g.now())
            .await
            .map(Some)
    };
    match queued.await {
        Ok(_) => {}
        Err::<_, hallpass_store::StoreError>(error) => tracing::error!(
            request = request.id,
            "could not queue the email telling {} the outcome: {error}",
            request.person
        ),
    }
}

/// The policy-file change an approval "until the policy changes" asks for: an allow rule
/// to review and place before the rule that blocked the site.
fn draft_rule(scope: &GrantScope, target: &str, request: i64) -> String {
    let (host, path) = target
        .split_once('/')
        .map_or((target, None), |(h, p)| (h, Some(p)));
    let slug: String = host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut draft = format!(
        "# Approved access request {request}: review, then place before the rule that blocked it.\n\
         [[rules]]\nid = \"allow-{slug}\"\naction = \"allow\"\n"
    );
    match path {
        None => draft.push_str(&format!("domains = [\"{host}\"]\n")),
        Some(p) => draft.push_str(&format!("urls = [\"{host}/{p}\"]\n")),
    }
    match scope {
        GrantScope::Group(group) => draft.push_str(&format!("groups = [\"{group}\"]\n")),
        GrantScope::Person(person) => draft.push_str(&format!(
            "# for {person} only: make a group for them, or open it for their group\n"
        )),
        GrantScope::Everyone => {}
    }
    draft
}

pub async fn deny(
    can: &Can<op::ReviewRequests>,
    g: &Guarded,
    id: i64,
    body: &DenyBody,
) -> Result<(), ApiError> {
    let request = pending_for_review(can, g, id).await?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "reason: say why, for the person who asked".into(),
        ));
    }
    let actor = can.caller().username().unwrap_or("token");
    g.store
        .exceptions()
        .deny(id, body.reason.trim(), actor, g.now())
        .await?;
    let text = format!(
        "Your request to use {} was not approved by {actor}:\n\n{}\n\nReference: access request {id}.",
        request.target,
        body.reason.trim()
    );
    notify_requester(g, &request, "denied", &text).await;
    Ok(())
}

pub fn overridable_rules(_: &Can<op::OverrideRules>, g: &Guarded) -> Vec<OverridableRule> {
    let snapshot = g.engine.snapshot();
    snapshot
        .policy
        .overridable_rules()
        .map(|r| OverridableRule {
            id: r.id.into(),
            document: r.document.into(),
            clause: r.clause.into(),
            message: r.message.into(),
        })
        .collect()
}

pub async fn create_override(
    can: &Can<op::OverrideRules>,
    g: &Guarded,
    body: &NewOverrideBody,
) -> Result<OverrideView, ApiError> {
    let snapshot = g.engine.snapshot();
    let policy = &snapshot.policy;
    let rule = policy.rule_info(body.rule.trim()).ok_or_else(|| {
        ApiError::BadRequest(format!("rule: the policy has no rule {:?}", body.rule))
    })?;
    if !rule.teacher_override || rule.action == Verdict::Allow {
        return Err(ApiError::Forbidden(format!(
            "rule {} is not marked teacher_override: only the policy file can lift it",
            rule.id
        )));
    }
    let group = body.group.trim();
    if policy.group_id(group).is_none() {
        return Err(ApiError::BadRequest(format!(
            "group: {group:?} is not a group of the policy (groups: {})",
            policy.all_groups().collect::<Vec<_>>().join(", ")
        )));
    }
    let now = g.now();
    let lesson_end = policy.current_period_end(now);
    let until = match body.until.as_deref().map(str::trim) {
        None | Some("") => lesson_end.map(|(_, end)| end).ok_or_else(|| {
            ApiError::BadRequest(
                "until: no period is in progress, so \"this lesson\" has no end; give a time"
                    .into(),
            )
        })?,
        Some(text) => policy
            .parse_time(text)
            .map_err(|e| ApiError::BadRequest(format!("until: {e}")))?,
    };
    if until <= now {
        return Err(ApiError::BadRequest(format!(
            "until: {until} is not in the future"
        )));
    }
    // An override is for a lesson: never past the end of the current one, and at most a
    // school day outside periods (an after-school club).
    let latest = lesson_end
        .map(|(_, end)| end)
        .unwrap_or_else(|| now + jiff::SignedDuration::from_hours(8));
    if until > latest {
        return Err(ApiError::BadRequest(format!(
            "until: {until} is after the end of the lesson ({latest}); an override lasts a lesson at most"
        )));
    }
    let rule_id = rule.id.to_string();
    drop(snapshot);
    let actor = can.caller().username().unwrap_or("token");
    let row = g
        .store
        .exceptions()
        .add_override(group, &rule_id, until, actor, now)
        .await?;
    Ok(row.into())
}

/// A teacher's own overrides; heads of year and ICT support see all in force.
pub async fn list_overrides(
    can: &Can<op::OverrideRules>,
    g: &Guarded,
) -> Result<Vec<OverrideView>, ApiError> {
    let rows = g.store.exceptions().overrides(g.now(), false).await?;
    let sees_all = matches!(
        can.caller().role(),
        Some(Role::HeadOfYear | Role::NetworkManager) | None
    );
    let me = can.caller().username().unwrap_or("");
    Ok(rows
        .into_iter()
        .filter(|o| sees_all || o.created_by == me)
        .map(OverrideView::from)
        .collect())
}

pub async fn revoke_override(
    can: &Can<op::OverrideRules>,
    g: &Guarded,
    id: i64,
) -> Result<(), ApiError> {
    let exceptions = g.store.exceptions();
    let row = exceptions
        .override_by_id(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no override {id}")))?;
    let me = can.caller().username().unwrap_or("token");
    let sees_all = matches!(
        can.caller().role(),
        Some(Role::HeadOfYear | Role::NetworkManager) | None
    );
    if !sees_all && row.created_by != me {
        return Err(ApiError::Forbidden(format!(
            "override {id} was made by {}: ask them, a head of year or ICT support",
            row.created_by
        )));
    }
    if !exceptions.revoke_override(id, me, g.now()).await? {
        return Err(ApiError::BadRequest(format!(
            "override {id} has already ended"
        )));
    }
    Ok(())
}

/// Grants in force (for the reviewers' page).
pub async fn open_grants(
    _: &Can<op::ReviewRequests>,
    g: &Guarded,
) -> Result<Vec<GrantView>, ApiError> {
    Ok(g.store
        .exceptions()
        .grants(g.now(), false)
        .await?
        .into_iter()
        .map(GrantView::from)
        .collect())
}

/// The groups an approval or an override may name (the policy's), for the forms.
pub fn policy_groups(g: &Guarded) -> Vec<String> {
    g.engine
        .snapshot()
        .policy
        .all_groups()
        .map(str::to_string)
        .collect()
}

/// The period in progress ("this lesson"), for the override form.
pub struct Lesson {
    pub name: String,
    pub end: jiff::Timestamp,
    /// The end as the school's clocks show it (`14:20`).
    pub ends_at: String,
}

pub fn current_lesson(g: &Guarded) -> Option<Lesson> {
    let snapshot = g.engine.snapshot();
    let policy = &snapshot.policy;
    policy
        .current_period_end(g.now())
        .map(|(name, end)| Lesson {
            name: name.to_string(),
            end,
            ends_at: end
                .to_zoned(policy.timezone().clone())
                .strftime("%H:%M")
                .to_string(),
        })
}
