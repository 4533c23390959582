#!/usr/bin/env bash
# bench/dns/run.sh — Hallpass's DNS filter against dnsmasq and unbound, on this machine,
# in the same run, with the same blocklist, the same upstream and the same queries.
#
#   bench/dns/run.sh                      # everything available
#   TARGETS="dnsmasq unbound crate" SYNTH=200000 DURATION=10 bench/dns/run.sh
#
# Targets (TARGETS, space separated, default "dnsmasq unbound hallpass crate"):
#   dnsmasq   dnsmasq as a filter: address=/DOMAIN/0.0.0.0 per blocked domain
#   unbound   unbound as a filter: local-zone "DOMAIN." always_null, num-threads 2
#   hallpass  target/release/hallpass serve --dns-listen --upstream --policy --catalog
#             --data-dir (catalog built with `hallpass catalog import`; every query
#             recorded as an event)
#   crate     the hallpass-dns crate alone: examples/bench_server with the same list in
#             a HashSet filter, records handed to a consumer thread (--log)
# Not in the default, for information beside the floors (which are set against the peers
# without a query log): the peers recording every query as Hallpass does, each its own
# way (a log file).
#   dnsmasq_log  dnsmasq as above plus log-queries, log-facility=FILE
#   unbound_log  unbound as above plus log-queries: yes, logfile: FILE
# All forward to one fixed-answer upstream (dnsmasq --address=/#/192.0.2.1
# --local-ttl=3600). Blocklist: the UT1 domains (../shared/data/ut1) plus SYNTH synthetic
# domains (bench's gen-domains, or a Python fallback). Query file: QUERIES lines, half
# blocked names (listed domains and subdomains of them), half allowed, drawn with a
# heavy-tailed distribution so names repeat as in real traffic.
#
# Every target is started first: wait until it answers (load time reported), check one
# blocked and one allowed answer with dig, one warm pass (dnsperf -n 1). Then ROUNDS
# rounds, each giving every target in turn (the order rotating) a throughput run
# (dnsperf -c 4 -T 2 -q 100 -l DURATION) and a latency run (the same with -v,
# LAT_DURATION seconds). Reported: the median q/s and CPU per query over the rounds (and
# the range of q/s), latency percentiles over all rounds' queries, resident memory
# (VmRSS, VmHWM) at the end. The machine's cores are shared with dnsperf, and a peer's
# speed moves by 10-15% between runs: compare ratios of medians from one run.
#
# Needs: dnsmasq unbound dnsperf dnsutils python3 (apt-get installs missing ones).
# Environment: SYNTH (2000000) QUERIES (200000) ROUNDS (3) DURATION (10) LAT_DURATION (5)
#   WORK (a new /tmp dir) UT1 (path to blacklists.tar.gz) HALLPASS_BIN CRATE_BIN
#   GEN_DOMAINS BUILD (1: cargo build missing binaries) KEEP (1: keep WORK)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SYNTH=${SYNTH:-2000000}
QUERIES=${QUERIES:-200000}
DURATION=${DURATION:-10}
LAT_DURATION=${LAT_DURATION:-5}
ROUNDS=${ROUNDS:-3}
TARGETS=${TARGETS:-"dnsmasq unbound hallpass crate"}
UT1=${UT1:-$ROOT/../shared/data/ut1/blacklists.tar.gz}
HALLPASS_BIN=${HALLPASS_BIN:-$TARGET_DIR/release/hallpass}
CRATE_BIN=${CRATE_BIN:-$TARGET_DIR/release/examples/bench_server}
GEN_DOMAINS=${GEN_DOMAINS:-$TARGET_DIR/release/gen-domains}
BUILD=${BUILD:-1}
WORK=${WORK:-$(mktemp -d /tmp/hallpass-dns-bench.XXXXXX)}
mkdir -p "$WORK"

PORT_UP=15390
declare -A PORT=([dnsmasq]=15391 [unbound]=15392 [hallpass]=15393 [crate]=15394 [dnsmasq_log]=15396 [unbound_log]=15397)
ADMIN_PORT=15395
PIDS=()

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

cleanup() {
  for pid in "${PIDS[@]}"; do
    stop_pid "$pid"
  done
  if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$WORK"; else log "kept $WORK"; fi
}
trap cleanup EXIT
trap "exit 143" TERM INT

stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

need() { # need COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing $2"
  if ! apt-get install -y "$2" >/dev/null 2>&1; then
    apt-get update >/dev/null 2>&1
    apt-get install -y "$2" >/dev/null
  fi
}
need dnsmasq dnsmasq
need unbound unbound
need dnsperf dnsperf
need dig dnsutils
need sqlite3 sqlite3
need python3 python3

# ---------------------------------------------------------------- blocklist
log "work dir $WORK"
mkdir -p "$WORK/ut1"
tar -xzf "$UT1" -C "$WORK/ut1" --wildcards '*/domains' 2>/dev/null || tar -xzf "$UT1" -C "$WORK/ut1"
find "$WORK/ut1" -name domains -type f -print0 | xargs -0 cat \
  | tr 'A-Z' 'a-z' | tr -d '\r' \
  | grep -E '^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.[a-z][a-z0-9-]*[a-z0-9]$' \
  > "$WORK/ut1.txt" || true
rm -rf "$WORK/ut1"
log "UT1: $(wc -l < "$WORK/ut1.txt") domains"

if [[ ! -x $GEN_DOMAINS && $BUILD == 1 && -f $ROOT/bench/src/bin/gen-domains.rs ]]; then
  log "building gen-domains"
  (cd "$ROOT" && cargo build --release -q -p hallpass-bench --bin gen-domains) || true
fi
if [[ -x $GEN_DOMAINS ]]; then
  "$GEN_DOMAINS" "$SYNTH" > "$WORK/synth.txt"
else
  log "gen-domains not found: Python fallback"
  python3 - "$SYNTH" > "$WORK/synth.txt" <<'PY'
import random, sys
n = int(sys.argv[1]); rnd = random.Random(1)
syl = ["ka","lo","mi","zen","tor","vex","ra","bel","qu","sto","nia","pha","dro","lix","mar","gen","fo","ty"]
tlds = ["com","net","org","info","xyz","co.uk","de","fr","ru","io","biz","online","site"]
seen = set()
while len(seen) < n:
    w = "".join(rnd.choice(syl) for _ in range(rnd.randint(2, 5))) + str(rnd.randint(0, 9999))
    d = w + "." + rnd.choice(tlds)
    if d not in seen:
        seen.add(d); sys.stdout.write(d + "\n")
PY
fi
sort -u "$WORK/ut1.txt" "$WORK/synth.txt" > "$WORK/blocklist.txt"
rm -f "$WORK/synth.txt"
BLOCKED_N=$(wc -l < "$WORK/blocklist.txt")
log "blocklist: $BLOCKED_N domains"

# ---------------------------------------------------------------- queries
python3 - "$WORK/blocklist.txt" "$QUERIES" > "$WORK/queries.txt" <<'PY'
import random, sys
rnd = random.Random(7)
lines = open(sys.argv[1]).read().split()
total = int(sys.argv[2])
blocked = rnd.sample(lines, min(4000, len(lines)))
blocked = [d if i % 2 == 0 else "www." + d for i, d in enumerate(blocked)]
allowed = ["%s%d.%s" % (rnd.choice(["www.", "cdn.", "api.", "static.", ""]), i,
           rnd.choice(["school-resources.net", "learning-platform.co.uk", "news-site.com", "video-host.org"]))
           for i in range(4000)]
listed = set(lines)
def is_listed(name):
    parts = name.split(".")
    return any(".".join(parts[i:]) in listed for i in range(len(parts)))
allowed = [a for a in allowed if not is_listed(a)]
def pick(pool):  # heavy tail: a few names very often, most rarely
    i = int(rnd.paretovariate(0.4)) - 1
    return pool[i % len(pool)] if i >= len(pool) else pool[i]
out = sys.stdout
for k in range(total):
    out.write(pick(blocked if k % 2 == 0 else allowed) + " A\n")
PY
CHECK_BLOCKED=$(sed -n 1p "$WORK/queries.txt" | cut -d' ' -f1)
CHECK_ALLOWED=$(sed -n 2p "$WORK/queries.txt" | cut -d' ' -f1)
log "queries: $(wc -l < "$WORK/queries.txt") lines, $(sort -u "$WORK/queries.txt" | wc -l) distinct (e.g. blocked $CHECK_BLOCKED, allowed $CHECK_ALLOWED)"

# ---------------------------------------------------------------- upstream
dnsmasq -k --no-resolv --no-hosts --port=$PORT_UP --listen-address=127.0.0.1 --bind-interfaces \
  --address=/#/192.0.2.1 --local-ttl=3600 --pid-file= >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)

wait_ready() { # wait_ready PORT PID TIMEOUT_S -> 0 when answering
  local port=$1 pid=$2 limit=$3 start=$SECONDS n=0
  while ((SECONDS - start < limit)); do
    kill -0 "$pid" 2>/dev/null || return 1
    n=$((n + 1))
    [[ $(dig +time=2 +tries=1 +short @127.0.0.1 -p "$port" "ready-$n.hallpass-bench.net" A 2>/dev/null || true) =~ ^[0-9] ]] && return 0
    sleep 0.2
  done
  return 1
}
wait_ready $PORT_UP "${PIDS[0]}" 10 || { log "upstream did not start"; exit 1; }

# ---------------------------------------------------------------- targets
start_dnsmasq() { # [extra config lines...]
  local name=${TARGET_NAME:-dnsmasq}
  {
    echo "no-resolv"; echo "no-hosts"; echo "port=${PORT[$name]}"
    echo "listen-address=127.0.0.1"; echo "bind-interfaces"
    echo "server=127.0.0.1#$PORT_UP"; echo "cache-size=10000"; echo "dns-forward-max=1000"
    for line in "$@"; do echo "$line"; done
    sed 's|.*|address=/&/0.0.0.0|' "$WORK/blocklist.txt"
  } > "$WORK/$name.conf"
  dnsmasq -k --conf-file="$WORK/$name.conf" --pid-file= >"$WORK/$name.log" 2>&1 &
  echo $!
}

# The peers again, recording every query as Hallpass does (to a log file: their own way
# of keeping a query log). For information beside the floors, which are set against the
# peers without a log.
start_dnsmasq_log() {
  TARGET_NAME=dnsmasq_log start_dnsmasq "log-queries" "log-facility=$WORK/dnsmasq-queries.log"
}
start_unbound_log() {
  TARGET_NAME=unbound_log start_unbound "  log-queries: yes" "  logfile: \"$WORK/unbound-queries.log\""
}

start_unbound() { # [extra server lines...]
  local name=${TARGET_NAME:-unbound}
  sed 's|.*|local-zone: "&." always_null|' "$WORK/blocklist.txt" > "$WORK/unbound-blocklist.conf"
  cat > "$WORK/$name.conf" <<EOF
server:
  interface: 127.0.0.1
  port: ${PORT[$name]}
  num-threads: 2
  do-daemonize: no
  chroot: ""
  username: ""
  pidfile: ""
  directory: "$WORK"
  use-syslog: no
  verbosity: 0
  do-ip6: no
  module-config: "iterator"
  do-not-query-localhost: no
  so-reuseport: yes
  msg-cache-size: 64m
  rrset-cache-size: 128m
  num-queries-per-thread: 4096
  outgoing-range: 8192
  infra-keep-probing: yes
  include: "$WORK/unbound-blocklist.conf"
$(if (($# == 0)); then echo '  logfile: ""'; else printf '%s\n' "$@"; fi)
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$PORT_UP
EOF
  unbound -d -c "$WORK/$name.conf" >"$WORK/$name.log" 2>&1 &
  echo $!
}

start_hallpass() {
  "$HALLPASS_BIN" catalog import "$WORK/blocklist.txt" --category bench_blocked --format plain \
    --output "$WORK/catalog.idx" >"$WORK/catalog.log" 2>&1
  cat > "$WORK/policy.toml" <<'EOF'
version = 1

[school]
name = "DNS bench school"
timezone = "Europe/London"

[[documents]]
id = "bench"
title = "Bench policy"
version = "1"

[dns]
block_mode = "null"
block_ttl = 10

[groups.everyone]
unidentified = true
default = "allow"

[[rules]]
id = "bench-blocklist"
action = "block"
document = "bench"
clause = "1"
categories = ["bench_blocked"]
EOF
  mkdir -p "$WORK/hallpass-data"
  "$HALLPASS_BIN" serve --dns-listen "127.0.0.1:${PORT[hallpass]}" --upstream "127.0.0.1:$PORT_UP" \
    --policy "$WORK/policy.toml" --catalog "$WORK/catalog.idx" --data-dir "$WORK/hallpass-data" \
    --admin-listen "127.0.0.1:$ADMIN_PORT" >"$WORK/hallpass.log" 2>&1 &
  echo $!
}

start_crate() {
  "$CRATE_BIN" --listen "127.0.0.1:${PORT[crate]}" --upstream "127.0.0.1:$PORT_UP" \
    --blocklist "$WORK/blocklist.txt" --log --threads 2 >"$WORK/crate.log" 2>&1 &
  echo $!
}

available() {
  case $1 in
    dnsmasq|unbound|dnsmasq_log|unbound_log) return 0 ;;
    hallpass)
      if [[ ! -x $HALLPASS_BIN && $BUILD == 1 ]]; then
        log "building hallpass"; (cd "$ROOT" && cargo build --release -q -p hallpass) || true
      fi
      [[ -x $HALLPASS_BIN ]] && "$HALLPASS_BIN" serve --help 2>/dev/null | grep -q -- --dns-listen ;;
    crate)
      if [[ ! -x $CRATE_BIN && $BUILD == 1 ]]; then
        log "building bench_server"; (cd "$ROOT" && cargo build --release -q -p hallpass-dns --example bench_server) || true
      fi
      [[ -x $CRATE_BIN ]] ;;
    *) return 1 ;;
  esac
}

percentiles() { # stdin: latencies in seconds -> "p50 p90 p99 p999" in ms
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "- - - -"; exit }
    n = split("0.50 0.90 0.99 0.999", q, " ")
    for (i = 1; i <= n; i++) { k = int(q[i] * NR); if (k < 1) k = 1; printf "%.3f ", v[k] * 1000 }
    print "" }'
}

declare -A QPS QPS_RANGE P50 P90 P99 P999 RSS HWM LOAD LOST CPUQ TPID
READY=()
# Start every target and check it; they idle while the others are measured.
for t in $TARGETS; do
  if ! available "$t"; then
    log "$t: not available, skipped"
    continue
  fi
  log "$t: starting"
  started=$(date +%s.%N)
  pid=$("start_$t")
  PIDS+=("$pid")
  if ! wait_ready "${PORT[$t]}" "$pid" 900; then
    log "$t: did not become ready (see $WORK/$t.log)"; tail -5 "$WORK/$t.log" >&2 || true
    stop_pid "$pid"; continue
  fi
  LOAD[$t]=$(python3 -c "import time; print(f'{time.time() - $started:.1f}')")
  b=$(dig +short @127.0.0.1 -p "${PORT[$t]}" "$CHECK_BLOCKED" A 2>/dev/null | tail -1 || true)
  a=$(dig +short @127.0.0.1 -p "${PORT[$t]}" "$CHECK_ALLOWED" A 2>/dev/null | tail -1 || true)
  log "$t: ready after ${LOAD[$t]} s; $CHECK_BLOCKED -> ${b:-nothing}, $CHECK_ALLOWED -> ${a:-nothing}"
  [[ $b == 0.0.0.0 && $a == 192.0.2.1 ]] || log "$t: WARNING unexpected answers"
  dnsperf -s 127.0.0.1 -p "${PORT[$t]}" -d "$WORK/queries.txt" -c 4 -T 2 -q 100 -n 1 >"$WORK/$t.warm" 2>&1 || true
  TPID[$t]=$pid
  READY+=("$t")
  : > "$WORK/$t.qps"; : > "$WORK/$t.cpuq"; : > "$WORK/$t.lats"
done

# ROUNDS rounds; in each, every target gets a throughput run and a latency run, the
# order rotating so that none is always first or last. A peer's speed on this shared
# machine moves by 10-15% from one run to the next: the medians are what is compared.
for round in $(seq 1 "$ROUNDS"); do
  n=${#READY[@]}
  for i in $(seq 0 $((n - 1))); do
    t=${READY[$(( (i + round - 1) % n ))]}
    pid=${TPID[$t]}
    cpu0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    dnsperf -s 127.0.0.1 -p "${PORT[$t]}" -d "$WORK/queries.txt" -c 4 -T 2 -q 100 -l "$DURATION" \
      > "$WORK/$t.perf.$round" 2>&1 || true
    cpu1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    q=$(awk '/Queries per second/ { printf "%.0f", $4 }' "$WORK/$t.perf.$round")
    done_q=$(awk '/Queries completed/ { print $3 }' "$WORK/$t.perf.$round")
    # Server CPU time per answered query (user + system, clock ticks -> microseconds):
    # steadier than q/s on a machine shared with dnsperf and other work.
    awk -v a="$cpu0" -v b="$cpu1" -v n="${done_q:-0}" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { if (n > 0) printf "%.2f\n", (b - a) * 1e6 / hz / n }' >> "$WORK/$t.cpuq"
    [[ -n $q ]] && echo "$q" >> "$WORK/$t.qps"
    dnsperf -s 127.0.0.1 -p "${PORT[$t]}" -d "$WORK/queries.txt" -c 4 -T 2 -q 100 -l "$LAT_DURATION" -v \
      >"$WORK/$t.latraw.$round" 2>/dev/null || true
    awk '/^> / { print $NF }' "$WORK/$t.latraw.$round" >> "$WORK/$t.lats"
    log "round $round/$ROUNDS $t: ${q:-?} q/s, $(tail -1 "$WORK/$t.cpuq") us CPU/query"
  done
done

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for t in "${READY[@]}"; do
  pid=${TPID[$t]}
  QPS[$t]=$(median < "$WORK/$t.qps" | awk '{ printf "%.0f", $1 }')
  QPS_RANGE[$t]=$(sort -g "$WORK/$t.qps" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f-%.0f", lo / 1000, hi / 1000 }')k
  CPUQ[$t]=$(median < "$WORK/$t.cpuq")
  LOST[$t]=$(cat "$WORK/$t.perf".* | awk '/Queries lost/ { n += $3 } END { print n + 0 }')
  percentiles < "$WORK/$t.lats" > "$WORK/$t.lat" || true
  read -r P50[$t] P90[$t] P99[$t] P999[$t] < "$WORK/$t.lat"
  RSS[$t]=$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
  HWM[$t]=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
  log "$t: median ${QPS[$t]} q/s (${QPS_RANGE[$t]}), ${CPUQ[$t]} us CPU/query, p50 ${P50[$t]} ms, p99 ${P99[$t]} ms, RSS ${RSS[$t]} MiB (peak ${HWM[$t]})"
  if [[ $t == hallpass ]]; then
    # Every answered query must be an event: those written live, those spilled to disk
    # (a database that cannot keep up), and finally the rows in the database after a
    # clean stop, against the queries dnsperf saw answered plus the checks' digs.
    metrics=$(python3 -c "import urllib.request, sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$ADMIN_PORT/metrics').read().decode())" 2>/dev/null || true)
    metric() { awk -v m="$1" '$1 == m { printf "%d", $2 }' <<<"$metrics"; }
    SPILLED=$(metric hallpass_events_spilled_total)
    stop_pid "$pid"
    ANSWERED=$(cat "$WORK/$t.warm" "$WORK/$t.perf".* "$WORK/$t.latraw".* | awk '/Queries completed/ { n += $3 } END { print n }')
    # Segment sizes rather than the events view: Debian's sqlite3 (3.40) unpacks the view
    # at about 10 s per million events; .ci/dns-e2e.sh counts through the view.
    STORED=$(sqlite3 "$WORK/hallpass-data/hallpass.db" "SELECT (SELECT count(*) FROM event_rows WHERE kind = 'dns') + (SELECT coalesce(sum(n), 0) FROM event_segments WHERE kind = 'dns')" 2>/dev/null || echo "?")
    EVENTS_LINE="hallpass events: $STORED stored for $ANSWERED queries answered by dnsperf (+ the readiness digs); spilled during the run: ${SPILLED:-?}"
    log "$EVENTS_LINE"
  else
    stop_pid "$pid"
  fi
done

# ---------------------------------------------------------------- report
echo
echo "DNS filter benchmark — $(date -u +%FT%TZ), $(nproc) CPUs, blocklist $BLOCKED_N domains (UT1 + $SYNTH synthetic),"
echo "dnsperf -c 4 -T 2 -q 100, $ROUNDS rounds of throughput ${DURATION}s and latency ${LAT_DURATION}s per target (order rotating), after one warm pass over $QUERIES queries"
printf '\n%-11s %10s %11s %7s %8s %9s %9s %9s %9s %10s %10s %8s\n' target "q/s" "range" "us/q" lost "p50 ms" "p90 ms" "p99 ms" "p99.9 ms" "RSS MiB" "peak MiB" "load s"
for t in $TARGETS; do
  [[ -n ${QPS[$t]:-} ]] || continue
  printf '%-11s %10s %11s %7s %8s %9s %9s %9s %9s %10s %10s %8s\n' "$t" "${QPS[$t]}" "${QPS_RANGE[$t]}" "${CPUQ[$t]}" "${LOST[$t]}" "${P50[$t]}" \
    "${P90[$t]}" "${P99[$t]}" "${P999[$t]}" "${RSS[$t]}" "${HWM[$t]}" "${LOAD[$t]}"
done
echo "(q/s and us/q: medians over the rounds; us/q: server CPU time, user + system, per answered query"
echo " during the throughput runs; latency percentiles over every round's queries pooled)"
[[ -n ${EVENTS_LINE:-} ]] && echo "$EVENTS_LINE"
echo
for t in hallpass crate; do
  [[ -n ${QPS[$t]:-} ]] || continue
  python3 - "$t" "${QPS[$t]}" "${P99[$t]}" "${RSS[$t]}" "${QPS[dnsmasq]:-}" "${P99[dnsmasq]:-}" "${RSS[dnsmasq]:-}" \
    "${QPS[unbound]:-}" "${P99[unbound]:-}" "${RSS[unbound]:-}" <<'PY'
import sys
t, q, p, r, dq, dp, dr, uq, up, ur = sys.argv[1:]
f = lambda s: float(s) if s not in ("", "-") else None
q, p, r, dq, dp, dr, uq, up, ur = map(f, (q, p, r, dq, dp, dr, uq, up, ur))
def line(label, value, floor, ok):
    print(f"  {label:<44} {value:>8}   floor {floor:<8} {'ok' if ok else 'BELOW FLOOR'}")
print(f"{t}:")
if dq: line("q/s vs dnsmasq", f"{q / dq:.2f}x", "1.5x", q / dq >= 1.5)
if uq: line("q/s vs unbound (2 threads)", f"{q / uq:.2f}x", "1.0x", q / uq >= 1.0)
best = min(x for x in (dp, up) if x is not None) if (dp or up) else None
if best and p is not None: line("p99 vs the better of the two", f"{p:.3f}ms", f"{best:.3f}ms", p <= best)
small = min(x for x in (dr, ur) if x is not None) if (dr or ur) else None
if small and r is not None: line("RSS vs the smaller of the two", f"{r / small:.2f}x", "0.5x", r / small <= 0.5)
PY
done
if [[ -n ${QPS[hallpass]:-} ]]; then
  for t in dnsmasq_log unbound_log; do
    [[ -n ${QPS[$t]:-} ]] || continue
    [[ -n ${SAID_LOG:-} ]] || echo "hallpass against the peers also recording every query (information, not the floors):"
    SAID_LOG=1
    python3 -c 'import sys; t, q, o, p, op = sys.argv[1:]; print(f"  q/s vs {t:<36} {float(q) / float(o):>7.2f}x   p99 {p} ms against {op} ms")' \
      "$t" "${QPS[hallpass]}" "${QPS[$t]}" "${P99[hallpass]}" "${P99[$t]}"
  done
fi
echo "(raw outputs in $WORK when KEEP=1)"
