#!/usr/bin/env bash
# DETACH PARTITION … CONCURRENTLY of a partition the publication covers only
# through its parent (issue 13): the partition leaves the publication, but
# the command runs in two transactions, and the note of the published set
# that a one-transaction DETACH leaves for its ddl_command_end is gone by the
# second one, so the leave was not recorded and later snapshots answered the
# partition's rows as of the detach, silently. log_detach_pending logs it
# 'unpublished' in the first transaction; replay refuses it by name until it
# rejoins (ADD TABLE: a truncate and its rows then), and a partition the
# publication also names itself stays tracked.
source "$(dirname "$0")/lib.sh"
userpub_source detachconc

q $DB "CREATE TABLE base (id int PRIMARY KEY, v text); INSERT INTO base VALUES (1, 'b1');
       CREATE TABLE par (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
       CREATE TABLE pa PARTITION OF par FOR VALUES FROM (0) TO (100);
       CREATE TABLE pb PARTITION OF par FOR VALUES FROM (100) TO (200);
       CREATE TABLE pc PARTITION OF par FOR VALUES FROM (200) TO (300);
       INSERT INTO par VALUES (1, 'a1'), (150, 'b1'), (250, 'c1');
       CREATE PUBLICATION userpub FOR TABLE base, par, pc"
w_setup
NP=0
LSN=()
TABLES="base par pa pb pc"
q $DB "UPDATE par SET v = 'b2' WHERE id = 150"
point # 0
q $DB "ALTER TABLE par DETACH PARTITION pb CONCURRENTLY"
q $DB "ALTER TABLE par DETACH PARTITION pc CONCURRENTLY"
q $DB "UPDATE pb SET v = 'b3' WHERE id = 150; INSERT INTO pb VALUES (151, 'new'); UPDATE pc SET v = 'c2'"
point # 1: pb out (through par alone), pc still named
q $DB "ALTER PUBLICATION userpub ADD TABLE pb; UPDATE pb SET v = 'b4' WHERE id = 151"
point # 2: pb back
run_to "$(current_lsn "$DB")" "$LOG" -c "$TEST_TMP/walrev.conf"

expect_unpublished pb 1
pass "pb, detached concurrently from the publication's parent, refused by name"
expect_points_equal 14
expect_verify "verify passes"
