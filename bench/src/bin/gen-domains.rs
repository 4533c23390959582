//! `gen-domains N [SEED] > list`: N synthetic, distinct, realistic domain names, one per
//! line (plain list format), deterministic for a seed (default 1).
//! `gen-domains --lookups N LIST [SEED]`: N lookup hosts (2-5 labels, about half hits
//! on LIST) for lookup benchmarks.

use std::io::{BufWriter, Write};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    fn usage<T>() -> T {
        eprintln!("usage: gen-domains N [SEED]\n       gen-domains --lookups N LIST [SEED]");
        std::process::exit(2)
    }
    let out = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, out.lock());
    if args.first().map(String::as_str) == Some("--lookups") {
        let n: usize = args
            .get(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(usage);
        let list = args.get(2).unwrap_or_else(usage);
        let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2);
        let text = std::fs::read_to_string(list)?;
        let listed: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        for h in hallpass_bench::domains::lookup_mix(&listed, n, seed) {
            writeln!(out, "{h}")?;
        }
    } else {
        let n: usize = args
            .first()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(usage);
        let seed: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
        for d in hallpass_bench::domains::domains(n, seed) {
            writeln!(out, "{d}")?;
        }
    }
    out.flush()
}
