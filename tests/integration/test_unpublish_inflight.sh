#!/usr/bin/env bash
# A table that rejoins the publication (ALTER PUBLICATION ... ADD TABLE, or
# walrev's publication made again) while another transaction has written it
# and not ended (issue 13; found by difftest --user-publication, seed 101:
# a session's INSERT before a DROP + CREATE PUBLICATION, committed after).
# Logical decoding reads that transaction's changes in the catalog of when
# they were made, when the table was out of the publication, and sends none
# of them; the rejoin's rows (read in the ALTER's transaction) cannot see
# them either. So the history lacked them, silently: the snapshot after the
# commit had the table's rows without the in-flight ones. Now such a table
# does not rejoin: it stays logged 'unpublished', replay refuses it by name,
# and the ALTER warns, naming it and the remedy (drop it from the
# publication and add it again once those transactions ended), after which
# it rejoins exactly.
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
$PSQL -d "$DB" -c "ALTER PUBLICATION userpub ADD TABLE t, u" 2>"$TMP/alter.err" >/dev/null
grep -q "WARNING:  walrev: table public.t rejoined publication userpub while other transactions had written it and not ended" "$TMP/alter.err" ||
  { cat "$TMP/alter.err"; fail "the ALTER warns, naming the table written in flight"; }
grep -q "public.u" "$TMP/alter.err" && { cat "$TMP/alter.err"; fail "u, not written in flight, is not named"; }
pass "the rejoin warns of the table written by a transaction in flight, by name"
q $DB "COMMIT PREPARED 'unpubinflight'"
q $DB "UPDATE u SET v = 'u1c'"
point # 2: u back exactly, t refused (its in-flight changes are not in the stream)
q $DB "ALTER PUBLICATION userpub DROP TABLE t; ALTER PUBLICATION userpub ADD TABLE t"
q $DB "UPDATE t SET v = 't1c' WHERE id = 1"
point # 3: t back, with its rows
run_to_now "$LOG" -c "$TEST_TMP/walrev.conf"

for tb in t u; do expect_unpublished "$tb" 1; done
expect_unpublished t 2
expect_points_equal 9
pass "a table written in flight across its rejoin is refused by name, and exact after a clean rejoin"
expect_verify "verify passes"
