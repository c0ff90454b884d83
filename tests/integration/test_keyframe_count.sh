#!/usr/bin/env bash
# A run to --stop-lsn takes the keyframes the rule asks for (keyframe_factor
# 1: one each time a table's deltas since its last keyframe exceed its live
# rows, or 1,000), as many in one-update transactions as in 100-row ones,
# even when the worker was behind the whole run (keyframes held) and stopped
# with them still queued. Issue 16 P6: before the stop took them, the count
# depended on how long the drain lasted (the bench's 100-row run kept 2 of
# 10, its one-update run 8), and the bytes per update of the two sizes could
# not be compared.
source "$(dirname "$0")/lib.sh"

ROWS=1000  # > 250 live rows: not a small table; threshold max(1 x 1000, 1000)
for PER in 1 100; do
  source_db "kfcount_$PER" "kfcount_$PER"
  q $DB "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL);
         INSERT INTO t SELECT g, 0, repeat('p', 40) FROM generate_series(1, $ROWS) g;"
  must "$TMP/setup_$PER.out" setup W setup
  R0=$(q $DB "SELECT max(id) FROM walrev.revision")
  K0=$(q $DB "SELECT count(*) FROM walrev.keyframe")
  # 5 rounds of one update per row: 5,000 deltas, PER per transaction
  q $DB "DO \$\$ BEGIN FOR r IN 1..5 LOOP FOR i IN 1..$ROWS LOOP
           UPDATE t SET v = v + 1 WHERE id = i;
           IF i % $PER = 0 THEN COMMIT; END IF;
         END LOOP; END LOOP; END \$\$" >/dev/null
  L=$(current_lsn $DB)
  # 20 MiB of WAL after the stop point: the worker is more than 16 MiB behind
  # the source throughout, so the keyframes wait until it stops
  q $DB "SELECT pg_logical_emit_message(false, 'kfcount_filler', repeat('f', 20 * 1024 * 1024))" >/dev/null
  run_to "$L" "$TMP/run_$PER.log" --source "$SRC" --slot "$SLOT"
  # each keyframe's revision, as an offset from the baseline's: one update per
  # transaction, one every 1,001 revisions; 100 per transaction, every 11
  GOT=$(q $DB "SELECT string_agg((revision_id - $R0)::text, ' ' ORDER BY revision_id)
               FROM walrev.keyframe WHERE id > $K0")
  if [ $PER = 1 ]; then WANT="1001 2002 3003 4004"; else WANT="11 22 33 44"; fi
  expect_eq "$PER update(s) per transaction: the keyframes the rule asks for, where it asks" "$GOT" "$WANT"
  expect_eq "$PER update(s) per transaction: each holds the table" \
    "$(q $DB "SELECT string_agg(n_rows::text, ' ') FROM walrev.keyframe WHERE id > $K0")" "$ROWS $ROWS $ROWS $ROWS"
done
pass "both transaction sizes: 4 keyframes of $ROWS rows for 5,000 deltas"
