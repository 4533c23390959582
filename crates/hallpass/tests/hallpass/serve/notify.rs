//! Notification email over real sockets: with `[notify] relay` pointing at a real SMTP
//! server (python3-aiosmtpd writing a Maildir), a requester is emailed the outcome of
//! their access request (approved with how long; denied with the reason). While the relay
//! is down the message waits in the outbox, and it is delivered once when it returns.

use std::time::Duration;

use hallpass::testkit::tools::SmtpSink;
use hallpass::testkit::{TestOptions, TestServer};
use hallpass_clock::Clock;
use hallpass_web::Role;
use serde_json::json;

const SUITE: &str = "the notification email tests";

async fn wait_for_messages(sink: &SmtpSink, n: usize) -> Vec<String> {
    for _ in 0..100 {
        // Bodies are quoted-printable: join its soft line breaks.
        let messages: Vec<String> = sink
            .messages()
            .iter()
            .map(|m| m.replace("=\n", ""))
            .collect();
        if messages.len() >= n {
            return messages;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sink.messages()
        .iter()
        .map(|m| m.replace("=\n", ""))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requesters_are_emailed_the_outcome_through_the_relay() {
    if !SmtpSink::available(SUITE) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start("127.0.0.1:0".parse().unwrap(), &dir.path().join("mail")).unwrap();
    let server = TestServer::start(TestOptions {
        clock: Clock::manual_at("2026-11-23T10:30:00Z".parse().unwrap()),
        config: Some(format!(
            "version = 1\n[notify]\nrelay = \"{}\"\nfrom = \"ict-support@demo.example\"\n",
            sink.addr
        )),
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let ava = server.client_for(Role::Student).await.unwrap();
    let netman = server.client_for(Role::NetworkManager).await.unwrap();
    let file = |target: &'static str| {
        ava.post("/api/v1/requests")
            .header("content-type", "application/json")
            .body(json!({"target": target, "reason": "Work experience placement"}).to_string())
            .send()
    };
    let id = |text: String| -> i64 {
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("{text}"))
    };
    let first = id(file("gmail.com").await.unwrap().text().await.unwrap());
    let second = id(file("www.roblox.com").await.unwrap().text().await.unwrap());

    let r = netman
        .post(&format!("/api/v1/requests/{first}/approve"))
        .header("content-type", "application/json")
        .body(json!({"scope": "person", "until": "2026-11-23T11:30:00Z"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = netman
        .post(&format!("/api/v1/requests/{second}/deny"))
        .header("content-type", "application/json")
        .body(json!({"reason": "Games are not for school work (8.3)"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());

    let messages = wait_for_messages(&sink, 2).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    let approved = messages
        .iter()
        .find(|m| m.contains("gmail.com was approved"))
        .unwrap_or_else(|| panic!("{messages:?}"));
    assert!(
        approved.contains("To: ava.student@demo.example"),
        "{approved}"
    );
    assert!(
        approved.contains("From: ict-support@demo.example"),
        "{approved}"
    );
    // Dated by the server's clock (the test's), not the machine's.
    assert!(
        approved.contains("Date: Mon, 23 Nov 2026 10:30"),
        "{approved}"
    );
    // The time in the school's zone (London: GMT in November).
    assert!(
        approved.contains("until Monday 23 November 2026, 11:30"),
        "{approved}"
    );
    let denied = messages
        .iter()
        .find(|m| m.contains("www.roblox.com was denied"))
        .unwrap_or_else(|| panic!("{messages:?}"));
    assert!(
        denied.contains("Games are not for school work (8.3)"),
        "{denied}"
    );

    // The relay goes down: the next outcome waits in the outbox, retried later.
    let addr = sink.addr;
    drop(sink);
    let third = id(file("www.twitch.tv").await.unwrap().text().await.unwrap());
    let r = netman
        .post(&format!("/api/v1/requests/{third}/deny"))
        .header("content-type", "application/json")
        .body(json!({"reason": "Streaming is not needed for this"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server.store.outbox().waiting().await.unwrap(), 1);

    // Back up (same address): delivered once after the retry delay passes.
    let sink = SmtpSink::start(addr, &dir.path().join("mail")).unwrap();
    server.clock.advance(Duration::from_secs(31));
    let messages = wait_for_messages(&sink, 3).await;
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.contains("www.twitch.tv"))
            .count(),
        1
    );
    assert_eq!(server.store.outbox().waiting().await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(sink.messages().len(), 3, "delivered twice");
    server.stop().await.unwrap();
}
