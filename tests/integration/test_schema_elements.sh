#!/usr/bin/env bash
# Tables a CREATE SCHEMA makes with it (issue 13, found by external.py on
# PostgreSQL's publication.sql: CREATE SCHEMA pubme CREATE TABLE t0 ...
# CREATE TABLE t1 ...): the command's tag is CREATE SCHEMA, which the table
# log's trigger did not fire on, and it fired before setup's trigger adds the
# new schema to the publication. A table never written was then an "unknown
# table"; now it is empty from its creation on, and one written later
# answers with its rows (the schema is tracked from the CREATE SCHEMA on).
source "$(dirname "$0")/lib.sh"
source_db schema_elements schemaelem

q $DB "CREATE TABLE keep (id int PRIMARY KEY)"
w_setup
expect_eq "setup installs the trigger for CREATE SCHEMA's tables (and ALTER SCHEMA's renames)" \
  "$(q $DB "SELECT evtname || ' ' || evtevent || ' ' || array_to_string(evttags, ',') FROM pg_event_trigger
             WHERE evtname = 'walrev_schema_tables'")" "walrev_schema_tables ddl_command_end CREATE SCHEMA,ALTER SCHEMA"

NP=0
LSN=()
TABLES="se.t0 se.t1 se2.t0"
point                                                                          # 0: none yet
q $DB "CREATE SCHEMA se CREATE TABLE t0 (c int, d int) CREATE TABLE t1 (c int PRIMARY KEY)"
q $DB "CREATE SCHEMA se2 CREATE TABLE t0 (c int, d text)"
q $DB "INSERT INTO keep VALUES (1)"
point                                                                          # 1: three empty tables
q $DB "INSERT INTO se.t1 VALUES (1), (2); INSERT INTO se2.t0 VALUES (5, 'five')"
point                                                                          # 2: two written, se.t0 still empty
STOP=$(current_lsn $DB)
run_to "$STOP" "$LOG" --source "$SRC" --slot "$SLOT"

expect_points_equal 6
expect_eq "se.t0, never written, is empty at the end" "$(W snapshot --table se.t0 2>&1 >/dev/null | grep -c error)" 0
grep -q "table se.t0 did not exist yet at revision" <(W snapshot --at "${LSN[0]}" --table se.t0 2>&1) \
  || { W snapshot --at "${LSN[0]}" --table se.t0; fail "se.t0 at point 0: not 'did not exist yet'"; }
expect_eq "the table log knows all three, as created" \
  "$(q $DB "SELECT string_agg(nspname || '.' || relname || ' ' || event, ', ' ORDER BY nspname, relname)
             FROM walrev.table_log WHERE nspname IN ('se', 'se2')")" "se.t0 create, se.t1 create, se2.t0 create"
pass "CREATE SCHEMA ... CREATE TABLE: tables tracked from their creation"
