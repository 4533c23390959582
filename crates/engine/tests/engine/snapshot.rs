//! The engine over the real demo catalog and the WCS example policy: identification by
//! session, by network range and as unidentified; swaps seen by the next request.

use std::net::IpAddr;
use std::sync::Arc;

use hallpass_catalog::Catalog;
use hallpass_engine::{Engine, IdentityMap, Person, Snapshot, compile_policy};
use hallpass_policy::{Live, Verdict};

const WCS: &str = include_str!("../../../../examples/policies/wcs.toml");

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Monday 23 November 2026, 10:00 in London (GMT): a lesson in term time.
fn lesson_time() -> jiff::Timestamp {
    "2026-11-23T10:00:00Z".parse().unwrap()
}

fn person(username: &str, role: &str, year: Option<&str>, memberships: &[&str]) -> Person {
    Person {
        username: Arc::from(username),
        role: role.to_string(),
        year_group: year.map(str::to_string),
        memberships: memberships.iter().map(|m| m.to_string()).collect(),
        // They have accepted the WCS declaration (this test's subject is the rest).
        accepted: [("wcs".to_string(), "2023".to_string())].into(),
    }
}

fn engine() -> Engine {
    let catalog = Catalog::demo().unwrap();
    let (policy, _warnings) = compile_policy("wcs.toml", WCS, &catalog).unwrap();
    let identities = IdentityMap::build(
        &policy,
        [
            (
                ip("10.1.0.7"),
                person("ava.student", "student", Some("Y9"), &[]),
            ),
            (ip("10.2.0.3"), person("mr.teacher", "staff", None, &[])),
            (
                ip("10.2.0.4"),
                person("ms.marketing", "staff", None, &["marketing"]),
            ),
        ],
    );
    Engine::new(Snapshot::new(
        Arc::new(policy),
        Arc::new(catalog),
        Arc::new(identities),
        Arc::new(Live::default()),
    ))
}

#[test]
fn a_student_in_a_session_is_blocked_from_webmail_citing_the_clause() {
    let engine = engine();
    let snapshot = engine.snapshot();
    let outcome = snapshot.decide_host(ip("10.1.0.7"), "mail.google.com", lesson_time());
    assert_eq!(
        outcome.who.person.as_ref().unwrap().username.as_ref(),
        "ava.student"
    );
    assert_eq!(outcome.decision.verdict, Verdict::Block);
    assert_eq!(outcome.decision.clause, Some("4.5.1"));
    assert_eq!(
        snapshot.category_names(&outcome.categories),
        vec!["webmail".to_string()]
    );
}

#[test]
fn membership_decides_social_media() {
    let engine = engine();
    let snapshot = engine.snapshot();
    let teacher = snapshot.decide_host(ip("10.2.0.3"), "www.facebook.com", lesson_time());
    assert_eq!(teacher.decision.verdict, Verdict::Block);
    assert_eq!(teacher.decision.clause, Some("8.1.1"));
    let marketing = snapshot.decide_host(ip("10.2.0.4"), "www.facebook.com", lesson_time());
    assert_eq!(marketing.decision.verdict, Verdict::Allow);
}

#[test]
fn guests_are_identified_by_network_and_strangers_fail_closed() {
    let engine = engine();
    let snapshot = engine.snapshot();
    let guest = snapshot.decide_host(ip("10.50.3.4"), "www.bbc.co.uk", lesson_time());
    assert!(guest.who.person.is_none());
    assert_eq!(guest.decision.verdict, Verdict::Allow);
    let stranger = snapshot.decide_host(ip("192.0.2.9"), "www.bbc.co.uk", lesson_time());
    assert_eq!(stranger.decision.verdict, Verdict::Block);
    assert_eq!(stranger.decision.clause, Some("2.1"));
}

#[test]
fn a_swapped_snapshot_reaches_the_next_request() {
    let engine = engine();
    let before = engine
        .snapshot()
        .decide_host(ip("10.1.0.7"), "www.bbc.co.uk", lesson_time())
        .decision
        .verdict;
    assert_eq!(before, Verdict::Allow);
    let current = engine.current();
    engine.replace(current.with_identities(IdentityMap::build(&current.policy, [])));
    let after = engine.snapshot();
    assert_eq!(after.generation, current.generation + 1);
    let outcome = after.decide_host(ip("10.1.0.7"), "www.bbc.co.uk", lesson_time());
    assert!(
        outcome.who.person.is_none(),
        "the ended session no longer identifies anyone"
    );
    assert_eq!(
        outcome.decision.verdict,
        Verdict::Block,
        "unidentified fails closed"
    );
}

#[test]
fn both_example_policies_compile_against_the_demo_catalog() {
    let catalog = Catalog::demo().unwrap();
    for (file, text) in [
        ("wcs.toml", WCS),
        (
            "wpt.toml",
            include_str!("../../../../examples/policies/wpt.toml"),
        ),
    ] {
        if let Err(errors) = compile_policy(file, text, &catalog) {
            panic!("{file} does not compile against the demo catalog:\n{errors}");
        }
    }
}

#[test]
fn a_person_with_a_pending_declaration_gets_the_restricted_group_alone() {
    let catalog = Catalog::demo().unwrap();
    let (policy, _) = compile_policy("wcs.toml", WCS, &catalog).unwrap();
    let mut old_version = person("ava.student", "student", Some("Y9"), &[]);
    old_version.accepted = [("wcs".to_string(), "2022".to_string())].into();
    let mut never = person("mr.teacher", "staff", None, &[]);
    never.accepted.clear();
    let identities = IdentityMap::build(
        &policy,
        [
            (ip("10.1.0.7"), old_version),
            // On the guest network's range: its group must not widen the restriction.
            (ip("10.50.0.9"), never),
            (
                ip("10.2.0.4"),
                person("ms.marketing", "staff", None, &["marketing"]),
            ),
        ],
    );
    let snapshot = Snapshot::new(
        Arc::new(policy),
        Arc::new(catalog),
        Arc::new(identities),
        Arc::new(Live::default()),
    );
    for address in ["10.1.0.7", "10.50.0.9"] {
        let outcome = snapshot.decide_host(ip(address), "www.bbc.co.uk", lesson_time());
        assert!(outcome.who.restricted, "{address}");
        assert!(outcome.who.person.is_some(), "{address}: still identified");
        assert_eq!(
            snapshot.policy.group_names(outcome.who.groups),
            ["declaration-pending"],
            "{address}"
        );
        assert_eq!(outcome.decision.verdict, Verdict::Block, "{address}");
        assert_eq!(outcome.decision.clause, Some("14"), "{address}");
    }
    let accepted = snapshot.decide_host(ip("10.2.0.4"), "www.facebook.com", lesson_time());
    assert!(!accepted.who.restricted);
    assert_eq!(accepted.decision.verdict, Verdict::Allow);
}
