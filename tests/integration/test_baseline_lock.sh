#!/usr/bin/env bash
# A baseline never holds the stream (issue 13.9): while an application holds
# ACCESS EXCLUSIVE on a table whose baseline is due, revisions of every other
# table keep being written within seconds, the worker's chunk read gives up
# its lock request after lock_timeout instead of queueing, and once the lock
# is released the baseline completes and equals the table.
source "$(dirname "$0")/lib.sh"
source_db lock_src lockslot
wpid=; lpid=
on_exit "psql -X -q -d $DB -c \"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'walrev_test_locker'\" >/dev/null 2>&1"
kill_at_exit TERM lpid
kill_at_exit 9 wpid # the last registered goes first
late_tables_conf 100

q $DB "CREATE TABLE base (id int PRIMARY KEY, v text);
       INSERT INTO base SELECT g, 'b' || g FROM generate_series(1, 10) g;
       CREATE TABLE t2 (id int PRIMARY KEY, v text);
       INSERT INTO t2 SELECT g, 't' || g FROM generate_series(1, 500) g;"
w_setup

# t2 joins the publication while no worker runs; its lock is taken before the
# worker starts, so the baseline's first read meets it.
q $DB "ALTER PUBLICATION walrev ADD TABLE t2"
# held until the test ends it (pg_terminate_backend), however slow the machine
PGAPPNAME=walrev_test_locker psql -X -q -d $DB -c "BEGIN; LOCK t2 IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600); COMMIT;" >/dev/null 2>&1 &
lpid=$!
wait_for 5 q_is $DB "SELECT count(*) FROM pg_locks WHERE relation = 't2'::regclass AND mode = 'AccessExclusiveLock' AND granted" 1 ||
  fail "the lock was not taken"
locked_at=$(date +%s.%N)

worker_up -c "$TMP/walrev.conf" --source "$SRC" --slot $SLOT

# While the lock is held: each change of base is in the history within 3 s.
worst=0
for i in $(seq 1 6); do
  t0=$(date +%s%N)
  q $DB "UPDATE base SET v = 'during lock $i' WHERE id = $i"
  ok=
  for _ in $(seq 1 300); do
    if [ "$(q $DB "$H SELECT EXISTS (SELECT 1 FROM object_delta_arrays WHERE relid = 'public.base'::regclass
              AND 'during lock $i' = ANY (new_values))")" = t ]; then ok=1; break; fi
    kill -0 "$wpid" 2>/dev/null || { cat "$TMP/run.log"; fail "the worker died"; }
    sleep 0.01
  done
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  [ -n "$ok" ] && [ "$ms" -le 3000 ] || { tail -20 "$TMP/run.log"; fail "change $i of base took ${ms} ms (or never came) while t2 was locked"; }
  [ "$ms" -gt "$worst" ] && worst=$ms
  sleep 1
done
elapsed=$(echo "$(date +%s.%N) - $locked_at" | bc)
# still locked: the checks above ran while the application held the lock
[ "$(q $DB "SELECT count(*) FROM pg_locks WHERE relation = 't2'::regclass AND mode = 'AccessExclusiveLock' AND granted")" = 1 ] \
  || fail "the lock was released before the checks ended (${elapsed}s)"
pass "6 changes of base reached the history while t2 was locked (slowest ${worst} ms, ${elapsed}s into the lock)"
expect_eq "t2 has no baseline rows while it is locked" \
  "$(q $DB "$H SELECT count(*) FROM object_delta WHERE relid = 'public.t2'::regclass")" 0
# the worker never waits in the lock queue for long: no granted=false lock of
# its connection that lives across two samples 0.3 s apart
waits=0
for _ in $(seq 1 5); do
  a=$(q $DB "SELECT string_agg(l.pid::text, ',') FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
             WHERE NOT l.granted AND s.application_name = 'walrev-backfill'")
  sleep 0.3
  b=$(q $DB "SELECT string_agg(l.pid::text, ',') FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
             WHERE NOT l.granted AND s.application_name = 'walrev-backfill'")
  [ -n "$a" ] && [ "$a" = "$b" ] && waits=$((waits + 1))
done
expect_eq "the worker's lock requests never queue for 0.3 s" "$waits" 0
grep -q 'msg="baseline waits: the table is locked' "$TMP/run.log" || { cat "$TMP/run.log"; fail "the wait is not in the log"; }

q $DB "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'walrev_test_locker'" >/dev/null
wait $lpid 2>/dev/null || true; lpid=
wait_for 60 backfill_state_is t2 done || true
expect_eq "the baseline of t2 completes once the lock is released" \
  "$(q $DB "$H SELECT state, rows_recorded FROM backfill WHERE relid = 'public.t2'::regclass")" "done|500"
grep -q 'msg="baseline goes on: the lock was released" table=public.t2' "$TMP/run.log" || { cat "$TMP/run.log"; fail "no resumption in the log"; }
expect_eq "the history of t2 equals the table" \
  "$(W snapshot --table t2 2>/dev/null | sort)" "$(q $DB "COPY (SELECT * FROM t2) TO STDOUT" | sort)"
expect_eq "the history of base equals the table" \
  "$(W snapshot --table base 2>/dev/null | sort)" "$(q $DB "COPY (SELECT * FROM base) TO STDOUT" | sort)"
worker_down
