# common.sh — helpers shared by the bench/run scenarios (sourced, not run).
# Connection strings for the bench cluster, psql wrappers, figure recording
# (one TSV line per measured value), RSS sampling of a PID, slot waits.
# Every background process started here is recorded in $WORK/pids and is
# stopped by its PID only (bench/run's exit trap calls bench_kill_all).

: "${WORK:?}" "${RES:?}" "${PGDIR:?}"

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# conninfo DB — libpq conninfo of database DB in the bench cluster.
conninfo() { echo "host=127.0.0.1 port=$(cat "$PGDIR/port") user=postgres dbname=${1:-postgres}"; }
# conninfo2 DB — the same in the second cluster ("another server": a history
# store off the source's server), started by start_store_cluster.
PGDIR2=$WORK/pg2
conninfo2() { echo "host=127.0.0.1 port=$(cat "$PGDIR2/port") user=postgres dbname=${1:-postgres}"; }
q2() { PGOPTIONS="-c client_min_messages=warning" psql "$(conninfo2 "$1")" -XAtq -v ON_ERROR_STOP=1 -c "$2"; }
# start_store_cluster — the second cluster, with the bench cluster's settings
# (bench/run stops it on exit). On this one machine it shares the cores with
# the source: its CPU is counted apart, which is what another server would pay.
start_store_cluster() {
  [ -f "$PGDIR2/data/postmaster.pid" ] && return 0
  log "starting the second PostgreSQL (history store server) in $PGDIR2"
  PG_FSYNC=on PG_SYNC_COMMIT=on PG_SHARED_BUFFERS=1GB \
    bash "$ROOT/tests/support/pgcluster.sh" start "$PGDIR2" "shared_buffers = 1GB" "max_wal_size = 8GB" \
      "fsync = on" "synchronous_commit = on" "full_page_writes = on" "checkpoint_timeout = 15min" \
      >"$WORK/logs/pgcluster2.log" 2>&1 || { cat "$WORK/logs/pgcluster2.log" >&2; die "could not start the second PostgreSQL"; }
}

# q DB SQL — run SQL, print unaligned tuples (fail loudly).
q() { PGOPTIONS="-c client_min_messages=warning" psql "$(conninfo "$1")" -XAtq -v ON_ERROR_STOP=1 -c "$2"; }
# qf DB FILE [psql -v args...] — run a SQL file.
qf() {
  local db=$1 f=$2; shift 2
  psql "$(conninfo "$db")" -XAtq -v ON_ERROR_STOP=1 "$@" -f "$f"
}

# recreate_db DB — drop DB (and its replication slots: slot names are
# cluster-wide and a slot pins its database) and create it empty.
recreate_db() {
  q postgres "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
              WHERE database = '$1' AND NOT active" >/dev/null
  q postgres "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
  q postgres "CREATE DATABASE $1" >/dev/null
}

# median — of the numbers on stdin, one per line (empty when none).
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
calc() { awk "BEGIN { printf \"%.6g\", $* }"; }

# record SCENARIO KEY RUN VALUE [UNIT] — one measured value of one run.
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" >>"$RES/figures.tsv"; }
# note SCENARIO TEXT — a free-text line shown under the scenario.
note() { printf '%s\t%s\n' "$1" "$2" >>"$RES/notes.tsv"; }
# meta KEY VALUE — machine/version facts for the report header.
meta() { printf '%s\t%s\n' "$1" "$2" >>"$RES/meta.tsv"; }

# Each tracked PID is stored with its start time (field 22 of /proc/PID/stat)
# so that a PID the kernel has reused for someone else's process is never hit.
proc_start() { awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null; }
track_pid() { echo "$1 $(proc_start "$1")" >>"$WORK/pids"; }
# bench_kill_all — stop every process this run started that still runs (by PID).
bench_kill_all() {
  [ -f "$WORK/pids" ] || return 0
  local p st
  while read -r p st; do
    [ -n "$p" ] && [ -n "$st" ] && [ "$(proc_start "$p")" = "$st" ] && kill "$p" 2>/dev/null || true
  done <"$WORK/pids"
  : >"$WORK/pids"
}

# stop_proc PID SIGNAL — ask a background process of ours to stop, wait for
# it up to 30 s, then SIGKILL it. (Background jobs of a non-interactive shell
# ignore SIGINT unless the program sets its own handler: walrev gets SIGTERM.)
stop_proc() {
  local pid=$1 sig=$2 i
  kill "-$sig" "$pid" 2>/dev/null || return 0
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid ignored SIG$sig for 30 s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# rss_sample PID OUT — append "ms_since_start rss_kib" every 50 ms while
# PID lives (run it in the background).
rss_sample() {
  local pid=$1 out=$2 t0 line rss
  t0=$(date +%s%N)
  : >"$out"
  while [ -r "/proc/$pid/status" ]; do
    rss=
    while read -r line; do
      case "$line" in VmRSS:*) rss=${line#VmRSS:}; rss=${rss% kB}; break ;; esac
    done <"/proc/$pid/status" 2>/dev/null || true
    [ -n "$rss" ] && echo "$(( ($(date +%s%N) - t0) / 1000000 )) ${rss// /}" >>"$out"
    sleep 0.05
  done
}

# child_of PID — the first child of PID (the program /usr/bin/time runs).
child_of() {
  local c i
  for i in $(seq 1 200); do
    c=$(cat "/proc/$1/task/$1/children" 2>/dev/null | awk '{print $1}')
    [ -n "$c" ] && { echo "$c"; return 0; }
    [ -d "/proc/$1" ] || return 1
    sleep 0.005
  done
  return 1
}

# timed OUT_PREFIX TIMEOUT_S CMD... — run CMD under /usr/bin/time and
# timeout(1), sampling CMD's RSS. Writes OUT_PREFIX.time ("elapsed_s
# maxrss_kib exit cpu_s", cpu_s = CMD's user + system CPU), OUT_PREFIX.rss ("ms rss_kib" lines) and OUT_PREFIX.log
# (stdout+stderr). Returns CMD's exit status (124 when it timed out).
timed() {
  local pfx=$1 tmo=$2; shift 2
  local t0 t1 rc tp cp sp=
  t0=$(now_s)
  /usr/bin/time -f '%e %M %U %S' -o "$pfx.tm" timeout -s INT "$tmo" "$@" >"$pfx.log" 2>&1 &
  tp=$!
  track_pid "$tp"
  # time -> timeout -> CMD
  if cp=$(child_of "$tp") && cp=$(child_of "$cp"); then
    track_pid "$cp"
    rss_sample "$cp" "$pfx.rss" &
    sp=$!
  fi
  rc=0; wait "$tp" || rc=$?
  t1=$(now_s)
  [ -n "$sp" ] && { wait "$sp" 2>/dev/null || true; }
  # wall time from our clock; max RSS of CMD (the largest waited-for descendant) from time(1)
  echo "$(elapsed "$t0" "$t1") $(awk 'END{print $2}' "$pfx.tm" 2>/dev/null || echo 0) $rc $(awk 'END{printf "%.2f", $3 + $4}' "$pfx.tm" 2>/dev/null || echo 0)" >"$pfx.time"
  return $rc
}
time_field() { awk -v f="$2" '{print $f}' "$1.time"; } # time_field PREFIX 1|2|3|4

# server_cpu — CPU seconds (user + system) the cluster has used so far: the
# postmaster's own and its exited children's (cutime/cstime: every backend,
# walsender and worker that ended) plus its live children's. The difference
# over a window is everything the server did in it, whoever it did it for;
# unlike TPS or wall time on a shared machine it does not depend on what
# else runs there.
server_cpu() {
  local pm
  pm=$(head -1 "$PGDIR/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
  { awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$pm/stat"
    # a child may end between the listing and the read: skip it (its time
    # is then in the postmaster's cutime), never fail the caller (set -e, pipefail)
    for c in $(cat /proc/"$pm"/task/*/children 2>/dev/null); do
      awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$c/stat" 2>/dev/null || true
    done; } | awk -v hz="$(getconf CLK_TCK)" '{ t += $1 } END { printf "%.2f", t / hz }' || true
}
# server_cpu_of DIR — server_cpu of the cluster in DIR (the history store's
# second cluster, for instance).
server_cpu_of() { PGDIR=$1 server_cpu; }

# app_cpu_snap DIR APP — "pid cpu_s" of the live server processes (of the
# cluster in DIR) whose application_name is APP: a consumer's walsender, and
# walrev's history backend and keyframe connection when its conninfo names
# it. app_cpu_delta BEFORE AFTER sums what those processes spent between two
# snapshots (a process born in between counts from 0; one that ended in
# between is lost, so take AFTER before stopping the consumer).
app_cpu_snap() {
  local dir=$1 app=$2 port pid
  port=$(cat "$dir/port")
  for pid in $(psql "host=127.0.0.1 port=$port user=postgres dbname=postgres" -XAtq \
                 -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$app'"); do
    echo "$pid $(proc_cpu "$pid")"
  done
}
app_cpu_delta() {
  awk 'NR == FNR { b[$1] = $2; next } { t += $2 - ($1 in b ? b[$1] : 0) } END { printf "%.2f", t }' "$1" "$2"
}

# proc_cpu PID — CPU seconds (user + system) of a live process and its reaped children.
proc_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13 + $14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}
# db_commits DB — transactions committed in DB so far (pg_stat_database).
db_commits() { q postgres "SELECT xact_commit FROM pg_stat_database WHERE datname = '$1'"; }

lsn_ge() { # lsn_ge A B — true when LSN A >= LSN B
  [ "$(q postgres "SELECT '$1'::pg_lsn >= '$2'::pg_lsn")" = t ]
}

# wait_slot DB SLOT LSN TIMEOUT_S — wait until the slot's confirmed_flush_lsn
# reaches LSN; prints the seconds waited, returns 1 on timeout.
wait_slot() {
  local db=$1 slot=$2 lsn=$3 tmo=$4 t0 ok
  t0=$(now_s)
  while :; do
    ok=$(q "$db" "SELECT coalesce(confirmed_flush_lsn >= '$lsn'::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = '$slot'")
    if [ "$ok" = t ]; then elapsed "$t0" "$(now_s)"; return 0; fi
    if awk -v a="$t0" -v b="$(now_s)" -v t="$tmo" 'BEGIN{exit !(b - a > t)}'; then
      elapsed "$t0" "$(now_s)"; return 1
    fi
    sleep 0.05
  done
}

# wait_active DB SLOT TIMEOUT_S — wait until a walsender streams the slot.
wait_active() {
  local i
  for i in $(seq 1 $(( $3 * 20 ))); do
    [ "$(q "$1" "SELECT active FROM pg_replication_slots WHERE slot_name = '$2'")" = t ] && return 0
    sleep 0.05
  done
  return 1
}

create_slot() { # create_slot DB SLOT PLUGIN
  q "$1" "SELECT lsn FROM pg_create_logical_replication_slot('$2', '$3')" >/dev/null
}
drop_slot() { # drop_slot DB SLOT (if it exists and is idle)
  q "$1" "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$2' AND NOT active" >/dev/null || true
}
advance_slot() { # advance_slot DB SLOT — skip WAL written since (other databases, idle time)
  q "$1" "SELECT pg_replication_slot_advance('$2', pg_current_wal_lsn())" >/dev/null
}

current_lsn() { q postgres "SELECT pg_current_wal_lsn()"; }

# walrev_catch_up DB SLOT — bring walrev's slot and history to the current WAL
# end by running the worker to it (it records every change meanwhile and then
# the position, and confirms the slot there). Never advance walrev's slot
# behind its back: a slot confirmed past the history's checkpoint is a gap,
# and the next run would record a gap revision and compare every table with
# the history while the measurement runs.
walrev_catch_up() {
  timeout 900 "$WALREV_BIN" --source "$(conninfo "$1")" --slot "$2" run --stop-lsn "$(current_lsn)" \
    >>"$WORK/logs/catch_up.log" 2>&1 || die "walrev could not catch up on $1 (log: $WORK/logs/catch_up.log)"
}

# walrev_cmd DB [args...] — walrev against database DB (history in the same database).
walrev_cmd() { local db=$1; shift; "$WALREV_BIN" --source "$(conninfo "$db")" "$@"; }

# fresh_store DB SLOT — drop the history schema and run `walrev setup` again,
# so a run starts from an empty history store (the slot must exist already).
fresh_store() {
  q "$1" "DROP SCHEMA IF EXISTS walrev CASCADE" >/dev/null
  walrev_cmd "$1" --slot "$2" setup $WALREV_SETUP_OPTS >>"$WORK/logs/setup.log" 2>&1 \
    || { tail -20 "$WORK/logs/setup.log" >&2; die "walrev setup failed on $1 (log: $WORK/logs/setup.log)"; }
}

# history_bytes DB — all heap, TOAST and index bytes of schema walrev.
history_bytes() {
  q "$1" "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'walrev' AND c.relkind IN ('r', 'm')"
}

# pgbench_tps LOG — "tps failed aborted_clients" from a pgbench log.
pgbench_tps() {
  local tps failed aborted
  tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$1" | head -1)
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$1" | head -1)
  aborted=$(grep -c 'aborted in command' "$1" || true)
  echo "${tps:-0} ${failed:-0} ${aborted:-0}"
}
