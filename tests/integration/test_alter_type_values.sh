#!/usr/bin/env bash
# ALTER TYPE changing the values of tracked columns without a row change
# (issue 13, found by external.py on PostgreSQL's enum.sql and
# alter_table.sql): ALTER TYPE ... RENAME VALUE changes the text of every
# value with that label (columns of the enum, of its array, of a domain over
# it), and ALTER TYPE ... DROP ATTRIBUTE ... CASCADE drops a column of the
# typed tables made OF the type; the WAL says neither, and snapshots kept the
# old text and the dropped column. The DDL capture now hears ALTER TYPE and
# sends the rows of those tables (rewrite_row), and the table log logs the
# typed tables: exact at the DDL and after it.
source "$(dirname "$0")/lib.sh"
source_db alter_type_values altertype

q $DB "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
       CREATE DOMAIN dmood AS mood;
       CREATE TABLE e (id int PRIMARY KEY, m mood, ms mood[], dm dmood);
       INSERT INTO e VALUES (1, 'sad', '{sad,ok}', 'sad'), (2, 'ok', '{}', 'happy');
       CREATE TABLE ek (m mood, n int); ALTER TABLE ek REPLICA IDENTITY FULL;
       INSERT INTO ek VALUES ('sad', 1), ('sad', 1), ('happy', 2);
       CREATE TYPE pt AS (x int, y text, z int);
       CREATE TABLE tt OF pt (PRIMARY KEY (x));
       INSERT INTO tt VALUES (1, 'a', 10), (2, 'b', 20);
       CREATE TYPE pc AS (x int, y text, z int);
       CREATE TABLE cu (id int PRIMARY KEY, c pc);
       INSERT INTO cu VALUES (1, '(1,a,3)'), (2, NULL), (3, '(,,)')"
w_setup

NP=0
LSN=()
TABLES="e ek tt cu"
point                                                                             # 0
q $DB "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'"; point                        # 1: labels renamed
q $DB "ALTER TYPE pt DROP ATTRIBUTE z CASCADE"; point                              # 2: a typed table's column dropped
q $DB "UPDATE e SET id = 3 WHERE id = 2; INSERT INTO ek VALUES ('blue', 3);
       UPDATE tt SET y = 'b2' WHERE x = 2"; point                                  # 3: changes after
# a composite's own commands name its relation, not its type (found by
# tests/difftest's comp_add, seed 1, as by external.py: test_composite_values):
# a typed table's column added by ADD ATTRIBUTE ... CASCADE, and the values
# of a column of the type through DROP and ADD ATTRIBUTE
q $DB "ALTER TYPE pt ADD ATTRIBUTE w int CASCADE"; point                          # 4: a typed table's column added
q $DB "ALTER TYPE pc DROP ATTRIBUTE z"; point                                      # 5: a column's values lose a field
q $DB "ALTER TYPE pc ADD ATTRIBUTE w int"; point                                   # 6: ... and gain an empty one
q $DB "UPDATE cu SET id = 4 WHERE id = 3; INSERT INTO tt VALUES (3, 'c', 30)"; point  # 7: changes after
run_to_now "$TEST_TMP/run.log" --source "$SRC" --slot altertype

expect_points_equal 32
expect_eq "e after RENAME VALUE: every column of the enum" \
  "$(snapshot_sorted 1 e)" \
"1	blue	{blue,ok}	blue
2	ok	{}	happy"
expect_eq "tt after DROP ATTRIBUTE CASCADE" \
  "$(snapshot_sorted 2 tt)" \
"1	a
2	b"
expect_eq "history of e's row 1: the relabelling recorded as an update" \
  "$(W history --table e --key 1 --format csv 2>/dev/null |
     python3 -c 'import csv, sys; [print("|".join([r[2]] + r[6:9])) for r in csv.reader(sys.stdin)]')" \
'op|column|old_value|new_value
S|id||1
S|m||sad
S|ms||{sad,ok}
S|dm||sad
U|m|sad|blue
U|ms|{sad,ok}|{blue,ok}
U|dm|sad|blue'
expect_eq "tt after ADD ATTRIBUTE CASCADE: its new column, NULL" \
  "$(snapshot_sorted 4 tt)" \
"1	a	\\N
2	b2	\\N"
expect_eq "cu after DROP ATTRIBUTE: the field gone from every value" \
  "$(snapshot_sorted 5 cu)" \
"1	(1,a)
2	\\N
3	(,)"
expect_eq "cu after ADD ATTRIBUTE: an empty field in every value" \
  "$(snapshot_sorted 6 cu)" \
"1	(1,a,)
2	\\N
3	(,,)"
expect_verify "verify passes"
