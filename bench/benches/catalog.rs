//! Catalog lookups. By default builds an index in memory from the real UT1 tarball (if
//! `../shared` has it) plus 2,000,000 synthetic domains; `HALLPASS_CATALOG_INDEX=PATH`
//! uses an index file instead (as `bench/catalog/run.sh` does), and
//! `HALLPASS_BENCH_DOMAINS=N` changes the synthetic count, `HALLPASS_BENCH_HOSTS=FILE`
//! and `HALLPASS_BENCH_URLS=FILE` give the host and URL mixes (one per line).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hallpass_bench::domains::{domains, lookup_mix};
use hallpass_catalog::{Catalog, CatalogBuilder, ListFormat};

const TARBALL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/ut1/blacklists.tar.gz"
);

fn setup() -> (Catalog, Vec<String>) {
    let n: usize = std::env::var("HALLPASS_BENCH_DOMAINS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let synthetic = domains(n, 1);
    let catalog = match std::env::var_os("HALLPASS_CATALOG_INDEX") {
        Some(path) => {
            let t = hallpass_clock::Clock::system().instant();
            let c = Catalog::open(&path).expect("open index");
            eprintln!(
                "open: {:.0} ms (host table included)",
                t.elapsed().as_secs_f64() * 1e3
            );
            c
        }
        None => {
            let mut b = CatalogBuilder::new();
            if Path::new(TARBALL).exists() {
                let f = std::fs::File::open(TARBALL).expect("open tarball");
                b.import_ut1_tarball(f, TARBALL, &mut |_| {})
                    .expect("import UT1");
            }
            let text = synthetic.join("\n");
            b.import_list("synthetic", "synthetic", text.as_bytes(), ListFormat::Plain)
                .expect("import synthetic");
            b.build().expect("build")
        }
    };
    let hosts = match std::env::var_os("HALLPASS_BENCH_HOSTS") {
        Some(path) => read_lines(Path::new(&path)),
        None => lookup_mix(&synthetic, 100_000, 2),
    };
    (catalog, hosts)
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read list")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The host mix packed into one buffer, read in order: as a resolver or proxy reads a
/// name from the packet or request it has just received (hot in cache). A `Vec<String>`
/// would add a pointer chase to a separate allocation per host, which measured as a
/// third of the lookup time and is not part of a lookup.
struct Packed {
    text: String,
    ends: Vec<usize>,
}

impl Packed {
    fn new(hosts: &[String]) -> Packed {
        let mut text = String::with_capacity(hosts.iter().map(String::len).sum());
        let mut ends = Vec::with_capacity(hosts.len());
        for h in hosts {
            text.push_str(h);
            ends.push(text.len());
        }
        Packed { text, ends }
    }

    fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter()).map(|(a, &b)| &self.text[a..b])
    }
}

fn lookups(c: &mut Criterion) {
    let (catalog, hosts) = setup();
    let packed = Packed::new(&hosts);
    let hits = hosts
        .iter()
        .filter(|h| !catalog.lookup_host(h).is_empty())
        .count();
    let stats = catalog.stats();
    eprintln!(
        "catalog: {} host keys, {} bytes ({:.2} per key), host table {} bytes in memory \
         ({:.2} per key); lookup mix: {} hosts, {:.0}% hits",
        stats.host_keys,
        stats.bytes,
        stats.bytes as f64 / stats.host_keys.max(1) as f64,
        stats.lookup_table_bytes,
        stats.lookup_table_bytes as f64 / stats.host_keys.max(1) as f64,
        hosts.len(),
        100.0 * hits as f64 / hosts.len() as f64
    );
    assert!(
        hosts
            .iter()
            .all(|h| catalog.lookup_host(h) == catalog.lookup_host_walk(h)),
        "host table and fst walk disagree"
    );
    // Lookups per second of CPU time actually given to this thread (from the kernel's
    // schedstat), which stays meaningful when other processes share the cores.
    let on_cpu = || -> Option<u64> {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    type Lookup = fn(&Catalog, &str) -> hallpass_catalog::CategorySet;
    let paths: [(&str, Lookup); 2] = [
        ("host lookups", Catalog::lookup_host),
        ("host lookups (fst walk)", Catalog::lookup_host_walk),
    ];
    for (what, lookup) in paths {
        let Some(cpu0) = on_cpu() else { break };
        let wall = hallpass_clock::Clock::system().instant();
        let rounds = 20;
        let mut n = 0usize;
        for _ in 0..rounds {
            for h in packed.iter() {
                n += black_box(lookup(&catalog, black_box(h))).len();
            }
        }
        let wall = wall.elapsed().as_secs_f64();
        if let Some(cpu1) = on_cpu() {
            let lookups = (rounds * hosts.len()) as f64;
            let cpu = (cpu1 - cpu0) as f64 / 1e9;
            eprintln!(
                "{what}: {:.0}/s wall, {:.0}/s of on-CPU time ({:.0}% of the wall time on CPU) [{n}]",
                lookups / wall,
                lookups / cpu,
                100.0 * cpu / wall
            );
        }
    }
    let mut g = c.benchmark_group("catalog");
    g.throughput(Throughput::Elements(hosts.len() as u64));
    // The in-memory host table (what `lookup_host` uses), then the fst walk it replaced.
    g.bench_function("lookup_host_mixed", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for h in packed.iter() {
                n += black_box(catalog.lookup_host(black_box(h))).len();
            }
            n
        })
    });
    g.bench_function("lookup_host_walk_mixed", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for h in packed.iter() {
                n += black_box(catalog.lookup_host_walk(black_box(h))).len();
            }
            n
        })
    });
    let urls: Vec<String> = match std::env::var_os("HALLPASS_BENCH_URLS") {
        Some(path) => read_lines(Path::new(&path)),
        None => hosts
            .iter()
            .take(10_000)
            .enumerate()
            .map(|(i, h)| format!("http://{h}/path/{i}/index.html?q=1"))
            .collect(),
    };
    g.throughput(Throughput::Elements(urls.len() as u64));
    g.bench_function("lookup_url_mixed", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for u in &urls {
                n += black_box(catalog.lookup_url(black_box(u))).len();
            }
            n
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = lookups
}
criterion_main!(benches);
