#!/usr/bin/env bash
# The CLI's fold (replay/fold.c) reads the deltas and the keyframe in batches
# of tuples whose keys it looks up together (issue 16, P5): a batch spans
# many COPY messages, the reader's buffer grows and moves between them, keys
# repeat inside a batch, and the hash may be given up (--memory) in the middle
# of one. Every snapshot here, at the newest revision and at points between,
# with the hash and past its memory, equals the table as it was, row for row.
source "$(dirname "$0")/lib.sh"
source_db snb_src
# no keyframe but the baseline's: every point below folds it and all deltas since
source_conf snb <<'EOF'
[history]
keyframe_factor = 1000
EOF

# 3,000 rows (more than 250: the baseline is a keyframe), NULLs, and values of
# 2-20 KiB on every 50th row, so a batch of 64 rows outgrows the reader's buffer.
q $DB "CREATE TABLE t (id int PRIMARY KEY, a int, b text, c text);
       INSERT INTO t SELECT g, CASE WHEN g % 11 = 0 THEN NULL ELSE g END, 'b' || g,
                            CASE WHEN g % 50 = 0 THEN repeat(md5(g::text), 64 + g % 512) END
       FROM generate_series(1, 3000) g;
       CREATE TABLE copy_at (step int, id int, a int, b text, c text);"
w_setup
expect_eq "the baseline is a keyframe of t" \
  "$(q $DB "$H SELECT count(*) FROM keyframe WHERE relid = 'public.t'::regclass")" "1"

# The table as of each step, kept beside it; the step's revision comes from the store after the run.
step() { q $DB "INSERT INTO copy_at SELECT $1, * FROM t"; q $DB "SELECT pg_current_wal_lsn()"; }
LSN1=$(q $DB "UPDATE t SET a = coalesce(a, 0) + 1 WHERE id % 2 = 0;
              UPDATE t SET c = repeat('x', 1000 + id % 3000) WHERE id % 5 = 0;
              DELETE FROM t WHERE id % 7 = 0;" >/dev/null; step 1)
LSN2=$(q $DB "INSERT INTO t SELECT g, g, NULL, 'new' FROM generate_series(3001, 3500) g;
              UPDATE t SET a = a * 2, b = NULL WHERE id % 4 = 0;
              UPDATE t SET b = 'again ' || id WHERE id % 4 = 0;
              DELETE FROM t WHERE id % 13 = 0;
              INSERT INTO t SELECT g, -g, 'back', NULL FROM generate_series(13, 3000, 13) g;" >/dev/null; step 2)
q_at END "SELECT 1" >/dev/null
must "$TEST_TMP/run.log" run W run --stop-lsn "$END"

# revision of a step: the newest whose commit is at or before its LSN
rev_at() { q $DB "$H SELECT max(id) FROM revision WHERE commit_lsn <= '$1'"; }
REV1=$(rev_at "$LSN1")
REV2=$(rev_at "$LSN2")
expect_eq "one keyframe of t, the baseline's" \
  "$(q $DB "$H SELECT count(*) FROM keyframe WHERE relid = 'public.t'::regclass")" "1"
expect_eq "deltas after it at step 1" \
  "$(q $DB "$H SELECT count(*) > 2000 FROM object_delta WHERE relid = 'public.t'::regclass
            AND revision_id > (SELECT revision_id FROM keyframe WHERE relid = 'public.t'::regclass)
            AND revision_id <= $REV1")" "t"

snap_eq() {
  local what=$1 step=$2 at=$3 memory=$4 a b
  a=$(W snapshot --table t --at "$at" --memory "$memory" | sort | md5sum)
  b=$($PSQL -d $DB -c "COPY (SELECT id, a, b, c FROM copy_at WHERE step = $step) TO STDOUT" | sort | md5sum)
  expect_eq "$what" "$a" "$b"
}
for m in 256 1; do
  snap_eq "step 1 (revision $REV1), --memory $m" 1 "$REV1" $m
  snap_eq "step 2 (revision $REV2), --memory $m" 2 "$REV2" $m
done
# --memory 1: the touched keys' values (about 2 MiB of them) outgrow it in the middle of the deltas
a=$(W snapshot --table t --format csv --memory 256 | sort | md5sum)
b=$(W snapshot --table t --format csv --memory 1 | sort | md5sum)
expect_eq "csv, the hash and past its memory" "$a" "$b"
