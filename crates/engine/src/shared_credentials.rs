//! Shared credentials: one account logged on at two devices at once ("must not use anyone
//! else's log-in", WCS ICT policy 2.2; the trust's policy: "You share your username and
//! password(s) with another person"). Pure: given the open sessions and the time, it
//! says which pairs have overlapped for longer than the grace.
//!
//! A device is its workstation name when the session has one (so one laptop's wired and
//! Wi-Fi addresses are one device), otherwise its address. Each finding carries a key
//! made of both sessions' address and start time, so whoever records it can recognise a
//! pair it has seen before and raise exactly one alert for it.

use std::collections::BTreeMap;
use std::time::Duration;

use hallpass_store::sessions::ActiveSession;

/// Two open sessions of one account on different devices, overlapping beyond the grace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedLogin<'a> {
    pub username: &'a str,
    /// The earlier session first.
    pub sessions: [&'a ActiveSession; 2],
    /// How long both have been open.
    pub overlap: Duration,
    /// Stable for this pair of sessions: `shared-credentials:USER:IP@START|IP@START`.
    pub key: String,
}

/// The device a session is on: the workstation name (case-insensitive) when known.
fn device(session: &ActiveSession) -> String {
    match session.workstation.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => format!("ws:{}", name.to_ascii_lowercase()),
        _ => format!("ip:{}", session.ip),
    }
}

/// Every pair of `sessions` of one account on two devices that have both been open for
/// longer than `grace` at `now`, ordered by username then start.
pub fn find(
    sessions: &[ActiveSession],
    grace: Duration,
    now: jiff::Timestamp,
) -> Vec<SharedLogin<'_>> {
    let mut by_user: BTreeMap<&str, Vec<&ActiveSession>> = BTreeMap::new();
    for session in sessions {
        by_user.entry(&session.username).or_default().push(session);
    }
    let mut found = Vec::new();
    for (username, mut own) in by_user {
        if own.len() < 2 {
            continue;
        }
        own.sort_by_key(|s| (s.started, s.ip));
        for (i, first) in own.iter().enumerate() {
            for second in &own[i + 1..] {
                if device(first) == device(second) {
                    continue;
                }
                // Both open since the later start.
                let since = second.started.max(first.started);
                let overlap = now.duration_since(since);
                let Ok(overlap) = Duration::try_from(overlap) else {
                    continue; // started in the future: clocks disagree, not evidence
                };
                if overlap <= grace {
                    continue;
                }
                let key = format!(
                    "shared-credentials:{username}:{}@{}|{}@{}",
                    first.ip,
                    first.started.as_microsecond(),
                    second.ip,
                    second.started.as_microsecond()
                );
                found.push(SharedLogin {
                    username,
                    sessions: [first, second],
                    overlap,
                    key,
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(user: &str, ip: &str, ws: Option<&str>, started: &str) -> ActiveSession {
        let started: jiff::Timestamp = started.parse().unwrap();
        ActiveSession {
            ip: ip.parse().unwrap(),
            username: user.into(),
            display_name: user.into(),
            role: "student".into(),
            year_group: Some("9".into()),
            form: None,
            groups: vec![],
            workstation: ws.map(Into::into),
            started,
            last_seen: started,
        }
    }

    const GRACE: Duration = Duration::from_secs(120);

    #[test]
    fn two_workstations_beyond_the_grace_are_one_finding() {
        let s = [
            session("ava", "10.0.0.1", Some("WS-1"), "2026-12-07T09:00:00Z"),
            session("ava", "10.0.0.2", Some("WS-2"), "2026-12-07T09:01:00Z"),
            session("ben", "10.0.0.3", Some("WS-3"), "2026-12-07T09:00:00Z"),
        ];
        let now: jiff::Timestamp = "2026-12-07T09:05:00Z".parse().unwrap();
        let found = find(&s, GRACE, now);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].username, "ava");
        assert_eq!(found[0].overlap, Duration::from_secs(240));
        assert_eq!(found[0].sessions[0].workstation.as_deref(), Some("WS-1"));
        // The key is the same at a later check: the recorder recognises the pair.
        let later = find(&s, GRACE, "2026-12-07T09:30:00Z".parse().unwrap());
        assert_eq!(later[0].key, found[0].key);
    }

    #[test]
    fn within_the_grace_is_nothing() {
        let s = [
            session("ava", "10.0.0.1", Some("WS-1"), "2026-12-07T09:00:00Z"),
            session("ava", "10.0.0.2", Some("WS-2"), "2026-12-07T09:04:00Z"),
        ];
        let now: jiff::Timestamp = "2026-12-07T09:05:00Z".parse().unwrap();
        assert!(find(&s, GRACE, now).is_empty());
    }

    #[test]
    fn one_device_with_two_addresses_is_not_shared() {
        let s = [
            session("ava", "10.0.0.1", Some("LAPTOP-7"), "2026-12-07T09:00:00Z"),
            session("ava", "10.9.0.1", Some("laptop-7"), "2026-12-07T09:00:00Z"),
        ];
        let now: jiff::Timestamp = "2026-12-07T10:00:00Z".parse().unwrap();
        assert!(find(&s, GRACE, now).is_empty());
    }

    #[test]
    fn without_workstation_names_addresses_tell_devices_apart() {
        let s = [
            session("ava", "10.0.0.1", None, "2026-12-07T09:00:00Z"),
            session("ava", "10.0.0.2", Some(" "), "2026-12-07T09:00:00Z"),
        ];
        let now: jiff::Timestamp = "2026-12-07T10:00:00Z".parse().unwrap();
        assert_eq!(find(&s, GRACE, now).len(), 1);
    }

    #[test]
    fn three_devices_are_three_pairs() {
        let s = [
            session("ava", "10.0.0.1", Some("A"), "2026-12-07T09:00:00Z"),
            session("ava", "10.0.0.2", Some("B"), "2026-12-07T09:00:00Z"),
            session("ava", "10.0.0.3", Some("C"), "2026-12-07T09:00:00Z"),
        ];
        let now: jiff::Timestamp = "2026-12-07T10:00:00Z".parse().unwrap();
        let keys: std::collections::BTreeSet<_> =
            find(&s, GRACE, now).into_iter().map(|f| f.key).collect();
        assert_eq!(keys.len(), 3);
    }
}
