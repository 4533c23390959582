//! A store sized like a large school, and the reads the features need from it
//! (`bench/store/school.sh`).
//!
//! `store-school URL [WORK_DIR]` fills an empty store (SQLite or PostgreSQL) with 1,500
//! pupils and 150 staff and a school year of their activity, generated straight into the
//! 0007 tables (no writer) in one big transaction per school day, from a fixed seed:
//! 190 school days (38 weeks of five), and per person and day `VISITS_PER_DAY` DNS visit
//! rows (allowed queries to one name in one minute, 1 to 8 queries each, 08:30 to 15:30,
//! names drawn with a heavy head from 20,000), `BLOCKS_PER_DAY` blocked queries for
//! pupils (a fifth of that for staff), `WEB_PER_DAY` proxy requests (a twentieth of them
//! blocked), one logon event, and the `traffic_daily` and `activity_hourly` roll-ups the
//! writer would have kept. Then it measures, printing `RESULT name value` lines that
//! the script compares with the floors:
//! * `timeline_first_page_ms`: the newest 100 entries of one pupil's year;
//! * `timeline_full_year_ms`: that pupil's whole year, in pages of 1,000;
//! * `export_ms`: that pupil's full export (JSON Lines, to a file);
//! * `month_report_ms`: one month's allowed/blocked traffic per category;
//! * `activity_year_ms`: that pupil's year from the hourly roll-up, per day and per site,
//!   as the console's activity view reads and serialises it (issue 20);
//! * `bytes_per_query`: database size over the DNS queries stored (visits count each
//!   query they stand for).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;

use hallpass_store::people::PersonRecord;
use hallpass_store::{ExportOptions, ReportFilter, Store, TimelineQuery, TrafficBy};

const US_PER_MINUTE: i64 = 60_000_000;
const US_PER_DAY: i64 = 86_400_000_000;
/// Monday 1 September 2025, 00:00 UTC: the first day of the generated year.
const YEAR_START_S: i64 = 1_756_684_800;
const PUPILS: usize = 1_500;
const STAFF: usize = 150;
const SCHOOL_WEEKS: i64 = 38;
const NAMES: u64 = 20_000;
const BLOCKED_NAMES: u64 = 2_000;
const CATEGORIES: [&str; 12] = [
    "search",
    "education",
    "news",
    "video",
    "social_networks",
    "games",
    "shopping",
    "sports",
    "webmail",
    "cdn",
    "music",
    "reference",
];
const BLOCKED_CATEGORIES: [&str; 6] = [
    "games",
    "social_networks",
    "adult",
    "gambling",
    "proxy",
    "malware",
];
/// The pupil whose year is read.
const PUPIL: usize = 42;

/// SplitMix64: small, fast, and the same sequence everywhere for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// A name index with a heavy head: a few names take most visits.
    fn popular(&mut self, n: u64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((u * u * u) * n as f64) as u64
    }
}

struct Person {
    username: String,
    year: String,
    ip: String,
    device: String,
    pupil: bool,
}

fn people() -> Vec<Person> {
    let mut out = Vec::new();
    for i in 0..PUPILS + STAFF {
        let pupil = i < PUPILS;
        out.push(Person {
            username: if pupil {
                format!("pupil{i:04}")
            } else {
                format!("staff{:03}", i - PUPILS)
            },
            year: if pupil {
                (7 + i % 7).to_string()
            } else {
                String::new()
            },
            ip: format!("10.{}.{}.{}", 16 + i / 65_536, (i / 256) % 256, i % 256),
            device: format!("DEV{i:05}"),
            pupil,
        });
    }
    out
}

fn roster(people: &[Person]) -> Vec<PersonRecord> {
    people
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let form = format!("{}{}", p.year, ["A", "B", "C", "D", "E"][i % 5]);
            let groups = if p.pupil {
                vec![format!("Year {}", p.year), format!("Form {form}")]
            } else {
                vec!["Staff".to_string()]
            };
            PersonRecord {
                username: p.username.clone(),
                display_name: format!("Person {i}"),
                role: if p.pupil { "student" } else { "staff" }.to_string(),
                year_group: p.pupil.then(|| p.year.clone()),
                form: p.pupil.then_some(form),
                email: Some(format!("{}@school.example", p.username)),
                mis_id: Some(format!("M{i:05}")),
                site: None,
                groups: Some(groups),
            }
        })
        .collect()
}

/// A visit: (minute, first, last, person, name, category, queries, cache hits).
type VisitRow = (i64, i64, i64, usize, u64, usize, i64, i64);
/// A decision: (at, person, kind, target, category, verdict).
type DecisionRow = (i64, usize, &'static str, String, &'static str, &'static str);

/// (person, hour, kind, site, category, verdict): one `activity_hourly` row.
type ActivityKey = (usize, i64, &'static str, String, &'static str, &'static str);

/// One day's rows, in time order.
#[derive(Default)]
struct Day {
    visits: Vec<VisitRow>,
    decisions: Vec<DecisionRow>,
    /// (person, kind, category, verdict) -> n
    traffic: HashMap<(usize, &'static str, &'static str, &'static str), i64>,
    activity: HashMap<ActivityKey, i64>,
}

fn hour_of(us: i64) -> i64 {
    us.div_euclid(3_600_000_000) * 3_600_000_000
}

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn generate_day(day_index: i64, people: &[Person], rates: Rates) -> Day {
    let Rates {
        visits,
        blocks,
        web,
    } = rates;
    let mut rng = Rng(0x5C4_001 ^ (day_index as u64).wrapping_mul(0x1000_0001));
    let day_us = (YEAR_START_S * 1_000_000) + day_index * US_PER_DAY;
    let open = day_us + 8 * 3_600_000_000 + 30 * US_PER_MINUTE;
    let window_minutes = 7 * 60;
    let mut d = Day::default();
    for (pi, p) in people.iter().enumerate() {
        let jitter = |rng: &mut Rng, mean: f64| -> u64 {
            let spread = (mean * 0.4) as u64 + 1;
            (mean as u64).saturating_sub(spread / 2) + rng.below(spread)
        };
        let nv = jitter(&mut rng, visits);
        let nb = jitter(&mut rng, if p.pupil { blocks } else { blocks / 5.0 });
        for _ in 0..nv {
            let minute = open + rng.below(window_minutes) as i64 * US_PER_MINUTE;
            let first = minute + rng.below(50_000_000) as i64;
            let last = first + rng.below(9_000_000) as i64;
            let name = rng.popular(NAMES);
            let cat = (name % CATEGORIES.len() as u64) as usize;
            let queries = 1 + rng.below(8) as i64;
            let hits = rng.below(queries as u64 + 1) as i64;
            d.visits
                .push((minute, first, last, pi, name, cat, queries, hits));
            let key = (
                pi,
                hour_of(minute),
                "dns",
                name_of(name),
                CATEGORIES[cat],
                "allow",
            );
            *d.activity.entry(key).or_default() += queries;
            *d.traffic.entry((pi, "dns", "", "allow")).or_default() += queries;
            *d.traffic
                .entry((pi, "dns", CATEGORIES[cat], "allow"))
                .or_default() += queries;
        }
        for _ in 0..nb {
            let at = open + rng.below(window_minutes * US_PER_MINUTE as u64) as i64;
            let name = rng.popular(BLOCKED_NAMES);
            let cat = BLOCKED_CATEGORIES[(name % BLOCKED_CATEGORIES.len() as u64) as usize];
            d.decisions.push((
                at,
                pi,
                "dns",
                format!("blocked{name}.example"),
                cat,
                "block",
            ));
            *d.traffic.entry((pi, "dns", "", "block")).or_default() += 1;
            *d.traffic.entry((pi, "dns", cat, "block")).or_default() += 1;
            let key = (
                pi,
                hour_of(at),
                "dns",
                format!("blocked{name}.example"),
                cat,
                "block",
            );
            *d.activity.entry(key).or_default() += 1;
        }
        for _ in 0..jitter(&mut rng, web) {
            let at = open + rng.below(window_minutes * US_PER_MINUTE as u64) as i64;
            let name = rng.popular(NAMES);
            let blocked = rng.below(20) == 0;
            let (cat, verdict) = if blocked {
                let c = BLOCKED_CATEGORIES[(name % BLOCKED_CATEGORIES.len() as u64) as usize];
                (c, "block")
            } else {
                (
                    CATEGORIES[(name % CATEGORIES.len() as u64) as usize],
                    "allow",
                )
            };
            let host = name_of(name);
            let path = format!("{host}/page{}", rng.below(50));
            d.decisions.push((at, pi, "web", path, cat, verdict));
            *d.traffic.entry((pi, "web", "", verdict)).or_default() += 1;
            *d.traffic.entry((pi, "web", cat, verdict)).or_default() += 1;
            *d.activity
                .entry((pi, hour_of(at), "web", host, cat, verdict))
                .or_default() += 1;
        }
        let logon = open - rng.below(20 * US_PER_MINUTE as u64) as i64;
        d.decisions
            .push((logon, pi, "logon", p.device.clone(), "", "allow"));
        *d.traffic.entry((pi, "logon", "", "allow")).or_default() += 1;
        let key = (pi, hour_of(logon), "logon", p.device.clone(), "", "allow");
        *d.activity.entry(key).or_default() += 1;
    }
    d.visits.sort_by_key(|v| (v.0, v.1));
    d.decisions.sort_by_key(|v| v.0);
    d
}

/// Day indexes (from the start of the year) of the school days.
fn school_days() -> Vec<i64> {
    (0..SCHOOL_WEEKS)
        .flat_map(|w| {
            // Three holiday weeks after every 12 weeks of term: the year spans 52 weeks.
            let week = w + (w / 12) * 3 + i64::from(w >= 36);
            (0..5).map(move |d| week * 7 + d)
        })
        .collect()
}

fn name_of(i: u64) -> String {
    format!("site{i}.cdn{}.example", i % 13)
}

/// Per person and school day: visit rows, blocked queries (pupils), web requests.
#[derive(Debug, Clone, Copy)]
struct Rates {
    visits: f64,
    blocks: f64,
    web: f64,
}

fn fill_sqlite(path: &str, people: &[Person], days: &[i64], rates: Rates) {
    let mut db = rusqlite::Connection::open(path).expect("open the SQLite file");
    db.execute_batch("PRAGMA cache_size = -262144; PRAGMA synchronous = OFF;")
        .expect("pragmas");
    for (n, &day) in days.iter().enumerate() {
        let d = generate_day(day, people, rates);
        let tx = db.transaction().expect("begin");
        {
            let mut v = tx
                .prepare_cached(
                    "INSERT INTO dns_visits (minute_us, first_us, last_us, person, year_group, \
                     client_ip, device, name, categories, verdict, queries, cache_hits) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'allow', ?10, ?11)",
                )
                .expect("prepare");
            for &(minute, first, last, pi, name, cat, q, hits) in &d.visits {
                let p = &people[pi];
                v.execute(rusqlite::params![
                    minute,
                    first,
                    last,
                    p.username,
                    p.year,
                    p.ip,
                    p.device,
                    name_of(name),
                    CATEGORIES[cat],
                    q,
                    hits
                ])
                .expect("insert visit");
            }
            let mut dec = tx
                .prepare_cached(
                    "INSERT INTO decisions (kind, at_us, person, year_group, client_ip, device, \
                     target, categories, verdict, rule, document, clause, dns_qtype, dns_rcode, \
                     dns_answer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
                     ?14, ?15)",
                )
                .expect("prepare");
            for (at, pi, kind, target, cat, verdict) in &d.decisions {
                let p = &people[*pi];
                let dns = *kind == "dns";
                dec.execute(rusqlite::params![
                    kind,
                    at,
                    p.username,
                    p.year,
                    p.ip,
                    p.device,
                    target,
                    cat,
                    verdict,
                    dns.then_some("pupils-block-unsuitable"),
                    dns.then_some("ict-aup"),
                    dns.then_some("4.2"),
                    dns.then_some(1),
                    dns.then_some(0),
                    dns.then_some("blocked"),
                ])
                .expect("insert decision");
            }
            let mut t = tx
                .prepare_cached(
                    "INSERT INTO traffic_daily (day, person, year_group, kind, category, verdict, n) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .expect("prepare");
            let day_no = YEAR_START_S / 86_400 + day;
            for ((pi, kind, cat, verdict), n) in &d.traffic {
                let p = &people[*pi];
                t.execute(rusqlite::params![
                    day_no, p.username, p.year, kind, cat, verdict, n
                ])
                .expect("insert traffic");
            }
            let mut a = tx
                .prepare_cached(
                    "INSERT INTO activity_hourly (person, hour_us, kind, site, verdict, \
                     categories, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .expect("prepare");
            for ((pi, hour, kind, site, cat, verdict), n) in &d.activity {
                let p = &people[*pi];
                a.execute(rusqlite::params![
                    p.username, hour, kind, site, verdict, cat, n
                ])
                .expect("insert activity");
            }
        }
        tx.commit().expect("commit");
        if n % 20 == 0 {
            eprintln!("sqlite: day {n} of {}", days.len());
        }
    }
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")
        .expect("checkpoint");
}

/// PostgreSQL: each day's rows as COPY text through `psql` (fast and needs no driver here).
fn fill_postgres(url: &str, people: &[Person], days: &[i64], rates: Rates) {
    let mut psql = std::process::Command::new("psql")
        .args([url, "-q", "-v", "ON_ERROR_STOP=1"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run psql (PostgreSQL's client)");
    let mut stdin = psql.stdin.take().expect("psql stdin");
    for (n, &day) in days.iter().enumerate() {
        let d = generate_day(day, people, rates);
        let mut text = String::with_capacity(d.visits.len() * 120);
        text.push_str("BEGIN;\nCOPY dns_visits (minute_us, first_us, last_us, person, year_group, client_ip, device, name, categories, verdict, queries, cache_hits) FROM STDIN;\n");
        for &(minute, first, last, pi, name, cat, q, hits) in &d.visits {
            let p = &people[pi];
            let _ = writeln!(
                text,
                "{minute}\t{first}\t{last}\t{}\t{}\t{}\t{}\t{}\t{}\tallow\t{q}\t{hits}",
                p.username,
                p.year,
                p.ip,
                p.device,
                name_of(name),
                CATEGORIES[cat]
            );
        }
        text.push_str("\\.\nCOPY decisions (kind, at_us, person, year_group, client_ip, device, target, categories, verdict, rule, document, clause, dns_qtype, dns_rcode, dns_answer) FROM STDIN;\n");
        for (at, pi, kind, target, cat, verdict) in &d.decisions {
            let p = &people[*pi];
            let dns = if *kind == "dns" {
                "pupils-block-unsuitable\tict-aup\t4.2\t1\t0\tblocked"
            } else {
                "\\N\t\\N\t\\N\t\\N\t\\N\t\\N"
            };
            let _ = writeln!(
                text,
                "{kind}\t{at}\t{}\t{}\t{}\t{}\t{target}\t{cat}\t{verdict}\t{dns}",
                p.username, p.year, p.ip, p.device
            );
        }
        text.push_str("\\.\nCOPY traffic_daily (day, person, year_group, kind, category, verdict, n) FROM STDIN;\n");
        let day_no = YEAR_START_S / 86_400 + day;
        for ((pi, kind, cat, verdict), n) in &d.traffic {
            let p = &people[*pi];
            let _ = writeln!(
                text,
                "{day_no}\t{}\t{}\t{kind}\t{cat}\t{verdict}\t{n}",
                p.username, p.year
            );
        }
        text.push_str("\\.\nCOPY activity_hourly (person, hour_us, kind, site, verdict, categories, n) FROM STDIN;\n");
        for ((pi, hour, kind, site, cat, verdict), n) in &d.activity {
            let _ = writeln!(
                text,
                "{}\t{hour}\t{kind}\t{site}\t{verdict}\t{cat}\t{n}",
                people[*pi].username
            );
        }
        text.push_str("\\.\nCOMMIT;\n");
        stdin.write_all(text.as_bytes()).expect("write to psql");
        if n % 20 == 0 {
            eprintln!("postgres: day {n} of {}", days.len());
        }
    }
    stdin
        .write_all(b"VACUUM ANALYZE;\n")
        .expect("write to psql");
    drop(stdin);
    let status = psql.wait().expect("psql");
    assert!(status.success(), "psql failed: {status}");
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(url) = args.get(1) else {
        eprintln!("usage: store-school DATABASE_URL [WORK_DIR]");
        std::process::exit(2);
    };
    let work = std::path::PathBuf::from(args.get(2).map_or("/tmp", String::as_str));
    let visits = env_num("VISITS_PER_DAY", 100.0);
    let blocks = env_num("BLOCKS_PER_DAY", 6.0);
    let web = env_num("WEB_PER_DAY", 40.0);
    let rates = Rates {
        visits,
        blocks,
        web,
    };
    let clock = hallpass_clock::Clock::system();
    let store = Store::connect(url).await.expect("connect");
    let people = people();
    let days = school_days();
    let count = |sql: &'static str| {
        let store = store.clone();
        async move {
            hallpass_store::testing::query_strings(&store, sql)
                .await
                .expect("count")
                .first()
                .and_then(|s| s.parse::<i64>().ok())
                .unwrap_or(0)
        }
    };
    if count("SELECT CAST(COUNT(*) AS TEXT) FROM dns_visits").await == 0 {
        let t = clock.instant();
        store
            .people()
            .import(&roster(&people), false, "bench", "school", clock.now())
            .await
            .expect("import people");
        match store.backend() {
            hallpass_store::Backend::Sqlite => {
                let path = url.trim_start_matches("sqlite://");
                fill_sqlite(path, &people, &days, rates);
            }
            hallpass_store::Backend::Postgres => fill_postgres(url, &people, &days, rates),
        }
        println!(
            "generated {} school days for {} people in {:.0} s (visits/day {visits}, blocks/day {blocks}, web/day {web})",
            days.len(),
            people.len(),
            t.elapsed().as_secs_f64()
        );
    }
    let visit_rows = count("SELECT CAST(COUNT(*) AS TEXT) FROM dns_visits").await;
    let queries = count("SELECT CAST(SUM(queries) AS TEXT) FROM dns_visits").await
        + count("SELECT CAST(COUNT(*) AS TEXT) FROM decisions WHERE kind = 'dns'").await;
    let decision_rows = count("SELECT CAST(COUNT(*) AS TEXT) FROM decisions").await;
    println!(
        "store: {visit_rows} visit rows, {decision_rows} decision rows, {queries} DNS queries"
    );
    let bytes = match store.backend() {
        hallpass_store::Backend::Sqlite => {
            let path = url.trim_start_matches("sqlite://");
            let size = |p: String| std::fs::metadata(p).map_or(0, |m| m.len());
            size(path.to_string()) + size(format!("{path}-wal"))
        }
        hallpass_store::Backend::Postgres => {
            count("SELECT CAST(pg_database_size(current_database()) AS TEXT)").await as u64
        }
    };
    println!("RESULT db_bytes {bytes}");
    println!(
        "RESULT bytes_per_query {:.1}",
        bytes as f64 / queries.max(1) as f64
    );

    let pupil = &people[PUPIL].username;
    let year_from = jiff::Timestamp::from_second(YEAR_START_S).expect("time");
    let year_to = jiff::Timestamp::from_second(YEAR_START_S + 366 * 86_400).expect("time");
    // First page: best of 5 after one warm-up (the first read of a cold cache is the
    // page cache's business, reported separately).
    let cold = clock.instant();
    let first = store
        .timeline(pupil, &TimelineQuery::new(year_from, year_to, 100))
        .await
        .expect("timeline");
    println!("timeline first page, cold: {:.1} ms", ms(cold.elapsed()));
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = clock.instant();
        let page = store
            .timeline(pupil, &TimelineQuery::new(year_from, year_to, 100))
            .await
            .expect("timeline");
        times.push(t.elapsed());
        assert_eq!(page, first);
    }
    times.sort();
    println!("RESULT timeline_first_page_ms {:.2}", ms(times[2]));
    let t = clock.instant();
    let mut q = TimelineQuery::new(year_from, year_to, 1_000);
    let (mut entries, mut pages, mut represented) = (0usize, 0usize, 0i64);
    loop {
        let page = store.timeline(pupil, &q).await.expect("timeline");
        pages += 1;
        entries += page.entries.len();
        represented += page.entries.iter().map(|e| e.queries).sum::<i64>();
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    let walk = t.elapsed();
    println!(
        "timeline full year of {pupil}: {entries} entries ({represented} events and queries) in {pages} pages"
    );
    println!("RESULT timeline_full_year_ms {:.1}", ms(walk));

    let path = work.join(format!("export-{pupil}.jsonl"));
    let file = std::fs::File::create(&path).expect("create the export file");
    let mut out = hallpass_store::BlockingWriter(std::io::BufWriter::new(file));
    let t = clock.instant();
    let summary = store
        .export_person(pupil, ExportOptions::default(), clock.now(), &mut out)
        .await
        .expect("export");
    let export = t.elapsed();
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "export of {pupil}: {} rows, {size} bytes ({:?})",
        summary.total(),
        summary.rows
    );
    println!("RESULT export_ms {:.1}", ms(export));

    // October: a month of term.
    let month_from = jiff::Timestamp::from_second(YEAR_START_S + 30 * 86_400).expect("time");
    let month_to = jiff::Timestamp::from_second(YEAR_START_S + 61 * 86_400).expect("time");
    let f = ReportFilter::new(month_from, month_to);
    let mut times = Vec::new();
    let mut rows = Vec::new();
    for _ in 0..5 {
        let t = clock.instant();
        rows = store
            .reports()
            .traffic(&f, TrafficBy::Category)
            .await
            .expect("report");
        times.push(t.elapsed());
    }
    times.sort();
    let total: i64 = rows.iter().map(|r| r.total()).sum();
    println!(
        "month per-category report: {} categories, {total} events and queries",
        rows.len()
    );
    println!("RESULT month_report_ms {:.1}", ms(times[2]));
    for (name, by) in [
        ("group", TrafficBy::Group),
        ("year group", TrafficBy::YearGroup),
        ("day", TrafficBy::Day),
    ] {
        let t = clock.instant();
        let r = store.reports().traffic(&f, by).await.expect("report");
        println!(
            "month per-{name} report: {} rows in {:.1} ms",
            r.len(),
            ms(t.elapsed())
        );
    }
    let t = clock.instant();
    let top = store
        .reports()
        .top_blocked_targets(&f, 20)
        .await
        .expect("report");
    println!(
        "month top blocked targets: {} rows in {:.1} ms",
        top.len(),
        ms(t.elapsed())
    );
    let t = clock.instant();
    let per = store
        .reports()
        .blocked_by_person(&f, 20)
        .await
        .expect("report");
    println!(
        "month blocks per person: {} rows in {:.1} ms",
        per.len(),
        ms(t.elapsed())
    );
    let _ = std::fs::remove_file(&path);

    // The pupil's year from the hourly roll-up, as the console's activity view does it:
    // read, fold per day (in the school's time zone) and per site, serialise. Median of 5
    // after a cold read.
    let tz = jiff::tz::TimeZone::get("Europe/London").expect("the tz database");
    let activity_year = || async {
        let rows = store
            .hourly_activity(pupil, year_from, year_to, None)
            .await
            .expect("hourly activity");
        let summary = hallpass_store::summarise(&rows, &tz);
        let json = serde_json::to_vec(&summary).expect("json");
        (rows.len(), summary, json.len())
    };
    let t = clock.instant();
    let (rows, summary, bytes) = activity_year().await;
    println!(
        "activity year of {pupil}, cold: {rows} hourly rows, {} days, {} sites, {} events, \
         {bytes} bytes of JSON in {:.1} ms",
        summary.days.len(),
        summary.sites.len(),
        summary.total,
        ms(t.elapsed())
    );
    assert!(
        rows > 0 && summary.days.len() > 100,
        "the pupil has a year of activity"
    );
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = clock.instant();
        let again = activity_year().await;
        times.push(t.elapsed());
        assert_eq!(again.1, summary);
    }
    times.sort();
    println!("RESULT activity_year_ms {:.1}", ms(times[2]));
}
