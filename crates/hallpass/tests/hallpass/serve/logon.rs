//! The logon API over real sockets, called by the shipped logon script
//! (`examples/logon/hallpass-logon.sh`, which uses curl): a logon makes DNS from that
//! address see the person's policy within a second, a heartbeat keeps it, a logoff
//! reverts it; a token without the `sessions` scope, an unknown person and a bad address
//! are refused and change nothing.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Duration;

use hallpass::testkit::dns::{query_a, spawn_upstream};
use hallpass::testkit::{TestOptions, TestServer};
use hallpass_clock::Clock;
use serde_json::json;

/// An address nobody is logged on at: unidentified (everything blocked, wcs 2.1).
const LAPTOP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 78));
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Allowed for students, blocked for the unidentified.
const NAME: &str = "www.bbc.co.uk";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/logon/hallpass-logon.sh"
);

async fn resolves(server: &TestServer) -> bool {
    let dns = server.dns;
    let answer = tokio::task::spawn_blocking(move || query_a(dns, LAPTOP, NAME).unwrap())
        .await
        .unwrap();
    answer.addrs == [UPSTREAM_ANSWER]
}

/// How long until DNS from the laptop gives `want`; `None` after a second.
async fn within_a_second(server: &TestServer, want: bool) -> Option<Duration> {
    let start = Clock::system().instant();
    while start.elapsed() < Duration::from_secs(1) {
        if resolves(server).await == want {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn token(server: &TestServer, name: &str, scopes: &[&str]) -> String {
    server.token(name, scopes).await.unwrap()
}

async fn script(server: &TestServer, token: &str, action: &str) -> (bool, String) {
    let state = server.data_dir().join("logon-session");
    let mut cmd = Command::new("sh");
    cmd.arg(SCRIPT)
        .arg(action)
        .env("HALLPASS_URL", server.web_base())
        .env("HALLPASS_TOKEN", token)
        .env("HALLPASS_USER", "WCS\\ava.student")
        .env("HALLPASS_IP", LAPTOP.to_string())
        .env("HALLPASS_STATE", &state);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logon_script_identifies_an_address_until_logoff() {
    let server = TestServer::start(TestOptions {
        clock: Clock::manual_at("2026-11-23T10:30:00Z".parse().unwrap()),
        upstreams: vec![spawn_upstream(UPSTREAM_ANSWER).unwrap()],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    assert!(!resolves(&server).await, "unidentified: blocked");

    // A token for something else may not log anyone on.
    let reports = token(&server, "reports", &["dashboard.view"]).await;
    let (ok, text) = script(&server, &reports, "logon").await;
    assert!(!ok && text.contains("403"), "{text}");
    assert!(!resolves(&server).await);

    let secret = token(&server, "logon-script", &["sessions"]).await;
    let (ok, text) = script(&server, &secret, "logon").await;
    assert!(ok, "{text}");
    assert!(
        text.contains("ava.student logged on at 127.0.0.78"),
        "{text}"
    );
    let took = within_a_second(&server, true)
        .await
        .expect("the logon did not reach DNS within a second");
    eprintln!("logon -> first allowed answer: {took:?}");

    let http = reqwest::Client::new();
    let api = |path: &str| format!("{}{path}", server.web_base());
    let listed = http
        .get(api("/api/v1/sessions"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let here = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ip"] == "127.0.0.78")
        .expect("the session is listed");
    assert_eq!(here["username"], "ava.student", "{here}");
    assert_eq!(here["workstation"].as_str().map(str::is_empty), Some(false));

    let (ok, text) = script(&server, &secret, "heartbeat").await;
    assert!(ok, "{text}");

    // Bad input is refused with the reason, and nobody else is logged on.
    for (body, status, reason) in [
        (
            json!({"user": "nobody.here", "ip": "127.0.0.79"}),
            404,
            "no person",
        ),
        (
            json!({"user": "ben.student", "ip": "not-an-ip"}),
            400,
            "not an IP address",
        ),
        (
            json!({"user": "ben.student", "ip": "0.0.0.0"}),
            400,
            "not a workstation",
        ),
        (
            json!({"user": "ben.student", "ip": "127.0.0.79", "extra": 1}),
            400,
            "unknown field",
        ),
    ] {
        let r = http
            .post(api("/api/v1/sessions"))
            .bearer_auth(&secret)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{body}");
        let text = r.text().await.unwrap();
        assert!(text.contains(reason), "{body}: {text}");
    }
    let r = http
        .delete(api("/api/v1/sessions/999999"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let active = server.store.sessions().active().await.unwrap();
    assert!(!active.iter().any(|s| s.ip.to_string() == "127.0.0.79"));

    let (ok, text) = script(&server, &secret, "logoff").await;
    assert!(ok, "{text}");
    within_a_second(&server, false)
        .await
        .expect("the logoff did not reach DNS within a second");
    let (ok, text) = script(&server, &secret, "heartbeat").await;
    assert!(!ok, "no session to keep alive after logoff: {text}");

    // Each logon and logoff is in the audit log, by the token.
    let entries = server.store.audit().recent(50).await.unwrap();
    let by_token = |action: &str| {
        entries
            .iter()
            .any(|e| e.action == action && e.actor == "token:logon-script")
    };
    assert!(by_token("session.start") && by_token("session.end"));
    server.stop().await.unwrap();
}

/// With `[sessions] idle_minutes`, a session whose heartbeats stopped ends (audited) and
/// DNS no longer knows the person there; one that keeps its heartbeats stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_heartbeats_ends_after_the_idle_time() {
    let server = TestServer::start(TestOptions {
        clock: Clock::manual_at("2026-11-23T10:30:00Z".parse().unwrap()),
        upstreams: vec![spawn_upstream(UPSTREAM_ANSWER).unwrap()],
        config: Some("version = 1\n[sessions]\nidle_minutes = 30\n".into()),
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let secret = token(&server, "logon-script", &["sessions"]).await;
    let http = reqwest::Client::new();
    let api = |path: &str| format!("{}{path}", server.web_base());
    let logon = |ip: &str| {
        http.post(api("/api/v1/sessions"))
            .bearer_auth(&secret)
            .header("content-type", "application/json")
            .body(json!({"user": "ben.student", "ip": ip}).to_string())
            .send()
    };
    let kept: serde_json::Value =
        serde_json::from_str(&logon("127.0.0.79").await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(logon(&LAPTOP.to_string()).await.unwrap().status(), 201);
    assert!(within_a_second(&server, true).await.is_some());

    // 20 minutes: both alive; one heartbeat keeps 127.0.0.79's session.
    server.clock.advance(Duration::from_secs(20 * 60));
    let beat = http
        .post(api(&format!("/api/v1/sessions/{}/heartbeat", kept["id"])))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(beat.status(), 204);
    // 35 minutes after the logon: the laptop's session ends within a check (5 s).
    server.clock.advance(Duration::from_secs(15 * 60));
    let clock = Clock::system();
    let waited = clock.instant();
    while resolves(&server).await {
        assert!(
            waited.elapsed() < Duration::from_secs(8),
            "the idle session did not end"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = http
        .get(api("/api/v1/sessions"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listed.contains("127.0.0.79") && !listed.contains(&LAPTOP.to_string()),
        "{listed}"
    );
    let audit = server.store.audit().recent(50).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "session.expire_idle"));
    server.stop().await.unwrap();
}
