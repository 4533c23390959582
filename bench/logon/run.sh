#!/usr/bin/env bash
# Issue 19's benchmark: logon API calls per second while DNS is under load, and the time
# from a logon call to the first DNS answer with the new identity (median, p99 over N
# logons, default 100). See logon.rs. Exits 1 when the p99 is a second or more.
#   bench/logon/run.sh [N] [--seconds S] [--dns-threads T]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo run --release -q -p hallpass-bench --bin logon-latency -- "$@"
