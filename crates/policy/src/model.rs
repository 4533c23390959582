//! The policy file as written: every value the parser accepted, with the byte span it
//! came from, so the compiler can point at the exact field when a name is unknown.

use std::ops::Range;

use ipnet::IpNet;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::decide::{Action, Alert};
use crate::diag::Reporter;
use crate::{DnsSettings, SafeSearch};

pub(crate) type Span = Range<usize>;

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sp<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

/// An inclusive range of calendar dates (a single date is `start == end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateRange {
    pub(crate) start: Date,
    pub(crate) end: Date,
}

impl DateRange {
    pub(crate) fn contains(&self, d: Date) -> bool {
        self.start <= d && d <= self.end
    }
}

/// A time-of-day window in minutes after local midnight; `from > to` crosses midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeRange {
    pub(crate) from: u16,
    pub(crate) to: u16,
}

#[derive(Debug, Clone)]
pub(crate) struct DocumentDef {
    pub(crate) id: Sp<String>,
    pub(crate) title: String,
    pub(crate) version: String,
    pub(crate) declaration: Option<crate::declaration::DeclarationDef>,
}

#[derive(Debug, Clone)]
pub(crate) struct CalendarDef {
    pub(crate) name: Sp<String>,
    pub(crate) dates: Vec<DateRange>,
    pub(crate) except: Vec<DateRange>,
}

#[derive(Debug, Clone)]
pub(crate) struct PeriodDef {
    pub(crate) name: Sp<String>,
    /// Bit 0 = Monday .. bit 6 = Sunday.
    pub(crate) days: u8,
    pub(crate) times: Vec<TimeRange>,
    pub(crate) dates: Vec<DateRange>,
    pub(crate) except: Vec<DateRange>,
    pub(crate) calendar: Option<Sp<String>>,
}

#[derive(Debug, Clone)]
pub(crate) struct DefaultDef {
    pub(crate) action: Action,
    pub(crate) document: Option<Sp<String>>,
    pub(crate) clause: Option<String>,
    pub(crate) message: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct GroupDef {
    pub(crate) name: Sp<String>,
    pub(crate) roles: Vec<String>,
    pub(crate) years: Vec<u8>,
    pub(crate) memberships: Vec<String>,
    pub(crate) networks: Vec<IpNet>,
    pub(crate) unidentified: Option<Span>,
    pub(crate) default: DefaultDef,
    pub(crate) safe_search: SafeSearch,
}

#[derive(Debug, Clone)]
pub(crate) struct RuleDef {
    pub(crate) id: Sp<String>,
    pub(crate) action: Action,
    pub(crate) document: Sp<String>,
    pub(crate) clause: String,
    pub(crate) message: Option<String>,
    pub(crate) categories: Vec<Sp<String>>,
    /// Lower-case, no trailing dot.
    pub(crate) domains: Vec<String>,
    /// (domain, path prefix starting with `/`).
    pub(crate) url_prefixes: Vec<(String, String)>,
    /// Lower-case, no leading dot.
    pub(crate) extensions: Vec<String>,
    pub(crate) mimes: Vec<String>,
    pub(crate) groups: Option<Vec<Sp<String>>>,
    pub(crate) except_groups: Vec<Sp<String>>,
    pub(crate) during: Option<Vec<Sp<String>>>,
    pub(crate) outside: Vec<Sp<String>>,
    pub(crate) teacher_override: bool,
    pub(crate) alert: Option<Alert>,
}

/// A parsed, not yet compiled, policy file. Obtain with [`PolicyDoc::parse`], then
/// [`PolicyDoc::compile`] it against the category vocabulary.
#[derive(Debug, Clone)]
pub struct PolicyDoc {
    pub(crate) rep: Reporter,
    pub(crate) school_name: String,
    pub(crate) timezone_name: String,
    pub(crate) timezone: TimeZone,
    pub(crate) documents: Vec<DocumentDef>,
    pub(crate) declarations: crate::declaration::DeclarationsDef,
    pub(crate) dns: DnsSettings,
    pub(crate) calendars: Vec<CalendarDef>,
    pub(crate) periods: Vec<PeriodDef>,
    pub(crate) groups: Vec<GroupDef>,
    pub(crate) rules: Vec<RuleDef>,
    /// `[mail]` and `[[mail_rules]]`.
    pub(crate) mail: crate::mail::model::MailDef,
}

impl PolicyDoc {
    /// The file name used in diagnostics.
    pub fn file(&self) -> &str {
        &self.rep.file
    }

    pub fn school_name(&self) -> &str {
        &self.school_name
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }
}
