#!/usr/bin/env bash
# The baseline serves as a keyframe (issue 16, P5): `walrev setup` records a
# keyframe as of the baseline revision for every table of more than 250 rows
# (and none for a smaller one), before it returns, so a snapshot right after
# setup starts from it instead of folding every baseline row; the keyframe is
# exact (verify derives it again, and catches it forged) and later keyframes
# follow the usual ratio.
source "$(dirname "$0")/lib.sh"
source_db bkf_src bkf

q $DB "CREATE TABLE big (id int PRIMARY KEY, v text, n int);
       INSERT INTO big SELECT g, 'v' || g, g % 7 FROM generate_series(1, 1000) g;
       CREATE TABLE small (id int PRIMARY KEY, v text);
       INSERT INTO small SELECT g, 's' || g FROM generate_series(1, 20) g;"
w_setup
grep -q 'msg="baseline keyframes taken"' "$TEST_TMP/setup.out" || { cat "$TEST_TMP/setup.out"; fail "setup did not wait for the baseline's keyframes"; }
BREV=$(q $DB "$H SELECT max(id) FROM revision")
expect_eq "keyframe of the big table at the baseline" \
  "$(q $DB "$H SELECT revision_id || ':' || n_rows FROM keyframe WHERE relid = 'public.big'::regclass")" "$BREV:1000"
expect_eq "its rows" "$(q $DB "$H SELECT count(*) FROM keyframe_row kr JOIN keyframe k ON k.id = kr.keyframe_id
                                WHERE k.relid = 'public.big'::regclass")" "1000"
expect_eq "no keyframe of the small table" \
  "$(q $DB "$H SELECT count(*) FROM keyframe WHERE relid = 'public.small'::regclass")" "0"
expect_eq "tracked_table counts what the keyframe covers" \
  "$(q $DB "$H SELECT deltas_since_keyframe || ':' || live_rows || ':' || (last_keyframe_id IS NOT NULL)
             FROM tracked_table WHERE relid = 'public.big'::regclass")" "0:1000:true"

# The snapshot right after setup equals the table (sorted: a snapshot is in key order).
snap_eq() {
  local what=$1 t=$2
  local a b
  a=$(W snapshot --table "$t" | sort | md5sum)
  b=$($PSQL -d $DB -c "COPY (SELECT * FROM $t) TO STDOUT" | sort | md5sum)
  expect_eq "$what" "$a" "$b"
}
snap_eq "snapshot of big right after setup" big
snap_eq "snapshot of small right after setup" small

# Changes after it, and verify of everything, the baseline keyframe included.
q_at END "UPDATE big SET n = n + 1 WHERE id % 3 = 0; DELETE FROM big WHERE id > 990;"
must "$TEST_TMP/run.log" run "$WALREV_BIN" --source "$SRC" --slot bkf run --stop-lsn "$END"
snap_eq "snapshot of big after the changes" big
expect_eq "still one keyframe of big (the ratio is not reached)" \
  "$(q $DB "$H SELECT count(*) FROM keyframe WHERE relid = 'public.big'::regclass")" "1"
OUT=$(W verify 2>&1) || { echo "$OUT"; fail "verify"; }
pass "verify: $OUT"
# A keyframe forged at the baseline is caught like any other.
KF=$(q $DB "$H SELECT id FROM keyframe WHERE relid = 'public.big'::regclass")
q $DB "$H UPDATE keyframe_row SET vals[2] = 'forged' WHERE keyframe_id = $KF AND key = '[\"5\"]'"
rc=0; OUT=$(W verify 2>&1) || rc=$?
expect_eq "verify of a forged baseline keyframe exits 1" "$rc" "1"
case "$OUT" in *"keyframe $KF of public.big"*) pass "verify names it: $OUT" ;; *) echo "$OUT"; fail "verify message" ;; esac
