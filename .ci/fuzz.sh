#!/usr/bin/env bash
# Runs every cargo-fuzz target: the DNS query path for MAIN seconds (first argument,
# default 60: the floor CI holds it to), every other target for OTHER_SECONDS (default
# 15). The catalog_open target damages a valid index and fixes up its CRC-32, so its
# inputs reach the structural checks behind the checksum. crates/proxy/fuzz's
# proxy_parse covers the web proxy's own parsing (SNI peek, CONNECT targets, URL
# normalisation, search terms and safe search parameters). cargo-fuzz needs nightly
# flags; on a stable-only machine RUSTC_BOOTSTRAP=1 unlocks them. A crash fails the run
# and leaves the input in <fuzz dir>/artifacts/; so does a fuzz directory whose targets
# cannot be listed (a broken fuzz crate must not silently drop its targets).
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
  # Captured first: `set -e` does not see a command substitution that fails inside a
  # `for` list, which would run no target of this directory and still pass.
  if ! targets=$(cd "$parent" && cargo fuzz list --fuzz-dir fuzz); then
    echo "cargo fuzz list failed in $dir" >&2
    exit 1
  fi
  [ -n "$targets" ] || { echo "no fuzz targets listed in $dir" >&2; exit 1; }
  for target in $targets; do
    found=1
    seconds=$other_seconds
    [ "$target" = dns_query ] && seconds=$main_seconds
    echo "fuzz $dir $target for ${seconds}s"
    (cd "$parent" && cargo fuzz run --fuzz-dir fuzz "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tail -n 8)
  done
done
[ "$found" = 1 ] || { echo "no fuzz targets found"; exit 1; }
