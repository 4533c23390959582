//! The decision: first matching rule wins, after live sanctions, and with teacher
//! overrides and approved access requests able to lift the rules they are allowed to.
//! `decide` allocates nothing: hosts are lower-cased on the stack, periods are
//! evaluated lazily once per call and cached in a bitmask.

use jiff::Timestamp;
use jiff::civil::DateTime;

use crate::category::CategoryMask;
use crate::domain::{HostBuf, any_suffix_in, domain_matches};
use crate::explain::{LiftedBy, Miss, Trace, TraceStep};
use crate::groups::{GroupId, GroupSet};
use crate::live::{Live, OverrideTarget, Subject};
use crate::policy::{Policy, Rule};
use crate::request::{FileType, Identity, Request};

/// What happens to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allow,
    /// An interstitial the user may click through; the click is logged.
    Warn,
    Block,
}

/// A rule's action is the verdict it gives when it decides.
pub type Action = Verdict;

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Warn => "warn",
            Verdict::Block => "block",
        }
    }

    /// Block > Warn > Allow: used to pick among several groups' defaults (fail closed).
    pub(crate) fn severity(self) -> u8 {
        match self {
            Verdict::Allow => 0,
            Verdict::Warn => 1,
            Verdict::Block => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// Behaviour for the Head of Year (e.g. games in lessons, webmail).
    Conduct,
    /// Possible risk of harm, for the designated safeguarding lead.
    Safeguarding,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Conduct => "conduct",
            AlertKind::Safeguarding => "safeguarding",
        }
    }
}

/// The alert an attempt raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Alert {
    pub kind: AlertKind,
    /// 1 (lowest) to 5.
    pub severity: u8,
}

/// A group's default: what happens when no rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultAction {
    pub action: Verdict,
    pub document: Option<String>,
    pub clause: Option<String>,
    pub message: Option<String>,
}

/// A rule, by position and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRef<'a> {
    pub index: usize,
    pub id: &'a str,
}

/// What produced the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Rule,
    /// No rule matched; `Decision::default_group`'s default applied.
    Default,
    Sanction,
}

/// The outcome, citing its clause. Borrows text from the policy (and from `Live` for
/// sanctions), so building it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'a> {
    pub verdict: Verdict,
    pub source: Source,
    pub rule: Option<RuleRef<'a>>,
    /// Document id (e.g. `wcs`) and clause (e.g. `4.5.1`), when the policy cites one.
    pub document: Option<&'a str>,
    pub clause: Option<&'a str>,
    /// Block page text.
    pub message: &'a str,
    /// The request's categories.
    pub categories: CategoryMask,
    pub alert: Option<Alert>,
    /// A teacher may override the deciding rule for a lesson.
    pub override_allowed: bool,
    /// A teacher override or access grant lifted a rule on the way to this decision.
    pub overridden: bool,
    pub lifted: Option<(RuleRef<'a>, LiftedBy)>,
    /// Whose default applied, when `source == Default`.
    pub default_group: Option<GroupId>,
    /// The groups the request was decided for.
    pub groups: GroupSet,
}

/// Per-call cache of period membership (at most 64 periods, checked at compile). The
/// conversion to the school's local time happens at most once per call, and only when a
/// rule with `during`/`outside` is reached.
struct Clock<'t> {
    tz: &'t jiff::tz::TimeZone,
    now: Timestamp,
    local: Option<DateTime>,
    known: u64,
    inside: u64,
}

impl Clock<'_> {
    fn inside(&mut self, policy: &Policy, p: usize) -> bool {
        let bit = 1u64 << (p % 64);
        if self.known & bit == 0 {
            self.known |= bit;
            let (tz, now) = (self.tz, self.now);
            let local = *self.local.get_or_insert_with(|| tz.to_datetime(now));
            if policy.periods.get(p).is_some_and(|per| per.contains(local)) {
                self.inside |= bit;
            }
        }
        self.inside & bit != 0
    }

    /// The first period in `mask` that `now` is inside.
    fn any(&mut self, policy: &Policy, mut mask: u64) -> Option<usize> {
        while mask != 0 {
            let i = mask.trailing_zeros() as usize;
            if self.inside(policy, i) {
                return Some(i);
            }
            mask &= mask - 1;
        }
        None
    }
}

fn subject_matches(s: &Subject, groups: GroupSet, person: Option<&str>) -> bool {
    match s {
        Subject::Group(g) => groups.contains(*g),
        Subject::Person(p) => person.is_some_and(|q| q == p),
        Subject::Everyone => true,
    }
}

impl Policy {
    /// Decide one request at instant `now`. Total: every input gives a decision.
    pub fn decide<'a>(&'a self, req: &Request<'_>, live: &'a Live, now: Timestamp) -> Decision<'a> {
        self.evaluate(req, live, now, &mut ())
    }

    /// The groups a request is decided for (fail closed to the unidentified group).
    pub fn request_groups(&self, identity: &Identity) -> GroupSet {
        let g = match identity {
            Identity::Groups(g) => *g,
            Identity::Ip(ip) => self.network_groups(*ip),
        };
        if g.is_empty() {
            self.unidentified_groups()
        } else {
            g
        }
    }

    pub(crate) fn evaluate<'a, T: Trace<'a>>(
        &'a self,
        req: &Request<'_>,
        live: &'a Live,
        now: Timestamp,
        trace: &mut T,
    ) -> Decision<'a> {
        let groups = self.request_groups(&req.identity);
        trace.step(TraceStep::Identity {
            groups,
            from_ip: matches!(req.identity, Identity::Ip(_)),
        });
        let mut d = Decision {
            verdict: Verdict::Block,
            source: Source::Default,
            rule: None,
            document: None,
            clause: None,
            message: "",
            categories: req.categories,
            alert: None,
            override_allowed: false,
            overridden: false,
            lifted: None,
            default_group: None,
            groups,
        };

        let host = HostBuf::new(req.host);
        let host = host.as_ref().map_or("", HostBuf::as_str);

        for s in &live.sanctions {
            if now < s.until
                && subject_matches(&s.subject, groups, req.person)
                && s.domain.as_deref().is_none_or(|d| domain_matches(host, d))
            {
                trace.step(TraceStep::Sanction { until: s.until });
                d.source = Source::Sanction;
                d.document = Some(&s.document);
                d.clause = Some(&s.clause);
                d.message = &s.message;
                return d;
            }
        }
        let mut clock = Clock {
            tz: &self.timezone,
            now,
            local: None,
            known: 0,
            inside: 0,
        };

        for (index, rule) in self.rules.iter().enumerate() {
            let rref = RuleRef {
                index,
                id: rule.id.as_str(),
            };
            if let Some(miss) = self.miss(rule, req, host, groups, &mut clock) {
                trace.step(TraceStep::Rule {
                    rule: rref,
                    miss: Some(miss),
                    lifted: None,
                });
                continue;
            }
            if let Some(by) = self.lift(rule, req, host, groups, live, now) {
                trace.step(TraceStep::Rule {
                    rule: rref,
                    miss: None,
                    lifted: Some(by),
                });
                d.overridden = true;
                d.lifted.get_or_insert((rref, by));
                continue;
            }
            trace.step(TraceStep::Rule {
                rule: rref,
                miss: None,
                lifted: None,
            });
            d.verdict = rule.action;
            d.source = Source::Rule;
            d.rule = Some(rref);
            d.document = Some(&rule.document);
            d.clause = Some(&rule.clause);
            d.message = &rule.message;
            d.alert = rule.alert;
            d.override_allowed = rule.teacher_override && rule.action != Verdict::Allow;
            return d;
        }

        // No rule matched: the most restrictive default among the groups applies.
        let mut chosen: Option<GroupId> = None;
        for g in groups.iter() {
            let Some(group) = self.groups.get(usize::from(g.0)) else {
                continue;
            };
            let better = chosen
                .and_then(|c| self.groups.get(usize::from(c.0)))
                .is_none_or(|c| group.default.action.severity() > c.default.action.severity());
            if better {
                chosen = Some(g);
            }
        }
        let Some(gid) = chosen else {
            // Unreachable for compiled policies (the unidentified group exists); block.
            return d;
        };
        let Some(group) = self.groups.get(usize::from(gid.0)) else {
            return d;
        };
        let def = &group.default;
        d.default_group = Some(gid);
        d.verdict = def.action;
        d.document = def.document.as_deref();
        d.clause = def.clause.as_deref();
        d.message = def.message.as_deref().unwrap_or("");
        if def.action != Verdict::Allow && self.granted(req, host, groups, live, now) {
            trace.step(TraceStep::Default {
                group: gid,
                lifted: Some(LiftedBy::Grant),
            });
            d.verdict = Verdict::Allow;
            d.overridden = true;
            d.message = "";
            return d;
        }
        trace.step(TraceStep::Default {
            group: gid,
            lifted: None,
        });
        d
    }

    /// Why `rule` does not match, or `None` when it does. Checks the cheap conditions
    /// first.
    fn miss(
        &self,
        rule: &Rule,
        req: &Request<'_>,
        host: &str,
        groups: GroupSet,
        clock: &mut Clock<'_>,
    ) -> Option<Miss> {
        if rule.groups.is_some_and(|g| !g.intersects(groups)) {
            return Some(Miss::Groups);
        }
        if rule.except_groups.intersects(groups) {
            return Some(Miss::ExceptGroups);
        }
        if rule.has_site() && !self.site_matches(rule, req, host) {
            return Some(Miss::Site);
        }
        if rule.has_file_types() && !file_type_matches(rule, req.file_type) {
            return Some(Miss::FileType);
        }
        if let Some(during) = rule.during
            && clock.any(self, during).is_none()
        {
            return Some(Miss::NotDuring);
        }
        if let Some(p) = clock.any(self, rule.outside) {
            return Some(Miss::Outside(p));
        }
        None
    }

    fn site_matches(&self, rule: &Rule, req: &Request<'_>, host: &str) -> bool {
        if rule.categories.intersects(&req.categories) {
            return true;
        }
        if any_suffix_in(host, &rule.domains) {
            return true;
        }
        rule.url_prefixes.iter().any(|(domain, prefix)| {
            domain_matches(host, domain)
                && (prefix.as_str() == "/"
                    || req.path.is_some_and(|p| p.starts_with(prefix.as_str())))
        })
    }

    fn lift(
        &self,
        rule: &Rule,
        req: &Request<'_>,
        host: &str,
        groups: GroupSet,
        live: &Live,
        now: Timestamp,
    ) -> Option<LiftedBy> {
        if rule.action == Verdict::Allow {
            return None;
        }
        if rule.teacher_override {
            let hit = live.overrides.iter().any(|o| {
                now < o.until
                    && groups.contains(o.group)
                    && match &o.target {
                        OverrideTarget::Category(c) => req.categories.contains(*c),
                        OverrideTarget::Domain(dom) => domain_matches(host, dom),
                        OverrideTarget::Rule(id) => *id == rule.id,
                    }
            });
            if hit {
                return Some(LiftedBy::TeacherOverride);
            }
        }
        if rule.action == Verdict::Warn
            && live.acknowledged.iter().any(|a| {
                now < a.until
                    && subject_matches(&a.subject, groups, req.person)
                    && domain_matches(host, &a.domain)
            })
        {
            return Some(LiftedBy::Acknowledged);
        }
        let safeguarding = rule
            .alert
            .is_some_and(|a| a.kind == AlertKind::Safeguarding);
        if !safeguarding && self.granted(req, host, groups, live, now) {
            return Some(LiftedBy::Grant);
        }
        None
    }

    fn granted(
        &self,
        req: &Request<'_>,
        host: &str,
        groups: GroupSet,
        live: &Live,
        now: Timestamp,
    ) -> bool {
        live.grants.iter().any(|g| {
            now < g.until
                && subject_matches(&g.subject, groups, req.person)
                && domain_matches(host, &g.domain)
        })
    }
}

fn file_type_matches(rule: &Rule, ft: Option<FileType<'_>>) -> bool {
    let Some(ft) = ft else { return false };
    let ext_hit = ft.extension.is_some_and(|e| {
        let e = e.trim_start_matches('.');
        rule.extensions.iter().any(|x| x.eq_ignore_ascii_case(e))
    });
    ext_hit
        || ft.mime.is_some_and(|m| {
            let m = m.split(';').next().unwrap_or("").trim();
            rule.mimes.iter().any(|x| x.eq_ignore_ascii_case(m))
        })
}
