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

mod decisions;
mod inspection;
mod robustness;
mod tunnels;
