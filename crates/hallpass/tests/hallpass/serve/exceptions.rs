//! The people's side of filtering over real sockets: the block page for a blocked name,
//! an access request, its approval reaching DNS within a second for that student only,
//! its expiry on the injected clock; a teacher override for one class until the end of
//! the lesson; and the bad input that must change nothing.

use super::monday_at;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hallpass::testkit::dns::{query_a, spawn_upstream};
use hallpass::testkit::{TestOptions, TestServer};
use hallpass_clock::Clock;
use hallpass_web::Role;
use serde_json::json;

const AVA: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const BEN: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5));
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const BLOCK_PAGE: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 10);
/// In the demo lists' games category: blocked for students by wcs 8.3
/// (`personal-use-students`, marked `teacher_override`).
const GAME: &str = "steampowered.com";

/// The wcs policy with one class: form 9B (Ava's; Ben is in 11R).
fn policy_with_a_class() -> String {
    let wcs = include_str!("../../../../../examples/policies/wcs.toml");
    let marker = "# ---------------------------------------------------------------- rules";
    assert!(wcs.contains(marker));
    wcs.replace(
        marker,
        &format!("[groups.form-9b]\nmemberships = [\"9B\"]\ndefault = \"allow\"\n\n{marker}"),
    )
}

const ROSTER: &str = "username,display_name,role,year_group,form,email,mis_id,groups\n\
ava.student,Ava Student,student,9,9B,ava.student@demo.example,D0001,9B\n\
ben.student,Ben Student,student,11,11R,ben.student@demo.example,D0002,11R\n\
mr.teacher,Mr Teacher,staff,,,mr.teacher@demo.example,D0100,\n\
ms.netman,Ms Netman,staff,,,ms.netman@demo.example,D0200,\n\
mr.dsl,Mr Dsl,staff,,,mr.dsl@demo.example,D0201,\n\
mr.head,Mr Head,staff,,,mr.head@demo.example,D0203,\n";

async fn start(at: jiff::Timestamp) -> TestServer {
    let upstream = spawn_upstream(UPSTREAM_ANSWER).unwrap();
    TestServer::start(TestOptions {
        policy: Some(policy_with_a_class()),
        roster: Some(ROSTER.into()),
        sessions: vec![(AVA, "ava.student".into()), (BEN, "ben.student".into())],
        clock: Clock::manual_at(at),
        upstreams: vec![upstream],
        accounts: vec![
            ("ava.student".into(), Role::Student, vec![]),
            ("ben.student".into(), Role::Student, vec![]),
            ("mr.teacher".into(), Role::Teacher, vec![]),
            ("ms.netman".into(), Role::NetworkManager, vec![]),
            ("mr.dsl".into(), Role::Dsl, vec![]),
            ("mr.head".into(), Role::Headteacher, vec![]),
        ],
        ..TestOptions::default()
    })
    .await
    .unwrap()
}

async fn resolves(server: &TestServer, from: IpAddr, name: &str) -> bool {
    let (dns, name) = (server.dns, name.to_string());
    let answer = tokio::task::spawn_blocking(move || query_a(dns, from, &name).unwrap())
        .await
        .unwrap();
    if answer.addrs == [UPSTREAM_ANSWER] {
        true
    } else {
        assert_eq!(answer.addrs, [BLOCK_PAGE], "neither allowed nor blocked");
        false
    }
}

/// Polls DNS until `name` resolves from `from` (true) or a second has passed (false).
async fn resolves_within_a_second(
    server: &TestServer,
    from: IpAddr,
    name: &str,
) -> (bool, Duration) {
    let started = Clock::system().instant();
    while started.elapsed() < Duration::from_secs(1) {
        if resolves(server, from, name).await {
            return (true, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    (false, started.elapsed())
}

/// One HTTP/1.1 request to the block page with `host` as the Host, from the test's
/// loopback address (127.0.0.1, Ava's session): (status, headers, body).
fn portal(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    extra: &str,
    body: &str,
) -> (u16, String, String) {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string())
}

/// JSON bodies without reqwest's `json` feature.
trait JsonBody {
    fn json_body(self, body: serde_json::Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, body: serde_json::Value) -> Self {
        self.header("content-type", "application/json")
            .body(body.to_string())
    }
}

fn portal_addr(server: &TestServer) -> SocketAddr {
    server.addrs("portal")[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_approved_for_one_student_opens_the_site_for_her_alone_until_it_expires() {
    let server = start(monday_at(10, 0)).await;
    assert!(
        !resolves(&server, AVA, GAME).await,
        "{GAME} should be blocked for Ava"
    );

    // The block page for that Host, from Ava's address: the clause, the categories, her
    // name and the reference of the DNS filter's recorded decision.
    let addr = portal_addr(&server);
    let mut reference = String::new();
    for _ in 0..40 {
        let (status, head, body) =
            tokio::task::spawn_blocking(move || portal(addr, "GET", GAME, "/", "", ""))
                .await
                .unwrap();
        assert_eq!(status, 403, "{body}");
        assert!(
            head.to_ascii_lowercase()
                .contains("set-cookie: hallpass_portal="),
            "{head}"
        );
        assert!(body.contains("8.3"), "no clause: {body}");
        assert!(body.contains("games"), "no category: {body}");
        assert!(body.contains("ava.student"), "no person: {body}");
        let found = body
            .split("id=\"reference\">")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .unwrap()
            .to_string();
        if found.chars().all(|c| c.is_ascii_digit()) {
            reference = found;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !reference.is_empty(),
        "the block page never showed a recorded reference"
    );

    // Ava files a request; Ms Netman approves it for Ava for an hour.
    let ava = server.client_for(Role::Student).await.unwrap();
    let filed = ava
        .post("/api/v1/requests")
        .json_body(json!({"target": GAME, "reason": "Computing homework on game stores"}))
        .send()
        .await
        .unwrap();
    assert_eq!(filed.status(), 201);
    let filed: serde_json::Value = serde_json::from_str(&filed.text().await.unwrap()).unwrap();
    let id = filed["id"].as_i64().unwrap();
    assert!(
        !resolves(&server, AVA, GAME).await,
        "a request must not grant anything"
    );

    let netman = server.client_for(Role::NetworkManager).await.unwrap();
    let (_, queue) = netman.get_json("/api/v1/requests").await.unwrap();
    assert!(
        queue.as_array().unwrap().iter().any(|r| r["id"] == id),
        "{queue}"
    );
    let until = (server.clock.now() + jiff::SignedDuration::from_hours(1)).to_string();
    let approved = netman
        .post(&format!("/api/v1/requests/{id}/approve"))
        .json_body(json!({"scope": "person", "until": until}))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200, "{}", approved.text().await.unwrap());

    let (open, took) = resolves_within_a_second(&server, AVA, GAME).await;
    assert!(open, "the approval did not reach DNS within a second");
    eprintln!("approval -> first allowed answer: {took:?}");
    assert!(
        !resolves(&server, BEN, GAME).await,
        "the grant was for Ava only"
    );
    let (_, mine) = ava
        .get_json(&format!("/api/v1/requests/{id}"))
        .await
        .unwrap();
    assert_eq!(mine["status"], "approved", "{mine}");

    // An hour and a minute later the grant has expired: blocked again, and audited.
    server.clock.advance(Duration::from_secs(61 * 60));
    assert!(
        !resolves(&server, AVA, GAME).await,
        "the grant outlived its time"
    );
    let mut actions = Vec::new();
    for _ in 0..40 {
        actions = server
            .store
            .audit()
            .recent(50)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        if actions.iter().any(|a| a == "grant.expire") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for action in ["request.file", "request.approve", "grant.expire"] {
        assert!(
            actions.iter().any(|a| a == action),
            "no {action} in {actions:?}"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teacher_override_opens_a_rule_for_one_class_until_the_end_of_the_lesson() {
    // 10:00 is inside the 08:40-10:40 lesson.
    let server = start(monday_at(10, 0)).await;
    let teacher = server.client_for(Role::Teacher).await.unwrap();
    let refused = teacher
        .post("/api/v1/overrides")
        .json_body(json!({"group": "form-9b", "rule": "webmail"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        403,
        "webmail is not marked teacher_override"
    );
    assert!(refused.text().await.unwrap().contains("teacher_override"));

    let made = teacher
        .post("/api/v1/overrides")
        .json_body(json!({"group": "form-9b", "rule": "personal-use-students"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let (open, took) = resolves_within_a_second(&server, AVA, GAME).await;
    assert!(open, "the override did not reach DNS within a second");
    eprintln!("override -> first allowed answer: {took:?}");
    assert!(!resolves(&server, BEN, GAME).await, "Ben is not in form 9B");
    let (_, listed) = teacher.get_json("/api/v1/overrides").await.unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["until"], monday_at(10, 40).to_string());

    // The lesson ends at 10:40: so does the override.
    server.clock.advance(Duration::from_secs(41 * 60));
    assert!(
        !resolves(&server, AVA, GAME).await,
        "the override outlived the lesson"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_approvals_are_refused_and_change_nothing() {
    let server = start(monday_at(10, 0)).await;
    let ava = server.client_for(Role::Student).await.unwrap();
    let bad_site = ava
        .post("/api/v1/requests")
        .json_body(json!({"target": "not a site!", "reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_site.status(), 400);
    assert!(bad_site.text().await.unwrap().contains("not a site"));

    let mut statuses = Vec::new();
    for i in 0..6 {
        let r = ava
            .post("/api/v1/requests")
            .json_body(json!({"target": format!("site{i}.example.org"), "reason": "flood"}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(
        statuses,
        [201, 201, 201, 201, 201, 429],
        "five per ten minutes per address"
    );
    let (_, mine) = ava.get_json("/api/v1/requests").await.unwrap();
    assert_eq!(
        mine.as_array().unwrap().len(),
        5,
        "the refused ones were not stored"
    );
    let id = mine[0]["id"].as_i64().unwrap();

    // The headteacher may not open a site for everyone; the DSL does not review ordinary
    // requests; a grant may not end in the past.
    let head = server.client_for(Role::Headteacher).await.unwrap();
    let everyone = head
        .post(&format!("/api/v1/requests/{id}/approve"))
        .json_body(json!({"scope": "everyone", "until": "policy-change"}))
        .send()
        .await
        .unwrap();
    assert_eq!(everyone.status(), 403);
    let dsl = server.client_for(Role::Dsl).await.unwrap();
    let not_theirs = dsl
        .post(&format!("/api/v1/requests/{id}/approve"))
        .json_body(json!({"scope": "person", "until": "policy-change"}))
        .send()
        .await
        .unwrap();
    assert_eq!(not_theirs.status(), 403);
    let netman = server.client_for(Role::NetworkManager).await.unwrap();
    let past = (server.clock.now() - jiff::SignedDuration::from_hours(1)).to_string();
    let in_the_past = netman
        .post(&format!("/api/v1/requests/{id}/approve"))
        .json_body(json!({"scope": "person", "until": past}))
        .send()
        .await
        .unwrap();
    assert_eq!(in_the_past.status(), 400);
    assert!(
        in_the_past
            .text()
            .await
            .unwrap()
            .contains("not in the future")
    );
    let unknown_scope = netman
        .post(&format!("/api/v1/requests/{id}/approve"))
        .json_body(json!({"scope": "planet", "until": "policy-change"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_scope.status(), 403);
    let (_, request) = ava
        .get_json(&format!("/api/v1/requests/{id}"))
        .await
        .unwrap();
    assert_eq!(
        request["status"], "pending",
        "refused approvals changed it: {request}"
    );
    assert!(
        server
            .store
            .exceptions()
            .grants(server.clock.now(), true)
            .await
            .unwrap()
            .is_empty()
    );

    // A teacher override of a rule that is not marked, or past the lesson, is refused.
    let teacher = server.client_for(Role::Teacher).await.unwrap();
    let too_long = teacher
        .post("/api/v1/overrides")
        .json_body(json!({"group": "form-9b", "rule": "personal-use-students",
                      "until": monday_at(12, 0).to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(too_long.status(), 400);
    let unknown_group = teacher
        .post("/api/v1/overrides")
        .json_body(json!({"group": "9Z", "rule": "personal-use-students"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_group.status(), 400);
    let (_, overrides) = teacher.get_json("/api/v1/overrides").await.unwrap();
    assert!(overrides.as_array().unwrap().is_empty());
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_block_page_files_a_request_with_its_form_and_refuses_a_forged_one() {
    let server = start(monday_at(10, 0)).await;
    let addr = portal_addr(&server);
    let (_, head, _) = tokio::task::spawn_blocking(move || portal(addr, "GET", GAME, "/", "", ""))
        .await
        .unwrap();
    let token = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie:")
                .then(|| l.to_string())
        })
        .and_then(|l| {
            l.split("hallpass_portal=")
                .nth(1)
                .map(|v| v.split(';').next().unwrap().to_string())
        })
        .unwrap();
    let form = format!("site={GAME}&reason=homework&token={token}");
    let cookie = format!(
        "Cookie: hallpass_portal={token}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    );
    let forged_cookie =
        "Cookie: hallpass_portal=0000\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            .to_string();
    let (form2, cookie2) = (form.clone(), cookie.clone());
    let (status, _, body) = tokio::task::spawn_blocking(move || {
        portal(
            addr,
            "POST",
            GAME,
            "/hallpass/request",
            &forged_cookie,
            &form2,
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(
        server
            .store
            .exceptions()
            .requests(None, None, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let (status, _, body) = tokio::task::spawn_blocking(move || {
        portal(addr, "POST", GAME, "/hallpass/request", &cookie2, &form)
    })
    .await
    .unwrap();
    assert_eq!(status, 201, "{body}");
    assert!(body.contains("sent"), "{body}");
    let stored = server
        .store
        .exceptions()
        .requests(None, None, None, 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].person, "ava.student");
    assert_eq!(stored[0].rule.as_deref(), Some("personal-use-students"));
    assert!(body.contains("data-status=\"pending\""), "{body}");
    drop(cookie);
    server.stop().await.unwrap();
}
