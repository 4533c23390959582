#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1 for the store's PostgreSQL test suite.
#
#   source .ci/postgres.sh                 # exports HALLPASS_TEST_POSTGRES_URL
#   hallpass_pg_stop                       # (sourced) stop it and remove its files
#   eval "$(bash .ci/postgres.sh)"         # the same from another shell
#   cargo test -p hallpass-store --test postgres
#
# Installs PostgreSQL from Debian's packages if it is missing, creates a cluster in a
# temporary directory (as the `postgres` user when run as root: initdb refuses root),
# listens on a free loopback port only, and creates the database `hallpass_test`.
# Sourced, it exports HALLPASS_TEST_POSTGRES_URL (and HALLPASS_TEST_POSTGRES_DATA, the
# cluster directory); run, it prints the `export ...` lines on stdout (logs go to stderr).

_hp_pg_log() { echo "postgres.sh: $*" >&2; }

_hp_pg_find_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

_hp_pg_as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_hp_pg_start() {
    local pgbin port dir p
    pgbin="$(_hp_pg_find_bin || true)"
    if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
        _hp_pg_log "installing PostgreSQL from Debian packages"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2 || return 1
        pgbin="$(_hp_pg_find_bin)"
    fi
    _hp_pg_log "using $pgbin"

    # A free port on loopback: the first of 54320.. that nothing answers on.
    port=""
    for p in $(seq 54320 54420); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            port="$p"
            break
        fi
    done
    [ -n "$port" ] || { _hp_pg_log "no free port in 54320-54420"; return 1; }

    dir="$(mktemp -d /tmp/hallpass-pg.XXXXXX)" || return 1
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$dir" || return 1
    fi
    if ! _hp_pg_as_pg "$pgbin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        return 1
    fi
    if ! _hp_pg_as_pg "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start >&2; then
        cat "$dir/server.log" >&2
        return 1
    fi
    _hp_pg_as_pg "$pgbin/createdb" -h 127.0.0.1 -p "$port" -U postgres hallpass_test >&2 || return 1

    HALLPASS_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/hallpass_test"
    HALLPASS_TEST_POSTGRES_DATA="$dir/data"
    _hp_pg_log "PostgreSQL is running on 127.0.0.1:$port (data in $dir/data)"
    _hp_pg_log "stop it with: $( [ "$(id -u)" = 0 ] && echo 'runuser -u postgres -- ')$pgbin/pg_ctl -D $dir/data stop"
}

# Stop the cluster _hp_pg_start made and remove its files (for a trap in .ci/run).
hallpass_pg_stop() {
    [ -n "${HALLPASS_TEST_POSTGRES_DATA:-}" ] || return 0
    _hp_pg_as_pg "$(_hp_pg_find_bin)/pg_ctl" -D "$HALLPASS_TEST_POSTGRES_DATA" -m fast -w stop >&2 || true
    rm -rf "$(dirname "$HALLPASS_TEST_POSTGRES_DATA")"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    # sourced
    _hp_pg_start || return 1
    export HALLPASS_TEST_POSTGRES_URL HALLPASS_TEST_POSTGRES_DATA
else
    set -euo pipefail
    _hp_pg_start
    echo "export HALLPASS_TEST_POSTGRES_URL=$HALLPASS_TEST_POSTGRES_URL"
    echo "export HALLPASS_TEST_POSTGRES_DATA=$HALLPASS_TEST_POSTGRES_DATA"
fi
