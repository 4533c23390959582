//! The web proxy end to end with the real `curl -x`: the demo school in-process, its
//! logon sessions on 127.0.0.1 (a student), .2 (a teacher) and .3 (marketing), every
//! origin name resolved by a test DNS upstream to 127.0.0.1, where a small HTTP server
//! (axum, on hyper) plays every site. curl's `--interface` picks the client address,
//! so each request is one person's.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hallpass::testkit::dns::spawn_upstream;
use hallpass::testkit::{TestOptions, TestServer};

const STUDENT: &str = "127.0.0.1";
const TEACHER: &str = "127.0.0.2";
const MARKETING: &str = "127.0.0.3";
/// Nobody is logged on there: the policy's unidentified group (wcs 2.1 blocks).
const NOBODY: &str = "127.0.0.77";
const HELLO: &str = "hello from the origin";

fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether curl is installed; under CI its absence fails the test.
fn have_curl() -> bool {
    let found = Command::new("curl").arg("--version").output().is_ok();
    if !found {
        assert!(
            !is_ci(),
            "curl not found: CI must run the web proxy tests (apt-get install curl)"
        );
        eprintln!("SKIPPING the web proxy tests: curl not found (apt-get install curl)");
    }
    found
}

/// A minimal PE file: `MZ`, the offset of `PE\0\0` at 0x3c, the signature.
fn executable() -> Vec<u8> {
    let mut exe = vec![0u8; 1024];
    exe[..2].copy_from_slice(b"MZ");
    exe[0x3c] = 0x80;
    exe[0x80..0x84].copy_from_slice(b"PE\0\0");
    exe
}

/// The start of a ZIP archive whose first file is `name` (a local file header, then
/// the file's first bytes).
fn zip_of(name: &str) -> Vec<u8> {
    let mut zip = b"PK\x03\x04".to_vec();
    zip.resize(26, 0);
    zip.extend_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
    zip.extend_from_slice(&[0, 0]);
    zip.extend_from_slice(name.as_bytes());
    zip.extend_from_slice(&executable());
    zip
}

fn jpeg() -> Vec<u8> {
    let mut jpeg = vec![
        0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0,
    ];
    jpeg.resize(1024, 0x20);
    jpeg
}

/// Every site: `/` and any path say hello; `/cat.jpg` is an executable sent as a JPEG,
/// `/photo.jpg` a JPEG; `/echo` shows the request line's URI and Host header, `/peer`
/// the address the request came from (which connection).
async fn spawn_origin() -> SocketAddr {
    use axum::http::{HeaderMap, Uri, header};
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/cat.jpg",
            get(|| async { ([(header::CONTENT_TYPE, "image/jpeg")], executable()) }),
        )
        .route(
            "/tools.zip",
            get(|| async { ([(header::CONTENT_TYPE, "application/zip")], zip_of("bin/setup.exe")) }),
        )
        .route(
            "/notes.zip",
            get(|| async { ([(header::CONTENT_TYPE, "application/zip")], zip_of("notes.txt")) }),
        )
        .route(
            "/photo.jpg",
            get(|| async { ([(header::CONTENT_TYPE, "image/jpeg")], jpeg()) }),
        )
        .route(
            "/echo",
            get(|uri: Uri, headers: HeaderMap| async move {
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                format!("uri={uri} host={host}")
            }),
        )
        .route(
            "/upload",
            axum::routing::post(|body: axum::body::Bytes| async move {
                format!("received {} bytes", body.len())
            }),
        )
        .route(
            "/peer",
            get(
                |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>| async move {
                    format!("peer={peer}")
                },
            ),
        )
        .fallback(|| async { HELLO });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// An origin that promises 100,000 bytes, sends 1,000 and closes.
async fn spawn_dying_origin() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nContent-Type: text/plain\r\n\r\n")
                .await;
            let _ = stream.write_all(&[b'x'; 1000]).await;
            let _ = stream.shutdown().await;
        }
    });
    addr
}

/// An origin that sends its head and 1,000 of 100,000 bytes, then nothing, for 30 s.
async fn spawn_stalling_origin() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                    .await;
                let _ = stream.write_all(&[b'x'; 1000]).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    addr
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

struct Fetched {
    status: u16,
    body: String,
    /// The body's length in bytes (`body` is lossy for binary bodies).
    body_bytes: usize,
    /// curl's exit code (0, 56 for a refused CONNECT, 18 for a cut-off body...).
    exit: i32,
    stderr: String,
}

/// `curl -x proxy` from `from` (extra arguments before the URL).
async fn curl(proxy: SocketAddr, from: &str, extra: &[&str], url: &str) -> Fetched {
    let mut command = Command::new("curl");
    command
        .args(["-sS", "--max-time", "15", "-o", "-", "-w", "\n%{http_code}"])
        .args(["-x", &format!("http://{proxy}"), "--interface", from])
        .args(extra)
        .arg(url);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let body_bytes = output.stdout.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    Fetched {
        body_bytes,
        status: code.trim().parse().unwrap_or(0),
        body: body.to_string(),
        exit: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
    }
}

/// One recorded web decision.
#[derive(Debug)]
struct Row {
    person: Option<String>,
    client_ip: Option<String>,
    target: String,
    verdict: String,
    rule: Option<String>,
    clause: Option<String>,
    categories: String,
    bytes: Option<i64>,
    detail: String,
    content: Option<String>,
}

/// The web decisions recorded so far, oldest first (after flushing the writer).
async fn web_rows(server: &TestServer) -> Vec<Row> {
    server.shared.writer.flush().await;
    let db = server.data_dir().join("hallpass.db");
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut statement = conn
        .prepare(
            "SELECT d.person, d.client_ip, d.target, d.verdict, d.rule, d.clause, d.categories, \
             d.bytes, d.detail, c.content FROM decisions d \
             LEFT JOIN event_content c ON c.event_id = d.id \
             WHERE d.kind = 'web' ORDER BY d.id",
        )
        .unwrap();
    statement
        .query_map([], |r| {
            Ok(Row {
                person: r.get(0)?,
                client_ip: r.get(1)?,
                target: r.get(2)?,
                verdict: r.get(3)?,
                rule: r.get(4)?,
                clause: r.get(5)?,
                categories: r.get(6)?,
                bytes: r.get(7)?,
                detail: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                content: r.get(9)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Polls the recorded rows until one matches (the event is written when the response
/// body ends, which may be just after curl has it).
async fn recorded(server: &TestServer, what: impl Fn(&Row) -> bool) -> Row {
    for _ in 0..50 {
        if let Some(row) = web_rows(server).await.into_iter().find(|row| what(row)) {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no such web event; recorded: {:#?}", web_rows(server).await);
}

async fn start(origin: SocketAddr, options: TestOptions) -> TestServer {
    TestServer::start(TestOptions {
        upstreams: vec![spawn_upstream(Ipv4Addr::LOCALHOST).unwrap()],
        proxy_connect_ports: vec![origin.port()],
        ..options
    })
    .await
    .unwrap()
}

fn proxy_of(server: &TestServer) -> SocketAddr {
    server.addrs("proxy")[0]
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_and_blocked_by_category_recorded_with_the_clause() {
    if !have_curl() {
        return;
    }
    let origin = spawn_origin().await;
    let server = start(origin, TestOptions::default()).await;
    let proxy = proxy_of(&server);
    let port = origin.port();

    let allowed = curl(
        proxy,
        STUDENT,
        &[],
        &format!("http://www.bbc.co.uk:{port}/news?id=7"),
    )
    .await;
    assert_eq!(
        (allowed.status, allowed.body.as_str()),
        (200, HELLO),
        "{}",
        allowed.stderr
    );
    // The origin sees the URL's host and an origin-form request.
    let echoed = curl(
        proxy,
        STUDENT,
        &[],
        &format!("http://www.bbc.co.uk:{port}/echo"),
    )
    .await;
    assert_eq!(echoed.body, format!("uri=/echo host=www.bbc.co.uk:{port}"));

    // A request body goes through (keep-alive, chunked upload), HEAD has no body.
    let upload = curl(
        proxy,
        STUDENT,
        &[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &"x".repeat(100_000),
        ],
        &format!("http://www.bbc.co.uk:{port}/upload"),
    )
    .await;
    assert_eq!(
        (upload.status, upload.body.as_str()),
        (200, "received 100000 bytes")
    );
    let head = curl(
        proxy,
        STUDENT,
        &["-I"],
        &format!("http://www.bbc.co.uk:{port}/"),
    )
    .await;
    assert_eq!(head.status, 200, "{}", head.stderr);
    assert!(
        head.body
            .to_ascii_lowercase()
            .contains(&format!("content-length: {}", HELLO.len())),
        "{}",
        head.body
    );

    let blocked = curl(
        proxy,
        STUDENT,
        &[],
        &format!("http://mail.gmail.com:{port}/inbox"),
    )
    .await;
    assert_eq!(blocked.status, 403);
    assert!(
        blocked.body.contains("<dd id=\"clause\">wcs 4.5.1</dd>"),
        "{}",
        blocked.body
    );
    assert!(blocked.body.contains("<dd id=\"categories\">webmail</dd>"));
    assert!(blocked.body.contains("<dd id=\"person\">ava.student</dd>"));
    assert!(!blocked.body.contains(HELLO));

    let row = recorded(&server, |r| r.target.ends_with("/news")).await;
    assert_eq!(
        row.target,
        format!("www.bbc.co.uk:{port}/news"),
        "no query in metadata"
    );
    assert_eq!(row.person.as_deref(), Some("ava.student"));
    assert_eq!(row.client_ip.as_deref(), Some(STUDENT));
    assert_eq!(row.verdict, "allow");
    assert_eq!(row.bytes, Some(HELLO.len() as i64));
    assert!(row.detail.contains("\"method\":\"GET\"") && row.detail.contains("\"status\":200"));
    assert_eq!(
        row.content.as_deref(),
        Some(format!("http://www.bbc.co.uk:{port}/news?id=7").as_str()),
        "the full URL is content"
    );
    let row = recorded(&server, |r| r.target.ends_with("/inbox")).await;
    assert_eq!(
        (
            row.verdict.as_str(),
            row.rule.as_deref(),
            row.clause.as_deref()
        ),
        ("block", Some("webmail"), Some("4.5.1"))
    );
    assert_eq!(row.categories, "webmail");
    assert!(row.detail.contains("\"status\":403"));
    assert_eq!(row.content, None, "no query: the target says it all");

    let (status, metrics) = server.admin_get("/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("hallpass_proxy_requests_total{verdict=\"allow\"} 4"),
        "{metrics}"
    );
    assert!(metrics.contains("hallpass_proxy_requests_total{verdict=\"block\"} 1"));
    assert!(metrics.contains("hallpass_proxy_open_connections "));
    assert!(
        metrics.contains("hallpass_proxy_refused_total{category=\"webmail\"} 1"),
        "{metrics}"
    );
    // The DNS filter's per-category counts are the DNS filter's alone.
    assert!(
        !metrics.contains("hallpass_dns_blocked_total{category=\"webmail\"} 1"),
        "{metrics}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn per_group_unidentified_and_renamed_executables() {
    if !have_curl() {
        return;
    }
    let origin = spawn_origin().await;
    let server = start(origin, TestOptions::default()).await;
    let proxy = proxy_of(&server);
    let port = origin.port();

    // Social media (wcs 8.1.1) for a student, not for marketing.
    let facebook = format!("http://www.facebook.com:{port}/");
    let student = curl(proxy, STUDENT, &[], &facebook).await;
    assert_eq!(student.status, 403);
    assert!(student.body.contains("wcs 8.1.1"));
    let marketing = curl(proxy, MARKETING, &[], &facebook).await;
    assert_eq!((marketing.status, marketing.body.as_str()), (200, HELLO));

    // Nobody logged on: the unidentified group's default (wcs 2.1).
    let nobody = curl(proxy, NOBODY, &[], &format!("http://www.bbc.co.uk:{port}/")).await;
    assert_eq!(nobody.status, 403);
    assert!(nobody.body.contains("not signed in"), "{}", nobody.body);
    assert!(nobody.body.contains("wcs 2.1"), "{}", nobody.body);
    let row = recorded(&server, |r| r.client_ip.as_deref() == Some(NOBODY)).await;
    assert_eq!((row.person, row.verdict.as_str()), (None, "block"));

    // An executable named .jpg and sent as image/jpeg: its first bytes give it away.
    let cat = format!("http://www.bbc.co.uk:{port}/cat.jpg");
    let student = curl(proxy, STUDENT, &[], &cat).await;
    assert_eq!(student.status, 403);
    assert!(
        student.body.contains("This download is blocked"),
        "{}",
        student.body
    );
    assert!(student.body.contains("wcs 4.3.4"));
    assert!(student.body.contains("<dd id=\"file-type\">exe"));
    let row = recorded(&server, |r| r.target.ends_with("/cat.jpg")).await;
    assert_eq!(row.rule.as_deref(), Some("software-downloads"));
    assert!(row.detail.contains("\"file_type\":\"exe"), "{}", row.detail);
    let teacher = curl(proxy, TEACHER, &[], &cat).await;
    assert_eq!(teacher.status, 200);
    assert_eq!(teacher.body_bytes, executable().len());
    assert!(teacher.body.starts_with("MZ"));
    // A real picture is a picture, and a student's .exe link is refused before fetching.
    let photo = curl(
        proxy,
        STUDENT,
        &[],
        &format!("http://www.bbc.co.uk:{port}/photo.jpg"),
    )
    .await;
    assert_eq!(photo.status, 200);
    let setup = curl(
        proxy,
        STUDENT,
        &[],
        &format!("http://www.bbc.co.uk:{port}/setup.exe"),
    )
    .await;
    assert_eq!(setup.status, 403);
    assert!(
        setup.body.contains("<dd id=\"file-type\">.exe</dd>"),
        "{}",
        setup.body
    );

    let (_, metrics) = server.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("hallpass_proxy_file_type_refused_total 2"),
        "{metrics}"
    );
    // Marketing's Facebook, the teacher's program, the photo; the download refused on its
    // first bytes counts as a block only.
    assert!(
        metrics.contains("hallpass_proxy_requests_total{verdict=\"allow\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hallpass_proxy_requests_total{verdict=\"block\"} 4"),
        "{metrics}"
    );
    server.stop().await.unwrap();
}

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

/// A UT1-style directory: the demo lists, their aliases, and one URL entry
/// (`files.example.org/warez/`, category warez: the piracy rule, wcs 4.3.2).
fn catalog_with_a_url_entry(dir: &Path) -> PathBuf {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalog/demo");
    let root = dir.join("lists");
    for entry in std::fs::read_dir(&demo).unwrap() {
        let entry = entry.unwrap();
        let category = root.join(entry.file_name());
        std::fs::create_dir_all(&category).unwrap();
        std::fs::copy(entry.path(), category.join("domains")).unwrap();
    }
    std::fs::write(root.join("warez/urls"), "files.example.org/warez/\n").unwrap();
    for (alias, target) in [
        ("porn", "adult"),
        ("violence", "aggressive"),
        ("agressif", "aggressive"),
        ("drogue", "drugs"),
        ("proxy", "redirector"),
    ] {
        std::os::unix::fs::symlink(target, root.join(alias)).unwrap();
    }
    root
}

#[tokio::test(flavor = "multi_thread")]
async fn url_entries_block_a_path_and_not_its_sibling() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let origin = spawn_origin().await;
    let server = start(
        origin,
        TestOptions {
            catalog: Some(catalog_with_a_url_entry(dir.path())),
            ..TestOptions::default()
        },
    )
    .await;
    let proxy = proxy_of(&server);
    let port = origin.port();
    let listed = curl(
        proxy,
        TEACHER,
        &[],
        &format!("http://files.example.org:{port}/warez/game.zip"),
    )
    .await;
    assert_eq!(listed.status, 403);
    assert!(
        listed.body.contains("<dd id=\"categories\">warez</dd>"),
        "{}",
        listed.body
    );
    // The same after the origin's own normalisation: %77 is w, dot segments resolve.
    let disguised = curl(
        proxy,
        TEACHER,
        &["--path-as-is"],
        &format!("http://files.example.org:{port}/docs/../%77arez/game.zip"),
    )
    .await;
    assert_eq!(disguised.status, 403, "{}", disguised.body);
    let sibling = curl(
        proxy,
        TEACHER,
        &[],
        &format!("http://files.example.org:{port}/docs/manual.pdf"),
    )
    .await;
    assert_eq!((sibling.status, sibling.body.as_str()), (200, HELLO));
    let row = recorded(&server, |r| r.target.ends_with("/warez/game.zip")).await;
    assert_eq!(row.rule.as_deref(), Some("piracy"));
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

/// Sends `bytes` on a fresh connection; what came back before the proxy closed or
/// 3 s passed.
fn raw(proxy: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = std::net::TcpStream::connect(proxy).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).to_string()
}

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

/// A TLS "origin" that only counts what each connection sent before closing, so a test
/// sees whether a ClientHello got through the tunnel.
async fn spawn_counting_sink() -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<usize>>>) {
    use tokio::io::AsyncReadExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = std::sync::Arc::clone(&log);
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                    .await
                    .map_or(0, |read| read.unwrap_or(0));
                log.lock().unwrap().push(n);
            });
        }
    });
    (addr, seen)
}

/// `openssl s_client` through the proxy to `connect` (HOST:PORT) asking for `server_name`.
async fn s_client(proxy: SocketAddr, connect: String, server_name: &str) {
    let mut command = Command::new("timeout");
    command
        .args(["10", "openssl", "s_client", "-proxy", &proxy.to_string()])
        .args(["-connect", &connect, "-servername", server_name])
        .stdin(std::process::Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    eprintln!("s_client: {}", String::from_utf8_lossy(&output.stderr));
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
async fn proxy_authentication_identifies_people_on_shared_machines() {
    use hallpass_web::Role;
    if !have_curl() {
        return;
    }
    let origin = spawn_origin().await;
    let server = start(
        origin,
        TestOptions {
            proxy_auth: true,
            ..TestOptions::default()
        },
    )
    .await;
    let proxy = proxy_of(&server);
    let port = origin.port();
    let teacher = server.account_for(Role::Teacher).unwrap().clone();
    let student = server.account_for(Role::Student).unwrap().clone();
    let as_user = |account: &hallpass::testkit::TestAccount| {
        format!("{}:{}", account.username, account.password)
    };
    let cat = format!("http://www.bbc.co.uk:{port}/cat.jpg");

    // No session at this address and no credentials: the challenge.
    let asked = curl(proxy, NOBODY, &["-v"], &cat).await;
    assert_eq!(asked.status, 407);
    assert!(
        asked
            .stderr
            .to_ascii_lowercase()
            .contains("proxy-authenticate: basic realm=\"westminster city school web proxy\""),
        "{}",
        asked.stderr
    );
    // Wrong password: asked again.
    let wrong = format!("{}:not-the-password", teacher.username);
    let refused = curl(proxy, NOBODY, &["--proxy-user", &wrong], &cat).await;
    assert_eq!(refused.status, 407);

    // The teacher signs in on the shared machine: staff may download the program.
    let signed_in = curl(proxy, NOBODY, &["--proxy-user", &as_user(&teacher)], &cat).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    // The student on the same machine may not, and the record names her.
    let blocked = curl(proxy, NOBODY, &["--proxy-user", &as_user(&student)], &cat).await;
    assert_eq!(blocked.status, 403);
    assert!(
        blocked
            .body
            .contains(&format!("<dd id=\"person\">{}</dd>", student.username))
    );
    let row = recorded(&server, |r| {
        r.client_ip.as_deref() == Some(NOBODY) && r.verdict == "block"
    })
    .await;
    assert_eq!(row.person.as_deref(), Some(student.username.as_str()));
    // Tunnels ask too.
    let tunnel = curl(
        proxy,
        NOBODY,
        &["-p", "--proxy-user", &as_user(&teacher)],
        &format!("http://www.bbc.co.uk:{port}/"),
    )
    .await;
    assert_eq!(
        (tunnel.status, tunnel.body.as_str()),
        (200, HELLO),
        "{}",
        tunnel.stderr
    );

    // A logged-on address needs no sign-in.
    let session = curl(
        proxy,
        STUDENT,
        &[],
        &format!("http://www.bbc.co.uk:{port}/"),
    )
    .await;
    assert_eq!((session.status, session.body.as_str()), (200, HELLO));
    let (_, metrics) = server.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("hallpass_proxy_auth_challenges_total 2"),
        "{metrics}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn lesson_time_decides_as_for_dns() {
    if !have_curl() {
        return;
    }
    // Monday 23 November 2026, in term: 10:00 is a lesson, 12:50 lunchtime.
    let monday_at = |hh: i8, mm: i8| {
        jiff::civil::date(2026, 11, 23)
            .at(hh, mm, 0, 0)
            .to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap())
            .unwrap()
            .timestamp()
    };
    let clock = hallpass_clock::Clock::manual_at(monday_at(10, 0));
    let origin = spawn_origin().await;
    let server = start(
        origin,
        TestOptions {
            clock: clock.clone(),
            ..TestOptions::default()
        },
    )
    .await;
    let proxy = proxy_of(&server);
    let streaming = format!("http://www.deezer.com:{}/", origin.port());
    let lesson = curl(proxy, STUDENT, &[], &streaming).await;
    assert_eq!(lesson.status, 403);
    assert!(lesson.body.contains("wcs 4.3.7"), "{}", lesson.body);
    clock.set(monday_at(12, 50));
    let lunch = curl(proxy, STUDENT, &[], &streaming).await;
    assert_eq!((lunch.status, lunch.body.as_str()), (200, HELLO));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_archive_carrying_a_program_is_a_program() {
    if !have_curl() {
        return;
    }
    let origin = spawn_origin().await;
    let server = start(origin, TestOptions::default()).await;
    let proxy = proxy_of(&server);
    let port = origin.port();
    let tools = format!("http://www.bbc.co.uk:{port}/tools.zip");
    let student = curl(proxy, STUDENT, &[], &tools).await;
    assert_eq!(student.status, 403);
    assert!(
        student
            .body
            .contains("<dd id=\"file-type\">zip holding bin/setup.exe</dd>"),
        "{}",
        student.body
    );
    assert!(student.body.contains("wcs 4.3.4"));
    let teacher = curl(proxy, TEACHER, &[], &tools).await;
    assert_eq!(teacher.status, 200);
    let notes = curl(
        proxy,
        STUDENT,
        &[],
        &format!("http://www.bbc.co.uk:{port}/notes.zip"),
    )
    .await;
    assert_eq!(notes.status, 200, "an archive of notes is not a program");
    server.stop().await.unwrap();
}
