#!/usr/bin/env bash
# walrev's own publication dropped and made again by a user (issue 13).
# Before, a DROP PUBLICATION walrev; CREATE PUBLICATION walrev FOR TABLE t
# was silent: u (left out) went on answering its rows as of the drop, and
# the new publication lacked walrev's DDL capture and table log, so t's
# ADD COLUMN ... DEFAULT was missing from its snapshots. Now the DROP logs
# every table it covered 'unpublished' (before the drop, so the stream can
# go on), the CREATE puts walrev's own tables back and brings the tables it
# covers back with their rows (a rejoin), and replay refuses the others by
# name until they rejoin. A change made between the DROP and the CREATE
# cannot be decoded by PostgreSQL 15 at all: the worker stops naming that
# and its remedy (drop the slot, walrev setup: a gap revision), which then
# makes every table exact again.
source "$(dirname "$0")/lib.sh"
source_db pubrecreate pubrecreate

q $DB "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 't1'), (2, 't2');
       CREATE TABLE u (id int PRIMARY KEY, v text); INSERT INTO u VALUES (1, 'u1');
       CREATE TABLE k (a int, b text); ALTER TABLE k REPLICA IDENTITY FULL; INSERT INTO k VALUES (1, 'k'), (1, 'k')"
w_setup
NP=0
LSN=()
TABLES="t u k"
q $DB "UPDATE t SET v = 't1b' WHERE id = 1; UPDATE u SET v = 'u1b'"
point # 0
worker_up --source "$SRC" --slot "$SLOT"
kill_at_exit TERM wpid
# made again in one transaction, the worker running: u and k left out, and
# none of walrev's own tables named
q $DB "BEGIN; DROP PUBLICATION walrev; CREATE PUBLICATION walrev FOR TABLE t; COMMIT"
expect_eq "walrev's own tables are put back into the publication made again" \
  "$(q $DB "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables
            WHERE pubname = 'walrev' AND schemaname = 'walrev'")" "ddl_capture,erasure_log,table_log"
q $DB "UPDATE t SET v = 't1c' WHERE id = 1; UPDATE u SET v = 'u1c'; DELETE FROM k WHERE ctid = (SELECT min(ctid) FROM k);
       ALTER TABLE t ADD COLUMN w int DEFAULT 5"
point # 1: u and k out, t with a column its DEFAULT filled
q $DB "ALTER PUBLICATION walrev ADD TABLE u"
q $DB "UPDATE u SET v = 'u1d'"
point # 2: u back
# made again while the worker is stopped, statement by statement (no change
# between them): u out again, k back
worker_down
q $DB "DROP PUBLICATION walrev"
q $DB "CREATE PUBLICATION walrev FOR TABLE t, k"
q $DB "UPDATE u SET v = 'u1e'; INSERT INTO k VALUES (2, 'k2'); UPDATE t SET w = 6 WHERE id = 2"
point # 3
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
if grep -q 'level=error' "$LOG"; then grep 'level=error' "$LOG"; fail "the worker failed"; fi

for i in 1 2; do expect_unpublished k "$i"; done
expect_unpublished u 1
expect_unpublished u 3
expect_points_equal 8
pass "made again: walrev's tables kept, the tables it covers exact, the others refused by name"
expect_verify "verify passes"

# A change between the DROP and the CREATE: PostgreSQL 15 cannot decode the
# slot past it. The worker stops, naming the publication and the remedy.
q $DB "DROP PUBLICATION walrev"
q $DB "UPDATE t SET v = 'gap' WHERE id = 2; UPDATE k SET b = 'kg' WHERE a = 2"
q $DB "CREATE PUBLICATION walrev FOR TABLE t, k, u"
rc=0
RUN_STOP=$(current_lsn "$DB")
timeout 120 "$WALREV_BIN" --source "$SRC" --slot "$SLOT" run --stop-lsn "$RUN_STOP" 2>"$TMP/gap.log" || rc=$?
expect_eq "the worker stops with an error" "$rc" 1
grep -q "publication \\\\\"walrev\\\\\" does not exist (SQLSTATE 42704): the slot's publication was dropped; if it was made again since.*drop the slot and run walrev setup" "$TMP/gap.log" ||
  { tail -5 "$TMP/gap.log"; fail "the error names the dropped publication and the remedy"; }
pass "a change between DROP and CREATE PUBLICATION: the worker names it and the remedy"
# the remedy: the gap revision brings every table to its rows
q $DB "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null
w_setup
NP=0
LSN=()
q $DB "UPDATE t SET v = 'after' WHERE id = 1"
point # 0
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
expect_points_equal 3
expect_verify "verify passes after the gap"
