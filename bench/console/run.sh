#!/usr/bin/env bash
# Console page times on a large store: fills a SQLite store with N events (default 10
# million, spread over 365 days, 10% blocked: `store-ingest report`), starts the demo
# `hallpass serve` on it, signs in as the demo network manager and times each page and
# API call with curl (the median of 5). Issue 16 asks for every page under 300 ms: a page
# whose median is 300 ms or more (FLOOR_MS to change it), or that does not answer 200,
# makes the script exit 1.
#   bench/console/run.sh [N]          PROFILE=debug for a quick smoke run (slower pages)
#   bench/console/run.sh 20000        a small store, to check the script itself
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-10000000}
profile=${PROFILE:-release}
flag=$([ "$profile" = release ] && echo --release || true)
cargo build $flag -p hallpass -p hallpass-bench --bin hallpass --bin store-ingest
target=${CARGO_TARGET_DIR:-target}/$profile
work=$(mktemp -d)
trap 'kill "$serve_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
echo "filling $work with $n events..."
"$target/store-ingest" report "sqlite://$work/hallpass.db" "$n" | tail -n 3
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
web=$(free_port)
"$target/hallpass" serve --data-dir "$work" --dns-listen "127.0.0.1:$(free_port)" \
  --admin-listen "127.0.0.1:$(free_port)" --web-listen "127.0.0.1:$web" --upstream 127.0.0.1:9 \
  >"$work/serve.out" 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 1 600); do grep -q "Stop with" "$work/serve.out" 2>/dev/null && break; sleep 0.5; done
grep -q "Stop with" "$work/serve.out" || { cat "$work/serve.out" "$work/serve.log"; exit 1; }
password=$(awk '$1 == "network_manager" {print $3}' "$work/serve.out")
base="http://127.0.0.1:$web"
curl -sf -c "$work/jar" -H 'content-type: application/json' \
  -d "{\"username\":\"ms.netman\",\"password\":\"$password\"}" "$base/api/v1/login" >/dev/null
floor_ms=${FLOOR_MS:-300}
printf '%-45s %10s  %s\n' "page" "median ms" "floor ${floor_ms} ms"
misses=0
for path in /dashboard /api/v1/dashboard /activity "/activity?verdict=block" \
  "/api/v1/events?category=games" "/api/v1/events?person=nobody" /people /policy \
  "/policy?group=students&target=www.roblox.com" /audit; do
  times=()
  for _ in 1 2 3 4 5; do
    out=$(curl -s -o /dev/null -b "$work/jar" -w '%{http_code} %{time_total}' "$base$path")
    [ "${out%% *}" = 200 ] || { echo "$path answered ${out%% *}, not 200"; exit 1; }
    times+=("${out#* }")
  done
  median_ms=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p | awk '{printf "%.1f", $1 * 1000}')
  verdict=$(awk -v m="$median_ms" -v f="$floor_ms" 'BEGIN { print (m < f) ? "ok" : "SLOW" }')
  [ "$verdict" = ok ] || misses=$((misses + 1))
  printf '%-45s %10s  %s\n' "$path" "$median_ms" "$verdict"
done
if [ "$misses" -gt 0 ]; then
  echo "FAIL: $misses of the pages took ${floor_ms} ms or more (median of 5) on $n events"
  exit 1
fi
echo "ok: every page under ${floor_ms} ms (median of 5) on $n events"
