#!/usr/bin/env bash
# A partition detached while its partitioned table was out of the
# publication (issue 13; found by difftest --user-publication, seed 101):
# the DETACH is not logged (the table log logs only what the publication
# covers), so when the partitioned table rejoined, the table log still had
# the detached table as its partition, and every snapshot of the
# partitioned table was refused ("table pb is a partition of par and is not
# published") although its rows were known exactly. The rejoin now logs each
# table the log last had below a rejoining partitioned table and that is no
# longer there, as it is now (out of the publication: 'unpublished').
source "$(dirname "$0")/lib.sh"
userpub_source unpubdetout

q $DB "CREATE TABLE base (id int PRIMARY KEY, v text); INSERT INTO base VALUES (1, 'b1');
       CREATE TABLE par (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
       CREATE TABLE pa PARTITION OF par FOR VALUES FROM (0) TO (100);
       CREATE TABLE pb PARTITION OF par FOR VALUES FROM (100) TO (200);
       CREATE TABLE pc PARTITION OF par FOR VALUES FROM (200) TO (300);
       INSERT INTO par VALUES (1, 'a1'), (150, 'b1'), (250, 'c1');
       CREATE PUBLICATION userpub FOR TABLE base, par"
w_setup
NP=0
LSN=()
TABLES="base par pa pb pc"
point # 0
q $DB "ALTER PUBLICATION userpub DROP TABLE par"
q $DB "ALTER TABLE par DETACH PARTITION pb; UPDATE par SET v = 'a2' WHERE id = 1"
point # 1: par, pa, pb, pc out
q $DB "ALTER PUBLICATION userpub ADD TABLE par"
q $DB "UPDATE par SET v = 'c2' WHERE id = 250; UPDATE pb SET v = 'b2'"
point # 2: par and its partitions pa, pc back; pb, detached while out, still out
run_to_now "$LOG" -c "$TEST_TMP/walrev.conf"

for tb in par pa pb pc; do expect_unpublished "$tb" 1; done
expect_unpublished pb 2
expect_points_equal 10
pass "the partitioned table rejoins without the partition detached while it was out"
expect_verify "verify passes"
