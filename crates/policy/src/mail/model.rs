//! The `[mail]` table and `[[mail_rules]]` as written, with spans for the compiler.

use crate::mail::{AttachmentKind, Direction, MailAction, PersonalDataRule};
use crate::model::Sp;

#[derive(Debug, Clone, Default)]
pub(crate) struct MailDef {
    /// Where `[mail]` was written (for "mail rules need `[mail] domains`").
    pub(crate) span: Option<crate::model::Span>,
    /// Lower case, no trailing dot.
    pub(crate) domains: Vec<String>,
    pub(crate) bulk_threshold: Option<usize>,
    /// The line put at the top of inbound mail from outside the school's domains.
    pub(crate) external_banner: Option<String>,
    pub(crate) rules: Vec<MailRuleDef>,
}

#[derive(Debug, Clone)]
pub(crate) struct MailRuleDef {
    pub(crate) id: Sp<String>,
    pub(crate) action: MailAction,
    pub(crate) document: Sp<String>,
    pub(crate) clause: String,
    pub(crate) message: Option<String>,
    pub(crate) directions: Vec<Direction>,
    /// Lower case.
    pub(crate) sender_addresses: Vec<String>,
    /// Lower case, no leading `@` or dot.
    pub(crate) sender_domains: Vec<String>,
    pub(crate) attachments: Vec<AttachmentKind>,
    pub(crate) personal_data: Option<PersonalDataRule>,
    /// Theme names (`offensive-language`, `bullying`, ...), checked against
    /// [`crate::mail::LANGUAGE_THEMES`].
    pub(crate) language: Vec<String>,
    /// Matches a message with more recipients than this.
    pub(crate) max_recipients: Option<usize>,
    /// Matches once the sender has sent this many messages in the last hour.
    pub(crate) max_per_hour: Option<usize>,
    pub(crate) alert: Option<crate::decide::Alert>,
    pub(crate) groups: Option<Vec<Sp<String>>>,
    pub(crate) except_groups: Vec<Sp<String>>,
    pub(crate) during: Option<Vec<Sp<String>>>,
    pub(crate) outside: Vec<Sp<String>>,
}
