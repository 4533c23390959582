//! The email enforcement point: an SMTP relay filter between the school's MTA and the
//! next hop (Postfix `content_filter` / `smtpd_proxy_filter`, or as a smarthost). Each
//! message is decided inside the SMTP session: after DATA it is parsed (`mail-parser`),
//! its attachments and text run through the detectors (`hallpass-mail-detect`), and the
//! policy's mail rules give a verdict citing a clause: rejected with a 5xx naming it,
//! held in quarantine, or forwarded, with 250 only after the next hop accepted (a next
//! hop that is down gives 451, so the sending MTA keeps and retries the message).
//! [`serve_milter`] offers the same decision to an MTA over the milter protocol
//! (Postfix `smtpd_milters`), which then delivers itself.
//!
//! The crate knows nothing of the store or the engine: `serve` gives the relay a
//! [`MailContext`] (policy in force, the roster's addresses, clock, event log,
//! quarantine). [`check`] is the same decision without SMTP, for `hallpass mail check`.

mod banner;
mod language;
mod login;
mod milter;
mod next_hop;
mod rate;
mod receive;
mod relay;
mod scan;
mod session;
mod tls;
mod verdict;

pub use banner::add_banner;
pub use language::{LanguageHit, OFFENSIVE_LIST, language};
pub use login::authenticated_sender;
pub use milter::serve_milter;
pub use next_hop::{ForwardError, NextHop, Streaming};
pub use rate::SendRate;
pub use relay::{MailContext, MessageRecord, Outcome, RelayConfig, Sender, serve};
pub use scan::{AttachmentSummary, Checked, Scan, check, check_at_rate, header_addresses, scan};
pub use session::{Envelope, Reply, Session, SessionLimits, Step};
pub use tls::{Tls, TlsError};
