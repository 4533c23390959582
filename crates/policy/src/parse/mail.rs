//! `[mail]` (the school's mail domains, the bulk threshold) and `[[mail_rules]]`.

use super::reader::*;
use super::rules::normalise_domain;
use crate::diag::Reporter;
use crate::mail::model::{MailDef, MailRuleDef};
use crate::mail::{AttachmentKind, Direction, LANGUAGE_THEMES, MailAction, PersonalDataRule};

pub(super) fn parse_mail(r: &mut Reporter, root: &mut Obj<'_>, web_rule_ids: &[&str]) -> MailDef {
    let mut def = MailDef::default();
    if let Some((item, span, field)) = root.get("mail")
        && let Some(mut o) = Obj::table(r, item, field, &span)
    {
        def.span = Some(o.span.clone());
        for (j, d) in condition(r, o.required("domains"))
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            match normalise_domain(d.value.trim_start_matches('@')) {
                Some(n) if !d.value.contains('*') => def.domains.push(n),
                _ => r.error(
                    &d.span,
                    format!(
                        "`mail.domains[{j}]`: `{}` is not a mail domain (e.g. \"wcs.london\")",
                        d.value
                    ),
                ),
            }
        }
        if let Some(t) = integer(r, o.get("bulk_threshold")) {
            match usize::try_from(t.value) {
                Ok(n) if n >= 1 => def.bulk_threshold = Some(n),
                _ => r.error(
                    &t.span,
                    format!("`mail.bulk_threshold`: {} must be at least 1 (personal data items in one message)", t.value),
                ),
            }
        }
        if let Some(b) = string(r, o.get("external_banner")) {
            let text = b.value.trim();
            // ASCII: it goes into bodies of any ASCII-compatible charset unchanged.
            if text.is_empty()
                || text.len() > 200
                || !text.chars().all(|c| c.is_ascii() && !c.is_ascii_control())
            {
                r.error(
                    &b.span,
                    "`mail.external_banner`: one line of 1 to 200 ASCII characters (it is put at the top of mail from outside the school)",
                );
            } else {
                def.external_banner = Some(text.to_owned());
            }
        }
        o.finish(r);
    }
    let rules_at = root.get("mail_rules");
    let rules_span = rules_at.as_ref().map(|g| g.1.clone());
    for (i, mut o) in Obj::array_of_tables(r, rules_at, "mail_rules") {
        if let Some(rule) = parse_mail_rule(r, &mut o, i) {
            if let Some(prev) = def.rules.iter().position(|p| p.id.value == rule.id.value) {
                r.error(
                    &rule.id.span,
                    format!(
                        "`mail_rules[{i}].id`: duplicate rule id `{}` (also mail_rules[{prev}])",
                        rule.id.value
                    ),
                );
            } else if web_rule_ids.contains(&rule.id.value.as_str()) {
                r.error(
                    &rule.id.span,
                    format!("`mail_rules[{i}].id`: `{}` is already the id of a web rule (`[[rules]]`); events name rules by id, so ids must differ", rule.id.value),
                );
            }
            def.rules.push(rule);
        }
        o.finish(r);
    }
    if let Some(span) = rules_span
        && def.span.is_none()
    {
        r.error(
            &span,
            "`mail_rules` needs a `[mail]` table naming the school's mail domains (`domains = [\"school.example\"]`), which tell inbound from outbound",
        );
    }
    def
}

fn one_of<T: Copy>(
    r: &mut Reporter,
    s: &crate::model::Sp<String>,
    field: &str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Option<T> {
    let found = all.iter().copied().find(|x| name(*x) == s.value);
    if found.is_none() {
        let expected: Vec<String> = all.iter().map(|x| format!("\"{}\"", name(*x))).collect();
        r.error(
            &s.span,
            format!(
                "`{field}`: unknown value `{}` (expected {})",
                s.value,
                expected.join(", ")
            ),
        );
    }
    found
}

fn parse_mail_rule(r: &mut Reporter, o: &mut Obj<'_>, i: usize) -> Option<MailRuleDef> {
    let p = format!("mail_rules[{i}]");
    let id = string(r, o.required("id"));
    if let Some(id) = &id {
        check_name(r, id, &format!("{p}.id"));
    }
    let action = string(r, o.required("action")).and_then(|a| {
        one_of(
            r,
            &a,
            &format!("{p}.action"),
            &MailAction::ALL,
            MailAction::as_str,
        )
    });
    let document = string(r, o.required("document"));
    let clause = string(r, o.required("clause"));
    let message = string(r, o.get("message")).map(|s| s.value);
    let directions: Vec<Direction> = condition(r, o.get("direction"))
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(j, d)| {
            one_of(
                r,
                d,
                &format!("{p}.direction[{j}]"),
                &Direction::ALL,
                Direction::as_str,
            )
        })
        .collect();
    let (mut sender_addresses, mut sender_domains) = (Vec::new(), Vec::new());
    let senders_at = o.get("senders");
    let has_senders = senders_at.is_some();
    for (j, s) in condition(r, senders_at)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let v = s.value.trim().to_ascii_lowercase();
        match v.split_once('@') {
            Some((local, dom)) if !local.is_empty() => match normalise_domain(dom) {
                Some(d) => sender_addresses.push(format!("{local}@{d}")),
                None => r.error(&s.span, format!("`{p}.senders[{j}]`: `{}` has no valid domain after `@`", s.value)),
            },
            _ => match normalise_domain(v.trim_start_matches('@')) {
                Some(d) if !v.contains('*') => sender_domains.push(d),
                _ => r.error(
                    &s.span,
                    format!("`{p}.senders[{j}]`: `{}` is neither an address (\"name@example.com\") nor a domain (\"example.com\")", s.value),
                ),
            },
        }
    }
    let attachments_at = o.get("attachments");
    let has_attachments = attachments_at.is_some();
    let attachments: Vec<AttachmentKind> = condition(r, attachments_at)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(j, a)| {
            one_of(
                r,
                a,
                &format!("{p}.attachments[{j}]"),
                &AttachmentKind::ALL,
                AttachmentKind::as_str,
            )
        })
        .collect();
    let personal_at = o.get("personal_data");
    let has_personal = personal_at.is_some();
    let personal_data = string(r, personal_at).and_then(|s| {
        one_of(
            r,
            &s,
            &format!("{p}.personal_data"),
            &PersonalDataRule::ALL,
            PersonalDataRule::as_str,
        )
    });
    let language_at = o.get("language");
    let has_language = language_at.is_some();
    let mut language = Vec::new();
    for (j, t) in condition(r, language_at)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if LANGUAGE_THEMES.contains(&t.value.as_str()) {
            language.push(t.value);
        } else {
            let expected: Vec<String> =
                LANGUAGE_THEMES.iter().map(|x| format!("\"{x}\"")).collect();
            r.error(
                &t.span,
                format!(
                    "`{p}.language[{j}]`: unknown theme `{}` (expected {})",
                    t.value,
                    expected.join(", ")
                ),
            );
        }
    }
    let mut count = |field: &'static str| -> Option<usize> {
        let n = integer(r, o.get(field))?;
        match usize::try_from(n.value) {
            Ok(v) if v >= 1 => Some(v),
            _ => {
                r.error(
                    &n.span,
                    format!("`{p}.{field}`: {} must be at least 1", n.value),
                );
                None
            }
        }
    };
    let max_recipients = count("max_recipients");
    let max_per_hour = count("max_per_hour");
    if !(has_senders
        || has_attachments
        || has_personal
        || has_language
        || max_recipients.is_some()
        || max_per_hour.is_some())
    {
        r.error(
            &o.span,
            format!("`{p}`: a mail rule needs a condition on the message: `senders`, `attachments`, `personal_data`, `language`, `max_recipients` and/or `max_per_hour` (else it would match every message)"),
        );
    }
    let alert = super::rules::parse_alert(r, o, &p);
    let groups = condition(r, o.get("groups"));
    let except_groups = condition(r, o.get("except_groups")).unwrap_or_default();
    let during = condition(r, o.get("during"));
    let outside = condition(r, o.get("outside")).unwrap_or_default();
    Some(MailRuleDef {
        id: id?,
        // An unknown action is already an error; reading on reports the rule's other
        // problems (unknown document, group) in the same run.
        action: action.unwrap_or(MailAction::Reject),
        document: document?,
        clause: clause?.value,
        message,
        directions,
        sender_addresses,
        sender_domains,
        attachments,
        personal_data,
        language,
        max_recipients,
        max_per_hour,
        alert,
        groups,
        except_groups,
        during,
        outside,
    })
}
