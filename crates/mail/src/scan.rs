//! One message's content, as the mail rules need it: the MIME structure parsed
//! (`mail-parser`), every attachment inspected by its bytes, and the personal data in
//! the subject and in what is readable in transit (text bodies, text attachments, the
//! text files of unencrypted archives), and the language of the subject and texts
//! (safeguarding themes, offensive words). An attached message is walked too, to a depth.

use std::collections::BTreeSet;

use hallpass_mail_detect::{PersonalData, inspect_attachment, personal_data};
use hallpass_policy::{AttachmentKind, GroupSet, MailDecision, MailFacts, Policy};
use mail_parser::{MessageParser, MimeHeaders, PartType};

use crate::language::{LanguageHit, add_language};

/// Attached messages inside attached messages are walked this deep, no further.
const MAX_DEPTH: usize = 3;
/// Characters of body text kept for the event's content.
const PREVIEW_CHARS: usize = 2000;

/// One attachment, as inspected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttachmentSummary {
    /// The name the sender gave (empty when none).
    pub name: String,
    /// By magic bytes, when recognised.
    pub real_type: Option<&'static str>,
    /// Detector flag names (`executable`, `double-extension`, ...).
    pub flags: Vec<&'static str>,
    pub encrypted: bool,
    pub bytes: usize,
}

/// What [`scan`] found in one message.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub subject: Option<String>,
    /// MIME parts, attached messages' included.
    pub parts: usize,
    pub attachments: Vec<AttachmentSummary>,
    pub personal_in_subject: PersonalData,
    /// Subject, text bodies, text attachments, unencrypted archives' text files.
    pub personal_readable: PersonalData,
    /// The start of the first text body, for the event's content.
    pub body_preview: String,
    /// Language themes in the subject and texts, most severe first.
    pub language: Vec<LanguageHit>,
}

impl Scan {
    pub fn attachment_kinds(&self) -> Vec<AttachmentKind> {
        let set: BTreeSet<&str> = self
            .attachments
            .iter()
            .flat_map(|a| a.flags.iter().copied())
            .collect();
        set.into_iter()
            .filter_map(AttachmentKind::from_name)
            .collect()
    }

    /// Every detector that fired: `attachment:executable`, `personal:ni-number`, ...
    pub fn detectors(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .attachment_kinds()
            .iter()
            .map(|k| format!("attachment:{}", k.as_str()))
            .collect();
        for k in self.personal_readable.kinds() {
            out.push(format!("personal:{k}"));
        }
        if !self.personal_in_subject.is_empty() {
            out.push("personal:in-subject".into());
        }
        for hit in &self.language {
            out.push(format!("language:{}", hit.theme));
        }
        out
    }
}

/// Parses and inspects one message (the bytes after DATA, headers included).
pub fn scan(message: &[u8]) -> Scan {
    let mut out = Scan::default();
    match MessageParser::default().parse(message) {
        Some(parsed) => {
            let subject = parsed.subject().map(str::to_owned);
            if let Some(s) = &subject {
                out.personal_in_subject = personal_data(s);
                out.personal_readable.add(&out.personal_in_subject);
                add_language(&mut out.language, s);
            }
            out.subject = subject;
            walk(&parsed, 0, &mut out);
        }
        // Only an empty message has no structure at all; read what there is as text.
        None => {
            let text = String::from_utf8_lossy(message);
            out.personal_readable.add(&personal_data(&text));
            add_language(&mut out.language, &text);
            out.body_preview = text.chars().take(PREVIEW_CHARS).collect();
        }
    }
    out.language
        .sort_by(|a, b| b.severity.cmp(&a.severity).then(a.theme.cmp(b.theme)));
    out
}

fn walk(msg: &mail_parser::Message<'_>, depth: usize, out: &mut Scan) {
    out.parts += msg.parts.len();
    let mut seen = BTreeSet::new();
    for (i, id) in msg.text_body.iter().enumerate() {
        seen.insert(*id);
        if let Some(text) = msg.body_text(i) {
            out.personal_readable.add(&personal_data(&text));
            add_language(&mut out.language, &text);
            if out.body_preview.is_empty() {
                out.body_preview = text.chars().take(PREVIEW_CHARS).collect();
            }
        }
    }
    for id in &msg.attachments {
        if !seen.insert(*id) {
            continue;
        }
        let Some(part) = msg.parts.get(*id as usize) else {
            continue;
        };
        match &part.body {
            PartType::Message(inner) => {
                if depth < MAX_DEPTH {
                    walk(inner, depth + 1, out);
                }
            }
            PartType::Text(text) => {
                out.personal_readable.add(&personal_data(text));
                add_language(&mut out.language, text);
                inspect(part.attachment_name().unwrap_or(""), text.as_bytes(), out);
            }
            PartType::Html(html) => {
                out.personal_readable.add(&personal_data(html));
                inspect(part.attachment_name().unwrap_or(""), html.as_bytes(), out);
            }
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                inspect(part.attachment_name().unwrap_or(""), bytes, out);
            }
            PartType::Multipart(_) => {}
        }
    }
}

fn inspect(name: &str, bytes: &[u8], out: &mut Scan) {
    let report = inspect_attachment(name, bytes);
    if !report.encrypted {
        for text in &report.archive_texts {
            out.personal_readable.add(&personal_data(text));
        }
    }
    out.attachments.push(AttachmentSummary {
        name: name.to_owned(),
        real_type: report.real_type,
        flags: report.flags.iter().map(|f| f.name()).collect(),
        encrypted: report.encrypted,
        bytes: bytes.len(),
    });
}

/// The addresses in the header fields `names` (`From`, `To`, `Cc`), lower case: the
/// envelope a dry run assumes when none is given.
pub fn header_addresses(message: &[u8], names: &[&str]) -> Vec<String> {
    let Some(parsed) = MessageParser::default().parse_headers(message) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names {
        for value in parsed.header_values(*name) {
            if let Some(addr) = value.as_address() {
                out.extend(
                    addr.iter()
                        .filter_map(|a| a.address())
                        .map(str::to_ascii_lowercase),
                );
            }
        }
    }
    out
}

/// A message decided: what was found and what the policy made of it.
#[derive(Debug, Clone)]
pub struct Checked {
    pub scan: Scan,
    pub decision: MailDecision,
}

/// Scans `message` and decides it for a sender in `groups` at `now`: what
/// `hallpass mail check` prints (no send rate: a dry run has no history).
pub fn check(
    policy: &Policy,
    sender: &str,
    recipients: &[String],
    groups: GroupSet,
    message: &[u8],
    now: jiff::Timestamp,
) -> Checked {
    check_at_rate(policy, sender, recipients, groups, 0, message, now)
}

/// [`check`] for a sender who sent `sent_last_hour` messages in the hour before this
/// one: what the relay does after DATA.
pub fn check_at_rate(
    policy: &Policy,
    sender: &str,
    recipients: &[String],
    groups: GroupSet,
    sent_last_hour: usize,
    message: &[u8],
    now: jiff::Timestamp,
) -> Checked {
    let scan = scan(message);
    let kinds = scan.attachment_kinds();
    let language: Vec<&str> = scan.language.iter().map(|h| h.theme).collect();
    let facts = MailFacts {
        language: &language,
        sent_last_hour,
        sender,
        recipients,
        groups,
        attachments: &kinds,
        personal_in_subject: scan.personal_in_subject.total(),
        personal_readable: scan.personal_readable.total(),
    };
    let decision = policy.decide_mail(&facts, now);
    Checked { scan, decision }
}
