#!/usr/bin/env bash
# A table that rejoins the publication (ALTER PUBLICATION ... ADD TABLE, or
# walrev's publication made again) while another transaction has written it
# and not ended (issue 13; found by difftest --user-publication, seed 101:
# a session's INSERT before a DROP + CREATE PUBLICATION, committed after).
# Logical decoding reads that transaction's changes in the catalog of when
# they were made, when the table was out of the publication, and sends none
# of them; the rejoin's rows (read in the ALTER's transaction) cannot see
# them either. So the history lacked them, silently: the snapshot after the
# commit had the table's rows without the in-flight ones. Now the command
# that would make it rejoin fails, naming it (no history could follow such
# a rejoin exactly; leaving the table 'unpublished' would not last, as the
# next ALTER TABLE of it logs it tracked again), and run again once those
# transactions ended, the table rejoins exactly.
source "$(dirname "$0")/lib.sh"
userpub_source unpubinflight

q $DB "CREATE TABLE base (id int PRIMARY KEY, v text); INSERT INTO base VALUES (1, 'b1');
       CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 't1'), (2, 't2');
       CREATE TABLE u (id int PRIMARY KEY, v text); INSERT INTO u VALUES (1, 'u1');
       CREATE PUBLICATION userpub FOR TABLE base, t, u"
w_setup
NP=0
LSN=()
TABLES="base t u"
point # 0
q $DB "ALTER PUBLICATION userpub DROP TABLE t, u"
q $DB "UPDATE t SET v = 't1b' WHERE id = 1; UPDATE u SET v = 'u1b'"
point # 1: both out
# a transaction writes t (and only t) and stays open (prepared) across the rejoin of both
q $DB "BEGIN; INSERT INTO t VALUES (10, 'in flight'); UPDATE t SET v = 't2 in flight' WHERE id = 2;
       PREPARE TRANSACTION 'unpubinflight'"
on_exit "$PSQL -d $DB -c \"ROLLBACK PREPARED 'unpubinflight'\" >/dev/null 2>&1"
$PSQL -d "$DB" -c "ALTER PUBLICATION userpub ADD TABLE t, u" 2>"$TMP/alter.err" >/dev/null &&
  fail "the rejoin of a table written by a transaction in flight succeeded"
grep -q "ERROR:  walrev: table public.t cannot rejoin publication userpub while other transactions have written it and not ended" "$TMP/alter.err" ||
  { cat "$TMP/alter.err"; fail "the ALTER fails, naming the table written in flight"; }
grep -q "public.u" "$TMP/alter.err" && { cat "$TMP/alter.err"; fail "u, not written in flight, is not named"; }
expect_eq "neither table rejoined" "$(q $DB "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'userpub' AND tablename IN ('t', 'u')")" 0
pass "the rejoin of a table written by a transaction in flight fails, by name"
q $DB "COMMIT PREPARED 'unpubinflight'"
q $DB "UPDATE u SET v = 'u1c'"
point # 2: both still out
q $DB "ALTER PUBLICATION userpub ADD TABLE t, u"
q $DB "UPDATE t SET v = 't1c' WHERE id = 1"
point # 3: both back, with their rows
run_to_now "$LOG" -c "$TEST_TMP/walrev.conf"

for i in 1 2; do for tb in t u; do expect_unpublished "$tb" "$i"; done; done
expect_points_equal 8
pass "the tables rejoin exactly once the transaction in flight has ended"
expect_verify "verify passes"
