#!/usr/bin/env bash
# Issue 17's benchmark: time from an approval to the first allowed DNS answer, median and
# p99 over N approvals (default 100) on the demo serve (see approval.rs). Exits 1 when
# the p99 is a second or more.
#   bench/exceptions/run.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo run --release -q -p hallpass-bench --bin approval-latency -- "${1:-100}"
