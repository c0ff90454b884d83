#!/usr/bin/env bash
# STORED generated columns read through a parent (issue 13; found by
# external.py on PostgreSQL's generated_stored.sql, gtest_parent: 0/3
# table-points): a partitioned table's columns come from the table log,
# which keeps no generation expression, so its generated columns read NULL.
# Each row is now computed by the expression of the member that holds it
# (its relation version), tableoid that member's oid, at any level of the
# hierarchy, following ATTACH (another column order) and DETACH, a
# generated column added to the parent later, and an INHERITS parent whose
# child holds rows too. A column the parent has as a regular one and a
# member GENERATED (PostgreSQL 15 allows it for INHERITS children and
# ATTACHed partitions; found by external.py on PostgreSQL's generated.sql,
# gtest_normal: the children's rows read NULL there) is computed by the
# member's expression for its rows. `walrev snapshot --table PARENT` equals
# `COPY (SELECT * FROM parent) TO STDOUT` at every point.
source "$(dirname "$0")/lib.sh"
source_db generated_partitions genparts

q $DB "CREATE TABLE gp (id int NOT NULL, v int, g bigint GENERATED ALWAYS AS (v * 2) STORED,
                        t oid GENERATED ALWAYS AS (tableoid) STORED, PRIMARY KEY (id)) PARTITION BY RANGE (id);
       CREATE TABLE gp1 PARTITION OF gp FOR VALUES FROM (0) TO (100);
       CREATE TABLE gps PARTITION OF gp FOR VALUES FROM (100) TO (300) PARTITION BY RANGE (id);
       CREATE TABLE gps1 PARTITION OF gps FOR VALUES FROM (100) TO (200);
       INSERT INTO gp (id, v) VALUES (1, 10), (2, 20), (101, 1010);
       CREATE TABLE ip (a int PRIMARY KEY, b int GENERATED ALWAYS AS (a * 2) STORED,
                        o oid GENERATED ALWAYS AS (tableoid) STORED);
       CREATE TABLE ic (c text, PRIMARY KEY (a)) INHERITS (ip);
       INSERT INTO ip (a) VALUES (1); INSERT INTO ic (a, c) VALUES (2, 'c2');
       CREATE TABLE np (a int, b int);
       CREATE TABLE nc (a int, b int GENERATED ALWAYS AS (a * 2) STORED) INHERITS (np);
       INSERT INTO np (a, b) VALUES (1, 10); INSERT INTO nc (a) VALUES (2)"
w_setup

NP=0
LSN=()
TABLES="gp gps ip np pp"
point                                                                          # 0: the baseline
q $DB "INSERT INTO gp (id, v) VALUES (3, 30), (102, 1020), (150, NULL);
       UPDATE gp SET v = v + 1 WHERE id IN (1, 101); INSERT INTO ic (a, c) VALUES (3, 'c3');
       INSERT INTO nc (a) VALUES (3);
       CREATE TABLE nc2 (a int, b int GENERATED ALWAYS AS (a * 3) STORED);
       ALTER TABLE nc2 INHERIT np; INSERT INTO nc2 (a) VALUES (4);
       CREATE TABLE pp (a int, b int) PARTITION BY RANGE (a);
       CREATE TABLE pp1 PARTITION OF pp FOR VALUES FROM (0) TO (10);
       CREATE TABLE pp2 (b int GENERATED ALWAYS AS (a * 7) STORED, a int);
       ALTER TABLE pp ATTACH PARTITION pp2 FOR VALUES FROM (10) TO (20);
       INSERT INTO pp VALUES (1, 5), (11, DEFAULT)"; point   # 1
q $DB "CREATE TABLE gp3 (t oid GENERATED ALWAYS AS (tableoid) STORED, v int, id int NOT NULL,
                         g bigint GENERATED ALWAYS AS (v * 2) STORED);
       INSERT INTO gp3 (id, v) VALUES (301, 3010);
       ALTER TABLE gp ATTACH PARTITION gp3 FOR VALUES FROM (300) TO (400)"; point   # 2: another column order
q $DB "UPDATE gp SET id = 302, v = 3020 WHERE id = 3"; point                   # 3: a row moves to gp3
q $DB "ALTER TABLE gp DETACH PARTITION gp1"; point                             # 4: gp1's rows leave
q $DB "ALTER TABLE gp ADD COLUMN h text GENERATED ALWAYS AS ('h' || (v + id)) STORED;
       INSERT INTO gp (id, v) VALUES (103, 1030)"; point                       # 5: a generated column added
run_to_now "$LOG" --source "$SRC" --slot genparts

snapshot_points
expect_eq "table-points equal, generated columns computed, byte for byte" "$EQUAL" 29

oid() { q $DB "SELECT '$1'::regclass::oid"; }
expect_eq "gp after ATTACH: each row's tableoid its partition's" \
  "$(W snapshot --at "${LSN[2]}" --table gp --format csv --order key 2>/dev/null)" \
"id,v,g,t
1,11,22,$(oid gp1)
2,20,40,$(oid gp1)
3,30,60,$(oid gp1)
101,1011,2022,$(oid gps1)
102,1020,2040,$(oid gps1)
150,,,$(oid gps1)
301,3010,6020,$(oid gp3)"
expect_eq "gp after DETACH and ADD COLUMN" \
  "$(W snapshot --at "${LSN[5]}" --table gp --format csv --order key 2>/dev/null)" \
"id,v,g,t,h
101,1011,2022,$(oid gps1),h1112
102,1020,2040,$(oid gps1),h1122
103,1030,2060,$(oid gps1),h1133
150,,,$(oid gps1),
301,3010,6020,$(oid gp3),h3311
302,3020,6040,$(oid gp3),h3322"
expect_eq "ip: the child's rows with its own tableoid" \
  "$(W snapshot --at "${LSN[1]}" --table ip --format csv --order key 2>/dev/null)" \
"a,b,o
1,2,$(oid ip)
2,4,$(oid ic)
3,6,$(oid ic)"
expect_eq "np: a column only its children generate, each by its own expression" \
  "$(W snapshot --at "${LSN[1]}" --table np --format csv 2>/dev/null | LC_ALL=C sort)" \
"1,10
2,4
3,6
4,12
a,b"
expect_eq "pp: a column only an attached partition generates" \
  "$(W snapshot --at "${LSN[1]}" --table pp --format csv 2>/dev/null | LC_ALL=C sort)" \
"1,5
11,77
a,b"
expect_eq "--format sql of the partitioned parent writes the computed values" \
  "$(W snapshot --at "${LSN[0]}" --table gp --format sql 2>/dev/null | sed -n '/^COPY/,$p' | grep -v '^$' | LC_ALL=C sort)" \
"$(printf '%s\n' "1	10	20	$(oid gp1)" "101	1010	2020	$(oid gps1)" "2	20	40	$(oid gp1)" \
   'COPY public.gp (id, v, g, t) FROM stdin;' '\.' | LC_ALL=C sort)"
W verify >/dev/null 2>&1 || fail verify
pass "verify passes"
