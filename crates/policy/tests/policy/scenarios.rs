//! Table-driven scenarios taken from the two source policies: who, when, what ->
//! verdict and clause.

use std::net::IpAddr;

use hallpass_policy::{
    CategoryMask, FileType, Grant, GroupSet, Identity, Live, Override, OverrideTarget, PersonAttrs,
    Policy, Request, Sanction, Subject, Verdict,
};

use super::{WCS, WPT, compile};

#[derive(Clone, Copy)]
enum Who {
    Groups(&'static [&'static str]),
    Person {
        role: &'static str,
        year: Option<u8>,
        memberships: &'static [&'static str],
    },
    Ip(&'static str),
}

#[derive(Clone, Copy)]
enum LiveCase {
    None,
    /// Override for (group, category) until a local time.
    Override(&'static str, &'static str, &'static str),
    /// Grant for (group, domain) until a local time.
    Grant(&'static str, &'static str, &'static str),
    /// Sanction on a group until a local time.
    Sanction(&'static str, &'static str),
}

struct Case {
    name: &'static str,
    wcs: bool,
    who: Who,
    /// `YYYY-MM-DD HH:MM` local to the school, or RFC 3339.
    at: &'static str,
    host: &'static str,
    path: Option<&'static str>,
    cats: &'static [&'static str],
    ext: Option<&'static str>,
    mime: Option<&'static str>,
    live: LiveCase,
    verdict: Verdict,
    /// Expected (rule id, clause); `None` = no rule (default or sanction) and this clause.
    rule: Option<&'static str>,
    clause: Option<&'static str>,
    overridden: bool,
    override_allowed: Option<bool>,
}

const BASE: Case = Case {
    name: "",
    wcs: true,
    who: Who::Groups(&["students"]),
    at: "2026-10-05 09:30",
    host: "example.org",
    path: None,
    cats: &[],
    ext: None,
    mime: None,
    live: LiveCase::None,
    verdict: Verdict::Allow,
    rule: None,
    clause: None,
    overridden: false,
    override_allowed: None,
};

use Verdict::{Allow, Block, Warn};

// One scenario per line reads as a table.
#[rustfmt::skip]
fn cases() -> Vec<Case> {
    vec![
        // ---------------------------------------------------------------- WCS
        Case { name: "wcs: porn blocked for students (4.6.1)", cats: &["porn"], verdict: Block, rule: Some("pornography"), clause: Some("4.6.1"), override_allowed: Some(false), ..BASE },
        Case { name: "wcs: porn blocked for staff too", who: Who::Groups(&["staff"]), cats: &["adult"], verdict: Block, rule: Some("pornography"), clause: Some("4.6.1"), ..BASE },
        Case { name: "wcs: hateful material (4.3.1)", cats: &["violence"], verdict: Block, rule: Some("hateful-illegal"), clause: Some("4.3.1"), ..BASE },
        Case { name: "wcs: school site allowed, subdomain too (4.1)", host: "Portal.WCS.london.", verdict: Allow, rule: Some("school-services"), clause: Some("4.1"), ..BASE },
        Case { name: "wcs: lookalike domain is not the school site", host: "notwcs.london", verdict: Allow, rule: None, clause: None, ..BASE },
        Case { name: "wcs: webmail blocked for students (4.5.1)", host: "mail.google.com", cats: &["webmail"], verdict: Block, rule: Some("webmail"), clause: Some("4.5.1"), ..BASE },
        Case { name: "wcs: webmail blocked for staff at lunchtime (4.5.1)", who: Who::Groups(&["staff"]), at: "2026-10-05 12:50", cats: &["webmail"], verdict: Block, rule: Some("webmail"), clause: Some("4.5.1"), ..BASE },
        Case { name: "wcs: school email allowed (3.1.1)", host: "outlook.office365.com", cats: &["webmail"], verdict: Allow, rule: Some("school-email"), clause: Some("3.1.1"), ..BASE },
        Case { name: "wcs: CIDR-identified guest gets no school-email exception", who: Who::Ip("10.50.7.9"), host: "outlook.office365.com", cats: &["webmail"], verdict: Block, rule: Some("webmail"), clause: Some("4.5.1"), ..BASE },
        Case { name: "wcs: marketing staff may use social media (8.1.1)", who: Who::Person { role: "staff", year: None, memberships: &["marketing"] }, cats: &["social_networks"], verdict: Allow, ..BASE },
        Case { name: "wcs: other staff may not (8.1.1)", who: Who::Person { role: "teacher", year: None, memberships: &[] }, cats: &["social_networks"], verdict: Block, rule: Some("social-media"), clause: Some("8.1.1"), override_allowed: Some(true), ..BASE },
        Case { name: "wcs: chat blocked for students, teacher may override (4.4.1)", cats: &["chat"], verdict: Block, rule: Some("chat-students"), clause: Some("4.4.1"), override_allowed: Some(true), ..BASE },
        Case { name: "wcs: chat with an active teacher override", cats: &["chat"], live: LiveCase::Override("students", "chat", "2026-10-05 10:40"), verdict: Allow, overridden: true, ..BASE },
        Case { name: "wcs: chat with an expired teacher override", at: "2026-10-05 10:41", cats: &["chat"], live: LiveCase::Override("students", "chat", "2026-10-05 10:40"), verdict: Block, rule: Some("chat-students"), clause: Some("4.4.1"), ..BASE },
        Case { name: "wcs: an override for another group does not apply", cats: &["chat"], live: LiveCase::Override("guests", "chat", "2026-10-05 10:40"), verdict: Block, rule: Some("chat-students"), clause: Some("4.4.1"), ..BASE },
        Case { name: "wcs: override cannot lift a non-overridable rule (porn + chat)", cats: &["chat", "adult"], live: LiveCase::Override("students", "chat", "2026-10-05 10:40"), verdict: Block, rule: Some("pornography"), clause: Some("4.6.1"), ..BASE },
        Case { name: "wcs: staff are warned about chat (4.4.1)", who: Who::Groups(&["staff"]), cats: &["chat"], verdict: Warn, rule: Some("chat-staff"), clause: Some("4.4.1"), ..BASE },
        Case { name: "wcs: streaming blocked in a lesson (4.3.7)", cats: &["audio-video"], verdict: Block, rule: Some("streaming-lessons"), clause: Some("4.3.7"), ..BASE },
        Case { name: "wcs: streaming allowed at lunchtime", at: "2026-10-05 12:50", cats: &["audio-video"], verdict: Allow, ..BASE },
        Case { name: "wcs: streaming allowed on a Saturday", at: "2026-10-10 09:30", cats: &["audio-video"], verdict: Allow, ..BASE },
        Case { name: "wcs: holiday exclusion: half term is not a lesson", at: "2026-10-27 09:30", cats: &["audio-video"], verdict: Allow, ..BASE },
        Case { name: "wcs: holiday exclusion: bank holiday", at: "2027-05-03 09:30", cats: &["audio-video"], verdict: Allow, ..BASE },
        Case { name: "wcs: outside term dates: Christmas", at: "2026-12-23 09:30", cats: &["audio-video"], verdict: Allow, ..BASE },
        Case { name: "wcs: students' executables blocked by extension (4.3.4)", host: "download.example.com", path: Some("/setup.exe"), ext: Some("EXE"), verdict: Block, rule: Some("software-downloads"), clause: Some("4.3.4"), ..BASE },
        Case { name: "wcs: executables blocked by MIME type (4.3.4)", mime: Some("application/x-msdownload; charset=binary"), verdict: Block, rule: Some("software-downloads"), clause: Some("4.3.4"), ..BASE },
        Case { name: "wcs: staff may download executables", who: Who::Groups(&["staff"]), ext: Some("msi"), verdict: Allow, ..BASE },
        Case { name: "wcs: a year 9 student is a student (groups_for_person)", who: Who::Person { role: "student", year: Some(9), memberships: &[] }, cats: &["games"], verdict: Block, rule: Some("personal-use-students"), clause: Some("8.3"), ..BASE },
        Case { name: "wcs: staff warned about personal use (8.3)", who: Who::Groups(&["staff"]), cats: &["shopping"], verdict: Warn, rule: Some("personal-use-staff"), clause: Some("8.3"), ..BASE },
        Case { name: "wcs: circumvention (DoH) blocked for staff (4.3.5)", who: Who::Groups(&["staff"]), cats: &["doh"], verdict: Block, rule: Some("circumvention"), clause: Some("4.3.5"), override_allowed: Some(false), ..BASE },
        Case { name: "wcs: malware blocked for all (4.3.8)", who: Who::Groups(&["marketing", "staff"]), cats: &["phishing"], verdict: Block, rule: Some("malware"), clause: Some("4.3.8"), ..BASE },
        Case { name: "wcs: piracy (4.3.2)", cats: &["warez"], verdict: Block, rule: Some("piracy"), clause: Some("4.3.2"), ..BASE },
        Case { name: "wcs: unidentified client blocked by default (2.1)", who: Who::Ip("10.1.2.3"), verdict: Block, rule: None, clause: Some("2.1"), ..BASE },
        Case { name: "wcs: empty group set is treated as unidentified", who: Who::Groups(&[]), verdict: Block, rule: None, clause: Some("2.1"), ..BASE },
        Case { name: "wcs: unidentified client may fetch updates (9.7)", who: Who::Ip("10.1.2.3"), cats: &["update"], verdict: Allow, rule: Some("unidentified-updates"), clause: Some("9.7"), ..BASE },
        Case { name: "wcs: guest Wi-Fi open in the evening", who: Who::Ip("10.50.0.20"), at: "2026-10-05 21:59", verdict: Allow, ..BASE },
        Case { name: "wcs: guest Wi-Fi closed before midnight (crossing midnight)", who: Who::Ip("10.50.0.20"), at: "2026-10-05 23:30", verdict: Block, rule: Some("guests-overnight"), clause: Some("4.2.3"), ..BASE },
        Case { name: "wcs: guest Wi-Fi closed after midnight (crossing midnight)", who: Who::Ip("10.50.0.20"), at: "2026-10-06 05:59", verdict: Block, rule: Some("guests-overnight"), clause: Some("4.2.3"), ..BASE },
        Case { name: "wcs: guest Wi-Fi open again at 06:00", who: Who::Ip("10.50.0.20"), at: "2026-10-06 06:00", verdict: Allow, ..BASE },
        // DST, spring 2026-03-29: clocks go forward. Lessons start 08:40 local.
        Case { name: "wcs: DST spring: Fri 08:45 GMT is a lesson", at: "2026-03-27T08:45:00Z", cats: &["audio-video"], verdict: Block, rule: Some("streaming-lessons"), clause: Some("4.3.7"), ..BASE },
        Case { name: "wcs: DST spring: Mon 07:45Z is 08:45 BST, a lesson", at: "2026-04-13T07:45:00Z", cats: &["audio-video"], verdict: Block, rule: Some("streaming-lessons"), clause: Some("4.3.7"), ..BASE },
        Case { name: "wcs: DST spring: Mon 07:35Z is 08:35 BST, before lessons", at: "2026-04-13T07:35:00Z", cats: &["audio-video"], verdict: Allow, ..BASE },
        Case { name: "wcs: DST spring night: 04:59Z is 05:59 BST, guest Wi-Fi closed", who: Who::Ip("10.50.0.20"), at: "2026-03-29T04:59:00Z", verdict: Block, rule: Some("guests-overnight"), clause: Some("4.2.3"), ..BASE },
        Case { name: "wcs: DST spring night: 05:30Z is 06:30 BST, guest Wi-Fi open", who: Who::Ip("10.50.0.20"), at: "2026-03-29T05:30:00Z", verdict: Allow, ..BASE },
        // DST, autumn 2026-10-25: clocks go back.
        Case { name: "wcs: DST autumn: Fri 07:45Z is 08:45 BST, a lesson", at: "2026-10-23T07:45:00Z", cats: &["audio-video"], verdict: Block, rule: Some("streaming-lessons"), clause: Some("4.3.7"), ..BASE },
        Case { name: "wcs: DST autumn: Mon 08:45Z is 08:45 GMT, a lesson", at: "2026-11-02T08:45:00Z", cats: &["audio-video"], verdict: Block, rule: Some("streaming-lessons"), clause: Some("4.3.7"), ..BASE },
        Case { name: "wcs: DST autumn: Mon 07:45Z is 07:45 GMT, before lessons", at: "2026-11-02T07:45:00Z", cats: &["audio-video"], verdict: Allow, ..BASE },
        Case { name: "wcs: DST autumn night: 05:30Z is 05:30 GMT, guest Wi-Fi closed", who: Who::Ip("10.50.0.20"), at: "2026-10-25T05:30:00Z", verdict: Block, rule: Some("guests-overnight"), clause: Some("4.2.3"), ..BASE },
        Case { name: "wcs: DST autumn night: 06:10Z is 06:10 GMT, guest Wi-Fi open", who: Who::Ip("10.50.0.20"), at: "2026-10-25T06:10:00Z", verdict: Allow, ..BASE },
        Case { name: "wcs: approved access request lifts a conduct block", cats: &["games"], host: "www.mathsgames.example", live: LiveCase::Grant("students", "mathsgames.example", "2026-10-06 00:00"), verdict: Allow, overridden: true, ..BASE },
        Case { name: "wcs: access request cannot lift a safeguarding block", cats: &["adult"], host: "www.mathsgames.example", live: LiveCase::Grant("students", "mathsgames.example", "2026-10-06 00:00"), verdict: Block, rule: Some("pornography"), clause: Some("4.6.1"), ..BASE },
        Case { name: "wcs: sanction suspends internet access", live: LiveCase::Sanction("students", "2026-10-06 00:00"), verdict: Block, rule: None, clause: Some("Your internet access may be suspended if"), ..BASE },
        // ---------------------------------------------------------------- WPT
        Case { name: "wpt: pornography (Internet Use)", wcs: false, cats: &["porn"], verdict: Block, rule: Some("pornography"), clause: Some("Internet Use"), ..BASE },
        Case { name: "wpt: racial or religious hatred (Internet Use)", wcs: false, who: Who::Groups(&["staff"]), cats: &["aggressive"], verdict: Block, rule: Some("hate-discrimination"), clause: Some("Internet Use"), ..BASE },
        Case { name: "wpt: students never use webmail (Disciplinary Action)", wcs: false, at: "2026-10-05 13:00", cats: &["webmail"], verdict: Block, rule: Some("webmail-students"), clause: Some("Disciplinary Action"), ..BASE },
        Case { name: "wpt: staff webmail at lunchtime is fine", wcs: false, who: Who::Groups(&["staff"]), at: "2026-10-05 13:00", cats: &["webmail"], verdict: Allow, ..BASE },
        Case { name: "wpt: staff webmail before school is fine", wcs: false, who: Who::Groups(&["staff"]), at: "2026-10-05 08:00", cats: &["webmail"], verdict: Allow, ..BASE },
        Case { name: "wpt: staff webmail in lesson time is a warning (Internet and Email Filtering)", wcs: false, who: Who::Groups(&["staff"]), at: "2026-10-05 09:30", cats: &["webmail"], verdict: Warn, rule: Some("webmail-staff"), clause: Some("Internet and Email Filtering"), ..BASE },
        Case { name: "wpt: cyber truancy: games in a lesson", wcs: false, cats: &["games"], verdict: Block, rule: Some("cyber-truancy"), clause: Some("Disciplinary Action"), override_allowed: Some(true), ..BASE },
        Case { name: "wpt: games at lunchtime are not truancy", wcs: false, at: "2026-10-05 13:00", cats: &["games"], verdict: Allow, ..BASE },
        Case { name: "wpt: games in a lesson the teacher opened", wcs: false, cats: &["games"], live: LiveCase::Override("students", "games", "2026-10-05 10:50"), verdict: Allow, overridden: true, ..BASE },
        Case { name: "wpt: INSET day is not a lesson", wcs: false, at: "2027-01-29 09:30", cats: &["games"], verdict: Allow, ..BASE },
        Case { name: "wpt: dating sites for students (Internet Use)", wcs: false, at: "2026-10-05 13:00", cats: &["dating"], verdict: Block, rule: Some("dating-students"), clause: Some("Internet Use"), ..BASE },
        Case { name: "wpt: guest on BYOD range may not download programs (School Network)", wcs: false, who: Who::Ip("10.50.1.1"), ext: Some("apk"), verdict: Block, rule: Some("program-downloads"), clause: Some("School Network"), ..BASE },
        Case { name: "wpt: VPN blocked for staff (Internet and Email Filtering)", wcs: false, who: Who::Groups(&["staff"]), cats: &["vpn"], verdict: Block, rule: Some("circumvention"), clause: Some("Internet and Email Filtering"), ..BASE },
        Case { name: "wpt: unidentified client blocked (School Network)", wcs: false, who: Who::Ip("192.168.1.9"), verdict: Block, rule: None, clause: Some("School Network"), ..BASE },
        Case { name: "wpt: DST spring: 07:55Z on 2026-04-13 is 08:55 BST, a lesson", wcs: false, at: "2026-04-13T07:55:00Z", cats: &["games"], verdict: Block, rule: Some("cyber-truancy"), clause: Some("Disciplinary Action"), ..BASE },
        Case { name: "wpt: DST autumn: 08:55Z on 2026-11-02 is 08:55 GMT, a lesson", wcs: false, at: "2026-11-02T08:55:00Z", cats: &["games"], verdict: Block, rule: Some("cyber-truancy"), clause: Some("Disciplinary Action"), ..BASE },
        Case { name: "wpt: DST autumn: 07:55Z on 2026-11-02 is 07:55 GMT, before school", wcs: false, at: "2026-11-02T07:55:00Z", cats: &["games"], verdict: Allow, ..BASE },
    ]
}

fn groups(policy: &Policy, names: &[&str]) -> GroupSet {
    names.iter().fold(GroupSet::EMPTY, |s, n| {
        s.with(policy.group_id(n).unwrap_or_else(|| panic!("group {n}")))
    })
}

fn live(policy: &Policy, case: &Case) -> Live {
    let t = |s: &str| policy.parse_time(s).unwrap();
    let g = |n: &str| policy.group_id(n).unwrap();
    let mut live = Live::none();
    match case.live {
        LiveCase::None => {}
        LiveCase::Override(group, cat, until) => live.overrides.push(Override {
            group: g(group),
            target: OverrideTarget::Category(policy.category_id(cat).unwrap()),
            until: t(until),
        }),
        LiveCase::Grant(group, domain, until) => live.grants.push(Grant {
            subject: Subject::Group(g(group)),
            domain: domain.into(),
            until: t(until),
        }),
        LiveCase::Sanction(group, until) => live.sanctions.push(Sanction {
            subject: Subject::Group(g(group)),
            domain: None,
            until: t(until),
            document: "wpt".into(),
            clause: "Your internet access may be suspended if".into(),
            message: "Your internet access is suspended.".into(),
        }),
    }
    live
}

#[test]
fn scenarios_from_both_policies() {
    let wcs = compile("wcs.toml", WCS);
    let wpt = compile("wpt.toml", WPT);
    let cases = cases();
    assert!(cases.len() >= 30, "{} scenarios", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let policy = if case.wcs { &wcs } else { &wpt };
        let identity = match case.who {
            Who::Groups(names) => Identity::Groups(groups(policy, names)),
            Who::Person {
                role,
                year,
                memberships,
            } => Identity::Groups(policy.groups_for_person(&PersonAttrs {
                role,
                year_group: year,
                memberships,
            })),
            Who::Ip(ip) => Identity::Ip(ip.parse::<IpAddr>().unwrap()),
        };
        let categories = case.cats.iter().fold(CategoryMask::EMPTY, |m, c| {
            m.with(
                policy
                    .category_id(c)
                    .unwrap_or_else(|| panic!("category {c}")),
            )
        });
        let file_type = (case.ext.is_some() || case.mime.is_some()).then_some(FileType {
            extension: case.ext,
            mime: case.mime,
        });
        let request = Request {
            identity,
            person: None,
            host: case.host,
            path: case.path,
            categories,
            file_type,
        };
        let live = live(policy, case);
        let now = policy.parse_time(case.at).unwrap();
        let d = policy.decide(&request, &live, now);
        let got = (d.verdict, d.rule.map(|r| r.id), d.clause, d.overridden);
        let want = (case.verdict, case.rule, case.clause, case.overridden);
        if got != want {
            failures.push(format!("{}: got {got:?}, want {want:?}", case.name));
        }
        if let Some(allowed) = case.override_allowed
            && d.override_allowed != allowed
        {
            failures.push(format!(
                "{}: override_allowed {}",
                case.name, d.override_allowed
            ));
        }
        // explain decides exactly as decide does, and its trace ends at the decider.
        let (e, trace) = policy.explain(&request, &live, now);
        if e != d {
            failures.push(format!("{}: explain differs from decide", case.name));
        }
        if trace.is_empty() {
            failures.push(format!("{}: empty trace", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn decision_carries_message_alert_and_categories() {
    let wcs = compile("wcs.toml", WCS);
    let students = GroupSet::single(wcs.group_id("students").unwrap());
    let adult = wcs.category_id("adult").unwrap();
    let mut req = Request::new(Identity::Groups(students), "example.org");
    req.categories = CategoryMask::EMPTY.with(adult);
    let live = Live::none();
    let d = wcs.decide(&req, &live, wcs.parse_time("2026-10-05 09:30").unwrap());
    assert_eq!(d.document, Some("wcs"));
    assert!(d.message.contains("4.6.1"), "{}", d.message);
    assert_eq!(
        d.alert.map(|a| (a.kind.as_str(), a.severity)),
        Some(("safeguarding", 4))
    );
    assert_eq!(wcs.category_names(d.categories), ["adult"]);
    assert_eq!(d.rule.map(|r| r.index), Some(3));
}

#[test]
fn safe_search_dns_settings_and_groups() {
    let wcs = compile("wcs.toml", WCS);
    let g = |n: &str| GroupSet::single(wcs.group_id(n).unwrap());
    let staff = wcs.safe_search(g("staff"));
    assert_eq!(staff.youtube.as_str(), "moderate");
    // Strictest of the groups wins; no groups counts as unidentified (strict).
    assert_eq!(
        wcs.safe_search(g("staff") | g("students")).youtube.as_str(),
        "strict"
    );
    assert_eq!(wcs.safe_search(GroupSet::EMPTY).youtube.as_str(), "strict");
    let dns = wcs.dns_settings();
    assert_eq!(dns.block_mode, hallpass_policy::BlockMode::BlockPage);
    assert_eq!(dns.block_ttl, 10);
    assert!(dns.block_canaries);
    assert_eq!(
        wcs.network_groups("10.50.255.1".parse().unwrap()),
        g("guests")
    );
    assert!(wcs.network_groups("10.51.0.1".parse().unwrap()).is_empty());
    assert_eq!(wcs.unidentified_groups(), g("unidentified"));
    let marketing = wcs.groups_for_person(&PersonAttrs {
        role: "staff",
        year_group: None,
        memberships: &["marketing"],
    });
    assert_eq!(marketing, g("staff") | g("marketing"));
    let wpt = compile("wpt.toml", WPT);
    assert_eq!(
        wpt.dns_settings().block_mode,
        hallpass_policy::BlockMode::NxDomain
    );
}
