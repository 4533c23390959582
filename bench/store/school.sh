#!/usr/bin/env bash
# A store sized like a large school (issue 14): 1,500 pupils and 150 staff, a school year
# (190 days) of DNS visits, blocks, web requests and logons generated straight into the tables from
# a fixed seed, on SQLite and on PostgreSQL; then one pupil's year timeline (first page and
# the whole year), that pupil's full export, one month's per-category report, the pupil's
# year from the hourly activity roll-up (issue 20), and the disk taken per stored DNS
# query. Compares each with its floor and exits 1 on any miss.
#
#   bash bench/store/school.sh                 # VISITS_PER_DAY=100 BLOCKS_PER_DAY=6 WEB_PER_DAY=40
#   VISITS_PER_DAY=300 bash bench/store/school.sh
#   KEEP=1 WORK=/tmp/school SCHOOL_PG_DB=hp_school bash bench/store/school.sh   # keep, reuse
#
# VISITS_PER_DAY is visit rows (one name in one minute, 1-8 queries each, 4.5 on average)
# per person per school day. PostgreSQL: $HALLPASS_TEST_POSTGRES_URL, or one started with
# .ci/postgres.sh. Floors: timeline (first page and whole year) < 1 s, export < 60 s,
# month report < 1 s, a pupil's activity year (per day and site) < 1 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK="${WORK:-$(mktemp -d /tmp/hallpass-school.XXXXXX)}"
mkdir -p "$WORK"
export VISITS_PER_DAY="${VISITS_PER_DAY:-100}" BLOCKS_PER_DAY="${BLOCKS_PER_DAY:-6}"
export WEB_PER_DAY="${WEB_PER_DAY:-40}"

cargo build --release -p hallpass-bench --bin store-school >&2
BIN="${CARGO_TARGET_DIR:-target}/release/store-school"

fail=0
# check NAME LIMIT FILE: the RESULT NAME value in FILE must be below LIMIT.
check() {
    local name="$1" limit="$2" file="$3" value
    value="$(awk -v n="$name" '$1 == "RESULT" && $2 == n { print $3 }' "$file")"
    if [ -z "$value" ]; then
        echo "FAIL $name: not measured" >&2
        fail=1
    elif awk -v v="$value" -v l="$limit" 'BEGIN { exit !(v < l) }'; then
        echo "ok   $name = $value (floor < $limit)"
    else
        echo "FAIL $name = $value (floor < $limit)"
        fail=1
    fi
}
floors() {
    check timeline_first_page_ms 1000 "$1"
    check timeline_full_year_ms 1000 "$1"
    check export_ms 60000 "$1"
    check month_report_ms 1000 "$1"
    check activity_year_ms 1000 "$1"
    awk '$1 == "RESULT" && $2 == "bytes_per_query" { print "disk per stored DNS query: " $3 " bytes" }' "$1"
}

echo "== SQLite ($VISITS_PER_DAY visits, $BLOCKS_PER_DAY blocks and $WEB_PER_DAY web requests per person per school day)"
"$BIN" "sqlite://$WORK/school.db" "$WORK" | tee "$WORK/sqlite.out"
floors "$WORK/sqlite.out"

if [ -z "${HALLPASS_TEST_POSTGRES_URL:-}" ]; then
    # shellcheck disable=SC1091
    source .ci/postgres.sh
    trap hallpass_pg_stop EXIT
fi
echo "== PostgreSQL"
# SCHOOL_PG_DB names a database to reuse (filled by an earlier run with KEEP=1).
DB="${SCHOOL_PG_DB:-hp_school_$$}"
if [ -z "$(psql "$HALLPASS_TEST_POSTGRES_URL" -Atc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
    psql "$HALLPASS_TEST_POSTGRES_URL" -qc "CREATE DATABASE $DB" >/dev/null
fi
"$BIN" "${HALLPASS_TEST_POSTGRES_URL%/*}/$DB" "$WORK" | tee "$WORK/postgres.out"
floors "$WORK/postgres.out"
[ -n "${KEEP:-}" ] || psql "$HALLPASS_TEST_POSTGRES_URL" -qc "DROP DATABASE $DB" >/dev/null || true
[ -n "${KEEP:-}" ] || rm -f "$WORK/school.db" "$WORK/school.db-wal" "$WORK/school.db-shm"

if [ "$fail" != 0 ]; then
    echo "store school bench: a floor was missed" >&2
    exit 1
fi
echo "store school bench: every floor holds"
