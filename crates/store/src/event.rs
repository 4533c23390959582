//! The event record: one row per filtering decision or observation.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// The verdict string that counts as a blocked attempt in reports (and in the partial index
/// `events_blocked_at` and the `blocked_daily` roll-up). Enforcement points must record
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

/// An event's id, the `events` table's 64-bit integer primary key: the event's time in
/// milliseconds since the Unix epoch (42 bits, to the year 2109), then the recording
/// writer's slot (9 bits), then a sequence number within the millisecond (12 bits).
///
/// Time first, so the primary key is also the time index (retention and time ranges scan a
/// key range) and inserts append at its end. An integer rather than a 16-byte uid, because
/// SQLite stores an integer key as the row's own address: `store-layouts` measured about a
/// fifth less CPU per DNS query event, and rows 20 bytes smaller. A writer makes its ids
/// unique itself (see [`EventIds`]); two writers sharing a database take random slots,
/// and a clash is caught by the insert and mended (see `writer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub i64);

impl EventId {
    const SEQ_BITS: u32 = 12;
    const SLOT_BITS: u32 = 9;
    const MS_SHIFT: u32 = Self::SEQ_BITS + Self::SLOT_BITS;
    const MAX_MS: i64 = (1 << (63 - Self::MS_SHIFT)) - 1;
    const LOW_MASK: i64 = (1 << Self::MS_SHIFT) - 1;
    /// Writer slots: ids from different slots never collide.
    pub(crate) const SLOTS: u16 = 1 << Self::SLOT_BITS;

    /// The smallest id of any event at or after `at_us` (microseconds since the epoch), to
    /// turn a time bound into a key bound.
    pub fn floor(at_us: i64) -> EventId {
        EventId::at(at_us.div_euclid(1000), 0)
    }

    /// The id of millisecond `ms` (clamped to the range ids cover) whose low 21 bits (slot
    /// and sequence) are `low`.
    fn at(ms: i64, low: i64) -> EventId {
        EventId((ms.clamp(0, Self::MAX_MS) << Self::MS_SHIFT) | (low & Self::LOW_MASK))
    }

    /// The millisecond the id was made for.
    pub fn millis(self) -> i64 {
        self.0 >> Self::MS_SHIFT
    }

    pub(crate) fn slot(self) -> i64 {
        (self.0 >> Self::SEQ_BITS) & ((1 << Self::SLOT_BITS) - 1)
    }

    fn first(ms: i64, slot: i64) -> EventId {
        EventId::at(ms, slot << Self::SEQ_BITS)
    }

    /// A slot picked at random.
    fn random_slot() -> i64 {
        i64::from(rand::random::<u16>() % Self::SLOTS)
    }

    /// This id, then the same millisecond and sequence number in each other slot: where a
    /// replayed event goes when another event has its id. The same order every time, so
    /// replaying it again finds it where it went.
    pub fn alternatives(self) -> impl Iterator<Item = EventId> {
        let slot = self.slot();
        let rest = self.0 & !(((1 << Self::SLOT_BITS) - 1) << Self::SEQ_BITS);
        (0..i64::from(Self::SLOTS))
            .map(move |k| EventId(rest | (((slot + k) % i64::from(Self::SLOTS)) << Self::SEQ_BITS)))
    }

    /// The id an event spilled by a version that keyed events by a 16-byte uid (32 hex
    /// digits: 6 bytes of milliseconds, 10 random) gets: its millisecond, and 21 of its
    /// random bits in place of slot and sequence.
    pub(crate) fn from_legacy_uid(hex: &str) -> Option<EventId> {
        let b: [u8; 16] = hex::decode(hex).ok()?.try_into().ok()?;
        let mut ms = [0u8; 8];
        ms[2..].copy_from_slice(&b[..6]);
        let low = i64::from(u32::from_be_bytes([b[6], b[7], b[8], b[9]]));
        Some(EventId::at(i64::from_be_bytes(ms), low))
    }
}

/// Hands out [`EventId`]s for one writer: increasing, unique within the writer, in the
/// writer's slot. Shared by every thread that records through the writer (one atomic
/// compare-and-swap per event).
#[derive(Debug)]
pub(crate) struct EventIds {
    slot: AtomicI64,
    last: AtomicI64,
    /// Tells a late event from a clock that went back.
    clock: hallpass_clock::Clock,
}

impl EventIds {
    /// How far out of order an event may come and still take the last id's millisecond.
    const LATE_MS: i64 = 1_000;

    /// A generator in a random slot.
    pub(crate) fn new() -> EventIds {
        EventIds {
            slot: AtomicI64::new(EventId::random_slot()),
            last: AtomicI64::new(0),
            clock: hallpass_clock::Clock::system(),
        }
    }

    /// The next id for an event at `at`: in the event's millisecond, or in the last id's if
    /// that is later by less than [`EventIds::LATE_MS`] (threads record concurrently, so
    /// events arrive a little out of order; ids never go back, so none is reused). More
    /// than 4,096 in one millisecond borrow the next. An event later than that (an import,
    /// an old spill file) keeps its own millisecond, so that retention finds it by its
    /// time, with 21 random bits: a clash with another id is unlikely, and caught and
    /// mended like a clash between writers. A current event far behind the last id means
    /// the system clock went back: the writer moves to another slot and starts again.
    pub(crate) fn next(&self, at: jiff::Timestamp) -> EventId {
        let at_ms = at.as_millisecond();
        let mut last = self.last.load(Relaxed);
        if at_ms + Self::LATE_MS < EventId(last).millis() {
            let now_ms = self.clock.now().as_millisecond();
            if (now_ms - at_ms).abs() > Self::LATE_MS {
                return EventId::at(at_ms, i64::from(rand::random::<u32>()));
            }
            // A current event far behind the last id: the clock went back. Start again
            // from now in another slot, where this writer has made no ids.
            self.change_slot();
            last = 0;
            self.last.store(last, Relaxed);
        }
        let slot = self.slot.load(Relaxed);
        loop {
            let prev = EventId(last);
            let ms = at_ms.max(prev.millis());
            let id = if ms == prev.millis() && prev.slot() == slot {
                let next = EventId(last + 1);
                if next.slot() == slot {
                    next
                } else {
                    EventId::first(ms + 1, slot)
                }
            } else {
                EventId::first(ms, slot)
            };
            match self
                .last
                .compare_exchange_weak(last, id.0, Relaxed, Relaxed)
            {
                Ok(_) => return id,
                Err(now) => last = now,
            }
        }
    }

    /// Move to another random slot: another writer is using this one (its ids clashed
    /// with ours).
    pub(crate) fn change_slot(&self) {
        let old = self.slot.load(Relaxed);
        let mut new = old;
        while new == old {
            new = EventId::random_slot();
        }
        self.slot.store(new, Relaxed);
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

    #[test]
    fn ids_are_unique_increasing_and_ordered_by_time() {
        let ids = std::sync::Arc::new(EventIds::new());
        let at = jiff::Timestamp::from_millisecond(1_795_402_475_727).unwrap();
        let per_thread: Vec<Vec<i64>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let ids = ids.clone();
                    s.spawn(move || (0..5_000).map(|_| ids.next(at).0).collect::<Vec<_>>())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for thread in &per_thread {
            assert!(
                thread.windows(2).all(|w| w[0] < w[1]),
                "increasing per thread"
            );
        }
        let mut all: Vec<i64> = per_thread.concat();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 20_000, "unique");
        // 20,000 ids in one millisecond borrow the following ones, 4,096 each, in one slot.
        let first = EventId(all[0]);
        let last = EventId(*all.last().unwrap());
        assert_eq!(first.millis(), at.as_millisecond());
        assert_eq!(last.millis(), at.as_millisecond() + 4);
        assert!(all.iter().all(|&id| EventId(id).slot() == first.slot()));
        // The floor of the event's time is at or below every id, and above the previous ms.
        let floor = EventId::floor(at.as_microsecond());
        assert!(floor <= first && EventId::floor(at.as_microsecond() - 1000) < floor);
        assert!(floor.0 + (1 << EventId::MS_SHIFT) > first.0);
    }

    #[test]
    fn late_events_and_a_new_slot() {
        let ids = EventIds::new();
        let now = jiff::Timestamp::from_millisecond(1_795_402_475_727).unwrap();
        let a = ids.next(now);
        let late = ids.next(now - jiff::SignedDuration::from_millis(300));
        assert!(late > a, "ids never go back");
        assert_eq!(late.millis(), a.millis());
        // Much later than that: its own millisecond, for retention.
        let old = now - jiff::SignedDuration::from_hours(24 * 100);
        let imported = ids.next(old);
        assert_eq!(imported.millis(), old.as_millisecond());
        assert!(imported < EventId::floor(old.as_microsecond() + 1000));
        assert!(
            ids.next(now) > late,
            "the late one did not move the others back"
        );
        let slot = a.slot();
        ids.change_slot();
        let b = ids.next(now);
        assert_ne!(b.slot(), slot);
        assert_ne!(b, a);
    }

    #[test]
    fn alternatives_start_with_the_id_and_keep_its_millisecond() {
        let id =
            EventIds::new().next(jiff::Timestamp::from_millisecond(1_795_402_475_727).unwrap());
        let all: Vec<EventId> = id.alternatives().collect();
        assert_eq!(all[0], id);
        assert_eq!(all.len(), usize::from(EventId::SLOTS));
        assert!(
            all.iter()
                .all(|a| a.millis() == id.millis() && a.0 & 0xFFF == id.0 & 0xFFF)
        );
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
    }

    #[test]
    fn a_legacy_uid_keeps_its_millisecond() {
        let ms: i64 = 1_795_402_475_727;
        let mut uid = [0xA5u8; 16];
        uid[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
        let id = EventId::from_legacy_uid(&hex::encode(uid)).unwrap();
        assert_eq!(id.millis(), ms);
        assert!(EventId::from_legacy_uid("00ff").is_none());
    }
}
