#!/usr/bin/env bash
# ALTER TABLE ... ALTER COLUMN ... DROP EXPRESSION (issue 13.3, found by
# external.py on PostgreSQL's generated_stored.sql): a STORED generated
# column becomes an ordinary column that keeps the values it had. pgoutput
# never sent them (it leaves generated columns out), so snapshots showed the
# column NULL in every row not written since. The DDL capture now sends the
# rows (rewrite_row) and the worker records each value: exact at the DDL
# and after it, for a keyed table, a keyless one, and an INHERITS parent
# whose DROP EXPRESSION reaches its child.
source "$(dirname "$0")/lib.sh"
source_db drop_expression dropexpr

q $DB "CREATE TABLE g (id int PRIMARY KEY, a int, b int GENERATED ALWAYS AS (a * 2) STORED);
       INSERT INTO g (id, a) VALUES (1, 1), (2, 5);
       CREATE TABLE gk (a int, b text GENERATED ALWAYS AS ('k' || a) STORED);
       ALTER TABLE gk REPLICA IDENTITY FULL;
       INSERT INTO gk (a) VALUES (7), (7), (8);
       CREATE TABLE gp (id int PRIMARY KEY, a int, b int GENERATED ALWAYS AS (a * 3) STORED);
       CREATE TABLE gc (PRIMARY KEY (id)) INHERITS (gp);
       INSERT INTO gp (id, a) VALUES (1, 1); INSERT INTO gc (id, a) VALUES (2, 2)"
w_setup
q $DB "INSERT INTO g (id, a) VALUES (3, 4); INSERT INTO gc (id, a) VALUES (3, 3)"

NP=0
LSN=()
TABLES="g gk gp gc"
point                                                                                     # 0
q $DB "ALTER TABLE g ALTER COLUMN b DROP EXPRESSION;
       ALTER TABLE gk ALTER COLUMN b DROP EXPRESSION;
       ALTER TABLE gp ALTER COLUMN b DROP EXPRESSION"; point                               # 1: the DDL alone
q $DB "UPDATE g SET a = 10 WHERE id = 1; INSERT INTO g VALUES (4, 4, 99);
       UPDATE gk SET a = 9 WHERE a = 8; INSERT INTO gk VALUES (1, 'own');
       UPDATE gp SET a = a + 100; INSERT INTO gc VALUES (5, 5, 55)"; point                 # 2: values kept, no longer computed
run_to_now "$TEST_TMP/run.log" --source "$SRC" --slot dropexpr

expect_points_equal 12
expect_eq "g after DROP EXPRESSION and an update of a: b kept its value" \
  "$(snapshot_sorted 2 g)" \
"1	10	2
2	5	10
3	4	8
4	4	99"
expect_eq "gc (the child) kept its values too" \
  "$(snapshot_sorted 2 gc)" \
"2	102	6
3	103	9
5	5	55"
expect_eq "history of g's row 2: b recorded at the DDL" \
  "$(W history --table g --key 2 --format csv 2>/dev/null | cut -d, -f3,7-9)" \
"op,column,old_value,new_value
S,id,,2
S,a,,5
U,b,,10"
expect_verify "verify passes"
