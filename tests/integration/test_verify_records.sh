#!/usr/bin/env bash
# walrev verify covers the baseline (backfill) and gap records (issue 14.4):
# the backfill table's counters for a table baselined in chunks must be what
# its chunk revisions say (their walrev:baseline contexts and snapshot rows,
# which the chain covers), and a gap revision's record (its meta.gap, in the
# revision and its context) is what its hashed context says. Each tamper must
# make verify exit 1 naming the revision; undone, verify passes again.
source "$(dirname "$0")/lib.sh"
source_db vrec_src vrec
wpid=
kill_at_exit 9 wpid
late_tables_conf 250
q $DB "CREATE TABLE base (id int PRIMARY KEY, v text);
       INSERT INTO base SELECT g, 'b' || g FROM generate_series(1, 10) g;
       CREATE TABLE late_t (id int PRIMARY KEY, v text);
       INSERT INTO late_t SELECT g, repeat('v', 200) || g FROM generate_series(1, 3000) g;"
w_setup

start_worker() {
  "$WALREV_BIN" -c "$TMP/walrev.conf" --source "$SRC" --slot $SLOT run 2>>"$TMP/run.log" &
  wpid=$!
}
stop_worker() { kill -TERM "$wpid"; wait "$wpid" || { tail -20 "$TMP/run.log"; fail "the worker did not stop cleanly"; }; wpid=; }
catch_up() { marker_catch_up base 600; }

# A table joins the publication: its 3000 rows are recorded in chunks (of about 250 rows).
start_worker
q $DB "ALTER PUBLICATION walrev ADD TABLE late_t"
for _ in $(seq 1 600); do
  [ "$(q $DB "$H SELECT coalesce((SELECT state FROM backfill WHERE relid = 'public.late_t'::regclass), '')")" = done ] && break
  sleep 0.1
done
catch_up
stop_worker
CHUNKS=$(q $DB "$H SELECT count(*) FROM revision_context WHERE actor_type = 'walrev'
                 AND (meta->'backfill'->>'relid')::oid = 'public.late_t'::regclass")
[ "$CHUNKS" -gt 1 ] || fail "late_t was baselined in $CHUNKS chunks, expected several"
expect_eq "the backfill row of late_t" \
  "$(q $DB "$H SELECT state, chunks, rows_read, rows_recorded FROM backfill WHERE relid = 'public.late_t'::regclass")" \
  "done|$CHUNKS|3000|3000"
LAST_CHUNK=$(q $DB "$H SELECT max(revision_id) FROM revision_context WHERE actor_type = 'walrev'
                     AND (meta->'backfill'->>'relid')::oid = 'public.late_t'::regclass")

# A gap: the slot advanced past a transaction the worker never saw.
q $DB "UPDATE base SET v = 'unseen' WHERE id = 2"
wait_for 30 slot_idle || fail "the slot stayed active"
q $DB "SELECT pg_replication_slot_advance('$SLOT', pg_current_wal_lsn())" >/dev/null
start_worker
catch_up
stop_worker
GAP=$(q $DB "$H SELECT id FROM revision WHERE actor_type = 'walrev' AND actor_id = 'gap'")
[ -n "$GAP" ] || { tail -20 "$TMP/run.log"; fail "no gap revision"; }

OUT=$(W verify 2>&1) || { echo "$OUT"; fail "verify of the untouched history"; }
pass "verify of the untouched history: $(echo "$OUT" | tail -1)"

# tamper SQL, undo SQL, expected message part; verify passes again after the undo
check_tamper() {
  expect_tamper_found "$@"
  W verify >/dev/null 2>&1 || fail "$1: verify after the undo"
}
LT="WHERE relid = 'public.late_t'::regclass"
check_tamper "backfill rows_recorded forged" \
  "UPDATE backfill SET rows_recorded = 2999 $LT" "UPDATE backfill SET rows_recorded = 3000 $LT" \
  "revision $LAST_CHUNK: the baseline record of public.late_t says rows_recorded 2999, its chunk revisions 3000"
check_tamper "backfill chunks forged" \
  "UPDATE backfill SET chunks = 1 $LT" "UPDATE backfill SET chunks = $CHUNKS $LT" \
  "revision $LAST_CHUNK: the baseline record of public.late_t says chunks 1, its last chunk revision is chunk $CHUNKS"
check_tamper "backfill rows_read forged" \
  "UPDATE backfill SET rows_read = 1 $LT" "UPDATE backfill SET rows_read = 3000 $LT" \
  "revision $LAST_CHUNK: the baseline record of public.late_t says rows_read 1, fewer than its last chunk revision read"
check_tamper "setup's baseline record forged (rows_recorded of base)" \
  "UPDATE backfill SET rows_recorded = 11 WHERE relid = 'public.base'::regclass" \
  "UPDATE backfill SET rows_recorded = 10 WHERE relid = 'public.base'::regclass" \
  "revision 1: the baseline record of public.base says rows_recorded 11, the baseline's snapshot rows of it 10"
check_tamper "a backfill record for a table that has no chunk revision" \
  "INSERT INTO backfill (relid, nspname, relname, state, chunks, rows_read, rows_recorded)
     VALUES (4242, 'public', 'ghost', 'done', 2, 10, 10)" \
  "DELETE FROM backfill WHERE relid = 4242" \
  "the baseline record of public.ghost says 10 rows recorded in 2 chunks, but no chunk revision of relid 4242 exists"
# (the state column is not derived: a chunk revision does not say it was the last)
check_tamper "gap record forged in the revision (meta.gap.from_lsn)" \
  "UPDATE revision SET meta = jsonb_set(meta, '{gap,from_lsn}', '\"0/1\"') WHERE id = $GAP" \
  "UPDATE revision r SET meta = c.meta FROM revision_context c WHERE c.revision_id = r.id AND c.context_no = 1 AND r.id = $GAP" \
  "revision $GAP: its meta is not that of its first context"
check_tamper "gap record forged in the revision and its context" \
  "UPDATE revision SET meta = jsonb_set(meta, '{gap,kind}', '\"slot_missing\"') WHERE id = $GAP;
   UPDATE revision_context SET meta = jsonb_set(meta, '{gap,kind}', '\"slot_missing\"') WHERE revision_id = $GAP" \
  "UPDATE revision_context SET meta = jsonb_set(meta, '{gap,kind}', '\"slot_advanced\"') WHERE revision_id = $GAP;
   UPDATE revision r SET meta = c.meta FROM revision_context c WHERE c.revision_id = r.id AND c.context_no = 1 AND r.id = $GAP" \
  "revision $GAP: context 1's meta is not what its raw message says"
check_tamper "gap revision's counts forged (the chain)" \
  "UPDATE revision SET n_update = n_update + 1 WHERE id = $GAP" \
  "UPDATE revision SET n_update = n_update - 1 WHERE id = $GAP" \
  "revision $GAP: stored checksum"
