//! The resolver alone, for load tests: `bench_server --listen 127.0.0.1:5354
//! --upstream 127.0.0.1:5353 [--blocklist FILE] [--log] [--threads N] [--udp-tasks]`.
//!
//! Without `--blocklist` every name is allowed; with it, a name whose domain or any
//! parent domain is listed is answered null (0.0.0.0 / ::), like `address=/d/0.0.0.0`
//! in dnsmasq or `always_null` in unbound. `--log` hands every query record to a
//! consumer thread through a bounded channel, in per-thread batches (what the real
//! event writer does); without it records are dropped. Prints `ready` once listening; stops on SIGINT or
//! SIGTERM and prints its metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use hallpass_dns::{
    BlockMode, DnsConfig, DnsServer, EdeCode, FilterDecision, FilterVerdict, QueryFilter, QueryLog,
    QueryRecord, parse_upstream,
};

struct ListFilter {
    blocked: HashSet<Box<str>>,
    reason: Arc<str>,
}

impl QueryFilter for ListFilter {
    type Info = ();
    fn check(&self, _client: IpAddr, qname: &str, _qtype: u16) -> FilterDecision<()> {
        let mut name = qname;
        loop {
            if self.blocked.contains(name) {
                return FilterDecision::new(FilterVerdict::Block {
                    mode: BlockMode::Null,
                    ttl: 10,
                    reason: self.reason.clone(),
                    ede: EdeCode::Blocked,
                });
            }
            match name.split_once('.') {
                Some((_, parent)) => name = parent,
                None => return FilterDecision::allow(),
            }
        }
    }
}

/// Hands records to a consumer thread in batches of `BATCH` per worker thread: one
/// channel operation (and at most one wake-up) per batch instead of per query. (A real
/// writer would also flush a partial batch on a timer.)
struct ChannelLog(mpsc::SyncSender<Vec<QueryRecord<()>>>, Arc<AtomicU64>);

const BATCH: usize = 256;

thread_local! {
    static PENDING: std::cell::RefCell<Vec<QueryRecord<()>>> = std::cell::RefCell::new(Vec::with_capacity(BATCH));
}

impl QueryLog<()> for ChannelLog {
    fn record(&self, r: QueryRecord<()>) {
        PENDING.with_borrow_mut(|pending| {
            pending.push(r);
            if pending.len() >= BATCH {
                let batch = std::mem::replace(pending, Vec::with_capacity(BATCH));
                if let Err(mpsc::TrySendError::Full(b) | mpsc::TrySendError::Disconnected(b)) =
                    self.0.try_send(batch)
                {
                    self.1.fetch_add(b.len() as u64, Ordering::Relaxed);
                }
            }
        });
    }
}

enum Log {
    Null,
    Channel(ChannelLog),
}

impl QueryLog<()> for Log {
    fn record(&self, r: QueryRecord<()>) {
        if let Log::Channel(c) = self {
            c.record(r)
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut config = DnsConfig::default();
    let mut blocklist = None;
    let mut log = false;
    let mut threads = 2;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => config.listen = vec![args.next().unwrap().parse().unwrap()],
            "--upstream" => config
                .upstreams
                .push(parse_upstream(&args.next().unwrap()).unwrap()),
            "--blocklist" => blocklist = Some(args.next().unwrap()),
            "--log" => log = true,
            "--udp-tasks" => config.udp_threads = false,
            "--threads" => threads = args.next().unwrap().parse().unwrap(),
            other => panic!("unknown argument {other}"),
        }
    }
    let mut blocked = HashSet::new();
    if let Some(path) = blocklist {
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let l = line.trim().trim_end_matches('.').to_ascii_lowercase();
            if !l.is_empty() && !l.starts_with('#') {
                blocked.insert(l.into_boxed_str());
            }
        }
        eprintln!("loaded {} blocked domains", blocked.len());
    }
    config.udp_sockets = threads;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    let dropped = Arc::new(AtomicU64::new(0));
    let (logger, consumer) = if log {
        let (tx, rx) = mpsc::sync_channel::<Vec<QueryRecord<()>>>(1024);
        let consumer = std::thread::spawn(move || rx.iter().map(|b| b.len()).sum::<usize>());
        (
            Log::Channel(ChannelLog(tx, dropped.clone())),
            Some(consumer),
        )
    } else {
        (Log::Null, None)
    };
    let filter = ListFilter {
        blocked,
        reason: "Blocked by the bench list".into(),
    };
    rt.block_on(async {
        let server = DnsServer::bind(config, filter, logger).await.unwrap();
        println!("ready {:?}", server.udp_addrs());
        let metrics = server.metrics();
        server
            .run(async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .unwrap();
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            })
            .await
            .unwrap();
        let mut s = String::new();
        metrics.render_prometheus(&mut s);
        eprintln!("{s}");
    });
    drop(rt);
    if let Some(c) = consumer {
        eprintln!(
            "log records consumed: {}, dropped: {}",
            c.join().unwrap(),
            dropped.load(Ordering::Relaxed)
        );
    }
}
