#!/usr/bin/env bash
# A table that leaves a publication the user chose (issue 13; README's
# first known wrong answer of session 11): logical decoding sees none of its
# changes from then on, yet snapshots answered its rows as of the removal,
# silently (ALTER PUBLICATION walrev DROP TABLE t, p; an UPDATE after; the
# snapshot at the newest point answered t2/p2 where the tables had t3/p3).
# The table log now records 'unpublished' in the ALTER PUBLICATION's
# transaction (DROP TABLE, SET TABLE leaving it out, DROP TABLES IN SCHEMA,
# a partitioned parent leaving with its partitions), and every reader
# refuses a point after it by name. A rejoin (ADD TABLE, SET TABLE, ADD
# TABLES IN SCHEMA) starts the table's history again exactly: a truncate
# and its rows then, in the rejoin's revision, so changes, deletes and
# inserts made while it was out are right from there on. The worker is
# restarted between a leave and its rejoin.
source "$(dirname "$0")/lib.sh"
userpub_source unpublish

q $DB "CREATE TABLE base (id int PRIMARY KEY, v text); INSERT INTO base VALUES (1, 'b1');
       CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 't1'), (2, 'x'), (3, 'y');
       CREATE TABLE p (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
       CREATE TABLE p_a PARTITION OF p FOR VALUES FROM (0) TO (100);
       CREATE TABLE p_b PARTITION OF p FOR VALUES FROM (100) TO (200);
       INSERT INTO p VALUES (1, 'p1'), (150, 'q1');
       CREATE TABLE k (a int, b text); ALTER TABLE k REPLICA IDENTITY FULL; INSERT INTO k VALUES (1, 'k'), (1, 'k');
       CREATE SCHEMA s; CREATE TABLE s.u (id int PRIMARY KEY, v text); INSERT INTO s.u VALUES (1, 'u1');
       CREATE PUBLICATION userpub FOR TABLE base, t, p, k, s.u"
W setup >"$TMP/setup.out" 2>&1 || { cat "$TMP/setup.out"; fail setup; }
NP=0
LSN=()
TABLES="base t p p_a p_b k s.u"
q $DB "UPDATE t SET v = 't2' WHERE id = 1; UPDATE p SET v = 'p2' WHERE id = 1; UPDATE s.u SET v = 'u2'"
point # 0: everything published
q_at LEFT1 "ALTER PUBLICATION userpub DROP TABLE t, p"
point # 1: t and p (and its partitions) out
q $DB "UPDATE t SET v = 't3' WHERE id = 1; DELETE FROM t WHERE id = 2; INSERT INTO t VALUES (4, 'new');
       UPDATE p SET v = 'p3' WHERE id = 1; DELETE FROM p WHERE id = 150; INSERT INTO p VALUES (160, 'r')"
point # 2: changed while out
q $DB "ALTER PUBLICATION userpub SET TABLE base, t, s.u"
expect_eq "SET TABLE leaving walrev's own tables out: they are added back in its transaction" \
  "$(q $DB "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables
            WHERE pubname = 'userpub' AND schemaname = 'walrev'")" "ddl_capture,erasure_log,table_log"
point # 3: t back (SET TABLE), k out (SET TABLE leaves it out)
q $DB "INSERT INTO k VALUES (2, 'out'); DELETE FROM k WHERE b = 'k' AND ctid = (SELECT min(ctid) FROM k WHERE b = 'k');
       UPDATE t SET v = 't4' WHERE id = 3"
point # 4
q $DB "ALTER PUBLICATION userpub DROP TABLE s.u"
q $DB "UPDATE s.u SET v = 'u3'"
point # 5: s.u out
run_to "${LSN[5]}" "$LOG" -c "$TEST_TMP/walrev.conf"
# restarted while p, k and s.u are out
q $DB "UPDATE p SET v = 'p4' WHERE id = 1; INSERT INTO k VALUES (3, 'k3'); INSERT INTO s.u VALUES (2, 'u')"
q $DB "ALTER PUBLICATION userpub ADD TABLE p, k; ALTER PUBLICATION userpub ADD TABLES IN SCHEMA s"
point # 6: all back
q $DB "UPDATE p SET v = 'p5' WHERE id = 160; UPDATE s.u SET v = 'u4' WHERE id = 2; UPDATE t SET v = 't5' WHERE id = 4;
       DELETE FROM k WHERE a = 2"
point # 7
q $DB "ALTER PUBLICATION userpub DROP TABLES IN SCHEMA s; UPDATE s.u SET v = 'u5' WHERE id = 1"
point # 8: s.u out again (DROP TABLES IN SCHEMA)
run_to "${LSN[8]}" "$LOG" -c "$TEST_TMP/walrev.conf"

# a table-point out of the publication is refused by name, and leaves the
# comparison (snapshot_points skips a point without its file); at every
# other the snapshot is the table, byte for byte
for ((i = 0; i < NP; i++)); do
  for tb in $TABLES; do
    case "$tb:$i" in
      t:[12] | p:[1-5] | p_a:[1-5] | p_b:[1-5] | k:[345] | s.u:[58])
        expect_unpublished "$tb" "$i" ;;
    esac
  done
done
expect_points_equal 41
pass "every point out of the publication refused by name"

# the other readers refuse by name too
expect_refused "blame of t while out" "table t is not published at revision" \
  blame --table t --key 1 --at "${LSN[2]}"
expect_refused "diff of t into its time out" "table t is not published at revision" \
  diff "${LSN[0]}" "${LSN[2]}" --table t
expect_refused "diff of every table into t's time out" \
  "table public\.[a-z_]* is not published at revision" \
  diff "${LSN[0]}" "${LSN[2]}"
expect_refused "restore of t from its time out" "table t is not published at revision" \
  restore --table t --key 1 --at "${LSN[2]}"
expect_refused "snapshot --into of t while out" "table t is not published at revision" \
  snapshot --table t --at "${LSN[2]}" --into asof
expect_eq "--into made no table" "$(q $DB "SELECT count(*) FROM pg_tables WHERE schemaname = 'asof'")" 0
pass "blame, diff, restore and --into refuse a point while out of the publication by name"
# revert of the rejoin's revision (its truncate and baseline rows): the
# rows before it are not known, and revert says so
REJOIN=$(q $DB "$H SELECT max(revision_id) FROM table_event WHERE relid = 'public.t'::regclass AND event = 'alter'")
expect_refused "revert of t's rejoin" \
  "revision $REJOIN is a baseline snapshot: there is nothing to revert to" \
  revert "$REJOIN" --force
pass "revert of the rejoin refuses"
W log --table t >"$TMP/log.out" 2>&1 || { cat "$TMP/log.out"; fail "log of t"; }
expect_verify "verify passes"
expect_eq "every removal recorded: no table named as left unrecorded" \
  "$(grep -c 'left the publication unrecorded' "$LOG" || true)" 0

# The slot's publication dropped: the stream cannot go on, and the worker
# stops with a fatal error naming it (never answering on silently)
q $DB "DROP PUBLICATION userpub; UPDATE t SET v = 't6' WHERE id = 1"
rc=0
timeout 120 "$WALREV_BIN" -c "$TEST_TMP/walrev.conf" run --stop-lsn "$(current_lsn "$DB")" 2>"$TMP/dropped.log" || rc=$?
expect_eq "the worker stops with an error when its publication is dropped" "$rc" 1
grep -q 'level=error msg=".*replication stream on .*: publication \\"userpub\\" does not exist' "$TMP/dropped.log" ||
  { tail -5 "$TMP/dropped.log"; fail "the error names the publication"; }
pass "the error names the dropped publication"
