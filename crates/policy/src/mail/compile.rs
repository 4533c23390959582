//! `[[mail_rules]]` as written -> the compiled rules: documents, groups and periods
//! resolved (each unknown name reported where it was written), conditions as bitmasks.

use crate::compile::{known, resolve};
use crate::diag::Reporter;
use crate::groups::GroupSet;
use crate::mail::model::MailDef;
use crate::mail::{MailAction, MailPolicy, PersonalDataRule};

/// Personal data items in one message that make it "bulk" when `[mail] bulk_threshold`
/// is not given.
pub const DEFAULT_BULK_THRESHOLD: usize = 20;

#[derive(Debug, Clone)]
pub(crate) struct MailRule {
    pub(crate) id: String,
    pub(crate) action: MailAction,
    pub(crate) document: String,
    pub(crate) clause: String,
    pub(crate) message: String,
    /// `Direction::bit`s; 0 = any direction.
    pub(crate) directions: u8,
    pub(crate) sender_addresses: Vec<String>,
    pub(crate) sender_domains: Vec<String>,
    /// `AttachmentKind::bit`s; 0 = no attachment condition.
    pub(crate) attachments: u8,
    pub(crate) personal_data: Option<PersonalDataRule>,
    pub(crate) language: Vec<String>,
    pub(crate) max_recipients: Option<usize>,
    pub(crate) max_per_hour: Option<usize>,
    pub(crate) alert: Option<crate::decide::Alert>,
    pub(crate) groups: Option<GroupSet>,
    pub(crate) except_groups: GroupSet,
    pub(crate) during: Option<u64>,
    pub(crate) outside: u64,
}

pub(crate) struct Names<'a> {
    pub(crate) documents: &'a [(&'a str, &'a str)],
    pub(crate) groups: &'a [&'a str],
    pub(crate) periods: &'a [&'a str],
}

pub(crate) fn compile_mail(r: &mut Reporter, def: &MailDef, names: &Names<'_>) -> MailPolicy {
    let mut rules = Vec::new();
    for (i, rd) in def.rules.iter().enumerate() {
        let p = format!("mail_rules[{i}]");
        let doc_ids: Vec<&str> = names.documents.iter().map(|d| d.0).collect();
        let title = match names.documents.iter().find(|d| d.0 == rd.document.value) {
            Some(d) => d.1.to_owned(),
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
        let groups = rd.groups.as_ref().map(|g| {
            GroupSet::from_bits(resolve(r, g, names.groups, "group", &format!("{p}.groups")))
        });
        let except_groups = GroupSet::from_bits(resolve(
            r,
            &rd.except_groups,
            names.groups,
            "group",
            &format!("{p}.except_groups"),
        ));
        // At most 64 periods (an error in the main compile otherwise): bits fit a u64.
        let during = rd
            .during
            .as_ref()
            .map(|d| resolve(r, d, names.periods, "period", &format!("{p}.during")) as u64);
        let outside = resolve(
            r,
            &rd.outside,
            names.periods,
            "period",
            &format!("{p}.outside"),
        ) as u64;
        let message = rd.message.clone().unwrap_or_else(|| match rd.action {
            MailAction::Deliver => String::new(),
            _ => format!(
                "This message is not allowed by {title} clause {}.",
                rd.clause
            ),
        });
        rules.push(MailRule {
            id: rd.id.value.clone(),
            action: rd.action,
            document: rd.document.value.clone(),
            clause: rd.clause.clone(),
            message,
            directions: rd.directions.iter().fold(0, |m, d| m | d.bit()),
            sender_addresses: rd.sender_addresses.clone(),
            sender_domains: rd.sender_domains.clone(),
            attachments: rd.attachments.iter().fold(0, |m, k| m | k.bit()),
            personal_data: rd.personal_data,
            language: rd.language.clone(),
            max_recipients: rd.max_recipients,
            max_per_hour: rd.max_per_hour,
            alert: rd.alert,
            groups,
            except_groups,
            during,
            outside,
        });
    }
    MailPolicy {
        domains: def.domains.clone(),
        bulk_threshold: def.bulk_threshold.unwrap_or(DEFAULT_BULK_THRESHOLD),
        external_banner: def.external_banner.clone(),
        rules,
    }
}
