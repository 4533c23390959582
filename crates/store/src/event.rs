//! The event record: one row per filtering decision or observation.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The verdict string that counts as a blocked attempt in reports (and in the
/// `traffic_daily` roll-up). Enforcement points must record
/// blocked requests with exactly this verdict.
pub const VERDICT_BLOCK: &str = "block";

/// What kind of request or observation an event records. Retention is per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Dns,
    Web,
    Mail,
    File,
    Logon,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::Dns,
        EventKind::Web,
        EventKind::Mail,
        EventKind::File,
        EventKind::Logon,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Dns => "dns",
            EventKind::Web => "web",
            EventKind::Mail => "mail",
            EventKind::File => "file",
            EventKind::Logon => "logon",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown event kind {s:?} (dns, web, mail, file, logon)"))
    }
}

/// One decision or observation. Metadata only, except `content`, which the writer stores in
/// the separate `event_content` table keyed to the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub at: jiff::Timestamp,
    /// Username, `None` when the request could not be attributed.
    pub person: Option<String>,
    /// The person's year group when the event happened. Leave `None` and the writer fills it
    /// in from `people` (denormalised so reports need no join and keep the year the
    /// student was in at the time).
    #[serde(default)]
    pub year_group: Option<String>,
    pub client_ip: Option<IpAddr>,
    pub device: Option<String>,
    /// Host name, URL, mail sender/recipient, file path: what the request was for.
    pub target: String,
    /// Category names (catalog names), stored comma separated.
    pub categories: Vec<String>,
    /// "allow", [`VERDICT_BLOCK`], "warn", ... (borrowed when static: the DNS server sets
    /// one per query, and an allocation each was measurable).
    pub verdict: std::borrow::Cow<'static, str>,
    pub rule: Option<String>,
    pub document: Option<String>,
    pub clause: Option<String>,
    pub bytes: Option<i64>,
    /// Small metadata as a JSON object: qtype, rcode, cache_hit, upstream_ms. Keep it well
    /// under 1 KB. Kept as validated JSON text so that recording it costs no map and storing
    /// it no re-serialisation (see [`Event::set_detail`] and [`detail_json`]).
    pub detail: Option<EventDetail>,
    /// Content (a search term, a message body, a file name): goes to `event_content`.
    #[serde(default)]
    pub content: Option<String>,
    /// What a DNS query event records beyond the common fields, in typed columns: DNS is
    /// most of the events a school records, and typed columns make each row about a
    /// third smaller and cheaper to store than the same facts as JSON in `detail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsDetail>,
}

/// How a DNS query was answered (columns `dns_qtype` ... `dns_upstream_us` of `events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsDetail {
    /// The question's type (1 = A, 28 = AAAA, 65 = HTTPS, ...).
    pub qtype: u16,
    /// The response code sent (0 = NOERROR, 3 = NXDOMAIN, 2 = SERVFAIL, ...).
    pub rcode: u16,
    /// What the resolver did: "allowed", "blocked", "safe_search", "refused", ...
    pub answer: std::borrow::Cow<'static, str>,
    /// Answered from the cache without asking upstream.
    pub cache_hit: bool,
    /// Answered with expired data because every upstream failed (RFC 8767).
    #[serde(default)]
    pub stale: bool,
    /// Microseconds spent waiting on upstream, when upstream was asked.
    #[serde(default)]
    pub upstream_us: Option<u32>,
}

impl Event {
    /// A minimal event; fill the other fields with struct update syntax.
    pub fn new(kind: EventKind, at: jiff::Timestamp, target: impl Into<String>) -> Event {
        Event {
            kind,
            at,
            person: None,
            year_group: None,
            client_ip: None,
            device: None,
            target: target.into(),
            categories: Vec::new(),
            verdict: std::borrow::Cow::Borrowed("allow"),
            rule: None,
            document: None,
            clause: None,
            bytes: None,
            detail: None,
            content: None,
            dns: None,
        }
    }

    /// Set `detail` from a JSON value.
    pub fn set_detail(&mut self, value: &serde_json::Value) {
        self.detail = EventDetail::from_value(value);
    }

    pub fn is_blocked(&self) -> bool {
        self.verdict == VERDICT_BLOCK
    }
}

/// An event's small metadata object, held as JSON text. It is valid JSON by construction
/// ([`detail_json`] writes only escaped strings, integers, finite numbers and booleans;
/// [`EventDetail::from_value`] serialises a `Value`), so recording one parses nothing;
/// the spill file checks it again when it writes it as a raw JSON value.
#[derive(Debug, Clone)]
pub struct EventDetail(String);

impl EventDetail {
    pub fn from_value(value: &serde_json::Value) -> Option<EventDetail> {
        serde_json::to_string(value).ok().map(EventDetail)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for EventDetail {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EventDetail {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        Ok(EventDetail(String::from(Box::<str>::from(raw))))
    }
}

impl PartialEq for EventDetail {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

/// Builds a flat JSON object for [`Event::detail`] without an intermediate map:
/// `detail_json(|o| { o.str("qtype", "A"); o.bool("cache_hit", true); })`.
/// `None` only if the object were not valid JSON, which the builder cannot produce.
pub fn detail_json(fill: impl FnOnce(&mut DetailObject)) -> Option<EventDetail> {
    let mut o = DetailObject(Vec::with_capacity(96));
    o.0.push(b'{');
    fill(&mut o);
    o.0.push(b'}');
    String::from_utf8(o.0).ok().map(EventDetail)
}

/// The object being written by [`detail_json`]. Writing into a `Vec` cannot fail, so the
/// writers' results are ignored.
pub struct DetailObject(Vec<u8>);

impl DetailObject {
    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(b',');
        }
        let _ = serde_json::to_writer(&mut self.0, key);
        self.0.push(b':');
    }

    pub fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        let _ = serde_json::to_writer(&mut self.0, value);
    }

    pub fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.0
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    pub fn u64(&mut self, key: &str, value: u64) {
        use std::io::Write;
        self.key(key);
        let _ = write!(self.0, "{value}");
    }

    /// A number; NaN and infinities, which JSON cannot hold, are written as null.
    pub fn f64(&mut self, key: &str, value: f64) {
        use std::io::Write;
        self.key(key);
        if value.is_finite() {
            let _ = write!(self.0, "{value}");
        } else {
            self.0.extend_from_slice(b"null");
        }
    }
}

/// `ip` as text into `out`, as its `Display` writes it. IPv4 by hand: the formatting
/// machinery was about a twentieth of the writer's time.
pub(crate) fn write_ip(out: &mut String, ip: IpAddr) {
    out.clear();
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        // Writing to a String cannot fail.
        IpAddr::V6(_) => {
            let _ = write!(out, "{ip}");
        }
    }
}

/// Postgres rejects NUL in text; SQLite would keep it. Replace it so both store the same.
pub(crate) fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        let mut out = String::new();
        for a in 0..=u8::MAX {
            for ip in [
                IpAddr::from([a, 255 - a, a / 3, 7]),
                IpAddr::from([10, a, 0, a]),
                IpAddr::from([0, 0, 0, 0, 0, 0xffff, u16::from(a) << 8, u16::from(a)]),
            ] {
                write_ip(&mut out, ip);
                assert_eq!(out, ip.to_string());
            }
        }
    }

    #[test]
    fn detail_json_writes_a_valid_escaped_object() {
        let d = detail_json(|o| {
            o.u64("qtype", 28);
            o.str("answer", "blo\"ck\n\u{0}");
            o.bool("cache_hit", false);
            o.f64("upstream_ms", 1.5);
            o.f64("bad", f64::NAN);
        })
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(d.as_str()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"qtype": 28, "answer": "blo\"ck\n\u{0}", "cache_hit": false,
                "upstream_ms": 1.5, "bad": null})
        );
        assert_eq!(detail_json(|_| {}).unwrap().as_str(), "{}");
    }

    #[test]
    fn detail_round_trips_through_serde_as_an_object() {
        let mut e = Event::new(EventKind::Dns, jiff::Timestamp::UNIX_EPOCH, "a.example");
        e.set_detail(&serde_json::json!({"rcode": 3}));
        let line = serde_json::to_string(&e).unwrap();
        assert!(line.contains(r#""detail":{"rcode":3}"#), "{line}");
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, e);
    }
}
