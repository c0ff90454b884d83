#!/usr/bin/env bash
# Schema evolution without a restart: RENAME COLUMN keeps the column's
# identity (via the DDL event trigger), DROP+ADD of the same name does not,
# ADD/DROP/ALTER TYPE/RENAME TABLE/REPLICA IDENTITY make new relation
# versions, a table created later is tracked, DDL and DML share or split
# transactions; snapshots before a drop still show the dropped column.
source "$(dirname "$0")/lib.sh"
source_db schema_evo evo

q $DB "CREATE TABLE t (id int PRIMARY KEY, a text, b int, c text);
       INSERT INTO t VALUES (1, 'one', 10, 'gone-1'), (2, 'two', 20, 'gone-2');"
w_setup
grep -q "DDL capture event trigger" "$TEST_TMP/setup.out" || { cat "$TEST_TMP/setup.out"; fail "no DDL trigger"; }

q $DB "BEGIN; ALTER TABLE t RENAME COLUMN a TO a2; UPDATE t SET a2 = 'uno' WHERE id = 1; COMMIT;"   # r2: DDL + DML together
q $DB "ALTER TABLE t ADD COLUMN d int"
q $DB "UPDATE t SET d = 4 WHERE id = 2"
q $DB "ALTER TABLE t DROP COLUMN c"
q $DB "UPDATE t SET b = 11 WHERE id = 1"
q $DB "ALTER TABLE t ALTER COLUMN b TYPE bigint"
q $DB "UPDATE t SET b = 12000000000 WHERE id = 1"
q $DB "ALTER TABLE t RENAME TO t2"
q $DB "INSERT INTO t2 (id, a2, b) VALUES (3, 'three', 30)"
q $DB "ALTER TABLE t2 DROP COLUMN d; ALTER TABLE t2 ADD COLUMN d text"
q $DB "UPDATE t2 SET d = 'new d' WHERE id = 3"
q $DB "ALTER TABLE t2 REPLICA IDENTITY FULL"
q $DB "DELETE FROM t2 WHERE id = 2"
q $DB "CREATE TABLE later (k text PRIMARY KEY, v text)"
q $DB "INSERT INTO later VALUES ('x', 'y')"
run_to_now "$TEST_TMP/run.log" --source "$SRC" --slot evo
pass "worker followed every DDL without a restart"

T="(SELECT 'public.t2'::regclass::oid)"
# The worker starts after all of it, so the walsender sends r2's update with
# the shape of its own transaction (a renamed to a2: version 2, read back from
# the store at start as version 1 is); its column identity is exact (col_id 2
# is a, later a2).
expect_eq "relation versions: names and stable column ids" \
  "$(q $DB "$H SELECT version, relname, replident, col_ids::text, col_names::text, col_type_oids::text FROM relation_version WHERE relid = $T ORDER BY version")" \
"1|t|d|{1,2,3,4}|{id,a,b,c}|{23,25,23,25}
2|t|d|{1,2,3,4}|{id,a2,b,c}|{23,25,23,25}
3|t|d|{1,2,3,4,5}|{id,a2,b,c,d}|{23,25,23,25,23}
4|t|d|{1,2,3,5}|{id,a2,b,d}|{23,25,23,23}
5|t|d|{1,2,3,5}|{id,a2,b,d}|{23,25,20,23}
6|t2|d|{1,2,3,5}|{id,a2,b,d}|{23,25,20,23}
7|t2|d|{1,2,3}|{id,a2,b}|{23,25,20}
8|t2|d|{1,2,3,6}|{id,a2,b,d}|{23,25,20,25}
9|t2|f|{1,2,3,6}|{id,a2,b,d}|{23,25,20,25}"

# A column added after a row was last seen has an unknown old value (its
# default is not in the WAL): recorded once, flagged, then exact. Each
# ALTER TABLE on its own is a revision too (its row in the table log), so
# the changes are in revisions 2, 4, 6, ...
expect_eq "changes in order, each under the version of its time" \
  "$(q $DB "$H SELECT revision_id, relversion, op, key, col_ids::text, old_values::text, new_values::text, coalesce(attr_flags::text, '') FROM object_delta_arrays WHERE relid = $T AND revision_id > 1 ORDER BY revision_id, seq")" \
'2|2|U|["1"]|{2}|{one}|{uno}|
4|3|U|["2"]|{5}||{4}|{2}
6|4|U|["1"]|{3,5}|{10,NULL}|{11,NULL}|{0,2}
8|5|U|["1"]|{3}|{11}|{12000000000}|
10|6|I|["3"]|{1,2,3,5}||{3,three,30,NULL}|
12|8|U|["3"]|{6}||{"new d"}|{2}
14|9|D|["2"]|{1,2,3,6}|{2,two,20,NULL}||'
expect_eq "every ALTER TABLE of t is in the table log at its commit" \
  "$(q $DB "$H SELECT event, relname, revision_id FROM table_event WHERE relid = $T ORDER BY revision_id, seq")" \
'alter|t|2
alter|t|3
alter|t|5
alter|t|7
alter|t2|9
alter|t2|11
alter|t2|11'

expect_eq "the renamed column keeps its whole history (blame on a2)" \
  "$(W blame --table t2 --key 1 --format csv 2>/dev/null | grep -E '^(column|a2),' | cut -d, -f1-3)" \
"column,value,revision
a2,uno,2"

expect_eq "a snapshot before the drop still shows the dropped column c" \
  "$(W snapshot --at 1 --table t2 --format csv 2>/dev/null | sort)" \
"1,one,10,gone-1
2,two,20,gone-2
id,a,b,c"

expect_eq "a snapshot at the end has the columns of the end" \
  "$(W snapshot --table t2 --format csv 2>/dev/null | sort)" \
"1,uno,12000000000,
3,three,30,new d
id,a2,b,d"

expect_eq "a table created after setup is tracked" \
  "$(q $DB "$H SELECT op, key, new_values::text FROM object_delta_arrays WHERE relid = 'public.later'::regclass")" 'I|["x"]|{x,y}'
"$WALREV_BIN" --source "$SRC" --slot evo verify >/dev/null 2>&1 || fail verify
pass "verify passes"
