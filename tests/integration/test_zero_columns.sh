#!/usr/bin/env bash
# Tables without a column the baseline can read (issue 13, found by s13-rand
# by hand): CREATE TABLE t () with rows (INSERT ... DEFAULT VALUES), a table
# whose only column is a STORED generated one, the same under REPLICA
# IDENTITY FULL. Describing such a table for its baseline joined its columns
# and found none, so setup's baseline skipped it ("not found") and the
# backfill cancelled it as "no longer in publication": every snapshot was
# refused as incomplete, although its rows (empty lines, as many as there
# are) are as easy to record as any. Their rows must come out like COPY's,
# through a lost slot's gap revision too.
source "$(dirname "$0")/lib.sh"
source_db zero_columns zero_columns
q $DB "CREATE TABLE zc (); INSERT INTO zc DEFAULT VALUES; INSERT INTO zc DEFAULT VALUES;
       CREATE TABLE zg (g int GENERATED ALWAYS AS (7) STORED); INSERT INTO zg DEFAULT VALUES;
       CREATE TABLE zf (); ALTER TABLE zf REPLICA IDENTITY FULL; INSERT INTO zf DEFAULT VALUES"
w_setup
points_from zc zg zf zn zu                                                                # 0
q $DB "INSERT INTO zc DEFAULT VALUES; INSERT INTO zg DEFAULT VALUES; DELETE FROM zf;
       CREATE TABLE zn (); INSERT INTO zn DEFAULT VALUES"; point                          # 1
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
# SET LOGGED starts such a table's history with the rows it has then (a rejoin of a user's
# publication: test_zero_columns_rejoin)
q $DB "CREATE UNLOGGED TABLE zu (); INSERT INTO zu DEFAULT VALUES; INSERT INTO zu DEFAULT VALUES"
q $DB "ALTER TABLE zu SET LOGGED"
q $DB "ALTER TABLE zc ADD COLUMN a int DEFAULT 5; INSERT INTO zc VALUES (6)"; point       # 2
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
# the slot lost (dropped, setup again): the gap revision reconciles them too (its read of a
# keyless table's rows was "SELECT , md5(...)": the worker stopped at it, fatal, at each start;
# and a relation version without a column was taken for one not in the history, so the gap
# inserted every row again)
q $DB "INSERT INTO zn DEFAULT VALUES; INSERT INTO zf DEFAULT VALUES; INSERT INTO zf DEFAULT VALUES;
       DELETE FROM zf WHERE ctid = (SELECT min(ctid) FROM zf)"
q $DB "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null
must "$TMP/setup2.out" "setup after the slot was dropped" W setup
point                                                                                     # 3
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
expect_eq "a gap revision" "$(q $DB "$H SELECT count(*) FROM revision WHERE actor_type = 'walrev' AND actor_id = 'gap'")" 1
expect_points_equal 17
expect_eq "the baselines are done" \
  "$(q $DB "$H SELECT string_agg(relname || ':' || state, ' ' ORDER BY relname) FROM backfill WHERE relname IN ('zc', 'zg', 'zf')")" \
  "zc:done zf:done zg:done"
expect_verify "verify passes"
pass "tables without a readable column are recorded row by row"
