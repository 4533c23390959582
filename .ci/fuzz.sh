#!/usr/bin/env bash
# Runs every cargo-fuzz target: the DNS query path for 60 s (the floor CI holds it to),
# every other target for 15 s. cargo-fuzz needs nightly flags; on a stable-only machine
# RUSTC_BOOTSTRAP=1 unlocks them. A crash fails the run and leaves the input in
# <fuzz dir>/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
main_seconds=${1:-60}
other_seconds=${OTHER_SECONDS:-15}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
export RUSTC_BOOTSTRAP=1
found=0
for dir in fuzz crates/*/fuzz; do
  [ -f "$dir/Cargo.toml" ] || continue
  parent=$(dirname "$dir")
  for target in $(cd "$parent" && cargo fuzz list --fuzz-dir fuzz); do
    found=1
    seconds=$other_seconds
    [ "$target" = dns_query ] && seconds=$main_seconds
    echo "fuzz $dir $target for ${seconds}s"
    (cd "$parent" && cargo fuzz run --fuzz-dir fuzz "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tail -n 8)
  done
done
[ "$found" = 1 ] || { echo "no fuzz targets found"; exit 1; }
