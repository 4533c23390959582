//! Packed segments: DNS queries, most of what a school records, stored many to a row
//! (`event_segments`) as one JSON array instead of a row each.
//!
//! Why: a row per query cost the event writer 2.7-3.0 µs of CPU per query inside
//! `hallpass serve` (statement execution, 21 binds, a b-tree insert per row, an index
//! entry when blocked), more than the budget the DNS benchmark's floors leave for
//! recording. One row per segment pays those once per segment: 1.25-1.4 µs per query. JSON rather than a binary format, so that both databases
//! read segments in plain SQL: the `events` view (migration 0004) unpacks them with
//! `json_each` (SQLite) or `jsonb_array_elements` (PostgreSQL) beside the `event_rows`
//! table, and every event keeps its own id, time and fields.
//!
//! Blocked and allowed queries go in separate segments, and blocked segments have an index
//! of their own, so reports of blocked attempts read only those. Only fresh batches are
//! packed. A replayed event goes in a row, because a replay must find out, event by event,
//! whether it was stored before (see the writers).

use crate::event::{Event, EventId, EventKind, clean, write_ip};
use crate::ts_to_us;
use crate::writer::categories;

/// Most events in one segment: about 25 KB of JSON, a few overflow pages.
pub(crate) const MAX_EVENTS: usize = 256;
/// Most milliseconds between a segment's first and last id, so that the segments that may
/// hold an id are found by a short key range ([`SegmentRange::holding`]: a replay looks up
/// every event it stores, and under load a second holds hundreds of segments). A batch's
/// ids span far less unless the writer fell behind; then it makes more segments.
pub(crate) const MAX_SPAN_MS: i64 = 1_000;
/// How far past its event's time an id's millisecond may be: up to a second for a late
/// event (see `EventIds::next`); a minute leaves room for borrowed milliseconds.
const MAX_ID_AHEAD_MS: i64 = 60_000;

/// Whether a fresh event is stored packed: a DNS query without content (DNS events never
/// have content; the check keeps `event_content` whole).
pub(crate) fn packs(e: &Event) -> bool {
    e.kind == EventKind::Dns && e.content.is_none()
}

/// One `event_segments` row.
#[derive(Debug)]
pub(crate) struct Segment {
    pub first: EventId,
    pub last: EventId,
    pub kind: EventKind,
    /// Every event in it is blocked (else none is).
    pub blocked: bool,
    pub n: i64,
    /// The JSON array of events, each an array of fields (see `write_event`).
    pub events: String,
}

/// Packs `items` (fresh events, as [`packs`] chose them) into segments of one kind and
/// verdict class (blocked or not), at most [`MAX_EVENTS`] events spanning at most
/// [`MAX_SPAN_MS`] each. Sorts `items`.
pub(crate) fn pack(items: &mut [(EventId, &Event)]) -> Vec<Segment> {
    let class = |e: &Event| (e.kind as u8, e.is_blocked());
    items.sort_unstable_by_key(|(id, e)| (class(e), *id));
    let mut segments = Vec::new();
    let mut rest: &[(EventId, &Event)] = items;
    let mut ip_text = String::with_capacity(48);
    while let Some(&(first, first_event)) = rest.first() {
        let n = rest
            .iter()
            .take(MAX_EVENTS)
            .take_while(|(id, e)| {
                class(e) == class(first_event) && id.millis() - first.millis() <= MAX_SPAN_MS
            })
            .count();
        let (part, tail) = rest.split_at(n);
        let mut events = Vec::with_capacity(part.len() * 128);
        events.push(b'[');
        for (i, (id, e)) in part.iter().enumerate() {
            if i > 0 {
                events.push(b',');
            }
            write_event(&mut events, first, *id, e, &mut ip_text);
        }
        events.push(b']');
        segments.push(Segment {
            first,
            last: part[n - 1].0,
            kind: first_event.kind,
            blocked: first_event.is_blocked(),
            n: n as i64,
            // Only JSON punctuation and serde_json's escaped UTF-8 strings were written.
            events: String::from_utf8(events).unwrap_or_default(),
        });
        rest = tail;
    }
    segments
}

/// Claims on id slots, per minute, for one writer (table `event_id_claims`).
///
/// Packed events share a row, so the primary key cannot catch two writers that drew the
/// same slot and made the same ids, as it does for rows. So before a transaction stores
/// packed events it claims each (minute, slot) their ids come from, unless this writer
/// already holds it; a claim held by another writer fails the batch like a clash of row
/// ids (the writer moves to another slot, spills, and the replay gives the events rows and
/// free ids). One claim per minute and slot: the database is asked about once a minute.
#[derive(Debug)]
pub(crate) struct IdClaims {
    /// This writer, in `event_id_claims.writer`: random per run.
    pub writer: i64,
    /// Claims this writer holds, known committed.
    held: std::collections::HashSet<(i64, i64)>,
}

/// Claim a (minute, slot) for a writer (`$1`, `$2`, `$3`); both databases.
pub(crate) const CLAIM: &str = "INSERT INTO event_id_claims (minute, slot, writer) \
     VALUES ($1, $2, $3) ON CONFLICT (minute, slot) DO NOTHING";
/// Who holds a (minute, slot) (`$1`, `$2`).
pub(crate) const CLAIM_HOLDER: &str =
    "SELECT writer FROM event_id_claims WHERE minute = $1 AND slot = $2";

impl IdClaims {
    pub(crate) fn new() -> IdClaims {
        IdClaims {
            writer: rand::random::<i64>(),
            held: Default::default(),
        }
    }

    /// The (minute, slot) pairs of `packed` ids this writer does not hold yet.
    pub(crate) fn needed(&self, packed: &[(EventId, &Event)]) -> Vec<(i64, i64)> {
        let mut needed: Vec<(i64, i64)> = Vec::new();
        let mut last = None;
        for (id, _) in packed {
            let claim = (id.millis().div_euclid(60_000), id.slot());
            // Neighbours mostly share one: look each run up once.
            if last != Some(claim) && !self.held.contains(&claim) {
                needed.push(claim);
            }
            last = Some(claim);
        }
        needed.sort_unstable();
        needed.dedup();
        needed
    }

    /// `claimed` were committed: held from now on. Forgets claims more than an hour old
    /// (fresh ids are that old only after a long outage, and then they are replayed).
    pub(crate) fn committed(&mut self, claimed: Vec<(i64, i64)>) {
        if claimed.is_empty() {
            return;
        }
        self.held.extend(claimed);
        if let Some(&(latest, _)) = self.held.iter().max() {
            self.held.retain(|(minute, _)| latest - minute <= 60);
        }
    }
}

/// The key range of `event_segments` rows that can hold an event id: their first id is
/// at most the id and at most [`MAX_SPAN_MS`] older.
pub(crate) struct SegmentRange {
    pub from: i64,
    pub to: i64,
}

impl SegmentRange {
    pub(crate) fn holding(id: EventId) -> SegmentRange {
        SegmentRange {
            from: EventId::floor((id.millis() - MAX_SPAN_MS) * 1_000).0,
            to: id.0,
        }
    }

    /// The segments that can hold events whose time is in `from_us..to_us`.
    pub(crate) fn for_times(from_us: i64, to_us: i64) -> SegmentRange {
        let ms = |us: i64| us.div_euclid(1_000);
        SegmentRange {
            from: EventId::floor((ms(from_us) - MAX_SPAN_MS) * 1_000).0,
            to: EventId::floor((ms(to_us) + MAX_ID_AHEAD_MS) * 1_000).0,
        }
    }
}

/// One event as a JSON array, its fields in the order migration 0004 lists (and its
/// `events` view reads them): the id and time as small offsets (the id from the segment's
/// first id, the time from the id's millisecond), fields that are often null last, where
/// trailing nulls are left out (a position past the end reads as NULL in both databases),
/// and booleans as 0 or 1.
fn write_event(out: &mut Vec<u8>, first: EventId, id: EventId, e: &Event, ip_text: &mut String) {
    let mut w = ArrayWriter::start(out);
    w.int(Some(id.0 - first.0));
    w.int(Some(ts_to_us(e.at) - id.millis() * 1_000));
    let dns = e.dns.as_ref();
    w.int(dns.map(|d| i64::from(d.qtype)));
    w.int(dns.map(|d| i64::from(d.rcode)));
    w.int(dns.map(|d| i64::from(d.cache_hit)));
    w.int(dns.map(|d| i64::from(d.stale)));
    // Clamped as in a row (an `integer` column on PostgreSQL).
    w.int(
        dns.and_then(|d| d.upstream_us)
            .map(|us| i64::from(us.min(i32::MAX as u32))),
    );
    w.text(e.client_ip.map(|ip| {
        write_ip(ip_text, ip);
        ip_text.as_str()
    }));
    w.text(Some(&e.target));
    w.text(Some(&e.verdict));
    w.text(dns.map(|d| d.answer.as_ref()));
    w.joined_text(&e.categories);
    w.text(e.person.as_deref());
    w.text(e.year_group.as_deref());
    w.text(e.device.as_deref());
    w.text(e.rule.as_deref());
    w.text(e.document.as_deref());
    w.text(e.clause.as_deref());
    w.int(e.bytes);
    match &e.detail {
        Some(d) => {
            // Valid JSON by construction (see EventDetail): embedded as an object.
            w.sep();
            w.out.extend_from_slice(d.as_str().as_bytes());
            w.mark();
        }
        None => w.null(),
    }
    w.finish();
}

/// Whether `s` goes into a JSON string as it is: no quote, backslash or control
/// character (nor NUL). Names, addresses and category names always are.
fn is_plain(s: &str) -> bool {
    s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
}

/// `s` as a JSON string. As in a row, NUL (which SQLite text cannot hold) becomes
/// U+FFFD. Plain text is copied in one pass; the rest goes through serde_json's escaping.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    if is_plain(s) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, clean(s).as_ref());
    }
}

/// Writes one JSON array into a buffer, remembering where the last non-null value ended
/// so that trailing nulls can be cut.
struct ArrayWriter<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    /// Where the array ends if nothing but nulls follows.
    end: usize,
}

impl<'a> ArrayWriter<'a> {
    fn start(out: &'a mut Vec<u8>) -> ArrayWriter<'a> {
        out.push(b'[');
        let start = out.len();
        ArrayWriter {
            out,
            start,
            end: start,
        }
    }

    fn sep(&mut self) {
        if self.out.len() > self.start {
            self.out.push(b',');
        }
    }

    fn mark(&mut self) {
        self.end = self.out.len();
    }

    fn null(&mut self) {
        self.sep();
        self.out.extend_from_slice(b"null");
    }

    fn int(&mut self, v: Option<i64>) {
        match v {
            Some(v) => {
                self.sep();
                let _ = serde_json::to_writer(&mut *self.out, &v);
                self.mark();
            }
            None => self.null(),
        }
    }

    fn text(&mut self, v: Option<&str>) {
        match v {
            Some(v) => {
                self.sep();
                write_json_str(self.out, v);
                self.mark();
            }
            None => self.null(),
        }
    }

    /// `parts` as one comma-separated string, as a row's `categories` column holds them.
    fn joined_text(&mut self, parts: &[String]) {
        self.sep();
        if parts.iter().all(|p| is_plain(p)) {
            self.out.push(b'"');
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                self.out.extend_from_slice(p.as_bytes());
            }
            self.out.push(b'"');
        } else {
            write_json_str(self.out, &categories(parts));
        }
        self.mark();
    }

    fn finish(self) {
        self.out.truncate(self.end);
        self.out.push(b']');
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::event::{DnsDetail, EventIds};

    /// The fields of a packed event, by position in its array, as migration 0004 lists
    /// them and its `events` view reads them. The id and time are small offsets (the id from the segment's
    /// first id, the time from the id's millisecond); fields that are often null come last,
    /// where trailing nulls are left out; booleans are 0 or 1.
    const FIELDS: [&str; 20] = [
        "event_id - first_id",
        "at_us - (event_id >> 21) * 1000",
        "dns_qtype",
        "dns_rcode",
        "dns_cache_hit",
        "dns_stale",
        "dns_upstream_us",
        "client_ip",
        "target",
        "verdict",
        "dns_answer",
        "categories",
        "person",
        "year_group",
        "device",
        "rule",
        "document",
        "clause",
        "bytes",
        "detail",
    ];

    #[test]
    fn strings_are_written_as_serde_json_writes_them_with_nul_replaced() {
        let samples = [
            "",
            "www.example.org",
            "with space and unicode \u{e9}\u{1F600}",
            "quote \" here",
            "back\\slash",
            "tab\tnew\nline\r",
            "nul\0inside",
            "\u{7f}del and \u{1f}unit separator",
            "adult,gambling",
        ];
        for s in samples {
            let mut fast = Vec::new();
            write_json_str(&mut fast, s);
            let expected = serde_json::to_string(&s.replace('\0', "\u{FFFD}")).unwrap();
            assert_eq!(String::from_utf8(fast).unwrap(), expected, "{s:?}");
        }
        let lists: [&[&str]; 5] = [
            &[],
            &["adult"],
            &["adult", "gambling", "social_networks"],
            &["odd \"name\"", "plain"],
            &["nul\0", "x"],
        ];
        for list in lists {
            let owned: Vec<String> = list.iter().map(|c| c.to_string()).collect();
            let mut out = Vec::new();
            let mut w = ArrayWriter::start(&mut out);
            w.joined_text(&owned);
            w.finish();
            let expected =
                serde_json::to_string(&[list.join(",").replace('\0', "\u{FFFD}")]).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{list:?}");
        }
    }

    #[test]
    fn both_migrations_list_the_fields_in_this_order() {
        for sql in [
            include_str!("../migrations/sqlite/0004_event_segments.sql"),
            include_str!("../migrations/postgres/0004_event_segments.sql"),
        ] {
            let listed: Vec<String> = sql
                .lines()
                .filter_map(|l| l.strip_prefix("--  "))
                .filter_map(|l| l.trim().split_once("  "))
                .filter(|(n, _)| n.parse::<usize>().is_ok())
                .map(|(_, f)| f.trim().to_string())
                .collect();
            assert_eq!(listed, FIELDS);
        }
    }

    fn query(target: &str, at: jiff::Timestamp) -> Event {
        let mut e = Event::new(EventKind::Dns, at, target);
        e.verdict = "allow".into();
        e.client_ip = Some("10.0.0.7".parse().unwrap());
        e.categories = vec!["search".into(), "news".into()];
        e.dns = Some(DnsDetail {
            qtype: 28,
            rcode: 0,
            answer: "allowed".into(),
            cache_hit: true,
            stale: false,
            upstream_us: None,
        });
        e
    }

    #[test]
    fn an_event_packs_as_an_array_in_field_order_without_trailing_nulls() {
        let at = hallpass_clock::Clock::system().now();
        let mut e = query("a\"b\0.example", at);
        e.person = Some("jsmith".into());
        let ids = EventIds::new();
        let first = ids.next(at);
        let id = ids.next(at + jiff::SignedDuration::from_micros(2_500));
        let segments = pack(&mut [(id, &e), (first, &e)]);
        assert_eq!(segments.len(), 1);
        let s = &segments[0];
        assert_eq!(
            (s.first, s.last, s.n, s.kind),
            (first, id, 2, EventKind::Dns)
        );
        let value: serde_json::Value = serde_json::from_str(&s.events).unwrap();
        let fields = value[1].as_array().unwrap();
        // Everything after the person (year group, device, rule, ...) is null: left out.
        assert_eq!(fields.len(), 13);
        let field = |name: &str| &fields[FIELDS.iter().position(|f| *f == name).unwrap()];
        assert_eq!(field("event_id - first_id"), id.0 - first.0);
        assert_eq!(
            field("at_us - (event_id >> 21) * 1000"),
            ts_to_us(at) - id.millis() * 1_000
        );
        assert_eq!(field("person"), "jsmith");
        assert_eq!(field("client_ip"), "10.0.0.7");
        assert_eq!(field("target"), "a\"b\u{FFFD}.example");
        assert_eq!(field("categories"), "search,news");
        assert_eq!(field("verdict"), "allow");
        assert_eq!(field("dns_qtype"), 28);
        assert_eq!(field("dns_answer"), "allowed");
        assert_eq!(field("dns_cache_hit"), 1);
        assert_eq!(field("dns_stale"), 0);
        assert!(field("dns_upstream_us").is_null());
    }

    #[test]
    fn segments_are_cut_by_count_and_by_span_and_sorted_by_id() {
        // Now, so that the ids are sequential (an old time gets random low bits).
        let at = hallpass_clock::Clock::system().now();
        let e = query("x.example", at);
        let ids = EventIds::new();
        let mut items: Vec<(EventId, &Event)> =
            (0..MAX_EVENTS + 10).map(|_| (ids.next(at), &e)).collect();
        let later = ids.next(at + jiff::SignedDuration::from_millis(MAX_SPAN_MS + 1));
        items.push((later, &e));
        let mut blocked = e.clone();
        blocked.verdict = crate::VERDICT_BLOCK.into();
        items.insert(5, (ids.next(at), &blocked));
        items.reverse();
        let segments = pack(&mut items);
        let sizes: Vec<(i64, bool)> = segments.iter().map(|s| (s.n, s.blocked)).collect();
        assert_eq!(
            sizes,
            [
                (MAX_EVENTS as i64, false),
                (10, false),
                (1, false),
                (1, true)
            ]
        );
        assert!(segments[..3].windows(2).all(|w| w[0].last < w[1].first));
        assert!(segments.iter().all(|s| s.first <= s.last));
        // The key range for any id in a segment takes in the segment's first id.
        for s in &segments {
            let range = SegmentRange::holding(s.last);
            assert!(range.from <= s.first.0 && s.first.0 <= range.to);
        }
    }

    #[test]
    fn a_writer_claims_each_minute_and_slot_once() {
        let at = hallpass_clock::Clock::system().now();
        let e = query("x.example", at);
        let ids = EventIds::new();
        let first = ids.next(at);
        let items = [(first, &e), (ids.next(at), &e)];
        let mut claims = IdClaims::new();
        let needed = claims.needed(&items);
        assert_eq!(needed, [(first.millis() / 60_000, first.slot())]);
        // Not committed (the transaction failed): still needed.
        assert_eq!(claims.needed(&items), needed);
        claims.committed(needed);
        assert!(claims.needed(&items).is_empty());
        let next_minute = ids.next(at + jiff::SignedDuration::from_secs(60));
        assert_eq!(claims.needed(&[(next_minute, &e)]).len(), 1);
    }

    #[test]
    fn only_dns_queries_without_content_pack() {
        let at: jiff::Timestamp = "2026-09-02T09:00:00Z".parse().unwrap();
        let mut e = query("x.example", at);
        assert!(packs(&e));
        e.verdict = crate::VERDICT_BLOCK.into();
        assert!(packs(&e));
        e.content = Some("search term".into());
        assert!(!packs(&e));
        let web = Event::new(EventKind::Web, at, "https://x.example/");
        assert!(!packs(&web));
    }
}
