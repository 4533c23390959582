//! `serve` keys the audit log at start and exports its head in `/metrics`, so Prometheus
//! keeps a history of it off the machine; the head follows appends from other processes.

use hallpass::testkit::{TestOptions, TestServer};

fn metric<'a>(body: &'a str, name: &str) -> &'a str {
    body.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_export_the_audit_head_and_the_key_id() {
    let server = TestServer::start(TestOptions::default()).await.unwrap();
    let key = server.data_dir().join("audit.key");
    assert!(key.exists(), "serve puts the audit key in use at start");
    let head = server.store.audit().head_entry().await.unwrap().unwrap();
    let admin = server.admin;
    let get = move || hallpass::testkit::http_get(admin, "/metrics").unwrap();
    let (status, body) = tokio::task::spawn_blocking(get).await.unwrap();
    assert_eq!(status, 200);
    let seq = head.seq.unwrap();
    assert_eq!(
        metric(&body, "hallpass_audit_head_seq"),
        format!("hallpass_audit_head_seq {seq}")
    );
    let info = metric(&body, "hallpass_audit_head_info");
    let key_id = server.store.audit().key_id().await.unwrap();
    assert_eq!(
        info,
        format!(
            "hallpass_audit_head_info{{seq=\"{seq}\",hash=\"{}\",key_id=\"{key_id}\"}} 1",
            head.hash
        )
    );
    // An entry appended elsewhere (another command on the same store) shows at once.
    server
        .store
        .audit()
        .append(
            "test",
            "view.activity",
            "ava.student",
            &serde_json::json!({}),
            server.clock.now(),
        )
        .await
        .unwrap();
    let (_, body) = tokio::task::spawn_blocking(get).await.unwrap();
    assert_eq!(
        metric(&body, "hallpass_audit_head_seq"),
        format!("hallpass_audit_head_seq {}", seq + 1)
    );
    let report = server.store.audit().verify(None).await.unwrap();
    assert!(report.ok(), "{report:?}");
    server.stop().await.unwrap();
}
