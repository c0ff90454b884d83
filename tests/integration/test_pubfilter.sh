#!/usr/bin/env bash
# A publication that sends only part of a table (issue 13): a row filter
# (FOR TABLE t WHERE …), a column list (FOR TABLE t (a, b)) or a publish
# option without every action (publish = 'insert, update') makes logical
# decoding see only part of the table's changes, so a history built from
# them answers rows the table does not have. walrev setup refuses such a
# publication by name; one altered so later (ALTER PUBLICATION … SET TABLE
# t WHERE …, SET (publish = …)) logs the table 'unpublished' in the ALTER's
# transaction, and every reader refuses it by name from there; altered back,
# the table rejoins with its rows then (a truncate and its rows), so its
# history is exact again.
source "$(dirname "$0")/lib.sh"
userpub_source pubfilter

q $DB "CREATE TABLE base (id int PRIMARY KEY, v text); INSERT INTO base VALUES (1, 'b1');
       CREATE TABLE t (id int PRIMARY KEY, v text, w int); INSERT INTO t SELECT g, 'v' || g, g FROM generate_series(1, 6) g;
       CREATE TABLE c (id int PRIMARY KEY, v text, w int); INSERT INTO c VALUES (1, 'c1', 1);
       CREATE PUBLICATION userpub FOR TABLE base, t WHERE (id < 4), c (id, v) WITH (publish = 'insert, update, delete')"
rc=0
W setup >"$TMP/setup1.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || { cat "$TMP/setup1.out"; fail "setup of a publication with a row filter, a column list and no truncate refuses"; }
for want in "public.t is published with a row filter" "public.c is published with a column list" \
            "publication userpub does not publish truncate"; do
  grep -q "$want" "$TMP/setup1.out" || { cat "$TMP/setup1.out"; fail "setup names: $want"; }
done
pass "setup refuses a publication that sends part of a table, naming each part"

q $DB "ALTER PUBLICATION userpub SET TABLE base, t, c; ALTER PUBLICATION userpub SET (publish = 'insert, update, delete, truncate')"
w_setup
NP=0
LSN=()
TABLES="base t c"
q $DB "UPDATE t SET v = 't2' WHERE id = 1"
point # 0
q $DB "ALTER PUBLICATION userpub SET TABLE base, t WHERE (id < 4), c (id, v)"
point # 1: t filtered, c by a column list
expect_eq "with a row filter and a column list, published_now asks each table whether it is published in part" \
  "$(published_now_asks)" "base|false|true"
q $DB "UPDATE t SET id = 10 WHERE id = 2; UPDATE t SET v = 'out' WHERE id = 5; DELETE FROM t WHERE id = 6;
       UPDATE c SET w = 99 WHERE id = 1"
point # 2: changed while partly published
q $DB "BEGIN; ALTER PUBLICATION userpub SET TABLE base, t, c; UPDATE t SET v = 'back' WHERE id = 1; COMMIT"
point # 3: whole again (the rejoin in the transaction of a change)
q $DB "ALTER PUBLICATION userpub SET (publish = 'insert, update')"
point # 4: no deletes: every table out
expect_eq "without deletes, published_now names no table and asks none" "$(published_now_asks)" "|false|false"
q $DB "DELETE FROM t WHERE id = 3; DELETE FROM base WHERE id = 1; INSERT INTO base VALUES (2, 'b2')"
point # 5
q $DB "ALTER PUBLICATION userpub SET (publish = 'insert, update, delete, truncate'); UPDATE c SET v = 'c2'"
point # 6: every action again
run_to "$(current_lsn "$DB")" "$LOG" -c "$TEST_TMP/walrev.conf"

for ((i = 0; i < NP; i++)); do
  for tb in $TABLES; do
    case "$tb:$i" in
      t:[12] | c:[12] | [a-z]*:[45])
        expect_unpublished "$tb" "$i" ;;
    esac
  done
done
expect_points_equal 11
pass "every point while partly published refused by name, every other equal"
expect_verify "verify passes"
