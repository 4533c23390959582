//! The decision after DATA, on the fixture messages (`fixtures/make.py`) against the
//! WCS example policy: verdict, rule, clause and the detectors that fired.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use hallpass_mail::check;
use hallpass_policy::{CategoryVocab, GroupSet, MailAction, Policy, PolicyDoc};

fn wcs() -> Policy {
    let text = include_str!("../../../examples/policies/wcs.toml");
    let doc = PolicyDoc::parse("wcs.toml", text).unwrap();
    doc.compile(&CategoryVocab::open()).unwrap().0
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn decide(name: &str, from: &str, to: &str) -> hallpass_mail::Checked {
    let now = "2026-12-07T10:00:00Z".parse().unwrap();
    check(
        &wcs(),
        from,
        &[to.to_owned()],
        GroupSet::EMPTY,
        &fixture(name),
        now,
    )
}

#[test]
fn plain_message_is_delivered() {
    let c = decide("plain.eml", "teacher@wcs.london", "parent@gmail.com");
    assert_eq!(c.decision.action, MailAction::Deliver);
    assert!(c.scan.detectors().is_empty(), "{:?}", c.scan.detectors());
    assert_eq!(c.scan.subject.as_deref(), Some("Trip on Friday"));
    assert!(c.scan.body_preview.contains("coach leaves"));
}

#[test]
fn program_renamed_pdf_is_rejected_citing_3_2_9() {
    let c = decide("exe-as-pdf.eml", "teacher@wcs.london", "parent@gmail.com");
    assert_eq!(c.decision.action, MailAction::Reject);
    assert_eq!(c.decision.rule.as_deref(), Some("mail-executables"));
    assert_eq!(c.decision.clause.as_deref(), Some("3.2.9"));
    let a = &c.scan.attachments[0];
    assert_eq!(a.name, "invoice.pdf");
    assert_eq!(
        a.real_type,
        Some("application/vnd.microsoft.portable-executable")
    );
    assert_eq!(c.scan.detectors(), ["attachment:executable"]);
}

#[test]
fn zip_holding_a_screensaver_is_rejected() {
    let c = decide("zip-scr.eml", "stranger@example.net", "office@wcs.london");
    assert_eq!(c.decision.action, MailAction::Reject);
    assert_eq!(c.decision.clause.as_deref(), Some("3.2.9"));
    assert_eq!(c.scan.detectors(), ["attachment:nested-executable"]);
}

#[test]
fn ni_number_in_the_subject_is_rejected_citing_5_7() {
    let c = decide("ni-subject.eml", "hr@wcs.london", "payroll@wcs.london");
    assert_eq!(c.decision.action, MailAction::Reject);
    assert_eq!(c.decision.clause.as_deref(), Some("5.7"));
    assert_eq!(
        c.scan.detectors(),
        ["personal:ni-number", "personal:in-subject"]
    );
}

#[test]
fn class_list_to_an_outside_address_is_bulk() {
    let c = decide(
        "class-list.eml",
        "teacher@wcs.london",
        "coach-company@example.com",
    );
    assert_eq!(c.scan.personal_readable.dates_of_birth, 40);
    assert_eq!(c.decision.action, MailAction::Reject);
    assert_eq!(c.decision.rule.as_deref(), Some("mail-bulk-personal-data"));
    assert_eq!(c.decision.clause.as_deref(), Some("3.2.1"));
    // The same list inside the school is delivered.
    let c = decide("class-list.eml", "teacher@wcs.london", "office@wcs.london");
    assert_eq!(c.decision.action, MailAction::Deliver);
}

#[test]
fn class_list_in_an_encrypted_zip_is_delivered() {
    let c = decide(
        "class-list-encrypted.eml",
        "teacher@wcs.london",
        "coach-company@example.com",
    );
    assert_eq!(c.decision.action, MailAction::Deliver, "{:?}", c.decision);
    assert!(c.scan.attachments[0].encrypted);
    assert_eq!(c.scan.personal_readable.total(), 0);
    // From outside, an archive nobody can check is held (3.4.5).
    let c = decide(
        "class-list-encrypted.eml",
        "someone@example.com",
        "office@wcs.london",
    );
    assert_eq!(c.decision.action, MailAction::Quarantine);
    assert_eq!(c.decision.clause.as_deref(), Some("3.4.5"));
}

#[test]
fn blocked_sender_is_rejected() {
    let c = decide(
        "blocked-sender.eml",
        "deals@bulk-offers.example",
        "office@wcs.london",
    );
    assert_eq!(c.decision.action, MailAction::Reject);
    assert_eq!(c.decision.clause.as_deref(), Some("3.2.7"));
}

#[test]
fn malformed_mime_is_decided_not_a_crash() {
    let c = decide("malformed.eml", "a@wcs.london", "b@gmail.com");
    // The truncated attachment is still named a.exe.
    assert_eq!(c.decision.action, MailAction::Reject, "{:?}", c.scan);
    for junk in [
        &b""[..],
        b"\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x--",
        &[0xff; 300][..],
    ] {
        let now = "2026-12-07T10:00:00Z".parse().unwrap();
        let c = check(
            &wcs(),
            "a@wcs.london",
            &["b@gmail.com".into()],
            GroupSet::EMPTY,
            junk,
            now,
        );
        assert_eq!(c.decision.action, MailAction::Deliver);
    }
}

#[test]
fn ten_thousand_parts_are_counted() {
    let mut m =
        String::from("From: a@wcs.london\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
    for i in 0..10_000 {
        m.push_str(&format!(
            "--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n"
        ));
    }
    m.push_str("--b--\r\n");
    let now = "2026-12-07T10:00:00Z".parse().unwrap();
    let c = check(
        &wcs(),
        "a@wcs.london",
        &["b@wcs.london".into()],
        GroupSet::EMPTY,
        m.as_bytes(),
        now,
    );
    assert!(c.scan.parts > 10_000, "{}", c.scan.parts);
}
