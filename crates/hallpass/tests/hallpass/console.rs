//! The console as `serve` runs it, over real HTTP: the whole demo server in-process
//! (`hallpass::testkit`), a signed-in client per role (`TestServer::client_for`), and
//! bad input of every kind refused with a clear JSON reason, changing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hallpass::testkit::console::{anonymous_client, login};
use hallpass::testkit::{TestOptions, TestServer};
use hallpass_web::{Op, Role, role_allows};
use serde_json::{Value, json};

async fn demo() -> TestServer {
    TestServer::start(TestOptions::default()).await.unwrap()
}

async fn audit_len(server: &TestServer) -> usize {
    server.store.audit().recent(100_000).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_gets_a_signed_in_client_that_can_do_what_the_matrix_says() {
    let server = demo().await;
    assert_eq!(
        server.accounts.len(),
        Role::ALL.len(),
        "{:?}",
        server.accounts
    );
    for role in Role::ALL {
        let client = server.client_for(role).await.unwrap();
        let (status, me) = client.get_json("/api/v1/me").await.unwrap();
        assert_eq!(status, 200, "{role}: {me}");
        assert_eq!(me["role"], role.as_str(), "{me}");
        assert_eq!(me["username"], client.account.username.as_str(), "{me}");
        let granted: Vec<&str> = me["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let matrix: Vec<&str> = Op::ALL
            .into_iter()
            .filter(|op| role_allows(role, *op))
            .map(Op::name)
            .collect();
        assert_eq!(granted, matrix, "{role}");
        // The dashboard: allowed or forbidden (with the reason) as the matrix says.
        let (status, body) = client.get_json("/api/v1/dashboard").await.unwrap();
        if role_allows(role, Op::ViewDashboard) {
            assert_eq!(status, 200, "{role}: {body}");
        } else {
            assert_eq!(status, 403, "{role}: {body}");
            assert_eq!(body["error"], "forbidden");
        }
    }

    // The client's POST carries the CSRF token; without it a state change is refused.
    let teacher = server.client_for(Role::Teacher).await.unwrap();
    let r = teacher
        .post_without_csrf("/api/v1/logout")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(teacher.get_json("/api/v1/me").await.unwrap().0, 200);
    let r = teacher.post("/api/v1/logout").send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(teacher.get_json("/api/v1/me").await.unwrap().0, 401);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_account_in_a_custom_school_signs_in_too() {
    let server = TestServer::start(TestOptions {
        accounts: vec![("ms.marketing".into(), Role::Teacher, Vec::new())],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    assert_eq!(server.accounts.len(), Role::ALL.len() + 1);
    let extra = server.accounts.last().unwrap().clone();
    assert_eq!(extra.username, "ms.marketing");
    server.stop().await.unwrap();

    let server = TestServer::start(TestOptions {
        policy: Some(include_str!("../../../../examples/policies/wcs.toml").into()),
        roster: Some(
            "username,display_name,role,year_group,form,email,mis_id\n\
             ms.hoy,Ms Hoy,staff,,,ms.hoy@school.example,M1\n"
                .into(),
        ),
        accounts: vec![("ms.hoy".into(), Role::HeadOfYear, vec!["9".into()])],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    assert!(server.client_for(Role::Teacher).await.is_err(), "no demo");
    let hoy = server.client_for(Role::HeadOfYear).await.unwrap();
    let (status, me) = hoy.get_json("/api/v1/me").await.unwrap();
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["years"], json!(["9"]));
    server.stop().await.unwrap();
}

/// POST `body` with `content_type` to `path`: (status, JSON body).
async fn post_raw(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let r = anonymous_client()
        .unwrap()
        .post(format!("{}{path}", server.web_base()))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{path}: {status} is not JSON ({e}): {text:?}"));
    (status, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_api_input_gets_a_clear_error_and_changes_nothing() {
    let server = demo().await;
    let before = audit_len(&server).await;
    let json_type = "application/json";
    let oversized = json!({ "username": "x".repeat(100 * 1024), "password": "p" }).to_string();
    let nested = "[".repeat(60_000);
    // (path, content type, body, status, error code, words the reason must contain)
    type Case<'a> = (&'a str, &'a str, Vec<u8>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "/api/v1/login",
            json_type,
            b"{\"username\": \"ms.netman\", ".to_vec(),
            400,
            "bad_request",
            "EOF",
        ),
        (
            "/api/v1/login",
            json_type,
            br#"{"username": "ms.netman"}"#.to_vec(),
            400,
            "bad_request",
            "missing field `password`",
        ),
        (
            "/api/v1/login",
            json_type,
            br#"{"username": "ms.netman", "password": "p", "role": "network_manager"}"#.to_vec(),
            400,
            "bad_request",
            "unknown field `role`",
        ),
        (
            "/api/v1/login",
            json_type,
            br#"{"username": 7, "password": "p"}"#.to_vec(),
            400,
            "bad_request",
            "invalid type",
        ),
        (
            "/api/v1/login",
            json_type,
            b"\xff\xfe{}".to_vec(),
            400,
            "bad_request",
            "",
        ),
        (
            "/api/v1/login",
            json_type,
            nested.into_bytes(),
            400,
            "bad_request",
            "invalid type: sequence",
        ),
        (
            "/api/v1/login",
            "text/plain",
            br#"{"username": "ms.netman", "password": "p"}"#.to_vec(),
            400,
            "bad_request",
            "Content-Type: application/json",
        ),
        (
            "/api/v1/login",
            json_type,
            oversized.into_bytes(),
            413,
            "too_large",
            "",
        ),
        (
            "/api/v1/nowhere",
            json_type,
            b"{}".to_vec(),
            404,
            "not_found",
            "no such page",
        ),
    ];
    for (path, content_type, body, status, code, reason) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        let (got, v) = post_raw(&server, path, content_type, body).await;
        assert_eq!(got, status, "{path} {shown:?}: {v}");
        assert_eq!(v["error"], code, "{shown:?}: {v}");
        let text = v["reason"].as_str().unwrap();
        assert!(!text.is_empty(), "{shown:?}: no reason");
        assert!(text.contains(reason), "{shown:?}: {text}");
    }

    // Signed in, bad queries are refused the same way.
    let netman = server.client_for(Role::NetworkManager).await.unwrap();
    let after_sign_in = audit_len(&server).await;
    for (path, needle) in [
        ("/api/v1/events?colour=red", "unknown field `colour`"),
        ("/api/v1/events?page=two", "page"),
        ("/api/v1/events?page=0", "page: 0 is out of range"),
        ("/api/v1/events?from=yesterday", "from"),
        ("/api/v1/events?ip=10.0.0.999", "not an IP address"),
        (
            "/api/v1/explain?group=wizards&target=x.com",
            "unknown group",
        ),
        (
            "/api/v1/explain?person=nobody&target=x.com",
            "no \"nobody\"",
        ),
        ("/api/v1/explain?group=students&target=%00", "host name"),
        ("/api/v1/audit?limit=99999999999999999999", "limit"),
    ] {
        let (status, v) = netman.get_json(path).await.unwrap();
        assert_eq!(status, 400, "{path}: {v}");
        assert_eq!(v["error"], "bad_request", "{path}: {v}");
        let reason = v["reason"].as_str().unwrap();
        assert!(reason.contains(needle), "{path}: {reason}");
    }
    // An oversized form to a page, with the cookie, is refused before the CSRF check.
    let r = netman
        .post_without_csrf("/logout")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={}", "x".repeat(100 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(netman.get_json("/api/v1/me").await.unwrap().0, 200);

    // Nothing was written: no audit entry beyond the one sign-in, no failed sign-in
    // counted against anyone, and the right password still signs in.
    assert_eq!(before + 1, after_sign_in, "only the sign-in is audited");
    assert_eq!(after_sign_in, audit_len(&server).await);
    let epoch = jiff::Timestamp::UNIX_EPOCH;
    for key in ["ip:127.0.0.1", "user:ms.netman"] {
        let (failures, _) = server
            .store
            .accounts()
            .failures_since(key, epoch)
            .await
            .unwrap();
        assert_eq!(failures, 0, "{key}");
    }
    let nm = server.account_for(Role::NetworkManager).unwrap().clone();
    let answer = login(server.web, &nm.username, &nm.password).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    // The server is still whole: every service stops cleanly (none failed).
    server.stop().await.unwrap();
}
