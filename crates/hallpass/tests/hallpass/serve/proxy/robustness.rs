//! Bad input and bad origins: garbage, oversized heads, a request to the proxy itself,
//! the PAC file, an origin that dies or stalls mid-response.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn garbage_oversized_heads_and_dying_origins() {
    if !have_curl() {
        return;
    }
    let origin = spawn_origin().await;
    let dying = spawn_dying_origin().await;
    let server = start(origin, TestOptions::default()).await;
    let proxy = proxy_of(&server);

    let garbage =
        tokio::task::spawn_blocking(move || raw(proxy, b"\x16\x03\x01\x00\xff\x00garbage\r\n\r\n"))
            .await
            .unwrap();
    assert!(
        garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"),
        "{garbage:?}"
    );
    let huge = format!(
        "GET http://www.bbc.co.uk/ HTTP/1.1\r\nHost: www.bbc.co.uk\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let oversized = tokio::task::spawn_blocking(move || raw(proxy, huge.as_bytes()))
        .await
        .unwrap();
    assert!(
        oversized.is_empty()
            || oversized.starts_with("HTTP/1.1 431")
            || oversized.starts_with("HTTP/1.1 400"),
        "{oversized:?}"
    );
    let bad_connect =
        tokio::task::spawn_blocking(move || raw(proxy, b"CONNECT nohost HTTP/1.1\r\n\r\n"))
            .await
            .unwrap();
    assert!(bad_connect.starts_with("HTTP/1.1 400"), "{bad_connect:?}");
    let direct =
        tokio::task::spawn_blocking(move || raw(proxy, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
            .await
            .unwrap();
    assert!(
        direct.starts_with("HTTP/1.1 400") && direct.contains("proxy.pac"),
        "{direct:?}"
    );
    let pac = tokio::task::spawn_blocking(move || {
        raw(proxy, b"GET /wpad.dat HTTP/1.1\r\nHost: proxy.school.example:3128\r\nConnection: close\r\n\r\n")
    })
    .await
    .unwrap();
    assert!(pac.starts_with("HTTP/1.1 200"), "{pac:?}");
    assert!(
        pac.contains("return \"PROXY proxy.school.example:3128\";"),
        "{pac:?}"
    );

    // An origin that dies mid-response: the client sees a cut-off body, the proxy logs
    // and records it, and goes on serving.
    let cut = curl(
        proxy,
        TEACHER,
        &[],
        &format!("http://127.0.0.1:{}/big", dying.port()),
    )
    .await;
    assert_ne!(cut.exit, 0, "a cut-off body is an error for curl");
    let row = recorded(&server, |r| r.target.ends_with("/big")).await;
    assert!(
        row.detail.contains("origin failed mid-response"),
        "{}",
        row.detail
    );
    assert_eq!(row.bytes, Some(1000));

    let still = curl(
        proxy,
        STUDENT,
        &[],
        &format!("http://www.bbc.co.uk:{}/", origin.port()),
    )
    .await;
    assert_eq!((still.status, still.body.as_str()), (200, HELLO));
    let (_, metrics) = server.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("hallpass_proxy_origin_errors_total 1"),
        "{metrics}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_origin_that_stalls_mid_response_is_cut_off_and_recorded() {
    if !have_curl() {
        return;
    }
    let stalling = spawn_stalling_origin().await;
    let server = start(
        stalling,
        TestOptions {
            proxy_response_timeout_s: Some(1),
            ..TestOptions::default()
        },
    )
    .await;
    let proxy = proxy_of(&server);
    let url = format!("http://127.0.0.1:{}/slow", stalling.port());
    let started = server.clock.instant();
    let cut = curl(proxy, TEACHER, &[], &url).await;
    let took = server.clock.instant().saturating_duration_since(started);
    assert_ne!(cut.exit, 0, "a cut-off body is an error for curl");
    assert!(
        took < Duration::from_secs(10),
        "cut off after {took:?}, not the origin's 30 s"
    );
    let row = recorded(&server, |r| r.target.ends_with("/slow")).await;
    assert!(
        row.detail.contains("origin stalled mid-response"),
        "{}",
        row.detail
    );
    assert_eq!(row.bytes, Some(1000));
    server.stop().await.unwrap();
}
