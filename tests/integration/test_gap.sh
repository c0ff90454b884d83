#!/usr/bin/env bash
# A slot that no longer continues the history is never silent (issue 13.8).
# Dropped and made again by `walrev setup`, or moved by
# pg_replication_slot_advance past a transaction the worker never saw: a gap
# revision (actor walrev:gap, meta.gap with both positions) reconciles the
# history with the tables: rows the table lost become deletes, changed rows
# updates (old values unknown), new rows inserts; a table without a key is
# matched as a multiset: only the copies one side has beyond the other are
# deleted or inserted (equal rows stay under their identities). Snapshots then equal the tables, `walrev log`
# shows the gap, `walrev verify` reports it and still passes, the file sink
# carries it, and the stream goes on from the new slot.
source "$(dirname "$0")/lib.sh"
source_db gap_src
SLOT=gapslot
wpid=
kill_at_exit 9 wpid

cat >"$TMP/walrev.conf" <<EOF2
[file]
path = $TMP/stream.msgpack
EOF2
W() { "$WALREV_BIN" -c "$TMP/walrev.conf" --source "$SRC" --slot $SLOT "$@"; }
q $DB "CREATE TABLE t (id int PRIMARY KEY, v text);
       INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 10) g;
       CREATE TABLE k (a int, b text);
       ALTER TABLE k REPLICA IDENTITY FULL;
       INSERT INTO k VALUES (1, 'x'), (2, 'y'), (3, 'z'), (5, 'dup'), (5, 'dup'), (5, 'dup');"
w_setup

start_worker() { worker_up -c "$TMP/walrev.conf" --source "$SRC" --slot $SLOT; }
catch_up() { marker_catch_up t 300; }
expect_exact() { expect_like_table "the history of $1 equals the table" "$1" "$(W snapshot --table "$1" 2>/dev/null | sort)"; }
# The walsender lets go of the slot a moment after the worker exits; dropping
# or advancing an active slot fails, and the test would then see no gap at all.
wait_slot_idle() { wait_for 30 slot_idle || fail "the slot $SLOT stayed active after the worker stopped"; }
gaps() { q $DB "$H SELECT count(*) FROM revision WHERE actor_type = 'walrev' AND actor_id = 'gap'"; }

start_worker
q $DB "UPDATE t SET v = 'seen' WHERE id = 5"
catch_up
worker_down
expect_eq "no gap while the slot continues the history" "$(gaps)" 0

# --- 1. the slot is dropped while changes happen; walrev setup makes it again ---
q $DB "UPDATE t SET v = 'x' WHERE id = 2"
# a point between the gap's unseen changes: no state the history holds
IN_GAP=$(q $DB "SELECT pg_current_wal_lsn()")
IN_GAP_T=$(q $DB "SELECT now()")
q $DB "DELETE FROM t WHERE id = 3; INSERT INTO t VALUES (11, 'new');
       DELETE FROM k WHERE a = 2; INSERT INTO k VALUES (4, 'w');
       DELETE FROM k WHERE ctid = (SELECT ctid FROM k WHERE a = 5 LIMIT 1); INSERT INTO k VALUES (1, 'x');"
wait_slot_idle
q $DB "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null
must "$TMP/setup2.out" "setup after the slot was dropped" W setup
grep -q 'msg="gap: the replication slot no longer continues the history' "$TMP/setup2.out" \
  || { cat "$TMP/setup2.out"; fail "setup did not say it found a gap"; }
grep -q 'kind=slot_missing' "$TMP/setup2.out" || { cat "$TMP/setup2.out"; fail "not named a missing slot"; }
expect_eq "one gap revision" "$(gaps)" 1
GAP=$(q $DB "$H SELECT id FROM revision WHERE actor_id = 'gap'")
expect_eq "the gap revision: the changes it reconciles, and both positions" \
  "$(q $DB "$H SELECT n_insert, n_update, n_delete, n_truncate, n_snapshot, meta->'gap'->>'kind',
               (meta->'gap'->>'from_lsn')::pg_lsn < (meta->'gap'->>'to_lsn')::pg_lsn,
               (meta->'gap'->>'to_lsn')::pg_lsn = commit_lsn, meta->'gap'->'slot_lsn'
             FROM revision WHERE id = $GAP")" "3|1|3|0|0|slot_missing|t|t|null"
expect_eq "the gap's deltas of k (no key): one of the three equal rows deleted, (2,y) deleted, (1,x) and (4,w) inserted" \
  "$(q $DB "$H SELECT string_agg(op::text || coalesce(old_values[1], new_values[1], '?') || coalesce(new_values[2], ''), ' '
                                  ORDER BY op, new_values[1]) FROM object_delta_arrays
             WHERE revision_id = $GAP AND relid = 'public.k'::regclass")" 'D? D? I1x I4w'
expect_eq "the deleted identities: one of the (5,dup) rows and the (2,y) row" \
  "$(q $DB "$H SELECT string_agg(s.new_values[1] || s.new_values[2], ' ' ORDER BY s.new_values[1])
             FROM object_delta_arrays s JOIN object_delta d ON d.relid = s.relid AND d.key = s.key
             WHERE d.revision_id = $GAP AND d.op = 'D' AND d.relid = 'public.k'::regclass AND s.op = 'S'")" '2y 5dup'
expect_eq "the gap's deltas of t: key 11 inserted, 2 updated with its old value unknown, 3 deleted" \
  "$(q $DB "$H SELECT string_agg(op::text || key || ':' || old_unknown, ' ' ORDER BY key) FROM object_delta
             WHERE revision_id = $GAP AND relid = 'public.t'::regclass")" 'I["11"]:false U["2"]:true D["3"]:true'
expect_eq "the updated column's old value is flagged unknown" \
  "$(q $DB "$H SELECT new_values[1], attr_flags[1] & 2 FROM object_delta_arrays
             WHERE revision_id = $GAP AND relid = 'public.t'::regclass AND op = 'U'")" "x|2"
expect_exact t
expect_exact k
for at in "$IN_GAP" "$IN_GAP_T"; do
  expect_refused "a snapshot at $at, inside the gap" "falls inside gap revision $GAP: changes between .* were never seen" \
    snapshot --table t --at "$at"
done
# a range's end or a listing's start inside the gap lists what the history holds
must "$TMP/log_since.out" "walrev log --since a time inside the gap" W log --since "$IN_GAP_T"
grep -Eq "^ +$GAP \|" "$TMP/log_since.out" || { cat "$TMP/log_since.out"; fail "log --since inside the gap does not list the gap"; }
must "$TMP/show_gap.out" "walrev show at an LSN inside the gap" W show "$IN_GAP"
pass "log --since and show take a point inside the gap as a bound"
FROM_LSN=$(q $DB "$H SELECT meta->'gap'->>'from_lsn' FROM revision WHERE id = $GAP")
expect_eq "a snapshot at the gap's from_lsn (the history is exact up to it): id 3 there, 2 as last seen" \
  "$(W snapshot --table t --at "$FROM_LSN" 2>/dev/null | grep -E '^(2|3)\b' | sort | tr '\t\n' ': ')" "2:v2 3:v3 "
must "$TMP/log.out" "walrev log" W log
grep -Eq "^ +$GAP \|.*\| walrev +\| gap +\| gap: changes between " "$TMP/log.out" || { cat "$TMP/log.out"; fail "walrev log does not show the gap"; }
pass "walrev log shows the gap revision"
rc=0; W verify >"$TMP/verify.out" 2>&1 || rc=$?
expect_eq "walrev verify passes with a gap" "$rc" 0
grep -Eq "^gap: revision $GAP: changes between [0-9A-F]+/[0-9A-F]+ and [0-9A-F]+/[0-9A-F]+ were not seen \(slot_missing\)" "$TMP/verify.out" \
  || { cat "$TMP/verify.out"; fail "verify does not report the gap"; }
grep -q "checksum chain holds" "$TMP/verify.out" || { cat "$TMP/verify.out"; fail "verify does not pass"; }

start_worker
q $DB "UPDATE t SET v = 'after' WHERE id = 2"
catch_up
expect_eq "after the gap the stream goes on with exact old values" \
  "$(q $DB "$H SELECT old_values[1], old_unknown FROM object_delta_arrays WHERE relid = 'public.t'::regclass
             AND key = '[\"2\"]' ORDER BY revision_id DESC LIMIT 1")" "x|f"
rc=0; W verify --against-source >"$TMP/vs.out" 2>&1 || rc=$?
[ $rc = 0 ] || { cat "$TMP/vs.out"; fail "verify --against-source after the gap exited $rc"; }
pass "verify --against-source finds the history equal to the tables after the gap"
worker_down

# --- 2. the slot is advanced past a transaction the worker never saw ---
q $DB "UPDATE t SET v = 'skipped' WHERE id = 4; DELETE FROM t WHERE id = 6;"
wait_slot_idle
q $DB "SELECT pg_replication_slot_advance('$SLOT', pg_current_wal_lsn())" >/dev/null
start_worker
# the gap first: a change made before the worker has made the slot anew is in the gap too
gaps_are() { [ "$(gaps)" = "$1" ]; }
wait_for 30 gaps_are 2 || true
expect_eq "a second gap revision" "$(gaps)" 2
catch_up
GAP2=$(q $DB "$H SELECT max(id) FROM revision WHERE actor_id = 'gap'")
expect_eq "the advanced slot's gap deltas" \
  "$(q $DB "$H SELECT string_agg(op::text || relid::regclass::text || key, ' ' ORDER BY relid, key) FROM object_delta WHERE revision_id = $GAP2")" \
  'Upublic.t["4"] Dpublic.t["6"]'
expect_eq "the advanced slot's gap: what it skipped, and where the slot stood" \
  "$(q $DB "$H SELECT meta->'gap'->>'kind', n_update, n_delete, n_insert,
               (meta->'gap'->>'slot_lsn')::pg_lsn > (meta->'gap'->>'from_lsn')::pg_lsn
             FROM revision WHERE id = $GAP2")" "slot_advanced|1|1|0|t"
grep -q 'kind=slot_advanced' "$TMP/run.log" || { tail -20 "$TMP/run.log"; fail "the worker did not log the gap"; }
expect_exact t
expect_exact k

# --- 3. no false gap: a worker idle while other databases write WAL, killed, restarted ---
q postgres "DROP TABLE IF EXISTS gap_noise; CREATE TABLE gap_noise (id int); INSERT INTO gap_noise SELECT generate_series(1, 5000)"
TARGET=$(current_lsn postgres)
wait_for 15 q_is $DB "SELECT confirmed_flush_lsn >= '$TARGET' FROM pg_replication_slots WHERE slot_name = '$SLOT'" t || true
expect_eq "the idle slot is confirmed past other databases' WAL" \
  "$(q $DB "SELECT confirmed_flush_lsn >= '$TARGET' FROM pg_replication_slots WHERE slot_name = '$SLOT'")" t
expect_eq "the history store recorded that position first" \
  "$(q $DB "$H SELECT end_lsn >= (SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$SLOT')
             FROM checkpoint WHERE slot_name = '$SLOT'")" t
worker_kill "$wpid"; wpid=
start_worker
catch_up
expect_eq "no gap after a restart of a worker that confirmed idle WAL" "$(gaps)" 2
worker_down

# --- the file sink carries the gap revision with its changes ---
/usr/bin/python3 - "$TMP/stream.msgpack" >"$TMP/file.out" <<'PY'
import sys, msgpack
with open(sys.argv[1], 'rb') as f:
    for m in msgpack.Unpacker(f, raw=False):
        if m.get('type') == 'revision' and (m.get('actor') or {}).get('id') == 'gap':
            print('revision', m['revision']['id'])
        c = m.get('context') or {}
        if m.get('type') == 'delta' and c.get('meta_json') and '"gap"' in c['meta_json']:
            t = m['table']['name']
            print('delta', t, m['op'], m.get('key') if t == 't' else '')
PY
expect_eq "the file sink holds both gap revisions and their changes" "$(sort "$TMP/file.out" | uniq -c | awk '{$1=$1};1' | sort)" \
"$(printf '%s\n' "2 delta k insert" "2 delta k delete" "1 delta t delete [\"3\"]" "1 delta t delete [\"6\"]" \
  "1 delta t insert [\"11\"]" "1 delta t update [\"2\"]" "1 delta t update [\"4\"]" "1 revision $GAP" "1 revision $GAP2" | sort)"
