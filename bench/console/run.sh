#!/usr/bin/env bash
# Console page times on a large store: fills a SQLite store with N events (default 10
# million, spread over 365 days, 10% blocked: `store-ingest report`), starts the demo
# `hallpass serve` on it, signs in as the demo network manager and times each page and
# API call with curl (the median of 5). Issue 16 asks for every page under 300 ms.
#   bench/console/run.sh [N]          PROFILE=debug for a quick smoke run (slower pages)
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
printf '%-45s %10s\n' "page" "median ms"
for path in /dashboard /api/v1/dashboard /activity "/activity?verdict=block" \
  "/api/v1/events?category=games" "/api/v1/events?person=nobody" /people /policy \
  "/policy?group=students&target=www.roblox.com" /audit; do
  times=()
  for _ in 1 2 3 4 5; do
    times+=("$(curl -s -o /dev/null -b "$work/jar" -w '%{time_total}' "$base$path")")
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
  printf '%-45s %10.1f\n' "$path" "$(echo "$median * 1000" | bc -l)"
done
