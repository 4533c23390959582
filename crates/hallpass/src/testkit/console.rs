//! Signed-in console clients for tests: [`super::TestServer::client_for`] signs in as the
//! account of a role (the demo's, read from the banner `serve` prints, or one a test
//! asked for in [`super::TestOptions::accounts`]) through `POST /api/v1/login`, and hands
//! back a client that sends the session cookie on every request and the CSRF token on
//! every state-changing one, as a browser page would.

use std::net::SocketAddr;

use anyhow::Context;
use hallpass_web::Role;
use reqwest::header::{COOKIE, HeaderMap, HeaderValue};

/// A console account a test can sign in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestAccount {
    pub role: Role,
    pub username: String,
    pub password: String,
}

/// The demo's accounts, from the banner lines the console prints:
/// `Demo console accounts ...` followed by `ROLE USERNAME PASSWORD` lines.
pub fn accounts_from_banner(banner: &[String]) -> Vec<TestAccount> {
    banner
        .iter()
        .skip_while(|line| !line.starts_with("Demo console accounts"))
        .skip(1)
        .map_while(|line| {
            let mut words = line.split_whitespace();
            let role = words.next()?.parse::<Role>().ok()?;
            let username = words.next()?.to_string();
            let password = words.next()?.to_string();
            Some(TestAccount {
                role,
                username,
                password,
            })
        })
        .collect()
}

/// A plain client for the console: no cookies kept, redirects not followed (a test sees
/// the 303 to `/login` itself).
pub fn anonymous_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building an HTTP client")
}

/// What `POST /api/v1/login` answered.
#[derive(Debug)]
pub struct LoginAnswer {
    pub status: u16,
    /// The session cookie (`hallpass_session=...`), when one was set.
    pub cookie: Option<String>,
    pub body: serde_json::Value,
}

/// `POST /api/v1/login {"username", "password"}` from a fresh client.
pub async fn login(web: SocketAddr, username: &str, password: &str) -> anyhow::Result<LoginAnswer> {
    let body = serde_json::json!({ "username": username, "password": password });
    let response = anonymous_client()?
        .post(format!("http://{web}/api/v1/login"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .context("POST /api/v1/login")?;
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(hallpass_web::auth::SESSION_COOKIE))
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    let text = response.text().await.context("reading the sign-in reply")?;
    let body = serde_json::from_str(&text)
        .with_context(|| format!("the sign-in reply is not JSON: {text:?}"))?;
    Ok(LoginAnswer {
        status,
        cookie,
        body,
    })
}

/// A client signed in to the console as one account.
#[derive(Debug, Clone)]
pub struct ConsoleClient {
    /// Sends the session cookie on every request; follows no redirects.
    pub http: reqwest::Client,
    /// `http://ADDR` of the console.
    pub base: String,
    pub account: TestAccount,
    /// The session's CSRF token (sent as `X-CSRF-Token` by [`ConsoleClient::post`]).
    pub csrf_token: String,
    /// `hallpass_session=SECRET`, for a test that hands the session to another client.
    pub cookie: String,
}

impl ConsoleClient {
    /// Signs in as `account` on the console at `web`; `Err` when sign-in is refused.
    pub async fn sign_in(web: SocketAddr, account: &TestAccount) -> anyhow::Result<ConsoleClient> {
        let answer = login(web, &account.username, &account.password).await?;
        anyhow::ensure!(
            answer.status == 200,
            "signing in as {} ({}) was refused: {} {}",
            account.username,
            account.role,
            answer.status,
            answer.body
        );
        let cookie = answer
            .cookie
            .context("the sign-in reply set no session cookie")?;
        let csrf_token = answer.body["csrf_token"]
            .as_str()
            .context("the sign-in reply has no csrf_token")?
            .to_string();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&cookie).context("the session cookie is not a header value")?,
        );
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .context("building an HTTP client")?;
        Ok(ConsoleClient {
            http,
            base: format!("http://{web}"),
            account: account.clone(),
            csrf_token,
            cookie,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path` with the session cookie.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path))
    }

    /// `POST path` with the session cookie and the CSRF token.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .header(hallpass_web::auth::CSRF_HEADER, &self.csrf_token)
    }

    /// `DELETE path` with the session cookie and the CSRF token.
    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .delete(self.url(path))
            .header(hallpass_web::auth::CSRF_HEADER, &self.csrf_token)
    }

    /// `POST path` with the cookie but without the CSRF token (to see it refused).
    pub fn post_without_csrf(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path))
    }

    /// `GET path`: the status and the body as JSON (`Null` when it is not JSON).
    pub async fn get_json(&self, path: &str) -> anyhow::Result<(u16, serde_json::Value)> {
        let response = self
            .get(path)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or_default()))
    }
}
