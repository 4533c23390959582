#!/usr/bin/env bash
# bench/dns/ab.sh — two or more builds of hallpass against each other, in the same
# period, alternating, so that a change of a few percent shows through the machine's
# drift (a single run moves by 10-15%).
#
#   KEEP=1 WORK=/tmp/dnsb TARGETS=hallpass bench/dns/run.sh     # once: list, catalog, queries
#   bench/dns/ab.sh /tmp/dnsb OLD/hallpass NEW/hallpass          # ROUNDS (3) DURATION (10)
#
# Each round starts each build in turn with a fresh data directory on the bench's policy
# and catalog, sends one warm pass, then dnsperf -c 4 -T 2 -q 100 -l DURATION, and prints
# q/s, the server's CPU per answered query, and how much of it was the event writer's
# thread (`hallpass-events`, from /proc/PID/task/*/stat): per-thread CPU is steadier than
# q/s. With LAT_DURATION=N, also a latency run of N seconds (dnsperf -v) after it, and
# its p50, p99 and p99.9. Needs dnsmasq (the upstream) and dnsperf, as run.sh does.
set -euo pipefail

[[ $# -ge 3 ]] || { sed -n '2,15p' "$0" >&2; exit 2; }
WORK=$1
shift
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
LAT_DURATION=${LAT_DURATION:-0}   # > 0: also a latency run (dnsperf -v) of this many seconds
PORT_UP=15390
PORT=15393
for f in policy.toml catalog.idx queries.txt; do
  [[ -f $WORK/$f ]] || { echo "ab.sh: $WORK/$f missing: run run.sh with KEEP=1 WORK=$WORK first" >&2; exit 2; }
done

PIDS=()
SERVER=""
cleanup() {
  for pid in $SERVER "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK/ab-data"
}
trap cleanup EXIT

dnsmasq -k --no-resolv --no-hosts --port=$PORT_UP --listen-address=127.0.0.1 --bind-interfaces \
  --address=/#/192.0.2.1 --local-ttl=3600 --pid-file= >/dev/null 2>&1 &
PIDS+=($!)

ticks() { awk '{ print $14 + $15 }' "$1"; }
writer_ticks() { # PID -> CPU ticks of its hallpass-events thread
  local t
  for t in /proc/"$1"/task/*; do
    if grep -qx hallpass-events "$t/comm" 2>/dev/null; then ticks "$t/stat"; fi
  done
}

for round in $(seq 1 "$ROUNDS"); do
  for bin in "$@"; do
    rm -rf "$WORK/ab-data" && mkdir -p "$WORK/ab-data"
    "$bin" serve --dns-listen "127.0.0.1:$PORT" --upstream "127.0.0.1:$PORT_UP" \
      --policy "$WORK/policy.toml" --catalog "$WORK/catalog.idx" --data-dir "$WORK/ab-data" \
      --admin-listen 127.0.0.1:0 >"$WORK/ab.log" 2>&1 &
    pid=$!
    SERVER=$pid
    for _ in $(seq 1 100); do
      dig +short +time=1 +tries=1 @127.0.0.1 -p $PORT example.org A 2>/dev/null | grep -q '^[0-9]' && break
      kill -0 "$pid" 2>/dev/null || { echo "ab.sh: $bin stopped: $(tail -1 "$WORK/ab.log")" >&2; exit 1; }
      sleep 0.2
    done
    # Answering is not enough: a server that cannot take its TCP port answers UDP for a
    # moment before it exits.
    sleep 0.5
    kill -0 "$pid" 2>/dev/null || { echo "ab.sh: $bin stopped: $(tail -1 "$WORK/ab.log")" >&2; exit 1; }
    dnsperf -s 127.0.0.1 -p $PORT -d "$WORK/queries.txt" -c 4 -T 2 -q 100 -n 1 >/dev/null 2>&1 || true
    c0=$(ticks "/proc/$pid/stat"); w0=$(writer_ticks "$pid")
    dnsperf -s 127.0.0.1 -p $PORT -d "$WORK/queries.txt" -c 4 -T 2 -q 100 -l "$DURATION" \
      >"$WORK/ab.perf" 2>&1 || true
    c1=$(ticks "/proc/$pid/stat"); w1=$(writer_ticks "$pid")
    lat=""
    if [[ $LAT_DURATION -gt 0 ]]; then
      lat=$(dnsperf -s 127.0.0.1 -p $PORT -d "$WORK/queries.txt" -c 4 -T 2 -q 100 -l "$LAT_DURATION" -v \
        2>/dev/null | awk '/^> / { print $NF }' | sort -g | awk '{ v[NR] = $1 } END {
          if (NR == 0) exit
          k = split("0.50 0.99 0.999", q, " ")
          for (i = 1; i <= k; i++) { j = int(q[i] * NR); if (j < 1) j = 1; p[i] = v[j] * 1000 }
          printf "  p50 %.3f p99 %.3f p99.9 %.3f ms", p[1], p[2], p[3] }')
    fi
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    SERVER=""
    awk -v bin="$bin" -v round="$round" -v lat="$lat" -v c="$((c1 - c0))" -v w="$((${w1:-0} - ${w0:-0}))" \
      -v hz="$(getconf CLK_TCK)" '
      /Queries per second/ { qps = $4 }
      /Queries completed/ { n = $3 }
      END {
        if (n == 0) { printf "round %d %s: no answers (see ab.log)\n", round, bin; exit }
        printf "round %d %-40s %8.0f q/s %6.2f us CPU/query (writer thread %.2f)%s\n",
          round, bin, qps, c * 1e6 / hz / n, w * 1e6 / hz / n, lat
      }' "$WORK/ab.perf"
  done
done
