//! Every demo role signs in through the form and sees its pages.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use hallpass::testkit::{TestAccount, TestOptions, TestServer};
use hallpass_clock::Clock;
use hallpass_web::Role;
use serde_json::Value;

use crate::driver::{Driver, pause};
use crate::monday_lesson;

/// Real DNS traffic to the demo resolver, so the dashboard's charts have something to
/// draw: (source address, name, times). 127.0.0.1 is the demo's Year 9 student,
/// 127.0.0.2 its teacher, 127.0.0.4 nobody (unidentified: everything blocked).
const TRAFFIC: &[(&str, &str, usize)] = &[
    ("127.0.0.1", "gmail.com", 6),
    ("127.0.0.1", "www.roblox.com", 5),
    ("127.0.0.1", "www.facebook.com", 4),
    ("127.0.0.1", "www.bet365.com", 2),
    ("127.0.0.2", "www.facebook.com", 3),
    ("127.0.0.4", "www.bbc.co.uk", 2),
];

async fn send_traffic(server: &TestServer) -> usize {
    let dns = server.dns;
    tokio::task::spawn_blocking(move || {
        let mut blocked = 0;
        for (from, name, times) in TRAFFIC {
            let from: IpAddr = from.parse().unwrap();
            for _ in 0..*times {
                let answer = hallpass::testkit::dns::query_a(dns, from, name).unwrap();
                // Blocked: the block page's address, or NXDOMAIN (allowed names get
                // SERVFAIL: the kit's upstream answers nothing).
                if answer.rcode == 3 || !answer.addrs.is_empty() {
                    blocked += 1;
                }
            }
        }
        blocked
    })
    .await
    .unwrap()
}

/// The navigation links each role should see, by label.
fn expected_nav(role: Role) -> Vec<&'static str> {
    use Role::*;
    let mut nav = match role {
        NetworkManager => vec![
            "Dashboard",
            "Activity",
            "My activity",
            "People",
            "Policy",
            "Audit",
        ],
        Dsl | HeadOfYear => vec!["Dashboard", "Activity", "My activity", "People", "Policy"],
        Headteacher | Dpo => vec!["Dashboard", "My activity", "People", "Policy", "Audit"],
        Teacher => vec!["Dashboard", "My activity", "Policy"],
        Governor => vec!["Dashboard", "Policy"],
        Student => vec!["My activity", "Policy"],
    };
    // Everyone may ask for a site; those who teach may open a rule for a class.
    nav.push("Requests");
    if matches!(role, NetworkManager | HeadOfYear | Teacher) {
        nav.push("Overrides");
    }
    // Alerts reach ICT support, the DSL and the headteacher; ICT support sees logons.
    if matches!(role, NetworkManager | Dsl | HeadOfYear | Headteacher) {
        nav.push("Alerts");
    }
    if matches!(role, Dsl | HeadOfYear | Headteacher) {
        nav.push("Incidents");
    }
    if matches!(role, NetworkManager | Dsl | HeadOfYear | Headteacher) {
        nav.push("Sanctions");
    }
    if matches!(role, Dsl | Headteacher) {
        nav.push("Investigations");
    }
    if role == NetworkManager {
        nav.push("Logged on");
    }
    // Who has not accepted the acceptable use declaration (000 §14).
    if matches!(role, NetworkManager | Dsl | HeadOfYear | Headteacher) {
        nav.push("Declarations");
    }
    // Staff issue guest codes for the captive portal.
    if !matches!(role, Governor | Student) {
        nav.push("Guests");
    }
    nav
}

/// Where the screenshot goes: `console-screenshots/` in the cargo target directory.
fn screenshot_path() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .unwrap_or(&tmp)
        .join("console-screenshots")
        .join("dashboard.png")
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR", "no IHDR first");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_demo_role_signs_in_with_a_browser_and_sees_its_pages() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let server = TestServer::start(TestOptions {
        clock: Clock::manual_at(monday_lesson()),
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let base = server.web_base();
    assert_eq!(server.accounts.len(), 8, "one demo account per role");
    let account = |role: Role| -> TestAccount { server.account_for(role).unwrap().clone() };

    // Real traffic first, then wait (bounded) until the dashboard counts it.
    let sent = send_traffic(&server).await;
    assert!(sent >= 20, "the demo policy blocked only {sent} queries");
    let netman = server.client_for(Role::NetworkManager).await.unwrap();
    let mut dashboard = Value::Null;
    for _ in 0..100 {
        dashboard = netman.get_json("/api/v1/dashboard").await.unwrap().1;
        if dashboard["blocked_24h"].as_i64().unwrap_or(0) >= 20 {
            break;
        }
        pause().await;
    }
    assert!(
        dashboard["blocked_24h"].as_i64().unwrap() >= 20,
        "{dashboard}"
    );
    assert!(
        dashboard["blocked_by_category"].as_array().unwrap().len() >= 3,
        "{dashboard}"
    );

    // A wrong password is refused on the page, and signs nobody in.
    driver.delete_cookies().await;
    driver.goto(&format!("{base}/login")).await;
    driver.type_into("#username", "ms.netman").await;
    driver.type_into("#password", "wrong-password-here").await;
    driver.click("#signin").await;
    let html = driver.source_with("id=\"error\"").await;
    assert!(html.contains("wrong username or password"), "{html}");
    assert!(!html.contains("id=\"whoami\""), "{html}");
    driver.goto(&format!("{base}/dashboard")).await;
    assert!(driver.url().await.ends_with("/login"), "not signed in");

    // Every demo account, as the banner printed it.
    for TestAccount {
        role,
        username,
        password,
    } in server.accounts.clone()
    {
        let html = driver.sign_in(&base, &username, &password).await;
        assert!(
            html.contains(&format!("{username} ({role})")),
            "{role}: {html}"
        );
        for label in [
            "Dashboard",
            "Activity",
            "My activity",
            "People",
            "Audit",
            "Requests",
            "Overrides",
            "Alerts",
            "Incidents",
            "Sanctions",
            "Investigations",
            "Logged on",
            "Declarations",
            "Guests",
        ] {
            let shown = html.contains(&format!(">{label}</a>"));
            assert_eq!(
                shown,
                expected_nav(role).contains(&label),
                "{role}: nav {label}"
            );
        }
        let landed = driver.url().await;
        match role {
            Role::Student => {
                assert!(landed.ends_with("/my-activity"), "{landed}");
                assert!(html.contains("gmail.com"), "the student sees their own");
                assert!(!html.contains("mr.teacher"), "and nobody else's");
                driver.goto(&format!("{base}/dashboard")).await;
                let denied = driver.source().await;
                assert!(
                    denied.contains("may not perform dashboard.view"),
                    "{denied}"
                );
            }
            _ => {
                assert!(landed.ends_with("/dashboard"), "{role}: {landed}");
                assert!(html.contains("class=\"bar\""), "{role}: charts drawn");
                assert!(html.contains("gmail.com"), "{role}: top blocked sites");
            }
        }
        match role {
            Role::Governor => {
                for person in ["ava.student", "mr.teacher", "ben.student"] {
                    assert!(!html.contains(person), "a governor saw {person}");
                }
                driver.goto(&format!("{base}/people")).await;
                let denied = driver.source().await;
                assert!(denied.contains("may not perform people.view"), "{denied}");
            }
            Role::Dsl => {
                driver
                    .goto(&format!("{base}/activity?person=ava.student"))
                    .await;
                let found = driver.source().await;
                assert!(found.contains("www.roblox.com"), "{found}");
            }
            Role::HeadOfYear => {
                driver.goto(&format!("{base}/people")).await;
                let people = driver.source().await;
                assert!(people.contains("ava.student"), "Year 9: {people}");
                assert!(!people.contains("ben.student"), "Year 11: {people}");
            }
            Role::Teacher => {
                driver.goto(&format!("{base}/activity")).await;
                let denied = driver.source().await;
                assert!(denied.contains("may not perform events.search"), "{denied}");
            }
            Role::NetworkManager => {
                driver.goto(&format!("{base}/audit")).await;
                let audit = driver.source().await;
                assert!(audit.contains("Chain verified"), "{audit}");
                assert!(audit.contains("signin.failure"), "the wrong password");
            }
            _ => {}
        }
    }

    // An expired session: 31 idle minutes later the page sends the browser to sign in.
    let teacher = account(Role::Teacher);
    driver
        .sign_in(&base, &teacher.username, &teacher.password)
        .await;
    driver.goto(&format!("{base}/dashboard")).await;
    assert!(driver.url().await.ends_with("/dashboard"));
    server.clock.advance(Duration::from_secs(31 * 60));
    driver.goto(&format!("{base}/dashboard")).await;
    assert!(
        driver.url().await.ends_with("/login"),
        "an idle session must end"
    );

    // A form posted without its CSRF token is refused and changes nothing.
    let dpo = account(Role::Dpo);
    driver.sign_in(&base, &dpo.username, &dpo.password).await;
    driver
        .run("document.querySelector('header form input[name=csrf_token]').remove();")
        .await;
    driver.click("header form button").await;
    let refused = driver.source_with("CSRF").await;
    assert!(refused.contains("missing or wrong CSRF token"), "{refused}");
    driver.goto(&format!("{base}/dashboard")).await;
    assert!(
        driver.url().await.ends_with("/dashboard"),
        "the session survived the forged sign-out"
    );

    // The network manager's dashboard, photographed.
    let nm = account(Role::NetworkManager);
    let html = driver.sign_in(&base, &nm.username, &nm.password).await;
    let bars = html.matches("class=\"bar\"").count();
    assert!(bars >= 8, "only {bars} bars on the dashboard");
    let png = driver.s("GET", "/screenshot", None).await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap())
        .unwrap();
    let (w, h) = png_size(&bytes);
    assert!(w >= 1000 && h >= 600, "a {w}x{h} screenshot");
    // A blank page of this size compresses to a few KB; text and charts do not.
    assert!(bytes.len() > 30_000, "a {} byte screenshot", bytes.len());
    let path = screenshot_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    eprintln!(
        "dashboard screenshot: {} ({w}x{h}, {} bytes, {bars} bars)",
        path.display(),
        bytes.len()
    );

    // Signing out from the page ends the session.
    driver.click("header form button").await;
    driver.source_with("id=\"signin\"").await;
    assert!(driver.url().await.ends_with("/login"));
    driver.goto(&format!("{base}/dashboard")).await;
    assert!(driver.url().await.ends_with("/login"));
    let _ = driver.s("DELETE", "", None).await;
    server.stop().await.unwrap();
}
