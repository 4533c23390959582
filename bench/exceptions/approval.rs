//! Time from an approval to the first allowed DNS answer (issue 17: "within one
//! second"). Starts the whole demo `serve` in-process on loopback ports (the test kit:
//! real DNS and HTTP sockets, a SQLite store), then N times (default 100): the demo
//! student files an access request for a blocked name (a new subdomain of the demo's
//! webmail list each time), the network manager approves it for her for an hour over the
//! API, and the clock starts as the approval is sent; the name is then asked of the DNS
//! listener from her address every 2 ms until it resolves. Prints the median, p90, p99
//! and worst, and exits 1 if the p99 is a second or more.
//!
//!   cargo run --release -p hallpass-bench --bin approval-latency [-- N]
//!   bench/exceptions/run.sh [N]
//!
//! The demo clock is manual (Monday 23 November 2026, 08:00 London) and moves on 150 s
//! per request, so the request limit (5 per address in 10 minutes) never refuses one.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::Context;
use hallpass::testkit::dns::{query_a, spawn_upstream};
use hallpass::testkit::{TestOptions, TestServer};
use hallpass_clock::Clock;
use hallpass_web::Role;

const AVA: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 9);
const FLOOR: Duration = Duration::from_secs(1);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    // The server's warnings and errors (RUST_LOG to see more).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let n: usize = match std::env::args().nth(1) {
        Some(text) => text.parse().context("N: a number of approvals")?,
        None => 100,
    };
    anyhow::ensure!(n > 0, "N: at least one approval");
    let start = jiff::civil::date(2026, 11, 23)
        .at(8, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::get("Europe/London")?)?
        .timestamp();
    let clock = Clock::manual_at(start);
    let server = TestServer::start(TestOptions {
        clock: clock.clone(),
        upstreams: vec![spawn_upstream(UPSTREAM_ANSWER)?],
        ..TestOptions::default()
    })
    .await?;
    let student = server.client_for(Role::Student).await?;
    let netman = server.client_for(Role::NetworkManager).await?;
    let dns = server.dns;
    let mut took = Vec::with_capacity(n);
    let mut call = Vec::with_capacity(n);
    for i in 0..n {
        clock.advance(Duration::from_secs(150));
        let name = format!("approval-{i}.webmail-demo.test");
        anyhow::ensure!(
            !resolves(dns, &name).await?,
            "{name} resolves before any approval: is it in the webmail list?"
        );
        let filed = student
            .post("/api/v1/requests")
            .header("content-type", "application/json")
            .body(serde_json::json!({"target": name, "reason": "benchmark"}).to_string())
            .send()
            .await?;
        anyhow::ensure!(filed.status() == 201, "filing: {}", filed.text().await?);
        let id = serde_json::from_str::<serde_json::Value>(&filed.text().await?)?["id"]
            .as_i64()
            .context("the request's id")?;
        let until = (clock.now() + jiff::SignedDuration::from_hours(1)).to_string();
        let sent = Clock::system().instant();
        let approved = netman
            .post(&format!("/api/v1/requests/{id}/approve"))
            .header("content-type", "application/json")
            .body(serde_json::json!({"scope": "person", "until": until}).to_string())
            .send()
            .await?;
        call.push(sent.elapsed());
        anyhow::ensure!(
            approved.status() == 200,
            "approving: {}",
            approved.text().await?
        );
        loop {
            if resolves(dns, &name).await? {
                break;
            }
            anyhow::ensure!(
                sent.elapsed() < Duration::from_secs(10),
                "{name} still blocked 10 s after its approval"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        took.push(sent.elapsed());
        if (i + 1) % 20 == 0 {
            eprintln!("{} of {n} approvals", i + 1);
        }
    }
    server.stop().await?;
    took.sort();
    call.sort();
    let at = |v: &[Duration], q: f64| {
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1000.0
    };
    println!("approval -> first allowed DNS answer, {n} approvals (demo serve, SQLite):");
    println!(
        "  median {:.1} ms   p90 {:.1} ms   p99 {:.1} ms   worst {:.1} ms",
        at(&took, 0.5),
        at(&took, 0.9),
        at(&took, 0.99),
        at(&took, 1.0)
    );
    println!(
        "  (the approve call itself: median {:.1} ms, p99 {:.1} ms)",
        at(&call, 0.5),
        at(&call, 0.99)
    );
    let p99 = took[((took.len() as f64 * 0.99).ceil() as usize).clamp(1, took.len()) - 1];
    if p99 >= FLOOR {
        println!("FAIL: p99 {p99:?} is not under {FLOOR:?}");
        std::process::exit(1);
    }
    println!("ok: p99 under {FLOOR:?}");
    Ok(())
}

async fn resolves(dns: std::net::SocketAddr, name: &str) -> anyhow::Result<bool> {
    let name = name.to_string();
    let answer = tokio::task::spawn_blocking(move || query_a(dns, AVA, &name)).await??;
    Ok(answer.addrs == [UPSTREAM_ANSWER])
}
