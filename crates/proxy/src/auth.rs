//! Proxy authentication for shared machines (`[proxy] auth = true`): a client with no
//! logon session at its address is asked (`407`, `Proxy-Authenticate: Basic`) for a
//! username and password, checked by an [`Authenticator`] (in `serve`: the console's
//! accounts, so a pupil signs in with the account the school gave them). Credentials,
//! when sent, identify the request even at an address with a session: on a shared
//! machine the person at the keyboard is who signed in to the proxy.
//!
//! A password hash takes tens of milliseconds to check, and a browser sends the
//! credentials with every request: a successful check is remembered for a few minutes
//! under the SHA-256 of the username and password (never the password itself).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hallpass_engine::Person;
use sha2::{Digest as _, Sha256};

/// How long a successful check is remembered.
pub const REMEMBER: Duration = Duration::from_secs(300);
/// Remembered checks at most (cleared wholesale when full: they are only a cache).
const MAX_REMEMBERED: usize = 100_000;

/// Checks a username and password; the person they identify, or `None`.
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate(
        &self,
        username: String,
        password: String,
    ) -> Pin<Box<dyn Future<Output = Option<Person>> + Send + 'static>>;
}

/// The username and password of a `Basic` credential (RFC 7617), if it is one.
pub fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (username, password) = text.split_once(':')?;
    (!username.is_empty()).then(|| (username.to_string(), password.to_string()))
}

/// The `Proxy-Authenticate` challenge.
pub fn challenge(realm: &str) -> String {
    let realm: String = realm
        .chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect();
    format!("Basic realm=\"{realm}\", charset=\"UTF-8\"")
}

/// The SHA-256 of a username and password.
type CredentialsHash = [u8; 32];

/// Successful checks, remembered for [`REMEMBER`]: the person and until when.
#[derive(Default)]
pub struct Remembered {
    entries: Mutex<HashMap<CredentialsHash, (Arc<Person>, Instant)>>,
}

impl Remembered {
    fn key(username: &str, password: &str) -> CredentialsHash {
        let mut hash = Sha256::new();
        hash.update(username.as_bytes());
        hash.update([0u8]);
        hash.update(password.as_bytes());
        hash.finalize().into()
    }

    /// The person remembered for these credentials at `now`.
    pub fn get(&self, username: &str, password: &str, now: Instant) -> Option<Arc<Person>> {
        let key = Self::key(username, password);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&key)
            .filter(|(_, until)| now < *until)
            .map(|(person, _)| Arc::clone(person))
    }

    pub fn put(&self, username: &str, password: &str, person: Arc<Person>, now: Instant) {
        let key = Self::key(username, password);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_REMEMBERED {
            entries.clear();
        }
        entries.insert(key, (person, now + REMEMBER));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn basic_credentials() {
        // "ava.student:pa:ss" (a colon in the password is the password's).
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ava.student:pa:ss")
        );
        assert_eq!(
            parse_basic(&header),
            Some(("ava.student".into(), "pa:ss".into()))
        );
        assert_eq!(parse_basic("basic YTpi"), Some(("a".into(), "b".into())));
        for bad in [
            "Bearer abc",
            "Basic",
            "Basic !!!",
            "Basic OmI=",
            "Basic YWJj",
        ] {
            assert_eq!(parse_basic(bad), None, "{bad}");
        }
    }

    #[test]
    fn remembered_until_it_expires() {
        let remembered = Remembered::default();
        let person = Arc::new(Person {
            username: Arc::from("ava.student"),
            role: "student".into(),
            year_group: Some("9".into()),
            memberships: Vec::new(),
            accepted: Default::default(),
        });
        let start = hallpass_clock::Clock::manual().instant();
        remembered.put("ava.student", "right", person, start);
        assert!(remembered.get("ava.student", "right", start).is_some());
        assert!(remembered.get("ava.student", "wrong", start).is_none());
        assert!(remembered.get("ava.studen", "tright", start).is_none());
        assert!(
            remembered
                .get("ava.student", "right", start + REMEMBER)
                .is_none()
        );
    }

    #[test]
    fn challenges_cannot_break_the_header() {
        assert_eq!(
            challenge("W\"CS\\ proxy"),
            "Basic realm=\"WCS proxy\", charset=\"UTF-8\""
        );
    }
}
