//! `CONNECT` tunnels (allowed, refused, the wrong port, a lying TLS server name) and the
//! parent proxy.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn connect_tunnels_allowed_and_refused() {
    if !have_curl() {
        return;
    }
    let origin = spawn_origin().await;
    let server = start(origin, TestOptions::default()).await;
    let proxy = proxy_of(&server);
    let port = origin.port();

    // `-p`: curl tunnels even http:// through CONNECT.
    let tunnelled = curl(
        proxy,
        STUDENT,
        &["-p"],
        &format!("http://www.bbc.co.uk:{port}/echo"),
    )
    .await;
    assert_eq!(tunnelled.status, 200, "{}", tunnelled.stderr);
    assert_eq!(
        tunnelled.body,
        format!("uri=/echo host=www.bbc.co.uk:{port}")
    );

    let refused = curl(
        proxy,
        STUDENT,
        &["-p"],
        &format!("http://mail.gmail.com:{port}/"),
    )
    .await;
    assert_ne!(refused.exit, 0);
    assert!(refused.stderr.contains("403"), "{}", refused.stderr);
    let refused = curl(
        proxy,
        STUDENT,
        &["-p", "-v"],
        &format!("http://mail.gmail.com:{port}/"),
    )
    .await;
    assert!(
        refused
            .stderr
            .contains("CONNECT tunnel failed, response 403"),
        "{}",
        refused.stderr
    );

    // A port CONNECT may not reach.
    let other_port = if port == 9 { 10 } else { 9 };
    let port_refused = curl(
        proxy,
        STUDENT,
        &["-p", "-v"],
        &format!("http://www.bbc.co.uk:{other_port}/"),
    )
    .await;
    assert!(
        port_refused.stderr.contains("response 403"),
        "{}",
        port_refused.stderr
    );

    let row = recorded(&server, |r| {
        r.target == format!("www.bbc.co.uk:{port}") && r.detail.contains("\"status\":200")
    })
    .await;
    assert_eq!(row.verdict, "allow");
    assert!(row.detail.contains("\"tunnel\":true"));
    assert!(row.bytes.unwrap_or(0) > 0, "the tunnel's bytes: {row:?}");
    let row = recorded(&server, |r| {
        r.target == format!("www.bbc.co.uk:{other_port}")
    })
    .await;
    assert_eq!(
        (row.verdict.as_str(), row.rule.as_deref()),
        ("block", Some("connect-port"))
    );
    let row = recorded(&server, |r| r.target == format!("mail.gmail.com:{port}")).await;
    assert_eq!(
        (row.verdict.as_str(), row.clause.as_deref()),
        ("block", Some("4.5.1"))
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_server_name_other_than_the_connect_host_is_refused() {
    if !have_curl() {
        return;
    }
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(
            !is_ci(),
            "openssl not found: CI must run this test (apt-get install openssl)"
        );
        eprintln!("SKIPPING the SNI test: openssl not found (apt-get install openssl)");
        return;
    }
    let (sink, seen) = spawn_counting_sink().await;
    let server = start(sink, TestOptions::default()).await;
    let proxy = proxy_of(&server);
    let connect = format!("www.bbc.co.uk:{}", sink.port());

    // The same name in CONNECT and the ClientHello: the hello reaches the origin.
    s_client(proxy, connect.clone(), "www.bbc.co.uk").await;
    let row = recorded(&server, |r| r.target == connect).await;
    assert_eq!(row.verdict, "allow", "{row:?}");
    assert!(
        seen.lock().unwrap().iter().any(|n| *n > 0),
        "{:?}",
        seen.lock().unwrap()
    );

    // An allowed host in CONNECT, a blocked one in the ClientHello (domain fronting).
    seen.lock().unwrap().clear();
    s_client(proxy, connect.clone(), "mail.gmail.com").await;
    let row = recorded(&server, |r| r.target == connect && r.verdict == "block").await;
    assert_eq!(row.rule.as_deref(), Some("sni-mismatch"));
    assert!(row.detail.contains("mail.gmail.com"), "{}", row.detail);
    // The origin side was opened before the 200 and closed unused.
    for _ in 0..50 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = seen.lock().unwrap().clone();
    assert!(
        !seen.is_empty() && seen.iter().all(|n| *n == 0),
        "nothing reached the origin: {seen:?}"
    );
    let (_, metrics) = server.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("hallpass_proxy_sni_mismatch_total 1"),
        "{metrics}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parent_proxy_gets_absolute_form_requests() {
    if !have_curl() {
        return;
    }
    // The origin plays the parent: axum routes an absolute-form request by its path.
    let parent = spawn_origin().await;
    let server = TestServer::start(TestOptions {
        proxy_parent: Some(parent),
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let proxy = proxy_of(&server);
    let via_parent = curl(proxy, STUDENT, &[], "http://www.bbc.co.uk/echo").await;
    assert_eq!(via_parent.status, 200, "{}", via_parent.stderr);
    assert_eq!(
        via_parent.body,
        "uri=http://www.bbc.co.uk/echo host=www.bbc.co.uk"
    );
    // Two sites, one pooled connection to the parent.
    let first = curl(proxy, STUDENT, &[], "http://www.bbc.co.uk/peer").await;
    let second = curl(proxy, STUDENT, &[], "http://news.example.org/peer").await;
    assert!(first.body.starts_with("peer=127.0.0.1:"), "{}", first.body);
    assert_eq!(
        first.body, second.body,
        "one connection to the parent for both sites"
    );
    // Decisions are still made here, before the parent is asked.
    let blocked = curl(proxy, STUDENT, &[], "http://gmail.com/echo").await;
    assert_eq!(blocked.status, 403);
    server.stop().await.unwrap();
}
