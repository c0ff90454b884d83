#!/usr/bin/env bash
# asof_bench.sh — how long `walrev snapshot` takes as history grows: a table of
# N rows whose history is 1x, 10x and 100x its size (written into the history
# store in bulk, set-based, in (revision, seq) order as the sink appends, with
# keyframes where the sink takes them: every 4 x rows deltas), snapshot at the
# newest revision and at 0, 2 x N and 4 x N deltas after a keyframe, vs
# `COPY (SELECT * FROM t) TO STDOUT` of as many rows; plus one object's as-of
# (row_at), history and blame with 10^3..10^6 versions. Prints a markdown
# report (medians of the runs) on stdout, progress on stderr.
#
#   bench/asof_bench.sh [--quick | --full | --rows N] [--versions MAX] [--runs R]
#     default N=100000; --quick N=20000; --full N=1000000 (100M deltas: long, ~20 GB)
#     --versions: the most versions of one object (a power of 10, from 1000; default 1000000)
#     --runs: timing rounds, each figure their median (default 5)
#   ASOF_CONNINFO=conninfo  use that database (else a private cluster is started and stopped)
#   WALREV_BIN=path         the walrev binary (default build-release/ or build/)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
N=100000
MAXV=1000000
RUNS=5
# shellcheck source=lib/standalone.sh
source "$HERE/lib/standalone.sh"
bench_option() {
  case "$1" in
    --quick) N=20000 ;;
    --full) N=1000000 ;;
    # shellcheck disable=SC2034  # TAKE: how many words standalone_args shifts
    --versions) MAXV=${2:?--versions needs a count}; TAKE=2 ;;
    *) return 1 ;;
  esac
}
standalone_args 16 "$@"
standalone_walrev
standalone_database asof "${ASOF_CONNINFO:-}"

now() { date +%s.%N; }
# once CMD...: run CMD (output discarded), print the seconds it took
once() {
  local a b
  a=$(now); "$@" >/dev/null 2>&1 || { echo "asof_bench: failed: $*" >&2; exit 1; }; b=$(now)
  awk -v a="$a" -v b="$b" 'BEGIN { printf "%.6f", b - a }'
}
# median3 CMD...: run CMD three times, print the median seconds
median3() { local a b c; a=$(once "$@") && b=$(once "$@") && c=$(once "$@") || exit 1; median "$a $b $c"; }
# median "A B C ...": the median of the numbers
median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { printf "%.6f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
fmt() { printf '%.3f' "$1"; }
# pack_rows SRC: the rest of a statement that begins "WITH kf AS (INSERT INTO
# keyframe ... RETURNING id)," and writes SRC's rows (key, vals) as kf's
# chunks (format 7), 64 rows in key order each: this bench's rows are far
# below the 6000 bytes at which the keyframe thread closes a chunk earlier
pack_rows() {
  echo "r AS (SELECT s.key COLLATE \"C\" AS key, s.vals::text AS lit,
                     (row_number() OVER (ORDER BY s.key COLLATE \"C\") - 1) / 64 AS chunk FROM $1 s)
        INSERT INTO $S.keyframe_chunk (keyframe_id, first_key, relversion, keys, rows)
        SELECT kf.id, min(r.key), 1, array_agg(r.key ORDER BY r.key), array_agg(r.lit ORDER BY r.key)
        FROM kf, r GROUP BY kf.id, r.chunk"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# install the history DDL and the replay SQL into schema $1
install_schema() { store_sql "$1" | "${PSQL[@]}" >/dev/null; }

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
$(relation_version_sql $S $T d)
INSERT INTO $S.revision (id, xid, commit_lsn, end_lsn, commit_time, n_insert, n_update, checksum)
SELECT r, r, '0/10'::pg_lsn + r * 1000, '0/10'::pg_lsn + r * 1000 + 8,
       timestamptz '2026-01-01 00:00:00+00' + r * interval '1 second',
       CASE WHEN r * $per <= $N THEN $per ELSE 0 END, CASE WHEN r * $per > $N THEN $per ELSE 0 END,
       '\\x00'
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
INSERT INTO $S.object_delta (revision_id, seq, relid, relversion, op, key, context_no, col_id, old_value, new_value)
SELECT (g - 1) / $per + 1, (g - 1) % $per + 1, $relid, 1, 'U', '["' || ((g::bigint * 7919) % $N + 1) || '"]', 0,
       CASE WHEN g % 2 = 0 THEN 2 ELSE 3 END, 'old',
       CASE WHEN g % 2 = 0 THEN (g % 100000)::text ELSE md5(g::text) END
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
         WITH kf AS (INSERT INTO $S.keyframe (relid, revision_id, n_rows) VALUES ($relid, $rev, $N) RETURNING id),
         $(pack_rows "$S.snapshot_rows($relid, $rev)")" >/dev/null
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
  sql "VACUUM ANALYZE $S.object_delta, $S.keyframe_chunk, $S.keyframe, $S.revision, public.$T" >/dev/null
  BUILT_NREV=$nrev  # a global, not stdout: no subshell, so set -e stops the script on any error
}

W() { "$WALREV_BIN" --history "$CI" --source "$CI" "$@"; }

# check_point H NAME REV: the snapshot of asof_tH at REV (empty: the newest)
# has the rows it should; notes its rows and its distance from its keyframe
declare -A AT ROWS DIST
check_point() {
  local H=$1 name=$2 rev=$3 S=walrev_h$1 T=asof_t$1 at=() want got kf
  [ -n "$rev" ] && at=(--at "$rev")
  # the rows at REV: the inserts come first, one id each, and nothing is deleted
  want=$N; [ -n "$rev" ] && [ $(( rev * 100 )) -lt "$N" ] && want=$(( rev * 100 ))
  got=$(W --schema $S snapshot --table $T "${at[@]}" 2>/dev/null | wc -l)
  [ "$got" -eq "$want" ] || { echo "asof_bench: ${H}x $name snapshot has $got rows, expected $want" >&2; exit 1; }
  kf=$(sql "SELECT coalesce(max(revision_id), 0) FROM $S.keyframe WHERE revision_id <= ${rev:-${NREV[$H]}}")
  DIST[$H,$name]=$(( (${rev:-${NREV[$H]}} - kf) * 100 ))
  ROWS[$H,$name]=$want
  AT[$H,$name]=$rev
}

declare -A NREV DSIZE SQLMID
POINTS=(newest keyframe middle late)
for H in 1 10 100; do
  build_history $H
  NREV[$H]=$BUILT_NREV
  S=walrev_h$H T=asof_t$H
  # Points at the same distance from their keyframe at every history size, in
  # the keyframe interval around R/2: on the keyframe (its rows alone), 2 x N
  # deltas after it (the middle) and 4 x N - 100 after it (just before the
  # next keyframe: the most a snapshot replays). At 1x there is no keyframe:
  # the points lie in the inserts, replayed from an empty table.
  kf=$(sql "SELECT coalesce(max(revision_id), 0) FROM $S.keyframe WHERE revision_id <= ${NREV[$H]} / 2")
  check_point $H newest ""
  if [ "$kf" -gt 0 ]; then
    check_point $H keyframe "$kf"
    mid=$(( kf + 2 * N / 100 )); late=$(( kf + 4 * N / 100 - 1 ))
  else
    mid=$(( NREV[$H] / 2 )); late=$(( NREV[$H] - 1 ))
  fi
  check_point $H middle "$mid"
  check_point $H late "$late"
  DSIZE[$H]=$(sql "SELECT pg_size_pretty(pg_total_relation_size('$S.object_delta'))")
done

# All sizes are timed round by round, each snapshot next to its COPY, so that
# the load of a shared machine falls on all of them alike; the ratio to COPY
# is taken within each pair.
declare -A TS TC TR SNAP COPYT RAT
for (( run = 1; run <= RUNS; run++ )); do
  log "timing round $run of $RUNS"
  for H in 1 10 100; do
    for p in "${POINTS[@]}"; do
      [ -n "${ROWS[$H,$p]:-}" ] || continue
      at=(); [ -n "${AT[$H,$p]}" ] && at=(--at "${AT[$H,$p]}")
      t=$(once W --schema walrev_h$H snapshot --table asof_t$H "${at[@]}")
      if [ "${ROWS[$H,$p]}" -eq "$N" ]; then
        c=$(once "${PSQL[@]}" -c "COPY (SELECT * FROM public.asof_t$H) TO STDOUT")
      else
        c=$(once "${PSQL[@]}" -c "COPY (SELECT * FROM public.asof_t$H LIMIT ${ROWS[$H,$p]}) TO STDOUT")
      fi
      TS[$H,$p]+=" $t"; TC[$H,$p]+=" $c"; TR[$H,$p]+=" $(ratio "$t" "$c")"
    done
  done
done
for k in "${!TS[@]}"; do
  SNAP[$k]=$(median "${TS[$k]}"); COPYT[$k]=$(median "${TC[$k]}"); RAT[$k]=$(median "${TR[$k]}")
done
for H in 1 10 100; do
  relid=$(sql "SELECT 'public.asof_t$H'::regclass::oid")
  SQLMID[$H]=$(median3 "${PSQL[@]}" -c "COPY (SELECT * FROM walrev_h$H.snapshot_rows($relid, ${AT[$H,middle]})) TO STDOUT")
done

# One object's as-of, history and blame with 10^3..MAXV versions, each version
# its own revision, in one table whose keyframes fall where the sink takes
# them (every 4 x 1000 deltas: the table has fewer than 1000 rows).
VERSIONS=() objs="" first=1
for (( V = 1000; V <= MAXV; V *= 10 )); do
  VERSIONS+=("$V"); objs+="${objs:+, }($V, $V, $first)"; first=$(( first + V ))
done
LASTREV=$(( first - 1 ))
[ ${#VERSIONS[@]} -gt 0 ] || { echo "asof_bench: --versions must be 1000 or more" >&2; exit 2; }
log "object history: $LASTREV versions over ${#VERSIONS[@]} keys"
S=walrev_obj T=asof_obj
sql "DROP SCHEMA IF EXISTS $S CASCADE; DROP TABLE IF EXISTS public.$T;" >/dev/null
install_schema $S
sql "CREATE TABLE public.$T (id integer PRIMARY KEY, v integer, w text)"
relid=$(sql "SELECT 'public.$T'::regclass::oid")
"${PSQL[@]}" >/dev/null <<SQL
SET synchronous_commit = off;
$(relation_version_sql $S $T d)
WITH objs(key, versions, first) AS (VALUES $objs)
INSERT INTO $S.object_delta (revision_id, seq, relid, relversion, op, key, context_no, col_ids, old_values, new_values)
SELECT o.first + i, 1, $relid, 1, CASE WHEN i = 0 THEN 'I' ELSE 'U' END, '["' || o.key || '"]', 1,
       CASE WHEN i = 0 THEN '{1,2,3}'::smallint[] WHEN i % 2 = 0 THEN '{2}' ELSE '{3}' END,
       CASE WHEN i = 0 THEN NULL ELSE '{old}'::text[] END,
       CASE WHEN i = 0 THEN ARRAY[o.key::text, '0', 'w0'] WHEN i % 2 = 0 THEN ARRAY[i::text] ELSE ARRAY['w' || i] END
FROM objs o, generate_series(0, o.versions - 1) i
ORDER BY 1;
$(revisions_sql $S "$LASTREV + 1")
SQL
sql "VACUUM ANALYZE $S.object_delta, $S.revision, $S.revision_context" >/dev/null
# keyframes every 4,000 deltas, each computed from the one before
"${PSQL[@]}" >/dev/null <<SQL
SET synchronous_commit = off;
DO \$\$
DECLARE r bigint;
BEGIN
    FOR r IN SELECT g FROM generate_series(4000, $LASTREV, 4000) g LOOP
        -- one statement: snapshot_rows must not see the keyframe it fills
        WITH kf AS (INSERT INTO $S.keyframe (relid, revision_id, n_rows) VALUES ($relid, r, 0) RETURNING id),
        $(pack_rows "$S.snapshot_rows($relid, r)");
    END LOOP;
END
\$\$;
DELETE FROM $S.revision WHERE id = $LASTREV + 1;
DELETE FROM $S.revision_context WHERE revision_id = $LASTREV + 1;
INSERT INTO $S.tracked_table (relid, live_rows, deltas_since_keyframe) VALUES ($relid, 4, 1000);
SQL
sql "VACUUM ANALYZE $S.keyframe, $S.keyframe_chunk, $S.revision" >/dev/null
declare -A HIST HISTL BLAME ASOF ASOFNEW ASOFREV
first=1
for V in "${VERSIONS[@]}"; do
  got=$(W --schema $S history --table $T --key $V --format csv 2>/dev/null | wc -l)
  # a header, three attribute rows for the insert, one per update
  [ "$got" -eq $(( V + 3 )) ] || { echo "asof_bench: history of $V has $got lines, expected $((V + 3))" >&2; exit 1; }
  # as of the middle of its versions: version i sets v (even i) or w (odd i)
  half=$(( V / 2 )); ASOFREV[$V]=$(( first + half ))
  got=$(sql "SELECT $S.row_at($relid, '[\"$V\"]', ${ASOFREV[$V]})::text")
  want="{$V,$(( half - half % 2 )),w$(( half - 1 + half % 2 ))}"
  [ "$got" = "$want" ] || { echo "asof_bench: row_at of $V at ${ASOFREV[$V]} is $got, expected $want" >&2; exit 1; }
  first=$(( first + V ))
done
for (( run = 1; run <= RUNS; run++ )); do
  log "object timing round $run of $RUNS"
  for V in "${VERSIONS[@]}"; do
    ASOF[$V]+=" $(once "${PSQL[@]}" -c "SELECT $S.row_at($relid, '[\"$V\"]', ${ASOFREV[$V]})")"
    ASOFNEW[$V]+=" $(once "${PSQL[@]}" -c "SELECT $S.row_at($relid, '[\"$V\"]', $LASTREV)")"
    HIST[$V]+=" $(once W --schema $S history --table $T --key $V --format csv)"
    HISTL[$V]+=" $(once W --schema $S history --table $T --key $V --limit 100 --format csv)"
    BLAME[$V]+=" $(once W --schema $S blame --table $T --key $V --format csv)"
  done
done
for V in "${VERSIONS[@]}"; do
  ASOF[$V]=$(median "${ASOF[$V]}"); ASOFNEW[$V]=$(median "${ASOFNEW[$V]}")
  HIST[$V]=$(median "${HIST[$V]}"); HISTL[$V]=$(median "${HISTL[$V]}"); BLAME[$V]=$(median "${BLAME[$V]}")
done

# ---------------------------------------------------------------- report
cell() { echo "$(fmt "$1") ($(printf '%.2f' "$2")×)"; }
# spread A B...: the largest over the smallest
spread() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f", (lo > 0 ? hi / lo : 0) }'; }
over2=$(for H in 10 100; do for p in keyframe middle late; do
  r=$(printf '%.2f' "${RAT[$H,$p]}")
  if awk -v r="$r" 'BEGIN { exit !(r > 2) }'; then echo "${H}× $p ${r}×"; fi; done; done | paste -sd, - | sed 's/,/, /g')
cat <<EOF
### As-of snapshots (\`bench/asof_bench.sh\`, N = $N rows)

\`walrev snapshot --table T [--at REV]\` to /dev/null (COPY text), in seconds,
and in parentheses its ratio to \`COPY (SELECT * FROM t) TO STDOUT\` of as
many rows of the live table through psql (\`LIMIT\` when the point has fewer
than N), run right after it. Medians of $RUNS rounds, every size and point
timed in each round; the ratio is the median of each round's. History of
1×, 10× and 100× N deltas: N inserts, then one-column updates, 100 per
revision. Every point but the newest lies in the keyframe interval around
the middle of history, at the same distance from its keyframe at every
size: on it (N rows, no delta), 2 × N deltas after it and 4 × N − 100 (just
before the next keyframe: the most any snapshot replays). At 1× there is no
keyframe: the points lie in the inserts, replayed from an empty table. The
newest is folded the same way, from the last keyframe and the deltas after
it.

| history | deltas | object_delta | newest | on a keyframe | keyframe + 2N deltas | keyframe + 4N deltas | COPY of N rows |
| --- | --- | --- | --- | --- | --- | --- | --- |
EOF
for H in 1 10 100; do
  row="| ${H}× | $(( H * N )) | ${DSIZE[$H]}"
  for p in "${POINTS[@]}"; do
    if [ -n "${SNAP[$H,$p]:-}" ]; then
      extra=""; [ "${ROWS[$H,$p]}" -ne "$N" ] && extra=": ${ROWS[$H,$p]} rows from ${DIST[$H,$p]} deltas"
      row+=" | $(cell "${SNAP[$H,$p]}" "${RAT[$H,$p]}")$extra"
    else
      row+=" | —"
    fi
  done
  echo "$row | $(fmt "${COPYT[$H,newest]}") |"
done
cat <<EOF

Flat as history grows (the same point at 10× and 100×, slowest / fastest;
target ≤ 1.2), in seconds and, steadier on a shared machine, in ratio to
COPY: on a keyframe $(spread "${SNAP[10,keyframe]}" "${SNAP[100,keyframe]}") / $(spread "${RAT[10,keyframe]}" "${RAT[100,keyframe]}"),
keyframe + 2N $(spread "${SNAP[10,middle]}" "${SNAP[100,middle]}") / $(spread "${RAT[10,middle]}" "${RAT[100,middle]}"),
keyframe + 4N $(spread "${SNAP[10,late]}" "${SNAP[100,late]}") / $(spread "${RAT[10,late]}" "${RAT[100,late]}");
newest at 1×, 10× and 100× $(spread "${SNAP[1,newest]}" "${SNAP[10,newest]}" "${SNAP[100,newest]}") / $(spread "${RAT[1,newest]}" "${RAT[10,newest]}" "${RAT[100,newest]}").
Target ≤ 2× COPY: ${over2:+missed at }${over2:-met at every point}.

The keyframe + 2N point through SQL, \`COPY (SELECT * FROM snapshot_rows(t, REV)) TO STDOUT\`:
$(for H in 1 10 100; do printf '%s× %s s' "$H" "$(fmt "${SQLMID[$H]}")"; [ $H = 100 ] && echo . || printf ', '; done)

### One object: as of, history and blame

One key per size of one table, 10^3 versions and up, each version its own
revision ($LASTREV in all; keyframes every 4,000 deltas, as the sink takes
them). As of = \`SELECT row_at(t, key, REV)\` through psql, at the middle of
the object's versions and at the newest revision;
\`walrev history\` prints every version (its output grows with them);
\`history --limit 100\` the newest 100, what a page of an audit UI shows;
\`walrev blame\` is at the newest.

| versions | as of, middle (s) | as of, newest (s) | \`walrev history\` (s) | \`history --limit 100\` (s) | \`walrev blame\` (s) |
| --- | --- | --- | --- | --- | --- |
EOF
for V in "${VERSIONS[@]}"; do
  echo "| $V | $(fmt "${ASOF[$V]}") | $(fmt "${ASOFNEW[$V]}") | $(fmt "${HIST[$V]}") | $(fmt "${HISTL[$V]}") | $(fmt "${BLAME[$V]}") |"
done
