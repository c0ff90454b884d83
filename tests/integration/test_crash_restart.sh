#!/usr/bin/env bash
# Exactly once under faults: the worker is killed with SIGKILL at random
# points while a workload runs, and restarted each time; the history store
# (a separate cluster here) is restarted mid-stream. Afterwards every
# committed transaction is present exactly once, revision ids are dense,
# and `walrev verify` passes.
source "$(dirname "$0")/lib.sh"
source_db crash_src
HDIR=$TEST_TMP
cleanup() {
  [ -n "${wpid:-}" ] && kill -9 "$wpid" 2>/dev/null || true
  [ -n "${lpid:-}" ] && kill "$lpid" 2>/dev/null || true
  if [ -n "${KEEP_TEST_TMP:-}" ]; then echo "# history cluster still running (port ${HPORT:-?})"; return; fi
  bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" stop "$HDIR/pg" >/dev/null 2>&1 || true
}
on_exit cleanup
bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" start "$HDIR/pg" >/dev/null
HPORT=$(cat "$HDIR/pg/port")
HIST="host=127.0.0.1 port=$HPORT user=postgres dbname=postgres"
W() { "$WALREV_BIN" --source "$SRC" --history "$HIST" --slot crash "$@"; }

q $DB "CREATE TABLE ledger (txn int PRIMARY KEY, payload text);
       CREATE TABLE hot (id int PRIMARY KEY, n bigint);
       INSERT INTO hot VALUES (1, 0);"
w_setup
BASE=$($PSQL -h 127.0.0.1 -p "$HPORT" -d postgres -c "SELECT coalesce(max(id), 0) FROM walrev.revision")

N=${CRASH_TXNS:-600}
# The workload: N transactions, each a ledger insert plus an update of a hot
# row (exercising old values from history across restarts); every 50th rolls back.
(
  for i in $(seq 1 "$N"); do
    if [ $((i % 50)) = 0 ]; then
      echo "BEGIN; INSERT INTO ledger VALUES (-$i, 'rolled back'); ROLLBACK;"
    else
      echo "BEGIN; INSERT INTO ledger VALUES ($i, repeat('x', $i % 97)); UPDATE hot SET n = n + $i WHERE id = 1; COMMIT;"
    fi
    [ $((i % 20)) = 0 ] && echo "SELECT pg_sleep(0.05);"
  done
) | psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null &
lpid=$!

kills=0
while kill -0 "$lpid" 2>/dev/null; do
  # the binary itself in the background, so that $! is the worker's pid
  worker_start "$HDIR/run.log" --source "$SRC" --history "$HIST" --slot crash
  wpid=$WORKER_PID
  sleep "0.$((RANDOM % 9 + 1))"
  if [ $kills = 3 ]; then
    # restart the history store under the running worker
    bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" stop "$HDIR/pg" >/dev/null
    sleep 0.3
    runuser_prefix=""; [ "$(id -u)" = 0 ] && runuser_prefix="runuser -u postgres --"
    $runuser_prefix /usr/lib/postgresql/15/bin/pg_ctl -D "$HDIR/pg/data" -l "$HDIR/pg/server.log" -w start >/dev/null
    sleep 1
  fi
  worker_kill "$wpid"
  wpid=
  kills=$((kills + 1))
done
wait "$lpid"; lpid=
run_to_now "$HDIR/run.log" --source "$SRC" --history "$HIST" --slot crash
pass "worker killed $kills times, history store restarted once, final run reached $STOP"

HQ() { $PSQL -h 127.0.0.1 -p "$HPORT" -d postgres -c "SET search_path = walrev; $*"; }
committed=$((N - N / 50))
expect_eq "one revision per committed transaction, dense ids" \
  "$(HQ "SELECT count(*), max(id) - min(id) + 1 FROM revision WHERE id > $BASE")" "$committed|$committed"
expect_eq "each ledger row inserted exactly once" \
  "$(HQ "SELECT count(*), count(DISTINCT key) FROM object_delta WHERE op = 'I' AND relid = (SELECT relid FROM relation_version WHERE relname = 'ledger' LIMIT 1)")" \
  "$committed|$committed"
expect_eq "no rolled-back transaction recorded" \
  "$(HQ "SELECT count(*) FROM object_delta WHERE key LIKE '[\"-%'")" "0"
expect_eq "hot row's update chain is exact (each old value is the previous new value)" \
  "$(HQ "SELECT count(*) FROM (SELECT old_values[1] AS o, lag(new_values[1]) OVER (ORDER BY revision_id, seq) AS prev FROM object_delta_arrays WHERE op = 'U' AND key = '[\"1\"]') s WHERE o IS DISTINCT FROM prev AND prev IS NOT NULL")" "0"
expect_eq "final hot value in the history equals the source" \
  "$(HQ "SELECT vals[2] FROM current_rows((SELECT relid FROM relation_version WHERE relname = 'hot' LIMIT 1)) WHERE key = '[\"1\"]'")" \
  "$(q $DB "SELECT n FROM hot WHERE id = 1")"
must "$HDIR/verify.out" verify "$WALREV_BIN" --source "$SRC" --history "$HIST" --slot crash verify
pass "verify passes after $kills kills"
