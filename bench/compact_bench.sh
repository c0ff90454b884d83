#!/usr/bin/env bash
# compact_bench.sh — scenario 6's storage (P6) as written and at rest: bytes
# per single-column UPDATE of the 12-column table kept by walrev, counted
# once the sink wrote them and again after `walrev compact` rebuilt the
# indexes of the partitions no longer written (docs/history-store.md#compaction).
# Scenario 6's flow (bench/lib/s6_storage.sh: 10,000 rows, then 10 rounds of
# UPDATE ... SET c_int = c_int + 1, one per transaction and 100 per
# transaction), with the store's partitions sized so that the starting rows
# (revision 1) have one of their own, compacted before the updates so that
# neither figure counts them, the first update (revision 2) another (made
# ahead at setup with partition_revisions 1), and every later update one
# partition that the last update fills (R - 1 revisions for R updating
# revisions; the sink makes it when its ids enter revision 2's). Counted, not
# timed: one run.
#
#   bench/compact_bench.sh [--rows N] [--work DIR]   (WALREV_BIN: default build-release)
# Prints, per transaction size: bytes per update as written and at rest, and
# each relation's growth per update at rest (TSV in DIR/results).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROWS=10000
WORK=/tmp/walrev-compact-bench
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS=$2; shift ;;
    --work) WORK=$2; shift ;;
    *) echo "usage: bench/compact_bench.sh [--rows N] [--work DIR]" >&2; exit 2 ;;
  esac
  shift
done
ROUNDS=10
N=$((ROWS * ROUNDS))
WALREV_BIN=${WALREV_BIN:-$ROOT/build-release/worker/walrev}
[ -x "$WALREV_BIN" ] || { echo "compact_bench: no walrev at $WALREV_BIN (set WALREV_BIN)" >&2; exit 1; }
export PATH=/usr/lib/postgresql/15/bin:$PATH
PG=$WORK/pg
[ -d "$PG/data" ] && bash "$ROOT/tests/support/pgcluster.sh" stop "$PG" >/dev/null 2>&1 || true
rm -rf "$WORK"
mkdir -p "$WORK/results"
bash "$ROOT/tests/support/pgcluster.sh" start "$PG" "shared_buffers = 256MB" "max_wal_size = 4GB" >"$WORK/pg.log" 2>&1 ||
  { cat "$WORK/pg.log" >&2; exit 1; }
trap 'bash "$ROOT/tests/support/pgcluster.sh" stop "$PG" >/dev/null 2>&1' EXIT
PORT=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' "$PG/conninfo")
conninfo() { echo "host=127.0.0.1 port=$PORT user=postgres dbname=$1"; }
q() { psql "$(conninfo "$1")" -XAtq -v ON_ERROR_STOP=1 -c "$2"; }
total() { q "$1" "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'walrev' AND c.relkind IN ('r', 'm')"; }
relations() { q "$1" "SELECT c.relname, CASE WHEN c.relkind = 'i' THEN pg_relation_size(c.oid) ELSE pg_table_size(c.oid) END
                      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = 'walrev' AND c.relkind IN ('r', 'm', 'i') ORDER BY 1" | tr '|' '\t'; }
# per-relation kind (partition suffix dropped): bytes of B minus A, per update
growth() {
  awk -F'\t' -v n=$N 'function kind(r) { sub(/_p[0-9]+/, "", r); return r }
      NR == FNR { b[kind($1)] += $2; next } { a[kind($1)] += $2 }
      END { for (k in a) if (a[k] != b[k]) printf "%s\t%.1f\n", k, (a[k] - b[k]) / n }' "$1" "$2" | sort -t$'\t' -k2,2nr
}

for per in 1 100; do
  db=compact_$per step=$((N / per - 1))
  psql "$(conninfo postgres)" -XAtq -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
  psql "$(conninfo $db)" -XAtq -v ON_ERROR_STOP=1 -f "$ROOT/bench/workloads/table12.sql" >/dev/null
  printf '[source]\nconninfo = %s\nslot = %s\n[history]\npartition_revisions = 1\ncompact_interval = 0\n' \
    "$(conninfo $db)" "$db" >"$WORK/$db.conf"
  W() { "$WALREV_BIN" -c "$WORK/$db.conf" "$@"; }
  W setup --no-baseline >"$WORK/$db.setup.log" 2>&1 || { cat "$WORK/$db.setup.log" >&2; exit 1; }
  q $db "CALL bench_fill($ROWS)"
  W run --stop-lsn "$(q $db "SELECT pg_current_wal_lsn()")" 2>>"$WORK/$db.run.log"
  # the starting rows (revision 1) alone in a partition, compacted; revision
  # 2 has the partition made ahead; the sink makes the next of $step revisions
  q $db "UPDATE walrev.store_info SET value = '$step' WHERE key = 'partition_revisions'"
  W compact >"$WORK/$db.compact0.out"
  a=$(total $db); relations $db >"$WORK/$db.rel_a"
  psql "$(conninfo $db)" -XAtq -v ON_ERROR_STOP=1 -c "SET synchronous_commit = off" -c "CALL bench_touch_tx($ROWS, $ROUNDS, $per)"
  W run --stop-lsn "$(q $db "SELECT pg_current_wal_lsn()")" 2>>"$WORK/$db.run.log"
  b=$(total $db); relations $db >"$WORK/$db.rel_b"
  W compact >"$WORK/$db.compact1.out"
  c=$(total $db); relations $db >"$WORK/$db.rel_c"
  growth "$WORK/$db.rel_a" "$WORK/$db.rel_b" >"$WORK/results/written_$per.tsv"
  growth "$WORK/$db.rel_a" "$WORK/$db.rel_c" >"$WORK/results/at_rest_$per.tsv"
  printf '%s per transaction: %d updates, %s revisions per partition: as written %.1f B/update, at rest %.1f B/update (%s)\n' \
    "$per" "$N" "$step" "$(echo "($b - $a) / $N" | bc -l)" "$(echo "($c - $a) / $N" | bc -l)" "$(tail -1 "$WORK/$db.compact1.out")"
  paste "$WORK/results/written_$per.tsv" "$WORK/results/at_rest_$per.tsv" | awk -F'\t' '{ printf "  %-40s written %6s  |  %-40s at rest %6s\n", $1, $2, $3, $4 }'
done
