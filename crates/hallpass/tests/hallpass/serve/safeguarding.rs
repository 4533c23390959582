//! Issue 20 end to end over real sockets: a pupil's recorded search term (content of a
//! web event, as the inspecting proxy records it) matching a self-harm phrase raises a
//! severity-5 alert to the DSL within seconds, on the console and by email through a real
//! SMTP server; the head of year opens an incident from it, records that parents were
//! informed and a three-day internet suspension, which DNS and the block page apply
//! within a second and which lifts on time (the injected clock). The search term stays
//! out of sight of a network manager, a teacher and a governor, and of the headteacher
//! until they authorise an investigation; reading it then is audited and in the pupil's
//! own record. Bad input is refused and changes nothing.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use hallpass::testkit::dns::{query_a, spawn_upstream};
use hallpass::testkit::tools::SmtpSink;
use hallpass::testkit::{ConsoleClient, TestOptions, TestServer};
use hallpass_clock::Clock;
use hallpass_store::{Event, EventKind};
use hallpass_web::Role;
use serde_json::{Value, json};

/// Ava (Year 9) is logged on here in the demo.
const AVA: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);
const SITE: &str = "www.bbc.co.uk";
const SEARCH: &str = "how to k1ll myself";

async fn resolves(server: &TestServer) -> bool {
    let dns = server.dns;
    let answer = tokio::task::spawn_blocking(move || query_a(dns, AVA, SITE).unwrap())
        .await
        .unwrap();
    answer.addrs == [UPSTREAM_ANSWER]
}

async fn post(client: &ConsoleClient, path: &str, body: Value) -> (u16, Value) {
    let r = client
        .post(path)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_harm_search_reaches_the_dsl_and_a_suspension_bites_at_once() {
    if !SmtpSink::available("the safeguarding end-to-end test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start("127.0.0.1:0".parse().unwrap(), &dir.path().join("mail")).unwrap();
    let start: jiff::Timestamp = "2026-11-23T10:30:00Z".parse().unwrap();
    let server = TestServer::start(TestOptions {
        clock: Clock::manual_at(start),
        upstreams: vec![spawn_upstream(UPSTREAM_ANSWER).unwrap()],
        config: Some(format!(
            "version = 1\n[notify]\nrelay = \"{}\"\nfrom = \"hallpass@demo.example\"\n",
            sink.addr
        )),
        ..TestOptions::default()
    })
    .await
    .unwrap();
    assert!(
        resolves(&server).await,
        "Ava may use {SITE} before anything happens"
    );

    // The proxy records a search as a web event with the terms as content.
    let mut search = Event::new(EventKind::Web, server.clock.now(), "www.google.com");
    search.person = Some("ava.student".into());
    search.client_ip = Some(AVA);
    search.verdict = "allow".into();
    search.content = Some(SEARCH.into());
    let stored = server.shared.writer.record_acked(search).await.unwrap();
    eprintln!("search event: {stored:?}");
    let recorded = Clock::system().instant();

    // A severity-5 self-harm alert reaches the DSL within seconds (the follower looks
    // every second; under a loaded CI machine an event may spill and be replayed first)...
    let dsl = server.client_for(Role::Dsl).await.unwrap();
    let mut alerts = Value::Null;
    for _ in 0..200 {
        alerts = dsl.get_json("/api/v1/alerts").await.unwrap().1;
        if alerts.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("search recorded -> alert listed: {:?}", recorded.elapsed());
    let alert = &alerts[0];
    assert_eq!(alert["theme"], "self-harm", "{alerts}");
    assert_eq!(alert["severity"], 5);
    assert_eq!(alert["route"], "dsl");
    assert_eq!(alert["person"], "ava.student");
    let alert_id = alert["id"].as_i64().unwrap();
    // ...its evidence names the content, never shows it...
    let detail = dsl
        .get_json(&format!("/api/v1/alerts/{alert_id}"))
        .await
        .unwrap()
        .1;
    assert!(
        detail["occurrences"][0]["evidence"]["content_ref"].is_i64(),
        "{detail}"
    );
    assert!(!detail.to_string().contains("k1ll"), "{detail}");
    // ...and by email to the DSL, without the search term.
    let mut mail = Vec::new();
    for _ in 0..200 {
        mail = sink.messages();
        if !mail.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(mail[0].contains("To: mr.dsl@demo.example"), "{}", mail[0]);
    assert!(
        mail[0].contains(&format!("Safeguarding alert #{alert_id}")),
        "{}",
        mail[0]
    );
    assert!(!mail[0].contains("k1ll"), "{}", mail[0]);

    // The head of year (Year 9) opens an incident from it: assigned to her.
    let hoy = server.client_for(Role::HeadOfYear).await.unwrap();
    let (status, created) = post(
        &hoy,
        "/api/v1/incidents",
        json!({"person": "ava.student", "title": "Search about self-harm", "alert": alert_id}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let incident = created["id"].as_i64().unwrap();
    let (status, _) = post(
        &hoy,
        &format!("/api/v1/incidents/{incident}/actions"),
        json!({"kind": "parents-informed", "details": "Mother, by phone, 11:05"}),
    )
    .await;
    assert_eq!(status, 200);
    // A sanction in the past is refused and changes nothing.
    let (status, refused) = post(
        &hoy,
        "/api/v1/sanctions",
        json!({"person": "ava.student", "kind": "internet", "until": "2026-11-20T00:00:00Z",
               "reason": "x"}),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("not in the future"),
        "{refused}"
    );
    assert!(resolves(&server).await);

    // Three days without internet, from now: DNS refuses within a second.
    let until = start + jiff::SignedDuration::from_hours(72);
    let (status, sanction) = post(
        &hoy,
        "/api/v1/sanctions",
        json!({"person": "ava.student", "kind": "internet", "until": until.to_string(),
               "reason": "Pending a meeting with parents", "incident": incident}),
    )
    .await;
    assert_eq!(status, 201, "{sanction}");
    let clock = Clock::system();
    let sent = clock.instant();
    while resolves(&server).await {
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "the sanction did not reach DNS within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("sanction -> first refused DNS answer: {:?}", sent.elapsed());
    // The block page says why and until when.
    let page = reqwest::Client::new()
        .get(format!("http://{}/", server.addrs("portal")[0]))
        .header("host", SITE)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Pending a meeting with parents"), "{page}");
    assert!(page.contains("Thursday 26 November 2026 10:30"), "{page}");
    // The web proxy refuses her too, with the same reason (curl through it, from her
    // address), and a CONNECT for HTTPS.
    let proxy = server.addrs("proxy")[0];
    let via_proxy = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-s", "--max-time", "10", "-x", &format!("http://{proxy}")])
            .args(["--interface", "127.0.0.1", "-w", "\n%{http_code}"])
            .arg(format!("http://{SITE}/news"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let via_proxy = String::from_utf8_lossy(&via_proxy.stdout).to_string();
    assert!(
        via_proxy.contains("Pending a meeting with parents") && via_proxy.ends_with("403"),
        "{via_proxy}"
    );
    // The chronology has both actions.
    let (_, case) = hoy
        .get_json(&format!("/api/v1/incidents/{incident}"))
        .await
        .unwrap();
    let kinds: Vec<&str> = case["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["parents-informed", "sanction"], "{case}");
    assert_eq!(case["incident"]["assigned_to"], "ms.hoy", "{case}");

    // Nobody but an investigation reads the search term.
    for role in [Role::NetworkManager, Role::Teacher, Role::Governor] {
        let c = server.client_for(role).await.unwrap();
        let (status, body) = c
            .get_json("/api/v1/people/ava.student/content")
            .await
            .unwrap();
        assert_eq!(status, 403, "{role}: {body}");
        let (_, events) = c
            .get_json("/api/v1/events?person=ava.student")
            .await
            .unwrap();
        assert!(
            !events.to_string().contains("k1ll"),
            "{role} saw it in events"
        );
    }
    let head = server.client_for(Role::Headteacher).await.unwrap();
    let (status, body) = head
        .get_json("/api/v1/people/ava.student/content")
        .await
        .unwrap();
    assert_eq!(status, 403, "before an investigation: {body}");
    // An investigation without a purpose is refused.
    let window = |purpose: &str| {
        json!({"person": "ava.student", "purpose": purpose, "from": "2026-11-23T00:00:00Z",
               "to": "2026-11-24T00:00:00Z", "until": "2026-11-30T00:00:00Z"})
    };
    let (status, refused) = post(&head, "/api/v1/investigations", window("  ")).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["reason"].as_str().unwrap().contains("purpose"),
        "{refused}"
    );
    let (status, _) = head
        .get_json("/api/v1/people/ava.student/content")
        .await
        .unwrap();
    assert_eq!(status, 403);
    let (status, created) = post(
        &head,
        "/api/v1/investigations",
        window("Safeguarding concern raised by alert; DSL informed"),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, content) = head
        .get_json("/api/v1/people/ava.student/content")
        .await
        .unwrap();
    assert_eq!(status, 200, "{content}");
    assert_eq!(content["items"][0]["content"], SEARCH, "{content}");
    // The read is audited, and in Ava's own record (her export) with its purpose.
    let audit = server.store.audit().recent(200).await.unwrap();
    assert!(
        audit.iter().any(|e| e.action == "content.view"
            && e.actor == "mr.head"
            && e.subject == "ava.student"),
        "the content view is not in the audit log"
    );
    let mut export = Vec::new();
    server
        .store
        .export_person(
            "ava.student",
            Default::default(),
            server.clock.now(),
            &mut export,
        )
        .await
        .unwrap();
    let export = String::from_utf8(export).unwrap();
    assert!(
        export.contains("content.view") && export.contains("Safeguarding concern raised"),
        "{export}"
    );

    // The suspension lifts on time.
    server.clock.advance(Duration::from_secs(72 * 3600 + 1));
    let moved = clock.instant();
    while !resolves(&server).await {
        assert!(
            moved.elapsed() < Duration::from_secs(2),
            "the sanction did not lift on time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await.unwrap();
}

/// A rule that carries `alert` (chat for students: conduct, severity 1) raises a
/// head-of-year alert for each block it makes; the head of year gets the day's alerts in
/// one digest email at 16:00 (once); a severity-5 alert at night also goes to the
/// out-of-hours address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_alerts_go_to_the_head_of_year_in_a_digest_and_imminent_risk_out_of_hours() {
    if !SmtpSink::available("the safeguarding digest test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start("127.0.0.1:0".parse().unwrap(), &dir.path().join("mail")).unwrap();
    let server = TestServer::start(TestOptions {
        clock: Clock::manual_at("2026-11-23T15:00:00Z".parse().unwrap()),
        config: Some(format!(
            "version = 1\n[notify]\nrelay = \"{}\"\n[safeguarding]\ndigest_at = \"16:00\"\n\
             out_of_hours_email = \"dsl-on-call@demo.example\"\n",
            sink.addr
        )),
        ..TestOptions::default()
    })
    .await
    .unwrap();
    // The DNS filter blocks Ava's chat by the rule chat-students (it records this).
    let mut chat = Event::new(EventKind::Dns, server.clock.now(), "chat.example.org");
    chat.person = Some("ava.student".into());
    chat.client_ip = Some(AVA);
    chat.verdict = "block".into();
    chat.rule = Some("chat-students".into());
    chat.document = Some("wcs".into());
    chat.clause = Some("4.4.1".into());
    server.shared.writer.record_acked(chat).await.unwrap();

    let hoy = server.client_for(Role::HeadOfYear).await.unwrap();
    let mut alerts = Value::Null;
    for _ in 0..200 {
        alerts = hoy.get_json("/api/v1/alerts").await.unwrap().1;
        if alerts.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(alerts[0]["route"], "head_of_year", "{alerts}");
    assert_eq!(alerts[0]["theme"], "chat-students");
    assert_eq!(alerts[0]["clause"], "4.4.1");
    assert!(
        sink.messages().is_empty(),
        "a severity-1 alert is not emailed at once"
    );

    // 16:00: one digest for the head of year, however many checks run after.
    server.clock.advance(Duration::from_secs(3600 + 30));
    for _ in 0..200 {
        if !sink.messages().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mail = sink.messages();
    assert_eq!(mail.len(), 1, "{mail:?}");
    let digest = mail[0].replace("=\n", "");
    assert!(digest.contains("To: ms.hoy@demo.example"), "{digest}");
    assert!(
        digest.contains("daily digest for 2026-11-23: 1 alert(s)"),
        "{digest}"
    );
    assert!(digest.contains("chat-students"), "{digest}");

    // 22:00: imminent risk out of hours reaches the DSL and the on-call address.
    server.clock.advance(Duration::from_secs(6 * 3600));
    let mut search = Event::new(EventKind::Web, server.clock.now(), "www.google.com");
    search.person = Some("ava.student".into());
    search.client_ip = Some(AVA);
    search.verdict = "allow".into();
    search.content = Some(SEARCH.into());
    server.shared.writer.record_acked(search).await.unwrap();
    let mut mail = Vec::new();
    for _ in 0..200 {
        mail = sink.messages();
        if mail.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mail.len(), 3, "{mail:?}");
    assert!(
        mail.iter()
            .any(|m| m.contains("To: dsl-on-call@demo.example") && m.contains("OUT OF HOURS")),
        "{mail:?}"
    );
    assert!(
        mail.iter().any(|m| m.contains("To: mr.dsl@demo.example")),
        "{mail:?}"
    );
    server.stop().await.unwrap();
}
