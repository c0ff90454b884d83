#!/usr/bin/env bash
# [worker] reply_timeout_ms bounds the wait for a server that does not answer,
# not a statement a live server is still running (issue 13: a scan of 80,000
# keyless rows given a primary key inside a large batch outlasted 10 s on a
# loaded machine, was cut off and retried from the start every time, and the
# worker never got past it). Here the history store's revision table is held
# under an ACCESS EXCLUSIVE lock for 4 s, four times reply_timeout_ms (1 s),
# while rows arrive: the worker waits for its statement, which the server
# reports active, and records every row once without a timeout or a retry.
# (A frozen server still times out: test_connection_faults.)
source "$(dirname "$0")/lib.sh"
source_db reply_busy
q $DB "CREATE TABLE t (id int PRIMARY KEY, v text)"
source_conf reply_busy <<CONF
[history]
batch_max_ms = 20
[worker]
reply_timeout_ms = 1000
CONF
w_setup
deltas_are() { [ "$(q $DB "SELECT count(*) FROM walrev.object_delta WHERE relid = 't'::regclass")" = "$1" ]; }
locked() {
  [ "$(q $DB "SELECT count(*) FROM pg_locks WHERE relation = 'walrev.revision'::regclass
              AND mode = 'AccessExclusiveLock' AND granted")" = 1 ]
}
worker_start "$LOG" -c "$TMP/walrev.conf"
on_exit "kill -9 $WORKER_PID 2>/dev/null || true"
q $DB "INSERT INTO t VALUES (1, 'before')"
wait_for 60 deltas_are 1 ||
  { cat "$LOG"; fail "the first row was not recorded"; }

# the lock, held 4 s, then rows the worker must write behind it
$PSQL -d "$DB" -c "BEGIN" -c "LOCK walrev.revision IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(4)" -c "COMMIT" >/dev/null &
locker=$!
wait_for 10 locked ||
  fail "the lock was not taken"
for i in 2 3 4; do q $DB "INSERT INTO t VALUES ($i, 'behind the lock')"; done
wait "$locker"
wait_for 60 deltas_are 4 ||
  { cat "$LOG"; fail "the rows written behind the lock were not recorded"; }
expect_eq "no statement was cut off by the reply timeout" "$(grep -c 'no reply from the server' "$LOG" || true)" 0
expect_eq "the history session was never retried" "$(grep -c 'retrying' "$LOG" || true)" 0
expect_eq "each row recorded once" \
  "$(q $DB "SELECT string_agg(key || ' ' || op::text, ', ' ORDER BY key) FROM walrev.object_delta WHERE relid = 't'::regclass")" \
  '["1"] I, ["2"] I, ["3"] I, ["4"] I'
worker_stop || fail "the worker did not stop cleanly"
pass "a statement held 4 s by a lock outlasted reply_timeout_ms = 1000 without a retry"
