//! [`PolicyDoc`] -> [`Policy`]: resolves every name (documents, calendars, periods,
//! groups, categories), numbers groups and periods into bitmasks for the hot path, and
//! reports shadowed rules.

use std::collections::HashMap;

use crate::category::{CategoryMask, CategoryVocab};
use crate::decide::{DefaultAction, Verdict};
use crate::diag::{Diagnostic, Reporter};
use crate::groups::{Group, GroupId, GroupSet};
use crate::model::{PolicyDoc, Sp};
use crate::periods::Period;
use crate::policy::{DocumentInfo, Policy, Rule};
use crate::shadow;

/// Periods are cached per decision in a `u64`.
const MAX_PERIODS: usize = 64;

pub(crate) fn known(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Resolve a list of names against `names`, reporting each unknown one at its position.
pub(crate) fn resolve(
    r: &mut Reporter,
    list: &[Sp<String>],
    names: &[&str],
    kind: &str,
    field: &str,
) -> u128 {
    let mut bits = 0u128;
    for (i, n) in list.iter().enumerate() {
        match names.iter().position(|x| *x == n.value) {
            Some(p) if p < 128 => bits |= 1 << p,
            _ => r.error(
                &n.span,
                format!(
                    "`{field}[{i}]`: unknown {kind} `{}` (defined: {})",
                    n.value,
                    known(names)
                ),
            ),
        }
    }
    bits
}

impl PolicyDoc {
    /// Compile against the category vocabulary. `Ok` carries warnings (shadowed rules);
    /// `Err` carries every error found.
    pub fn compile(
        &self,
        vocab: &CategoryVocab,
    ) -> Result<(Policy, Vec<Diagnostic>), Vec<Diagnostic>> {
        let mut r = self.rep.clone();
        r.diags.clear();

        let doc_ids: Vec<&str> = self.documents.iter().map(|d| d.id.value.as_str()).collect();
        let cal_names: Vec<&str> = self
            .calendars
            .iter()
            .map(|c| c.name.value.as_str())
            .collect();
        let period_names: Vec<&str> = self.periods.iter().map(|p| p.name.value.as_str()).collect();
        let group_names: Vec<&str> = self.groups.iter().map(|g| g.name.value.as_str()).collect();

        let mut periods = Vec::new();
        for (i, p) in self.periods.iter().enumerate() {
            if i == MAX_PERIODS {
                r.error(
                    &p.name.span,
                    format!("too many periods: at most {MAX_PERIODS}"),
                );
            }
            let mut date_lists = vec![p.dates.clone()];
            let mut except = p.except.clone();
            if let Some(cal) = &p.calendar {
                match self.calendars.iter().find(|c| c.name.value == cal.value) {
                    Some(c) => {
                        date_lists.push(c.dates.clone());
                        except.extend(c.except.iter().copied());
                    }
                    None => r.error(
                        &cal.span,
                        format!(
                            "`periods.{}.calendar`: unknown calendar `{}` (defined: {})",
                            p.name.value,
                            cal.value,
                            known(&cal_names)
                        ),
                    ),
                }
            }
            periods.push(Period {
                name: p.name.value.clone(),
                days: p.days,
                times: p.times.clone(),
                date_lists,
                except,
            });
        }

        let mut groups = Vec::new();
        let mut unidentified: Option<GroupId> = None;
        for (i, g) in self.groups.iter().enumerate() {
            if i == GroupSet::CAPACITY {
                r.error(
                    &g.name.span,
                    format!("too many groups: at most {}", GroupSet::CAPACITY),
                );
            }
            if let Some(span) = &g.unidentified {
                match unidentified {
                    None => unidentified = u8::try_from(i).ok().map(GroupId),
                    Some(first) => r.error(
                        span,
                        format!(
                            "`groups.{}.unidentified`: only one group can be for unidentified clients (already `{}`)",
                            g.name.value,
                            group_names.get(usize::from(first.0)).unwrap_or(&"?")
                        ),
                    ),
                }
            }
            if let Some(d) = &g.default.document
                && !doc_ids.contains(&d.value.as_str())
            {
                r.error(
                    &d.span,
                    format!(
                        "`groups.{}.default.document`: unknown document `{}` (defined: {})",
                        g.name.value,
                        d.value,
                        known(&doc_ids)
                    ),
                );
            }
            groups.push(Group {
                name: g.name.value.clone(),
                roles: g.roles.clone(),
                years: g.years.clone(),
                memberships: g.memberships.clone(),
                networks: g.networks.clone(),
                default: DefaultAction {
                    action: g.default.action,
                    document: g.default.document.as_ref().map(|d| d.value.clone()),
                    clause: g.default.clause.clone(),
                    message: g.default.message.clone(),
                },
                safe_search: g.safe_search,
            });
        }
        if unidentified.is_none() {
            let span = self.groups.first().map_or(0..0, |g| g.name.span.clone());
            r.error(
                &span,
                "`groups`: no group has `unidentified = true`; one group must take clients nobody could identify",
            );
        }

        let declarations = self.compile_declarations(&mut r, &group_names, |i| {
            groups
                .get(i)
                .is_some_and(|g: &Group| g.default.action == Verdict::Allow)
        });

        let mut cat_ids: HashMap<String, u8> = HashMap::new();
        // 256 slots, indexed by `u8` ids below: cannot go out of bounds.
        let mut cat_names: Vec<Option<String>> = vec![None; 256];
        for (name, id) in vocab.pairs() {
            cat_ids.insert(name.to_owned(), id);
            let slot = &mut cat_names[usize::from(id)];
            if slot.is_none() {
                *slot = Some(name.to_owned());
            }
        }

        let mut rules = Vec::new();
        for (i, rd) in self.rules.iter().enumerate() {
            let p = format!("rules[{i}]");
            let title = match self
                .documents
                .iter()
                .find(|d| d.id.value == rd.document.value)
            {
                Some(d) => d.title.clone(),
                None => {
                    r.error(
                        &rd.document.span,
                        format!(
                            "`{p}.document`: unknown document `{}` (defined: {})",
                            rd.document.value,
                            known(&doc_ids)
                        ),
                    );
                    String::new()
                }
            };
            let mut categories = CategoryMask::EMPTY;
            for (j, c) in rd.categories.iter().enumerate() {
                let id = match cat_ids.get(&c.value) {
                    Some(id) => Some(*id),
                    None if vocab.is_open() => {
                        let next = cat_names
                            .iter()
                            .position(Option::is_none)
                            .and_then(|n| u8::try_from(n).ok());
                        if let Some(id) = next {
                            cat_ids.insert(c.value.clone(), id);
                            cat_names[usize::from(id)] = Some(c.value.clone());
                        }
                        next
                    }
                    None => None,
                };
                match id {
                    Some(id) => categories.insert(id),
                    None if vocab.is_open() => r.error(&c.span, format!("`{p}.categories[{j}]`: more than 256 categories")),
                    None => r.error(
                        &c.span,
                        format!("`{p}.categories[{j}]`: unknown category `{}` (not in the category catalog)", c.value),
                    ),
                }
            }
            let groups_mask = rd.groups.as_ref().map(|g| {
                GroupSet::from_bits(resolve(
                    &mut r,
                    g,
                    &group_names,
                    "group",
                    &format!("{p}.groups"),
                ))
            });
            let except_groups = GroupSet::from_bits(resolve(
                &mut r,
                &rd.except_groups,
                &group_names,
                "group",
                &format!("{p}.except_groups"),
            ));
            // Period bits above 63 cannot exist: more than 64 periods is an error above.
            let during = rd.during.as_ref().map(|d| {
                resolve(&mut r, d, &period_names, "period", &format!("{p}.during")) as u64
            });
            let outside = resolve(
                &mut r,
                &rd.outside,
                &period_names,
                "period",
                &format!("{p}.outside"),
            ) as u64;
            let mut domains: Vec<Box<str>> = rd.domains.iter().map(|d| d.as_str().into()).collect();
            domains.sort_unstable();
            domains.dedup();
            let message = rd.message.clone().unwrap_or_else(|| match rd.action {
                Verdict::Allow => String::new(),
                _ => format!("This site is restricted by {title} clause {}.", rd.clause),
            });
            rules.push(Rule {
                id: rd.id.value.clone(),
                action: rd.action,
                document: rd.document.value.clone(),
                clause: rd.clause.clone(),
                message,
                categories,
                domains: domains.into_boxed_slice(),
                url_prefixes: rd.url_prefixes.clone(),
                extensions: rd.extensions.clone(),
                mimes: rd.mimes.clone(),
                groups: groups_mask,
                except_groups,
                during,
                outside,
                teacher_override: rd.teacher_override,
                alert: rd.alert,
            });
        }

        let doc_titles: Vec<(&str, &str)> = self
            .documents
            .iter()
            .map(|d| (d.id.value.as_str(), d.title.as_str()))
            .collect();
        let names = crate::mail::compile::Names {
            documents: &doc_titles,
            groups: &group_names,
            periods: &period_names,
        };
        let mail = crate::mail::compile::compile_mail(&mut r, &self.mail, &names);

        if r.has_errors() {
            return Err(r.sorted());
        }
        // `rules` was built one-for-one from `self.rules`, so the indexes agree.
        for (j, i) in shadow::shadowed(&rules) {
            let (rj, ri) = (&self.rules[j], &self.rules[i]);
            r.warning(
                &rj.id.span,
                format!(
                    "`rules[{j}]` (`{}`) can never match: `rules[{i}]` (`{}`) comes first and matches every request it would",
                    rj.id.value, ri.id.value
                ),
            );
        }
        let policy = Policy {
            school_name: self.school_name.clone(),
            timezone_name: self.timezone_name.clone(),
            timezone: self.timezone.clone(),
            documents: self
                .documents
                .iter()
                .map(|d| DocumentInfo {
                    id: d.id.value.clone(),
                    title: d.title.clone(),
                    version: d.version.clone(),
                })
                .collect(),
            dns: self.dns.clone(),
            periods,
            groups,
            unidentified: unidentified.unwrap_or(GroupId(0)),
            declarations,
            rules,
            mail,
            category_names: cat_names,
            category_ids: cat_ids,
        };
        Ok((policy, r.sorted()))
    }
}
