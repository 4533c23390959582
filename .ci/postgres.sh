#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1 for the store's PostgreSQL test suite.
#
#   eval "$(bash .ci/postgres.sh)"         # exports HALLPASS_TEST_POSTGRES_URL
#   cargo test -p hallpass-store --test postgres
#
# Installs PostgreSQL from Debian's packages if it is missing, creates a cluster in a
# temporary directory (as the `postgres` user when run as root: initdb refuses root),
# listens on a free loopback port only, creates the database `hallpass_test` and prints
# one `export HALLPASS_TEST_POSTGRES_URL=...` line on stdout (everything else goes to
# stderr). Stop it with the `pg_ctl ... stop` command it prints.
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

find_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

PGBIN="$(find_bin || true)"
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
    log "installing PostgreSQL from Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    PGBIN="$(find_bin)"
fi
log "using $PGBIN"

# A free port on loopback: the first of 54320.. that nothing answers on.
PORT=""
for p in $(seq 54320 54420); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        PORT="$p"
        break
    fi
done
[ -n "$PORT" ] || { log "no free port in 54320-54420"; exit 1; }

DIR="$(mktemp -d /tmp/hallpass-pg.XXXXXX)"
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}
if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$DIR"
fi

as_pg "$PGBIN/initdb" -D "$DIR/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; exit 1; }
as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c max_connections=200" start >&2 \
    || { cat "$DIR/server.log" >&2; exit 1; }
as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres hallpass_test >&2

URL="postgres://postgres@127.0.0.1:$PORT/hallpass_test"
log "PostgreSQL is running on 127.0.0.1:$PORT (data in $DIR/data)"
log "stop it with: $( [ "$(id -u)" = 0 ] && echo 'runuser -u postgres -- ')$PGBIN/pg_ctl -D $DIR/data stop"
echo "export HALLPASS_TEST_POSTGRES_URL=$URL"
echo "export HALLPASS_TEST_POSTGRES_DATA=$DIR/data"
