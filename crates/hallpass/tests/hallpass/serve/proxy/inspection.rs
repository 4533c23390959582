//! Selective HTTPS inspection through the real `curl -x` and `hallpass ca init`: a local
//! HTTPS origin with its own CA (made here with rcgen) plays every site; the proxy
//! trusts that CA through `[proxy] origin_ca`, and curl trusts the school's CA only
//! (`--cacert`), so a page curl accepts on an inspected host was served by the proxy.

use std::sync::Arc;

use super::*;

/// The origin's CA (PEM) and a TLS configuration for its leaf, valid for `names`.
fn origin_tls(names: &[&str]) -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Test origin CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(ToString::to_string).collect();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    (ca_cert.pem(), Arc::new(config))
}

/// An HTTPS origin answering every request with what it saw: the HTTP version, the URI
/// and the `YouTube-Restrict` header. It speaks HTTP/2 when `h2` (by ALPN), else 1.1.
async fn spawn_https_origin(tls: Arc<rustls::ServerConfig>, h2: bool) -> SocketAddr {
    use axum::extract::Request;
    let app = axum::Router::new().fallback(|request: Request| async move {
        let restrict = request
            .headers()
            .get("youtube-restrict")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("-")
            .to_string();
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        format!(
            "origin saw {:?} uri={path} youtube-restrict={restrict}",
            request.version()
        )
    });
    let mut tls = (*tls).clone();
    tls.alpn_protocols = if h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn inspected_https_is_decided_rewritten_and_recorded() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The school's CA, made as a network manager would.
    let ca_dir = dir.path().join("ca");
    let made = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(["ca", "init", "--school", "Test School", "--data-dir"])
        .arg(&ca_dir)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let school_ca = ca_dir.join("proxy-ca.pem");
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(ca_dir.join("proxy-ca.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(key_mode & 0o777, 0o600);
    // Again without --force: refused, the CA unchanged.
    let before = std::fs::read(&school_ca).unwrap();
    let again = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(["ca", "init", "--data-dir"])
        .arg(&ca_dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read(&school_ca).unwrap(), before);

    // search.yahoo.com is inspected but not in the origin's certificate.
    let (origin_ca_pem, tls) = origin_tls(&[
        "www.google.com",
        "www.bing.com",
        "www.youtube.com",
        "duckduckgo.com",
    ]);
    let origin_ca = dir.path().join("origin-ca.pem");
    std::fs::write(&origin_ca, origin_ca_pem).unwrap();
    let origin = spawn_https_origin(Arc::clone(&tls), false).await;
    let h2_origin = spawn_https_origin(tls, true).await;
    let catalog = catalog_with_a_url_entry(dir.path());
    std::fs::write(
        catalog.join("warez/urls"),
        "files.example.org/warez/\nwww.google.com/warez/\n",
    )
    .unwrap();
    // Idle connections close after 2 s (HTTP/2 ones included, which hyper would keep).
    let config = format!(
        "version = 1\n[proxy]\ninspect = [\"search_engines\"]\nnever_inspect = [\"duckduckgo.com\"]\n\
         ca_dir = {:?}\norigin_ca = {:?}\nidle_timeout_s = 2\n",
        ca_dir.display().to_string(),
        origin_ca.display().to_string()
    );
    // After lessons (4.3.7 blocks streaming during them, YouTube included): the latest
    // 17:30 in London before now, so the certificates minted at that time are valid when
    // curl checks them against the real clock.
    let london = jiff::tz::TimeZone::get("Europe/London").unwrap();
    let now = hallpass_clock::Clock::system()
        .now()
        .to_zoned(london.clone());
    let evening = |day: jiff::civil::Date| day.at(17, 30, 0, 0).to_zoned(london.clone()).unwrap();
    let mut after_lessons = evening(now.date());
    if after_lessons > now {
        after_lessons = evening(now.date().yesterday().unwrap());
    }
    let server = TestServer::start(TestOptions {
        upstreams: vec![spawn_upstream(Ipv4Addr::LOCALHOST).unwrap()],
        proxy_connect_ports: vec![origin.port(), h2_origin.port()],
        catalog: Some(catalog),
        config: Some(config),
        clock: hallpass_clock::Clock::manual_at(after_lessons.timestamp()),
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let proxy = proxy_of(&server);
    let port = origin.port();
    let trust_school = ["--cacert", school_ca.to_str().unwrap()];

    // A search: the origin sees safe search forced; the terms are content.
    let search = curl(
        proxy,
        STUDENT,
        &trust_school,
        &format!("https://www.google.com:{port}/search?q=how+to+cheat+at+exams&safe=off"),
    )
    .await;
    assert_eq!(search.status, 200, "{} {}", search.stderr, search.body);
    assert_eq!(
        search.body,
        "origin saw HTTP/1.1 uri=/search?q=how+to+cheat+at+exams&safe=active youtube-restrict=-"
    );
    let row = recorded(&server, |r| {
        r.target == format!("www.google.com:{port}/search")
    })
    .await;
    assert_eq!(row.verdict, "allow");
    assert_eq!(row.content.as_deref(), Some("how to cheat at exams"));
    assert!(row.detail.contains("\"search\":\"google\""), "{row:?}");
    assert!(row.detail.contains("\"inspected\":true"), "{row:?}");
    assert_eq!(row.person.as_deref(), Some("ava.student"), "{row:?}");

    // A student on YouTube gets the strict restriction header.
    let youtube = curl(
        proxy,
        STUDENT,
        &trust_school,
        &format!("https://www.youtube.com:{port}/results?search_query=lego"),
    )
    .await;
    assert_eq!(
        youtube.body, "origin saw HTTP/1.1 uri=/results?search_query=lego youtube-restrict=Strict",
        "{}",
        youtube.stderr
    );

    // A URL entry on an inspected host: the block page, over HTTPS; the sibling path is
    // allowed on the same connection's host.
    let blocked = curl(
        proxy,
        STUDENT,
        &trust_school,
        &format!("https://www.google.com:{port}/warez/crack.html"),
    )
    .await;
    assert_eq!(blocked.status, 403, "{}", blocked.stderr);
    assert!(
        blocked.body.contains("<dd id=\"categories\">warez</dd>"),
        "{}",
        blocked.body
    );
    assert!(
        blocked
            .body
            .contains(&format!("https://www.google.com:{port}/warez/crack.html"))
    );
    let row = recorded(&server, |r| r.target.ends_with("/warez/crack.html")).await;
    assert_eq!(row.verdict, "block");
    assert_eq!(row.rule.as_deref(), Some("piracy"));

    // Never inspected: the school's CA is not enough, the origin's own certificate is
    // what curl sees, and the query reaches it untouched (no kp=1).
    let refused_cert = curl(
        proxy,
        STUDENT,
        &trust_school,
        &format!("https://duckduckgo.com:{port}/?q=x"),
    )
    .await;
    assert_eq!(refused_cert.exit, 60, "{}", refused_cert.stderr);
    let tunnelled = curl(
        proxy,
        STUDENT,
        &["--cacert", origin_ca.to_str().unwrap()],
        &format!("https://duckduckgo.com:{port}/?q=x"),
    )
    .await;
    assert_eq!(
        (tunnelled.status, tunnelled.body.as_str()),
        (200, "origin saw HTTP/1.1 uri=/?q=x youtube-restrict=-"),
        "{}",
        tunnelled.stderr
    );
    // And an inspected host with the origin's CA alone fails: the proxy served it.
    let inspected = curl(
        proxy,
        STUDENT,
        &["--cacert", origin_ca.to_str().unwrap()],
        &format!("https://www.google.com:{port}/"),
    )
    .await;
    assert_eq!(inspected.exit, 60, "{}", inspected.stderr);

    // An origin whose certificate does not verify: the proxy says so, over HTTPS.
    let unverified = curl(
        proxy,
        STUDENT,
        &trust_school,
        &format!("https://search.yahoo.com:{port}/search?p=x"),
    )
    .await;
    assert_eq!(unverified.status, 502, "{}", unverified.stderr);
    assert!(
        unverified.body.contains("could not be verified"),
        "{}",
        unverified.body
    );

    // HTTP/2 both ways where both ends offer it (ALPN): curl to the proxy, the proxy
    // to an origin that speaks it; the decisions are the same.
    let h2 = curl(
        proxy,
        STUDENT,
        &["--http2", "-v", "--cacert", school_ca.to_str().unwrap()],
        &format!(
            "https://www.bing.com:{}/search?q=volcanoes",
            h2_origin.port()
        ),
    )
    .await;
    assert_eq!(
        (h2.status, h2.body.as_str()),
        (
            200,
            "origin saw HTTP/2.0 uri=/search?q=volcanoes&adlt=strict youtube-restrict=-"
        ),
        "{}",
        h2.stderr
    );
    assert!(h2.stderr.contains("< HTTP/2 200"), "{}", h2.stderr);
    let h2_blocked = curl(
        proxy,
        STUDENT,
        &["--http2", "--cacert", school_ca.to_str().unwrap()],
        &format!(
            "https://www.google.com:{}/warez/crack.html",
            h2_origin.port()
        ),
    )
    .await;
    assert_eq!(h2_blocked.status, 403, "{}", h2_blocked.stderr);
    let row = recorded(&server, |r| r.content.as_deref() == Some("volcanoes")).await;
    assert!(row.detail.contains("\"search\":\"bing\""), "{row:?}");

    // An inspected HTTP/2 connection stays for requests close together, and is closed
    // (GOAWAY) once idle: curl then opens a new tunnel. 12 a minute: 5 s apart.
    let h2_url = |q: &str| format!("https://www.bing.com:{}/search?q={q}", h2_origin.port());
    let tunnels = |stderr: &str| stderr.matches("> CONNECT www.bing.com").count();
    let (first, second) = (h2_url("one"), h2_url("two"));
    let h2_args = ["--http2", "-v", "--cacert", school_ca.to_str().unwrap()];
    let together = curl(proxy, STUDENT, &[&h2_args[..], &[&first]].concat(), &second).await;
    assert_eq!(
        (together.exit, tunnels(&together.stderr)),
        (0, 1),
        "{}",
        together.stderr
    );
    let apart = [&h2_args[..], &["--rate", "12/m", &first]].concat();
    let apart = curl(proxy, STUDENT, &apart, &second).await;
    assert_eq!(
        (apart.exit, tunnels(&apart.stderr)),
        (0, 2),
        "{}",
        apart.stderr
    );

    // Inspected: the search, YouTube, the block, the unverified origin, the two over
    // HTTP/2 and the three connections of the idle check; the client that did not trust
    // the school's CA is a failure.
    let (_, metrics) = server.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("hallpass_proxy_inspected_total 9"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hallpass_proxy_inspection_failures_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hallpass_proxy_safe_search_enforced_total 7"),
        "{metrics}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn inspection_without_a_ca_stops_start_up_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "version = 1\n[proxy]\ninspect = [\"search_engines\"]\nca_dir = {:?}\n",
        dir.path().display().to_string()
    );
    let error = TestServer::start(TestOptions {
        config: Some(config),
        ..TestOptions::default()
    })
    .await
    .err()
    .expect("serve started without the CA inspection needs");
    let text = format!("{error:#}");
    assert!(text.contains("proxy-ca.pem"), "{text}");
    assert!(text.contains("hallpass ca init"), "{text}");

    // A never_inspect entry that is not a host name is refused at start too.
    let made = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(["ca", "init", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(made.status.success());
    let config = format!(
        "version = 1\n[proxy]\ninspect = [\"search_engines\"]\nnever_inspect = [\"not a host\"]\nca_dir = {:?}\n",
        dir.path().display().to_string()
    );
    let error = TestServer::start(TestOptions {
        config: Some(config),
        ..TestOptions::default()
    })
    .await
    .err()
    .expect("serve started with a bad never_inspect entry");
    assert!(format!("{error:#}").contains("never_inspect"), "{error:#}");
}
