//! Store benchmarks, run by `bench/store/run.sh`.
//!
//! `store-ingest ingest URL N`: sustained ingestion through the writer API. The N events
//! (realistic DNS decisions, about 400 bytes of metadata each, times advancing through 30
//! days) are built first; then one producer calls `EventWriter::record` as fast as the
//! writer drains (it yields while the queue is nearly full, so nothing spills: a run with
//! spilled > 0 would not count); the clock runs from the first `record` until `shutdown`
//! returns, i.e. every event committed and its transaction fsynced.
//!
//! `store-ingest report URL N`: fill the database with N events spread over 365 days (7 year
//! groups, 30 categories, 10% blocked) through the writer, then time the per-category-per-day
//! report for one year group over 30 days.

use std::time::Duration;

use hallpass_store::{Event, EventKind, EventWriter, EventWriterConfig, ReportFilter, Store};

const CATEGORIES: [&str; 30] = [
    "adult",
    "gambling",
    "games",
    "social_networks",
    "chat",
    "dating",
    "drugs",
    "hacking",
    "malware",
    "phishing",
    "proxy",
    "violence",
    "weapons",
    "warez",
    "audio-video",
    "shopping",
    "sports",
    "press",
    "webmail",
    "blog",
    "forums",
    "filehosting",
    "radio",
    "lingerie",
    "mixed_adult",
    "sect",
    "cryptojacking",
    "redirector",
    "marketingware",
    "dialer",
];
const YEARS: [&str; 7] = ["7", "8", "9", "10", "11", "12", "13"];

/// Event `i` of `n`: times advance through the span as they would in real time.
fn event(i: u64, n: u64, start: jiff::Timestamp, span_us: i64) -> Event {
    // cheap deterministic mixing
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let offset = (i as u128 * span_us as u128 / n.max(1) as u128) as i64;
    let at = start
        .checked_add(jiff::SignedDuration::from_micros(offset))
        .unwrap_or(start);
    let mut e = Event::new(
        EventKind::Dns,
        at,
        format!("host{}.example{}.com", h % 100_000, h % 7),
    );
    let student = (h >> 20) % 1200;
    e.person = Some(format!("student{student:04}"));
    e.year_group = Some(YEARS[(student % 7) as usize].to_string());
    e.client_ip = Some(std::net::IpAddr::V4(std::net::Ipv4Addr::new(
        10,
        1,
        (student / 250) as u8,
        (student % 250) as u8,
    )));
    e.device = Some(format!("LAB{}-PC{:02}", student % 9, student % 31));
    let c = (h >> 33) as usize;
    e.categories = vec![CATEGORIES[c % 30].to_string()];
    if c.is_multiple_of(10) {
        e.verdict = "block".into();
        e.categories.push(CATEGORIES[(c / 30) % 30].to_string());
        e.rule = Some("students-block-unsuitable".into());
        e.document = Some("wcs-ict-policy".into());
        e.clause = Some("4.2".into());
    }
    let cache_hit = h.is_multiple_of(3);
    e.dns = Some(hallpass_store::DnsDetail {
        qtype: 1,
        rcode: 0,
        answer: if e.verdict == "block" {
            "blocked"
        } else {
            "allowed"
        }
        .into(),
        cache_hit,
        stale: false,
        upstream_us: (!cache_hit).then_some((h % 40_000) as u32),
    });
    e
}

/// Record `n` events and wait until all are committed; events/s from the first `record`
/// to the end of `shutdown`. With `pregenerate` the events are built before the clock
/// starts (their construction is the enforcement point's cost, not the writer's).
async fn ingest(
    store: Store,
    n: u64,
    spill: &std::path::Path,
    span_days: i64,
    pregenerate: bool,
) -> (f64, u64) {
    let mut cfg = EventWriterConfig::new(spill);
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    cfg.capacity = env("STORE_BENCH_CAPACITY", 131_072);
    cfg.max_batch = env("STORE_BENCH_BATCH", 8_192);
    let capacity = cfg.capacity as u64;
    let max_bytes = cfg.max_queue_bytes;
    let start = jiff::Timestamp::from_second(1_788_000_000).expect("valid time");
    let span_us = span_days * 86_400_000_000;
    let mut ready: Vec<Event> = if pregenerate {
        (0..n).map(|i| event(i, n, start, span_us)).collect()
    } else {
        Vec::new()
    };
    ready.reverse();
    let (w, task) = EventWriter::start(store, cfg).expect("start writer");
    let t0 = hallpass_clock::Clock::system().instant();
    for i in 0..n {
        // Stay clear of both queue bounds (count and bytes), so nothing spills.
        let full = || {
            let m = w.metrics();
            m.queue_depth.load(std::sync::atomic::Ordering::Relaxed) + 1024 >= capacity
                || m.queue_bytes.load(std::sync::atomic::Ordering::Relaxed) + (1 << 20) >= max_bytes
        };
        while full() {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let e = ready.pop().unwrap_or_else(|| event(i, n, start, span_us));
        w.record(e);
    }
    w.shutdown().await;
    task.await.expect("writer task");
    let secs = t0.elapsed().as_secs_f64();
    let m = w.metrics().snapshot();
    eprintln!("writer metrics: {m:?}");
    (n as f64 / secs, m.spilled)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, url, n) = match args.as_slice() {
        [_, mode, url, n] => (mode.as_str(), url.as_str(), n.parse::<u64>().expect("N")),
        _ => {
            eprintln!("usage: store-ingest (ingest|report) DATABASE_URL N");
            std::process::exit(2);
        }
    };
    let store = Store::connect(url).await.expect("connect");
    let spill = std::env::temp_dir().join(format!("store-ingest-{}.spill", std::process::id()));
    match mode {
        "ingest" => {
            let before = store.event_count().await.expect("count");
            let (rate, spilled) = ingest(store.clone(), n, &spill, 30, true).await;
            let after = store.event_count().await.expect("count");
            assert_eq!(after - before, n as i64, "every event stored");
            println!(
                "ingest {:?}: {n} events in the store, {rate:.0} events/s end to end (spilled {spilled})",
                store.backend()
            );
        }
        "report" => {
            let have = store.event_count().await.expect("count") as u64;
            if have < n {
                let t = hallpass_clock::Clock::system().instant();
                let (rate, _) = ingest(store.clone(), n - have, &spill, 365, false).await;
                println!(
                    "filled {} events in {:.1} s ({rate:.0} events/s)",
                    n - have,
                    t.elapsed().as_secs_f64()
                );
            }
            println!(
                "events in the store: {}",
                store.event_count().await.expect("count")
            );
            let from = jiff::Timestamp::from_second(1_788_000_000 + 200 * 86_400).expect("time");
            let to = from
                .checked_add(jiff::SignedDuration::from_hours(24 * 30))
                .expect("time");
            let mut f = ReportFilter::new(from, to);
            f.year_group = Some("9".into());
            let mut times = Vec::new();
            let mut rows = 0;
            let mut total = 0;
            for _ in 0..21 {
                let t = hallpass_clock::Clock::system().instant();
                let r = store
                    .reports()
                    .blocked_by_category_per_day(&f)
                    .await
                    .expect("report");
                times.push(t.elapsed());
                rows = r.len();
                total = r.iter().map(|c| c.count).sum::<i64>();
            }
            times.sort();
            println!(
                "per-category-per-day report, year 9, 30 days: {rows} rows ({total} blocked attempts); \
                 median {:.2} ms, max {:.2} ms over {} runs",
                times[times.len() / 2].as_secs_f64() * 1e3,
                times[times.len() - 1].as_secs_f64() * 1e3,
                times.len()
            );
            let t = hallpass_clock::Clock::system().instant();
            let people = store
                .reports()
                .blocked_by_person(&f, 20)
                .await
                .expect("report");
            println!(
                "blocked-by-person (top 20), year 9, 30 days: {:.2} ms ({} rows)",
                t.elapsed().as_secs_f64() * 1e3,
                people.len()
            );
            let t = hallpass_clock::Clock::system().instant();
            let top = store
                .reports()
                .top_blocked_targets(&ReportFilter::new(from, to), 20)
                .await
                .expect("report");
            println!(
                "top blocked targets (top 20), all years, 30 days: {:.2} ms ({} rows)",
                t.elapsed().as_secs_f64() * 1e3,
                top.len()
            );
        }
        _ => {
            eprintln!("unknown mode {mode}");
            std::process::exit(2);
        }
    }
    let _ = std::fs::remove_file(&spill);
}
