//! RADIUS accounting over real sockets, sent by the real `radclient` (freeradius-utils):
//! a Start makes DNS from that address see the person's policy within a second, a Stop
//! reverts it, and forged, unknown, malformed and repeated packets change nothing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use hallpass::testkit::dns::{Answer, query_a, spawn_upstream};
use hallpass::testkit::{TestOptions, TestServer};
use hallpass_clock::Clock;
use hallpass_radius::packet::{self, attr, build_accounting_request};

const SECRET: &str = "testing123";
/// An address nobody is logged on at: unidentified until RADIUS says otherwise.
const LAPTOP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 77);
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Allowed for students; unidentified clients are blocked by wcs 2.1 (fail closed).
const NAME: &str = "www.bbc.co.uk";

fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether radclient is installed; under CI its absence fails the test.
fn have_radclient() -> bool {
    let found = Command::new("radclient")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            !is_ci(),
            "radclient not found: CI must run the RADIUS tests (apt-get install freeradius-utils)"
        );
        eprintln!(
            "SKIPPING the RADIUS tests: radclient not found (apt-get install freeradius-utils)"
        );
    }
    found
}

/// Sends one Accounting-Request with radclient (one try, 1 s timeout); whether it got a
/// valid Accounting-Response.
async fn radclient(server: SocketAddr, secret: &str, attributes: &str) -> bool {
    let (secret, attributes) = (secret.to_string(), attributes.to_string());
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut child = Command::new("radclient")
            .args(["-r", "1", "-t", "1", "-x"])
            .arg(server.to_string())
            .args(["acct", &secret])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(attributes.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        eprintln!(
            "radclient: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output.status.success()
    })
    .await
    .unwrap()
}

fn accounting(status: &str, user: &str, ip: Ipv4Addr) -> String {
    format!(
        "Acct-Status-Type = {status}, User-Name = \"{user}\", Framed-IP-Address = {ip}, \
         Acct-Session-Id = \"S-{user}\", Calling-Station-Id = \"02-00-00-00-00-4d\", \
         NAS-Identifier = \"wlc-1\"\n"
    )
}

async fn ask(server: &TestServer, from: Ipv4Addr) -> Answer {
    let dns = server.dns;
    tokio::task::spawn_blocking(move || query_a(dns, IpAddr::V4(from), NAME).unwrap())
        .await
        .unwrap()
}

fn is_allowed(answer: &Answer) -> bool {
    answer.addrs == vec![UPSTREAM_ANSWER]
}

fn is_unidentified(answer: &Answer) -> bool {
    answer.cites("wcs 2.1") && !is_allowed(answer)
}

/// Asks until `want` holds; the time it took, or `None` after 3 s.
async fn until(server: &TestServer, from: Ipv4Addr, want: fn(&Answer) -> bool) -> Option<Duration> {
    let clock = Clock::system();
    let started = clock.instant();
    while clock.instant() - started < Duration::from_secs(3) {
        if want(&ask(server, from).await) {
            return Some(clock.instant() - started);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn session_at(server: &TestServer, ip: Ipv4Addr) -> Option<String> {
    server
        .store
        .sessions()
        .active()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.ip == IpAddr::V4(ip))
        .map(|s| s.username)
}

fn metric(metrics: &str, line_start: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in {metrics}"))
}

fn dropped(server: &TestServer, reason: &str) -> u64 {
    let (_, metrics) = server.admin_get("/metrics").unwrap();
    metric(
        &metrics,
        &format!("hallpass_radius_dropped_total{{reason=\"{reason}\"}}"),
    )
}

/// Monday 23 November 2026, 10:00 London (a lesson).
fn monday_morning() -> jiff::Timestamp {
    jiff::civil::date(2026, 11, 23)
        .at(10, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap())
        .unwrap()
        .timestamp()
}

async fn start_server() -> (TestServer, SocketAddr) {
    let server = TestServer::start(TestOptions {
        clock: Clock::manual_at(monday_morning()),
        upstreams: vec![spawn_upstream(UPSTREAM_ANSWER).unwrap()],
        radius: vec![("127.0.0.0/8".parse().unwrap(), SECRET.to_string())],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let radius = *server
        .addrs("radius")
        .first()
        .expect("the RADIUS listener runs");
    (server, radius)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radclient_start_and_stop_open_and_end_the_session_that_dns_sees() {
    if !have_radclient() {
        return;
    }
    let (server, radius) = start_server().await;
    assert!(
        is_unidentified(&ask(&server, LAPTOP).await),
        "nobody at the laptop yet"
    );

    // A forged Start (wrong secret): no answer, nothing changes.
    assert!(
        !radclient(
            radius,
            "not-the-secret",
            &accounting("Start", "ava.student", LAPTOP)
        )
        .await,
        "a packet with the wrong secret gets no answer"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(is_unidentified(&ask(&server, LAPTOP).await));
    assert_eq!(session_at(&server, LAPTOP).await, None);
    assert_eq!(dropped(&server, "bad_authenticator"), 1);

    // The real Start: acknowledged, and DNS sees a student within a second.
    assert!(radclient(radius, SECRET, &accounting("Start", "ava.student", LAPTOP)).await);
    assert_eq!(
        session_at(&server, LAPTOP).await.as_deref(),
        Some("ava.student")
    );
    let took = until(&server, LAPTOP, is_allowed)
        .await
        .expect("DNS sees the student after the Start");
    eprintln!("Start -> student's policy in DNS: {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");

    // An Interim-Update keeps it; a Stop ends it, and DNS reverts within a second.
    assert!(
        radclient(
            radius,
            SECRET,
            &accounting("Interim-Update", "ava.student", LAPTOP)
        )
        .await
    );
    assert_eq!(
        session_at(&server, LAPTOP).await.as_deref(),
        Some("ava.student")
    );
    assert!(radclient(radius, SECRET, &accounting("Stop", "ava.student", LAPTOP)).await);
    assert_eq!(session_at(&server, LAPTOP).await, None);
    let took = until(&server, LAPTOP, is_unidentified)
        .await
        .expect("DNS sees nobody after the Stop");
    eprintln!("Stop -> unidentified in DNS: {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");

    let (_, metrics) = server.admin_get("/metrics").unwrap();
    assert_eq!(
        metric(&metrics, "hallpass_radius_accepted_total"),
        3,
        "{metrics}"
    );
    // Audit entries name the RADIUS client network as the actor.
    let entries = server.store.audit().recent(1000).await.unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.actor == "radius:127.0.0.0/8" && e.action == "session.start"),
        "{entries:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_malformed_packets_and_retransmissions_change_nothing() {
    if !have_radclient() {
        return;
    }
    let (server, radius) = start_server().await;
    let other = Ipv4Addr::new(127, 0, 0, 78);

    // An unknown user: no session, counted (answered: sending it again changes nothing).
    assert!(radclient(radius, SECRET, &accounting("Start", "nobody.here", other)).await);
    assert_eq!(session_at(&server, other).await, None);
    assert_eq!(dropped(&server, "unknown_user"), 1);

    // A Start without a Framed-IP-Address records nothing.
    assert!(
        radclient(
            radius,
            SECRET,
            "Acct-Status-Type = Start, User-Name = \"ava.student\"\n"
        )
        .await
    );
    assert_eq!(dropped(&server, "missing_attribute"), 1);

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut buf = [0u8; 4096];

    // An attribute whose length runs past the packet, correctly signed: dropped, counted.
    let mut oversized = vec![4, 9, 0, 0];
    oversized.extend_from_slice(&[0; 16]);
    oversized.extend_from_slice(&[40, 6, 0, 0, 0, 1, 1, 250, b'a', b'v', b'a']);
    let length = oversized.len() as u16;
    oversized[2..4].copy_from_slice(&length.to_be_bytes());
    let authenticator = packet::request_authenticator(&oversized, SECRET.as_bytes());
    oversized[4..20].copy_from_slice(&authenticator);
    socket.send_to(&oversized, radius).unwrap();
    assert!(
        socket.recv_from(&mut buf).is_err(),
        "a malformed packet gets no answer"
    );
    // Garbage too short for a header.
    socket.send_to(b"\x04\x01\x00", radius).unwrap();
    assert!(socket.recv_from(&mut buf).is_err());
    assert_eq!(dropped(&server, "malformed"), 2);

    // The same request twice from the same port: the same answer, applied once.
    let start = build_accounting_request(
        42,
        &[
            (attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes()),
            (attr::USER_NAME, b"mr.teacher"),
            (attr::FRAMED_IP_ADDRESS, &other.octets()),
        ],
        SECRET.as_bytes(),
    )
    .unwrap();
    let mut answers = Vec::new();
    for _ in 0..2 {
        socket.send_to(&start, radius).unwrap();
        let (len, _) = socket.recv_from(&mut buf).expect("an Accounting-Response");
        answers.push(buf[..len].to_vec());
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(
        answers[0][..2],
        [5, 42],
        "Accounting-Response to identifier 42"
    );
    assert_eq!(dropped(&server, "duplicate"), 1);
    assert_eq!(
        session_at(&server, other).await.as_deref(),
        Some("mr.teacher")
    );
    let starts = server
        .store
        .audit()
        .recent(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.action == "session.start"
                && e.subject == "mr.teacher"
                && e.actor.starts_with("radius:")
        })
        .count();
    assert_eq!(starts, 1, "the retransmission was not applied again");

    // Nothing above stopped the listener.
    assert!(radclient(radius, SECRET, &accounting("Stop", "mr.teacher", other)).await);
    assert_eq!(session_at(&server, other).await, None);
    server.stop().await.unwrap();
}

/// `hallpass serve` (the real process) with RADIUS settings from a file and flags.
fn serve_with(config: &str, extra: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hallpass.toml");
    std::fs::write(&file, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args([
            "serve",
            "--dns-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--web-listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9"])
        .arg("--config")
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_taken_radius_port_fails_start_up_naming_it() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let output = serve_with(
        &format!(
            "version = 1\n[radius]\nlisten = \"{addr}\"\n[[radius.clients]]\n\
             network = \"127.0.0.0/8\"\nsecret = \"s3cret-value\"\n"
        ),
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("RADIUS accounting: cannot listen on {addr}"))
            && stderr.contains("in use"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret-value"),
        "the secret is never printed: {stderr}"
    );
}

#[test]
fn radius_listen_without_a_client_is_refused_naming_what_to_add() {
    let output = serve_with("version = 1\n", &["--radius-listen", "127.0.0.1:0"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("RADIUS accounting on 127.0.0.1:0 needs at least one [[radius.clients]]"),
        "{stderr}"
    );
    let output = serve_with(
        "version = 1\n[[radius.clients]]\nnetwork = \"10.0.0.0/8\"\nsecret = \"\"\n",
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("hallpass.toml:4:10: radius.clients.secret: is empty"),
        "{stderr}"
    );
}
