#!/usr/bin/env bash
# A cancelled `DETACH PARTITION ... CONCURRENTLY` (found running PostgreSQL's
# detach-partition-concurrently-4 isolation spec under a tracked database):
# its first transaction commits the partition detach-pending, and from then
# on SELECT from the parent no longer shows the partition's rows, although
# nothing of that is in the WAL and the second transaction, whose
# ddl_command_end would log the detach, never commits. The parent's snapshot
# kept the partition's rows until `DETACH PARTITION ... FINALIZE`. The
# ddl_command_start trigger walrev_log_detach_pending logs the partition
# detached in the first transaction. Also: a detach that fails in its first
# transaction (a name that is no partition) logs nothing, and a completed
# CONCURRENTLY detach and FINALIZE stay exact.
source "$(dirname "$0")/lib.sh"
source_db detachpend detachpend
q $DB "CREATE SCHEMA s2;
       CREATE TABLE dp (a int PRIMARY KEY, b text) PARTITION BY LIST (a);
       CREATE TABLE dp1 PARTITION OF dp FOR VALUES IN (1, 11);
       CREATE TABLE dp2 PARTITION OF dp FOR VALUES IN (2, 12);
       CREATE TABLE s2.dp3 PARTITION OF dp FOR VALUES IN (3, 13);
       INSERT INTO dp VALUES (1, 'one'), (11, 'eleven'), (2, 'two'), (12, 'twelve'), (3, 'three'), (13, 'x');"
w_setup
NP=0
LSN=()
TABLES="dp dp1 dp2 s2.dp3"
point

# A reader holds an old snapshot of dp; the detach's second transaction waits
# for it and is cancelled by its statement_timeout.
PGAPPNAME=dp_reader $PSQL -d "$DB" -c "BEGIN" -c "SELECT count(*) FROM dp" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null &
reader=$!
kill_at_exit TERM reader
reader_sleeping() {
  [ "$(q "$DB" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dp_reader' AND query LIKE 'SELECT pg_sleep%'")" = 1 ]
}
wait_for 10 reader_sleeping ||
  fail "the reader did not start"
rc=0
PGOPTIONS="-c statement_timeout=1000" $PSQL -d "$DB" -c "ALTER TABLE dp DETACH PARTITION dp1 CONCURRENTLY" 2>"$TMP/detach.err" || rc=$?
wait "$reader"
reader=
expect_eq "the detach's second transaction was cancelled" "$rc $(grep -c 'canceling statement due to statement timeout' "$TMP/detach.err")" "1 1"
expect_eq "dp1 is detach-pending, and dp no longer shows its rows" \
  "$(q "$DB" "SELECT inhrelid::regclass, inhdetachpending FROM pg_inherits WHERE inhparent = 'dp'::regclass ORDER BY inhrelid::regclass::text");$(q "$DB" "SELECT count(*) FROM dp")" \
  "dp1|t
dp2|f
s2.dp3|f;4"
q $DB "UPDATE dp1 SET b = 'one!' WHERE a = 1; UPDATE dp SET b = 'two!' WHERE a = 2"
point

# A detach that fails in its first transaction logs nothing: dp2 stays.
rc=0
$PSQL -d "$DB" -c "ALTER TABLE dp DETACH PARTITION nosuch CONCURRENTLY" 2>/dev/null || rc=$?
expect_eq "a detach of no partition fails" "$rc" 1
q $DB "ALTER TABLE dp DETACH PARTITION dp1 FINALIZE"
q $DB "DELETE FROM dp1 WHERE a = 11; UPDATE dp1 SET b = 'one!!' WHERE a = 1"
point
# A schema-qualified partition detached CONCURRENTLY to the end.
q $DB "ALTER TABLE dp DETACH PARTITION s2.dp3 CONCURRENTLY"
q $DB "UPDATE dp SET b = 'twelve!' WHERE a = 12; UPDATE s2.dp3 SET b = 'y' WHERE a = 13"
point
# A detach whose partition is not a name alone before CONCURRENTLY (a
# comment): the trigger cannot read it, and must not fail the command (it
# did: to_regclass raised 'invalid name syntax'); the detach is logged when
# it completes
q $DB "ALTER TABLE dp DETACH PARTITION dp2 /* the last */ CONCURRENTLY" ||
  fail "a CONCURRENTLY detach with a comment failed"
q $DB "UPDATE dp2 SET b = 'two!!' WHERE a = 2"
point

run_to_now "$LOG" --source "$SRC" --slot detachpend
expect_points_equal 20
expect_verify "verify"
