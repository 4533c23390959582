//! ACCESS CONTROL: the whole role matrix, in this one file.
//!
//! [`MATRIX`] says which role may perform which [`Op`]. A handler that performs an
//! operation takes a [`Can<O>`] argument; `Can` has private fields, so the only way to
//! obtain one is its extractor below, which checks the signed-in caller against the matrix
//! (or a bearer token against its scopes). The store operations in `ops` each take a
//! `&Can<O>`, so code without the capability cannot name the operation: the compiler
//! enforces the matrix. The one bypass (signing in, before there is a caller) is
//! `ops::Guarded::store_for_authentication_only`.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Serialize;

use crate::error::ApiError;

/// The console roles the policy names (DESIGN.md, "Who uses it").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// ICT support.
    NetworkManager,
    /// Designated safeguarding lead.
    Dsl,
    /// Scoped to their year groups.
    HeadOfYear,
    Headteacher,
    /// Data protection officer.
    Dpo,
    Teacher,
    Governor,
    Student,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::NetworkManager,
        Role::Dsl,
        Role::HeadOfYear,
        Role::Headteacher,
        Role::Dpo,
        Role::Teacher,
        Role::Governor,
        Role::Student,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::NetworkManager => "network_manager",
            Role::Dsl => "dsl",
            Role::HeadOfYear => "head_of_year",
            Role::Headteacher => "headteacher",
            Role::Dpo => "dpo",
            Role::Teacher => "teacher",
            Role::Governor => "governor",
            Role::Student => "student",
        }
    }

    /// The names of every role, for error messages and `--help`.
    pub fn names() -> String {
        Role::ALL.map(Role::as_str).join(", ")
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?} (roles: {})", Role::names()))
    }
}

/// Every operation the console performs on someone's behalf. The names are also the
/// scopes of API tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Op {
    /// Aggregate counts and charts: no person named.
    ViewDashboard,
    /// Search everyone's recorded events (metadata). Head of year: their years only.
    SearchActivity,
    /// The caller's own recorded events.
    ViewOwnActivity,
    /// The roster, groups and logon sessions. Head of year: their years only.
    ViewPeople,
    /// The live policy, readably.
    ViewPolicy,
    /// What the policy decides for a group/person, target and time, and why.
    Explain,
    /// The audit log and its chain check.
    ViewAudit,
    /// Ask for a blocked site to be opened (and see one's own requests).
    RequestAccess,
    /// The queue of access requests: approve (within the scopes the role may grant) or
    /// deny. Safeguarding-rule requests reach the DSL only, the others ICT support.
    ReviewRequests,
    /// Lift a `teacher_override` rule for a class for a lesson; list and revoke. A
    /// teacher sees and revokes their own; heads of year and network managers all.
    OverrideRules,
    /// Record logons and logoffs (who is at which address), from logon scripts and
    /// agents with a `sessions` token; list who is logged on where.
    LogonSessions,
    /// Alerts routed to the caller's role, and moving them on (acknowledge, escalate,
    /// close with an outcome): ICT support the conduct alerts about pupils (a shared
    /// log-in), the DSL safeguarding ones, the headteacher staff cases.
    HandleAlerts,
    /// Withdraw a pupil's internet, email or network access, or one site, for a period
    /// (heads of year: their years; staff only by the headteacher); list and lift them.
    ImposeSanctions,
    /// Incidents (cases) and their chronology: heads of year their years, the DSL all
    /// pupils, the headteacher staff cases too.
    ManageIncidents,
    /// Authorise an investigation of one person (the headteacher; the DSL for a
    /// child-protection concern about a pupil): the only way to read content.
    AuthoriseInvestigations,
    /// Read the content of a person's activity (search terms, message text, full URLs),
    /// only inside an open investigation of that person the reader authorised.
    ReadContent,
    /// See and accept one's own pending acceptable-use declarations (000 §14). A
    /// `sessions` token (logon scripts) may do it for anyone: it is implied by that scope.
    AnswerDeclarations,
    /// Who has not accepted the current declarations, by group and year, and the export.
    /// Head of year: their years only.
    ViewDeclarations,
    /// Issue a guest code for a visitor, who types it on the captive portal (the block
    /// page) to use the network; list the codes still valid (one's own; ICT support all).
    IssueGuestCodes,
    /// The email filter's held messages (envelope and why, never the content): release
    /// one (the mail service delivers it once) or delete it, with a reason; and the
    /// senders blocked from the console (add, lift). All audited.
    ManageQuarantine,
}

impl Op {
    pub const ALL: [Op; 20] = [
        Op::ViewDashboard,
        Op::SearchActivity,
        Op::ViewOwnActivity,
        Op::ViewPeople,
        Op::ViewPolicy,
        Op::Explain,
        Op::ViewAudit,
        Op::RequestAccess,
        Op::ReviewRequests,
        Op::OverrideRules,
        Op::LogonSessions,
        Op::HandleAlerts,
        Op::ImposeSanctions,
        Op::ManageIncidents,
        Op::AuthoriseInvestigations,
        Op::ReadContent,
        Op::AnswerDeclarations,
        Op::ViewDeclarations,
        Op::IssueGuestCodes,
        Op::ManageQuarantine,
    ];

    /// The scope name an API token is granted.
    pub fn name(self) -> &'static str {
        match self {
            Op::ViewDashboard => "dashboard.view",
            Op::SearchActivity => "events.search",
            Op::ViewOwnActivity => "events.own",
            Op::ViewPeople => "people.view",
            Op::ViewPolicy => "policy.view",
            Op::Explain => "policy.explain",
            Op::ViewAudit => "audit.view",
            Op::RequestAccess => "requests.file",
            Op::ReviewRequests => "requests.review",
            Op::OverrideRules => "overrides.manage",
            Op::LogonSessions => "sessions",
            Op::HandleAlerts => "alerts.handle",
            Op::ImposeSanctions => "sanctions.manage",
            Op::ManageIncidents => "incidents.manage",
            Op::AuthoriseInvestigations => "investigations.authorise",
            Op::ReadContent => "content.read",
            Op::AnswerDeclarations => "declarations",
            Op::ViewDeclarations => "declarations.view",
            Op::IssueGuestCodes => "guests.issue",
            Op::ManageQuarantine => "mail.quarantine",
        }
    }

    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    pub fn names() -> String {
        Op::ALL.map(Op::name).join(", ")
    }
}

use Role::{Dpo, Dsl, Governor, HeadOfYear, Headteacher, NetworkManager, Student, Teacher};

/// THE MATRIX: operation -> the roles that may perform it. Nothing else grants access.
/// * Governors see aggregates only (the dashboard and the policy), never a person.
/// * Teachers never see another person's activity: only their own, and the policy.
/// * Students see only their own records and the policy they are under.
pub const MATRIX: &[(Op, &[Role])] = &[
    (
        Op::ViewDashboard,
        &[
            NetworkManager,
            Dsl,
            HeadOfYear,
            Headteacher,
            Dpo,
            Teacher,
            Governor,
        ],
    ),
    (Op::SearchActivity, &[NetworkManager, Dsl, HeadOfYear]),
    (
        Op::ViewOwnActivity,
        &[
            NetworkManager,
            Dsl,
            HeadOfYear,
            Headteacher,
            Dpo,
            Teacher,
            Student,
        ],
    ),
    (
        Op::ViewPeople,
        &[NetworkManager, Dsl, HeadOfYear, Headteacher, Dpo],
    ),
    (
        Op::ViewPolicy,
        &[
            NetworkManager,
            Dsl,
            HeadOfYear,
            Headteacher,
            Dpo,
            Teacher,
            Governor,
            Student,
        ],
    ),
    (
        Op::Explain,
        &[NetworkManager, Dsl, HeadOfYear, Headteacher, Dpo, Teacher],
    ),
    (Op::ViewAudit, &[NetworkManager, Headteacher, Dpo]),
    (
        Op::RequestAccess,
        &[
            NetworkManager,
            Dsl,
            HeadOfYear,
            Headteacher,
            Dpo,
            Teacher,
            Governor,
            Student,
        ],
    ),
    (Op::ReviewRequests, &[NetworkManager, Dsl, Headteacher]),
    (Op::OverrideRules, &[NetworkManager, HeadOfYear, Teacher]),
    (Op::LogonSessions, &[NetworkManager]),
    (
        Op::HandleAlerts,
        &[NetworkManager, Dsl, HeadOfYear, Headteacher],
    ),
    (
        Op::ImposeSanctions,
        &[NetworkManager, Dsl, HeadOfYear, Headteacher],
    ),
    (Op::ManageIncidents, &[Dsl, HeadOfYear, Headteacher]),
    (Op::AuthoriseInvestigations, &[Dsl, Headteacher]),
    (Op::ReadContent, &[Dsl, Headteacher]),
    // Everyone answers their own declaration; nobody answers another's in the console.
    (
        Op::AnswerDeclarations,
        &[
            NetworkManager,
            Dsl,
            HeadOfYear,
            Headteacher,
            Dpo,
            Teacher,
            Governor,
            Student,
        ],
    ),
    (
        Op::ViewDeclarations,
        &[NetworkManager, Dsl, HeadOfYear, Headteacher],
    ),
    // Staff receive visitors; governors and students do not issue codes.
    (
        Op::IssueGuestCodes,
        &[NetworkManager, Dsl, HeadOfYear, Headteacher, Dpo, Teacher],
    ),
    // ICT support runs the mail filter; the DSL sees what was held for safeguarding.
    (Op::ManageQuarantine, &[NetworkManager, Dsl]),
];

/// Scopes that imply another operation for a token: the logon script that records a
/// session (`sessions`) also shows the declaration at logon and records the answer.
const IMPLIED_BY_SCOPE: &[(Op, Op)] = &[(Op::AnswerDeclarations, Op::LogonSessions)];

/// Whether a token with `scopes` may perform `op`.
fn token_allows(scopes: &[String], op: Op) -> bool {
    scopes.iter().any(|s| {
        s == op.name()
            || IMPLIED_BY_SCOPE
                .iter()
                .any(|(implied, by)| *implied == op && s == by.name())
    })
}

/// Whether the matrix lets `role` perform `op`.
pub fn role_allows(role: Role, op: Op) -> bool {
    MATRIX
        .iter()
        .any(|(o, roles)| *o == op && roles.contains(&role))
}

/// Who is calling: a signed-in account, or a machine with an API token.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Principal {
    Account {
        username: String,
        display_name: String,
        role: Role,
        /// A head of year's year groups.
        years: Vec<String>,
    },
    Token {
        name: String,
        scopes: Vec<String>,
    },
}

/// The authenticated caller of one request (put in the request's extensions by the
/// authentication middleware).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The browser session, when signed in with a cookie.
    pub session: Option<SessionRef>,
}

/// The parts of a browser session a handler needs.
#[derive(Debug, Clone)]
pub struct SessionRef {
    pub secret_hash: String,
    pub csrf_token: String,
}

impl Caller {
    pub fn may(&self, op: Op) -> bool {
        match &self.principal {
            Principal::Account { role, .. } => role_allows(*role, op),
            Principal::Token { scopes, .. } => token_allows(scopes, op),
        }
    }

    /// The name audit entries record.
    pub fn actor(&self) -> String {
        match &self.principal {
            Principal::Account { username, .. } => username.clone(),
            Principal::Token { name, .. } => format!("token:{name}"),
        }
    }

    pub fn role(&self) -> Option<Role> {
        match &self.principal {
            Principal::Account { role, .. } => Some(*role),
            Principal::Token { .. } => None,
        }
    }

    /// The person behind the caller (tokens have none).
    pub fn username(&self) -> Option<&str> {
        match &self.principal {
            Principal::Account { username, .. } => Some(username),
            Principal::Token { .. } => None,
        }
    }

    /// The year groups a head of year is limited to; `None` means no year limit.
    pub fn year_scope(&self) -> Option<&[String]> {
        match &self.principal {
            Principal::Account {
                role: Role::HeadOfYear,
                years,
                ..
            } => Some(years),
            _ => None,
        }
    }

    /// Every operation this caller may perform (for navigation and `/me`).
    pub fn operations(&self) -> Vec<Op> {
        Op::ALL.into_iter().filter(|op| self.may(*op)).collect()
    }
}

/// Marker types, one per [`Op`], for `Can<O>`.
pub mod op {
    use super::Op;

    /// Ties a marker type to its operation.
    pub trait Operation: Send + Sync + 'static {
        const OP: Op;
    }

    macro_rules! ops {
        ($($name:ident),*) => {$(
            #[derive(Debug)]
            pub struct $name;
            impl Operation for $name {
                const OP: Op = Op::$name;
            }
        )*};
    }
    ops!(
        ViewDashboard,
        SearchActivity,
        ViewOwnActivity,
        ViewPeople,
        ViewPolicy,
        Explain,
        ViewAudit,
        RequestAccess,
        ReviewRequests,
        OverrideRules,
        HandleAlerts,
        ImposeSanctions,
        ManageIncidents,
        AuthoriseInvestigations,
        ReadContent,
        LogonSessions,
        AnswerDeclarations,
        ViewDeclarations,
        IssueGuestCodes,
        ManageQuarantine
    );
}

use op::Operation;

/// The capability to perform `O`, held by a caller the matrix allows. Fields are private:
/// only the extractor below creates one.
#[derive(Debug)]
pub struct Can<O: Operation> {
    caller: Caller,
    _op: PhantomData<O>,
}

impl<O: Operation> Can<O> {
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The same caller's capability for another operation, if the matrix (or the
    /// token's scopes) allow it: for a handler whose answer widens with the role (a
    /// requester sees their own requests, a reviewer the queue).
    pub fn also<P: Operation>(&self) -> Option<Can<P>> {
        self.caller.may(P::OP).then(|| Can {
            caller: self.caller.clone(),
            _op: PhantomData,
        })
    }
}

impl<S: Send + Sync, O: Operation> FromRequestParts<S> for Can<O> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthenticated)?;
        if !caller.may(O::OP) {
            let who = match caller.role() {
                Some(role) => format!("the {role} role"),
                None => "this token's scopes".to_string(),
            };
            return Err(ApiError::Forbidden(format!(
                "{who} may not perform {}",
                O::OP.name()
            )));
        }
        Ok(Can {
            caller,
            _op: PhantomData,
        })
    }
}

/// Any signed-in caller (for `/me` and sign-out, which every role may use).
pub struct SignedIn(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .map(SignedIn)
            .ok_or(ApiError::Unauthenticated)
    }
}
