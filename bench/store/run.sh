#!/usr/bin/env bash
# Store benchmarks: sustained ingestion through the EventWriter into SQLite and PostgreSQL,
# then 10 million events in SQLite and the per-category-per-day report for one year group
# over 30 days, then what a DNS query costs to keep in four SQLite layouts (store-layouts).
#
#   bash bench/store/run.sh              # EVENTS=1000000 REPORT_EVENTS=10000000 by default
#
# PostgreSQL: uses $HALLPASS_TEST_POSTGRES_URL, or starts one with .ci/postgres.sh.
# Floors (issue 4), compared at the end (exit 1 on a miss): >= 150,000 events/s into SQLite,
# >= 50,000 into PostgreSQL (a run that spilled does not count), report < 200 ms.
# The school-sized read benchmark is bench/store/school.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
EVENTS="${EVENTS:-1000000}"
REPORT_EVENTS="${REPORT_EVENTS:-10000000}"
WORK="${WORK:-$(mktemp -d /tmp/hallpass-store-bench.XXXXXX)}"

cargo build --release -p hallpass-bench --bin store-ingest --bin store-layouts >&2
BIN="${CARGO_TARGET_DIR:-target}/release/store-ingest"

fail=0
# at_least NAME FLOOR VALUE / below NAME LIMIT VALUE: judge one number, remember a miss.
at_least() {
    if [ -n "$3" ] && awk -v v="$3" -v f="$2" 'BEGIN { exit !(v >= f) }'; then
        echo "ok   $1 = $3 (floor >= $2)"
    else
        echo "FAIL $1 = ${3:-not measured} (floor >= $2)"
        fail=1
    fi
}
below() {
    if [ -n "$3" ] && awk -v v="$3" -v l="$2" 'BEGIN { exit !(v < l) }'; then
        echo "ok   $1 = $3 (floor < $2)"
    else
        echo "FAIL $1 = ${3:-not measured} (floor < $2)"
        fail=1
    fi
}
# The rate in an ingest line: "... N events/s end to end (spilled S)"; a run that
# spilled does not count.
rate() { awk '/events\/s end to end/ { for (i = 1; i <= NF; i++) if ($i == "events/s") r = $(i-1); if ($0 !~ /spilled 0\)/) r = "" } END { print r }' "$1"; }

echo "== SQLite ingest ($EVENTS events, WAL, synchronous=FULL)"
"$BIN" ingest "sqlite://$WORK/ingest.db" "$EVENTS" | tee "$WORK/sqlite-ingest.out"
at_least "SQLite events/s" 150000 "$(rate "$WORK/sqlite-ingest.out")"

if [ -z "${HALLPASS_TEST_POSTGRES_URL:-}" ]; then
    eval "$(bash .ci/postgres.sh)"
fi
echo "== PostgreSQL ingest ($EVENTS events, local, fsync on)"
BENCH_DB="hp_bench_$$"
psql "$HALLPASS_TEST_POSTGRES_URL" -qc "CREATE DATABASE $BENCH_DB" >/dev/null
"$BIN" ingest "${HALLPASS_TEST_POSTGRES_URL%/*}/$BENCH_DB" "$EVENTS" | tee "$WORK/pg-ingest.out"
at_least "PostgreSQL events/s" 50000 "$(rate "$WORK/pg-ingest.out")"
psql "$HALLPASS_TEST_POSTGRES_URL" -qc "DROP DATABASE $BENCH_DB" >/dev/null || true

echo "== SQLite report over $REPORT_EVENTS events"
"$BIN" report "sqlite://$WORK/report.db" "$REPORT_EVENTS" | tee "$WORK/report.out"
below "per-category report median ms" 200 \
    "$(awk '/per-category-per-day report/ { for (i = 1; i <= NF; i++) if ($i == "median") print $(i+1) }' "$WORK/report.out")"

echo "== DNS query events: a row each (the old uid key, event_rows, a compact row) against binary packed segments"
"${CARGO_TARGET_DIR:-target}/release/store-layouts" "$EVENTS"
ls -la "$WORK" >&2
if [ "$fail" != 0 ]; then
    echo "store bench: a floor was missed" >&2
    exit 1
fi
echo "store bench: every floor holds"
