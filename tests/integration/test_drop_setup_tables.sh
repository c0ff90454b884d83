#!/usr/bin/env bash
# Tables there at `walrev setup` and never altered, then dropped (issue 13;
# README's Limits named it a known wrong answer): the table log never knew
# them (setup seeds only partition trees, INHERITS trees and unlogged
# tables), table_event left their drops out, and `snapshot --at P --table T`
# at a point after the drop answered with their last rows. A dropped table
# now answers as every dropped table does, whenever it was created and
# whatever rows it had: `table T did not exist at revision R: it was dropped
# in revision N`; before its drop, its rows; its history and log stay. Kinds:
# keyed, keyless, never written, dropped in one transaction with other
# changes, dropped while the worker was stopped (restart), a partitioned
# parent with partitions there at setup, and one created after setup.
source "$(dirname "$0")/lib.sh"
source_db drop_setup_tables drop_setup_tables

q $DB "CREATE TABLE keep (id int PRIMARY KEY, v text); INSERT INTO keep VALUES (1, 'k1');
       CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 't1'), (2, 't2');
       CREATE TABLE k (a int, b text); INSERT INTO k VALUES (1, 'x'), (1, 'x'), (2, 'y');
       CREATE TABLE e (id int PRIMARY KEY);
       CREATE TABLE tx (id int PRIMARY KEY, v text); INSERT INTO tx VALUES (1, 'a'), (2, 'b');
       CREATE TABLE r (id int PRIMARY KEY, v text); INSERT INTO r VALUES (7, 'r7');
       CREATE TABLE pp (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
       CREATE TABLE pp1 PARTITION OF pp FOR VALUES FROM (0) TO (10);
       CREATE TABLE pp2 PARTITION OF pp FOR VALUES FROM (10) TO (20);
       INSERT INTO pp VALUES (1, 'p1'), (11, 'p11')"
w_setup
q $DB "CREATE TABLE n (id int PRIMARY KEY, v text); INSERT INTO n VALUES (1, 'n1')"

# the drops; before each, a point where the table is there
q_at BEFORE "UPDATE t SET v = 't1b' WHERE id = 1"
q_at DROP1 "DROP TABLE t"
q_at DROP2 "DROP TABLE k; DROP TABLE e; DROP TABLE n"
q_at BEFORE_TX "INSERT INTO keep VALUES (2, 'k2')"
q_at DROP_TX "BEGIN; UPDATE tx SET v = 'a2' WHERE id = 1; INSERT INTO keep VALUES (3, 'k3'); DELETE FROM tx WHERE id = 2;
              DROP TABLE tx; INSERT INTO keep VALUES (4, 'k4'); COMMIT"
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
# while the worker is stopped: r and the partitioned table go
q_at BEFORE_STOPPED "UPDATE r SET v = 'r7b' WHERE id = 7"
q_at DROP_STOPPED "DROP TABLE r; DROP TABLE pp"
q_at AFTER "INSERT INTO keep VALUES (5, 'k5')"
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"

rev_at() { W snapshot --at "$1" --table keep 2>&1 >/dev/null | sed -n 's/^resolved .* to revision \([0-9]*\) .*/\1/p'; }
snap() { W snapshot --at "$1" --table "$2" 2>&1 | grep -v '^resolved ' | LC_ALL=C sort; }
# expect_dropped TABLE POINT DROP_POINT: the snapshot at POINT fails, naming the revision of DROP_POINT
expect_dropped() {
  local out rc=0
  out=$(W snapshot --at "$2" --table "$1" 2>&1) || rc=$?
  expect_eq "$1 at a point after its drop: an error" "$rc" 1
  expect_eq "$1 at a point after its drop: named dropped" "$(echo "$out" | grep -v '^resolved ')" \
    "walrev snapshot: error: table $1 did not exist at revision $(rev_at "$2"): it was dropped in revision $(rev_at "$3")"
}

expect_eq "t before its drop" "$(snap "$BEFORE" t)" "$(printf '1\tt1b\n2\tt2')"
expect_dropped t "$DROP1" "$DROP1"
expect_dropped t "$AFTER" "$DROP1"
expect_dropped t "$DROP2" "$DROP1"
expect_eq "k (keyless) before its drop: its three rows" "$(snap "$DROP1" k)" "$(printf '1\tx\n1\tx\n2\ty')"
expect_dropped k "$DROP2" "$DROP2"
expect_eq "e (never written) before its drop: empty, and no error" "$(W snapshot --at "$DROP1" --table e 2>/dev/null)" ""
expect_dropped e "$AFTER" "$DROP2"
expect_eq "n (created after setup) before its drop" "$(snap "$DROP1" n)" "$(printf '1\tn1')"
expect_dropped n "$DROP2" "$DROP2"
expect_eq "tx before the transaction that changed and dropped it" "$(snap "$BEFORE_TX" tx)" "$(printf '1\ta\n2\tb')"
expect_dropped tx "$DROP_TX" "$DROP_TX"
expect_eq "the same transaction's other changes are there" "$(snap "$DROP_TX" keep)" \
  "$(printf '1\tk1\n2\tk2\n3\tk3\n4\tk4')"
expect_eq "r before its drop (while the worker was stopped)" "$(snap "$BEFORE_STOPPED" r)" "$(printf '7\tr7b')"
expect_dropped r "$DROP_STOPPED" "$DROP_STOPPED"
expect_eq "pp (partitioned, there at setup) before its drop" "$(snap "$BEFORE_STOPPED" pp)" "$(printf '1\tp1\n11\tp11')"
expect_eq "pp1 (its partition) before its drop" "$(snap "$BEFORE_STOPPED" pp1)" "$(printf '1\tp1')"
for tb in pp pp1 pp2; do expect_dropped "$tb" "$AFTER" "$DROP_STOPPED"; done

# a snapshot of every table after the drops holds only what was there then
mkdir "$TMP/all"
W snapshot --at "$AFTER" --output-dir "$TMP/all" >/dev/null 2>&1 || fail "snapshot --output-dir"
expect_eq "snapshot --output-dir after the drops: only keep" "$(ls "$TMP/all")" "public.keep.copy"
expect_eq "... with its rows" "$(LC_ALL=C sort "$TMP/all/public.keep.copy")" "$(printf '1\tk1\n2\tk2\n3\tk3\n4\tk4\n5\tk5')"

# the history of a dropped table stays: history and log name its changes
expect_eq "history --table t --key 1 after its drop: baseline, then the update" \
  "$(W history --table t --key 1 --format csv 2>/dev/null | cut -d, -f3,7,8,9 | tail -n +2)" \
  "S,id,,1
S,v,,t1
U,v,t1,t1b"
expect_eq "blame --table t --key 1 after its drop: each column's last change" \
  "$(W blame --table t --key 1 --format csv 2>/dev/null | cut -d, -f1,2,4 | tail -n +2)" "id,1,S
v,t1b,U"
# blame at a point: the row as it was then, and no answer after the drop
expect_eq "blame --table t --key 1 --at a point before its drop" \
  "$(W blame --table t --key 1 --at "$BEFORE" --format csv 2>/dev/null | cut -d, -f1,2,4 | tail -n +2)" "id,1,S
v,t1b,U"
rc=0
out=$(W blame --table t --key 1 --at "$AFTER" 2>&1) || rc=$?
expect_eq "blame --at a point after t's drop: an error" "$rc" 1
expect_eq "... naming the drop" "$(echo "$out" | grep -v '^resolved ')" \
  "walrev blame: error: table t did not exist at revision $(rev_at "$AFTER"): it was dropped in revision $(rev_at "$DROP1")"
expect_eq "log --table tx after its drop: the baseline, and the revision that changed and dropped it (3 inserts: keep's two and the table log's drop)" \
  "$(W log --table tx --format csv 2>/dev/null | tail -n +2 | cut -d, -f1,6,7,8 | LC_ALL=C sort -n)" \
  "1,0,0,0
$(rev_at "$DROP_TX"),3,1,1"
expect_verify "verify passes"
pass "tables there at setup and never altered answer as dropped after their drop"
