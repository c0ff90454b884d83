#!/usr/bin/env bash
# Old values without the old row: two identical tables get the same changes,
# one under REPLICA IDENTITY FULL (the server sends every old value) and one
# under DEFAULT (old values come from the row cache, from batched read-ahead
# lookups, or from single lookups in the history store). The worker starts
# with a cold, small row cache, so most old images come from the store. Every
# attribute delta of the DEFAULT table must equal the FULL table's, and the
# run must have fetched images in batches. Batches are timed at 1 ms, so the
# timer also comes due inside revisions (a flush must wait for their end).
source "$(dirname "$0")/lib.sh"
source_db oldimg_src
WORK=$TEST_TMP
printf "[worker]\nrow_cache_mb = 1\n[history]\nbatch_max_ms = 1\n" >"$WORK/walrev.ini"
W() { "$WALREV_BIN" -c "$WORK/walrev.ini" --source "$SRC" --slot oldimg "$@"; }

for t in t_full t_def; do
  q $DB "CREATE TABLE $t (id int PRIMARY KEY, a int, b text, c numeric, d jsonb, big text);
         ALTER TABLE $t ALTER COLUMN big SET STORAGE EXTERNAL;
         INSERT INTO $t SELECT g, g, repeat(md5(g::text), 6), g / 7.0, jsonb_build_object('g', g),
                               CASE WHEN g % 100 = 0 THEN repeat('B', 5000) || g END
                        FROM generate_series(1, 6000) g;"
done
q $DB "ALTER TABLE t_full REPLICA IDENTITY FULL"
w_setup

# Changes made while no worker runs, so they are read back in a burst; the
# same statement runs on both tables in one transaction (one revision).
both() { echo "BEGIN; ${1//@/t_full}; ${1//@/t_def}; COMMIT;"; }
{
  for i in $(seq 1 400); do
    k=$(( (i * 7919) % 6000 + 1 ))
    both "UPDATE @ SET a = a + $i WHERE id = $k"
    both "UPDATE @ SET b = 'v$i', d = jsonb_set(d, '{n}', '$i') WHERE id = $(( (k * 31) % 6000 + 1 ))"
    [ $((i % 10)) = 0 ] && both "UPDATE @ SET c = c * 2 WHERE id BETWEEN $k AND $((k + 20))"
    [ $((i % 25)) = 0 ] && both "DELETE FROM @ WHERE id = $(( (k * 13) % 6000 + 1 ))"
    [ $((i % 40)) = 0 ] && both "UPDATE @ SET id = id + 100000 WHERE id = $(( (k * 17) % 6000 + 1 ))"
    [ $((i % 50)) = 0 ] && both "UPDATE @ SET a = -a WHERE id = $(( (k * 3) % 6000 + 1 )); UPDATE @ SET a = a - 1 WHERE id = $(( (k * 3) % 6000 + 1 ))"
    [ $((i % 100)) = 0 ] && both "UPDATE @ SET a = a + 1 WHERE id % 100 = 0"
  done
} | psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null
stop=$(current_lsn $DB)
W run --stop-lsn "$stop" >"$WORK/run.log" 2>&1 || { tail -20 "$WORK/run.log"; fail "walrev run"; }
stats=$(grep 'msg="stopped"' "$WORK/run.log")
echo "# $stats"
prefetched=$(sed -n 's/.* prefetched=\([0-9]*\).*/\1/p' <<<"$stats")
[ "${prefetched:-0}" -gt 100 ] || fail "old images were not fetched in batches: $stats"
pass "old images fetched in batches ($prefetched)"

deltas() {
  q $DB "SELECT d.revision_id, d.op, d.key, a.column_name, a.old_value, a.new_value, a.flags, d.old_unknown
         FROM walrev.attribute_delta a JOIN walrev.object_delta d USING (revision_id, seq)
         WHERE a.relid = '$1'::regclass AND d.revision_id > 1
         ORDER BY d.revision_id, d.key, a.col_id, a.old_value, a.new_value, d.seq"
}
full=$(deltas t_full)
def=$(deltas t_def)
[ "$(wc -l <<<"$full")" -gt 2000 ] || fail "too few deltas recorded: $(wc -l <<<"$full")"
expect_eq "DEFAULT table's attribute deltas equal the FULL table's ($(wc -l <<<"$full") rows)" "$def" "$full"
unknown=$(q $DB "SELECT count(*) FROM walrev.object_delta WHERE relid = 't_def'::regclass AND old_unknown")
expect_eq "no old image unknown" "$unknown" 0
expect_verify verify
$PSQL -d postgres -c "SELECT pg_drop_replication_slot('oldimg')" >/dev/null
