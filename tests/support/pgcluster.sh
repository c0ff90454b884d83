#!/usr/bin/env bash
# pgcluster.sh — start/stop a throwaway PostgreSQL 15 for tests, the demo and
# benchmarks. The cluster lives entirely in DIR, listens on a free loopback port
# and a socket in DIR, and is stopped by pg_ctl on its own data directory only.
# Runs as root too: the server then runs as the 'postgres' user.
#
#   pgcluster.sh start DIR [extra postgresql.conf lines...]   writes DIR/conninfo, DIR/port
#   pgcluster.sh stop DIR
#   pgcluster.sh down DIR [fast|immediate]   stop a started cluster, keeping it (immediate: a crash)
#   pgcluster.sh up DIR                      start it again as it was (crash recovery after immediate)
#   pgcluster.sh conninfo DIR [dbname]
set -euo pipefail

cmd=${1:?usage: pgcluster.sh start|stop|down|up|conninfo DIR}
dir=${2:?usage: pgcluster.sh start|stop|down|up|conninfo DIR}
shift 2

pgbin=${PG_BIN:-}
if [ -z "$pgbin" ]; then
  for v in 15 16 17; do
    if [ -x /usr/lib/postgresql/$v/bin/initdb ]; then pgbin=/usr/lib/postgresql/$v/bin; break; fi
  done
fi
[ -n "$pgbin" ] || { echo "pgcluster: no PostgreSQL server binaries found (install postgresql-15)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 - <<'PY' 2>/dev/null || echo $(( 20000 + RANDOM % 20000 ))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

case "$cmd" in
start)
  if [ -f "$dir/data/postmaster.pid" ] && as_owner "$pgbin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    echo "pgcluster: already running in $dir"; exit 0
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$dir"
    # The postgres user must be able to reach DIR through its parents.
    d=$dir; while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
  fi
  as_owner "$pgbin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  port=$(free_port)
  {
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$dir'"
    echo "wal_level = logical"
    echo "max_replication_slots = 120"
    echo "max_wal_senders = 120"
    echo "max_connections = 200"
    echo "max_prepared_transactions = 20"
    echo "fsync = ${PG_FSYNC:-off}"
    echo "synchronous_commit = ${PG_SYNC_COMMIT:-off}"
    echo "full_page_writes = off"
    echo "shared_buffers = ${PG_SHARED_BUFFERS:-128MB}"
    echo "max_wal_size = 4GB"
    echo "wal_sender_timeout = 60s"
    echo "log_min_messages = warning"
    echo "timezone = 'UTC'"
    for line in "$@"; do echo "$line"; done
  } >>"$dir/data/postgresql.conf"
  as_owner "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  echo "$port" >"$dir/port"
  echo "host=127.0.0.1 port=$port user=postgres dbname=postgres" >"$dir/conninfo"
  chmod a+r "$dir/port" "$dir/conninfo"
  echo "pgcluster: started PostgreSQL in $dir on port $port"
  ;;
stop)
  if [ -d "$dir/data" ]; then
    as_owner "$pgbin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    echo "pgcluster: stopped $dir"
  fi
  ;;
down)
  # a fault for the tests (tests/difftest --source-faults): the data stays
  mode=${1:-fast}
  case "$mode" in fast|immediate) ;; *) echo "pgcluster: down DIR fast|immediate" >&2; exit 2 ;; esac
  as_owner "$pgbin/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null
  ;;
up)
  as_owner "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 start >/dev/null \
    || { tail -20 "$dir/server.log" >&2; exit 1; }
  ;;
conninfo)
  port=$(cat "$dir/port")
  echo "host=127.0.0.1 port=$port user=postgres dbname=${1:-postgres}"
  ;;
*)
  echo "usage: pgcluster.sh start|stop|down|up|conninfo DIR" >&2; exit 2 ;;
esac
