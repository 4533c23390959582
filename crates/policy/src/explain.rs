//! Explain mode: the same evaluation as `decide`, recording every step. The trace is
//! collected through a generic sink, so `decide` (which passes `()`) pays nothing.

use jiff::Timestamp;

use crate::decide::{Decision, RuleRef};
use crate::groups::{GroupId, GroupSet};
use crate::live::Live;
use crate::policy::Policy;
use crate::request::Request;

/// Why a rule did not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// The request's groups are not among the rule's `groups`.
    Groups,
    /// One of the request's groups is in `except_groups`.
    ExceptGroups,
    /// No category, domain or URL prefix of the rule matched.
    Site,
    /// The file type did not match `file_types`.
    FileType,
    /// Not inside any `during` period.
    NotDuring,
    /// Inside this `outside` period (index into the policy's periods).
    Outside(usize),
}

/// What lifted a matching rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiftedBy {
    TeacherOverride,
    /// An approved access request.
    Grant,
    /// The person chose "continue" on a warning page.
    Acknowledged,
}

/// One step of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceStep<'a> {
    Identity {
        groups: GroupSet,
        from_ip: bool,
    },
    Sanction {
        until: Timestamp,
    },
    /// `miss: None` and `lifted: None` means this rule decided.
    Rule {
        rule: RuleRef<'a>,
        miss: Option<Miss>,
        lifted: Option<LiftedBy>,
    },
    Default {
        group: GroupId,
        lifted: Option<LiftedBy>,
    },
}

/// Where evaluation steps go.
pub(crate) trait Trace<'a> {
    fn step(&mut self, step: TraceStep<'a>);
}

impl<'a> Trace<'a> for () {
    #[inline(always)]
    fn step(&mut self, _: TraceStep<'a>) {}
}

impl<'a> Trace<'a> for Vec<TraceStep<'a>> {
    fn step(&mut self, step: TraceStep<'a>) {
        self.push(step);
    }
}

impl Policy {
    /// Decide like [`Policy::decide`] and return every step considered.
    pub fn explain<'a>(
        &'a self,
        req: &Request<'_>,
        live: &'a Live,
        now: Timestamp,
    ) -> (Decision<'a>, Vec<TraceStep<'a>>) {
        let mut steps = Vec::new();
        let d = self.evaluate(req, live, now, &mut steps);
        (d, steps)
    }

    /// A sentence describing one step, for people reading `hallpass explain`.
    pub fn describe(&self, step: &TraceStep<'_>) -> String {
        match step {
            TraceStep::Identity { groups, from_ip } => {
                let names = self.group_names(*groups).join(", ");
                if *from_ip {
                    format!("identity: client address -> groups [{names}]")
                } else {
                    format!("identity: groups [{names}]")
                }
            }
            TraceStep::Sanction { until } => {
                format!("sanction in force until {until}: all internet access blocked")
            }
            TraceStep::Rule { rule, miss, lifted } => {
                let head = format!("rules[{}] {}", rule.index, rule.id);
                let why = match (miss, lifted) {
                    (Some(m), _) => format!("no match: {}", self.describe_miss(*m)),
                    (None, Some(LiftedBy::TeacherOverride)) => {
                        "matched, lifted by a teacher override".into()
                    }
                    (None, Some(LiftedBy::Grant)) => {
                        "matched, lifted by an approved access request".into()
                    }
                    (None, Some(LiftedBy::Acknowledged)) => {
                        "matched, warning acknowledged (\"continue\")".into()
                    }
                    (None, None) => "MATCHED: this rule decides".into(),
                };
                format!("{head}: {why}")
            }
            TraceStep::Default { group, lifted } => {
                let name = self.group_name(*group).unwrap_or("?");
                match lifted {
                    Some(_) => format!(
                        "no rule matched; default of group `{name}` lifted by an approved access request"
                    ),
                    None => format!("no rule matched; default of group `{name}` applies"),
                }
            }
        }
    }

    fn describe_miss(&self, m: Miss) -> String {
        match m {
            Miss::Groups => "not for these groups".into(),
            Miss::ExceptGroups => "an excepted group".into(),
            Miss::Site => "categories, domains and URL prefixes do not match".into(),
            Miss::FileType => "file type does not match".into(),
            Miss::NotDuring => "not during its periods".into(),
            Miss::Outside(p) => {
                let name = self.periods.get(p).map_or("?", |x| x.name.as_str());
                format!("inside period `{name}`, which it excludes")
            }
        }
    }
}
