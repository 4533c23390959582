//! `[[rules]]`: conditions (categories, domains, URL prefixes, file types, groups,
//! periods), action, citation and alert.

use super::reader::*;
use super::schedule::parse_action;
use crate::decide::{Alert, AlertKind};
use crate::diag::Reporter;
use crate::model::*;

pub(super) fn parse_rules(r: &mut Reporter, root: &mut Obj<'_>) -> Vec<RuleDef> {
    let mut out: Vec<RuleDef> = Vec::new();
    for (i, mut o) in Obj::array_of_tables(r, root.get("rules"), "rules") {
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

pub(super) fn normalise_domain(s: &str) -> Option<String> {
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

pub(super) fn parse_rule(r: &mut Reporter, o: &mut Obj<'_>, i: usize) -> Option<RuleDef> {
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

pub(super) fn parse_alert(r: &mut Reporter, o: &mut Obj<'_>, p: &str) -> Option<Alert> {
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
