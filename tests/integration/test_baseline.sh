#!/usr/bin/env bash
# The baseline: a database that already holds rows in several tables (with
# writes running while the baseline is taken) gets them recorded as the first
# revision, read in the slot's exported snapshot; baseline + stream then
# equals the live tables exactly, row for row. An interrupted baseline is
# taken again and says so.
source "$(dirname "$0")/lib.sh"
source_db baseline_src baseline

q $DB "CREATE TABLE customer (id int PRIMARY KEY, name text, joined date, note text);
       CREATE TABLE invoice (id bigint PRIMARY KEY, customer_id int REFERENCES customer, total numeric(12,2), paid bool, body text);
       CREATE TABLE event (at timestamptz, what text);  -- no key
       ALTER TABLE event REPLICA IDENTITY FULL;
       INSERT INTO customer SELECT g, 'name ' || g, date '2020-01-01' + g, CASE WHEN g % 3 = 0 THEN NULL WHEN g % 3 = 1 THEN '' ELSE E'tab\\there' END FROM generate_series(1, 3000) g;
       INSERT INTO invoice SELECT g, 1 + g % 3000, g * 1.25, g % 2 = 0, repeat('x', g % 50) FROM generate_series(1, 20000) g;
       INSERT INTO event SELECT timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute', 'e' || g FROM generate_series(1, 500) g;
       CREATE TABLE writes_during (id serial PRIMARY KEY, v int);"

# Writes while the baseline is taken: they must land either in the baseline
# or in the stream, never in both and never in neither.
( for i in $(seq 1 200); do
    echo "INSERT INTO writes_during (v) VALUES ($i); UPDATE customer SET note = 'during $i' WHERE id = $i;"
  done ) | psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null &
bg=$!
w_setup
wait $bg
grep -q "with a baseline of the existing rows" "$TEST_TMP/setup.out" || { cat "$TEST_TMP/setup.out"; fail "setup did not report the baseline"; }
pass "setup took the baseline while writes ran"

q $DB "UPDATE invoice SET paid = NOT paid WHERE id % 7 = 0;
       DELETE FROM invoice WHERE id % 11 = 0;
       INSERT INTO customer VALUES (5000, 'late', NULL, NULL);
       UPDATE event SET what = 'changed' WHERE what = 'e5';"
run_to_now "$TEST_TMP/run.log" --source "$SRC" --slot $SLOT

expect_eq "baseline is revision 1, operation snapshot, actor walrev:baseline" \
  "$(q $DB "$H SELECT id, actor_type || ':' || actor_id, n_snapshot > 0, n_insert FROM revision WHERE id = 1")" "1|walrev:baseline|t|0"

for t in customer invoice event writes_during; do
  order="ORDER BY 1, 2"
  want=$(q $DB "COPY (SELECT * FROM $t $order) TO STDOUT")
  got=$("$WALREV_BIN" --source "$SRC" snapshot --table "$t" 2>/dev/null | sort)
  want_sorted=$(printf '%s\n' "$want" | sort)
  expect_eq "baseline + stream equals the live table $t ($(printf '%s\n' "$want" | wc -l) rows)" "$got" "$want_sorted"
done

# An interrupted baseline: the slot exists, the store holds no checkpoint.
q $DB "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null
q $DB "SET client_min_messages = warning; DROP SCHEMA walrev CASCADE"
q $DB "SELECT pg_create_logical_replication_slot('$SLOT', 'pgoutput')" >/dev/null
must "$TEST_TMP/setup2.out" "setup after interruption" W setup
grep -q "interrupted" "$TEST_TMP/setup2.out" || { cat "$TEST_TMP/setup2.out"; fail "interruption not reported"; }
expect_eq "baseline retaken after an interruption" \
  "$(q $DB "$H SELECT n_snapshot FROM revision WHERE id = 1")" \
  "$(q $DB "SELECT (SELECT count(*) FROM customer) + (SELECT count(*) FROM invoice) + (SELECT count(*) FROM event) + (SELECT count(*) FROM writes_during)")"
q $DB "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null
