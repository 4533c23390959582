//! A real browser: Debian's Chromium driven over WebDriver (chromedriver), signing in as
//! each role through the sign-in form and checking what each one's pages show; then a
//! screenshot of the dashboard with its charts. Under CI (CI=true) a missing Chromium
//! fails the test; elsewhere it is skipped with a loud message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

#[path = "console/kit.rs"]
#[allow(dead_code)] // the kit serves the console suite too
mod kit;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Option<Driver> {
        let present =
            std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
        if !present {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{CHROMIUM} or {CHROMEDRIVER} is missing under CI: apt-get install -y chromium chromium-driver"
                );
            }
            eprintln!(
                "\n!!!!! SKIPPING the browser test: {CHROMIUM} / {CHROMEDRIVER} not installed !!!!!\n"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let profile = tempfile::tempdir().unwrap();
        let mut driver = Driver {
            child,
            base,
            http,
            session: String::new(),
            _profile: profile,
        };
        // Wait for the driver to listen (bounded).
        for _ in 0..100 {
            if driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--no-first-run",
                         "--window-size=1280,2000",
                         format!("--user-data-dir={}", driver._profile.path().display())]
            }
        }}});
        let v = driver.call("POST", "/session", Some(caps)).await;
        driver.session = v["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_string();
        Some(driver)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "POST" => self.http.post(&url).json(&body.unwrap_or(json!({}))),
            "DELETE" => self.http.delete(&url),
            _ => self.http.get(&url),
        };
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(
            v["value"]["error"].is_null(),
            "WebDriver {method} {path}: {v}"
        );
        v.get("value").cloned().unwrap_or(Value::Null)
    }

    async fn s(&self, method: &str, rest: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{rest}", self.session), body)
            .await
    }

    async fn goto(&self, url: &str) {
        self.s("POST", "/url", Some(json!({ "url": url }))).await;
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .s(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap()
            .to_string()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.s(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.s("POST", &format!("/element/{id}/click"), None).await;
    }

    async fn source(&self) -> String {
        self.s("GET", "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The page source once it contains `marker` (a form submit navigates after the
    /// click returns); the last source seen after 10 s otherwise.
    async fn source_with(&self, marker: &str) -> String {
        let mut html = String::new();
        for _ in 0..100 {
            html = self.source().await;
            if html.contains(marker) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        html
    }

    async fn url(&self) -> String {
        self.s("GET", "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn delete_cookies(&self) {
        self.s("DELETE", "/cookie", None).await;
    }
}

/// The navigation links each role should see, by label.
fn expected_nav(role: hallpass_web::Role) -> Vec<&'static str> {
    use hallpass_web::Role::*;
    match role {
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
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_signs_in_with_a_browser_and_sees_its_pages() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let kit = kit::start().await;

    // A wrong password is refused on the page.
    driver.goto(&format!("{}/login", kit.base)).await;
    driver.type_into("#username", "nina.netman").await;
    driver.type_into("#password", "wrong-password-here").await;
    driver.click("#signin").await;
    let html = driver.source_with("wrong username").await;
    assert!(html.contains("wrong username or password"), "{html}");

    for (username, _, _, _, role) in kit::PEOPLE {
        driver.delete_cookies().await;
        driver.goto(&format!("{}/login", kit.base)).await;
        driver.type_into("#username", username).await;
        driver
            .type_into("#password", &kit::password_for(username))
            .await;
        driver.click("#signin").await;
        let html = driver.source_with("id=\"whoami\"").await;
        assert!(
            html.contains(&format!("{username} ({role})")),
            "{role}: {html}"
        );
        for label in ["Dashboard", "Activity", "My activity", "People", "Audit"] {
            let link = format!(">{label}</a>");
            let shown = html.contains(&link);
            assert_eq!(
                shown,
                expected_nav(*role).contains(&label),
                "{role}: nav {label}"
            );
        }
        let landed = driver.url().await;
        if *role == hallpass_web::Role::Student {
            assert!(landed.ends_with("/my-activity"), "{landed}");
            assert!(
                html.contains("www.bbc.co.uk"),
                "the student sees their own events"
            );
            assert!(!html.contains("ben.student"));
            driver.goto(&format!("{}/dashboard", kit.base)).await;
            let denied = driver.source().await;
            assert!(
                denied.contains("may not perform dashboard.view"),
                "{denied}"
            );
        } else {
            assert!(landed.ends_with("/dashboard"), "{role}: {landed}");
            assert!(html.contains("<svg"), "{role}: charts drawn");
            assert!(html.contains("www.roblox.com"), "{role}: top blocked sites");
        }
        if *role == hallpass_web::Role::Dsl {
            driver
                .goto(&format!("{}/activity?person=ben.student", kit.base))
                .await;
            let html = driver.source().await;
            assert!(html.contains("www.bet365.com"), "{html}");
        }
        if *role == hallpass_web::Role::Teacher {
            driver.goto(&format!("{}/activity", kit.base)).await;
            assert!(
                driver
                    .source()
                    .await
                    .contains("may not perform events.search")
            );
        }
    }

    // The network manager's dashboard, photographed.
    driver.delete_cookies().await;
    driver.goto(&format!("{}/login", kit.base)).await;
    driver.type_into("#username", "nina.netman").await;
    driver
        .type_into("#password", &kit::password_for("nina.netman"))
        .await;
    driver.click("#signin").await;
    driver.source_with("<svg").await;
    let png = driver.s("GET", "/screenshot", None).await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap())
        .unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("console-dashboard.png");
    std::fs::write(&path, &bytes).unwrap();
    println!("dashboard screenshot: {}", path.display());
    eprintln!("dashboard screenshot: {}", path.display());

    // Signing out from the page ends the session.
    driver.click("header form button").await;
    driver.source_with("id=\"signin\"").await;
    assert!(driver.url().await.ends_with("/login"));
    driver.goto(&format!("{}/dashboard", kit.base)).await;
    assert!(driver.url().await.ends_with("/login"));
    let _ = driver.s("DELETE", "", None).await;
}
