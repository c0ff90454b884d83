#!/usr/bin/env bash
# A table created after tracking began needs no baseline (issue 13.9): every
# row it ever had comes through the stream. Created and filled while the
# worker runs (and one while it is stopped), then held under ACCESS EXCLUSIVE
# by an application: revisions of other tables keep flowing, the worker never
# asks for a lock on it, its backfill row says done with nothing read, the
# worker says why, and its history (all from the stream) equals the table.
source "$(dirname "$0")/lib.sh"
source_db born_src bornslot
LOCKER=walrev_test_born_locker
on_exit "psql -X -q -d $DB -c \"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$LOCKER'\" >/dev/null 2>&1"

diag() {
  tail -20 "$TEST_TMP/run.log"
  q $DB "SELECT pid, application_name, backend_xid, state, wait_event, left(query, 200) FROM pg_stat_activity WHERE datname = current_database()"
  q $DB "SELECT pid, locktype, relation::regclass, mode, granted FROM pg_locks WHERE relation = 't2'::regclass OR NOT granted"
  q $DB "SELECT pg_current_wal_lsn(), sent_lsn, flush_lsn FROM pg_stat_replication"
}
q $DB "CREATE TABLE base (id int PRIMARY KEY, v text); INSERT INTO base VALUES (1, 'b')"
w_setup

# born while the worker is stopped: its rows are in the slot all the same
q $DB "CREATE TABLE early (id int PRIMARY KEY, v text); INSERT INTO early SELECT g, 'e' || g FROM generate_series(1, 50) g"
worker_start "$TEST_TMP/run.log" --source "$SRC" --slot $SLOT
on_exit 'worker_kill'
q $DB "CREATE TABLE t2 (id int PRIMARY KEY, v text); INSERT INTO t2 SELECT g, 't' || g FROM generate_series(1, 500) g"
PGAPPNAME=$LOCKER psql -X -q -d $DB -c "BEGIN; LOCK t2 IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3600)" >/dev/null 2>&1 &
# wait_for runs its command again each time: the conditions are functions
count_is() { test "$(q $DB "$2")" = "$1"; }
wait_for 30 count_is 1 "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                        WHERE a.application_name = '$LOCKER' AND l.relation = 't2'::regclass AND l.granted" \
  || { diag; fail "the application did not get its lock"; }

q $DB "UPDATE base SET v = 'during the lock' WHERE id = 1"
wait_for 30 count_is 1 "$H SELECT count(*) FROM object_delta_arrays
                        WHERE relid = 'public.base'::regclass AND 'during the lock' = ANY (new_values)" \
  || { diag; fail "no revision of base while t2 is locked"; }
pass "revisions of other tables flow while t2 is locked"
wait_for 30 grep -q 'no baseline needed.*table=public.t2' "$TEST_TMP/run.log" \
  || { tail -20 "$TEST_TMP/run.log"; fail "the worker did not say t2 needs no baseline"; }
sleep 2 # a worker that still meant to read t2 would be queued by now
expect_eq "the worker never asked for a lock on t2" \
  "$(q $DB "SELECT count(*) FROM pg_locks WHERE relation = 't2'::regclass AND NOT granted")" 0
expect_eq "t2 and early: done, nothing read, no chunk" \
  "$(q $DB "$H SELECT relname || ' ' || state || ' ' || chunks || ' ' || rows_read FROM backfill
             WHERE relname IN ('t2', 'early') ORDER BY 1")" "early done 0 0
t2 done 0 0"
grep -q 'no baseline needed.*table=public.early' "$TEST_TMP/run.log" || fail "nothing said of early"
grep -q 'msg="baseline of a table"' "$TEST_TMP/run.log" && { cat "$TEST_TMP/run.log"; fail "a baseline was taken"; }
pass "no baseline was taken"

q $DB "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$LOCKER'" >/dev/null
q $DB "UPDATE t2 SET v = 'after' WHERE id = 7; DELETE FROM early WHERE id > 40"
wait_for 30 count_is 10 "$H SELECT count(*) FROM object_delta WHERE relid = 'public.early'::regclass AND op = 'D'" \
  || fail "the changes after the lock did not arrive"
expect_eq "t2's history is its 500 inserts from the stream and one update" \
  "$(q $DB "$H SELECT string_agg(op::text || n, ' ' ORDER BY op) FROM (SELECT op, count(*) n FROM object_delta
             WHERE relid = 'public.t2'::regclass GROUP BY op) x")" "I500 U1"
for t in t2 early; do
  expect_like_table "the history of $t equals the table" $t "$(W snapshot --table $t 2>/dev/null | sort)"
done
worker_stop || fail "the worker did not stop cleanly"
expect_verify verify
