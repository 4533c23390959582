//! Issue 19's benchmark: logon API calls per second sustained while the DNS filter is
//! under load, and the time from a logon call to the first DNS answer with the new
//! identity (median, p99). Starts the whole demo `serve` in-process on loopback ports
//! (the test kit: real DNS and HTTP sockets, a SQLite store) with a local upstream.
//!
//! 1. DNS load: `--dns-threads` threads (default 2) ask a mix of allowed and blocked
//!    names from 250 loopback addresses for the whole run, as fast as answers come.
//! 2. Throughput: for `--seconds` (default 10), 8 concurrent clients post logons (a
//!    `sessions` token, as the shipped logon scripts do) for the demo's people at
//!    rotating addresses 127.0.1.0/24.
//! 3. Latency: N times (default 100) Ben logs on at a fresh address (unidentified
//!    before: every name refused, wcs 2.1); the clock starts as the call is sent and
//!    stops at the first DNS answer from that address that resolves.
//!
//! Prints calls/s, DNS queries/s during each phase, and the latency's median, p90, p99 and
//! worst; exits 1 if the p99 is a second or more (the "within a second").
//!
//!   cargo run --release -p hallpass-bench --bin logon-latency -- [N] [--seconds S] [--dns-threads T]
//!   bench/logon/run.sh [N]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use hallpass::testkit::dns::{query_a, spawn_upstream};
use hallpass::testkit::{TestOptions, TestServer};
use hallpass_clock::Clock;

const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 9);
const FLOOR: Duration = Duration::from_secs(1);
/// Allowed for a student, refused while unidentified.
const PROBE: &str = "www.bbc.co.uk";
const PEOPLE: [&str; 4] = ["ava.student", "ben.student", "mr.teacher", "ms.marketing"];
const LOAD_NAMES: [&str; 6] = [
    "www.bbc.co.uk",
    "gmail.com",
    "www.wikipedia.org",
    "www.facebook.com",
    "www.roblox.com",
    "news.example.org",
];

struct Args {
    n: usize,
    seconds: u64,
    dns_threads: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        n: 100,
        seconds: 10,
        dns_threads: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => a.seconds = it.next().context("--seconds S")?.parse()?,
            "--dns-threads" => a.dns_threads = it.next().context("--dns-threads T")?.parse()?,
            n => {
                a.n = n
                    .parse()
                    .with_context(|| format!("N: a number of logons, not {n:?}"))?
            }
        }
    }
    anyhow::ensure!(a.n > 0 && a.seconds > 0, "N and S must be at least 1");
    Ok(a)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = args()?;
    let server = TestServer::start(TestOptions {
        clock: Clock::system(),
        upstreams: vec![spawn_upstream(UPSTREAM_ANSWER)?],
        ..TestOptions::default()
    })
    .await?;
    let token = server.token("bench-logon", &["sessions"]).await?;
    let base = server.web_base();

    // 1. DNS load for the whole run.
    let stop = Arc::new(AtomicBool::new(false));
    let queries = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for t in 0..args.dns_threads {
        let (stop, queries, dns) = (Arc::clone(&stop), Arc::clone(&queries), server.dns);
        load.push(std::thread::spawn(move || {
            dns_load(dns, t, &stop, &queries)
        }));
    }
    let clock = Clock::system();

    // 2. Throughput.
    let http = reqwest::Client::new();
    let calls = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let q0 = queries.load(Ordering::Relaxed);
    let started = clock.instant();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut clients = Vec::new();
    for c in 0..8u32 {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        let (calls, failures, clock) = (Arc::clone(&calls), Arc::clone(&failures), clock.clone());
        clients.push(tokio::spawn(async move {
            let mut i = c;
            while clock.instant() < deadline {
                let ip = Ipv4Addr::new(127, 0, 1, (i % 250) as u8 + 1);
                let user = PEOPLE[(i as usize) % PEOPLE.len()];
                let ok = http
                    .post(format!("{base}/api/v1/sessions"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(serde_json::json!({"user": user, "ip": ip.to_string(), "workstation": format!("BENCH-{i}")}).to_string())
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 201);
                if ok {
                    calls.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                i += 8;
            }
        }));
    }
    for c in clients {
        c.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let logons = calls.load(Ordering::Relaxed);
    let dns_during = (queries.load(Ordering::Relaxed) - q0) as f64 / elapsed;
    let failed = failures.load(Ordering::Relaxed);
    println!(
        "logon API under DNS load: {:.0} calls/s over {elapsed:.1} s ({logons} calls, {failed} failed); \
         DNS meanwhile {dns_during:.0} queries/s from {} threads",
        logons as f64 / elapsed,
        args.dns_threads
    );

    // 3. Latency: logon call -> first DNS answer with the new identity.
    let mut took = Vec::with_capacity(args.n);
    let q1 = queries.load(Ordering::Relaxed);
    let phase = clock.instant();
    for i in 0..args.n {
        let ip = IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            2 + (i / 250) as u8,
            (i % 250) as u8 + 1,
        ));
        anyhow::ensure!(
            !resolves(server.dns, ip).await?,
            "{ip} resolves {PROBE} before anyone logged on there"
        );
        let sent = clock.instant();
        let r = http
            .post(format!("{base}/api/v1/sessions"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(serde_json::json!({"user": "ben.student", "ip": ip.to_string()}).to_string())
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "logon: {}", r.text().await?);
        while !resolves(server.dns, ip).await? {
            anyhow::ensure!(
                sent.elapsed() < Duration::from_secs(10),
                "{ip} still unidentified 10 s after its logon"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        took.push(sent.elapsed());
        if (i + 1) % 20 == 0 {
            eprintln!("{} of {} logons timed", i + 1, args.n);
        }
    }
    let dns_latency_phase =
        (queries.load(Ordering::Relaxed) - q1) as f64 / phase.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in load {
        let _ = t.join();
    }
    server.stop().await?;

    took.sort();
    let at = |q: f64| {
        let i = ((took.len() as f64 * q).ceil() as usize).clamp(1, took.len()) - 1;
        took[i]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "logon call -> first DNS answer as the person, {} logons (DNS meanwhile {dns_latency_phase:.0} q/s):",
        args.n
    );
    println!(
        "  median {:.1} ms   p90 {:.1} ms   p99 {:.1} ms   worst {:.1} ms",
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(0.99)),
        ms(at(1.0))
    );
    if at(0.99) >= FLOOR {
        println!("FAIL: p99 {:?} is not under {FLOOR:?}", at(0.99));
        std::process::exit(1);
    }
    println!("ok: p99 under {FLOOR:?}");
    Ok(())
}

/// Asks names from 250 addresses until `stop`; counts the answers.
fn dns_load(dns: SocketAddr, thread: usize, stop: &AtomicBool, queries: &AtomicU64) {
    let mut i = thread * 7919;
    while !stop.load(Ordering::Relaxed) {
        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 3, (i % 250) as u8 + 1));
        if query_a(dns, from, LOAD_NAMES[i % LOAD_NAMES.len()]).is_ok() {
            queries.fetch_add(1, Ordering::Relaxed);
        }
        i += 1;
    }
}

async fn resolves(dns: SocketAddr, from: IpAddr) -> anyhow::Result<bool> {
    let answer = tokio::task::spawn_blocking(move || query_a(dns, from, PROBE)).await??;
    Ok(answer.addrs == [UPSTREAM_ANSWER])
}
