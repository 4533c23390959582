//! The compiled policy: immutable, shareable between threads, and everything an
//! enforcement point asks of it apart from `decide` itself.

use std::collections::HashMap;
use std::net::IpAddr;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::category::CategoryMask;
use crate::decide::{Alert, Verdict};
use crate::groups::{Group, GroupId, GroupSet, PersonAttrs};
use crate::periods::{Period, TimeError, parse_instant};
use crate::{DnsSettings, SafeSearch};

/// A policy document a clause belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentInfo {
    pub id: String,
    pub title: String,
    pub version: String,
}

/// A rule as the console shows it ([`Policy::rule_info`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo<'a> {
    pub id: &'a str,
    pub action: Verdict,
    pub document: &'a str,
    pub clause: &'a str,
    pub message: &'a str,
    pub teacher_override: bool,
    /// A safeguarding alert rule: requests to lift it go to the DSL, never a grant.
    pub safeguarding: bool,
    /// The alert a match raises (`alert = { kind, severity }`), if any.
    pub alert: Option<crate::decide::Alert>,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) id: String,
    pub(crate) action: Verdict,
    pub(crate) document: String,
    pub(crate) clause: String,
    pub(crate) message: String,
    pub(crate) categories: CategoryMask,
    /// Sorted, lower-case: looked up once per suffix of the request's host.
    pub(crate) domains: Box<[Box<str>]>,
    pub(crate) url_prefixes: Vec<(String, String)>,
    pub(crate) extensions: Vec<String>,
    pub(crate) mimes: Vec<String>,
    pub(crate) groups: Option<GroupSet>,
    pub(crate) except_groups: GroupSet,
    /// Bitmasks over period indexes.
    pub(crate) during: Option<u64>,
    pub(crate) outside: u64,
    pub(crate) teacher_override: bool,
    pub(crate) alert: Option<Alert>,
}

impl Rule {
    pub(crate) fn has_site(&self) -> bool {
        !self.categories.is_empty() || !self.domains.is_empty() || !self.url_prefixes.is_empty()
    }

    pub(crate) fn has_file_types(&self) -> bool {
        !self.extensions.is_empty() || !self.mimes.is_empty()
    }
}

/// A compiled acceptable-use policy. Build with [`crate::PolicyDoc::compile`].
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) school_name: String,
    pub(crate) timezone_name: String,
    pub(crate) timezone: TimeZone,
    pub(crate) documents: Vec<DocumentInfo>,
    pub(crate) dns: DnsSettings,
    pub(crate) periods: Vec<Period>,
    pub(crate) groups: Vec<Group>,
    pub(crate) unidentified: GroupId,
    pub(crate) declarations: crate::declaration::Declarations,
    pub(crate) rules: Vec<Rule>,
    pub(crate) mail: crate::mail::MailPolicy,
    /// id -> the name shown to people.
    pub(crate) category_names: Vec<Option<String>>,
    pub(crate) category_ids: HashMap<String, u8>,
}

impl Policy {
    pub fn school_name(&self) -> &str {
        &self.school_name
    }

    /// The IANA name of the school's time zone, e.g. `Europe/London`.
    pub fn timezone_name(&self) -> &str {
        &self.timezone_name
    }

    pub fn timezone(&self) -> &TimeZone {
        &self.timezone
    }

    pub fn documents(&self) -> &[DocumentInfo] {
        &self.documents
    }

    pub fn document(&self, id: &str) -> Option<&DocumentInfo> {
        self.documents.iter().find(|d| d.id == id)
    }

    pub fn dns_settings(&self) -> &DnsSettings {
        &self.dns
    }

    pub fn group_id(&self, name: &str) -> Option<GroupId> {
        let i = self.groups.iter().position(|g| g.name == name)?;
        u8::try_from(i).ok().map(GroupId)
    }

    pub fn group_name(&self, id: GroupId) -> Option<&str> {
        self.groups.get(usize::from(id.0)).map(|g| g.name.as_str())
    }

    pub fn group_names(&self, set: GroupSet) -> Vec<&str> {
        set.iter().filter_map(|g| self.group_name(g)).collect()
    }

    /// Every group name, in declaration order (`GroupId(i)` is the i-th).
    pub fn all_groups(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|g| g.name.as_str())
    }

    /// Groups a person belongs to from their records (role, year group, memberships).
    pub fn groups_for_person(&self, person: &PersonAttrs<'_>) -> GroupSet {
        self.collect(|g| g.matches_person(person))
    }

    /// Groups whose network ranges contain `ip` (guest Wi-Fi, staff VLAN...).
    pub fn network_groups(&self, ip: IpAddr) -> GroupSet {
        self.collect(|g| g.matches_ip(ip))
    }

    /// The group for clients nobody could identify.
    pub fn unidentified_groups(&self) -> GroupSet {
        GroupSet::single(self.unidentified)
    }

    fn collect(&self, f: impl Fn(&Group) -> bool) -> GroupSet {
        let mut set = GroupSet::EMPTY;
        for (i, g) in self.groups.iter().enumerate() {
            if let Ok(i) = u8::try_from(i)
                && f(g)
            {
                set.insert(GroupId(i));
            }
        }
        set
    }

    /// Safe search for a set of groups: the strictest setting of any of them (an empty
    /// set counts as unidentified).
    pub fn safe_search(&self, groups: GroupSet) -> SafeSearch {
        let groups = if groups.is_empty() {
            self.unidentified_groups()
        } else {
            groups
        };
        groups
            .iter()
            .filter_map(|g| self.groups.get(usize::from(g.0)))
            .fold(SafeSearch::default(), |acc, g| {
                acc.strictest(&g.safe_search)
            })
    }

    pub fn category_id(&self, name: &str) -> Option<u8> {
        self.category_ids.get(name).copied()
    }

    pub fn category_name(&self, id: u8) -> Option<&str> {
        self.category_names
            .get(usize::from(id))
            .and_then(|n| n.as_deref())
    }

    /// Names of the categories in `mask` (ids without a name are skipped).
    pub fn category_names(&self, mask: CategoryMask) -> Vec<&str> {
        mask.iter()
            .filter_map(|id| self.category_name(id))
            .collect()
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    pub fn rule_id(&self, index: usize) -> Option<&str> {
        self.rules.get(index).map(|r| r.id.as_str())
    }

    /// What the console needs to know about one rule before lifting it, by id.
    pub fn rule_info(&self, id: &str) -> Option<RuleInfo<'_>> {
        self.rules.iter().find(|r| r.id == id).map(|r| RuleInfo {
            id: &r.id,
            action: r.action,
            document: &r.document,
            clause: &r.clause,
            message: &r.message,
            teacher_override: r.teacher_override,
            safeguarding: r
                .alert
                .is_some_and(|a| a.kind == crate::decide::AlertKind::Safeguarding),
            alert: r.alert,
        })
    }

    /// Every rule that raises an alert (`alert = { kind, severity }`), in policy order.
    pub fn alert_rules(&self) -> impl Iterator<Item = RuleInfo<'_>> {
        self.rules
            .iter()
            .filter(|r| r.alert.is_some())
            .filter_map(|r| self.rule_info(&r.id))
    }

    /// Every rule a teacher may override (`teacher_override = true`), in policy order.
    pub fn overridable_rules(&self) -> impl Iterator<Item = RuleInfo<'_>> {
        self.rules
            .iter()
            .filter(|r| r.teacher_override && r.action != Verdict::Allow)
            .filter_map(|r| self.rule_info(&r.id))
    }

    /// The end of the period (lesson) `now` is in: of the periods in force at `now`,
    /// the window that ends soonest, so "this lesson" is the lesson, not the school day.
    /// `None` outside every period.
    pub fn current_period_end(&self, now: Timestamp) -> Option<(&str, Timestamp)> {
        let local = now.to_zoned(self.timezone.clone());
        let dt = local.datetime();
        self.periods
            .iter()
            .filter(|p| p.contains(dt))
            .filter_map(|p| {
                p.window_end(dt, &self.timezone)
                    .map(|end| (p.name.as_str(), end))
            })
            .filter(|(_, end)| *end > now)
            .min_by_key(|(_, end)| *end)
    }

    /// Parse `YYYY-MM-DD HH:MM` in the school's zone, or an RFC 3339 instant.
    pub fn parse_time(&self, text: &str) -> Result<Timestamp, TimeError> {
        parse_instant(text, &self.timezone)
    }
}
