#!/usr/bin/env bash
# Runs a vigil-loadgen command against a throw-away PostgreSQL server (issue #14).
#
#   loadgen/scripts/postgres-bench.sh LOADGEN [ARGS...]
#
# e.g.
#   loadgen/scripts/postgres-bench.sh target/release/vigil-loadgen --spawn-verifier \
#       --replicas 2 --hosts 1000 --gpus 8 --seconds 60 --clients 32 --mode push
#
# Starts PostgreSQL 15 (Debian's /usr/lib/postgresql/15/bin; VIGIL_PG_BIN overrides) with its
# data directory and unix socket in a fresh directory under /tmp, listening on 127.0.0.1 on a
# free port, with PostgreSQL's DEFAULT durability settings (fsync on, synchronous_commit on,
# full_page_writes on: every figure is a durable one; only max_connections is raised, to 200,
# so that more than 5 replicas of 17 connections fit). Creates role `vigil` owning database
# `vigil` (trust authentication, loopback only), runs LOADGEN ARGS... with
# `--db postgres://vigil@127.0.0.1:PORT/vigil --db-pid POSTMASTER_PID` appended (the
# database's CPU in the timed window is then reported as `db_cpu_s`), and stops the server
# and removes the directory on exit, whatever happens. The loadgen's exit status is this
# script's. As root, initdb/pg_ctl run as the `postgres` user (runuser), as initdb requires.
#
# Environment: VIGIL_PG_BIN (PostgreSQL's bin directory), VIGIL_PG_KEEP=1 (keep the
# directory, with the server log, after the run; the server is stopped anyway).
set -euo pipefail

if [[ $# -lt 1 ]]; then
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
for arg in "$@"; do
    case "$arg" in
        --db | --db=* | --db-pid | --db-pid=*)
            echo "postgres-bench.sh: do not give $arg: this script fills in --db and --db-pid" >&2
            exit 2
            ;;
    esac
done

PG_BIN=${VIGIL_PG_BIN:-/usr/lib/postgresql/15/bin}
for program in initdb pg_ctl createuser createdb psql; do
    if [[ ! -x $PG_BIN/$program ]]; then
        echo "postgres-bench.sh: no $PG_BIN/$program (install Debian's postgresql-15, or set VIGIL_PG_BIN)" >&2
        exit 2
    fi
done

SUPERUSER=postgres
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
    # initdb refuses to run as root.
    if ! id "$SUPERUSER" >/dev/null 2>&1; then
        echo "postgres-bench.sh: running as root and there is no '$SUPERUSER' user to run PostgreSQL as" >&2
        exit 2
    fi
    as_pg=(runuser -u "$SUPERUSER" --)
fi

# /tmp, not $TMPDIR: the postgres user must be able to reach it.
DIR=$(mktemp -d /tmp/vigil-pgbench.XXXXXX)
DATA=$DIR/data
LOG=$DIR/server.log
started=0

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ $started -eq 1 ]]; then
        (cd "$DIR" && "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1) ||
            (cd "$DIR" && "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1) || true
    fi
    if [[ ${VIGIL_PG_KEEP:-0} == 1 ]]; then
        echo "postgres-bench.sh: kept $DIR (server log: $LOG)" >&2
    else
        rm -rf "$DIR"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ ${#as_pg[@]} -gt 0 ]]; then
    chown "$SUPERUSER:" "$DIR"
fi
# The server's working directory must be one its user can read.
cd "$DIR"

# --no-sync only skips initdb's own flush of the new files; the server runs with fsync on.
"${as_pg[@]}" "$PG_BIN/initdb" -D "$DATA" -U "$SUPERUSER" --auth=trust -E UTF8 \
    --no-locale --no-sync --no-instructions >"$DIR/initdb.log" 2>&1 || {
    cat "$DIR/initdb.log" >&2
    echo "postgres-bench.sh: initdb failed" >&2
    exit 2
}

# A free port: another process may take the one picked before the server binds it, so retry.
PORT=
for _attempt in 1 2 3 4 5 6 7 8; do
    candidate=$((20000 + RANDOM % 30000))
    if "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
        -o "-p $candidate -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=200" \
        start >/dev/null 2>&1; then
        PORT=$candidate
        started=1
        break
    fi
    if ! grep -q -e "could not bind" -e "could not create listen" "$LOG" 2>/dev/null; then
        cat "$LOG" >&2 || true
        echo "postgres-bench.sh: pg_ctl start failed" >&2
        exit 2
    fi
done
if [[ -z $PORT ]]; then
    echo "postgres-bench.sh: no free port after 8 tries" >&2
    exit 2
fi

connect=(-h "$DIR" -p "$PORT" -U "$SUPERUSER")
"${as_pg[@]}" "$PG_BIN/createuser" "${connect[@]}" vigil
"${as_pg[@]}" "$PG_BIN/createdb" "${connect[@]}" -O vigil vigil
settings=$("${as_pg[@]}" "$PG_BIN/psql" "${connect[@]}" -d vigil -At -c \
    "select concat_ws(' ', split_part(version(), ' on ', 1),
        'fsync=' || current_setting('fsync'),
        'synchronous_commit=' || current_setting('synchronous_commit'),
        'full_page_writes=' || current_setting('full_page_writes'),
        'wal_sync_method=' || current_setting('wal_sync_method'),
        'shared_buffers=' || current_setting('shared_buffers'))")
echo "postgres-bench.sh: 127.0.0.1:$PORT, data in $DATA: $settings" >&2
POSTMASTER_PID=$(head -n 1 "$DATA/postmaster.pid")

cd "$OLDPWD"
# In a process group of its own (job control), so that an interrupt or a TERM to this script
# stops the command and the verifiers it spawned (their process group) before the server.
set -m
"$@" --db "postgres://vigil@127.0.0.1:$PORT/vigil" --db-pid "$POSTMASTER_PID" &
child=$!
trap 'kill -TERM -- -"$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 130' INT
trap 'kill -TERM -- -"$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 143' TERM
set +e
wait "$child"
status=$?
set -e
exit "$status"
