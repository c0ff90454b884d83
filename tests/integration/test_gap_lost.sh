#!/usr/bin/env bash
# A slot invalidated by max_slot_wal_keep_size (wal_status lost) is never
# silent (issue 13.8): on a private cluster that keeps at most 1 MB of WAL for
# slots, the worker is stopped, rows change, enough WAL passes for a
# checkpoint to invalidate the slot; the next start records a gap revision of
# kind slot_lost (the slot is dropped and made anew), after which the history
# equals the table and the stream goes on.
source "$(dirname "$0")/lib.sh"
TMP=$TEST_TMP
C=$TMP/cluster
wpid=
on_exit "bash \"$WALREV_SOURCE_DIR/tests/support/pgcluster.sh\" stop \"$C\" >/dev/null 2>&1"
kill_at_exit 9 wpid # the last registered goes first
bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" start "$C" "max_slot_wal_keep_size = 1MB" >/dev/null \
  || fail "private cluster did not start"
export PGPORT=$(cat "$C/port")
DB=lost_src
q postgres "CREATE DATABASE $DB"
SRC=$(conninfo $DB)
SLOT=lostslot
W() { "$WALREV_BIN" --source "$SRC" --slot $SLOT "$@"; }
H="SET search_path = walrev;"
q $DB "CREATE TABLE t (id int PRIMARY KEY, v text);
       INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 20) g;"
q postgres "CREATE TABLE filler (x text)"
w_setup
worker_up --source "$SRC" --slot $SLOT
q $DB "UPDATE t SET v = 'seen' WHERE id = 1"
wait_for 30 q_is $DB "$H SELECT count(*) FROM object_delta WHERE relid = 'public.t'::regclass AND op = 'U'" 1 || true
worker_down

q $DB "UPDATE t SET v = 'lost' WHERE id = 2; DELETE FROM t WHERE id = 3; INSERT INTO t VALUES (21, 'new')"
# WAL past the slot's 1 MB (in another database): three segments and checkpoints
for _ in 1 2 3; do
  q postgres "INSERT INTO filler SELECT repeat(md5(g::text), 30) FROM generate_series(1, 20000) g; SELECT pg_switch_wal(); CHECKPOINT;" >/dev/null
done
expect_eq "the slot was invalidated" "$(q $DB "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '$SLOT'")" lost

worker_up --source "$SRC" --slot $SLOT
wait_alive 30 q_is $DB "$H SELECT count(*) FROM revision WHERE actor_type = 'walrev' AND actor_id = 'gap'" 1 || true
expect_eq "a gap revision of kind slot_lost, reconciling t" \
  "$(q $DB "$H SELECT r.meta->'gap'->>'kind', string_agg(d.op::text || d.key, ' ' ORDER BY d.key)
             FROM revision r JOIN object_delta d ON d.revision_id = r.id AND d.relid = 'public.t'::regclass
             WHERE r.actor_id = 'gap' GROUP BY 1")" 'slot_lost|U["2"] I["21"] D["3"]'
grep -q 'kind=slot_lost' "$TMP/run.log" || { cat "$TMP/run.log"; fail "the gap is not in the log"; }
expect_eq "the slot was made anew" "$(q $DB "SELECT wal_status <> 'lost' FROM pg_replication_slots WHERE slot_name = '$SLOT'")" t
q $DB "UPDATE t SET v = 'after' WHERE id = 4"
wait_for 30 q_is $DB "$H SELECT count(*) FROM object_delta_arrays WHERE relid = 'public.t'::regclass AND 'after' = ANY (new_values)" 1 || true
expect_like_table "the history of t equals the table" t "$(W snapshot --table t 2>/dev/null | sort)"
worker_down
