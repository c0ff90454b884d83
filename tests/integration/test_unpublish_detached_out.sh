#!/usr/bin/env bash
# A partition detached while its partitioned table was out of the
# publication (issue 13; found by difftest --user-publication, seed 101):
# the DETACH is not logged (the table log logs only what the publication
# covers), so when the partitioned table rejoined, the table log still had
# the detached table as its partition, and every snapshot of the
# partitioned table was refused ("table pb is a partition of par and is not
# published") although its rows were known exactly; an INHERITS child made
# NO INHERIT meanwhile likewise. The rejoin now logs each
# table the log last had below a rejoining partitioned table and that is no
# longer there, as it is now (out of the publication: 'unpublished').
source "$(dirname "$0")/lib.sh"
userpub_source unpubdetout

q $DB "CREATE TABLE par (id int PRIMARY KEY, v text) PARTITION BY LIST (id);
       CREATE TABLE pa PARTITION OF par FOR VALUES IN (1, 2);
       CREATE TABLE pb PARTITION OF par FOR VALUES IN (3, 4);
       INSERT INTO par VALUES (1, 'a1'), (3, 'b1');
       CREATE TABLE h (id int, v text); ALTER TABLE h REPLICA IDENTITY FULL;
       CREATE TABLE hc (w int) INHERITS (h); ALTER TABLE hc REPLICA IDENTITY FULL;
       INSERT INTO h VALUES (1, 'h1'); INSERT INTO hc VALUES (2, 'c1', 7);
       CREATE PUBLICATION userpub FOR TABLE par, h, hc"
w_setup
NP=0
LSN=()
TABLES="par pa pb h hc"
point # 0
q $DB "ALTER PUBLICATION userpub DROP TABLE par, h, hc"
q $DB "ALTER TABLE par DETACH PARTITION pb; ALTER TABLE hc NO INHERIT h; UPDATE par SET v = 'a2' WHERE id = 1"
point # 1: all out
q $DB "ALTER PUBLICATION userpub ADD TABLE par, h"
q $DB "UPDATE pa SET v = 'a3'; UPDATE pb SET v = 'b2'; UPDATE h SET v = 'h2'; UPDATE hc SET v = 'c2'"
point # 2: par (with pa) and h back; pb (detached) and hc (no longer h's child, not in the publication) out
run_to_now "$LOG" -c "$TEST_TMP/walrev.conf"

for tb in $TABLES; do expect_unpublished "$tb" 1; done
for tb in pb hc; do expect_unpublished "$tb" 2; done
expect_points_equal 8
pass "a partitioned table and an INHERITS parent rejoin without the member that left them while they were out"
expect_verify "verify passes"
