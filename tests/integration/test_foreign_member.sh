#!/usr/bin/env bash
# A foreign table below a partitioned table or an INHERITS parent (issue 13,
# found by s13-rand trying postgres_fdw partitions by hand). PostgreSQL 15
# lists a foreign partition in pg_publication_tables, so setup's baseline
# recorded its rows, and then no change of it ever reached the slot: its
# snapshot kept the baseline's rows, and the parent's snapshot (the union of
# its partitions) silently lacked the foreign partition's rows. Logical
# decoding cannot see a foreign table: the member and every parent above it
# must be refused by name while it is below them (at setup, ATTACHed or
# created as a partition later, an INHERITS child), and the parent answers
# again once it is detached.
source "$(dirname "$0")/lib.sh"
source_db foreign_member foreign_member
q $DB "CREATE EXTENSION postgres_fdw;
       CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '$PGPORT', dbname '$DB');
       CREATE USER MAPPING FOR postgres SERVER loop OPTIONS (user 'postgres');
       CREATE TABLE remote_a (id int PRIMARY KEY, v text); CREATE TABLE remote_b (id int PRIMARY KEY, v text);
       CREATE TABLE remote_c (id int PRIMARY KEY, v text, w int);
       INSERT INTO remote_a VALUES (15, 'remote'); INSERT INTO remote_b VALUES (25, 'remote b');
       CREATE TABLE fp (id int NOT NULL, v text) PARTITION BY RANGE (id);
       CREATE TABLE fp_l PARTITION OF fp FOR VALUES FROM (0) TO (10);
       INSERT INTO fp VALUES (1, 'local');
       CREATE FOREIGN TABLE fp_a PARTITION OF fp FOR VALUES FROM (10) TO (20) SERVER loop OPTIONS (table_name 'remote_a');
       CREATE TABLE ip (id int PRIMARY KEY, v text); INSERT INTO ip VALUES (1, 'parent')"
w_setup
TABLES="fp fp_l ip"
points_from $TABLES                                                                       # 0
q $DB "INSERT INTO fp VALUES (2, 'local 2'), (16, 'through fp'); UPDATE fp SET v = 'changed' WHERE id = 15"
point                                                                                     # 1
q $DB "ALTER TABLE fp DETACH PARTITION fp_a"; point                                       # 2
q $DB "CREATE FOREIGN TABLE fp_b PARTITION OF fp FOR VALUES FROM (20) TO (30) SERVER loop OPTIONS (table_name 'remote_b');
       CREATE FOREIGN TABLE ic (w int) INHERITS (ip) SERVER loop OPTIONS (table_name 'remote_c');
       INSERT INTO ic VALUES (2, 'child', 2)"; point                                      # 3
q $DB "ALTER TABLE fp DETACH PARTITION fp_b; ALTER TABLE ic NO INHERIT ip; UPDATE ip SET v = 'alone'"; point  # 4
q $DB "ALTER TABLE fp ATTACH PARTITION fp_a FOR VALUES FROM (10) TO (20)"; point          # 5
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"

refused() {  # refused TABLE POINT MEMBER PARENT: the snapshot names MEMBER as PARENT's foreign member
  expect_snapshot_refused "$1" "${LSN[$2]}" "at point $2 (a foreign member)" \
    "table public.$3 is a foreign table and a $4 public.$1 at revision [0-9]*: its rows live on another server" \
    "the refusal of $1 at point $2 names $3"
  rm -f "$TEST_TMP/$2.$1"
}
refused fp 0 fp_a "partition of"; refused fp 1 fp_a "partition of"
refused fp 3 fp_b "partition of"; refused ip 3 ic "child of"; refused fp 5 fp_a "partition of"
pass "a parent is refused by name while a foreign table is below it"
for t in fp_a fp_b ic; do
  expect_snapshot_refused "$t" "$STOP" "(a foreign table)" "table public.$t is a foreign table: its rows live on another server" \
    "the refusal of $t names it foreign"
done
pass "a foreign member is refused by name"
# what remains (fp and ip while no foreign table is below them, fp_l throughout) equals the live tables
expect_points_equal 13
expect_eq "no baseline recorded a foreign table's rows" \
  "$(q $DB "$H SELECT count(*) FROM object_delta WHERE relid IN ('public.fp_a'::regclass, 'public.fp_b'::regclass, 'public.ic'::regclass)")" 0
expect_verify "verify passes"
pass "foreign partitions and children are named, never left out of their parent's rows"
