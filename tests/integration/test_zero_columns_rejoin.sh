#!/usr/bin/env bash
# A table without a column (CREATE TABLE t () with rows) that leaves a
# user's publication and rejoins it (issue 13, found by difftest
# --user-publication, seed 7): the rejoin records the rows the table has
# then, read by the DDL capture, which joined the table's columns and so
# read no row of a table with none: the rejoin's truncate emptied it and
# every later snapshot answered no row where the table had three.
source "$(dirname "$0")/lib.sh"
userpub_source zero_columns_rejoin
q $DB "CREATE TABLE zc (); INSERT INTO zc DEFAULT VALUES; INSERT INTO zc DEFAULT VALUES;
       CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);
       CREATE PUBLICATION userpub FOR TABLE zc, t"
W setup >"$TMP/setup.out" 2>&1 || { cat "$TMP/setup.out"; fail setup; }
q $DB "ALTER PUBLICATION userpub DROP TABLE zc"
q $DB "INSERT INTO zc DEFAULT VALUES"
q $DB "ALTER PUBLICATION userpub ADD TABLE zc"
q $DB "INSERT INTO t VALUES (2)"
run_to_now "$LOG" -c "$TEST_TMP/walrev.conf"
expect_eq "the rejoined table without a column: its three rows" "$(W snapshot --table zc 2>/dev/null | wc -l)" 3
expect_eq "the table beside it" "$(W snapshot --table t 2>/dev/null | tr '\n' ' ')" "1 2 "
expect_verify "verify passes"
pass "a table without a column rejoins with its rows"
