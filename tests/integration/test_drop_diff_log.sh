#!/usr/bin/env bash
# `walrev diff` and `walrev log --table` across a table's drop (issue 13). A
# drop writes no delta, only a table-log row, and diff() compared the
# table's last rows with themselves: a diff from before a drop to after it
# showed no change (or the changes before the drop), a table created and
# dropped between the two points showed as added, and `log --table T`
# never listed the revision that dropped T. Now a table has no rows at a
# point it was dropped by: its rows are removed, one created and dropped in
# between has no change, and its log lists its drop. Kinds: keyed, keyless,
# created after setup, dropped with other changes in one transaction, a
# partition dropped or detached (the parent's diff and the whole diff), a
# partitioned parent dropped, a name dropped and made again, and the diff
# read backwards. `revert` of a
# revision that dropped tables is refused by name (a drop has no row change
# to undo), and never plans changes of walrev's own table log.
source "$(dirname "$0")/lib.sh"
source_db drop_diff_log drop_diff_log

q $DB "CREATE TABLE keep (id int PRIMARY KEY, v text); INSERT INTO keep VALUES (1, 'k1');
       CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 't1'), (2, 't2');
       CREATE TABLE k (a int, b text); INSERT INTO k VALUES (1, 'x'), (1, 'x');
       CREATE TABLE re (id int PRIMARY KEY, v text); INSERT INTO re VALUES (1, 'old');
       CREATE TABLE pp (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
       CREATE TABLE pp1 PARTITION OF pp FOR VALUES FROM (0) TO (10);
       CREATE TABLE pp2 PARTITION OF pp FOR VALUES FROM (10) TO (20);
       CREATE TABLE pp3 PARTITION OF pp FOR VALUES FROM (20) TO (30);
       INSERT INTO pp VALUES (1, 'p1'), (11, 'p11'), (21, 'p21');
       CREATE TABLE gone (id int PRIMARY KEY) PARTITION BY LIST (id);
       CREATE TABLE gone1 PARTITION OF gone FOR VALUES IN (5);
       INSERT INTO gone VALUES (5)"
w_setup

q_at P1 "UPDATE keep SET v = 'k2' WHERE id = 1"
q $DB "CREATE TABLE mid (id int PRIMARY KEY, v text); INSERT INTO mid VALUES (5, 'm')"
q_at P_MID "UPDATE mid SET v = 'm2' WHERE id = 5"
q $DB "DROP TABLE mid"
q $DB "BEGIN; UPDATE t SET v = 't1b' WHERE id = 1; INSERT INTO keep VALUES (2, 'k'); DROP TABLE t; COMMIT"
q $DB "DROP TABLE k; DROP TABLE pp2; ALTER TABLE pp DETACH PARTITION pp3; DROP TABLE gone"
q $DB "DROP TABLE re; CREATE TABLE re (id int PRIMARY KEY, v text); INSERT INTO re VALUES (1, 'new')"
q_at P2 "UPDATE keep SET v = 'k3' WHERE id = 1"
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"

# diff of one table: its rows at P1 removed, in its columns' order
D() { W diff "$@" --format csv 2>/dev/null | tail -n +2; }
expect_eq "diff --table t across its drop: every row it had at P1 removed" "$(D "$P1" "$P2" --table t)" \
  'public.t,"[""1""]",removed,id,1,
public.t,"[""1""]",removed,v,t1,
public.t,"[""2""]",removed,id,2,
public.t,"[""2""]",removed,v,t2,'
expect_eq "read backwards, t's rows are added" "$(D "$P2" "$P1" --table t | cut -d, -f3-)" \
  'added,id,,1
added,v,,t1
added,id,,2
added,v,,t2'
expect_eq "a keyless table's equal rows are each removed" \
  "$(D "$P1" "$P2" --table k | cut -d, -f3- | LC_ALL=C sort | uniq -c | sed 's/^ *//')" '2 removed,a,1,
2 removed,b,x,'
expect_eq "a table created and dropped between the points has no change" "$(D "$P1" "$P2" --table mid)" ""
expect_eq "from a point while it existed, its rows then are removed" "$(D "$P_MID" "$P2" --table mid | cut -d, -f3-)" \
  'removed,id,5,
removed,v,m2,'
expect_eq "a name dropped and made again: the old table's rows removed, the new one's added" \
  "$(D "$P1" "$P2" --table re | cut -d, -f3-)" 'removed,id,1,
removed,v,old,
added,id,,1
added,v,,new'
expect_eq "between two points after its drop, nothing" "$(D "$P2" "$P2" --table t)" ""
expect_eq "the parent: the dropped partition's rows and the detached one's are removed" \
  "$(D "$P1" "$P2" --table pp | cut -d, -f2-)" \
  '"[""11""]",removed,id,11,
"[""11""]",removed,v,p11,
"[""21""]",removed,id,21,
"[""21""]",removed,v,p21,'
expect_eq "a dropped partitioned parent: its rows removed" "$(D "$P1" "$P2" --table gone | cut -d, -f2-)" \
  '"[""5""]",removed,id,5,'
# every table: the drops are there; mid, created and dropped in between, and
# the detached pp3, which keeps its rows, are not
expect_eq "diff of every table across the drops" "$(D "$P1" "$P2" | cut -d, -f1,3 | LC_ALL=C sort | uniq -c | sed 's/^ *//')" \
  '1 public.gone1,removed
4 public.k,removed
2 public.keep,added
1 public.keep,changed
2 public.pp2,removed
2 public.re,added
2 public.re,removed
4 public.t,removed'

# log --table: the revision that dropped the table is listed, as its other revisions are
rev_at() { q $DB "$H SELECT max(id) FROM revision WHERE end_lsn <= '$1'::pg_lsn"; }
drop_rev() { q $DB "$H SELECT revision_id FROM table_event WHERE relname = '$1' AND event = 'drop'"; }
L() { W log --table "$1" --format csv 2>/dev/null | tail -n +2 | cut -d, -f1 | tr '\n' ' '; }
expect_eq "log --table mid: its creation and change revisions and its drop" "$(L mid)" \
  "$(drop_rev mid) $(rev_at "$P_MID") $(q $DB "$H SELECT revision_id FROM table_event WHERE relname = 'mid' AND event = 'create'") "
expect_eq "log --table k (there at setup, never altered): its baseline and its drop" "$(L k)" "$(drop_rev k) 1 "
expect_eq "log --table pp2: its drop too" "$(L pp2)" "$(drop_rev pp2) 1 "
expect_eq "log --table pp: the partition's drop and the detach" "$(L pp)" \
  "$(drop_rev pp2) 1 "
expect_eq "log --table t --key: the object's own changes only" \
  "$(W log --table t --key '["1"]' --format csv 2>/dev/null | tail -n +2 | cut -d, -f1 | tr '\n' ' ')" "$(drop_rev t) 1 "

# revert of a revision that dropped tables: the drops cannot be undone by
# row changes, and reverting the rest silently left the tables gone (and
# deleted walrev's own table-log rows from the source)
krev=$(drop_rev k)
out=$(W revert "$krev" 2>&1) && fail "revert of the revision that dropped k answered: $out"
grep -q "revision $krev dropped table public.k (and others): revert cannot create a dropped table again" <<<"$out" ||
  fail "revert names the dropped table: $out"
out=$(W revert "$krev" --force 2>&1) || fail "revert --force: $out"
grep -q "not reverted: the drop of table public.gone1 in revision $krev" <<<"$out" || fail "--force names each drop: $out"
grep -q 'table_log' <<<"$out" && fail "revert plans to change walrev's table log: $out"
expect_eq "revert --force plans no change (the revision holds only drops and the table log's rows)" \
  "$(grep -c -E '^(INSERT|UPDATE|DELETE)' <<<"$out")" 0
pass "diff, log and revert across drops"
