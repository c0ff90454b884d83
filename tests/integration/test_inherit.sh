#!/usr/bin/env bash
# INHERITS parents (issue 13, found by external.py on PostgreSQL's
# inherit.sql): SELECT * FROM a parent shows its own rows and those of every
# table below it (any depth, the children's own columns left out, columns
# matched by name), following ALTER TABLE ... INHERIT and NO INHERIT and
# DROP of a child. `walrev snapshot --table PARENT` must equal it at every
# point (COPY ... TO STDOUT); the table log records inheritance; history,
# log and diff of a parent answer for its children's rows too; a restore
# (--format sql) writes each table's own rows, as pg_dump does; an unlogged
# child makes the parent's snapshot an error naming it.
source "$(dirname "$0")/lib.sh"
source_db inherit inh

q $DB "CREATE TABLE ip (id int PRIMARY KEY, v text);
       CREATE TABLE ic (extra int, PRIMARY KEY (id)) INHERITS (ip);
       CREATE TABLE igc (g text, PRIMARY KEY (id)) INHERITS (ic);
       INSERT INTO ip VALUES (1, 'p1');
       INSERT INTO ic VALUES (2, 'c2', 20);
       INSERT INTO igc VALUES (3, 'g3', 30, 'x');"
w_setup
expect_eq "setup logs the inheritance that exists (seed)" \
  "$(q $DB "SELECT relname, event, coalesce(inherits::regclass[]::text, '-')
            FROM walrev.table_log WHERE relname IN ('ip', 'ic', 'igc') ORDER BY id")" \
"ip|seed|-
ic|seed|{ip}
igc|seed|{ic}"

NP=0
LSN=()
TABLES="ip ic solo"
point                                                                                # 0: baseline
q $DB "INSERT INTO ic VALUES (4, 'c4', 40);
       UPDATE ip SET v = v || '!' WHERE id IN (1, 2, 3)"; point                      # 1: through the parent
q $DB "CREATE TABLE solo (v text, z int, id int NOT NULL PRIMARY KEY);
       INSERT INTO solo VALUES ('s5', 50, 5)"; point                                 # 2: not a child yet
q $DB "ALTER TABLE solo INHERIT ip"; point                                           # 3: INHERIT, other column order
q $DB "ALTER TABLE ic NO INHERIT ip"; point                                          # 4: a sub-tree leaves
q $DB "DELETE FROM ip WHERE id = 1; INSERT INTO ip VALUES (6, 'p6');
       ALTER TABLE ip ADD COLUMN w int; UPDATE ip SET w = id * 10"; point             # 5: a column reaches solo only
q $DB "ALTER TABLE ic ADD COLUMN w int; ALTER TABLE ic INHERIT ip"; point          # 6: ic back, w NULL in its rows
q $DB "DROP TABLE igc; UPDATE ic SET v = 'c2?' WHERE id = 2"; point                  # 7: a grandchild dropped
run_to_now "$TEST_TMP/run.log" --source "$SRC" --slot inh

expect_points_equal 22

# the rows themselves, at two points (not only "equal to the live table")
expect_eq "ip after INHERIT: its rows, ic's, igc's and solo's, by column name" \
  "$(snapshot_sorted 3 ip)" \
"1	p1!
2	c2!
3	g3!
4	c4
5	s5"
expect_eq "ip after NO INHERIT, ADD COLUMN: ic's sub-tree gone" \
  "$(W snapshot --at "${LSN[5]}" --table ip --format csv --order key 2>/dev/null)" \
"id,v,w
5,s5,50
6,p6,60"

# A restore writes each table's own rows (pg_dump's way): the tables it
# creates do not inherit, and the children are restored as their own.
expect_eq "--format sql of a parent holds its own rows only" \
  "$(W snapshot --at "${LSN[3]}" --table ip --format sql 2>/dev/null | sed -n '/^COPY/,/^\\\\\./p')" \
"COPY public.ip (id, v) FROM stdin;
1	p1!
\\."

# The table log records the inheritance over time.
expect_eq "table log: INHERIT and NO INHERIT" \
  "$(q $DB "SELECT relname, event, coalesce(inherits::regclass[]::text, '-')
            FROM walrev.table_log WHERE relname IN ('solo', 'ic') ORDER BY id")" \
"ic|seed|{ip}
solo|create|-
solo|alter|{ip}
ic|alter|-
solo|alter|{ip}
ic|alter|-
ic|alter|{ip}"

rev_at() { W snapshot --at "$1" --table ip 2>&1 >/dev/null | sed -n 's/^resolved .* to revision \([0-9]*\) .*/\1/p'; }
# history of a parent's key: the child's row (key 2 is ic's) while ic was below ip
expect_eq "history of a child's row through the parent" \
  "$(W history --table ip --key 2 --format csv 2>/dev/null | cut -d, -f1,3,7-9)" \
"revision,op,column,old_value,new_value
1,S,id,,2
1,S,v,,c2
1,S,extra,,20
$(rev_at "${LSN[1]}"),U,v,c2,c2!
$(rev_at "${LSN[7]}"),U,v,c2!,c2?
$(rev_at "${LSN[7]}"),U,w,,"

# log --table of a parent: its own changes, its children's while they were its own, the INHERIT and NO INHERIT
expect_eq "log --table of a parent" \
  "$(W log --table ip --format csv 2>/dev/null | tail -n +2 | cut -d, -f1 | tr '\n' ' ')" \
  "$(for i in 7 6 5 4 3 1 0; do printf '%s ' "$(rev_at "${LSN[$i]}")"; done)"

# diff of a parent: the union at each point, a row in its own table
expect_eq "diff of a parent across NO INHERIT" \
  "$(W diff "${LSN[3]}" "${LSN[4]}" --table ip --format csv 2>/dev/null)" \
'table,key,change,column,old_value,new_value
public.ip,"[""2""]",removed,id,2,
public.ip,"[""2""]",removed,v,c2!,
public.ip,"[""3""]",removed,id,3,
public.ip,"[""3""]",removed,v,g3!,
public.ip,"[""4""]",removed,id,4,
public.ip,"[""4""]",removed,v,c4,'

# An unlogged child: the parent's rows include rows logical decoding cannot see.
q $DB "CREATE UNLOGGED TABLE iu () INHERITS (ip); INSERT INTO iu VALUES (9, 'u9', 90)"
q $DB "INSERT INTO ip VALUES (10, 'p10', 100)"
run_to_now "$TEST_TMP/run.log" --source "$SRC" --slot inh
out=$(W snapshot --table ip 2>&1) && fail "a snapshot of a parent with an unlogged child succeeded: $out"
echo "$out" | grep -q 'table public.iu inherits from public.ip and is unlogged at revision' ||
  fail "unlogged child: $out"
pass "a parent with an unlogged child is an error naming the child"
out=$(W snapshot --table iu 2>&1) && fail "a snapshot of the unlogged child succeeded: $out"
echo "$out" | grep -q 'unlogged' || fail "unlogged child itself: $out"
pass "the unlogged child itself says unlogged"
expect_eq "ic, below ip beside the unlogged child, still answers" \
  "$(W snapshot --at "$STOP" --table ic 2>/dev/null | LC_ALL=C sort)" \
"2	c2?	20	\\N
4	c4	40	\\N"
expect_eq "before the unlogged child, the parent answers" \
  "$(snapshot_sorted 7 ip)" "$(cat "$TEST_TMP/7.ip")"

expect_verify "verify passes"
