#!/usr/bin/env bash
# audit_bench.sh — the audit queries of scenario 5 (Q) on a store of scenario
# 5's shape written by SQL in the store's format (minutes where the worker's
# drain of 10^7 changes takes most of an hour): a baseline of N rows (op S),
# then growth to N/10, N and 10 x N deltas in bulk revisions of at most N
# one-column updates 25 s apart, each size ending with 5,000 one-row
# revisions 2 ms apart whose context names one of 50 actors. Times, as
# bench/lib/s5_asof.sh's s5_queries does: `walrev log --actor user:7` over a
# day, `walrev history` of key 7, and with --attr `attribute_delta` filtered
# by table and a one-minute window (SQL). Prints medians (wall seconds) and
# psql's `SELECT 1` on the same machine in the same rounds (the floor).
#
#   bench/audit_bench.sh [--rows N] [--runs R] [--attr] [--reuse]
#     --rows: N (default 1000000: 10^7 deltas; the store needs ~3 GB)
#     --reuse: keep the store a previous run built in the same database
#   AUDIT_CONNINFO=conninfo  use that database (else a private cluster is started and stopped)
#   WALREV_BIN=path          the walrev binary (default build-release/ or build/)
#   BEFORE_ROOT=dir          also time an earlier checkout (its replay.sql and
#                            build-release/worker/walrev), interleaved round by round
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
N=1000000 RUNS=5 ATTR=0 REUSE=0
# shellcheck source=lib/standalone.sh
source "$HERE/lib/standalone.sh"
bench_option() {
  case "$1" in
    --attr) ATTR=1 ;;
    --reuse) REUSE=1 ;;
    *) return 1 ;;
  esac
}
standalone_args 21 "$@"
standalone_walrev
if [ -n "${BEFORE_ROOT:-}" ]; then
  [ -x "$BEFORE_ROOT/build-release/worker/walrev" ] || { echo "audit_bench: no $BEFORE_ROOT/build-release/worker/walrev" >&2; exit 1; }
fi

standalone_database audit "${AUDIT_CONNINFO:-}"
# install ROOT's replay functions into schema walrev (history.sql too when $2 is set)
install_sql() {
  { [ -n "${2:-}" ] && schema_sql history walrev "$1"; schema_sql replay walrev "$1"; } | "${PSQL[@]}" >/dev/null
}

if [ "$REUSE" = 0 ] || [ -z "$(sql "SELECT to_regclass('walrev.revision')")" ]; then
  log "building the store: $N-row baseline, growth to $((10 * N)) deltas"
  sql "DROP SCHEMA IF EXISTS walrev CASCADE; DROP TABLE IF EXISTS public.big5;
       CREATE TABLE public.big5 (id integer PRIMARY KEY, a integer, b text, c numeric(12,2))" >/dev/null
  install_sql "$ROOT" history
  relid=$(sql "SELECT 'public.big5'::regclass::oid")
  "${PSQL[@]}" >/dev/null <<SQL
SET synchronous_commit = off;
$(relation_version_sql walrev big5 f)
-- revision 1 the baseline; per size bulk revisions 25 s apart, then 5,000 small ones 2 ms apart from 5 s later
CREATE TEMP TABLE plan (id bigint, kind text, n bigint, t timestamptz, actor int);
DO \$\$
DECLARE id bigint := 1; t timestamptz := '2026-12-01 00:00:00+00'; done bigint := 0; want bigint; k bigint;
BEGIN
  INSERT INTO plan VALUES (1, 'S', $N, t, NULL);
  FOREACH want IN ARRAY ARRAY[$N / 10, $N, 10 * $N] LOOP
    want := want - done - 5000;
    WHILE want > 0 LOOP
      k := least(want, $N); id := id + 1; t := t + interval '25 s';
      INSERT INTO plan VALUES (id, 'U', k, t, NULL); want := want - k; done := done + k;
    END LOOP;
    t := t + interval '5 s';
    FOR i IN 1..5000 LOOP
      id := id + 1; t := t + interval '2 ms';
      INSERT INTO plan VALUES (id, 'u', 1, t, i % 50);
    END LOOP;
    done := done + 5000;
  END LOOP;
END \$\$;
SELECT walrev.partition_ensure((SELECT max(id) FROM plan) + 1);
INSERT INTO walrev.revision (id, xid, commit_lsn, end_lsn, commit_time, actor_type, actor_id, n_update, n_snapshot, checksum)
SELECT id, 1000 + id, '0/10'::pg_lsn + id * 1000, '0/10'::pg_lsn + id * 1000 + 8, t,
       CASE WHEN kind = 'u' THEN 'user' END, actor::text,
       CASE WHEN kind <> 'S' THEN n ELSE 0 END, CASE WHEN kind = 'S' THEN n ELSE 0 END, '\\x00'
FROM plan ORDER BY id;
INSERT INTO walrev.revision_context (revision_id, context_no, lsn, actor_type, actor_id, actor, raw)
SELECT id, 1, '0/10'::pg_lsn + id * 1000, 'user', actor::text, jsonb_build_object('type', 'user', 'id', actor::text),
       jsonb_build_object('actor', jsonb_build_object('type', 'user', 'id', actor::text))::text
FROM plan WHERE kind = 'u' ORDER BY id;
INSERT INTO walrev.object_delta (revision_id, seq, relid, relversion, op, key, context_no, col_ids, new_values)
SELECT 1, g, $relid, 1, 'S', '["' || g || '"]', 0, '{1,2,3,4}',
       ARRAY[g::text, (g % 1000)::text, md5(g::text), round(g * 0.5, 2)::text]
FROM generate_series(1, $N) g;
SQL
  # the bulk updates (one-column, scalar form), then the small ones (actor context 1)
  sql "SET synchronous_commit = off;
       INSERT INTO walrev.object_delta (revision_id, seq, relid, relversion, op, key, context_no, col_id, old_value, new_value)
       SELECT r.id, g, $relid, 1, 'U', '[\"' || g || '\"]', 0, 2, (r.id + g)::text, (r.id + g + 1)::text
       FROM walrev.revision r, generate_series(1, r.n_update) g WHERE r.actor_type IS NULL AND r.id > 1" >/dev/null
  sql "SET synchronous_commit = off;
       INSERT INTO walrev.object_delta (revision_id, seq, relid, relversion, op, key, context_no, col_id, old_value, new_value)
       SELECT r.id, 1, $relid, 1, 'U', '[\"' || (1 + r.id % 100) || '\"]', 1, 3, md5(r.id::text), md5((r.id + 1)::text)
       FROM walrev.revision r WHERE r.actor_type = 'user' ORDER BY r.id" >/dev/null
  sql "VACUUM ANALYZE walrev.revision, walrev.revision_context, walrev.object_delta, walrev.relation_version" >/dev/null
fi
log "store: $(sql "SELECT count(*) FROM walrev.object_delta") deltas, $(sql "SELECT count(*) FROM walrev.revision") revisions"

# the points of s5_queries: a one-minute window around the middle of the last small batch, the day from the oldest revision
relid=$(sql "SELECT 'public.big5'::regclass::oid")
b=$(sql "SELECT max(id) - 2500 FROM walrev.revision")
t0=$(sql "SELECT commit_time - interval '30 seconds' FROM walrev.revision WHERE id = $b")
t1=$(sql "SELECT commit_time + interval '30 seconds' FROM walrev.revision WHERE id = $b")
day0=$(sql "SELECT min(commit_time) FROM walrev.revision")
day1=$(sql "SELECT least(min(commit_time) + interval '1 day', max(commit_time)) FROM walrev.revision")

once() {
  local a z
  a=$(date +%s.%N); "$@" >/dev/null 2>&1 || { echo "audit_bench: failed: $*" >&2; exit 1; }; z=$(date +%s.%N)
  awk -v a="$a" -v b="$z" 'BEGIN { printf "%.6f", b - a }'
}
median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
declare -A T
# time_build LABEL ROOTDIR BIN: one round of the queries with ROOTDIR's replay functions and BIN
time_build() {
  local label=$1 root=$2 bin=$3
  install_sql "$root"
  T[$label,log]+=" $(once "$bin" --source "$CI" log --actor user:7 --since "$day0" --until "$day1" --format csv)"
  T[$label,history]+=" $(once "$bin" --source "$CI" history --table big5 --key 7 --format csv)"
  if [ "$ATTR" = 1 ]; then
    T[$label,attr]+=" $(once "${PSQL[@]}" -c "SELECT count(*), count(DISTINCT ad.key) FROM walrev.attribute_delta ad
        JOIN walrev.revision r ON r.id = ad.revision_id WHERE ad.relid = $relid AND r.commit_time BETWEEN '$t0' AND '$t1'")"
  fi
}
LABELS=(now)
[ -n "${BEFORE_ROOT:-}" ] && LABELS=(before now)
for (( run = 1; run <= RUNS; run++ )); do
  log "round $run of $RUNS"
  [ -n "${BEFORE_ROOT:-}" ] && time_build before "$BEFORE_ROOT" "$BEFORE_ROOT/build-release/worker/walrev"
  time_build now "$ROOT" "$WALREV_BIN"
  T[floor]+=" $(once "${PSQL[@]}" -c "SELECT 1")"
done
install_sql "$ROOT"
echo "| build | \`log --actor user:7\` over a day (s) | \`history\` of key 7 (s) | \`attribute_delta\` by table and a minute (s) |"
echo "| --- | --- | --- | --- |"
for l in "${LABELS[@]}"; do
  echo "| $l | $(median "${T[$l,log]}") | $(median "${T[$l,history]}") | $([ "$ATTR" = 1 ] && median "${T[$l,attr]}" || echo —) |"
done
echo
echo "Medians of $RUNS rounds; psql \`SELECT 1\` in the same rounds: $(median "${T[floor]}") s; load average $(cut -d' ' -f1-3 /proc/loadavg)."
