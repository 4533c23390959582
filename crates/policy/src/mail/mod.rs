//! Mail rules: the `[mail]` table (the school's own mail domains, the bulk personal data
//! threshold) and the ordered `[[mail_rules]]`. A message is decided from
//! [`MailFacts`] (envelope, sender's groups, what the content detectors found): the
//! first matching rule gives the verdict (reject, quarantine or deliver) and the clause
//! it cites; no match delivers. The facts are plain data, so this stays pure and knows
//! nothing of MIME or of the detectors that produced them.

pub(crate) mod compile;
pub(crate) mod model;

use jiff::Timestamp;

use crate::groups::GroupSet;
use crate::policy::Policy;

/// What happens to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailAction {
    Deliver,
    /// Held for a manager's release.
    Quarantine,
    /// Refused inside the SMTP session (5xx), citing the clause.
    Reject,
}

impl MailAction {
    pub const ALL: [MailAction; 3] = [
        MailAction::Deliver,
        MailAction::Quarantine,
        MailAction::Reject,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MailAction::Deliver => "deliver",
            MailAction::Quarantine => "quarantine",
            MailAction::Reject => "reject",
        }
    }
}

/// Where a message goes, from the school's mail domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From outside the school.
    Inbound,
    /// From the school to at least one address outside it.
    Outbound,
    /// From the school to the school only.
    Internal,
}

impl Direction {
    pub const ALL: [Direction; 3] = [Direction::Inbound, Direction::Outbound, Direction::Internal];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Internal => "internal",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// What the attachment detectors may report (the names match the detector's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttachmentKind {
    Executable,
    Script,
    DoubleExtension,
    NestedExecutable,
    EncryptedArchive,
    UnreadableArchive,
}

impl AttachmentKind {
    pub const ALL: [AttachmentKind; 6] = [
        AttachmentKind::Executable,
        AttachmentKind::Script,
        AttachmentKind::DoubleExtension,
        AttachmentKind::NestedExecutable,
        AttachmentKind::EncryptedArchive,
        AttachmentKind::UnreadableArchive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentKind::Executable => "executable",
            AttachmentKind::Script => "script",
            AttachmentKind::DoubleExtension => "double-extension",
            AttachmentKind::NestedExecutable => "nested-executable",
            AttachmentKind::EncryptedArchive => "encrypted-archive",
            AttachmentKind::UnreadableArchive => "unreadable-archive",
        }
    }

    pub fn from_name(name: &str) -> Option<AttachmentKind> {
        AttachmentKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The personal data conditions a mail rule may have (ICT policy 000 §5.3–5.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PersonalDataRule {
    /// Personal data in the subject line (§5.7).
    Subject,
    /// Personal data readable in transit (body, unencrypted attachment) to an external
    /// recipient (§5.3–5.4).
    UnencryptedExternal,
    /// At least `[mail] bulk_threshold` readable items to an external recipient.
    BulkExternal,
}

impl PersonalDataRule {
    pub const ALL: [PersonalDataRule; 3] = [
        PersonalDataRule::Subject,
        PersonalDataRule::UnencryptedExternal,
        PersonalDataRule::BulkExternal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PersonalDataRule::Subject => "subject",
            PersonalDataRule::UnencryptedExternal => "unencrypted-external",
            PersonalDataRule::BulkExternal => "bulk-external",
        }
    }
}

/// The language themes a mail rule's `language` may name: the detection crate's
/// safeguarding themes and `offensive-language` (obscene, rude or abusive words, 001).
/// The mail crate's tests check this list against the detector's own.
pub const LANGUAGE_THEMES: [&str; 9] = [
    "offensive-language",
    "self-harm",
    "extremism",
    "bullying",
    "sexual-exploitation",
    "drugs",
    "weapons",
    "hate",
    "adult",
];

/// One message as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct MailFacts<'a> {
    /// Envelope sender (`MAIL FROM`), empty for bounces.
    pub sender: &'a str,
    /// Envelope recipients (`RCPT TO`).
    pub recipients: &'a [String],
    /// The sender's groups (empty when the sender is nobody on the roster).
    pub groups: GroupSet,
    /// Every flag any attachment raised.
    pub attachments: &'a [AttachmentKind],
    /// Personal data items in the subject.
    pub personal_in_subject: usize,
    /// Personal data items readable in transit: subject, body, unencrypted attachments.
    pub personal_readable: usize,
    /// Language themes the text detectors found (names from [`LANGUAGE_THEMES`]).
    pub language: &'a [&'a str],
    /// Messages this sender sent in the hour before this one (0 when not counted).
    pub sent_last_hour: usize,
}

/// The verdict for one message and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailDecision {
    pub action: MailAction,
    pub direction: Direction,
    /// The rule that decided; `None` when no rule matched (delivered).
    pub rule: Option<String>,
    pub document: Option<String>,
    pub clause: Option<String>,
    pub message: String,
    /// The rule's conditions the message met (`sender blocked.example`,
    /// `attachment executable`, `personal data in subject (1)`).
    pub matched: Vec<String>,
    /// The alert the deciding rule raises (`alert = { kind, severity }`).
    pub alert: Option<crate::decide::Alert>,
}

/// The compiled `[mail]` table and `[[mail_rules]]`.
#[derive(Debug, Clone, Default)]
pub struct MailPolicy {
    /// Lower case, no trailing dot.
    pub(crate) domains: Vec<String>,
    pub(crate) bulk_threshold: usize,
    pub(crate) external_banner: Option<String>,
    pub(crate) rules: Vec<compile::MailRule>,
}

/// A mail rule that raises an alert, for the safeguarding follower.
#[derive(Debug, Clone, Copy)]
pub struct MailRuleAlert<'a> {
    pub id: &'a str,
    pub document: &'a str,
    pub clause: &'a str,
    pub alert: crate::decide::Alert,
}

/// The domain of an address (`a@b.example` -> `b.example`), lower case.
pub fn address_domain(addr: &str) -> Option<String> {
    let (_, d) = addr.trim().trim_matches(['<', '>']).rsplit_once('@')?;
    let d = d.trim_end_matches('.').to_ascii_lowercase();
    (!d.is_empty()).then_some(d)
}

fn domain_within(domain: &str, parent: &str) -> bool {
    domain == parent
        || domain
            .strip_suffix(parent)
            .is_some_and(|rest| rest.ends_with('.'))
}

impl MailPolicy {
    /// The school's own mail domains (`[mail] domains`).
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    pub fn bulk_threshold(&self) -> usize {
        self.bulk_threshold
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The banner for inbound mail from outside the school (`[mail] external_banner`).
    pub fn external_banner(&self) -> Option<&str> {
        self.external_banner.as_deref()
    }

    /// Whether any rule looks at the message's language (so the text is worth reading).
    pub fn needs_language(&self) -> bool {
        self.rules.iter().any(|r| !r.language.is_empty())
    }

    /// Whether any rule counts the sender's messages per hour.
    pub fn needs_rate(&self) -> bool {
        self.rules.iter().any(|r| r.max_per_hour.is_some())
    }

    /// The mail rules that raise an alert, in policy order.
    pub fn alert_rules(&self) -> impl Iterator<Item = MailRuleAlert<'_>> {
        self.rules.iter().filter_map(|r| {
            Some(MailRuleAlert {
                id: &r.id,
                document: &r.document,
                clause: &r.clause,
                alert: r.alert?,
            })
        })
    }

    /// The mail rule `id`, when it raises an alert.
    pub fn alert_rule(&self, id: &str) -> Option<MailRuleAlert<'_>> {
        self.alert_rules().find(|r| r.id == id)
    }

    /// Whether `addr` is in one of the school's domains (or a subdomain of one).
    pub fn is_internal(&self, addr: &str) -> bool {
        address_domain(addr).is_some_and(|d| self.domains.iter().any(|s| domain_within(&d, s)))
    }

    pub fn direction(&self, sender: &str, recipients: &[String]) -> Direction {
        if !self.is_internal(sender) {
            Direction::Inbound
        } else if recipients.iter().all(|r| self.is_internal(r)) {
            Direction::Internal
        } else {
            Direction::Outbound
        }
    }
}

impl Policy {
    pub fn mail(&self) -> &MailPolicy {
        &self.mail
    }

    /// Decides one message at `now` (for rules limited to periods): the first matching
    /// mail rule, else deliver.
    pub fn decide_mail(&self, facts: &MailFacts<'_>, now: Timestamp) -> MailDecision {
        let mail = &self.mail;
        let direction = mail.direction(facts.sender, facts.recipients);
        let external = facts.recipients.iter().any(|r| !mail.is_internal(r));
        let mut local = None;
        for rule in &mail.rules {
            let mut in_period = |mask: u64| {
                let local = *local.get_or_insert_with(|| self.timezone.to_datetime(now));
                (0..64).any(|p| {
                    mask & (1 << p) != 0
                        && self.periods.get(p).is_some_and(|per| per.contains(local))
                })
            };
            if let Some(g) = rule.groups
                && !g.intersects(facts.groups)
            {
                continue;
            }
            if rule.except_groups.intersects(facts.groups)
                || rule.directions != 0 && rule.directions & direction.bit() == 0
                || rule.during.is_some_and(|m| !in_period(m))
                || rule.outside != 0 && in_period(rule.outside)
            {
                continue;
            }
            let Some(matched) = rule.content_matches(facts, external, mail.bulk_threshold) else {
                continue;
            };
            return MailDecision {
                action: rule.action,
                direction,
                rule: Some(rule.id.clone()),
                document: Some(rule.document.clone()),
                clause: Some(rule.clause.clone()),
                message: rule.message.clone(),
                matched,
                alert: rule.alert,
            };
        }
        MailDecision {
            action: MailAction::Deliver,
            direction,
            rule: None,
            document: None,
            clause: None,
            message: String::new(),
            matched: Vec::new(),
            alert: None,
        }
    }
}

impl compile::MailRule {
    /// The content conditions (all given ones must hold): what matched, or `None`.
    fn content_matches(
        &self,
        facts: &MailFacts<'_>,
        external: bool,
        bulk_threshold: usize,
    ) -> Option<Vec<String>> {
        let mut matched = Vec::new();
        if !self.sender_addresses.is_empty() || !self.sender_domains.is_empty() {
            let sender = facts
                .sender
                .trim()
                .trim_matches(['<', '>'])
                .to_ascii_lowercase();
            let domain = address_domain(&sender).unwrap_or_default();
            if let Some(a) = self.sender_addresses.iter().find(|a| **a == sender) {
                matched.push(format!("sender {a}"));
            } else if let Some(d) = self
                .sender_domains
                .iter()
                .find(|d| domain_within(&domain, d))
            {
                matched.push(format!("sender domain {d}"));
            } else {
                return None;
            }
        }
        if self.attachments != 0 {
            let hit: Vec<&str> = facts
                .attachments
                .iter()
                .filter(|k| self.attachments & k.bit() != 0)
                .map(|k| k.as_str())
                .collect();
            if hit.is_empty() {
                return None;
            }
            for h in hit {
                let s = format!("attachment {h}");
                if !matched.contains(&s) {
                    matched.push(s);
                }
            }
        }
        if let Some(p) = self.personal_data {
            let ok = match p {
                PersonalDataRule::Subject => facts.personal_in_subject > 0,
                PersonalDataRule::UnencryptedExternal => external && facts.personal_readable > 0,
                PersonalDataRule::BulkExternal => {
                    external && facts.personal_readable >= bulk_threshold
                }
            };
            if !ok {
                return None;
            }
            let n = match p {
                PersonalDataRule::Subject => facts.personal_in_subject,
                _ => facts.personal_readable,
            };
            matched.push(format!("personal data {} ({n} items)", p.as_str()));
        }
        if !self.language.is_empty() {
            let hit: Vec<&str> = facts
                .language
                .iter()
                .copied()
                .filter(|t| self.language.iter().any(|l| l == t))
                .collect();
            if hit.is_empty() {
                return None;
            }
            matched.push(format!("language {}", hit.join(", ")));
        }
        if let Some(max) = self.max_recipients {
            if facts.recipients.len() <= max {
                return None;
            }
            matched.push(format!(
                "{} recipients (at most {max})",
                facts.recipients.len()
            ));
        }
        if let Some(max) = self.max_per_hour {
            if facts.sent_last_hour < max {
                return None;
            }
            matched.push(format!(
                "{} messages in the last hour (at most {max})",
                facts.sent_last_hour
            ));
        }
        Some(matched)
    }
}
