#!/usr/bin/env bash
# The worker's baseline check lists the published tables, then reads which of
# them the table log saw created while published (those need no baseline: the
# stream has all their rows). Read in two statements, a table dropped between
# them was in the list but, its drop now visible, no longer 'born': it was
# taken for one that joined the publication after setup, its baseline was
# requested, then cancelled as dropped, and every snapshot of it was refused
# as incomplete although the stream had brought all its rows (found by
# tests/difftest/isolation.py, prepared-transactions spec). Both are now read
# in one snapshot. Here a session holds the table log until the check waits
# on it, then drops the table.
source "$(dirname "$0")/lib.sh"
source_db bornrace_src bornrace
wpid=; lpid=
kill_at_exit TERM lpid
kill_at_exit 9 wpid

q $DB "CREATE TABLE base (id int PRIMARY KEY, v text); INSERT INTO base VALUES (1, 'b1')"
w_setup
# x is created after tracking began, with the worker stopped
q_at X1 "CREATE TABLE x (id int PRIMARY KEY, v text); INSERT INTO x VALUES (1, 'x1'), (2, 'x2')"

PGAPPNAME=bornrace_locker $PSQL -d $DB -v ON_ERROR_STOP=1 -c "BEGIN" \
  -c "LOCK TABLE walrev.table_log IN ACCESS EXCLUSIVE MODE" \
  -c "DO \$\$ BEGIN FOR i IN 1..1200 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM pg_locks WHERE relation = 'walrev.table_log'::regclass AND NOT granted);
        PERFORM pg_sleep(0.05); END LOOP; END \$\$" \
  -c "DROP TABLE x" -c "COMMIT" >"$TMP/locker.out" 2>&1 &
lpid=$!
locked() { [ "$(q $DB "SELECT count(*) FROM pg_locks WHERE relation = 'walrev.table_log'::regclass AND granted
                        AND mode = 'AccessExclusiveLock'")" = 1 ]; }
wait_for 10 locked || fail "the lock was not taken"
worker_up --source "$SRC" --slot "$SLOT"
wait "$lpid" || { cat "$TMP/locker.out"; fail "the locking session failed"; }
lpid=
marker_catch_up base 600
worker_down

expect_eq "x, created after tracking began and dropped while the check read: its rows at X1" \
  "$(W snapshot --table x --at "$X1" 2>&1 | grep -v '^resolved ' | sort)" "$(printf '1\tx1\n2\tx2')"
expect_eq "no baseline was requested for x" \
  "$(grep -c 'baseline cancelled.*table=public.x\|added to the publication after setup.*table=public.x' "$TMP/run.log")" 0
expect_verify "verify"
pass "a table dropped while the baseline check reads is taken as created after tracking began"
