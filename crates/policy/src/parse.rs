//! TOML text -> [`PolicyDoc`]. Walks the `toml_edit` tree by hand (rather than serde)
//! so that every problem in the file is reported at once, each at its own position.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use jiff::civil::Date;
use jiff::tz::{TimeZone, TimeZoneDatabase};
use toml_edit::{Document, Item, Key, Value};

use crate::category::CategoryVocab;
use crate::decide::{Action, Alert, AlertKind};
use crate::diag::{Diagnostic, Reporter};
use crate::model::*;
use crate::{BlockMode, DnsSettings, SafeSearch, YouTubeMode};

impl PolicyDoc {
    /// Parse policy text. `path_for_messages` is only used to label diagnostics.
    pub fn parse(path_for_messages: &str, text: &str) -> Result<PolicyDoc, Vec<Diagnostic>> {
        let mut r = Reporter::new(path_for_messages, text);
        let doc = match Document::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let msg = e.message().trim().replace('\n', " ");
                r.error(&span, format!("invalid TOML: {msg}"));
                return Err(r.sorted());
            }
        };
        let mut root = Obj::new(doc.as_item(), "the top level".into(), 0..0);
        let pd = parse_root(&mut r, &mut root);
        root.finish(&mut r);
        // Resolve names now too (categories aside, which need the catalog), so one run
        // reports every error in the file, not only the syntactic ones.
        if let Err(more) = pd.compile(&CategoryVocab::open()) {
            r.diags.extend(more);
        }
        if r.has_errors() {
            Err(r.sorted())
        } else {
            Ok(PolicyDoc { rep: r, ..pd })
        }
    }
}

type Span = std::ops::Range<usize>;

/// A table being read: remembers which keys were used so the rest can be reported as
/// unknown.
struct Obj<'a> {
    path: String,
    span: Span,
    entries: Vec<(&'a Key, &'a Item, bool)>,
    known: Vec<&'static str>,
    missing: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    fn new(item: &'a Item, path: String, span: Span) -> Self {
        let mut entries = Vec::new();
        if let Some(t) = item.as_table_like() {
            for (k, _) in t.iter() {
                if let Some((key, value)) = t.get_key_value(k) {
                    entries.push((key, value, false));
                }
            }
        }
        Obj {
            path,
            span,
            entries,
            known: Vec::new(),
            missing: Vec::new(),
        }
    }

    /// `item` as a table, or an error naming `path`.
    fn table(r: &mut Reporter, item: &'a Item, path: String, fallback: &Span) -> Option<Self> {
        let span = item.span().unwrap_or_else(|| fallback.clone());
        if item.as_table_like().is_none() {
            r.error(
                &span,
                format!("`{path}` must be a table, found {}", item.type_name()),
            );
            return None;
        }
        Some(Obj::new(item, path, span))
    }

    fn field(&self, key: &str) -> String {
        if self.path == "the top level" {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&mut self, key: &'static str) -> Option<(&'a Item, Span, String)> {
        self.known.push(key);
        let field = self.field(key);
        let fallback = self.span.clone();
        self.entries
            .iter_mut()
            .find(|(k, _, _)| k.get() == key)
            .map(|e| {
                e.2 = true;
                let span = e.1.span().or_else(|| e.0.span()).unwrap_or(fallback);
                (e.1, span, field)
            })
    }

    /// Like `get`; a missing key is reported by `finish`.
    fn required(&mut self, key: &'static str) -> Option<(&'a Item, Span, String)> {
        let got = self.get(key);
        if got.is_none() {
            self.missing.push(key);
        }
        got
    }

    fn finish(self, r: &mut Reporter) {
        for key in &self.missing {
            r.error(
                &self.span,
                format!("`{}`: missing required key `{key}`", self.path),
            );
        }
        for (k, item, used) in &self.entries {
            if !used {
                let span = k
                    .span()
                    .or_else(|| item.span())
                    .unwrap_or(self.span.clone());
                let field = self.field(k.get());
                r.error(
                    &span,
                    format!(
                        "`{field}`: unknown key (expected one of: {})",
                        self.known.join(", ")
                    ),
                );
            }
        }
    }

    /// Keys in file order, for tables whose keys are names (`[periods.NAME]`).
    fn named_children(&mut self) -> Vec<(Sp<String>, &'a Item)> {
        self.entries
            .iter_mut()
            .map(|e| {
                e.2 = true;
                let span = e.0.span().or_else(|| e.1.span()).unwrap_or(0..0);
                (
                    Sp {
                        value: e.0.get().to_owned(),
                        span,
                    },
                    e.1,
                )
            })
            .collect()
    }
}

fn value<'a>(
    r: &mut Reporter,
    item: &'a Item,
    span: &Span,
    field: &str,
    want: &str,
) -> Option<&'a Value> {
    let v = item.as_value();
    if v.is_none() {
        r.error(
            span,
            format!("`{field}` must be {want}, found {}", item.type_name()),
        );
    }
    v
}

fn string(r: &mut Reporter, got: Option<(&Item, Span, String)>) -> Option<Sp<String>> {
    let (item, span, field) = got?;
    let v = value(r, item, &span, &field, "a string")?;
    match v.as_str() {
        Some(s) => Some(Sp {
            value: s.to_owned(),
            span,
        }),
        None => {
            r.error(
                &span,
                format!("`{field}` must be a string, found {}", v.type_name()),
            );
            None
        }
    }
}

fn integer(r: &mut Reporter, got: Option<(&Item, Span, String)>) -> Option<Sp<i64>> {
    let (item, span, field) = got?;
    let v = value(r, item, &span, &field, "an integer")?;
    match v.as_integer() {
        Some(i) => Some(Sp { value: i, span }),
        None => {
            r.error(
                &span,
                format!("`{field}` must be an integer, found {}", v.type_name()),
            );
            None
        }
    }
}

fn boolean(r: &mut Reporter, got: Option<(&Item, Span, String)>) -> Option<bool> {
    let (item, span, field) = got?;
    let v = value(r, item, &span, &field, "true or false")?;
    let b = v.as_bool();
    if b.is_none() {
        r.error(
            &span,
            format!("`{field}` must be true or false, found {}", v.type_name()),
        );
    }
    b
}

/// An array of strings (TOML dates are accepted as their text, for date lists).
fn strings(r: &mut Reporter, got: Option<(&Item, Span, String)>) -> Option<Vec<Sp<String>>> {
    let (item, span, field) = got?;
    let arr = value(r, item, &span, &field, "an array of strings")?;
    let Some(arr) = arr.as_array() else {
        r.error(
            &span,
            format!(
                "`{field}` must be an array of strings, found {}",
                arr.type_name()
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    for (i, v) in arr.iter().enumerate() {
        let vspan = v.span().unwrap_or(span.clone());
        if let Some(s) = v.as_str() {
            out.push(Sp {
                value: s.to_owned(),
                span: vspan,
            });
        } else if let Some(d) = v.as_datetime() {
            out.push(Sp {
                value: d.to_string(),
                span: vspan,
            });
        } else {
            r.error(
                &vspan,
                format!("`{field}[{i}]` must be a string, found {}", v.type_name()),
            );
        }
    }
    Some(out)
}

/// Like `strings`, for rule conditions: an empty list is an error, because leaving a
/// condition out means "anything" and `[]` would silently mean the same.
fn condition(r: &mut Reporter, got: Option<(&Item, Span, String)>) -> Option<Vec<Sp<String>>> {
    let (span, field) = got.as_ref().map(|g| (g.1.clone(), g.2.clone()))?;
    let list = strings(r, got)?;
    if list.is_empty() {
        r.error(
            &span,
            format!("`{field}` is empty: list at least one value, or leave the key out"),
        );
    }
    Some(list)
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn check_name(r: &mut Reporter, name: &Sp<String>, field: &str) {
    if !is_name(&name.value) {
        r.error(
            &name.span,
            format!(
                "`{field}`: `{}` is not a valid name (use letters, digits, `-` and `_`)",
                name.value
            ),
        );
    }
}

fn parse_root(r: &mut Reporter, root: &mut Obj<'_>) -> PolicyDoc {
    match integer(r, root.required("version")) {
        Some(v) if v.value != 1 => r.error(
            &v.span,
            format!(
                "`version`: unsupported policy format version {} (this Hallpass reads version 1)",
                v.value
            ),
        ),
        _ => {}
    }
    let (school_name, timezone_name, timezone) = parse_school(r, root);
    let documents = parse_documents(r, root);
    let dns = parse_dns(r, root);
    let calendars = parse_named(r, root, "calendars", parse_calendar);
    let periods = parse_named(r, root, "periods", parse_period);
    let groups = parse_named(r, root, "groups", parse_group);
    let rules = parse_rules(r, root);
    PolicyDoc {
        rep: r.clone(),
        school_name,
        timezone_name,
        // A bad zone is already an error; UTC only lets name checks carry on.
        timezone: timezone.unwrap_or(TimeZone::UTC),
        documents,
        dns,
        calendars,
        periods,
        groups,
        rules,
    }
}

fn parse_school(r: &mut Reporter, root: &mut Obj<'_>) -> (String, String, Option<TimeZone>) {
    let Some((item, span, field)) = root.required("school") else {
        return (String::new(), String::new(), None);
    };
    let Some(mut o) = Obj::table(r, item, field, &span) else {
        return (String::new(), String::new(), None);
    };
    let name = string(r, o.required("name"))
        .map(|s| s.value)
        .unwrap_or_default();
    let tz = string(r, o.required("timezone"));
    o.finish(r);
    let Some(tz) = tz else {
        return (name, String::new(), None);
    };
    // The bundled database keeps evaluation independent of the host's zoneinfo files.
    match TimeZoneDatabase::bundled().get(&tz.value) {
        Ok(zone) => (name, tz.value, Some(zone)),
        Err(_) => {
            r.error(
                &tz.span,
                format!(
                    "`school.timezone`: unknown IANA time zone `{}` (e.g. \"Europe/London\")",
                    tz.value
                ),
            );
            (name, tz.value, None)
        }
    }
}

fn parse_documents(r: &mut Reporter, root: &mut Obj<'_>) -> Vec<DocumentDef> {
    let mut out: Vec<DocumentDef> = Vec::new();
    let Some((item, span, field)) = root.required("documents") else {
        return out;
    };
    let Some(tables) = item.as_array_of_tables() else {
        r.error(
            &span,
            format!("`{field}` must be an array of tables (`[[documents]]`)"),
        );
        return out;
    };
    for (i, t) in tables.iter().enumerate() {
        let path = format!("documents[{i}]");
        let tspan = t.span().unwrap_or(span.clone());
        let mut o = Obj {
            path,
            span: tspan,
            entries: Vec::new(),
            known: Vec::new(),
            missing: Vec::new(),
        };
        for (k, _) in t.iter() {
            if let Some((key, value)) = t.get_key_value(k) {
                o.entries.push((key, value, false));
            }
        }
        let id = string(r, o.required("id"));
        let title = string(r, o.required("title"));
        let version = string(r, o.get("version"));
        o.finish(r);
        if let Some(id) = id {
            check_name(r, &id, &format!("documents[{i}].id"));
            if out.iter().any(|d| d.id.value == id.value) {
                r.error(
                    &id.span,
                    format!("`documents[{i}].id`: duplicate document id `{}`", id.value),
                );
            }
            out.push(DocumentDef {
                id,
                title: title.map(|t| t.value).unwrap_or_default(),
                version: version.map(|v| v.value).unwrap_or_default(),
            });
        }
    }
    out
}

fn parse_dns(r: &mut Reporter, root: &mut Obj<'_>) -> DnsSettings {
    let mut dns = DnsSettings::default();
    let Some((item, span, field)) = root.get("dns") else {
        return dns;
    };
    let Some(mut o) = Obj::table(r, item, field, &span) else {
        return dns;
    };
    let mode = string(r, o.get("block_mode"));
    let mode_span = mode.as_ref().map_or(span.clone(), |m| m.span.clone());
    if let Some(m) = mode {
        match m.value.as_str() {
            "nxdomain" => dns.block_mode = BlockMode::NxDomain,
            "null" => dns.block_mode = BlockMode::Null,
            "blockpage" => dns.block_mode = BlockMode::BlockPage,
            other => r.error(
                &m.span,
                format!("`dns.block_mode`: unknown mode `{other}` (expected \"nxdomain\", \"null\" or \"blockpage\")"),
            ),
        }
    }
    if let Some(t) = integer(r, o.get("block_ttl")) {
        match u32::try_from(t.value) {
            Ok(ttl) if (1..=86_400).contains(&ttl) => dns.block_ttl = ttl,
            _ => r.error(
                &t.span,
                format!(
                    "`dns.block_ttl`: {} is out of range (1 to 86400 seconds)",
                    t.value
                ),
            ),
        }
    }
    if let Some(a) = string(r, o.get("blockpage_ipv4")) {
        match Ipv4Addr::from_str(&a.value) {
            Ok(ip) => dns.blockpage_ipv4 = Some(ip),
            Err(_) => r.error(
                &a.span,
                format!("`dns.blockpage_ipv4`: `{}` is not an IPv4 address", a.value),
            ),
        }
    }
    if let Some(a) = string(r, o.get("blockpage_ipv6")) {
        match Ipv6Addr::from_str(&a.value) {
            Ok(ip) => dns.blockpage_ipv6 = Some(ip),
            Err(_) => r.error(
                &a.span,
                format!("`dns.blockpage_ipv6`: `{}` is not an IPv6 address", a.value),
            ),
        }
    }
    if let Some(b) = boolean(r, o.get("block_canaries")) {
        dns.block_canaries = b;
    }
    o.finish(r);
    if dns.block_mode == BlockMode::BlockPage
        && dns.blockpage_ipv4.is_none()
        && dns.blockpage_ipv6.is_none()
    {
        r.error(
            &mode_span,
            "`dns.block_mode`: \"blockpage\" needs `blockpage_ipv4` or `blockpage_ipv6`",
        );
    }
    dns
}

/// `[KIND.NAME]` tables, parsed in file order.
fn parse_named<T>(
    r: &mut Reporter,
    root: &mut Obj<'_>,
    kind: &'static str,
    f: fn(&mut Reporter, Sp<String>, &mut Obj<'_>) -> T,
) -> Vec<T> {
    let mut out = Vec::new();
    let Some((item, span, field)) = root.get(kind) else {
        return out;
    };
    let Some(mut all) = Obj::table(r, item, field, &span) else {
        return out;
    };
    for (name, child) in all.named_children() {
        let path = format!("{kind}.{}", name.value);
        check_name(r, &name, &path);
        if let Some(mut o) = Obj::table(r, child, path, &name.span) {
            out.push(f(r, name, &mut o));
            o.finish(r);
        }
    }
    out
}

fn parse_dates(r: &mut Reporter, got: Option<(&Item, Span, String)>) -> Vec<DateRange> {
    let field = got.as_ref().map(|g| g.2.clone()).unwrap_or_default();
    let mut out = Vec::new();
    for (i, s) in strings(r, got).unwrap_or_default().into_iter().enumerate() {
        let (a, b) = s.value.split_once("..").unwrap_or((&s.value, &s.value));
        match (Date::from_str(a.trim()), Date::from_str(b.trim())) {
            (Ok(start), Ok(end)) if start <= end => out.push(DateRange { start, end }),
            (Ok(_), Ok(_)) => r.error(&s.span, format!("`{field}[{i}]`: range `{}` ends before it starts", s.value)),
            _ => r.error(
                &s.span,
                format!("`{field}[{i}]`: `{}` is not a date or date range (e.g. \"2026-12-25\" or \"2026-09-03..2026-10-23\")", s.value),
            ),
        }
    }
    out
}

fn parse_calendar(r: &mut Reporter, name: Sp<String>, o: &mut Obj<'_>) -> CalendarDef {
    let dates = parse_dates(r, o.get("dates"));
    let except = parse_dates(r, o.get("except"));
    CalendarDef {
        name,
        dates,
        except,
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LONG_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn day_bits(s: &str) -> Option<u8> {
    let s = s.to_ascii_lowercase();
    match s.as_str() {
        "weekdays" => return Some(0b001_1111),
        "weekends" => return Some(0b110_0000),
        "daily" | "everyday" => return Some(0b111_1111),
        _ => {}
    }
    let i = DAYS
        .iter()
        .position(|d| *d == s)
        .or_else(|| LONG_DAYS.iter().position(|d| *d == s))?;
    Some(1 << i)
}

/// `HH:MM` (00:00..=24:00) as minutes after midnight.
pub(crate) fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

fn parse_period(r: &mut Reporter, name: Sp<String>, o: &mut Obj<'_>) -> PeriodDef {
    let path = o.path.clone();
    let mut days = 0u8;
    if let Some(list) = strings(r, o.required("days")) {
        for (i, d) in list.iter().enumerate() {
            match day_bits(&d.value) {
                Some(b) => days |= b,
                None => r.error(
                    &d.span,
                    format!("`{path}.days[{i}]`: `{}` is not a day (mon, tue, wed, thu, fri, sat, sun, weekdays, weekends, daily)", d.value),
                ),
            }
        }
        if list.is_empty() {
            r.error(
                &o.span,
                format!("`{path}.days` is empty: the period would never apply"),
            );
        }
    }
    let mut times = Vec::new();
    if let Some(list) = strings(r, o.required("times")) {
        for (i, t) in list.iter().enumerate() {
            let parsed = t
                .value
                .split_once(['-', '–'])
                .and_then(|(a, b)| Some((parse_hhmm(a)?, parse_hhmm(b)?)));
            match parsed {
                Some((from, to)) if from == to => {
                    r.error(&t.span, format!("`{path}.times[{i}]`: `{}` starts and ends at the same time", t.value))
                }
                Some((1440, _)) => {
                    r.error(&t.span, format!("`{path}.times[{i}]`: a window cannot start at 24:00"))
                }
                Some((from, to)) => times.push(TimeRange { from, to }),
                None => r.error(
                    &t.span,
                    format!("`{path}.times[{i}]`: malformed time range `{}` (expected \"HH:MM-HH:MM\", e.g. \"08:50-10:30\" or \"22:00-06:00\")", t.value),
                ),
            }
        }
        if list.is_empty() {
            r.error(
                &o.span,
                format!("`{path}.times` is empty: the period would never apply"),
            );
        }
    }
    let dates = parse_dates(r, o.get("dates"));
    let except = parse_dates(r, o.get("except"));
    let calendar = string(r, o.get("calendar"));
    PeriodDef {
        name,
        days,
        times,
        dates,
        except,
        calendar,
    }
}

fn parse_action(r: &mut Reporter, s: &Sp<String>, field: &str) -> Option<Action> {
    match s.value.as_str() {
        "allow" => Some(Action::Allow),
        "block" => Some(Action::Block),
        "warn" => Some(Action::Warn),
        other => {
            r.error(&s.span, format!("`{field}`: unknown action `{other}` (expected \"allow\", \"block\" or \"warn\")"));
            None
        }
    }
}

fn parse_group(r: &mut Reporter, name: Sp<String>, o: &mut Obj<'_>) -> GroupDef {
    let path = o.path.clone();
    let roles = strings(r, o.get("roles"))
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.value)
        .collect();
    let mut years = Vec::new();
    if let Some((item, span, field)) = o.get("years") {
        match item.as_value().and_then(Value::as_array) {
            Some(arr) => {
                for (i, v) in arr.iter().enumerate() {
                    let vspan = v.span().unwrap_or(span.clone());
                    match v.as_integer().map(u8::try_from) {
                        Some(Ok(y)) if (1..=14).contains(&y) => years.push(y),
                        _ => r.error(
                            &vspan,
                            format!("`{field}[{i}]`: year groups are integers from 1 to 14"),
                        ),
                    }
                }
            }
            None => r.error(
                &span,
                format!("`{field}` must be an array of integers, e.g. [7, 8, 9]"),
            ),
        }
    }
    let memberships = strings(r, o.get("memberships"))
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.value)
        .collect();
    let mut networks = Vec::new();
    for (i, n) in strings(r, o.get("networks"))
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let parsed = IpNet::from_str(&n.value)
            .or_else(|_| std::net::IpAddr::from_str(&n.value).map(IpNet::from));
        match parsed {
            Ok(net) if net.trunc() == net => networks.push(net),
            Ok(net) => r.error(
                &n.span,
                format!("`{path}.networks[{i}]`: `{}` has host bits set (did you mean \"{}\"?)", n.value, net.trunc()),
            ),
            Err(_) => r.error(
                &n.span,
                format!("`{path}.networks[{i}]`: `{}` is not a CIDR range (e.g. \"10.50.0.0/16\" or \"2001:db8::/48\")", n.value),
            ),
        }
    }
    let unidentified = match o.get("unidentified") {
        Some(got) => {
            let span = got.1.clone();
            boolean(r, Some(got)).filter(|b| *b).map(|_| span)
        }
        None => None,
    };
    let default = parse_default(r, o, &path);
    let safe_search = parse_safe_search(r, o, &path);
    GroupDef {
        name,
        roles,
        years,
        memberships,
        networks,
        unidentified,
        default,
        safe_search,
    }
}

fn parse_default(r: &mut Reporter, o: &mut Obj<'_>, path: &str) -> DefaultDef {
    let mut def = DefaultDef {
        action: Action::Allow,
        document: None,
        clause: None,
        message: None,
    };
    let Some((item, span, field)) = o.required("default") else {
        return def;
    };
    if let Some(s) = item.as_str() {
        if let Some(a) = parse_action(
            r,
            &Sp {
                value: s.to_owned(),
                span,
            },
            &field,
        ) {
            def.action = a;
        }
        return def;
    }
    let Some(mut t) = Obj::table(r, item, format!("{path}.default"), &span) else {
        return def;
    };
    if let Some(a) = string(r, t.required("action"))
        && let Some(a) = parse_action(r, &a, &format!("{path}.default.action"))
    {
        def.action = a;
    }
    def.document = string(r, t.get("document"));
    def.clause = string(r, t.get("clause")).map(|s| s.value);
    def.message = string(r, t.get("message")).map(|s| s.value);
    t.finish(r);
    def
}

fn parse_safe_search(r: &mut Reporter, o: &mut Obj<'_>, path: &str) -> SafeSearch {
    let mut ss = SafeSearch::default();
    let Some((item, span, _)) = o.get("safe_search") else {
        return ss;
    };
    let Some(mut t) = Obj::table(r, item, format!("{path}.safe_search"), &span) else {
        return ss;
    };
    ss.google = boolean(r, t.get("google")).unwrap_or(false);
    ss.bing = boolean(r, t.get("bing")).unwrap_or(false);
    ss.duckduckgo = boolean(r, t.get("duckduckgo")).unwrap_or(false);
    if let Some(y) = string(r, t.get("youtube")) {
        match y.value.as_str() {
            "strict" => ss.youtube = YouTubeMode::Strict,
            "moderate" => ss.youtube = YouTubeMode::Moderate,
            "off" => ss.youtube = YouTubeMode::Off,
            other => r.error(
                &y.span,
                format!("`{path}.safe_search.youtube`: unknown mode `{other}` (expected \"strict\", \"moderate\" or \"off\")"),
            ),
        }
    }
    t.finish(r);
    ss
}

fn parse_rules(r: &mut Reporter, root: &mut Obj<'_>) -> Vec<RuleDef> {
    let mut out: Vec<RuleDef> = Vec::new();
    let Some((item, span, field)) = root.get("rules") else {
        return out;
    };
    let Some(tables) = item.as_array_of_tables() else {
        r.error(
            &span,
            format!("`{field}` must be an array of tables (`[[rules]]`)"),
        );
        return out;
    };
    for (i, t) in tables.iter().enumerate() {
        let tspan = t.span().unwrap_or(span.clone());
        let mut o = Obj {
            path: format!("rules[{i}]"),
            span: tspan.clone(),
            entries: Vec::new(),
            known: Vec::new(),
            missing: Vec::new(),
        };
        for (k, _) in t.iter() {
            if let Some((key, value)) = t.get_key_value(k) {
                o.entries.push((key, value, false));
            }
        }
        if let Some(rule) = parse_rule(r, &mut o, i) {
            if let Some(prev) = out.iter().position(|p| p.id.value == rule.id.value) {
                r.error(
                    &rule.id.span,
                    format!(
                        "`rules[{i}].id`: duplicate rule id `{}` (also rules[{prev}])",
                        rule.id.value
                    ),
                );
            }
            out.push(rule);
        }
        o.finish(r);
    }
    out
}

fn normalise_domain(s: &str) -> Option<String> {
    let d = s
        .trim()
        .trim_start_matches("*.")
        .trim_start_matches('.')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| !l.is_empty() && l.len() <= 63)
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    ok.then_some(d)
}

fn parse_rule(r: &mut Reporter, o: &mut Obj<'_>, i: usize) -> Option<RuleDef> {
    let p = format!("rules[{i}]");
    let id = string(r, o.required("id"));
    if let Some(id) = &id {
        check_name(r, id, &format!("{p}.id"));
    }
    let action =
        string(r, o.required("action")).and_then(|a| parse_action(r, &a, &format!("{p}.action")));
    let document = string(r, o.required("document"));
    let clause = string(r, o.required("clause"));
    let message = string(r, o.get("message")).map(|s| s.value);
    let categories = condition(r, o.get("categories")).unwrap_or_default();
    let mut domains = Vec::new();
    for (j, d) in condition(r, o.get("domains"))
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if d.value.contains('/') {
            r.error(
                &d.span,
                format!(
                    "`{p}.domains[{j}]`: `{}` is a URL, not a domain (use `url_prefixes`)",
                    d.value
                ),
            );
        } else if let Some(n) = normalise_domain(&d.value) {
            domains.push(n);
        } else {
            r.error(
                &d.span,
                format!(
                    "`{p}.domains[{j}]`: `{}` is not a valid domain name",
                    d.value
                ),
            );
        }
    }
    let mut url_prefixes = Vec::new();
    for (j, u) in condition(r, o.get("url_prefixes"))
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let rest = u.value.trim();
        let rest = rest
            .strip_prefix("https://")
            .or_else(|| rest.strip_prefix("http://"))
            .unwrap_or(rest);
        let (host, path) = match rest.find('/') {
            Some(k) => (&rest[..k], &rest[k..]),
            None => (rest, "/"),
        };
        match normalise_domain(host) {
            Some(h) => url_prefixes.push((h, path.to_owned())),
            None => r.error(
                &u.span,
                format!("`{p}.url_prefixes[{j}]`: `{}` does not start with a valid host (e.g. \"example.com/games/\")", u.value),
            ),
        }
    }
    let (mut extensions, mut mimes) = (Vec::new(), Vec::new());
    if let Some((item, fspan, field)) = o.get("file_types")
        && let Some(mut t) = Obj::table(r, item, field, &fspan)
    {
        for e in condition(r, t.get("extensions")).unwrap_or_default() {
            let x = e.value.trim().trim_start_matches('.').to_ascii_lowercase();
            if x.is_empty() || x.contains(['/', '.', ' ']) {
                r.error(
                    &e.span,
                    format!(
                        "`{p}.file_types.extensions`: `{}` is not a file extension",
                        e.value
                    ),
                );
            } else {
                extensions.push(x);
            }
        }
        for m in condition(r, t.get("mime")).unwrap_or_default() {
            let x = m.value.trim().to_ascii_lowercase();
            if x.split_once('/')
                .is_none_or(|(a, b)| a.is_empty() || b.is_empty())
            {
                r.error(&m.span, format!("`{p}.file_types.mime`: `{}` is not a MIME type (e.g. \"application/x-msdownload\")", m.value));
            } else {
                mimes.push(x);
            }
        }
        if t.entries.is_empty() {
            r.error(
                &fspan,
                format!("`{p}.file_types` is empty: give `extensions` and/or `mime`"),
            );
        }
        t.finish(r);
    }
    let groups = condition(r, o.get("groups"));
    let except_groups = condition(r, o.get("except_groups")).unwrap_or_default();
    let during = condition(r, o.get("during"));
    let outside = condition(r, o.get("outside")).unwrap_or_default();
    let teacher_override = boolean(r, o.get("teacher_override")).unwrap_or(false);
    let alert = parse_alert(r, o, &p);
    Some(RuleDef {
        id: id?,
        action: action?,
        document: document?,
        clause: clause?.value,
        message,
        categories,
        domains,
        url_prefixes,
        extensions,
        mimes,
        groups,
        except_groups,
        during,
        outside,
        teacher_override,
        alert,
    })
}

fn parse_alert(r: &mut Reporter, o: &mut Obj<'_>, p: &str) -> Option<Alert> {
    let (item, span, field) = o.get("alert")?;
    if let Some(s) = item.as_str() {
        if s != "none" {
            r.error(&span, format!("`{field}`: expected \"none\" or {{ kind = \"conduct\"|\"safeguarding\", severity = 1..5 }}"));
        }
        return None;
    }
    let mut t = Obj::table(r, item, field, &span)?;
    let kind = string(r, t.required("kind"));
    let severity = integer(r, t.required("severity"));
    t.finish(r);
    let kind = kind.and_then(|kind| match kind.value.as_str() {
        "conduct" => Some(AlertKind::Conduct),
        "safeguarding" => Some(AlertKind::Safeguarding),
        other => {
            r.error(&kind.span, format!("`{p}.alert.kind`: unknown kind `{other}` (expected \"conduct\" or \"safeguarding\")"));
            None
        }
    });
    let severity = severity.and_then(|sev| match u8::try_from(sev.value) {
        Ok(s) if (1..=5).contains(&s) => Some(s),
        _ => {
            r.error(
                &sev.span,
                format!(
                    "`{p}.alert.severity`: {} is out of range (1 to 5)",
                    sev.value
                ),
            );
            None
        }
    });
    Some(Alert {
        kind: kind?,
        severity: severity?,
    })
}
