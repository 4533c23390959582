//! The student's and the approver's pages, walked in Chromium: the block page, the
//! request form on it, the console's review queue, the student's view of the outcome,
//! and a teacher's override for a class, each checked against real DNS answers.

use std::net::{IpAddr, Ipv4Addr};

use hallpass::testkit::dns::{query_a, spawn_upstream};
use hallpass::testkit::{TestOptions, TestServer};
use hallpass_clock::Clock;
use hallpass_web::Role;

use crate::driver::{Driver, pause};
use crate::monday_lesson;

const AVA: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The demo's teacher: staff, so neither Ava's grant nor a Year 9 override covers him.
const TEACHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

async fn resolves(server: &TestServer, from: IpAddr, name: &str) -> bool {
    let (dns, name) = (server.dns, name.to_string());
    let answer = tokio::task::spawn_blocking(move || query_a(dns, from, &name).unwrap())
        .await
        .unwrap();
    answer.addrs == [UPSTREAM_ANSWER]
}

/// Polls DNS (bounded: two seconds) until `name` resolves from `from`.
async fn opens(server: &TestServer, from: IpAddr, name: &str) -> bool {
    for _ in 0..20 {
        if resolves(server, from, name).await {
            return true;
        }
        pause().await;
    }
    false
}

/// Polls DNS (bounded: two seconds) until `name` is blocked again from `from`.
async fn closes(server: &TestServer, from: IpAddr, name: &str) -> bool {
    for _ in 0..20 {
        if !resolves(server, from, name).await {
            return true;
        }
        pause().await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_asks_on_the_block_page_and_an_approver_and_a_teacher_open_sites() {
    let server = TestServer::start(TestOptions {
        clock: Clock::manual_at(monday_lesson()),
        upstreams: vec![spawn_upstream(UPSTREAM_ANSWER).unwrap()],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let portal = server.addrs("portal")[0];
    // Chromium resolves the blocked names to the block page, as the DNS filter's block
    // answer sends a browser there (the page reads the Host it was asked for). Names of
    // the demo lists under .test: Chromium would upgrade gmail.com (HSTS preloaded).
    let rules = format!(
        "--host-resolver-rules=MAP webmail-demo.test {portal}, MAP photo-share.test {portal}"
    );
    let Some(driver) = Driver::start_with(&[rules]).await else {
        return;
    };
    let base = server.web_base();
    assert!(
        !resolves(&server, AVA, "webmail-demo.test").await,
        "webmail is blocked"
    );

    // The student meets the block page and asks for the site.
    driver.goto("http://webmail-demo.test/").await;
    let page = driver.source_with("id=\"reference\"").await;
    assert!(page.contains("data-verdict=\"block\""), "{page}");
    assert!(page.contains("WCS ICT Policy 4.5.1"), "the clause: {page}");
    assert!(page.contains("ava.student"), "who she is: {page}");
    driver
        .type_into("#request-reason", "My work experience placement emails me")
        .await;
    driver.click("#request-submit").await;
    let page = driver.source_with("data-status=\"pending\"").await;
    assert!(page.contains("id=\"notice\""), "{page}");
    assert!(page.contains("data-status=\"pending\""), "{page}");
    assert!(
        !resolves(&server, AVA, "webmail-demo.test").await,
        "a request grants nothing"
    );

    // The network manager finds it in the queue and approves it for her for an hour.
    let netman = server.account_for(Role::NetworkManager).unwrap().clone();
    let html = driver
        .sign_in(&base, &netman.username, &netman.password)
        .await;
    assert!(html.contains(">Requests</a>"), "{html}");
    driver.goto(&format!("{base}/requests")).await;
    let queue = driver.source_with("class=\"request\"").await;
    assert!(
        queue.contains("My work experience placement emails me"),
        "{queue}"
    );
    assert!(
        queue.contains("webmail"),
        "the rule that blocked it: {queue}"
    );
    driver.click("section.request .approve-button").await;
    let done = driver.source_with("id=\"notice\"").await;
    assert!(done.contains("Approved"), "{done}");
    assert!(done.contains("id=\"queue-empty\""), "{done}");
    assert!(
        done.contains("<td>person ava.student</td><td>webmail-demo.test</td>"),
        "the grant in force: {done}"
    );
    assert!(
        opens(&server, AVA, "webmail-demo.test").await,
        "approved for Ava"
    );
    assert!(
        !resolves(&server, TEACHER, "webmail-demo.test").await,
        "and for nobody else"
    );

    // The student sees the outcome on the block page, and files a second request from
    // the console's own form.
    driver.delete_cookies().await;
    driver.goto("http://webmail-demo.test/").await;
    let page = driver.source_with("data-status=\"approved\"").await;
    assert!(page.contains("data-status=\"approved\""), "{page}");
    let ava = server.account_for(Role::Student).unwrap().clone();
    let html = driver.sign_in(&base, &ava.username, &ava.password).await;
    assert!(html.contains(">Requests</a>"), "{html}");
    assert!(
        !html.contains(">Overrides</a>"),
        "a student overrides nothing"
    );
    driver.goto(&format!("{base}/requests")).await;
    let mine = driver.source_with("id=\"requests\"").await;
    assert!(mine.contains("approved"), "{mine}");
    driver.type_into("#target", "photo-share.test").await;
    driver.type_into("#reason", "Our class page").await;
    driver.click("#file").await;
    let mine = driver.source_with("class=\"pending\"").await;
    assert!(
        mine.contains("photo-share.test: waiting for review"),
        "{mine}"
    );
    driver.goto(&format!("{base}/overrides")).await;
    let denied = driver.source().await;
    assert!(
        denied.contains("may not perform overrides.manage"),
        "{denied}"
    );

    // The approver denies it with a reason, which the student then reads.
    driver
        .sign_in(&base, &netman.username, &netman.password)
        .await;
    driver.goto(&format!("{base}/requests")).await;
    driver.source_with("class=\"request\"").await;
    driver
        .type_into(
            "section.request form.deny input[name=reason]",
            "Ask your teacher to open it in the lesson",
        )
        .await;
    driver.click("section.request .deny-button").await;
    let done = driver.source_with("id=\"notice\"").await;
    assert!(done.contains("Denied"), "{done}");
    driver.sign_in(&base, &ava.username, &ava.password).await;
    driver.goto(&format!("{base}/requests")).await;
    let mine = driver.source_with("id=\"requests\"").await;
    assert!(
        mine.contains("Ask your teacher to open it in the lesson"),
        "{mine}"
    );

    // The teacher opens social media for Year 9 for this lesson, then revokes it.
    assert!(!resolves(&server, AVA, "photo-share.test").await);
    let teacher = server.account_for(Role::Teacher).unwrap().clone();
    let html = driver
        .sign_in(&base, &teacher.username, &teacher.password)
        .await;
    assert!(html.contains(">Overrides</a>"), "{html}");
    driver.goto(&format!("{base}/overrides")).await;
    let form = driver.source_with("id=\"new-override\"").await;
    assert!(form.contains("id=\"lesson-end\""), "in a lesson: {form}");
    assert!(
        !form.contains("value=\"webmail\""),
        "webmail is not marked: {form}"
    );
    driver
        .run(
            "document.querySelector('#group').value = 'year-9'; \
             document.querySelector('#rule').value = 'social-media';",
        )
        .await;
    driver.click("#open").await;
    let done = driver.source_with("id=\"notice\"").await;
    assert!(done.contains("Override in force"), "{done}");
    assert!(
        done.contains("<td>year-9</td><td>social-media</td>"),
        "{done}"
    );
    assert!(
        opens(&server, AVA, "photo-share.test").await,
        "open for Year 9"
    );
    assert!(
        !resolves(&server, TEACHER, "photo-share.test").await,
        "not for staff"
    );
    driver.click("#overrides .revoke").await;
    let done = driver.source_with("Override revoked").await;
    assert!(done.contains("Override revoked"), "{done}");
    assert!(closes(&server, AVA, "photo-share.test").await, "revoked");

    // Every decision is in the audit log.
    driver
        .sign_in(&base, &netman.username, &netman.password)
        .await;
    driver.goto(&format!("{base}/audit")).await;
    let audit = driver.source().await;
    for action in [
        "request.approve",
        "request.deny",
        "override.create",
        "override.revoke",
    ] {
        assert!(audit.contains(action), "audit has no {action}: {audit}");
    }
    let _ = driver.s("DELETE", "", None).await;
    server.stop().await.unwrap();
}
