#!/usr/bin/env bash
# Partitions attached and detached, and tables created, while the slot was
# lost (issue 13.8 with 13.4/13.5): the gap revision reconciles the table log
# too, so replay knows the membership and the tables the gap hid. Before,
# the gap reconciled the leaves' rows but not the ATTACH/DETACH/CREATE the
# event triggers logged meanwhile: `snapshot --table` of the partitioned
# table answered with no rows at all (its partitions still detached, for
# replay), silently, and a table created during the gap was `unknown`. A
# table with STORED generated columns created during the gap lost them, with
# rows then or first written after, and so did a generated column added then (the gap hid its CREATE's DDL capture, and
# pgoutput never sends them): the gap revision gives such tables their version
# with them.
source "$(dirname "$0")/lib.sh"
source_db gap_part_src gappart
wpid=
kill_at_exit 9 wpid
start_worker() { worker_up --source "$SRC" --slot $SLOT; }
catch_up() { marker_catch_up m 300; }
expect_exact() { expect_like_table "the history of $1 equals the table" "$1" "$(W snapshot --table "$1" 2>&1 | sort)"; }

q $DB "CREATE TABLE m (id int PRIMARY KEY, v text); INSERT INTO m VALUES (1, 'm');
       CREATE TABLE p (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
       CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (100);
       INSERT INTO p SELECT g, 'p' || g FROM generate_series(1, 5) g;
       CREATE TABLE p2 (id int PRIMARY KEY, v text);
       INSERT INTO p2 SELECT g, 'x' || g FROM generate_series(100, 104) g;
       CREATE TABLE p3 (id int PRIMARY KEY, v text);
       CREATE TABLE gx (id int PRIMARY KEY, a int); INSERT INTO gx VALUES (1, 4), (2, NULL);"
w_setup
start_worker
q $DB "UPDATE p2 SET v = 'y' WHERE id = 101; ALTER TABLE p DETACH PARTITION p1; INSERT INTO p3 VALUES (300, 't')"
catch_up
worker_down
expect_eq "p is empty once p1 is detached" "$(W snapshot --table p 2>&1)" ""

# --- the slot is lost; meanwhile p2 is attached with rows, p1 again, p3 (emptied)
# with a row of its own, and two tables are created (one never written) ---
wait_for 30 slot_idle || fail "the slot stayed active after the worker stopped"
q $DB "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null
q $DB "ALTER TABLE p ATTACH PARTITION p2 FOR VALUES FROM (100) TO (200);
       UPDATE p2 SET v = 'z' WHERE id = 102; DELETE FROM p2 WHERE id = 103;
       ALTER TABLE p ATTACH PARTITION p1 FOR VALUES FROM (0) TO (100); UPDATE p1 SET v = 'q' WHERE id = 1;
       DELETE FROM p3; ALTER TABLE p ATTACH PARTITION p3 FOR VALUES FROM (200) TO (400); INSERT INTO p VALUES (301, 'n');
       CREATE TABLE later_empty (id int PRIMARY KEY, v text);
       CREATE TABLE later_rows (a int, b text); INSERT INTO later_rows VALUES (1, 'r'), (1, 'r');
       CREATE TABLE later_gen (id int PRIMARY KEY, a int, g bigint GENERATED ALWAYS AS (a * 2 + 1) STORED);
       CREATE TABLE later_gen_rows (id int PRIMARY KEY, b text, g text GENERATED ALWAYS AS (upper(b) || '!') STORED);
       INSERT INTO later_gen_rows (id, b) VALUES (1, 'x'), (2, NULL);
       ALTER TABLE gx ADD COLUMN g int GENERATED ALWAYS AS (a + 100) STORED;"
must "$TMP/setup2.out" "setup after the slot was dropped" W setup
grep -q 'msg="gap revision recorded"' "$TMP/setup2.out" || { cat "$TMP/setup2.out"; fail "no gap revision"; }
gap=$(q $DB "SET search_path = walrev; SELECT max(id) FROM revision WHERE actor_type = 'walrev' AND actor_id = 'gap'")
for t in p p1 p2 p3 later_empty later_rows later_gen later_gen_rows gx; do expect_exact $t; done
expect_eq "the gap revision carries the partitions attached during the gap" \
  "$(q $DB "SET search_path = walrev; SELECT string_agg(relname, ',' ORDER BY relname) FROM table_event
            WHERE revision_id = $gap AND parent = 'public.p'::regclass")" "p1,p2,p3"
expect_eq "p at the gap revision: its three partitions' rows" \
  "$(W snapshot --table p --at "$gap" 2>/dev/null | sort)" "$(q $DB "COPY (SELECT * FROM p) TO STDOUT" | sort)"

# --- the stream goes on: rows routed through p reach its members ---
start_worker
q $DB "INSERT INTO p VALUES (150, 'new'), (6, 'six'); UPDATE p SET v = v || '!' WHERE id IN (100, 2, 301);
       INSERT INTO later_empty VALUES (1, 'e'); INSERT INTO later_gen (id, a) VALUES (1, 10), (2, NULL);
       UPDATE later_gen_rows SET b = 'y' WHERE id = 1; UPDATE gx SET a = 5 WHERE id = 1"
catch_up
worker_down
for t in p p1 p2 p3 later_empty later_rows later_gen later_gen_rows gx; do expect_exact $t; done
must "$TMP/verify.out" "verify after the gap" W verify
pass "verify passes"
