#!/usr/bin/env bash
# A table name that belongs to another table later (issue 13, found by
# external.py on PostgreSQL's truncate.sql with points inside the file):
# snapshot --at P --table T took T as the table that had the name last, so
# at a point where an earlier table of that name (dropped since, or renamed
# away) existed, it answered "did not exist yet" or with the wrong table's
# rows. A name is now the table's that had it at that point; history and the
# other commands still take the newest, and so does a snapshot when no table
# had the name then (a dropped table then says it was dropped, docs/replay.md).
source "$(dirname "$0")/lib.sh"
source_db name_reuse namereuse

q $DB "CREATE TABLE keep (id int PRIMARY KEY)"
w_setup

NP=0
LSN=()
TABLES="t u"
q $DB "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'first'), (2, 'first')"
point                                                                              # 0: the first t
q $DB "DROP TABLE t; CREATE TABLE t (a text, b int); INSERT INTO t VALUES ('second', 1)"
point                                                                              # 1: t again, keyless
q $DB "ALTER TABLE t RENAME TO u; CREATE TABLE t (id int PRIMARY KEY, w int); INSERT INTO t VALUES (9, 9);
       INSERT INTO u VALUES ('second', 2)"
point                                                                              # 2: the second t is u now, a third t
q $DB "DROP TABLE t"; point                                                        # 3: no t
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"

snapshot_points
expect_eq "table-points equal, byte for byte (t at 0, 1, 2; u at 2, 3)" "$EQUAL" 5
expect_eq "the first t at point 0" "$(snapshot_sorted 0 t)" \
"1	first
2	first"
expect_eq "the second t at point 1, though a third has the name now" \
  "$(W snapshot --at "${LSN[1]}" --table t 2>/dev/null)" "second	1"
expect_eq "u at point 1: the same table under its later name" "$(W snapshot --at "${LSN[1]}" --table u 2>/dev/null)" \
  "second	1"
