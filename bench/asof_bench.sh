#!/usr/bin/env bash
# asof_bench.sh — how long `walrev snapshot` takes as history grows: a table of
# N rows whose history is 1x, 10x and 100x its size (written into the history
# store in bulk, set-based, with keyframes where the history sink takes them:
# every 4 x rows deltas), snapshot at the newest and at a middle revision vs
# `COPY (SELECT * FROM t) TO STDOUT` of the same rows; plus one object's
# history and blame with 10^3..10^5 versions. Prints a markdown report
# (medians of 3 runs) on stdout, progress on stderr.
#
#   bench/asof_bench.sh [--quick | --full | --rows N]
#     default N=100000; --quick N=20000; --full N=1000000 (100M deltas: long, ~20 GB)
#   ASOF_CONNINFO=conninfo  use that database (else a private cluster is started and stopped)
#   WALREV_BIN=path         the walrev binary (default build-release/ or build/)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
N=100000
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) N=20000 ;;
    --full) N=1000000 ;;
    --rows) N=${2:?--rows needs a count}; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "asof_bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "asof_bench: $*" >&2; }

if [ -z "${WALREV_BIN:-}" ]; then
  for b in "$ROOT/build-release/worker/walrev" "$ROOT/build/worker/walrev"; do
    [ -x "$b" ] && WALREV_BIN=$b && break
  done
fi
[ -n "${WALREV_BIN:-}" ] && [ -x "$WALREV_BIN" ] || { echo "asof_bench: no walrev binary: build it or set WALREV_BIN" >&2; exit 1; }

PRIVATE=""
if [ -z "${ASOF_CONNINFO:-}" ]; then
  PRIVATE=$(mktemp -d /tmp/walrev-asof.XXXXXX)
  log "starting a private PostgreSQL in $PRIVATE"
  bash "$ROOT/tests/support/pgcluster.sh" start "$PRIVATE/pg" "shared_buffers = 1GB" "max_wal_size = 8GB" \
    "work_mem = 64MB" "maintenance_work_mem = 256MB" >&2
  ASOF_CONNINFO="$(cat "$PRIVATE/pg/conninfo")"
  trap 'bash "$ROOT/tests/support/pgcluster.sh" stop "$PRIVATE/pg" >&2; rm -rf "$PRIVATE"' EXIT
  trap 'exit 130' INT TERM  # so the EXIT trap stops the cluster
fi
CI=$ASOF_CONNINFO
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -At -d "$CI")
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
sql() { "${PSQL[@]}" -c "$1"; }

now() { date +%s.%N; }
# median3 CMD...: run CMD three times (output discarded), print the median seconds
median3() {
  local t=() i a b
  for i in 1 2 3; do
    a=$(now); "$@" >/dev/null 2>&1 || { echo "asof_bench: failed: $*" >&2; exit 1; }; b=$(now)
    t+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.6f", b - a }')")
  done
  printf '%s\n' "${t[@]}" | sort -g | sed -n 2p
}
fmt() { printf '%.3f' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# install the history DDL and the replay SQL into schema $1
install_schema() {
  { sed "s/@schema@/$1/g" "$ROOT/schema/sql/history.sql"; sed "s/@schema@/$1/g" "$ROOT/schema/sql/replay.sql"; } |
    "${PSQL[@]}" >/dev/null
}

# build history size H (x N) for table asof_tH in schema walrev_hH
build_history() {
  local H=$1 S=walrev_h$1 T=asof_t$1 total=$(( $1 * N )) per=100
  log "history ${H}x: $total deltas for $N rows"
  sql "DROP SCHEMA IF EXISTS $S CASCADE; DROP TABLE IF EXISTS public.$T;" >/dev/null
  install_schema $S
  sql "CREATE TABLE public.$T (id integer PRIMARY KEY, a integer, b text, c numeric(12,2))"
  local relid
  relid=$(sql "SELECT 'public.$T'::regclass::oid")
  local nrev=$(( (total + per - 1) / per ))
  "${PSQL[@]}" >/dev/null <<SQL
SET synchronous_commit = off;
INSERT INTO $S.relation_version (relid, version, nspname, relname, replident, valid_from, col_ids, col_names,
    col_type_oids, col_typmods, col_type_names, col_is_key, col_track)
VALUES ($relid, 1, 'public', '$T', 'd', '0/1', '{1,2,3,4}', '{id,a,b,c}', '{23,23,25,1700}',
        '{-1,-1,-1,786438}', '{NULL,NULL,NULL,NULL}', '{t,f,f,f}', '{f,f,f,f}');
INSERT INTO $S.revision (id, xid, commit_lsn, end_lsn, commit_time, n_insert, n_update, parent_checksum, checksum)
SELECT r, r, '0/10'::pg_lsn + r * 1000, '0/10'::pg_lsn + r * 1000 + 8,
       timestamptz '2026-01-01 00:00:00+00' + r * interval '1 second',
       CASE WHEN r * $per <= $N THEN $per ELSE 0 END, CASE WHEN r * $per > $N THEN $per ELSE 0 END,
       '\\x00', '\\x00'
FROM generate_series(1, $nrev) r;
SQL
  # deltas in chunks of 10M so no statement holds too much
  local lo=1 hi
  while [ $lo -le $total ]; do
    hi=$(( lo + 10000000 - 1 )); [ $hi -gt $total ] && hi=$total
    "${PSQL[@]}" >/dev/null <<SQL
SET synchronous_commit = off;
INSERT INTO $S.object_delta (revision_id, seq, relid, relversion, op, key, context_no, col_ids, old_values, new_values)
SELECT (g - 1) / $per + 1, (g - 1) % $per + 1, $relid, 1, 'I', '["' || g || '"]', 0, '{1,2,3,4}', NULL,
       ARRAY[g::text, (g % 1000)::text, md5(g::text), round(g * 0.5, 2)::text]
FROM generate_series($lo, least($hi, $N)) g;
INSERT INTO $S.object_delta (revision_id, seq, relid, relversion, op, key, context_no, col_ids, old_values, new_values)
SELECT (g - 1) / $per + 1, (g - 1) % $per + 1, $relid, 1, 'U', '["' || ((g::bigint * 7919) % $N + 1) || '"]', 0,
       CASE WHEN g % 2 = 0 THEN '{2}'::smallint[] ELSE '{3}'::smallint[] END, '{old}',
       CASE WHEN g % 2 = 0 THEN ARRAY[(g % 100000)::text] ELSE ARRAY[md5(g::text)] END
FROM generate_series(greatest($lo, $N + 1), $hi) g;
SQL
    lo=$(( hi + 1 ))
  done
  # keyframes where the sink takes them: each time 4 x rows deltas have accumulated
  local k=1 m rev
  while :; do
    m=$(( 4 * N * k ))  # the baseline's inserts count too, as in the sink
    [ $m -le $total ] || break
    rev=$(( (m + per - 1) / per ))
    sql "SET synchronous_commit = off;
         WITH kf AS (INSERT INTO $S.keyframe (relid, revision_id, n_rows) VALUES ($relid, $rev, $N) RETURNING id)
         INSERT INTO $S.keyframe_row (keyframe_id, key, relversion, vals)
         SELECT kf.id, s.key, 1, s.vals FROM kf, $S.snapshot_rows($relid, $rev) s" >/dev/null
    k=$(( k + 1 ))
  done
  log "history ${H}x: $((k - 1)) keyframes"
  # the live table holds the newest rows
  "${PSQL[@]}" >/dev/null <<SQL
SET synchronous_commit = off;
INSERT INTO $S.tracked_table (relid, live_rows, deltas_since_keyframe) VALUES ($relid, $N, 0);
INSERT INTO public.$T SELECT vals[1]::integer, vals[2]::integer, vals[3], vals[4]::numeric
FROM $S.snapshot_rows($relid, $nrev);
SQL
  sql "VACUUM ANALYZE $S.object_delta, $S.keyframe_row, $S.keyframe, $S.revision, public.$T" >/dev/null
  BUILT_NREV=$nrev  # a global, not stdout: no subshell, so set -e stops the script on any error
}

W() { "$WALREV_BIN" --history "$CI" --source "$CI" "$@"; }

declare -A NEWEST MIDDLE COPY NREV DSIZE
for H in 1 10 100; do
  build_history $H
  NREV[$H]=$BUILT_NREV
  S=walrev_h$H T=asof_t$H
  # the middle: halfway between the two keyframes around R/2 (2 x N deltas to
  # replay, the same work at 10x and 100x), or R/2 when there is no keyframe
  mid=$(sql "SELECT coalesce((SELECT max(revision_id) FROM $S.keyframe WHERE revision_id <= ${NREV[$H]} / 2)
                             + $(( 2 * N / 100 )), ${NREV[$H]} / 2)")
  # check once that both snapshots have N rows and the newest equals the live table
  got=$(W --schema $S snapshot --table $T 2>/dev/null | wc -l)
  [ "$got" -eq "$N" ] || { echo "asof_bench: newest snapshot has $got rows, expected $N" >&2; exit 1; }
  want=$(( mid * 100 < N ? mid * 100 : N ))  # 1x: the middle is halfway through the inserts
  got=$(W --schema $S snapshot --table $T --at $mid 2>/dev/null | wc -l)
  [ "$got" -eq "$want" ] || { echo "asof_bench: middle snapshot has $got rows, expected $want" >&2; exit 1; }
  log "history ${H}x: timing"
  NEWEST[$H]=$(median3 W --schema $S snapshot --table $T)
  MIDDLE[$H]=$(median3 W --schema $S snapshot --table $T --at $mid)
  COPY[$H]=$(median3 "${PSQL[@]}" -c "COPY (SELECT * FROM public.$T) TO STDOUT")
  DSIZE[$H]=$(sql "SELECT pg_size_pretty(pg_total_relation_size('$S.object_delta'))")
done

# one object's history and blame with 10^3..10^5 versions (each its own revision)
log "object history: 111,000 versions over three keys"
S=walrev_obj T=asof_obj
sql "DROP SCHEMA IF EXISTS $S CASCADE; DROP TABLE IF EXISTS public.$T;" >/dev/null
install_schema $S
sql "CREATE TABLE public.$T (id integer PRIMARY KEY, v integer, w text)"
relid=$(sql "SELECT 'public.$T'::regclass::oid")
"${PSQL[@]}" >/dev/null <<SQL
SET synchronous_commit = off;
INSERT INTO $S.relation_version (relid, version, nspname, relname, replident, valid_from, col_ids, col_names,
    col_type_oids, col_typmods, col_type_names, col_is_key, col_track)
VALUES ($relid, 1, 'public', '$T', 'd', '0/1', '{1,2,3}', '{id,v,w}', '{23,23,25}', '{-1,-1,-1}',
        '{NULL,NULL,NULL}', '{t,f,f}', '{f,f,f}');
WITH objs(key, versions, first) AS (VALUES (1000, 1000, 1), (10000, 10000, 1001), (100000, 100000, 11001))
INSERT INTO $S.object_delta (revision_id, seq, relid, relversion, op, key, context_no, col_ids, old_values, new_values)
SELECT o.first + i, 1, $relid, 1, CASE WHEN i = 0 THEN 'I' ELSE 'U' END, '["' || o.key || '"]', 1,
       CASE WHEN i = 0 THEN '{1,2,3}'::smallint[] WHEN i % 2 = 0 THEN '{2}' ELSE '{3}' END,
       CASE WHEN i = 0 THEN NULL ELSE '{old}'::text[] END,
       CASE WHEN i = 0 THEN ARRAY[o.key::text, '0', 'w0'] WHEN i % 2 = 0 THEN ARRAY[i::text] ELSE ARRAY['w' || i] END
FROM objs o, generate_series(0, o.versions - 1) i;
INSERT INTO $S.revision (id, xid, commit_lsn, end_lsn, commit_time, actor_type, actor_id, n_update, parent_checksum, checksum)
SELECT r, r, '0/10'::pg_lsn + r * 1000, '0/10'::pg_lsn + r * 1000 + 8,
       timestamptz '2026-01-01 00:00:00+00' + r * interval '1 second', 'user', (r % 7)::text, 1, '\\x00', '\\x00'
FROM generate_series(1, 111000) r;
INSERT INTO $S.revision_context (revision_id, context_no, lsn, actor_type, actor_id, raw)
SELECT id, 1, commit_lsn, actor_type, actor_id, '{}' FROM $S.revision;
SQL
sql "VACUUM ANALYZE $S.object_delta, $S.revision, $S.revision_context" >/dev/null
declare -A HIST BLAME
for V in 1000 10000 100000; do
  got=$(W --schema $S history --table $T --key $V --format csv 2>/dev/null | wc -l)
  # a header, three attribute rows for the insert, one per update
  [ "$got" -eq $(( V + 3 )) ] || { echo "asof_bench: history of $V has $got lines, expected $((V + 3))" >&2; exit 1; }
  HIST[$V]=$(median3 W --schema $S history --table $T --key $V --format csv)
  BLAME[$V]=$(median3 W --schema $S blame --table $T --key $V --format csv)
done

cat <<EOF
### As-of snapshots (\`bench/asof_bench.sh\`, N = $N rows)

Snapshot = \`walrev snapshot --table T [--at REV]\` to /dev/null (COPY text), vs
\`COPY (SELECT * FROM t) TO STDOUT\` of the same rows through psql. Medians of
3 runs. The middle revision lies halfway between two keyframes: 2 x N deltas
to replay after the keyframe's N rows (at 1x, with no keyframe, it is halfway
through the inserts: N/2 rows).

| history | deltas | object_delta size | snapshot newest (s) | / COPY | snapshot middle (s) | / COPY | COPY (s) |
| --- | --- | --- | --- | --- | --- | --- | --- |
EOF
for H in 1 10 100; do
  echo "| ${H}x | $(( H * N )) | ${DSIZE[$H]} | $(fmt "${NEWEST[$H]}") | $(ratio "${NEWEST[$H]}" "${COPY[$H]}") | $(fmt "${MIDDLE[$H]}") | $(ratio "${MIDDLE[$H]}" "${COPY[$H]}") | $(fmt "${COPY[$H]}") |"
done
cat <<EOF

Growth from 1x to 100x history: newest $(ratio "${NEWEST[100]}" "${NEWEST[1]}")x, middle $(ratio "${MIDDLE[100]}" "${MIDDLE[1]}")x.

### One object's history and blame

| versions | \`walrev history\` (s) | \`walrev blame\` (s) |
| --- | --- | --- |
EOF
for V in 1000 10000 100000; do
  echo "| $V | $(fmt "${HIST[$V]}") | $(fmt "${BLAME[$V]}") |"
done
