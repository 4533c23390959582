//! Shared log-ins over real sockets: two logon-API calls put one account on two
//! workstations at once; once they have overlapped beyond the grace (the injected clock
//! moves), exactly one conduct alert reaches ICT support with both workstations and
//! addresses, however many checks run after. One laptop's two addresses, and a second
//! person on one workstation, raise nothing. Opening it is audited; closing needs an
//! outcome; the DSL and the headteacher do not see a pupil's conduct alert.

use std::time::Duration;

use hallpass::testkit::{TestOptions, TestServer};
use hallpass_clock::Clock;
use hallpass_web::Role;
use serde_json::{Value, json};

async fn logon_token(server: &TestServer) -> String {
    server.token("logon-script", &["sessions"]).await.unwrap()
}

async fn logon(server: &TestServer, token: &str, user: &str, ip: &str, ws: &str) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/sessions", server.web_base()))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(json!({"user": user, "ip": ip, "workstation": ws}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_on_two_workstations_raises_exactly_one_alert() {
    let server = TestServer::start(TestOptions {
        clock: Clock::manual_at("2026-11-23T10:30:00Z".parse().unwrap()),
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let token = logon_token(&server).await;
    // (The demo has Ava, Mr Teacher and Ms Marketing logged on; Ben nowhere yet.)
    // One laptop, wired and Wi-Fi: the same device twice, not a shared log-in, however
    // long it lasts.
    logon(&server, &token, "ben.student", "127.0.0.83", "LAPTOP-7").await;
    logon(&server, &token, "ben.student", "127.0.0.84", "laptop-7").await;
    server.clock.advance(Duration::from_secs(600));
    let netman = server.client_for(Role::NetworkManager).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, alerts) = netman.get_json("/api/v1/alerts").await.unwrap();
    assert_eq!(status, 200, "{alerts}");
    assert_eq!(
        alerts,
        json!([]),
        "one laptop's two addresses raised an alert"
    );
    for ip in ["127.0.0.83", "127.0.0.84"] {
        let r = reqwest::Client::new()
            .delete(format!("{}/api/v1/sessions?ip={ip}", server.web_base()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    logon(&server, &token, "ben.student", "127.0.0.81", "WS-A").await;
    logon(&server, &token, "WCS\\ben.student", "127.0.0.82", "WS-B").await;
    // Within the grace (two minutes) nothing is raised.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        netman.get_json("/api/v1/alerts").await.unwrap().1,
        json!([]),
        "raised within the grace"
    );

    server.clock.advance(Duration::from_secs(180));
    for _ in 0..50 {
        let alerts = netman.get_json("/api/v1/alerts").await.unwrap().1;
        if alerts.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Several more checks run over the same two sessions: still one alert, count 1.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let alerts = netman.get_json("/api/v1/alerts").await.unwrap().1;
    let list = alerts.as_array().unwrap();
    assert_eq!(list.len(), 1, "{alerts}");
    let alert = &list[0];
    assert_eq!(alert["person"], "ben.student");
    assert_eq!(alert["theme"], "shared-credentials");
    assert_eq!(alert["kind"], "conduct");
    assert_eq!(alert["route"], "network_manager");
    assert_eq!(alert["count"], 1, "{alert}");
    assert_eq!(alert["clause"], "2.2");
    assert_eq!(alert["document"], "wcs");
    let summary = alert["summary"].as_str().unwrap();
    assert!(
        summary.contains("WS-A (127.0.0.81)") && summary.contains("WS-B (127.0.0.82)"),
        "{summary}"
    );

    // The DSL and the headteacher handle other routes: a pupil's conduct alert is not theirs.
    let id = alert["id"].as_i64().unwrap();
    for role in [Role::Dsl, Role::Headteacher] {
        let other = server.client_for(role).await.unwrap();
        assert_eq!(other.get_json("/api/v1/alerts").await.unwrap().1, json!([]));
        let (status, _) = other
            .get_json(&format!("/api/v1/alerts/{id}"))
            .await
            .unwrap();
        assert_eq!(status, 404, "{role} opened another route's alert");
    }
    // A teacher may not list alerts at all.
    let teacher = server.client_for(Role::Teacher).await.unwrap();
    assert_eq!(teacher.get_json("/api/v1/alerts").await.unwrap().0, 403);

    // Opening it shows the evidence and is audited.
    let (status, detail) = netman
        .get_json(&format!("/api/v1/alerts/{id}"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{detail}");
    let sessions = &detail["occurrences"][0]["evidence"]["sessions"];
    assert_eq!(sessions[0]["workstation"], "WS-A", "{detail}");
    assert_eq!(sessions[1]["ip"], "127.0.0.82", "{detail}");
    let audit = server.store.audit().recent(1000).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "alert.view" && e.subject == "ben.student"),
        "opening the alert was not audited"
    );

    // Closing needs an outcome; a bad status is refused; neither changes it.
    for body in [
        json!({"status": "closed"}),
        json!({"status": "resolved", "outcome": "x"}),
    ] {
        let r = netman
            .post(&format!("/api/v1/alerts/{id}/status"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }
    let r = netman
        .post(&format!("/api/v1/alerts/{id}/status"))
        .header("content-type", "application/json")
        .body(json!({"status": "closed", "outcome": "Spoke to Ben; password changed"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let closed: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["updated_by"], "ms.netman");
    assert_eq!(
        netman.get_json("/api/v1/alerts").await.unwrap().1,
        json!([])
    );
    let all = netman
        .get_json("/api/v1/alerts?open=false")
        .await
        .unwrap()
        .1;
    assert_eq!(all.as_array().unwrap().len(), 1);

    // The page lists who is logged on where.
    let page = netman
        .get("/sessions")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("WS-A") && page.contains("127.0.0.82"),
        "{page}"
    );
    server.stop().await.unwrap();
}
