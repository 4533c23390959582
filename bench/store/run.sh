#!/usr/bin/env bash
# Store benchmarks: sustained ingestion through the EventWriter into SQLite and PostgreSQL,
# then 10 million events in SQLite and the per-category-per-day report for one year group
# over 30 days, then what a DNS query costs to keep in four SQLite layouts (store-layouts).
#
#   bash bench/store/run.sh              # EVENTS=1000000 REPORT_EVENTS=10000000 by default
#
# PostgreSQL: uses $HALLPASS_TEST_POSTGRES_URL, or starts one with .ci/postgres.sh.
# Floors (issue 4): >= 150,000 events/s into SQLite, >= 50,000 into PostgreSQL, report < 200 ms.
set -euo pipefail
cd "$(dirname "$0")/../.."
EVENTS="${EVENTS:-1000000}"
REPORT_EVENTS="${REPORT_EVENTS:-10000000}"
WORK="${WORK:-$(mktemp -d /tmp/hallpass-store-bench.XXXXXX)}"

cargo build --release -p hallpass-bench --bin store-ingest --bin store-layouts >&2
BIN="${CARGO_TARGET_DIR:-target}/release/store-ingest"

echo "== SQLite ingest ($EVENTS events, WAL, synchronous=FULL)"
"$BIN" ingest "sqlite://$WORK/ingest.db" "$EVENTS"

if [ -z "${HALLPASS_TEST_POSTGRES_URL:-}" ]; then
    eval "$(bash .ci/postgres.sh)"
fi
echo "== PostgreSQL ingest ($EVENTS events, local, fsync on)"
BENCH_DB="hp_bench_$$"
psql "$HALLPASS_TEST_POSTGRES_URL" -qc "CREATE DATABASE $BENCH_DB" >/dev/null
"$BIN" ingest "${HALLPASS_TEST_POSTGRES_URL%/*}/$BENCH_DB" "$EVENTS"
psql "$HALLPASS_TEST_POSTGRES_URL" -qc "DROP DATABASE $BENCH_DB" >/dev/null || true

echo "== SQLite report over $REPORT_EVENTS events"
"$BIN" report "sqlite://$WORK/report.db" "$REPORT_EVENTS"

echo "== DNS query events: a row each (the old uid key, event_rows, a compact row) against binary packed segments"
"${CARGO_TARGET_DIR:-target}/release/store-layouts" "$EVENTS"
ls -la "$WORK" >&2
