//! `store-layouts N`: what it costs SQLite to keep N DNS query events, in four layouts,
//! with the store's settings (WAL, synchronous=FULL, 8 MB cache) and the event writer's
//! batch size under DNS load (256 events per transaction).
//!
//! * `uid key`: the `events` table of schema versions 1-2, keyed by a 16-byte uid
//!   (`WITHOUT ROWID`), 16-row `INSERT OR FAIL` statements as the event writer makes;
//! * `rows`: the same columns keyed by a 64-bit integer, as migration 0003 made them:
//!   what the event writer did for DNS queries until migration 0004 packed them (and
//!   still does for other events);
//! * `compact rows`: one row per event with an integer key, small-integer codes for
//!   kind, verdict and decision, the address as 4 bytes: about the smallest a row can be;
//! * `segments`: one row per 64 events, their fields packed into a binary blob. The
//!   writer packs DNS queries as JSON instead (readable in SQL), 256 to a row: `store-ingest`
//!   and `bench/dns/ab.sh` measure that.
//!
//! The events are built before the clock starts; CPU time (user + system, this process)
//! and bytes on disk are per event. This measures a design question (what a row per
//! query costs against packed segments), not the product: `store-ingest` measures that.

use rusqlite::{Connection, ToSql, params};

/// Events per transaction: what the event writer commits at once under DNS load.
const PER_TRANSACTION: usize = 256;
/// Rows per INSERT statement, as in the event writer.
const ROWS_PER_STATEMENT: usize = 16;
/// Events per packed segment.
const PER_SEGMENT: usize = 64;

struct Query {
    uid: [u8; 16],
    id: i64,
    at_us: i64,
    target: String,
    blocked: bool,
    cache_hit: bool,
}

/// Stores the events in one layout.
type Layout = fn(&mut Connection, &[Query]);

fn queries(n: u64) -> Vec<Query> {
    let base_ms: i64 = 1_795_402_475_727;
    (0..n)
        .map(|i| {
            let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let ms = base_ms + (i / 100) as i64;
            let mut uid = [0u8; 16];
            uid[..8].copy_from_slice(&ms.to_be_bytes());
            uid[8..].copy_from_slice(&h.to_le_bytes());
            Query {
                uid,
                id: (ms << 21) | (i % 100) as i64, // as EventId: millisecond, then sequence
                at_us: ms * 1000 + (i % 1000) as i64,
                target: format!("api.{}.school-resources.net", h % 10_000),
                blocked: h % 2 == 0,
                cache_hit: h % 3 != 0,
            }
        })
        .collect()
}

fn open(path: &str) -> Connection {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let c = Connection::open(path).expect("open the database");
    c.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = -8192; \
         PRAGMA wal_autocheckpoint = 8192;",
    )
    .expect("settings");
    c
}

fn rows_sql(table_and_columns: &str, params_per_row: usize) -> String {
    let row = format!("({})", vec!["?"; params_per_row].join(", "));
    format!(
        "INSERT OR FAIL INTO {table_and_columns} VALUES {}",
        vec![row; ROWS_PER_STATEMENT].join(", ")
    )
}

/// Inserts `qs` in transactions of [`PER_TRANSACTION`], `ROWS_PER_STATEMENT` rows per
/// statement, binding each event's values with `bind`.
fn insert_rows(
    c: &mut Connection,
    sql: &str,
    qs: &[Query],
    bind: impl Fn(&Query, &mut dyn FnMut(&dyn ToSql)),
) {
    for batch in qs.chunks(PER_TRANSACTION) {
        let tx = c.transaction().expect("begin");
        {
            let mut st = tx.prepare_cached(sql).expect("prepare");
            for chunk in batch.chunks_exact(ROWS_PER_STATEMENT) {
                let mut i = 0;
                for q in chunk {
                    bind(q, &mut |v| {
                        i += 1;
                        st.raw_bind_parameter(i, v).expect("bind");
                    });
                }
                st.raw_execute().expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
}

/// The columns both layouts with today's columns fill, after the key.
const TODAYS_COLUMNS: &str = "kind, at_us, client_ip, target, categories, verdict, rule, \
     document, clause, dns_qtype, dns_rcode, dns_answer, dns_cache_hit, dns_stale, \
     dns_upstream_us";

/// Inserts `qs` into today's columns, keyed by `key` (the column) bound by `bind_key`.
fn todays_columns(
    c: &mut Connection,
    qs: &[Query],
    key: &str,
    bind_key: impl Fn(&Query, &mut dyn FnMut(&dyn ToSql)),
) {
    let sql = rows_sql(&format!("events ({key}, {TODAYS_COLUMNS})"), 16);
    insert_rows(c, &sql, qs, |q, bind| {
        bind_key(q, bind);
        bind(&"dns");
        bind(&q.at_us);
        bind(&"127.0.0.1");
        bind(&q.target);
        bind(&if q.blocked { "adult" } else { "" });
        bind(&if q.blocked { "block" } else { "allow" });
        bind(&q.blocked.then_some("students-block-adult"));
        bind(&q.blocked.then_some("aup"));
        bind(&q.blocked.then_some("4.2"));
        bind(&1);
        bind(&0);
        bind(&if q.blocked { "blocked" } else { "allowed" });
        bind(&q.cache_hit);
        bind(&false);
        bind(&(!q.cache_hit).then_some(3_531));
    });
}

const MIGRATIONS: [&str; 3] = [
    include_str!("../../crates/store/migrations/sqlite/0001_initial.sql"),
    include_str!("../../crates/store/migrations/sqlite/0002_dns_columns.sql"),
    include_str!("../../crates/store/migrations/sqlite/0003_integer_event_ids.sql"),
];

/// Schema version 2: the 16-byte uid key.
fn uid_key_rows(c: &mut Connection, qs: &[Query]) {
    for m in &MIGRATIONS[..2] {
        c.execute_batch(m).expect("migrations 0001-0002");
    }
    todays_columns(c, qs, "event_uid", |q, bind| bind(&&q.uid[..]));
}

/// Today's schema (every migration): keyed by the 64-bit event id.
fn rows(c: &mut Connection, qs: &[Query]) {
    for m in MIGRATIONS {
        c.execute_batch(m).expect("migrations");
    }
    todays_columns(c, qs, "event_id", |q, bind| bind(&q.id));
}

fn compact_rows(c: &mut Connection, qs: &[Query]) {
    c.execute_batch(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, \
         at_us INTEGER NOT NULL, person INTEGER, client_ip BLOB, target TEXT NOT NULL, \
         decision INTEGER NOT NULL, qtype INTEGER, rcode INTEGER, cache_hit INTEGER, \
         upstream_us INTEGER); \
         CREATE INDEX events_blocked_at ON events(at_us) WHERE decision < 0;",
    )
    .expect("schema");
    let sql = rows_sql(
        "events (id, kind, at_us, person, client_ip, target, decision, qtype, rcode, \
         cache_hit, upstream_us)",
        11,
    );
    insert_rows(c, &sql, qs, |q, bind| {
        bind(&q.id);
        bind(&1);
        bind(&q.at_us);
        bind(&None::<i64>);
        bind(&&[127u8, 0, 0, 1][..]);
        bind(&q.target);
        bind(&if q.blocked { -3 } else { 1 });
        bind(&1);
        bind(&0);
        bind(&q.cache_hit);
        bind(&(!q.cache_hit).then_some(3_531));
    });
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn segments(c: &mut Connection, qs: &[Query]) {
    c.execute_batch(
        "CREATE TABLE segments (id INTEGER PRIMARY KEY, at_first INTEGER NOT NULL, \
         at_last INTEGER NOT NULL, events INTEGER NOT NULL, blocked INTEGER NOT NULL, \
         body BLOB NOT NULL)",
    )
    .expect("schema");
    let mut body = Vec::with_capacity(PER_SEGMENT * 96);
    for batch in qs.chunks(PER_TRANSACTION) {
        let tx = c.transaction().expect("begin");
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO segments (at_first, at_last, events, blocked, body) \
                     VALUES (?, ?, ?, ?, ?)",
                )
                .expect("prepare");
            for segment in batch.chunks(PER_SEGMENT) {
                body.clear();
                let first = segment[0].at_us;
                for q in segment {
                    body.extend_from_slice(&q.uid);
                    put_varint(&mut body, (q.at_us - first) as u64);
                    body.extend_from_slice(&[127, 0, 0, 1]);
                    put_text(&mut body, &q.target);
                    put_text(&mut body, if q.blocked { "adult" } else { "" });
                    body.push(u8::from(q.blocked));
                    if q.blocked {
                        put_text(&mut body, "students-block-adult");
                        put_text(&mut body, "aup");
                        put_text(&mut body, "4.2");
                    }
                    body.extend_from_slice(&[1, 0, u8::from(q.cache_hit)]);
                    put_varint(&mut body, if q.cache_hit { 0 } else { 3_531 });
                }
                let blocked = segment.iter().filter(|q| q.blocked).count() as i64;
                let last = segment[segment.len() - 1].at_us;
                st.execute(params![first, last, segment.len() as i64, blocked, &body])
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
}

/// User + system CPU time of this process, in seconds (Linux: `/proc/self/stat`, in
/// USER_HZ ticks, which the kernel fixes at 100 for user space).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The command name (field 2) may hold spaces; count fields after its closing ')'.
    let after = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15, i.e. 12 and 13 after the name.
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    // A multiple of the statement size, so every layout stores the same events.
    let n = n - n % PER_TRANSACTION as u64;
    let qs = queries(n);
    let dir = std::env::temp_dir();
    println!("{n} DNS query events, {PER_TRANSACTION} per transaction, WAL, synchronous=FULL");
    let layouts: [(&str, Layout); 4] = [
        ("uid key", uid_key_rows),
        ("rows", rows),
        ("compact rows", compact_rows),
        ("segments", segments),
    ];
    for (name, insert) in layouts {
        let path = dir.join(format!("hallpass-layouts-{}.db", name.replace(' ', "-")));
        let path = path.to_string_lossy().into_owned();
        let mut c = open(&path);
        let (cpu0, t0) = (cpu_seconds(), hallpass_clock::Clock::system().instant());
        insert(&mut c, &qs);
        let (cpu, wall) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
        drop(c);
        let bytes: u64 = ["", "-wal"]
            .iter()
            .filter_map(|s| std::fs::metadata(format!("{path}{s}")).ok())
            .map(|m| m.len())
            .sum();
        println!(
            "{name:<13} {:>6.2} us CPU/event {:>6.2} us wall/event {:>5.0} bytes/event",
            cpu * 1e6 / n as f64,
            wall * 1e6 / n as f64,
            bytes as f64 / n as f64
        );
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
}
