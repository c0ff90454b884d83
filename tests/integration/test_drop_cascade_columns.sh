#!/usr/bin/env bash
# Columns dropped by DROP ... CASCADE of something else (issue 13): DROP
# DOMAIN, DROP TYPE (a composite, an enum), DROP FUNCTION (a generated
# column's), DROP COLLATION, and DROP TABLE of a table used as a row type
# drop columns of tables that remain, and no ALTER TABLE names them. A table
# not written after such a drop takes its columns from the table log until
# its next row change, so the drop must be in the table log (the sql_drop
# trigger walrev_log_drops logs each such table), or its snapshot keeps the
# dropped column. Tables made before setup (first logged at the drop) and
# after (logged since their creation) alike; `walrev snapshot` equals the
# table at every point.
source "$(dirname "$0")/lib.sh"
source_db drop_cascade_columns dropcascade

make_tables() { # SUFFIX: one table per kind of drop
  q $DB "CREATE TABLE td$1 (id int PRIMARY KEY, a dm$1, b int);
         CREATE TABLE tt$1 (id int PRIMARY KEY, c ct$1, e en$1, k int);
         CREATE TABLE tf$1 (id int PRIMARY KEY, v int, g int GENERATED ALWAYS AS (fn$1(v)) STORED);
         CREATE TABLE tc$1 (id int PRIMARY KEY, s text COLLATE co$1, u text);
         CREATE TABLE tr$1 (id int PRIMARY KEY, r rs$1, z int);
         INSERT INTO td$1 VALUES (1, 5, 10), (2, NULL, 20);
         INSERT INTO tt$1 VALUES (1, ROW(1, 'x'), 'b', 7);
         INSERT INTO tf$1 (id, v) VALUES (1, 3), (2, 4);
         INSERT INTO tc$1 VALUES (1, 's', 'u');
         INSERT INTO tr$1 VALUES (1, ROW(9), 90)"
}
make_types() { # SUFFIX
  q $DB "CREATE DOMAIN dm$1 AS int CHECK (VALUE > 0);
         CREATE TYPE ct$1 AS (x int, y text); CREATE TYPE en$1 AS ENUM ('a', 'b');
         CREATE FUNCTION fn$1(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT \$1 * 10';
         CREATE COLLATION co$1 FROM \"C\";
         CREATE TABLE rs$1 (q int)"
}
drop_types() { # SUFFIX
  q $DB "DROP DOMAIN dm$1 CASCADE"
  q $DB "DROP TYPE ct$1, en$1 CASCADE"
  q $DB "DROP FUNCTION fn$1(int) CASCADE"
  q $DB "DROP COLLATION co$1 CASCADE"
  q $DB "DROP TABLE rs$1 CASCADE"
}
make_types 0
make_tables 0
# a partitioned table and an INHERITS parent take their columns from the table log
q $DB "CREATE TABLE pd (id int PRIMARY KEY, a dm0, b int) PARTITION BY RANGE (id);
       CREATE TABLE pd1 PARTITION OF pd FOR VALUES FROM (0) TO (100);
       CREATE TABLE ih (id int PRIMARY KEY, a dm0, b int); CREATE TABLE ihc () INHERITS (ih);
       INSERT INTO pd VALUES (1, 1, 10); INSERT INTO ih VALUES (1, 1, 10); INSERT INTO ihc VALUES (2, 2, 20)"
w_setup
make_types 1
make_tables 1

NP=0
LSN=()
# tf0/tf1 before the drop are left out: a snapshot computes a generated
# column by its expression on the history server, where fn0 is gone by then
TABLES="td0 tt0 tc0 tr0 td1 tt1 tc1 tr1 pd pd1 ih ihc"
point                                           # 0: before the drops
drop_types 0
drop_types 1
TABLES="$TABLES tf0 tf1"
point                                           # 1: after them, no row written since
q $DB "INSERT INTO td0 VALUES (3, 30); INSERT INTO tt1 VALUES (2, 8)"
point                                           # 2: two of them written again
run_to_now "$LOG" --source "$SRC" --slot dropcascade

expect_points_equal 40
expect_eq "the table log has each drop (tables made before setup are first logged there)" \
  "$(q $DB "SELECT relname, event, (SELECT string_agg(c->>1, ',') FROM jsonb_array_elements(columns) c)
            FROM walrev.table_log WHERE relname ~ '^t[dtfcr]0$' ORDER BY id")" \
"td0|alter|id,b
tt0|alter|id,k
tf0|alter|id,v
tc0|alter|id,u
tr0|alter|id,z"
expect_eq "the partitioned table after the drop: its columns then" \
  "$(W snapshot --at "${LSN[1]}" --table pd --format csv 2>/dev/null)" \
"id,b
1,10"
expect_eq "td0 after the drop, never written: its columns then" \
  "$(W snapshot --at "${LSN[1]}" --table td0 --format csv --order key 2>/dev/null)" \
"id,b
1,10
2,20"
expect_eq "tf1 after DROP FUNCTION ... CASCADE: the generated column is gone" \
  "$(W snapshot --at "${LSN[1]}" --table tf1 --format csv --order key 2>/dev/null)" \
"id,v
1,3
2,4"
W verify >/dev/null 2>&1 || fail verify
pass "verify passes"
