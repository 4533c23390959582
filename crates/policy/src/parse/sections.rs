//! The top level: `version`, `[school]`, `[[documents]]`, `[dns]`, and the named
//! sections (`[calendars.*]`, `[periods.*]`, `[groups.*]`) handed to their readers.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use jiff::tz::{TimeZone, TimeZoneDatabase};

use super::reader::*;
use super::rules::parse_rules;
use super::schedule::{parse_calendar, parse_period};
use super::who::parse_group;
use crate::diag::Reporter;
use crate::model::*;
use crate::{BlockMode, DnsSettings};

pub(super) fn parse_root(r: &mut Reporter, root: &mut Obj<'_>) -> PolicyDoc {
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
    let declarations = super::declarations::parse_declarations(r, root);
    let dns = parse_dns(r, root);
    let calendars = parse_named(r, root, "calendars", parse_calendar);
    let periods = parse_named(r, root, "periods", parse_period);
    let groups = parse_named(r, root, "groups", parse_group);
    let rules = parse_rules(r, root);
    let web_rule_ids: Vec<&str> = rules.iter().map(|x| x.id.value.as_str()).collect();
    let mail = super::mail::parse_mail(r, root, &web_rule_ids);
    PolicyDoc {
        rep: r.clone(),
        school_name,
        timezone_name,
        // A bad zone is already an error; UTC only lets name checks carry on.
        timezone: timezone.unwrap_or(TimeZone::UTC),
        documents,
        declarations,
        dns,
        calendars,
        periods,
        groups,
        rules,
        mail,
    }
}

pub(super) fn parse_school(
    r: &mut Reporter,
    root: &mut Obj<'_>,
) -> (String, String, Option<TimeZone>) {
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

pub(super) fn parse_documents(r: &mut Reporter, root: &mut Obj<'_>) -> Vec<DocumentDef> {
    let mut out: Vec<DocumentDef> = Vec::new();
    for (i, mut o) in Obj::array_of_tables(r, root.required("documents"), "documents") {
        let id = string(r, o.required("id"));
        let title = string(r, o.required("title"));
        let version = string(r, o.get("version"));
        let declaration = super::declarations::parse_declaration(
            r,
            o.get("declaration"),
            i,
            title.as_ref().map(|t| t.value.as_str()),
            version.as_ref(),
        );
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
                declaration,
            });
        }
    }
    out
}

pub(super) fn parse_dns(r: &mut Reporter, root: &mut Obj<'_>) -> DnsSettings {
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
pub(super) fn parse_named<T>(
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
