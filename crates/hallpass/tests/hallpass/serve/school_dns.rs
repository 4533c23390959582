//! The DNS enforcement point as a school runs it: the real `serve` wiring (the test kit)
//! with the WCS policy, a roster with people logged on at distinct loopback addresses (so
//! each address is a different person), a loopback upstream and the manual clock set to
//! lesson time or lunchtime per test. Queries go over real UDP; what they record is read
//! back from the store.

use super::monday_at;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use hallpass::testkit::dns::{Answer, query_a, spawn_upstream};
use hallpass::testkit::{TestOptions, TestServer};
use hallpass_clock::Clock;
use hallpass_store::ReportFilter;

/// The WCS example with its guest Wi-Fi moved onto loopback, where tests can send from.
fn wcs_on_loopback() -> String {
    include_str!("../../../../../examples/policies/wcs.toml")
        .replace("10.50.0.0/16", "127.0.50.0/24")
}

const ROSTER: &str = "username,display_name,role,year_group,form,email,mis_id\n\
    ava,Ava,student,9,9B,ava@school.example,M1\n\
    tom,Tom,staff,,,tom@school.example,M2\n\
    mia,Mia,staff,,,mia@school.example,M3\n";

const STUDENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 21);
const TEACHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 22);
const MARKETING: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 23);
const GUEST: Ipv4Addr = Ipv4Addr::new(127, 0, 50, 7);
const STRANGER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 99);
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const BLOCK_PAGE: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 10);

/// The school: `serve` on the test kit, the WCS policy, three people logged on.
struct School {
    server: TestServer,
}

impl School {
    async fn start() -> School {
        let people = [(STUDENT, "ava"), (TEACHER, "tom"), (MARKETING, "mia")];
        let server = TestServer::start(TestOptions {
            policy: Some(wcs_on_loopback()),
            roster: Some(ROSTER.to_string()),
            memberships: vec![("mia".into(), "marketing".into())],
            sessions: people
                .iter()
                .map(|(ip, user)| (IpAddr::V4(*ip), user.to_string()))
                .collect(),
            clock: Clock::manual_at(monday_at(10, 0)),
            upstreams: vec![spawn_upstream(UPSTREAM_ANSWER).unwrap()],
            ..TestOptions::default()
        })
        .await
        .unwrap();
        School { server }
    }

    fn set_time(&self, hh: i8, mm: i8) {
        self.server.clock.set(monday_at(hh, mm));
    }

    /// One A query from `from`.
    async fn ask(&self, from: Ipv4Addr, name: &str) -> Answer {
        let (server, name) = (self.server.dns, name.to_string());
        tokio::task::spawn_blocking(move || query_a(server, IpAddr::V4(from), &name).unwrap())
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.server.stop().await.unwrap();
    }
}

/// The CNAME target of an answer (safe search), read from the raw response.
fn cname(answer: &Answer) -> Option<String> {
    let message = hickory_proto::op::Message::from_vec(&answer.raw).unwrap();
    message
        .answers()
        .iter()
        .find_map(|record| match record.data() {
            hickory_proto::rr::RData::CNAME(name) => Some(name.0.to_ascii()),
            _ => None,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_group_gets_its_own_policy_with_the_clause_cited() {
    let school = School::start().await;

    let answer = school.ask(STUDENT, "mail.google.com").await;
    assert_eq!(
        answer.addrs,
        vec![BLOCK_PAGE],
        "webmail is blocked to the block page"
    );
    assert!(answer.cites("wcs 4.5.1"), "EDE cites the webmail clause");

    let answer = school.ask(TEACHER, "www.facebook.com").await;
    assert_eq!(answer.addrs, vec![BLOCK_PAGE]);
    assert!(answer.cites("wcs 8.1.1"));
    let answer = school.ask(MARKETING, "www.facebook.com").await;
    assert_eq!(
        answer.addrs,
        vec![UPSTREAM_ANSWER],
        "marketing may use social media"
    );

    let answer = school.ask(STRANGER, "www.bbc.co.uk").await;
    assert_eq!(
        answer.addrs,
        vec![BLOCK_PAGE],
        "an unidentified client fails closed"
    );
    assert!(answer.cites("wcs 2.1"));

    let answer = school.ask(GUEST, "www.bbc.co.uk").await;
    assert_eq!(
        answer.addrs,
        vec![UPSTREAM_ANSWER],
        "guest Wi-Fi is identified by its range"
    );
    assert!(
        school
            .ask(GUEST, "www.instagram.com")
            .await
            .cites("wcs 8.1.1")
    );
    school.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_of_day_decides_streaming_and_the_guest_network() {
    let school = School::start().await;
    let answer = school.ask(STUDENT, "www.deezer.com").await;
    assert_eq!(
        answer.addrs,
        vec![BLOCK_PAGE],
        "streaming is blocked in lessons"
    );
    assert!(answer.cites("wcs 4.3.7"));
    school.set_time(12, 50);
    let answer = school.ask(STUDENT, "www.deezer.com").await;
    assert_eq!(answer.addrs, vec![UPSTREAM_ANSWER], "allowed at lunchtime");

    school.set_time(23, 30);
    let answer = school.ask(GUEST, "www.bbc.co.uk").await;
    assert_eq!(
        answer.addrs,
        vec![BLOCK_PAGE],
        "guest Wi-Fi closes overnight"
    );
    assert!(answer.cites("wcs 4.2.3"));
    school.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_search_and_canaries() {
    let school = School::start().await;
    let answer = school.ask(STUDENT, "www.google.co.uk").await;
    assert_eq!(
        cname(&answer).as_deref(),
        Some("forcesafesearch.google.com.")
    );
    assert_eq!(
        answer.addrs,
        vec![UPSTREAM_ANSWER],
        "the CNAME's target is resolved too"
    );
    // YouTube is audio-video: blocked for students in lessons (4.3.7); at lunchtime it
    // resolves, through YouTube's strict restricted mode; staff get moderate.
    let answer = school.ask(STUDENT, "www.youtube.com").await;
    assert_eq!(answer.addrs, vec![BLOCK_PAGE]);
    assert!(answer.cites("wcs 4.3.7"));
    school.set_time(12, 50);
    let answer = school.ask(STUDENT, "www.youtube.com").await;
    assert_eq!(cname(&answer).as_deref(), Some("restrict.youtube.com."));
    let answer = school.ask(MARKETING, "www.youtube.com").await;
    assert_eq!(
        cname(&answer).as_deref(),
        Some("restrictmoderate.youtube.com.")
    );
    for canary in [
        "use-application-dns.net",
        "mask.icloud.com",
        "mask-h2.icloud.com",
    ] {
        let answer = school.ask(TEACHER, canary).await;
        assert_eq!(answer.rcode, 3, "{canary}: NXDOMAIN");
    }
    school.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_policy_changes_reach_the_resolver_mid_run() {
    let school = School::start().await;
    let answer = school.ask(STUDENT, "www.bbc.co.uk").await;
    assert_eq!(answer.addrs, vec![UPSTREAM_ANSWER]);

    let now = school.server.clock.now();
    school
        .server
        .store
        .sessions()
        .end("test", "ava", now)
        .await
        .unwrap();
    let mut unidentified = false;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if school.ask(STUDENT, "www.bbc.co.uk").await.addrs == vec![BLOCK_PAGE] {
            unidentified = true;
            break;
        }
    }
    assert!(
        unidentified,
        "an ended session stops identifying its address within 3 s"
    );

    // A new policy file (staff may use social media) is followed by the running server.
    let text = wcs_on_loopback().replace(
        "except_groups = [\"marketing\"]\nteacher_override = true",
        "except_groups = [\"marketing\", \"staff\"]\nteacher_override = true",
    );
    assert_ne!(text, wcs_on_loopback(), "the edit applies to the example");
    std::fs::write(school.server.policy_path(), text).unwrap();
    let mut reloaded = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if school.ask(TEACHER, "www.facebook.com").await.addrs == vec![UPSTREAM_ANSWER] {
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "the edited policy is in force within 5 s");
    school.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_is_recorded_with_person_and_clause() {
    let school = School::start().await;
    let store = school.server.store.clone();
    let before = store.event_count().await.unwrap();
    for _ in 0..3 {
        school.ask(STUDENT, "gmail.com").await;
    }
    school.ask(STUDENT, "www.bbc.co.uk").await;
    school.ask(STRANGER, "www.bbc.co.uk").await;
    school.server.shared.writer.flush().await;
    assert_eq!(store.event_count().await.unwrap() - before, 5);

    // The events are stamped with the server's clock: Monday 23 November 2026.
    let day = monday_at(0, 0);
    let today = ReportFilter::new(day, day + jiff::SignedDuration::from_hours(24));
    let people = store.reports().blocked_by_person(&today, 10).await.unwrap();
    let ava = people
        .iter()
        .find(|row| row.key == "ava")
        .expect("ava's blocked attempts");
    assert_eq!(ava.count, 3);
    let targets = store
        .reports()
        .top_blocked_targets(&today, 10)
        .await
        .unwrap();
    assert!(
        targets
            .iter()
            .any(|row| row.key == "gmail.com" && row.count == 3),
        "{targets:?}"
    );

    // Each event names the person, and a block cites its rule, document and clause, as
    // plain SQL over the events view shows them.
    let recorded = |sql: &str| {
        let store = store.clone();
        let sql = sql.to_string();
        async move {
            hallpass_store::testing::query_strings(&store, &sql)
                .await
                .unwrap()
        }
    };
    let gmail = recorded(
        "SELECT COALESCE(person, '-') || ' ' || verdict || ' ' || COALESCE(rule, '-') || ' ' || \
         COALESCE(document, '-') || ' ' || COALESCE(clause, '-') FROM events \
         WHERE kind = 'dns' AND target = 'gmail.com'",
    )
    .await;
    assert_eq!(gmail, vec!["ava block webmail wcs 4.5.1"; 3]);
    let bbc = recorded(
        "SELECT COALESCE(person, '-') || ' ' || verdict || ' ' || COALESCE(document, '-') || \
         ' ' || COALESCE(clause, '-') FROM events WHERE kind = 'dns' \
         AND target = 'www.bbc.co.uk' ORDER BY person",
    )
    .await;
    let mut bbc = bbc;
    bbc.sort();
    assert_eq!(
        bbc,
        vec![
            // The unidentified client fails closed citing 2.1; ava's query is allowed
            // (by the default: no rule, document or clause).
            "- block wcs 2.1".to_string(),
            "ava allow - -".to_string(),
        ]
    );
    school.stop().await;
}
