//! Groups: roles, year groups, memberships, networks, defaults and safe search.

use std::str::FromStr;

use ipnet::IpNet;
use toml_edit::Value;

use super::reader::*;
use super::schedule::parse_action;
use crate::decide::Action;
use crate::diag::Reporter;
use crate::model::*;
use crate::{SafeSearch, YouTubeMode};

pub(super) fn parse_group(r: &mut Reporter, name: Sp<String>, o: &mut Obj<'_>) -> GroupDef {
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

pub(super) fn parse_default(r: &mut Reporter, o: &mut Obj<'_>, path: &str) -> DefaultDef {
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

pub(super) fn parse_safe_search(r: &mut Reporter, o: &mut Obj<'_>, path: &str) -> SafeSearch {
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
