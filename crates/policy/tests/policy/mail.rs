//! Mail rules: the example policies' decisions (each citing its clause), group and time
//! scoping, and the diagnostics of `[mail]` and `[[mail_rules]]`.

use hallpass_policy::{AttachmentKind, Direction, GroupSet, MailAction, MailFacts, PolicyDoc};
use jiff::Timestamp;

use super::{WCS, WPT, compile};

const NOW: &str = "2026-12-07T10:00:00Z";

fn facts<'a>(sender: &'a str, recipients: &'a [String]) -> MailFacts<'a> {
    MailFacts {
        sender,
        recipients,
        groups: GroupSet::EMPTY,
        attachments: &[],
        personal_in_subject: 0,
        personal_readable: 0,
        language: &[],
        sent_last_hour: 0,
    }
}

fn to(addrs: &[&str]) -> Vec<String> {
    addrs.iter().map(|a| a.to_string()).collect()
}

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

#[test]
fn wcs_directions_come_from_the_school_domains() {
    let p = compile("wcs.toml", WCS);
    let mail = p.mail();
    assert_eq!(mail.domains(), ["wcs.london"]);
    let inside = to(&["b@wcs.london", "c@staff.wcs.london"]);
    let outside = to(&["b@wcs.london", "x@gmail.com"]);
    assert_eq!(mail.direction("a@wcs.london", &inside), Direction::Internal);
    assert_eq!(
        mail.direction("a@wcs.london", &outside),
        Direction::Outbound
    );
    assert_eq!(mail.direction("a@gmail.com", &inside), Direction::Inbound);
    assert_eq!(
        mail.direction("a@notwcs.london", &inside),
        Direction::Inbound
    );
    assert_eq!(mail.direction("", &inside), Direction::Inbound);
}

#[test]
fn wcs_clean_message_is_delivered_without_a_rule() {
    let p = compile("wcs.toml", WCS);
    let r = to(&["x@gmail.com"]);
    let d = p.decide_mail(&facts("a@wcs.london", &r), now());
    assert_eq!(d.action, MailAction::Deliver);
    assert_eq!(d.rule, None);
    assert_eq!(d.direction, Direction::Outbound);
}

#[test]
fn wcs_blocked_senders_by_domain_and_address_inbound_only() {
    let p = compile("wcs.toml", WCS);
    let r = to(&["head@wcs.london"]);
    for sender in [
        "deals@bulk-offers.example",
        "x@mail.bulk-offers.example",
        "Prizes@Lottery-Winner.example",
    ] {
        let d = p.decide_mail(&facts(sender, &r), now());
        assert_eq!(d.action, MailAction::Reject, "{sender}");
        assert_eq!(d.rule.as_deref(), Some("mail-blocked-senders"));
        assert_eq!(
            (d.document.as_deref(), d.clause.as_deref()),
            (Some("wcs"), Some("3.2.7"))
        );
    }
    for sender in ["other@lottery-winner.example", "a@notbulk-offers.example"] {
        let d = p.decide_mail(&facts(sender, &r), now());
        assert_eq!(d.action, MailAction::Deliver, "{sender}");
    }
}

#[test]
fn wcs_attachments() {
    let p = compile("wcs.toml", WCS);
    let r = to(&["head@wcs.london"]);
    let cases: [(&str, &[AttachmentKind], MailAction, Option<&str>); 5] = [
        (
            "a@wcs.london",
            &[AttachmentKind::Executable],
            MailAction::Reject,
            Some("3.2.9"),
        ),
        (
            "a@gmail.com",
            &[AttachmentKind::NestedExecutable],
            MailAction::Reject,
            Some("3.2.9"),
        ),
        (
            "a@gmail.com",
            &[AttachmentKind::EncryptedArchive],
            MailAction::Quarantine,
            Some("3.4.5"),
        ),
        // An encrypted archive between staff is not held (the rule is inbound only).
        (
            "a@wcs.london",
            &[AttachmentKind::EncryptedArchive],
            MailAction::Deliver,
            None,
        ),
        ("a@gmail.com", &[], MailAction::Deliver, None),
    ];
    for (sender, kinds, action, clause) in cases {
        let f = MailFacts {
            attachments: kinds,
            ..facts(sender, &r)
        };
        let d = p.decide_mail(&f, now());
        assert_eq!(
            (d.action, d.clause.as_deref()),
            (action, clause),
            "{sender} {kinds:?}"
        );
    }
    let f = MailFacts {
        attachments: &[AttachmentKind::Executable, AttachmentKind::DoubleExtension],
        ..facts("a@wcs.london", &r)
    };
    assert_eq!(
        p.decide_mail(&f, now()).matched,
        ["attachment executable", "attachment double-extension"]
    );
}

#[test]
fn wcs_personal_data() {
    let p = compile("wcs.toml", WCS);
    let external = to(&["b@wcs.london", "gp@nhs.example"]);
    let internal = to(&["b@wcs.london"]);
    let f = |r, subject, readable| MailFacts {
        personal_in_subject: subject,
        personal_readable: readable,
        ..facts("a@wcs.london", r)
    };
    let cases = [
        (f(&internal, 1, 1), MailAction::Reject, Some("5.7")),
        (f(&external, 0, 40), MailAction::Reject, Some("3.2.1")),
        (f(&external, 0, 20), MailAction::Reject, Some("3.2.1")),
        (f(&external, 0, 19), MailAction::Reject, Some("5.3")),
        (f(&external, 0, 0), MailAction::Deliver, None),
        // Inside the school, the body may carry personal data, even a class list.
        (f(&internal, 0, 40), MailAction::Deliver, None),
    ];
    for (facts, action, clause) in cases {
        let d = p.decide_mail(&facts, now());
        assert_eq!(
            (d.action, d.clause.as_deref()),
            (action, clause),
            "{facts:?}"
        );
    }
    let d = p.decide_mail(&f(&external, 0, 40), now());
    assert_eq!(d.matched, ["personal data bulk-external (40 items)"]);
    assert!(d.message.contains("3.2.1"), "{}", d.message);
}

#[test]
fn wpt_mail_rules_cite_the_esafety_policy() {
    let p = compile("wpt.toml", WPT);
    let r = to(&["someone@gmail.com"]);
    let f = MailFacts {
        personal_readable: 25,
        ..facts("t@wpt.example", &r)
    };
    let d = p.decide_mail(&f, now());
    assert_eq!(d.action, MailAction::Reject);
    assert_eq!(d.document.as_deref(), Some("esafety"));
    assert_eq!(
        d.clause.as_deref(),
        Some("Data Handling and Information Security")
    );
}

const HEAD: &str = "version = 1\n[school]\nname = \"S\"\ntimezone = \"Europe/London\"\n[[documents]]\nid = \"d\"\ntitle = \"D\"\n\
[periods.lessons]\ndays = [\"weekdays\"]\ntimes = [\"09:00-15:00\"]\n\
[groups.students]\nroles = [\"student\"]\ndefault = \"allow\"\n[groups.staff]\nroles = [\"staff\"]\ndefault = \"allow\"\n\
[groups.everyone]\nunidentified = true\ndefault = \"allow\"\n[mail]\ndomains = [\"s.example\"]\n";

#[test]
fn groups_and_periods_scope_mail_rules() {
    let text = format!(
        "{HEAD}[[mail_rules]]\nid = \"students-scripts\"\naction = \"quarantine\"\ndocument = \"d\"\nclause = \"1\"\n\
         attachments = [\"script\"]\ngroups = [\"students\"]\nduring = [\"lessons\"]\n"
    );
    let p = compile("t.toml", &text);
    let students = GroupSet::single(p.group_id("students").unwrap());
    let staff = GroupSet::single(p.group_id("staff").unwrap());
    let r = to(&["b@s.example"]);
    let f = |groups| MailFacts {
        groups,
        attachments: &[AttachmentKind::Script],
        ..facts("a@s.example", &r)
    };
    // Monday 2026-12-07 10:00 UTC is 10:00 in London: a lesson.
    let lesson = now();
    let evening: Timestamp = "2026-12-07T19:00:00Z".parse().unwrap();
    assert_eq!(
        p.decide_mail(&f(students), lesson).action,
        MailAction::Quarantine
    );
    assert_eq!(
        p.decide_mail(&f(students), evening).action,
        MailAction::Deliver
    );
    assert_eq!(p.decide_mail(&f(staff), lesson).action, MailAction::Deliver);
    assert_eq!(
        p.decide_mail(&f(GroupSet::EMPTY), lesson).action,
        MailAction::Deliver
    );
}

fn errors(text: &str) -> Vec<String> {
    match PolicyDoc::parse("t.toml", text) {
        Ok(doc) => match doc.compile(&super::ut1_vocab()) {
            Ok((_, w)) => panic!("expected errors, got warnings {w:?}"),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        },
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn mail_rule_errors_point_at_the_field() {
    let text = format!(
        "{HEAD}[[mail_rules]]\nid = \"r1\"\naction = \"bounce\"\ndocument = \"nope\"\nclause = \"1\"\n\
         attachments = [\"executable\", \"virus\"]\nsenders = [\"a@\", \"*.x.example\"]\ngroups = [\"pupils\"]\n\
         direction = [\"sideways\"]\npersonal_data = \"everything\"\ncolour = \"red\"\n\
         [[mail_rules]]\nid = \"r1\"\naction = \"reject\"\ndocument = \"d\"\nclause = \"1\"\n"
    );
    assert_eq!(
        errors(&text),
        [
            "t.toml:24:10: `mail_rules[0].action`: unknown value `bounce` (expected \"deliver\", \"quarantine\", \"reject\")",
            "t.toml:25:12: `mail_rules[0].document`: unknown document `nope` (defined: d)",
            "t.toml:27:30: `mail_rules[0].attachments[1]`: unknown value `virus` (expected \"executable\", \"script\", \"double-extension\", \"nested-executable\", \"encrypted-archive\", \"unreadable-archive\")",
            "t.toml:28:12: `mail_rules[0].senders[0]`: `a@` has no valid domain after `@`",
            "t.toml:28:18: `mail_rules[0].senders[1]`: `*.x.example` is neither an address (\"name@example.com\") nor a domain (\"example.com\")",
            "t.toml:29:11: `mail_rules[0].groups[0]`: unknown group `pupils` (defined: students, staff, everyone)",
            "t.toml:30:14: `mail_rules[0].direction[0]`: unknown value `sideways` (expected \"inbound\", \"outbound\", \"internal\")",
            "t.toml:31:17: `mail_rules[0].personal_data`: unknown value `everything` (expected \"subject\", \"unencrypted-external\", \"bulk-external\")",
            "t.toml:32:1: `mail_rules[0].colour`: unknown key (expected one of: id, action, document, clause, message, direction, senders, attachments, personal_data, language, max_recipients, max_per_hour, alert, groups, except_groups, during, outside)",
            "t.toml:33:1: `mail_rules[1]`: a mail rule needs a condition on the message: `senders`, `attachments`, `personal_data`, `language`, `max_recipients` and/or `max_per_hour` (else it would match every message)",
            "t.toml:34:6: `mail_rules[1].id`: duplicate rule id `r1` (also mail_rules[0])",
        ]
    );
}

#[test]
fn mail_table_errors() {
    let head = HEAD.replace("[mail]\ndomains = [\"s.example\"]\n", "");
    let text = format!("{head}[mail]\ndomains = [\"not a domain\"]\nbulk_threshold = 0\n");
    assert_eq!(
        errors(&text),
        [
            "t.toml:21:12: `mail.domains[0]`: `not a domain` is not a mail domain (e.g. \"wcs.london\")",
            "t.toml:22:18: `mail.bulk_threshold`: 0 must be at least 1 (personal data items in one message)",
        ]
    );
    let text = format!(
        "{head}[[mail_rules]]\nid = \"r\"\naction = \"reject\"\ndocument = \"d\"\nclause = \"1\"\nsenders = [\"x.example\"]\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("t.toml:20:1: `mail_rules` needs a `[mail]` table"),
        "{errs:?}"
    );
}

#[test]
fn mail_and_web_rule_ids_must_differ() {
    let text = format!(
        "{HEAD}[[rules]]\nid = \"same\"\naction = \"block\"\ndocument = \"d\"\nclause = \"1\"\ndomains = [\"x.example\"]\n\
         [[mail_rules]]\nid = \"same\"\naction = \"reject\"\ndocument = \"d\"\nclause = \"1\"\nsenders = [\"x.example\"]\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0]
            .starts_with("t.toml:29:6: `mail_rules[0].id`: `same` is already the id of a web rule"),
        "{errs:?}"
    );
}

#[test]
fn no_mail_section_means_every_message_is_delivered() {
    let text = HEAD.replace("[mail]\ndomains = [\"s.example\"]\n", "");
    let p = compile("t.toml", &text);
    assert_eq!(p.mail().rule_count(), 0);
    let r = to(&["x@y.example"]);
    let f = MailFacts {
        personal_readable: 100,
        ..facts("a@s.example", &r)
    };
    assert_eq!(p.decide_mail(&f, now()).action, MailAction::Deliver);
}

#[test]
fn format_reference_mail_example_is_valid() {
    // The README's first block is the base format; its "Mail rules" block adds to it.
    let readme = include_str!("../../../../examples/policies/README.md");
    let block = |from: usize| {
        let start = from + readme[from..].find("```toml\n").unwrap() + "```toml\n".len();
        let end = start + readme[start..].find("```").unwrap();
        &readme[start..end]
    };
    let base = block(0);
    let mail = block(readme.find("## Mail rules").unwrap());
    let p = compile("README.md", &format!("{base}\n{mail}"));
    assert_eq!(p.mail().rule_count(), 5);
    assert_eq!(p.mail().domains(), ["wcs.london"]);
    assert!(p.mail().external_banner().is_some());
    let alerting: Vec<&str> = p.mail().alert_rules().map(|r| r.id).collect();
    assert_eq!(alerting, ["mail-student-abusive-language"]);
}

#[test]
fn wcs_limits_students_mass_mail_and_send_rate() {
    let p = compile("wcs.toml", WCS);
    let student = GroupSet::single(p.group_id("students").unwrap());
    let staff = GroupSet::single(p.group_id("staff").unwrap());
    let one = to(&["b@wcs.london"]);
    let many: Vec<String> = (0..26).map(|i| format!("p{i}@wcs.london")).collect();
    let f = |recipients, groups, sent_last_hour| MailFacts {
        groups,
        sent_last_hour,
        ..facts("sam@wcs.london", recipients)
    };
    let d = p.decide_mail(&f(&many, student, 0), now());
    assert_eq!(d.rule.as_deref(), Some("mail-student-mass-mail"));
    assert_eq!(
        (d.action, d.clause.as_deref()),
        (MailAction::Reject, Some("3.2.8"))
    );
    assert_eq!(d.matched, ["26 recipients (at most 25)"]);
    assert_eq!(
        p.decide_mail(&f(&many[..25], student, 0), now()).action,
        MailAction::Deliver
    );
    assert_eq!(
        p.decide_mail(&f(&many, staff, 0), now()).action,
        MailAction::Deliver
    );
    // The 30th message of the hour still goes; the 31st does not.
    assert_eq!(
        p.decide_mail(&f(&one, student, 29), now()).action,
        MailAction::Deliver
    );
    let d = p.decide_mail(&f(&one, student, 30), now());
    assert_eq!(d.rule.as_deref(), Some("mail-student-send-rate"));
    assert_eq!(d.matched, ["30 messages in the last hour (at most 30)"]);
    assert_eq!(
        p.decide_mail(&f(&one, staff, 500), now()).action,
        MailAction::Deliver
    );
}

#[test]
fn wcs_language_rules_hold_or_deliver_with_an_alert() {
    let p = compile("wcs.toml", WCS);
    let student = GroupSet::single(p.group_id("students").unwrap());
    let one = to(&["b@wcs.london"]);
    let f = |language: &'static [&'static str], groups| MailFacts {
        groups,
        language,
        ..facts("sam@wcs.london", &one)
    };
    let d = p.decide_mail(&f(&["offensive-language"], student), now());
    assert_eq!(d.rule.as_deref(), Some("mail-student-abusive-language"));
    assert_eq!(d.action, MailAction::Quarantine);
    assert_eq!(d.matched, ["language offensive-language"]);
    assert_eq!(d.alert.map(|a| a.severity), Some(3));
    let d = p.decide_mail(&f(&["self-harm"], student), now());
    assert_eq!(d.rule.as_deref(), Some("mail-student-safeguarding"));
    assert_eq!(d.action, MailAction::Deliver);
    assert_eq!(d.alert.map(|a| a.severity), Some(4));
    assert_eq!(
        p.decide_mail(
            &f(
                &["offensive-language"],
                GroupSet::single(p.group_id("staff").unwrap())
            ),
            now()
        )
        .rule,
        None
    );
    assert_eq!(p.decide_mail(&f(&["drugs"], student), now()).rule, None);
    let alerting: Vec<&str> = p.mail().alert_rules().map(|r| r.id).collect();
    assert_eq!(
        alerting,
        ["mail-student-abusive-language", "mail-student-safeguarding"]
    );
    assert!(p.mail().needs_language() && p.mail().needs_rate());
    assert!(
        p.mail()
            .external_banner()
            .unwrap()
            .starts_with("CAUTION: this email came from outside WCS")
    );
}

#[test]
fn new_mail_rule_fields_are_checked() {
    let head = HEAD.replace(
        "[mail]\ndomains = [\"s.example\"]\n",
        "[mail]\ndomains = [\"s.example\"]\nexternal_banner = \"Caution \u{2013} outside\"\n",
    );
    let text = format!(
        "{head}[[mail_rules]]\nid = \"r1\"\naction = \"quarantine\"\ndocument = \"d\"\nclause = \"1\"\n\
         language = [\"swearing\"]\nmax_per_hour = 0\nalert = {{ kind = \"conduct\", severity = 9 }}\n"
    );
    let joined = errors(&text).join("\n");
    assert!(
        joined.contains("`mail.external_banner`: one line of 1 to 200 ASCII characters"),
        "{joined}"
    );
    assert!(
        joined.contains(
            "`mail_rules[0].language[0]`: unknown theme `swearing` (expected \"offensive-language\""
        ),
        "{joined}"
    );
    assert!(
        joined.contains("`mail_rules[0].max_per_hour`: 0 must be at least 1"),
        "{joined}"
    );
    assert!(
        joined.contains("`mail_rules[0].alert.severity`: 9 is out of range (1 to 5)"),
        "{joined}"
    );
}
