//! Live exceptions, changed by people at any moment: teacher overrides, approved access
//! requests (grants) and sanctions. Passed to every decision; never stored in the policy.

use jiff::Timestamp;

use crate::groups::GroupId;

/// Whom a grant or sanction is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Group(GroupId),
    Person(String),
    /// Every request (a grant for the whole school).
    Everyone,
}

/// A teacher's override: lifts rules marked `teacher_override = true` for one group
/// and one category or domain until `until` (typically the end of the lesson).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub group: GroupId,
    pub target: OverrideTarget,
    pub until: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideTarget {
    Category(u8),
    /// Matches the domain and its subdomains.
    Domain(String),
    /// One rule, by its id: lifted wherever it would decide (only if it is marked
    /// `teacher_override`).
    Rule(String),
}

/// An approved access request: lifts block/warn rules (except safeguarding ones) and a
/// blocking default for one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub subject: Subject,
    pub domain: String,
    pub until: Timestamp,
}

/// A sanction such as "internet access suspended": blocks everything for the subject,
/// or one site ("access to particular social media websites may be withdrawn", WCS 8.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanction {
    pub subject: Subject,
    /// `Some`: only this domain and its subdomains; `None`: everything.
    pub domain: Option<String>,
    pub until: Timestamp,
    pub document: String,
    pub clause: String,
    pub message: String,
}

/// Exceptions in force, maintained by the people using the console.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Live {
    pub overrides: Vec<Override>,
    pub grants: Vec<Grant>,
    pub sanctions: Vec<Sanction>,
    /// "Continue" on a warning page: lifts warn rules (never blocks) for the subject and
    /// domain until `until`.
    pub acknowledged: Vec<Grant>,
    /// Email sanctions: `decide()` ignores them (they are not about the web); the mail
    /// filter refuses the person's mail while one is in force.
    pub email_sanctions: Vec<Sanction>,
}

impl Live {
    /// The email sanction in force on `person` at `now`, if any.
    pub fn email_sanction(&self, person: &str, now: jiff::Timestamp) -> Option<&Sanction> {
        self.email_sanctions
            .iter()
            .find(|s| now < s.until && matches!(&s.subject, Subject::Person(p) if p == person))
    }

    pub const fn none() -> Self {
        Live {
            overrides: Vec::new(),
            grants: Vec::new(),
            sanctions: Vec::new(),
            acknowledged: Vec::new(),
            email_sanctions: Vec::new(),
        }
    }
}
