//! The real `serve` wiring in-process (`hallpass::testkit`): the first service to fail
//! stops the rest; `/healthz` reports what is degraded; the injected clock decides.

use super::monday_at;
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::Duration;

use futures::future::BoxFuture;
use hallpass::cmd::serve::{Service, Settings, Shared};
use hallpass::testkit::dns::{query_a, spawn_upstream};
use hallpass::testkit::{TestOptions, TestServer};
use hallpass_clock::Clock;

const STUDENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The demo's block answers point at its own block page, which the kit serves on loopback.
const DEMO_BLOCK_PAGE: Ipv4Addr = Ipv4Addr::LOCALHOST;

async fn ask(server: &TestServer, from: IpAddr, name: &str) -> hallpass::testkit::dns::Answer {
    let (dns, name) = (server.dns, name.to_string());
    tokio::task::spawn_blocking(move || query_a(dns, from, &name).unwrap())
        .await
        .unwrap()
}

async fn healthz(server: &TestServer) -> (u16, String) {
    let admin = server.admin;
    tokio::task::spawn_blocking(move || hallpass::testkit::http_get(admin, "/healthz").unwrap())
        .await
        .unwrap()
}

/// A service that fails as soon as it runs (as a DNS listener that died for good would).
fn failing<'a>(_: &'a Shared, _: &'a Settings) -> BoxFuture<'a, anyhow::Result<Option<Service>>> {
    Box::pin(async {
        Ok(Some(Service::follower("doomed", async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Err(anyhow::anyhow!("its listener died"))
        })))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_service_to_fail_stops_every_other_and_serve_fails() {
    let server = TestServer::start(TestOptions {
        extra: vec![failing],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let (dns, admin) = (server.dns, server.admin);
    let stop = server.stop.clone();
    let health = std::sync::Arc::clone(&server.shared.health);
    let error = server.wait().await.expect_err("serve must fail");
    let text = format!("{error:#}");
    assert!(text.contains("doomed: its listener died"), "{text}");
    assert!(stop.is_cancelled(), "the failure gave the stop signal");
    let problems = health.problems();
    assert!(
        problems
            .iter()
            .any(|p| p == "service doomed is not running: its listener died"),
        "{problems:?}"
    );
    // DNS and admin stopped with it: their ports are closed.
    assert!(TcpStream::connect_timeout(&admin, Duration::from_secs(1)).is_err());
    assert!(TcpStream::connect_timeout(&dns, Duration::from_secs(1)).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_injected_clock_decides_lesson_time_and_lunchtime() {
    let clock = Clock::manual_at(monday_at(10, 0));
    let server = TestServer::start(TestOptions {
        clock: clock.clone(),
        upstreams: vec![spawn_upstream(UPSTREAM_ANSWER).unwrap()],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let answer = ask(&server, STUDENT, "www.deezer.com").await;
    assert_eq!(
        answer.addrs,
        vec![DEMO_BLOCK_PAGE],
        "streaming is blocked in lessons"
    );
    assert!(answer.cites("wcs 4.3.7"), "{answer:?}");
    clock.set(monday_at(12, 50));
    let answer = ask(&server, STUDENT, "www.deezer.com").await;
    assert_eq!(answer.addrs, vec![UPSTREAM_ANSWER], "allowed at lunchtime");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reload_keeps_serving_and_degrades_health_until_a_good_one() {
    let policy = include_str!("../../../../../examples/policies/wcs.toml");
    let server = TestServer::start(TestOptions {
        policy: Some(policy.to_string()),
        roster: Some(
            "username,display_name,role,year_group,form,email,mis_id\n\
             ava,Ava,student,9,9B,ava@school.example,M1\n"
                .to_string(),
        ),
        sessions: vec![(STUDENT, "ava".to_string())],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let (status, body) = healthz(&server).await;
    assert_eq!((status, body.starts_with("ok ")), (200, true), "{body}");

    std::fs::write(
        server.policy_path(),
        format!("{policy}\nthis is = = not toml\n"),
    )
    .unwrap();
    let mut degraded = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (status, body) = healthz(&server).await;
        if status != 200 {
            degraded = Some((status, body));
            break;
        }
    }
    let (status, body) = degraded.expect("/healthz degraded within 5 s of a broken policy");
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("degraded: reload refused at "), "{body}");
    assert!(body.contains("policy.toml"), "names the file: {body}");
    let answer = ask(&server, STUDENT, "gmail.com").await;
    assert!(
        answer.cites("wcs 4.5.1"),
        "the old policy keeps serving: {answer:?}"
    );
    let (_, metrics) = server.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("\nhallpass_reload_refused_total 1\n"),
        "{metrics}"
    );

    std::fs::write(server.policy_path(), policy).unwrap();
    let mut healthy = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if healthz(&server).await.0 == 200 {
            healthy = true;
            break;
        }
    }
    assert!(healthy, "a good reload clears the refusal");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_that_all_fail_degrade_health() {
    // The default upstream, 127.0.0.1:9, never answers.
    let server = TestServer::start(TestOptions::default()).await.unwrap();
    let (status, body) = healthz(&server).await;
    assert_eq!(status, 200, "no upstream traffic yet: {body}");
    for name in ["www.bbc.co.uk", "en.wikipedia.org", "www.gov.uk"] {
        let answer = ask(&server, "127.0.0.2".parse().unwrap(), name).await;
        assert_eq!(answer.rcode, 2, "SERVFAIL without an upstream: {answer:?}");
    }
    let (status, body) = healthz(&server).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("degraded: upstream resolvers down"), "{body}");
    server.stop().await.unwrap();
}

/// Issue 15.2: the data directory deleted while serving. The writer notices the database
/// file is gone, `/healthz` fails naming it, and the events recorded afterwards are kept
/// in a recreated spill file (not written into the deleted database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_data_directory_fails_health_and_keeps_the_events() {
    let server = TestServer::start(TestOptions {
        upstreams: vec![spawn_upstream(UPSTREAM_ANSWER).unwrap()],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    for i in 0..5 {
        ask(&server, STUDENT, &format!("before-{i}.example")).await;
    }
    let (status, body) = healthz(&server).await;
    assert_eq!(status, 200, "{body}");

    std::fs::remove_dir_all(server.data_dir()).unwrap();
    for i in 0..30 {
        ask(&server, STUDENT, &format!("after-deletion-{i}.example")).await;
    }
    let mut degraded = None;
    for _ in 0..50 {
        let (status, body) = healthz(&server).await;
        if status != 200 {
            degraded = Some((status, body));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = degraded.expect("/healthz fails within 5 s of the deletion");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("database file was deleted or replaced"),
        "names the problem: {body}"
    );
    assert!(server.shared.writer.metrics().snapshot().database_missing);

    // Every query asked after the deletion is in the recreated spill file.
    let spill = server.data_dir().join("events.spill");
    let mut kept = 0;
    for _ in 0..50 {
        server.shared.writer.flush().await;
        let text = std::fs::read_to_string(&spill).unwrap_or_default();
        kept = (0..30)
            .filter(|i| text.contains(&format!("\"after-deletion-{i}.example\"")))
            .count();
        if kept == 30 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(kept, 30, "events after the deletion are spilled, not lost");
    let m = server.shared.writer.metrics().snapshot();
    assert_eq!(m.lost, 0, "{m:?}");
    server.stop().await.unwrap();
}
