#!/usr/bin/env bash
# A composite type's shape changed under tracked columns (issue 13, found by
# external.py on PostgreSQL's alter_table.sql): ALTER TYPE ... ADD or DROP
# ATTRIBUTE, and ALTER TABLE ... ADD or DROP COLUMN of a table whose row type
# is another table's column type, change the text of every value of that type
# ('(1)' reads '()' after DROP ATTRIBUTE a, ADD ATTRIBUTE b) and of every type
# built on it (its array, a domain over it, a composite holding it, at any
# depth), with no row change in the WAL. The DDL capture named a composite
# type's tables only when PostgreSQL reported the ALTER as a pg_type command
# (it reports a composite's as its pg_class row) and only one level deep, so
# snapshots kept the old text. Now every table with a column of an altered
# type or of one built on it sends its rows (rewrite_row): exact at the DDL
# and after it, keyed and keyless alike.
source "$(dirname "$0")/lib.sh"
source_db composite_values compvals

q $DB "CREATE TYPE inner_t AS (x int, y text);
       CREATE TYPE outer_t AS (i inner_t, z int);
       CREATE DOMAIN inner_d AS inner_t;
       CREATE TYPE mood AS ENUM ('sad', 'ok');
       CREATE TYPE moody AS (m mood, n int);
       CREATE TABLE k (id int PRIMARY KEY, v inner_t, o outer_t, va inner_t[], d inner_d, m moody);
       INSERT INTO k VALUES (1, '(1,a)', '(\"(2,b)\",3)', '{\"(4,c)\"}', '(5,e)', '(sad,1)'),
                            (2, NULL, '(,7)', '{}', NULL, '(ok,2)');
       CREATE TABLE nokey (v inner_t, n int);
       INSERT INTO nokey VALUES ('(1,a)', 1), ('(1,a)', 1), ('(2,b)', 2);
       CREATE TABLE fullname (first text, last text);
       CREATE TABLE people (id int PRIMARY KEY, fn fullname, fns fullname[]);
       INSERT INTO people VALUES (1, '(Joe,Blow)', '{\"(A,B)\"}'), (2, NULL, NULL);
       CREATE TABLE untouched (id int PRIMARY KEY, t text); INSERT INTO untouched VALUES (1, 'x')"
w_setup

NP=0
LSN=()
TABLES="k nokey people untouched"
point                                                                       # 0
q $DB "ALTER TYPE inner_t ADD ATTRIBUTE w int"; point                        # 1: a field added
q $DB "ALTER TYPE inner_t DROP ATTRIBUTE x, ADD ATTRIBUTE u bool"; point     # 2: dropped and added at once
q $DB "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'"; point                  # 3: an enum inside a composite
q $DB "ALTER TABLE fullname ADD COLUMN suffix text"; point                   # 4: a row type grows
q $DB "ALTER TABLE fullname DROP COLUMN first"; point                        # 5: and shrinks
q $DB "ALTER TYPE inner_t RENAME ATTRIBUTE y TO yy;
       UPDATE k SET v = '(q,,t)' WHERE id = 2; INSERT INTO nokey VALUES ('(r,5,f)', 3);
       UPDATE people SET fn = '(Smith,Jr)' WHERE id = 2"; point              # 6: changes after
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"

expect_points_equal 28
expect_eq "k after DROP ATTRIBUTE x, ADD ATTRIBUTE u: every column built on inner_t" \
  "$(snapshot_sorted 2 k)" \
'1	(a,,)	("(b,,)",3)	{"(c,,)"}	(e,,)	(sad,1)
2	\N	(,7)	{}	\N	(ok,2)'
expect_eq "people after ADD COLUMN suffix and DROP COLUMN first of its row type" \
  "$(snapshot_sorted 5 people)" \
'1	(Blow,)	{"(B,)"}
2	\N	\N'
expect_eq "history of k's row 1: the DROP/ADD ATTRIBUTE recorded as an update of the changed columns" \
  "$(W history --table k --key 1 --format csv 2>/dev/null |
     python3 -c 'import csv, sys; [print("|".join([r[2]] + r[6:9])) for r in csv.reader(sys.stdin)]' | grep -v '^S|')" \
'op|column|old_value|new_value
U|v|(1,a)|(1,a,)
U|o|("(2,b)",3)|("(2,b,)",3)
U|va|{"(4,c)"}|{"(4,c,)"}
U|d|(5,e)|(5,e,)
U|v|(1,a,)|(a,,)
U|o|("(2,b,)",3)|("(b,,)",3)
U|va|{"(4,c,)"}|{"(c,,)"}
U|d|(5,e,)|(e,,)
U|m|(sad,1)|(blue,1)'
expect_eq "untouched (no column built on an altered type): nothing recorded after its baseline" \
  "$(W history --table untouched --key 1 --format csv 2>/dev/null |
     python3 -c 'import csv, sys; [print("|".join([r[2]] + r[6:9])) for r in csv.reader(sys.stdin)]')" \
'op|column|old_value|new_value
S|id||1
S|t||x'
must "$TMP/verify.out" verify W verify
pass "verify passes"
