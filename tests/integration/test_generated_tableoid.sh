#!/usr/bin/env bash
# A STORED generated column whose expression uses tableoid (the one system
# column PostgreSQL allows there; found by tests/difftest/external.py on
# PostgreSQL's generated_stored.sql): snapshots compute generated columns
# over the row's other columns, where tableoid did not exist, and every
# snapshot of the table failed ("column tableoid does not exist"). It is now
# the source table's oid, as on the source. And a computed value is written
# out by its type's output function, as COPY does: a generated boolean was
# 'true' (its cast to text), the table says 't'; an inet /32 kept its mask.
source "$(dirname "$0")/lib.sh"
source_db generated_tableoid generatedtableoid

q $DB "CREATE TABLE gt (a int PRIMARY KEY, b bool GENERATED ALWAYS AS (tableoid <> 0) STORED,
                        c oid GENERATED ALWAYS AS (tableoid) STORED, d int GENERATED ALWAYS AS (a * 2) STORED,
                        i inet GENERATED ALWAYS AS (('10.0.0.' || a)::inet) STORED,
                        n text GENERATED ALWAYS AS (CASE WHEN a > 2 THEN 'x' END) STORED);
       INSERT INTO gt (a) VALUES (1)"
w_setup
q_at END "INSERT INTO gt (a) VALUES (2), (3); DELETE FROM gt WHERE a = 1"
run_to "$END" "$LOG" --source "$SRC" --slot generatedtableoid
want=$(q $DB "COPY (SELECT * FROM gt) TO STDOUT" | sort)
expect_eq "the table as it is: tableoid's expressions computed" "$want" \
  "$(printf '2\tt\t%s\t4\t10.0.0.2\t\\N\n3\tt\t%s\t6\t10.0.0.3\tx' "$(q $DB "SELECT 'gt'::regclass::oid")" "$(q $DB "SELECT 'gt'::regclass::oid")")"
expect_eq "the snapshot equals it" "$(W snapshot --at "$END" --table gt 2>"$TMP/snap.err" | sort)" "$want"
W verify >/dev/null 2>&1 || fail verify
pass "verify passes"
