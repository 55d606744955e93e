#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: sourced by .ci/run, or run by
# hand as `bash .ci/postgres.sh start` (prints the admin URL) and
# `bash .ci/postgres.sh stop DIR`.
#
# initdb in a temporary folder, trust authentication on 127.0.0.1 only, a
# spare port. PostgreSQL refuses to run as root, so as root every server
# command runs as the `postgres` user. fsync is off: the cluster is deleted
# afterwards and no test here pulls the power on it (the outage test stops its
# own server cleanly). PG_DURABLE=1 keeps PostgreSQL's defaults (fsync on,
# full page writes), for the benchmark: see docs/performance.md.

pg_bin_dir() {
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return
    fi
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] && echo "$dir"
}

pg_install_if_missing() {
    if [ -z "$(pg_bin_dir)" ] || ! command -v psql >/dev/null 2>&1; then
        echo "== installing PostgreSQL (apt-get)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
}

# Runs a command as the user that may own the cluster.
pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a cluster; sets PG_DIR, PG_PORT, PG_BIN and TEST_POSTGRES_URL.
pg_start() {
    PG_BIN=$(pg_bin_dir)
    [ -n "$PG_BIN" ] || { echo "no PostgreSQL binaries found" >&2; return 1; }
    PG_DIR=$(mktemp -d /tmp/tiktok-webhook-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
    PG_PORT=$(pg_free_port)
    local durability="-c fsync=off -c full_page_writes=off"
    [ "${PG_DURABLE:-0}" = 1 ] && durability=""
    pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust \
        --no-sync -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; return 1; }
    pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PG_DIR \
            -c max_connections=300 $durability" start >/dev/null \
        || { cat "$PG_DIR/server.log" >&2; return 1; }
    TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    export PG_BIN TEST_POSTGRES_URL
}

pg_stop() {
    local dir=${1:-$PG_DIR}
    [ -n "$dir" ] && [ -d "$dir/data" ] || return 0
    pg_as_owner "$(pg_bin_dir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
        start)
            pg_install_if_missing
            pg_start
            echo "$TEST_POSTGRES_URL"
            echo "stop with: bash $0 stop $PG_DIR" >&2
            ;;
        stop) pg_stop "${2:?give the folder printed by start}" ;;
        *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
    esac
fi
