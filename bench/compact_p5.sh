#!/usr/bin/env bash
# compact_p5.sh — P5/Q work before and after `walrev compact`, counted: a
# store written by SQL in the sink's format (as bench/asof_bench.sh writes its
# object) with object key 1 of table obj at 10^6 versions, one revision each,
# and in each revision one more delta for one of 1,000 other keys in random
# order, so that the per-object index fills as a live stream's does; keyframes
# every 2,000 revisions. Database p5a holds it, p5b is its copy compacted by
# `walrev compact` (10^6 revisions fill partition 1). Then, for each command,
# the shared buffers its backend touched (pg_stat_database blks_hit +
# blks_read of the database around the CLI process: load does not move them)
# in three runs per database: blame and history --limit 100 of key 1, the
# history of key 500, log --actor over a day, attribute_delta by table and a
# minute (SQL), SELECT 1.
#
#   PGHOST=… PGPORT=… PGUSER=… bench/compact_p5.sh   (a cluster of yours; WALREV_BIN: default build-release)
# Drops and makes databases p5a and p5b there (about 5 minutes, 1 GB).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/store_fill.sh
source "$ROOT/bench/lib/store_fill.sh"
W=${WALREV_BIN:-$ROOT/build-release/worker/walrev}
LAST=1000000
base="host=${PGHOST:-127.0.0.1} port=${PGPORT:-5432} user=${PGUSER:-postgres}"
psql -XAtq "$base dbname=postgres" -c "DROP DATABASE IF EXISTS p5b" -c "DROP DATABASE IF EXISTS p5a" -c "CREATE DATABASE p5a"
P=(psql -XAtq -v ON_ERROR_STOP=1 "$base dbname=p5a")
store_sql walrev | "${P[@]}" >/dev/null
"${P[@]}" -c "CREATE TABLE public.obj (id integer PRIMARY KEY, v integer, w text)"
relid=$("${P[@]}" -c "SELECT 'public.obj'::regclass::oid")
"${P[@]}" >/dev/null <<SQL
SET synchronous_commit = off;
$(relation_version_sql walrev obj d)
INSERT INTO walrev.object_delta (revision_id, seq, relid, relversion, op, key, context_no, col_id, old_value, new_value,
                                 col_ids, old_values, new_values)
SELECT r, s, $relid, 1, op, key, 1, col_id, old_value, new_value, col_ids, old_values, new_values FROM (
  SELECT 1 AS r, k AS s, 'I'::"char" AS op, '["' || k || '"]' AS key, NULL::smallint AS col_id, NULL::text AS old_value,
         NULL::text AS new_value, '{1,2,3}'::smallint[] AS col_ids, NULL::text[] AS old_values,
         ARRAY[k::text, '0', 'w0'] AS new_values
  FROM generate_series(1, 1001) k
  UNION ALL
  SELECT r, 1, 'U', '["1"]', CASE WHEN r % 2 = 0 THEN 2 ELSE 3 END, 'old',
         CASE WHEN r % 2 = 0 THEN r::text ELSE 'w' || r END, NULL, NULL, NULL
  FROM generate_series(2, $LAST) r
  UNION ALL
  SELECT r, 2, 'U', '["' || (2 + (hashint8(r) & 1023) % 1000) || '"]', 2, 'old', r::text, NULL, NULL, NULL
  FROM generate_series(2, $LAST) r
) x ORDER BY r, s;
$(revisions_sql walrev $LAST)
SQL
"${P[@]}" -c "VACUUM ANALYZE walrev.object_delta, walrev.revision, walrev.revision_context" >/dev/null
"${P[@]}" >/dev/null <<SQL
SET synchronous_commit = off;
DO \$\$
DECLARE r bigint;
BEGIN
    FOR r IN SELECT g FROM generate_series(2000, $LAST, 2000) g LOOP
        WITH kf AS (INSERT INTO walrev.keyframe (relid, revision_id, n_rows) VALUES ($relid, r, 0) RETURNING id)
        INSERT INTO walrev.keyframe_row (keyframe_id, key, relversion, vals)
        SELECT kf.id, s.key, 1, s.vals FROM kf, walrev.snapshot_rows($relid, r) s;
    END LOOP;
END
\$\$;
INSERT INTO walrev.tracked_table (relid, live_rows, deltas_since_keyframe) VALUES ($relid, 1001, 0);
SQL
"${P[@]}" -c "VACUUM ANALYZE walrev.keyframe, walrev.keyframe_row" >/dev/null
psql -XAtq "$base dbname=postgres" -c "CREATE DATABASE p5b TEMPLATE p5a"
"$W" --source "$base dbname=p5b" compact

blks() { psql -XAtq "$base dbname=postgres" -c "SELECT blks_hit + blks_read FROM pg_stat_database WHERE datname = '$1'"; }
# buffers DB CMD...: the buffers DB's backends touched while CMD ran (its backend's stats are in once it exited)
buffers() { local db=$1 x y; shift; x=$(blks "$db"); "$@" >/dev/null 2>&1; sleep 0.3; y=$(blks "$db"); echo $((y - x)); }
ATTR="SELECT count(*) FROM walrev.attribute_delta d JOIN walrev.revision r ON r.id = d.revision_id
      WHERE d.relid = 'public.obj'::regclass AND r.commit_time >= '2026-01-05 00:00:00+00'
        AND r.commit_time < '2026-01-05 00:01:00+00'"
printf 'command\tbuffers, p5a (as written), 3 runs\tbuffers, p5b (compacted), 3 runs\n'
for k in blame histl histcold logactor attr select1; do
  line=$k
  for db in p5a p5b; do
    S="$base dbname=$db" vals=""
    for _ in 1 2 3; do
      case $k in
        blame) v=$(buffers $db "$W" --source "$S" blame --table obj --key 1 --format csv) ;;
        histl) v=$(buffers $db "$W" --source "$S" history --table obj --key 1 --limit 100 --format csv) ;;
        histcold) v=$(buffers $db "$W" --source "$S" history --table obj --key 500 --format csv) ;;
        logactor) v=$(buffers $db "$W" --source "$S" log --actor user:3 --since 1 --until 86400 --format csv) ;;
        attr) v=$(buffers $db psql -XAtq "$S" -c "$ATTR") ;;
        select1) v=$(buffers $db psql -XAtq "$S" -c "SELECT 1") ;;
      esac
      vals+="${vals:+ }$v"
    done
    line+=$'\t'"$vals"
  done
  echo "$line"
done
