//! The JSON bodies the exceptions API takes and the views it (and the pages) show.

use hallpass_store::exceptions::{AccessRequest, GrantRow, GrantScope, OverrideRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/requests`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequestBody {
    /// A host name (`www.example.org`) or URL (`https://www.example.org/page`).
    pub target: String,
    /// Why the site is needed (shown to the reviewer).
    pub reason: String,
}

/// `POST /api/v1/requests/{id}/approve`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// `person` (the requester), `group` or `everyone`.
    pub scope: String,
    /// The group, for scope `group`.
    pub group: Option<String>,
    /// Host or URL prefix to open; default: the request's target.
    pub target: Option<String>,
    /// RFC 3339 end, or `policy-change` (until the policy file changes; drafts the
    /// policy change to review).
    pub until: String,
}

/// `POST /api/v1/requests/{id}/deny`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyBody {
    pub reason: String,
}

/// `POST /api/v1/overrides`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOverrideBody {
    /// A group of the policy (a class, year or form group).
    pub group: String,
    /// The id of a rule marked `teacher_override`.
    pub rule: String,
    /// RFC 3339 end; default the end of the current period (lesson).
    pub until: Option<String>,
}

/// `201 {"id": ID}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Created {
    pub id: i64,
}

/// An access request as the console shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RequestView {
    pub id: i64,
    pub person: String,
    pub client_ip: String,
    pub target: String,
    pub reason: String,
    pub rule: Option<String>,
    /// For a safeguarding rule: reviewed by the DSL.
    pub safeguarding: bool,
    /// `pending`, `approved` or `denied`.
    pub status: String,
    #[schema(value_type = String)]
    pub created: jiff::Timestamp,
    pub decided_by: Option<String>,
    #[schema(value_type = Option<String>)]
    pub decided: Option<jiff::Timestamp>,
    pub decision_note: Option<String>,
    pub grant_id: Option<i64>,
    /// The policy-file change to review, for "until the policy changes".
    pub draft: Option<String>,
}

impl From<AccessRequest> for RequestView {
    fn from(r: AccessRequest) -> RequestView {
        RequestView {
            id: r.id,
            person: r.person,
            client_ip: r.client_ip,
            target: r.target,
            reason: r.reason,
            rule: r.rule,
            safeguarding: r.safeguarding,
            status: r.status,
            created: r.created,
            decided_by: r.decided_by,
            decided: r.decided,
            decision_note: r.decision_note,
            grant_id: r.grant_id,
            draft: r.draft,
        }
    }
}

/// A grant opened by an approval.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GrantView {
    pub id: i64,
    /// `person`, `group` or `everyone`.
    pub scope: String,
    pub subject: String,
    pub target: String,
    /// `None`: until the policy changes.
    #[schema(value_type = Option<String>)]
    pub until: Option<jiff::Timestamp>,
    pub request_id: Option<i64>,
    pub created_by: String,
}

impl From<GrantRow> for GrantView {
    fn from(g: GrantRow) -> GrantView {
        let (scope, subject) = match g.scope {
            GrantScope::Person(p) => ("person", p),
            GrantScope::Group(x) => ("group", x),
            GrantScope::Everyone => ("everyone", String::new()),
        };
        GrantView {
            id: g.id,
            scope: scope.into(),
            subject,
            target: g.target,
            until: g.until,
            request_id: g.request_id,
            created_by: g.created_by,
        }
    }
}

/// A teacher override as the console shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OverrideView {
    pub id: i64,
    pub group: String,
    pub rule: String,
    #[schema(value_type = String)]
    pub until: jiff::Timestamp,
    pub created_by: String,
    #[schema(value_type = String)]
    pub created: jiff::Timestamp,
}

impl From<OverrideRow> for OverrideView {
    fn from(o: OverrideRow) -> OverrideView {
        OverrideView {
            id: o.id,
            group: o.group,
            rule: o.rule,
            until: o.until,
            created_by: o.created_by,
            created: o.created,
        }
    }
}

/// A rule a teacher may lift, for the override form.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OverridableRule {
    pub id: String,
    pub document: String,
    pub clause: String,
    pub message: String,
}
