//! What an email carries, found without trusting its labels: an attachment's real type
//! from its first bytes (an `.exe` renamed `.pdf` is still an executable), double
//! extensions (`report.pdf.exe`), ZIP archives opened one level (executables inside,
//! password-protected entries), encrypted documents (encrypted ZIP, Office or PDF), and
//! UK personal data in text: National Insurance numbers, NHS numbers (mod-11 checksum),
//! unique pupil numbers (check letter) and dates of birth beside a name.
//!
//! Pure: no IO and no clock. The mail relay and `hallpass mail check` hand it bytes and
//! text already taken out of the MIME structure; it returns findings, and the policy
//! decides what they mean.
//!
//! ```
//! use hallpass_mail_detect::{inspect_attachment, personal_data, AttachmentFlag};
//! let exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00";
//! let report = inspect_attachment("invoice.pdf", exe);
//! assert!(report.flags.contains(&AttachmentFlag::Executable));
//! let found = personal_data("NI: AB 12 34 56 C");
//! assert_eq!(found.ni_numbers, 1);
//! ```

mod attachment;
mod personal;

pub use attachment::{
    AttachmentFlag, AttachmentReport, Limits, inspect_attachment, inspect_attachment_with,
};
pub use personal::{PersonalData, is_nhs_number, is_ni_number, is_upn, personal_data};
