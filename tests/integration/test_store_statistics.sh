#!/usr/bin/env bash
# The store's partitioned tables get statistics (issue 16, Q): autovacuum
# analyzes their partitions, never them, and without statistics of their own
# a time window over attribute_delta joined to revision was planned as a
# probe of revision per delta. The worker's keyframe thread analyzes them
# (analyze_if_grown() in history.sql) after each keyframe,
# once object_delta's partitions hold at least 1 MiB and 4 times the bytes of
# the last time: here after setup's baseline, not again without growth, again
# once after the store grew 4 times (the policy called directly); and a time
# window is then not planned as a probe
# of revision per delta.
source "$(dirname "$0")/lib.sh"
source_db storestats storestats

q $DB "CREATE TABLE t (id int PRIMARY KEY, v text);
       INSERT INTO t SELECT g, 'value ' || g FROM generate_series(1, 20000) g;"
w_setup
# parents: rows of pg_statistic for the partitioned tables themselves (stainherit)
PARENTS="SELECT count(DISTINCT starelid) FROM pg_statistic WHERE stainherit AND starelid IN
           ('walrev.revision'::regclass, 'walrev.revision_context'::regclass, 'walrev.object_delta'::regclass)"
analyzed() { grep -c 'msg="history store analyzed"' "$1" || true; }

expect_eq "setup analyzed the store after its baseline of 20,000 rows (and its keyframe)" \
  "$(analyzed "$TEST_TMP/setup.out")" 1
expect_eq "the three partitioned tables have statistics of their own" "$(q $DB "$PARENTS")" 3
B1=$(q $DB "SELECT value FROM walrev.store_info WHERE key = 'analyzed_bytes'")
[ "${B1:-0}" -ge 1048576 ] || fail "store_info.analyzed_bytes is '$B1'"

q_at L2 "UPDATE t SET v = v || '.' WHERE id <= 10"
run_to "$L2" "$TEST_TMP/run2.log" --source "$SRC" --slot storestats
expect_eq "a run without growth does not analyze again" "$(analyzed "$TEST_TMP/run2.log")" 0

# the policy after growth (the worker calls it after a keyframe; a run's stop
# may cancel its keyframe): false below 4 times the bytes, then true, once
q $DB "UPDATE t SET v = v || '.'" >/dev/null
expect_eq "below 4 times the bytes of the last time: not analyzed" "$(q $DB "SELECT walrev.analyze_if_grown()")" f
q $DB "DO \$\$ BEGIN FOR i IN 1..9 LOOP UPDATE t SET v = v || '.'; END LOOP; END \$\$" >/dev/null
q_at L3 "UPDATE t SET v = v || '.'"
run_to "$L3" "$TEST_TMP/run3.log" --source "$SRC" --slot storestats
B3=$(q $DB "SELECT value FROM walrev.store_info WHERE key = 'analyzed_bytes'")
[ "$B3" = "$B1" ] || [ "$B3" -ge $((4 * B1)) ] || fail "analyzed_bytes $B3 after $B1"
[ "$B3" != "$B1" ] || expect_eq "grown 4 times: analyzed" "$(q $DB "SELECT walrev.analyze_if_grown()")" t
expect_eq "and not again right after" "$(q $DB "SELECT walrev.analyze_if_grown()")" f
B3=$(q $DB "SELECT value FROM walrev.store_info WHERE key = 'analyzed_bytes'")
[ "$B3" -ge $((4 * B1)) ] || fail "analyzed_bytes $B3 after the store grew 4 times from $B1"

# the one-minute window of the last revisions over attribute_delta: not a probe
# of revision per delta (an index condition on revision's id from the delta)
RELID=$(q $DB "SELECT 't'::regclass::oid")
PLAN=$(q $DB "EXPLAIN SELECT count(*) FROM walrev.attribute_delta ad JOIN walrev.revision r ON r.id = ad.revision_id
              WHERE ad.relid = $RELID AND r.commit_time BETWEEN now() - interval '1 minute' AND now()")
if echo "$PLAN" | grep -q "id = d.revision_id"; then echo "$PLAN" >&2; fail "the time window probes revision per delta"; fi
pass "a time window over attribute_delta does not probe revision per delta"
