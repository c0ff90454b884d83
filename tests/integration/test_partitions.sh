#!/usr/bin/env bash
# Partitioned tables and tables never written (issue 13, items 4 and 5).
# Changes arrive under leaf partitions; `walrev snapshot --table PARENT` must
# equal the live parent (COPY ... TO STDOUT) at every point, at every level
# of a multi-level hierarchy, through ATTACH, DETACH, DROP of a partition,
# rows moving between partitions (UPDATE of the partition key), a default
# partition, partitions in another schema and with another column order;
# history, log, blame and diff of a parent answer for its partitions; a
# table created and never written is empty after its creation and named as
# not existing yet before it.
source "$(dirname "$0")/lib.sh"
source_db partitions parts

q $DB "CREATE SCHEMA other;
       CREATE TABLE m (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
       CREATE TABLE m_a PARTITION OF m FOR VALUES FROM (0) TO (10);
       CREATE TABLE other.m_b PARTITION OF m FOR VALUES FROM (10) TO (20) PARTITION BY LIST (id);
       CREATE TABLE other.m_b1 PARTITION OF other.m_b FOR VALUES IN (1, 2, 3);
       CREATE TABLE other.m_bd PARTITION OF other.m_b DEFAULT;
       CREATE TABLE plain (id int PRIMARY KEY, v text);
       INSERT INTO m VALUES (1, 1, 'one'), (2, 15, 'two'), (7, 15, 'seven');
       INSERT INTO plain VALUES (1, 'p');"
w_setup
grep -q "table log walrev.table_log" "$TMP/setup.out" || { cat "$TMP/setup.out"; fail "no table log"; }

# Each point (lib.sh's point): the LSN, and the live contents of each table
# of interest (COPY ... TO STDOUT, sorted: snapshots have no row order) in
# $LIVEDIR/POINT.TABLE.
LIVEDIR=$TEST_TMP
NP=0
LSN=()
TABLES="m other.m_b plain"
point                                                                                           # 0: baseline
q $DB "UPDATE m SET k = 12 WHERE id = 1"; point                                                 # 1: row moves m_a -> m_b1
q $DB "CREATE TABLE never (id int PRIMARY KEY, note text)"; point                               # 2: created, never written
q $DB "ALTER TABLE m DETACH PARTITION other.m_b"; point                                         # 3: detach a sub-tree
q $DB "CREATE TABLE m_c (v text, k int, id int, PRIMARY KEY (id, k));
       INSERT INTO m_c VALUES ('c', 25, 9)"; point                                               # 4: standalone, other column order
q $DB "ALTER TABLE m ATTACH PARTITION m_c FOR VALUES FROM (20) TO (30)"; point                  # 5: attach with rows
q $DB "BEGIN; INSERT INTO m VALUES (3, 22, 'three'); UPDATE m SET k = 3 WHERE id = 3; COMMIT"; point  # 6: insert and move
q $DB "UPDATE other.m_b SET v = 'two!' WHERE id = 2"; point                                     # 7: detached: not in m
q $DB "ALTER TABLE m ATTACH PARTITION other.m_b FOR VALUES FROM (10) TO (20)"; point            # 8: re-attach
q $DB "DROP TABLE m_c"; point                                                                   # 9: drop a partition
q $DB "CREATE TABLE m_d PARTITION OF m DEFAULT"; point                                          # 10: default, empty
q $DB "INSERT INTO m VALUES (100, 100, 'dflt'), (8, 16, 'eight'); DELETE FROM m WHERE id = 7"; point  # 11
q $DB "ALTER TABLE m ADD COLUMN w int; UPDATE m SET w = id * 10 WHERE id IN (1, 100)"; point    # 12: new column
q $DB "TRUNCATE other.m_b"; point                                                                # 13: truncate a sub-tree
run_to_now "$TMP/run.log" --source "$SRC" --slot parts

snapshot_points
pass "$EQUAL table-points equal, byte for byte"

expect_eq "csv of a parent has the parent's header and column order" \
  "$(W snapshot --at "${LSN[5]}" --table m --format csv 2>/dev/null)" \
"id,k,v
9,25,c"

# A table created after setup and never written.
expect_eq "a table never written is empty after its creation" \
  "$(W snapshot --at "${LSN[2]}" --table never --format csv 2>/dev/null)" "id,note"
expect_eq "and empty at the newest revision" "$(W snapshot --table never 2>/dev/null)" ""
out=$(W snapshot --at "${LSN[1]}" --table never 2>&1) && fail "a snapshot before its creation succeeded"
echo "$out" | grep -q 'table never did not exist yet at revision 2: it was created in revision 3' ||
  fail "before its creation: $out"
pass "before its creation the snapshot says it did not exist yet"
expect_eq "--format sql of a table never written has its columns" \
  "$(W snapshot --table never --format sql 2>/dev/null | grep -A3 '^CREATE TABLE')" \
"CREATE TABLE public.never (
    id integer,
    note text
);"
W snapshot --table nosuch >/dev/null 2>&1 && fail "unknown table accepted"
pass "an unknown table is still an error"

# The whole-database snapshot has the partitions and the never-written table,
# not the parents (their rows are the partitions'), walrev's table log, nor
# m_c, a partition dropped at point 9 (it has no table at the newest point).
expect_eq "tables of a whole-database snapshot" \
  "$(W snapshot --format sql 2>/dev/null | grep '^CREATE TABLE' | sort)" \
"CREATE TABLE other.m_b1 (
CREATE TABLE other.m_bd (
CREATE TABLE public.m_a (
CREATE TABLE public.m_d (
CREATE TABLE public.never (
CREATE TABLE public.plain ("

# expect_m_history WHAT KEY ROWS: the history of the parent m's row KEY, as
# csv (revision, op, column, old and new value), is the header and ROWS.
expect_m_history() {
  expect_eq "$1" "$(W history --table m --key "$2" --format csv 2>/dev/null | cut -d, -f1,3,7-9)" \
    "revision,op,column,old_value,new_value
$3"
}

# history of a parent: changes of the key in whichever partition held it
# (a move is a delete in one and an insert in another, same revision), the
# key given in the parent's form (m_c records it as ["22","3"]: its own
# column order), the columns in the partition's order.
expect_m_history "history of a parent's row across partitions" '["3","22"]' \
"7,I,v,,three
7,I,k,,22
7,I,id,,3
7,D,v,three,
7,D,k,22,
7,D,id,3,"
expect_m_history "history of the moved row under its new key" '["3","3"]' \
"7,I,id,,3
7,I,k,,3
7,I,v,,three"
expect_m_history "changes made while detached are not the parent's" '["2","15"]' \
"1,S,id,,2
1,S,k,,15
1,S,v,,two"

# log --table of a parent: revisions that changed its partitions while they
# were its own, and those that attached, detached or dropped one.
LOGREVS=$(W log --table m --format csv 2>/dev/null | tail -n +2 | cut -d, -f1 | tr '\n' ' ')
# revision numbers of the points (the point's resolved revision)
rev_at() { W snapshot --at "$1" --table plain 2>&1 >/dev/null | sed -n 's/^resolved .* to revision \([0-9]*\) .*/\1/p'; }
want=""
for i in 13 12 11 10 9 8 6 5 3 1 0; do want="$want$(rev_at "${LSN[$i]}") "; done
expect_eq "log --table of a parent" "$LOGREVS" "$want"
expect_eq "log --table of a sub-partitioned table has its own changes too" \
  "$(W log --table other.m_b --format csv 2>/dev/null | tail -n +2 | cut -d, -f1 | tr '\n' ' ')" \
  "$(for i in 13 12 11 8 7 3 1 0; do printf '%s ' "$(rev_at "${LSN[$i]}")"; done)"

# blame of a parent's row: the partition that holds it then.
expect_eq "blame of a parent's row" \
  "$(W blame --table m --key '["1","12"]' --at "${LSN[12]}" --format csv 2>/dev/null | cut -d, -f1-4)" \
"column,value,revision,op
id,1,2,I
k,12,2,I
v,one,2,I
w,10,$(rev_at "${LSN[12]}"),U"
W blame --table m --key '["7","15"]' --at "${LSN[7]}" >/dev/null 2>&1 &&
  fail "blame of a row of a detached partition succeeded"
pass "blame of a row outside the parent at that point is an error"

# diff --table of a parent: net change over the union (a moved row is one row).
expect_eq "diff of a parent across attach, move and drop" \
  "$(W diff "${LSN[4]}" "${LSN[9]}" --table m --format csv 2>/dev/null)" \
'table,key,change,column,old_value,new_value
public.m,"[""1"",""12""]",added,id,,1
public.m,"[""1"",""12""]",added,k,,12
public.m,"[""1"",""12""]",added,v,,one
public.m,"[""2"",""15""]",added,id,,2
public.m,"[""2"",""15""]",added,k,,15
public.m,"[""2"",""15""]",added,v,,two!
public.m,"[""3"",""3""]",added,id,,3
public.m,"[""3"",""3""]",added,k,,3
public.m,"[""3"",""3""]",added,v,,three
public.m,"[""7"",""15""]",added,id,,7
public.m,"[""7"",""15""]",added,k,,15
public.m,"[""7"",""15""]",added,v,,seven'

# Undo of a parent is refused by name (its rows are its partitions', which
# changed over time), never planned as "nothing to change".
out=$(W rollback --to "${LSN[3]}" --table m 2>&1) && fail "rollback of a parent was planned"
expect_eq "rollback of a parent names its partitions" "$(echo "$out" | tail -1)" \
  "walrev rollback: error: m is a partitioned table: rollback works on the tables that hold rows; name its partitions (now: other.m_b1, other.m_bd, public.m_a, public.m_d)"
out=$(W restore --table m --key '["1","12"]' --at "${LSN[3]}" 2>&1) && fail "restore of a parent's row was planned"
echo "$out" | grep -q "m is a partitioned table: restore works on the tables that hold rows" || fail "restore: $out"
pass "restore of a parent's row is refused by name"

must "$TEST_TMP/verify.out" verify "$WALREV_BIN" --source "$SRC" --slot parts verify
pass "verify passes (the table log's rows are in the checksum chain)"

# Only walrev writes the table log.
q $DB "DO \$\$ BEGIN CREATE ROLE parts_app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
       GRANT CREATE ON SCHEMA public TO parts_app"
out=$($PSQL -U parts_app -d $DB -c "INSERT INTO walrev.table_log (relid, event, nspname, relname) VALUES (1, 'drop', 'public', 'm')" 2>&1) &&
  fail "another role wrote the table log"
echo "$out" | grep -q "permission denied" || fail "forging the table log: $out"
$PSQL -U parts_app -d $DB -c "CREATE TABLE app_made (id int)" || fail "a role without privileges on the log cannot create tables"
expect_eq "its DDL is logged all the same (SECURITY DEFINER trigger)" \
  "$(q $DB "SELECT event, relname FROM walrev.table_log WHERE relname = 'app_made'")" "create|app_made"
pass "only walrev writes the table log"

# Dropped: a partitioned table, and a table never written, say so by name;
# before the drop they answer as before.
BEFORE=$(current_lsn $DB)
q $DB "DROP TABLE never"
q $DB "DROP TABLE m"
run_to_now "$TMP/run.log" --source "$SRC" --slot parts
DROPREV=$(rev_at "$STOP")
out=$(W snapshot --table m 2>&1) && fail "a snapshot of a dropped partitioned table succeeded"
echo "$out" | grep -q "table m did not exist at revision $DROPREV: it was dropped in revision $DROPREV" ||
  fail "dropped parent: $out"
out=$(W snapshot --table never 2>&1) && fail "a snapshot of a dropped table never written succeeded"
echo "$out" | grep -q "table never did not exist at revision $DROPREV: it was dropped in revision $((DROPREV - 1))" ||
  fail "dropped table never written: $out"
pass "a dropped partitioned table and a dropped table never written say so"
W snapshot --at "$BEFORE" --table m 2>/dev/null | LC_ALL=C sort >"$LIVEDIR/before-drop.walrev"
cmp -s "$LIVEDIR/13.m" "$LIVEDIR/before-drop.walrev" || fail "the parent before its drop differs from point 13"
pass "before its drop the parent answers as before"
