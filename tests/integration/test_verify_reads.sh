#!/usr/bin/env bash
# walrev verify covers what replay reads (issue 14.4): a revision's actor
# columns, a context's parsed columns and a keyframe's rows are not hashed by
# the chain themselves, so changing them in the store once passed verify and
# snapshot/blame/log served the forgery. Each tamper below must make verify
# exit 1 naming the revision or keyframe; undone, verify passes again. The
# workload runs as a role with CONNECT only (and rights on its own table).
source "$(dirname "$0")/lib.sh"
source_db vreads_src vreads

q $DB "CREATE TABLE acct (id int PRIMARY KEY, owner text, balance int);"
w_setup
q postgres "DROP ROLE IF EXISTS vreads_app; CREATE ROLE vreads_app LOGIN;"
q $DB "GRANT USAGE ON SCHEMA walrev TO vreads_app; GRANT INSERT, UPDATE, SELECT ON acct TO vreads_app;"
A() { psql -X -q -v ON_ERROR_STOP=1 -At -U vreads_app -d $DB -c "$*" >/dev/null; }
A "BEGIN; SELECT walrev.context('{\"actor\":{\"type\":\"user\",\"id\":\"42\"},\"description\":\"open\",\"meta\":{\"ticket\":7}}');
   INSERT INTO acct SELECT g, 'owner' || g, 0 FROM generate_series(1, 10) g; COMMIT;"
# The worker runs while the workload does (keyframes are taken by a
# background thread, which a stop does not wait for). Two phases of 1500
# single-row updates each: a keyframe falls due in each (10 live rows, floor
# 250, factor 4).
"$WALREV_BIN" --source "$SRC" --slot vreads run 2>"$TMP/run.log" &
wpid=$!
kill_at_exit TERM wpid
wait_keyframes() {
  wait_for 60 q_is $DB "$H SELECT count(*) >= $1 FROM keyframe k WHERE relid = 'public.acct'::regclass" t && return 0
  cat "$TMP/run.log"; fail "no keyframe $1"
}
for phase in 1 2; do
  for t in $(seq 1 15); do
    A "BEGIN; SELECT walrev.context('{\"actor\":{\"type\":\"user\",\"id\":\"u$phase.$t\"}}');
       $(for i in $(seq 1 100); do printf 'UPDATE acct SET balance = balance + %d WHERE id = %d; ' "$i" $((1 + i % 10)); done) COMMIT;"
  done
  wait_keyframes $phase
done
worker_stop "$wpid" || { cat "$TMP/run.log"; fail "worker stop"; }
wpid=
expect_eq "keyframes were taken" "$(q $DB "$H SELECT count(*) >= 2 FROM keyframe WHERE relid = 'public.acct'::regclass")" "t"
OUT=$(W verify 2>&1) || { echo "$OUT"; fail "verify of the untouched history"; }
pass "verify of the untouched history: $OUT"

# tamper SQL, undo SQL, expected message part; verify passes again after the undo
check_tamper() {
  expect_tamper_found "$@"
  W verify >/dev/null 2>&1 || fail "$1: verify after the undo"
}

R=$(q $DB "$H SELECT min(revision_id) FROM revision_context WHERE actor_id = '42'")
check_tamper "revision.actor_id forged" \
  "UPDATE revision SET actor_id = 'mallory' WHERE id = $R" "UPDATE revision SET actor_id = '42' WHERE id = $R" \
  "history does not verify at revision $R: revision $R: its actor_id is not that of its first context"
check_tamper "revision and revision_context actor_id forged together" \
  "UPDATE revision SET actor_id = 'mallory' WHERE id = $R; UPDATE revision_context SET actor_id = 'mallory' WHERE revision_id = $R" \
  "UPDATE revision SET actor_id = '42' WHERE id = $R; UPDATE revision_context SET actor_id = '42' WHERE revision_id = $R" \
  "revision $R: context 1's actor_id is not what its raw message says"
check_tamper "revision_context.actor jsonb forged" \
  "UPDATE revision_context SET actor = '{\"type\":\"user\",\"id\":\"mallory\"}' WHERE revision_id = $R" \
  "UPDATE revision_context SET actor = '{\"type\":\"user\",\"id\":\"42\"}' WHERE revision_id = $R" \
  "revision $R: context 1's actor is not what its raw message says"
check_tamper "revision.meta forged" \
  "UPDATE revision SET meta = '{\"ticket\":8}' WHERE id = $R" "UPDATE revision SET meta = '{\"ticket\":7}' WHERE id = $R" \
  "revision $R: its meta is not that of its first context"
check_tamper "description forged in both tables" \
  "UPDATE revision SET description = 'x' WHERE id = $R; UPDATE revision_context SET description = 'x' WHERE revision_id = $R" \
  "UPDATE revision SET description = 'open' WHERE id = $R; UPDATE revision_context SET description = 'open' WHERE revision_id = $R" \
  "context 1's description is not what its raw message says"
check_tamper "raw message forged (the chain)" \
  "UPDATE revision_context SET raw = raw || ' ' WHERE revision_id = $R" \
  "UPDATE revision_context SET raw = left(raw, -1) WHERE revision_id = $R" \
  "history does not verify at revision $R: revision $R: stored checksum"

# acct_keyframe max|min: the newest or oldest keyframe of public.acct, its id in KF, its revision in KR.
acct_keyframe() {
  IFS='|' read -r KF KR <<<"$(q $DB "$H SELECT id, revision_id FROM keyframe
                                  WHERE id = (SELECT $1(id) FROM keyframe WHERE relid = 'public.acct'::regclass)")"
}
acct_keyframe max
OLD=$(q $DB "$H SELECT vals[2] FROM keyframe_row WHERE keyframe_id = $KF AND key = '[\"3\"]'")
check_tamper "keyframe_row vals[2] forged" \
  "UPDATE keyframe_row SET vals[2] = 'TAMPERED' WHERE keyframe_id = $KF AND key = '[\"3\"]'" \
  "UPDATE keyframe_row SET vals[2] = '$OLD' WHERE keyframe_id = $KF AND key = '[\"3\"]'" \
  "history does not verify at revision $KR: keyframe $KF of public.acct at revision $KR: the row of key [\"3\"] differs from what the deltas give"
acct_keyframe min
check_tamper "a keyframe row moved to another key" \
  "UPDATE keyframe_row SET key = '[\"55\"]' WHERE keyframe_id = $KF AND key = '[\"5\"]'" \
  "UPDATE keyframe_row SET key = '[\"5\"]' WHERE keyframe_id = $KF AND key = '[\"55\"]'" \
  "keyframe $KF of public.acct at revision $KR: the row of key [\"5\"] differs"
check_tamper "keyframe n_rows forged" \
  "UPDATE keyframe SET n_rows = n_rows + 1 WHERE id = $KF" "UPDATE keyframe SET n_rows = n_rows - 1 WHERE id = $KF" \
  "keyframe $KF of public.acct at revision $KR: n_rows 11 but 10 rows"

# A keyframe across a key change (taken through snapshot_rows(), rows having
# moved between keys) is checked against snapshot_rows() too, its rows read
# from its chunks as every other keyframe's: untouched it verifies, forged at
# the moved row it does not.
acct_keyframe max
PREV=$KF
q_at END "UPDATE acct SET id = 11 WHERE id = 1;
          $(for i in $(seq 1 300); do printf 'UPDATE acct SET balance = balance + 1 WHERE id = %d; ' $((2 + i % 9)); done)"
W run --stop-lsn "$END" >"$TMP/run_move.log" 2>&1 || { cat "$TMP/run_move.log"; fail "run past the key change"; }
acct_keyframe max
[ "$KF" -gt "$PREV" ] || fail "no keyframe after the key change"
OUT=$(W verify 2>&1) || { echo "$OUT"; fail "verify with the keyframe across the key change"; }
pass "verify with the keyframe across the key change: $OUT"
check_tamper "the moved row of the keyframe across the key change forged" \
  "UPDATE keyframe_row SET vals[2] = 'TAMPERED' WHERE keyframe_id = $KF AND key = '[\"11\"]'" \
  "UPDATE keyframe_row SET vals[2] = 'owner1' WHERE keyframe_id = $KF AND key = '[\"11\"]'" \
  "keyframe $KF of public.acct at revision $KR: the row of key [\"11\"] differs from what the deltas give"
