//! The acceptable-use declaration at logon (WCS ICT policy 000 §14) over real sockets: a
//! person who has not accepted the current version is restricted (DNS answers the block
//! page, citing wcs 14); accepting it on the block page (curl, from their address, with
//! the page's double-submit token) lifts it within a second; a new version of the policy
//! asks again, and the shipped logon script (`examples/logon/hallpass-logon.sh
//! declaration`) records the answer; bad input is refused and changes nothing.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::Duration;

use hallpass::testkit::dns::{Answer, query_a, spawn_upstream};
use hallpass::testkit::{TestOptions, TestServer};
use hallpass_clock::Clock;
use serde_json::{Value, json};

const WCS: &str = include_str!("../../../../../examples/policies/wcs.toml");
/// Zoe has not accepted the declaration; Ava has.
const ZOE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
const AVA: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const BLOCK_PAGE: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 10);
/// Allowed for students who have accepted.
const NAME: &str = "www.bbc.co.uk";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/logon/hallpass-logon.sh"
);
const ROSTER: &str = "username,display_name,role,year_group,form,email,mis_id\n\
ava.student,Ava Student,student,9,9B,ava@school.example,M1\n\
zoe.new,Zoe New,student,9,9B,zoe@school.example,M2\n";

async fn ask(server: &TestServer, from: IpAddr) -> Answer {
    let dns = server.dns;
    tokio::task::spawn_blocking(move || query_a(dns, from, NAME).unwrap())
        .await
        .unwrap()
}

/// Restricted: the block page's address, the answer citing wcs 14.
async fn restricted(server: &TestServer, from: IpAddr) -> bool {
    let answer = ask(server, from).await;
    if answer.addrs == [UPSTREAM_ANSWER] {
        return false;
    }
    assert_eq!(answer.addrs, [BLOCK_PAGE], "{answer:?}");
    assert!(
        answer.cites("wcs 14"),
        "cites the declaration clause: {answer:?}"
    );
    true
}

/// How long until `from` is (or is no longer) restricted; `None` after `limit`.
async fn until(server: &TestServer, from: IpAddr, want: bool, limit: Duration) -> Option<Duration> {
    let start = Clock::system().instant();
    while start.elapsed() < limit {
        if restricted(server, from).await == want {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn token(server: &TestServer) -> String {
    server.token("logon", &["sessions"]).await.unwrap()
}

/// curl from `from` to the block page (Host: NAME), keeping cookies in `jar`.
fn curl_portal(
    portal: std::net::SocketAddr,
    from: IpAddr,
    jar: &std::path::Path,
    form: &[String],
) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "5", "--interface"])
        .arg(from.to_string())
        .args(["-H", &format!("Host: {NAME}"), "-b"])
        .arg(jar)
        .arg("-c")
        .arg(jar)
        .args(["-w", "\n%{http_code}"]);
    let path = if form.is_empty() {
        "/"
    } else {
        "/hallpass/declaration"
    };
    for field in form {
        cmd.args(["--data-urlencode", field]);
    }
    cmd.arg(format!("http://{portal}{path}"));
    let out = cmd.output().expect("curl runs");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_declaration_restricts_until_accepted_and_a_new_version_asks_again() {
    if Command::new("curl").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "curl is missing under CI");
        eprintln!("\n*** SKIPPED: curl is not installed ***\n");
        return;
    }
    let server = TestServer::start(TestOptions {
        policy: Some(WCS.to_string()),
        roster: Some(ROSTER.to_string()),
        sessions: vec![(AVA, "ava.student".into()), (ZOE, "zoe.new".into())],
        declarations_pending: vec!["zoe.new".into()],
        clock: Clock::manual_at("2026-11-23T10:30:00Z".parse().unwrap()),
        upstreams: vec![spawn_upstream(UPSTREAM_ANSWER).unwrap()],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    assert!(
        restricted(&server, ZOE).await,
        "zoe has not accepted: restricted"
    );
    assert!(
        !restricted(&server, AVA).await,
        "ava has accepted: her own policy"
    );

    // Bad input through the logon API: refused with the reason, nothing recorded.
    let secret = token(&server).await;
    let http = reqwest::Client::new();
    let api = format!("{}/api/v1/declarations", server.web_base());
    for (body, status, reason) in [
        (
            json!({"user": "nobody", "document": "wcs", "version": "2023"}).to_string(),
            404,
            "nobody",
        ),
        (
            json!({"user": "zoe.new", "document": "aup", "version": "2023"}).to_string(),
            400,
            "no declaration",
        ),
        (
            json!({"user": "zoe.new", "document": "wcs", "version": "2022"}).to_string(),
            400,
            "not the current version",
        ),
        ("{\"user\": \"zoe.new\", \"document\"".to_string(), 400, ""),
    ] {
        let r = http
            .post(&api)
            .bearer_auth(&secret)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{body}");
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert!(
            v["reason"].as_str().unwrap().contains(reason),
            "{body}: {v}"
        );
    }
    assert!(
        server
            .store
            .declarations()
            .of_person("zoe.new")
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(restricted(&server, ZOE).await, "bad input lifted nothing");

    // The block page from Zoe's address shows the declaration; accepting it lifts the
    // restriction within a second.
    let portal = server.addrs("portal")[0];
    let jar = server.data_dir().join("cookies.txt");
    let (status, page) = tokio::task::spawn_blocking({
        let jar = jar.clone();
        move || curl_portal(portal, ZOE, &jar, &[])
    })
    .await
    .unwrap();
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("data-verdict=\"declaration\""), "{page}");
    assert!(page.contains("WCS acceptable use declaration"), "{page}");
    let form = vec![
        format!("document={}", hidden(&page, "document")),
        format!("version={}", hidden(&page, "version")),
        format!("token={}", hidden(&page, "token")),
    ];
    // The token without its cookie (another site's form) is refused.
    let (status, _) = tokio::task::spawn_blocking({
        let form = form.clone();
        let other_jar = server.data_dir().join("other-cookies.txt");
        move || curl_portal(portal, ZOE, &other_jar, &form)
    })
    .await
    .unwrap();
    assert_eq!(status, 403);
    assert!(
        server
            .store
            .declarations()
            .of_person("zoe.new")
            .await
            .unwrap()
            .is_empty()
    );

    let (status, page) = tokio::task::spawn_blocking({
        let jar = jar.clone();
        move || curl_portal(portal, ZOE, &jar, &form)
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("acceptance is recorded"), "{page}");
    let took = until(&server, ZOE, false, Duration::from_secs(1))
        .await
        .expect("accepting did not lift the restriction within a second");
    eprintln!("block-page acceptance -> first allowed answer: {took:?}");
    let recorded = server
        .store
        .declarations()
        .of_person("zoe.new")
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].version.as_str(), recorded[0].ip.as_deref()),
        ("2023", Some("127.0.0.9"))
    );

    // A new version of the policy asks everyone again.
    std::fs::write(
        server.policy_path(),
        WCS.replacen("version = \"2023\"", "version = \"2024\"", 1),
    )
    .unwrap();
    until(&server, AVA, true, Duration::from_secs(5))
        .await
        .expect("the new version restricts Ava again after the reload");
    assert!(restricted(&server, ZOE).await);

    // Zoe accepts at logon through the shipped script (the answer on its stdin).
    let state = server.data_dir().join("logon-session");
    let mut cmd = Command::new("sh");
    cmd.arg(SCRIPT)
        .arg("declaration")
        .env("HALLPASS_URL", server.web_base())
        .env("HALLPASS_TOKEN", &secret)
        .env("HALLPASS_USER", "WCS\\zoe.new")
        .env("HALLPASS_IP", ZOE.to_string())
        .env("HALLPASS_STATE", &state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"yes\n").unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if text.contains("install jq") || text.contains("open any web page") {
        assert!(
            std::env::var_os("CI").is_none(),
            "jq is missing under CI: {text}"
        );
        eprintln!("\n*** jq is not installed: the script's declaration step NOT TESTED ***\n");
        return;
    }
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("By accepting, I confirm my understanding"),
        "shows the text: {text}"
    );
    assert!(text.contains("zoe.new accepted wcs version 2024"), "{text}");
    let took = until(&server, ZOE, false, Duration::from_secs(1))
        .await
        .expect("the script's acceptance did not lift the restriction within a second");
    eprintln!("logon-script acceptance -> first allowed answer: {took:?}");
    assert!(
        restricted(&server, AVA).await,
        "ava has still to accept 2024"
    );
    let zoe = server
        .store
        .declarations()
        .of_person("zoe.new")
        .await
        .unwrap();
    assert_eq!(zoe.len(), 2, "2023 kept as evidence, 2024 added");
    assert_eq!(
        zoe[1].workstation.as_deref().map(str::is_empty),
        Some(false)
    );
    server.stop().await.unwrap();
}
