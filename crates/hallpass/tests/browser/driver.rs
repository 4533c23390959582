//! A minimal WebDriver client for Debian's Chromium: start chromedriver, open a session,
//! navigate, type, click and read the page.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    profile: tempfile::TempDir,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Bounded polling for the browser: the test kit's clock is manual, so real waits here
/// use tokio's timer (the server never reads it).
pub async fn pause() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

impl Driver {
    pub async fn start() -> Option<Driver> {
        Driver::start_with(&[]).await
    }

    /// With extra Chromium arguments (`--host-resolver-rules=...` to send a name to the
    /// block page as a DNS block answer would).
    pub async fn start_with(extra_args: &[String]) -> Option<Driver> {
        let present =
            std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
        if !present {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{CHROMIUM} or {CHROMEDRIVER} is missing under CI: \
                     apt-get install -y chromium chromium-driver (.ci/console-e2e.sh does)"
                );
            }
            eprintln!(
                "\n!!!!! SKIPPING the browser test: {CHROMIUM} / {CHROMEDRIVER} not installed \
                 (apt-get install chromium chromium-driver) !!!!!\n"
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
        let mut driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            profile: tempfile::tempdir().unwrap(),
            session: String::new(),
        };
        let mut up = false;
        for _ in 0..100 {
            let status = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await;
            if status.is_ok() {
                up = true;
                break;
            }
            pause().await;
        }
        assert!(up, "chromedriver did not listen on {port} within 10 s");
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--no-first-run",
            "--window-size=1280,1800",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!(
            "--user-data-dir={}",
            driver.profile.path().display()
        ));
        args.extend(extra_args.iter().cloned());
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args }
        }}});
        let v = driver.call("POST", "/session", Some(caps)).await;
        driver.session = v["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_string();
        Some(driver)
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "POST" => self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(body.unwrap_or(json!({})).to_string()),
            "DELETE" => self.http.delete(&url),
            _ => self.http.get(&url),
        };
        let text = req.send().await.unwrap().text().await.unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(
            v["value"]["error"].is_null(),
            "WebDriver {method} {path}: {v}"
        );
        v.get("value").cloned().unwrap_or(Value::Null)
    }

    pub async fn s(&self, method: &str, rest: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{rest}", self.session), body)
            .await
    }

    pub async fn goto(&self, url: &str) {
        self.s("POST", "/url", Some(json!({ "url": url }))).await;
    }

    pub async fn element(&self, css: &str) -> String {
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

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.s("POST", &format!("/element/{id}/clear"), None).await;
        self.s(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.s("POST", &format!("/element/{id}/click"), None).await;
    }

    /// Runs `script` in the page (WebDriver's script runs outside the page's CSP).
    pub async fn run(&self, script: &str) -> Value {
        self.s(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    pub async fn source(&self) -> String {
        self.s("GET", "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The page source once it contains `marker` (a form submit navigates after the
    /// click returns); the last source seen after 10 s otherwise.
    pub async fn source_with(&self, marker: &str) -> String {
        let mut html = String::new();
        for _ in 0..100 {
            html = self.source().await;
            if html.contains(marker) {
                break;
            }
            pause().await;
        }
        html
    }

    pub async fn url(&self) -> String {
        self.s("GET", "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn delete_cookies(&self) {
        self.s("DELETE", "/cookie", None).await;
    }

    /// Signs in through the form and returns the page it lands on.
    pub async fn sign_in(&self, base: &str, username: &str, password: &str) -> String {
        self.delete_cookies().await;
        self.goto(&format!("{base}/login")).await;
        self.type_into("#username", username).await;
        self.type_into("#password", password).await;
        self.click("#signin").await;
        self.source_with("id=\"whoami\"").await
    }
}
