#!/usr/bin/env bash
# Retention across a baseline (issue 16): a table added to the publication
# later is recorded in chunks, one revision each; `walrev prune` may cut in
# the middle of those chunk revisions. The baseline record still counts all
# its rows, while only the chunks after the cut remain: verify must accept
# the kept tail of the job (and still catch a record that lies), and the
# table's snapshots at and after the cut equal the table.
source "$(dirname "$0")/lib.sh"
source_db prune_bf_src
source_conf prune_bf <<CONF
tables = public.base
[history]
partition_revisions = 2
[worker]
backfill_chunk_rows = 250
CONF
H="SET search_path = walrev;"

q $DB "CREATE TABLE base (id int PRIMARY KEY, v text); INSERT INTO base VALUES (1, 'b');
       CREATE TABLE late (id int PRIMARY KEY, v text); INSERT INTO late SELECT g, 'l' || g FROM generate_series(1, 3000) g;"
w_setup
worker_up -c "$TMP/walrev.conf"
on_exit kill "$wpid" 2>/dev/null
q $DB "ALTER PUBLICATION walrev ADD TABLE late"
late_done() { [ "$(q $DB "$H SELECT state FROM backfill WHERE relid = 'public.late'::regclass")" = done ]; }
wait_for 120 late_done || { tail -20 "$TMP/run.log"; fail "the baseline of late did not finish"; }
q $DB "UPDATE late SET v = 'changed' WHERE id = 3"
marker_catch_up base 120
kill "$wpid"
wait "$wpid" 2>/dev/null || true

CHUNKS=$(q $DB "$H SELECT string_agg(c.revision_id::text, ' ' ORDER BY c.revision_id) FROM revision_context c
                   WHERE c.actor_id = 'baseline' AND c.meta ? 'backfill'")
read -r -a REVS <<<"$CHUNKS"
NCH=${#REVS[@]}
expect_eq "the baseline of 3,000 rows in chunks of about 250: one revision per chunk, the record says 3,000 rows" \
  "$((NCH >= 6))|$(q $DB "$H SELECT chunks = $NCH, rows_recorded FROM backfill WHERE relid = 'public.late'::regclass")" "1|t|3000"
must "$TMP/verify0.out" "verify before pruning" W verify

# the cut: the first odd revision (a boundary: partitions of 2) after the
# second chunk revision, so that two chunks go and the others stay
CUT=$((REVS[1] + 1))
[ $((CUT % 2)) = 1 ] || CUT=$((CUT + 1))
[ "$CUT" -le "${REVS[3]}" ] || fail "the chunk revisions are not consecutive enough for the test: $CHUNKS"
q $DB "COPY (SELECT * FROM late) TO STDOUT" | LC_ALL=C sort >"$TMP/late.now"
must "$TMP/prune.out" "prune" W prune --before "$CUT" --apply
expect_eq "pruned in the middle of the baseline: chunk revisions before the cut gone, the rest kept" \
  "$(q $DB "$H SELECT min(id) FROM revision")|$(q $DB "$H SELECT count(*) > 0 AND count(*) < $NCH FROM revision_context WHERE actor_id = 'baseline' AND meta ? 'backfill'")" \
  "$CUT|t"
rc=0; W verify >"$TMP/verify1.out" 2>&1 || rc=$?
[ $rc = 0 ] || { cat "$TMP/verify1.out"; fail "verify after pruning in the middle of a baseline exited $rc"; }
pass "verify passes with the baseline's first chunks pruned"
W snapshot --table late 2>"$TMP/snap.err" | LC_ALL=C sort >"$TMP/late.snap" || { cat "$TMP/snap.err"; fail snapshot; }
cmp -s "$TMP/late.now" "$TMP/late.snap" || { diff "$TMP/late.now" "$TMP/late.snap" >&2; fail "snapshot of late after the prune"; }
pass "the snapshot of late equals the table after the prune"

# A record that claims fewer rows than the kept chunks hold still fails.
q $DB "$H UPDATE backfill SET rows_recorded = 5 WHERE relid = 'public.late'::regclass"
rc=0; W verify >"$TMP/verify2.out" 2>&1 || rc=$?
expect_eq "a baseline record claiming fewer rows than its kept chunks fails verify" \
  "$rc|$(grep -c "the baseline record of public.late says rows_recorded 5" "$TMP/verify2.out")" "1|1"
