#!/usr/bin/env bash
# Values travel as text, and their text depends on the session's DateStyle,
# IntervalStyle, extra_float_digits and bytea_output. A database (or role, or
# server) that defaults them otherwise must not change what walrev records:
# the walsender's rows, the baseline's and the DDL capture's filled-in values
# are all printed alike (pgio's PGIO_TEXT_SETTINGS, capture.c's SET clauses),
# so every snapshot equals the table read with those settings, byte for byte.
source "$(dirname "$0")/lib.sh"
source_db text_settings text_settings
CANON="-c DateStyle=ISO,MDY -c IntervalStyle=postgres -c extra_float_digits=1 -c bytea_output=hex"
q $DB "ALTER DATABASE $DB SET DateStyle = 'SQL, DMY'; ALTER DATABASE $DB SET IntervalStyle = 'sql_standard';
       ALTER DATABASE $DB SET extra_float_digits = 0; ALTER DATABASE $DB SET bytea_output = 'escape'"
expect_eq "the database prints values otherwise" \
  "$(q $DB "SELECT '2024-03-05 06:07:08+00'::timestamptz::date, '1 day 2 hours'::interval, '\\x01ff'::bytea, 1/3::float8")" \
  '05/03/2024|1 2:00:00|\001\377|0.333333333333333'

q $DB "CREATE TABLE t (id int PRIMARY KEY, d date, ts timestamp, iv interval, b bytea, f float8, r real);
       INSERT INTO t VALUES (1, '2024-03-05', '2024-03-05 06:07:08.5', '1 day 2 hours', '\\x01ff', 1/3::float8, 0.1),
                            (2, NULL, NULL, '-3 months', '\\x', 2.5e-7, 1e10);
       CREATE TABLE k (d date, iv interval);
       INSERT INTO k VALUES ('1999-12-31', '00:00:01.5'), ('1999-12-31', '00:00:01.5')"
w_setup
NP=0 LSN=() TABLES="t k"
PGOPTIONS="$CANON" point
q $DB "INSERT INTO t VALUES (3, '2001-02-03', '2001-02-03 04:05:06', '7 years 1 mon 00:00:00.25', '\\xdeadbeef', 1e-300, 3.14159);
       UPDATE t SET d = d + 1, iv = iv * 2, f = f / 7, b = b || '\\x00'::bytea WHERE id = 1;
       INSERT INTO k VALUES ('2000-01-01', '-1 day')"
PGOPTIONS="$CANON" point
# values the DDL capture computes and sends as rows (a volatile default, a
# retype with USING): printed by the capture, not by the walsender
q $DB "ALTER TABLE t ADD COLUMN added timestamp DEFAULT '2020-01-02 03:04:05'::timestamp + random() * interval '0 s';
       ALTER TABLE t ALTER COLUMN r TYPE float8 USING r * 3;
       UPDATE t SET iv = iv + interval '1 minute' WHERE id = 3"
PGOPTIONS="$CANON" point
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
expect_points_equal 6
