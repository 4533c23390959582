#!/usr/bin/env bash
# Runs every cargo-fuzz target for N seconds (default 60). cargo-fuzz needs nightly
# flags; on a stable-only machine RUSTC_BOOTSTRAP=1 unlocks them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
export RUSTC_BOOTSTRAP=1
found=0
for dir in fuzz crates/*/fuzz; do
  [ -f "$dir/Cargo.toml" ] || continue
  for target in $(cd "$dir/.." && cargo fuzz list --fuzz-dir "$(basename "$dir")"); do
    found=1
    echo "fuzz $dir $target for ${seconds}s"
    (cd "$dir/.." && cargo fuzz run --fuzz-dir "$(basename "$dir")" "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tail -n 12)
  done
done
[ "$found" = 1 ] || { echo "no fuzz targets found"; exit 1; }
