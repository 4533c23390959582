#!/usr/bin/env bash
# Catalog benchmark: import time and peak memory of `hallpass catalog import` on the
# real UT1 tarball + N synthetic domains, index bytes per entry (and the in-memory host
# table's, built at open), single-thread lookup
# rate (criterion), and squidGuard's decision rate on the same UT1 lists and the same
# URL mix, in the same run. Prints our lookups/s divided by squidGuard's decisions/s.
#
#   bench/catalog/run.sh            # N=2000000, 200000 URLs
#   N=500000 URLS=50000 bench/catalog/run.sh
#
# Floors (the catalog issue's): the import of UT1 + 2,000,000 synthetic domains in at
# most 15 s and 600 MB peak RSS, at most 12 index bytes per host entry, at least
# 3,000,000 host lookups/s on one thread. The import runs ROUNDS times (default 3) and
# its floors must hold in every round (the slowest and the largest round are judged,
# not a median); the lookup floor is judged on the slow end of criterion's 95%
# confidence interval of the mean, not its point estimate. A missed floor is listed
# under "floors" and the script exits 1.
#
# Needs: /usr/bin/time (package `time`), squidGuard (package `squidguard`; installed
# with apt-get when missing and running as root). Work files go to $WORK
# (default: a temporary directory, removed at exit unless KEEP=1).
set -euo pipefail

FLOOR_IMPORT_S=15
FLOOR_IMPORT_RSS_MB=600
FLOOR_BYTES_PER_HOST=12
FLOOR_HOST_LOOKUPS=3000000

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARBALL="${TARBALL:-$ROOT/../shared/data/ut1/blacklists.tar.gz}"
N="${N:-2000000}"
URLS="${URLS:-200000}"
ROUNDS="${ROUNDS:-3}"
[ "$ROUNDS" -ge 1 ] || { echo "ROUNDS must be at least 1" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/targets/catalog}"
WORK="${WORK:-$(mktemp -d /tmp/hallpass-catalog-bench.XXXXXX)}"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"
BIN="$CARGO_TARGET_DIR/release"

[ -f "$TARBALL" ] || { echo "UT1 tarball not found: $TARBALL" >&2; exit 1; }
if ! command -v squidGuard >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq squidguard >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq squidguard >/dev/null; }
  else
    echo "squidGuard missing: apt-get install squidguard" >&2; exit 1
  fi
fi
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null

echo "== build (release)"
(cd "$ROOT" && cargo build --release -q -p hallpass -p hallpass-bench --bin hallpass --bin gen-domains)

echo "== data: $N synthetic domains, $URLS URLs"
"$BIN/gen-domains" "$N" 1 > "$WORK/synthetic.txt"
mkdir -p "$WORK/ut1"
tar -xzf "$TARBALL" -C "$WORK/ut1"
UT1="$WORK/ut1/blacklists"
# Lookup mix: hosts of 2-5 labels, about half on listed domains (UT1 + synthetic).
cat "$UT1"/*/domains "$WORK/synthetic.txt" | grep -v '^#' > "$WORK/listed.txt"
"$BIN/gen-domains" --lookups "$URLS" "$WORK/listed.txt" 2 > "$WORK/hosts.txt"
awk '{ printf "http://%s/path/%d/index.html?q=%d\n", $0, NR % 97, NR }' "$WORK/hosts.txt" > "$WORK/urls.txt"

echo "== import: UT1 + $N synthetic, $ROUNDS rounds"
: > "$WORK/import.rounds"
for round in $(seq 1 "$ROUNDS"); do
  rm -f "$WORK/catalog.idx"
  /usr/bin/time -v "$BIN/hallpass" catalog import "$TARBALL" "$WORK/synthetic.txt" \
    --category synthetic --output "$WORK/catalog.idx" 2> "$WORK/import.time" || { cat "$WORK/import.time"; exit 1; }
  grep -E '^wrote' "$WORK/import.time" || true
  round_s=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$WORK/import.time")
  round_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/import.time")
  [ -n "$round_s" ] && [ -n "$round_kb" ] || { echo "no time/RSS figures from /usr/bin/time" >&2; cat "$WORK/import.time"; exit 1; }
  # CPU seconds too: on a shared machine the wall time also measures the neighbours.
  round_cpu=$(awk -F': ' '/User time \(seconds\)|System time \(seconds\)/ { s += $2 } END { printf "%.1f", s }' "$WORK/import.time")
  echo "round $round: $round_s s ($round_cpu s CPU; load average $(cut -d' ' -f1 /proc/loadavg)), peak RSS $((round_kb / 1024)) MB"
  echo "$round_s $round_kb" >> "$WORK/import.rounds"
done
# The slowest and the largest round: what the floors are judged on.
IMPORT_S=$(sort -g -k1,1 "$WORK/import.rounds" | tail -1 | cut -d' ' -f1)
IMPORT_S_MIN=$(sort -g -k1,1 "$WORK/import.rounds" | head -1 | cut -d' ' -f1)
RSS_KB=$(sort -g -k2,2 "$WORK/import.rounds" | tail -1 | cut -d' ' -f2)
RSS_KB_MIN=$(sort -g -k2,2 "$WORK/import.rounds" | head -1 | cut -d' ' -f2)
"$BIN/hallpass" catalog stats --json "$WORK/catalog.idx" > "$WORK/stats.json"
read -r BYTES HOSTS URLK TABLE <<<"$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["bytes"], s["host_entries"], s["url_entries"], s["lookup_table_bytes"])' "$WORK/stats.json")"
PER_ENTRY=$(python3 -c "print(f'{$BYTES / $HOSTS:.2f}')")
TABLE_PER_ENTRY=$(python3 -c "print(f'{$TABLE / $HOSTS:.2f}')")

echo "== criterion lookup bench (one thread)"
(cd "$ROOT" && HALLPASS_CATALOG_INDEX="$WORK/catalog.idx" HALLPASS_BENCH_HOSTS="$WORK/hosts.txt" \
  HALLPASS_BENCH_URLS="$WORK/urls.txt" HALLPASS_BENCH_DOMAINS=1000 \
  cargo bench -q -p hallpass-bench --bench catalog -- --noplot 2>&1 | grep -E 'catalog/|time:|thrpt:|lookup mix|host lookups|^open')
rate() { # elements per second from criterion's mean estimate
  python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(int(int(sys.argv[2]) / (e["mean"]["point_estimate"] * 1e-9)))' \
    "$CARGO_TARGET_DIR/criterion/catalog/$1/new/estimates.json" "$2"
}
# The slow end of criterion's 95% confidence interval of the mean: what the floor is
# judged on.
rate_low() {
  python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(int(int(sys.argv[2]) / (e["mean"]["confidence_interval"]["upper_bound"] * 1e-9)))' \
    "$CARGO_TARGET_DIR/criterion/catalog/$1/new/estimates.json" "$2"
}
HOST_RATE=$(rate lookup_host_mixed "$(wc -l < "$WORK/hosts.txt")")
HOST_RATE_LOW=$(rate_low lookup_host_mixed "$(wc -l < "$WORK/hosts.txt")")
WALK_RATE=$(rate lookup_host_walk_mixed "$(wc -l < "$WORK/hosts.txt")")
URL_RATE=$(rate lookup_url_mixed "$(wc -l < "$WORK/urls.txt")")

echo "== squidGuard on the same lists and URLs"
SG="$WORK/sg"
mkdir -p "$SG/db" "$SG/log"
DESTS=""
PASS=""
for d in "$UT1"/*/; do
  cat=$(basename "$d")
  [ -L "${d%/}" ] && continue
  mkdir -p "$SG/db/$cat"
  lines=""
  for f in domains urls expressions; do
    if [ -s "$d/$f" ]; then
      cp "$d/$f" "$SG/db/$cat/$f"
      case $f in
        domains) lines="$lines    domainlist $cat/domains"$'\n' ;;
        urls) lines="$lines    urllist $cat/urls"$'\n' ;;
        expressions) lines="$lines    expressionlist $cat/expressions"$'\n' ;;
      esac
    fi
  done
  [ -n "$lines" ] || continue
  DESTS="$DESTS"$'\n'"dest $cat {"$'\n'"$lines    log /dev/null"$'\n'"}"
  PASS="$PASS !$cat"
done
mkdir -p "$SG/db/synthetic"
cp "$WORK/synthetic.txt" "$SG/db/synthetic/domains"
DESTS="$DESTS"$'\n'"dest synthetic {"$'\n'"    domainlist synthetic/domains"$'\n'"}"
PASS="$PASS !synthetic"
cat > "$SG/squidGuard.conf" <<CONF
dbhome $SG/db
logdir $SG/log
$DESTS

acl {
    default {
        pass $PASS all
        redirect http://blocked.invalid/?category=%t
    }
}
CONF
SG_BUILD_START=$(date +%s.%N)
squidGuard -c "$SG/squidGuard.conf" -C all > "$SG/log/compile.out" 2>&1 || { tail "$SG/log/compile.out"; exit 1; }
SG_BUILD_S=$(python3 -c "import time; print(f'{time.time() - $SG_BUILD_START:.1f}')")
awk '{ print $0 " 10.0.0.1/- - GET" }' "$WORK/urls.txt" > "$WORK/sg-input.txt"
head -1000 "$WORK/sg-input.txt" > "$WORK/sg-warm.txt"
squidGuard -c "$SG/squidGuard.conf" < "$WORK/sg-warm.txt" > /dev/null  # warm page cache
# Start-up alone (loading the databases), to subtract.
T0=$(date +%s.%N)
squidGuard -c "$SG/squidGuard.conf" < /dev/null > /dev/null
T1=$(date +%s.%N)
squidGuard -c "$SG/squidGuard.conf" < "$WORK/sg-input.txt" > "$WORK/sg-output.txt"
T2=$(date +%s.%N)
SG_N=$(wc -l < "$WORK/sg-output.txt")
SG_BLOCKED=$(grep -c 'blocked.invalid' "$WORK/sg-output.txt" || true)
SG_RATE=$(python3 -c "print(int($SG_N / max(1e-9, ($T2 - $T1) - ($T1 - $T0))))")
OUR_BLOCKED=$("$BIN/hallpass" catalog lookup --catalog "$WORK/catalog.idx" $(head -2000 "$WORK/urls.txt") | grep -vc $'\t-$' || true)
SG_SAMPLE=$(head -2000 "$WORK/sg-output.txt" | grep -c 'blocked.invalid' || true)

echo
echo "== results"
printf 'import UT1 + %d synthetic, %d rounds: %s-%s s, peak RSS %d-%d MB (floor: %s s, %s MB in every round)\n' \
  "$N" "$ROUNDS" "$IMPORT_S_MIN" "$IMPORT_S" $((RSS_KB_MIN / 1024)) $((RSS_KB / 1024)) "$FLOOR_IMPORT_S" "$FLOOR_IMPORT_RSS_MB"
printf 'index: %d bytes, %d host entries, %d URL entries: %s bytes per host entry (floor: %s)\n' "$BYTES" "$HOSTS" "$URLK" "$PER_ENTRY" "$FLOOR_BYTES_PER_HOST"
printf 'host table (in memory, built at open): %d bytes, %s bytes per host entry\n' "$TABLE" "$TABLE_PER_ENTRY"
printf 'host lookups (1 thread, mixed hits/misses): %d/s, %d/s at the slow end of the 95%% interval (floor: %s); fst walk alone: %d/s\n' \
  "$HOST_RATE" "$HOST_RATE_LOW" "$FLOOR_HOST_LOOKUPS" "$WALK_RATE"
printf 'URL lookups (1 thread, same URLs as squidGuard): %d/s\n' "$URL_RATE"
printf 'squidGuard: compile %s s; %d decisions (%d blocked) at %d/s\n' "$SG_BUILD_S" "$SG_N" "$SG_BLOCKED" "$SG_RATE"
printf 'first 2000 URLs categorised: hallpass %d, squidGuard blocked %d\n' "$OUR_BLOCKED" "$SG_SAMPLE"
python3 -c "print(f'ratio: hallpass URL lookups/s / squidGuard decisions/s = {$URL_RATE / max(1, $SG_RATE):.1f}x; host lookups/s / squidGuard = {$HOST_RATE / max(1, $SG_RATE):.1f}x')"

echo
echo "== floors"
misses=0
floor() { # name, ok (1/0), detail
  if [ "$2" = 1 ]; then echo "ok    $1: $3"; else echo "MISS  $1: $3"; misses=$((misses + 1)); fi
}
floor "import time" "$(python3 -c "print(int($IMPORT_S <= $FLOOR_IMPORT_S))")" \
  "slowest of $ROUNDS rounds $IMPORT_S s <= $FLOOR_IMPORT_S s"
floor "import peak RSS" "$(( RSS_KB / 1024 <= FLOOR_IMPORT_RSS_MB ? 1 : 0 ))" \
  "largest of $ROUNDS rounds $((RSS_KB / 1024)) MB <= $FLOOR_IMPORT_RSS_MB MB"
floor "index size" "$(python3 -c "print(int($BYTES / $HOSTS <= $FLOOR_BYTES_PER_HOST))")" \
  "$PER_ENTRY bytes per host entry <= $FLOOR_BYTES_PER_HOST"
floor "host lookups" "$(( HOST_RATE_LOW >= FLOOR_HOST_LOOKUPS ? 1 : 0 ))" \
  "$HOST_RATE_LOW/s (slow end of the interval) >= $FLOOR_HOST_LOOKUPS/s"
if [ "$misses" -gt 0 ]; then
  echo "$misses floor(s) missed"
  exit 1
fi
echo "every floor holds"
