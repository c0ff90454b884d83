#!/usr/bin/env bash
# Values the DDL capture writes are in the walsender's text, not the DDL
# session's (issue 13, found by external.py on PostgreSQL's fast_default.sql,
# run with PGDATESTYLE='Postgres, MDY' as pg_regress does): a column added
# with a default to a table with rows (a missing value from the catalog, a
# volatile default's rewrite sending the rows) was written in the session's
# DateStyle ('06-02-2016', 'Thu Sep 01 12:00:00 2016'), IntervalStyle,
# extra_float_digits and bytea_output, so snapshots differed from the table.
# The capture's functions now run under fixed settings.
source "$(dirname "$0")/lib.sh"
source_db capture_settings capset

q $DB "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);
       CREATE TABLE k (n int); INSERT INTO k VALUES (1), (1)"
w_setup

SESSION="SET DateStyle = 'Postgres, DMY'; SET IntervalStyle = 'sql_standard'; SET extra_float_digits = 0;
         SET bytea_output = 'escape';"
NP=0
LSN=()
TABLES="t k"
point                                                                                       # 0
q $DB "$SESSION ALTER TABLE t ADD COLUMN d date DEFAULT '2016-06-02', ADD COLUMN ts timestamp DEFAULT
       '2016-09-01 12:00:00', ADD COLUMN i interval DEFAULT '1 day 2 hours', ADD COLUMN f float8 DEFAULT 1.0 / 3,
       ADD COLUMN b bytea DEFAULT '\\x01ff'"; point                                          # 1: missing values
q $DB "$SESSION ALTER TABLE k ADD COLUMN d date DEFAULT '2016-06-02', ADD COLUMN r float8 DEFAULT random() * 0 + 1.0 / 3,
       ADD COLUMN ts timestamp DEFAULT '2016-09-01 12:00:00'::timestamp + random() * interval '0'"; point  # 2: a rewrite
q $DB "$SESSION ALTER TABLE t ADD COLUMN v int DEFAULT 7, ADD COLUMN g int GENERATED ALWAYS AS (v * 2) STORED;
       INSERT INTO t (id) VALUES (3)"; point                                                 # 3: a rewrite's fills
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"

expect_points_equal 8
expect_eq "t after the ADD COLUMNs under another session's settings" \
  "$(snapshot_sorted 1 t)" \
'1	2016-06-02	2016-09-01 12:00:00	1 day 02:00:00	0.3333333333333333	\\x01ff
2	2016-06-02	2016-09-01 12:00:00	1 day 02:00:00	0.3333333333333333	\\x01ff'
