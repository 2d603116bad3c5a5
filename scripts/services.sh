#!/usr/bin/env bash
# The services a team shares for sweeps, on one host: a PostgreSQL 15 server (database `optuna`
# for the Optuna studies, `mlflow` for MLflow's runs) and an `mlflow server` on it, with the
# artifacts in a folder. `make services` / `make services-stop` run this.
#
#   scripts/services.sh start    first time: initdb; then start whatever is not running, wait until
#                                both answer, print the exports to paste (idempotent)
#   scripts/services.sh stop     stop both
#   scripts/services.sh status
#
# Settings, from the environment:
#   SERVICES_DIR   ./services: everything lives here (postgres/ data, artifacts/, logs, pgpass)
#   SERVICES_HOST  127.0.0.1: this host only; 0.0.0.0 (or an address of this host) lets other machines in
#   PG_PORT        5432      MLFLOW_PORT  5000
#   PG_BIN         /usr/lib/postgresql/15/bin, else the folder of `initdb` on PATH
#   MLFLOW         the mlflow command: .venv/bin/mlflow when there is one, else `mlflow` on PATH
#   MLFLOW_ALLOWED_HOSTS   Host headers the MLflow server accepts (when SERVICES_HOST is not 127.0.0.1)
#
# Clients log in to PostgreSQL as `sweeplab` with a password made at initdb and kept in
# SERVICES_DIR/pgpass (mode 600), never in a URL: libpq reads it through PGPASSFILE (printed) on
# this host; on other machines copy that line into ~/.pgpass (mode 600) or set PGPASSWORD.
# The superuser `postgres` has no password and is reachable only through a socket in postgres/.
set -euo pipefail

ACTION=${1:-start}
DIR=$(realpath -m "${SERVICES_DIR:-./services}")
HOST=${SERVICES_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
MLFLOW_PORT=${MLFLOW_PORT:-5000}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
[ -x "$PG_BIN/initdb" ] || PG_BIN=$(dirname "$(command -v initdb || echo /missing/initdb)")
if [ -z "${MLFLOW:-}" ]; then
    MLFLOW=$([ -x .venv/bin/mlflow ] && echo .venv/bin/mlflow || command -v mlflow || echo mlflow)
fi
PGDIR=$DIR/postgres
DATA=$PGDIR/data
PGPASS=$DIR/pgpass
PIDFILE=$DIR/mlflow.pid
# Where this host's own processes reach the services.
case $HOST in 0.0.0.0|'*') LOCAL=127.0.0.1 ;; *) LOCAL=$HOST ;; esac
# What other machines use: this host's name when bound to every interface.
case $HOST in 0.0.0.0|'*') PUBLIC=$(hostname -f 2>/dev/null || hostname) ;; *) PUBLIC=$HOST ;; esac

say() { echo "services: $*" >&2; }
die() { say "$*"; exit 1; }

# initdb and pg_ctl refuse to run as root: run them as the postgres user, as the tests do.
AS_PG=()
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user to run PostgreSQL as"
    AS_PG=(runuser -u postgres --)
fi

pg_running() { [ -f "$DATA/PG_VERSION" ] && "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }
admin_sql() {  # superuser, through the private socket
    "${AS_PG[@]}" "$PG_BIN/psql" -h "$PGDIR" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtAc "$1"
}
health() { curl -fsS -m 3 "http://$LOCAL:$MLFLOW_PORT/health" >/dev/null 2>&1; }
mlflow_pid() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && cat "$PIDFILE"; }

start_postgres() {
    [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 is not installed (sudo apt-get install postgresql-15, or set PG_BIN)"
    mkdir -p "$PGDIR"
    if [ ${#AS_PG[@]} -gt 0 ]; then
        chown postgres "$PGDIR"
        "${AS_PG[@]}" test -w "$PGDIR" || die "the postgres user cannot reach $PGDIR (a private home folder?); \
set SERVICES_DIR to a folder it can enter, e.g. SERVICES_DIR=/srv/sweeplab-services"
    fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
        say "initdb $DATA"
        "${AS_PG[@]}" "$PG_BIN/initdb" -D "$DATA" -U postgres -E UTF8 --auth-local=trust \
            --auth-host=scram-sha-256 >"$PGDIR/initdb.log"
        # Clients of any address may try, as `sweeplab` with its password; listen_addresses decides who can reach it.
        echo "host all sweeplab all scram-sha-256" | "${AS_PG[@]}" tee -a "$DATA/pg_hba.conf" >/dev/null
    fi
    if [ ! -s "$PGPASS" ]; then
        (umask 077 && echo "*:*:*:sweeplab:$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$PGPASS")
    fi
    if pg_running; then
        say "PostgreSQL already running ($DATA)"
    else
        local listen=$HOST
        [ "$HOST" = 0.0.0.0 ] && listen='*'
        say "starting PostgreSQL on $HOST:$PG_PORT"
        "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$DATA" -l "$PGDIR/postgres.log" -w -t 60 -o \
            "-p $PG_PORT -k '$PGDIR' -c listen_addresses='$listen' -c unix_socket_permissions=0700" start >/dev/null \
            || { tail -n 20 "$PGDIR/postgres.log" >&2; die "PostgreSQL did not start (port $PG_PORT taken? set PG_PORT)"; }
    fi
    local password
    password=$(cut -d: -f5 "$PGPASS")
    [ "$(admin_sql "SELECT 1 FROM pg_roles WHERE rolname = 'sweeplab'")" = 1 ] \
        || admin_sql "CREATE ROLE sweeplab LOGIN PASSWORD '$password'"
    for db in optuna mlflow; do
        [ "$(admin_sql "SELECT 1 FROM pg_database WHERE datname = '$db'")" = 1 ] \
            || admin_sql "CREATE DATABASE $db OWNER sweeplab"
    done
}

start_mlflow() {
    if [ -n "$(mlflow_pid)" ] && health; then
        say "mlflow server already running (pid $(mlflow_pid))"
        return
    fi
    command -v "$MLFLOW" >/dev/null || die "no mlflow command ($MLFLOW): run 'make venv' or set MLFLOW"
    local allowed=()
    if [ "$HOST" != 127.0.0.1 ] && [ "$HOST" != localhost ]; then
        # MLflow refuses Host headers that are not localhost or a private IP unless they are listed.
        local name fqdn
        name=$(hostname); fqdn=$(hostname -f 2>/dev/null || hostname)
        allowed=(--allowed-hosts "${MLFLOW_ALLOWED_HOSTS:-localhost,localhost:*,127.0.0.1,127.0.0.1:*,$name,$name:*,$fqdn,$fqdn:*,$PUBLIC,$PUBLIC:*,10.*,172.*,192.168.*}")
    fi
    mkdir -p "$DIR/artifacts"
    say "starting mlflow server on $HOST:$MLFLOW_PORT (log: $DIR/mlflow.log)"
    PGPASSFILE=$PGPASS setsid "$MLFLOW" server \
        --backend-store-uri "postgresql+psycopg2://sweeplab@$LOCAL:$PG_PORT/mlflow" \
        --artifacts-destination "$DIR/artifacts" --host "$HOST" --port "$MLFLOW_PORT" "${allowed[@]}" \
        >>"$DIR/mlflow.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    local deadline=$((SECONDS + 180))
    until health; do
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
            tail -n 20 "$DIR/mlflow.log" >&2
            die "mlflow server did not come up (port $MLFLOW_PORT taken? set MLFLOW_PORT)"
        fi
        sleep 1
    done
}

stop_all() {
    local pid
    pid=$(mlflow_pid || true)
    if [ -n "$pid" ]; then
        say "stopping mlflow server (pid $pid)"
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"   # setsid: its workers share its group
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
    if pg_running; then
        say "stopping PostgreSQL"
        "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
    fi
}

case $ACTION in
    start)
        start_postgres
        start_mlflow
        cat <<EOF
# Both answer. Paste into the shells (here and on every machine) that run sweeps:
export MLFLOW_TRACKING_URI=http://$PUBLIC:$MLFLOW_PORT
export SWEEPLAB_STORAGE=postgresql+psycopg2://sweeplab@$PUBLIC:$PG_PORT/optuna
export PGPASSFILE=$PGPASS    # on other machines: copy this file's line into ~/.pgpass (chmod 600) instead
# then: sweeplab sweep sweep=fashion_cnn sweep.storage=\$SWEEPLAB_STORAGE   (or sweeplab worker ...)
EOF
        ;;
    stop) stop_all ;;
    status)
        pg_running && say "PostgreSQL: running on $HOST:$PG_PORT" || say "PostgreSQL: stopped"
        [ -n "$(mlflow_pid || true)" ] && health && say "mlflow server: running on $HOST:$MLFLOW_PORT" \
            || say "mlflow server: stopped"
        ;;
    *) die "usage: $0 start|stop|status" ;;
esac
