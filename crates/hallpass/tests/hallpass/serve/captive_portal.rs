//! The captive portal over real sockets: an unidentified laptop's DNS answers lead to the
//! block page, where curl (from the laptop's address) signs in with a console account or
//! a guest code a teacher issued; DNS from that address then sees the person within a
//! second, and the sign-in ends after `[portal] sign_in_minutes` (the injected clock).
//! Wrong passwords and codes, and a form without its cookie, change nothing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hallpass::testkit::dns::{Answer, query_a, spawn_upstream};
use hallpass::testkit::{TestOptions, TestServer};
use hallpass_clock::Clock;
use hallpass_web::Role;
use serde_json::{Value, json};

const LAPTOP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 81));
const VISITOR: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 82));
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Allowed for students and guests, blocked for the unidentified (wcs 2.1).
const NAME: &str = "www.bbc.co.uk";

async fn ask(server: &TestServer, from: IpAddr) -> Answer {
    let dns = server.dns;
    tokio::task::spawn_blocking(move || query_a(dns, from, NAME).unwrap())
        .await
        .unwrap()
}

async fn allowed(server: &TestServer, from: IpAddr) -> bool {
    ask(server, from).await.addrs == [UPSTREAM_ANSWER]
}

async fn until_allowed(server: &TestServer, from: IpAddr, want: bool) -> Option<Duration> {
    let start = Clock::system().instant();
    while start.elapsed() < Duration::from_secs(2) {
        if allowed(server, from).await == want {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// curl from `from` to the portal with Host NAME: GET `/`, or POST `form` to `path`.
fn curl(
    portal: SocketAddr,
    from: IpAddr,
    jar: &Path,
    path: &str,
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

async fn curl_async(
    portal: SocketAddr,
    from: IpAddr,
    jar: &Path,
    path: &str,
    form: Vec<String>,
) -> (u16, String) {
    let (jar, path) = (jar.to_path_buf(), path.to_string());
    tokio::task::spawn_blocking(move || curl(portal, from, &jar, &path, &form))
        .await
        .unwrap()
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
async fn signing_in_on_the_portal_identifies_the_address_for_the_configured_time() {
    if Command::new("curl").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "curl is missing under CI");
        eprintln!("\n*** SKIPPED: curl is not installed ***\n");
        return;
    }
    let server = TestServer::start(TestOptions {
        clock: Clock::manual_at("2026-11-23T10:30:00Z".parse().unwrap()),
        upstreams: vec![spawn_upstream(UPSTREAM_ANSWER).unwrap()],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let portal = server.addrs("portal")[0];
    let blocked = ask(&server, LAPTOP).await;
    assert!(blocked.cites("wcs 2.1"), "unidentified: {blocked:?}");
    assert_eq!(
        blocked.addrs,
        [Ipv4Addr::new(127, 0, 0, 1)],
        "the demo's block page"
    );

    let jar = server.data_dir().join("laptop-cookies");
    let (status, page) = curl_async(portal, LAPTOP, &jar, "/", vec![]).await;
    assert_eq!(status, 403);
    assert!(page.contains("data-verdict=\"unidentified\""), "{page}");
    assert!(page.contains("id=\"signin\""), "{page}");
    let token = format!("token={}", hidden(&page, "token"));
    let student = server.account_for(Role::Student).unwrap().clone();

    // Refusals: a wrong password, an unknown guest code, the form without its cookie.
    for (form, want, jar) in [
        (
            vec![
                format!("username={}", student.username),
                "password=wrong-horse-battery".into(),
                token.clone(),
            ],
            401,
            jar.clone(),
        ),
        (
            vec!["code=ABCDE-23456".into(), token.clone()],
            401,
            jar.clone(),
        ),
        (
            vec![
                format!("username={}", student.username),
                format!("password={}", student.password),
                token.clone(),
            ],
            403,
            server.data_dir().join("no-cookies"),
        ),
    ] {
        let (status, page) = curl_async(portal, LAPTOP, &jar, "/hallpass/signin", form).await;
        assert_eq!(status, want, "{page}");
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!allowed(&server, LAPTOP).await, "refusals identify nobody");
    assert!(
        server
            .store
            .sessions()
            .active()
            .await
            .unwrap()
            .iter()
            .all(|s| s.ip != LAPTOP),
        "no session opened"
    );

    // The student signs in with her console account.
    let (status, page) = curl_async(
        portal,
        LAPTOP,
        &jar,
        "/hallpass/signin",
        vec![
            format!("username={}", student.username),
            format!("password={}", student.password),
            token.clone(),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("Signed in as {}", student.username)),
        "{page}"
    );
    let took = until_allowed(&server, LAPTOP, true)
        .await
        .expect("the portal sign-in did not reach DNS within two seconds");
    eprintln!("portal sign-in -> first allowed answer: {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    // Signed in, the device is not taken over by another sign-in.
    let (status, page) = curl_async(
        portal,
        LAPTOP,
        &jar,
        "/hallpass/signin",
        vec![
            format!("username={}", student.username),
            format!("password={}", student.password),
            token.clone(),
        ],
    )
    .await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("already signed in"), "{page}");

    // Eight hours later (the default sign_in_minutes) the address is unidentified again.
    server.clock.advance(Duration::from_secs(8 * 3600 + 60));
    until_allowed(&server, LAPTOP, false)
        .await
        .expect("the portal sign-in did not end after its time");

    // A teacher issues a guest code; a student may not.
    let teacher = server.client_for(Role::Teacher).await.unwrap();
    let issued = teacher
        .post("/api/v1/guests")
        .header("content-type", "application/json")
        .body(json!({"name": "Dr Visitor", "hours": 2}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 201);
    let issued: Value = serde_json::from_str(&issued.text().await.unwrap()).unwrap();
    let code = issued["code"].as_str().unwrap().to_string();
    let guest = issued["username"].as_str().unwrap().to_string();
    let pupil = server.client_for(Role::Student).await.unwrap();
    let refused = pupil
        .post("/api/v1/guests")
        .header("content-type", "application/json")
        .body(json!({"name": "My friend"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let bad = teacher
        .post("/api/v1/guests")
        .header("content-type", "application/json")
        .body(json!({"name": "", "hours": 2}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // The visitor types the code (lower case, spaces: as people type): signed in as the
    // guest, who has the WCS declaration to accept first.
    let visitor_jar = server.data_dir().join("visitor-cookies");
    let (_, page) = curl_async(portal, VISITOR, &visitor_jar, "/", vec![]).await;
    let token = format!("token={}", hidden(&page, "token"));
    let typed = code.to_lowercase().replace('-', " ");
    let (status, page) = curl_async(
        portal,
        VISITOR,
        &visitor_jar,
        "/hallpass/signin",
        vec![format!("code={typed}"), token.clone()],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("Signed in as {guest}")), "{page}");
    assert!(page.contains("data-verdict=\"declaration\""), "{page}");
    let answer = {
        let mut restricted = None;
        for _ in 0..50 {
            let a = ask(&server, VISITOR).await;
            if a.cites("wcs 14") {
                restricted = Some(a);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        restricted.expect("the guest is identified and restricted until they accept")
    };
    assert_ne!(answer.addrs, [UPSTREAM_ANSWER]);
    let (status, page) = curl_async(
        portal,
        VISITOR,
        &visitor_jar,
        "/hallpass/declaration",
        vec![
            format!("document={}", hidden(&page, "document")),
            format!("version={}", hidden(&page, "version")),
            token,
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let took = until_allowed(&server, VISITOR, true)
        .await
        .expect("the guest's acceptance did not reach DNS");
    eprintln!("guest acceptance -> first allowed answer: {took:?}");
    let listed: Value = serde_json::from_str(
        &teacher
            .get("/api/v1/guests")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(listed[0]["username"], guest.as_str());
    assert!(
        listed[0].get("code").is_none(),
        "the code is never shown again"
    );
    server.stop().await.unwrap();
}
