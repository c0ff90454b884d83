#!/usr/bin/env bash
# tz_snapshot_bench.sh — what printing timestamptz values again in the
# reader's TimeZone costs `walrev snapshot` (docs/history-store.md, issue 16).
# A worker under PGTZ=Asia/Kolkata records tables of N rows (id int primary
# key, at, n int) with `at` a timestamptz (zoned) or a timestamp (nothing to
# print again); readers snapshot them under UTC (every value printed again)
# and under Asia/Kolkata (the recorded zone), next to a COPY of the table.
# Two shapes: "keyframe" (the rows there at setup: the baseline keyframe,
# no delta since) and "deltas" (setup on an empty table, then N inserts and
# two updates of every row: 3N deltas, no keyframe). Rounds interleave every
# case (and two binaries, with WALREV_BIN_B); each figure is the median.
# Prints a markdown table on stdout, progress on stderr.
#
#   bench/tz_snapshot_bench.sh [--rows N] [--runs R]     (default 200000 rows, 5 runs)
#   WALREV_BIN=path     the walrev binary (default build-release/ or build/)
#   WALREV_BIN_B=path   a second binary (another commit), timed in the same rounds
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
N=200000
RUNS=5
# shellcheck source=lib/standalone.sh
source "$HERE/lib/standalone.sh"
bench_option() { return 1; }  # only the shared --rows and --runs
standalone_args 17 "$@"
standalone_walrev
BINS=("$WALREV_BIN")
[ -n "${WALREV_BIN_B:-}" ] && BINS+=("$WALREV_BIN_B")
standalone_database tzbench ""
W() { "${BINS[0]}" --source "$CI" --slot tzbench "$@"; }

# kz/kp: rows at setup (keyframe); dz/dp: rows after it (deltas); z: timestamptz, p: timestamp
for s in z p; do
  ty=$([ $s = z ] && echo timestamptz || echo timestamp)
  sql "CREATE TABLE k$s (id int PRIMARY KEY, at $ty, n int);
       INSERT INTO k$s SELECT g, '2020-01-01 00:00+00'::timestamptz + g * interval '1 minute 1.5 s', g
       FROM generate_series(1, $N) g;
       CREATE TABLE d$s (id int PRIMARY KEY, at $ty, n int)"
done
log "setup (the worker under PGTZ=Asia/Kolkata)"
PGTZ=Asia/Kolkata W setup >"$PRIVATE/setup.log" 2>&1 || { cat "$PRIVATE/setup.log" >&2; exit 1; }
for s in z p; do
  sql "INSERT INTO d$s SELECT g, '2020-01-01 00:00+00'::timestamptz + g * interval '1 minute 1.5 s', g
       FROM generate_series(1, $N) g"
  sql "UPDATE d$s SET at = at + interval '1 hour', n = n + 1"
  sql "UPDATE d$s SET at = at + interval '1 hour', n = n + 1"
done
END=$(sql "SELECT pg_current_wal_insert_lsn()")
log "recording $((6 * N)) deltas up to $END"
PGTZ=Asia/Kolkata W run --stop-lsn "$END" >"$PRIVATE/run.log" 2>&1 || { tail -20 "$PRIVATE/run.log" >&2; exit 1; }

now() { date +%s.%N; }
# timed ZONE CMD...: seconds CMD takes with PGTZ=ZONE (output discarded)
timed() {
  local zone=$1 a b
  shift
  a=$(now)
  PGTZ=$zone "$@" >/dev/null 2>"$PRIVATE/err" || { cat "$PRIVATE/err" >&2; exit 1; }
  b=$(now)
  awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f", b - a }'
}
median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
declare -A T
for r in $(seq 1 "$RUNS"); do
  log "round $r of $RUNS"
  for t in kz kp dz dp; do
    T[$t,copy]+=" $(timed UTC psql -X -q -d "$CI" -c "COPY $t TO STDOUT")"
    for b in "${!BINS[@]}"; do
      for zone in UTC Asia/Kolkata; do
        T[$t,$b,$zone]+=" $(timed $zone "${BINS[$b]}" --source "$CI" --slot tzbench snapshot --table $t)"
      done
    done
  done
done
LABEL=(A B)
for b in "${!BINS[@]}"; do echo "${LABEL[$b]}: ${BINS[$b]}"; done
echo
printf '| table | rows | COPY s |'
for b in "${!BINS[@]}"; do printf ' %s, UTC s | %s, Asia/Kolkata s |' "${LABEL[$b]}" "${LABEL[$b]}"; done
printf '\n|---|---|---|'
for b in "${!BINS[@]}"; do printf -- '---|---|'; done
printf '\n'
for t in kz kp dz dp; do
  printf '| %s (%s, %s) | %s | %s |' "$t" "$([ ${t:1} = z ] && echo timestamptz || echo timestamp)" \
    "$([ ${t:0:1} = k ] && echo keyframe || echo "deltas")" "$N" "$(median "${T[$t,copy]}")"
  for b in "${!BINS[@]}"; do
    printf ' %s | %s |' "$(median "${T[$t,$b,UTC]}")" "$(median "${T[$t,$b,Asia/Kolkata]}")"
  done
  printf '\n'
done
