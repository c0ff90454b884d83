# s5_asof.sh — scenario 5, as of (P5) and the audit queries (Q).
#
# (a) A table of N rows (full 1,000,000, quick 20,000) captured through the
#     real write path: `walrev setup` with its baseline, then history grown
#     through the worker — bulk one-column UPDATEs of the whole table plus
#     small transactions that carry an actor context (walrev.context()) — to
#     N/10, N and 10 × N deltas after the baseline (history grows 100×; at
#     full size 10^5, 10^6 and 10^7 deltas). Keyframes are whatever the
#     worker's own policy took. At the baseline and at each size:
#     `walrev snapshot` at the newest revision and at a point in the middle of
#     the last growth, each next to `COPY (SELECT * FROM t) TO STDOUT` of the
#     same N rows, ratio per pair (P5: ≤ 1.5× at every point, flat ±20%).
# (b) The audit queries, timed at the first size and at 10 × N deltas (Q):
#     `walrev log --actor` over a day, `walrev history` of one object,
#     `walrev diff` of two points 1,000 revisions apart (fewer in quick mode), and `attribute_delta`
#     filtered by table and a time window, in SQL. report.py compares them
#     with bench/q_reference.tsv (the first full run's, written then).
# (c) One object with up to 10^6 versions (quick 10^5): bench/asof_bench.sh's
#     object part (written into the store by SQL in its format, keyframes
#     where the sink takes them) — as of, `history --limit 100`, `blame`.

# S5_PARTS picks the parts (comma-separated; default both): "table" is (a)
# and (b), P5's snapshots and the Q queries; "object" is (c).
scenario_5() {
  [ "$HAVE_WALREV" = 1 ] || { note 5 "skipped: walrev not built."; return 0; }
  local parts=",${S5_PARTS:-table,object},"
  case $parts in *,table,*|*,object,*) ;; *) die "s5: S5_PARTS '$S5_PARTS' names no part (table, object)" ;; esac
  case $parts in *,table,*) s5_big ;; *) note 5 "(a) and (b), the table and the audit queries, not run (S5_PARTS=$S5_PARTS)." ;; esac
  case $parts in *,object,*) s5_object ;; *) note 5 "(c), one object, not run (S5_PARTS=$S5_PARTS)." ;; esac
}

S5_ROUNDS=3  # snapshot rounds at the baseline and the newest points; 2 for the middle ones

# s5_time_snap LABEL AT — S5_ROUNDS rounds of snapshot (at AT, empty: newest)
# next to COPY of the table; records seconds and the ratio per round.
s5_time_snap() {
  local label=$1 at=() r t c rows rounds=$S5_ROUNDS
  case $label in mid_*) rounds=2 ;; esac
  [ -n "$2" ] && at=(--at "$2")
  rows=$(walrev_cmd s5 --slot s5 snapshot --table big5 "${at[@]}" | wc -l)
  [ "$rows" = "$S5_N" ] || die "s5: snapshot $label has $rows rows, expected $S5_N"
  for r in $(seq 1 "$rounds"); do
    t=$(s5_once walrev_cmd s5 --slot s5 snapshot --table big5 "${at[@]}")
    c=$(s5_once psql "$(conninfo s5)" -XAtq -c "COPY (SELECT * FROM big5) TO STDOUT")
    record 5 "snap_s_$label" "$r" "$t" s
    record 5 "copy_s_$label" "$r" "$c" s
    record 5 "snap_ratio_$label" "$r" "$(calc "$t / $c")" ×
  done
  log "s5: snapshot $label: $t s, COPY $c s (last round)"
}

# s5_once CMD... — seconds CMD took (output discarded); fails the scenario when CMD fails.
s5_once() {
  local a b
  a=$(now_s); "$@" >/dev/null 2>"$WORK/tmp/s5_once.err" || die "s5: failed: $* ($(tail -2 "$WORK/tmp/s5_once.err"))"; b=$(now_s)
  elapsed "$a" "$b"
}

# s5_query KEY LABEL CMD... — time an audit query up to S5_ROUNDS rounds,
# each bounded by S5_QUERY_TIMEOUT s (a query that hits it is recorded at the
# bound, with a note); after a round over 20 s the rest are left out, so a
# slow query cannot eat the run (at most about 2 × 90 s per query and size).
S5_QUERY_TIMEOUT=90
s5_query() {
  local key=$1 label=$2 r a b rc t; shift 2
  for r in $(seq 1 $S5_ROUNDS); do
    rc=0; a=$(now_s)
    timeout "$S5_QUERY_TIMEOUT" "$@" >"$WORK/tmp/s5_q.out" 2>"$WORK/tmp/s5_q.err" || rc=$?
    b=$(now_s); t=$(elapsed "$a" "$b")
    [ "$rc" = 0 ] || [ "$rc" = 124 ] || die "s5: query $key failed: $* ($(tail -2 "$WORK/tmp/s5_q.err"))"
    record 5 "q_${key}_s_$label" "$r" "$t" s
    # rows returned (csv: less its header line)
    [ "$r" = 1 ] && [ "$rc" = 0 ] && [ "$key" != attr ] && record 5 "q_${key}_rows_$label" 1 "$(($(wc -l <"$WORK/tmp/s5_q.out") - 1))"
    if [ "$rc" = 124 ]; then note 5 "the audit query $key ($label) did not finish in $S5_QUERY_TIMEOUT s and was stopped: its figure is that bound."; break; fi
    awk -v t="$t" 'BEGIN { exit !(t > 20) }' && break
  done
  return 0
}

# s5_grow DELTAS — that many one-column updates in bulk transactions of at
# most N rows, then S5_SMALL one-row transactions with an actor context (of
# 50 actors, on 100 hot rows), then the worker drains it all.
s5_grow() {
  local want=$1 done_=0 k pfx
  log "s5: $want bulk updates and $S5_SMALL small transactions"
  while [ $done_ -lt "$want" ]; do
    k=$((want - done_)); [ $k -gt "$S5_N" ] && k=$S5_N
    psql "$(conninfo s5)" -XAtq -v ON_ERROR_STOP=1 -c "SET synchronous_commit = off" \
      -c "UPDATE big5 SET a = a + 1 WHERE id <= $k" >/dev/null
    done_=$((done_ + k))
  done
  S5_SMALL_FROM=$(now_s)
  psql "$(conninfo s5)" -XAtq -v ON_ERROR_STOP=1 -c "SET synchronous_commit = off" -c "CALL s5_small($S5_SMALL)" >/dev/null
  S5_DELTAS=$((S5_DELTAS + want + S5_SMALL))
  pfx="$WORK/tmp/s5_grow_$S5_DELTAS"
  local rc=0 before
  before=$(q s5 "SELECT coalesce(sum(n_insert + n_update + n_delete), 0) FROM walrev.revision")
  timed "$pfx" "$S5_DRAIN_TIMEOUT" "$WALREV_BIN" --source "$(conninfo s5)" --slot s5 run --stop-lsn "$(current_lsn)" || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 124 ] || die "s5: walrev run failed: $(tail -5 "$pfx.log")"
  # what the store holds, not what was written: a drain stopped at its bound leaves the rest to the next one
  local stored
  stored=$(q s5 "SELECT coalesce(sum(n_insert + n_update + n_delete), 0) FROM walrev.revision")
  [ "$rc" = 124 ] && note 5 "the drain to $S5_DELTAS deltas was stopped after $S5_DRAIN_TIMEOUT s; the figures at that size are at the $((stored - S5_BASE)) deltas the store then held."
  record 5 "drain_cps_$S5_STEP" 1 "$(calc "($stored - $before) / $(time_field "$pfx" 1)")" changes/s
  record 5 "deltas_$S5_STEP" 1 "$((stored - S5_BASE))"
  record 5 "keyframes_$S5_STEP" 1 "$(q s5 "SELECT count(*) FROM walrev.keyframe")"
  record 5 "history_mb_$S5_STEP" 1 "$(calc "$(history_bytes s5) / 1048576")" MiB
}

# s5_queries LABEL — the audit queries, S5_ROUNDS times each (seconds).
s5_queries() {
  local label=$1 r a b mid relid t0 t1
  relid=$(q s5 "SELECT 'big5'::regclass::oid")
  # the last batch of small transactions: 1,000 revisions in its middle, and a one-minute window around it
  local span=$((S5_SMALL / 2)); [ $span -gt 1000 ] && span=1000
  read -r a b < <(q s5 "SELECT max(id) - $S5_SMALL / 2 - $span, max(id) - $S5_SMALL / 2 FROM walrev.revision" | tr '|' ' ')
  t0=$(q s5 "SELECT commit_time - interval '30 seconds' FROM walrev.revision WHERE id = $b")
  t1=$(q s5 "SELECT commit_time + interval '30 seconds' FROM walrev.revision WHERE id = $b")
  # "over a day": the day from the oldest revision on, cut at the newest (walrev refuses a
  # point before the history or in the future); here the whole history is minutes long
  local day0 day1
  day0=$(q s5 "SELECT min(commit_time) FROM walrev.revision")
  day1=$(q s5 "SELECT least(min(commit_time) + interval '1 day', max(commit_time)) FROM walrev.revision")
  s5_query log_actor "$label" "$WALREV_BIN" --source "$(conninfo s5)" log --actor user:7 --since "$day0" --until "$day1" --format csv
  s5_query history "$label" "$WALREV_BIN" --source "$(conninfo s5)" history --table big5 --key 7 --format csv
  s5_query diff "$label" "$WALREV_BIN" --source "$(conninfo s5)" diff "$a" "$b" --table big5 --format csv
  s5_query attr "$label" psql "$(conninfo s5)" -XAtq -c "SELECT count(*), count(DISTINCT ad.key) FROM walrev.attribute_delta ad
      JOIN walrev.revision r ON r.id = ad.revision_id WHERE ad.relid = $relid AND r.commit_time BETWEEN '$t0' AND '$t1'"
}

s5_big() {
  local n=1000000 pfx
  [ "$QUICK" = 1 ] && n=20000
  S5_N=$n S5_DELTAS=0 S5_SMALL=$((n / 50)); [ $S5_SMALL -gt 5000 ] && S5_SMALL=5000
  S5_DRAIN_TIMEOUT=600; [ "$QUICK" = 1 ] && S5_DRAIN_TIMEOUT=120
  recreate_db s5
  q s5 "CREATE TABLE big5 (id integer PRIMARY KEY, a integer, b text, c numeric(12,2)) WITH (fillfactor = 50)"
  q s5 "INSERT INTO big5 SELECT g, g % 1000, md5(g::text), round(g * 0.5, 2) FROM generate_series(1, $n) g" >/dev/null
  q s5 "VACUUM ANALYZE big5" >/dev/null
  # The old images come with the WAL: the growth is drained at the capture's
  # speed without a lookup per updated row (what is measured here is the read path)
  q s5 "ALTER TABLE big5 REPLICA IDENTITY FULL" >/dev/null
  pfx="$WORK/tmp/s5_setup"
  timed "$pfx" 3600 "$WALREV_BIN" --source "$(conninfo s5)" --slot s5 setup || die "s5: walrev setup failed: $(tail -5 "$pfx.log")"
  record 5 baseline_s 1 "$(time_field "$pfx" 1)" s
  # walrev.context() exists only after setup: the procedure is made now
  q s5 "CREATE OR REPLACE PROCEDURE s5_small(n int) LANGUAGE plpgsql AS \$\$
        BEGIN FOR i IN 1..n LOOP
          PERFORM walrev.context(jsonb_build_object('actor', jsonb_build_object('type', 'user', 'id', (i % 50)::text)));
          UPDATE big5 SET b = md5(clock_timestamp()::text) WHERE id = 1 + i % 100;
          COMMIT;
        END LOOP; END \$\$" >/dev/null
  walrev_cmd s5 --slot s5 run --stop-lsn "$(current_lsn)" >>"$WORK/logs/setup.log" 2>&1 || die "s5: first drain failed"
  # row changes the store counts before the growth (the baseline's rows are not counted as changes)
  S5_BASE=$(q s5 "SELECT coalesce(sum(n_insert + n_update + n_delete), 0) FROM walrev.revision")
  record 5 rows 1 "$n"
  record 5 keyframes_base 1 "$(q s5 "SELECT count(*) FROM walrev.keyframe")"
  note 5 "(a) big5 (integer key, integer, text(32), numeric), $n rows, fillfactor 50, REPLICA IDENTITY FULL (old images come with the WAL, no lookups: the read path is what is measured here): \`walrev setup\` with its baseline, then history grown through the worker by bulk \`UPDATE big5 SET a = a + 1\` (transactions of up to $n rows) and, at each size, $S5_SMALL one-row transactions with an actor context (50 actors, 100 hot rows); keyframes are the worker's own. Snapshots and COPY through the CLI and psql to /dev/null, $S5_ROUNDS rounds, the ratio per round."
  s5_time_snap base ""
  local step=1 size mid
  for size in $((n / 10)) $n $((10 * n)); do
    S5_STEP=$step
    mid=$(q s5 "SELECT max(id) FROM walrev.revision")
    s5_grow $((size - S5_DELTAS - S5_SMALL))
    # the revision where half of this growth's deltas are in
    mid=$(q s5 "SELECT id FROM (SELECT id, sum(n_insert + n_update + n_delete) OVER (ORDER BY id) AS c
                FROM walrev.revision WHERE id > $mid) s
                WHERE c >= (SELECT sum(n_insert + n_update + n_delete) / 2 FROM walrev.revision WHERE id > $mid)
                ORDER BY id LIMIT 1")
    s5_time_snap "newest_$step" ""
    s5_time_snap "mid_$step" "$mid"
    [ $step = 1 ] && s5_queries small
    step=$((step + 1))
  done
  s5_queries big
}

# (c) one object: bench/asof_bench.sh (its table part at 1,000 rows is a
# small check; its object part is the figure: up to 10^6 versions).
s5_object() {
  local script="$BENCH/asof_bench.sh" v=1000000 line
  [ -f "$script" ] || { note 5 "bench/asof_bench.sh is missing: one object's figures are not measured."; return 0; }
  [ "$QUICK" = 1 ] && v=100000
  log "s5: bench/asof_bench.sh --rows 1000 --versions $v --runs 3"
  recreate_db s5obj
  ASOF_CONNINFO="$(conninfo s5obj)" WALREV_BIN="$WALREV_BIN" PGDIR="$PGDIR" \
    bash "$script" --rows 1000 --versions $v --runs 3 >"$RES/s5_asof.md" 2>"$WORK/logs/s5_asof.err" \
    || { note 5 "bench/asof_bench.sh failed (exit $?): $(tail -3 "$WORK/logs/s5_asof.err" | tr '\n' ' ')"; return 0; }
  # | versions | as of, middle | as of, newest | history | history --limit 100 | blame |
  line=$(grep -E "^\| $v \| [0-9.]+ \|" "$RES/s5_asof.md" | tail -1)
  if [ -n "$line" ]; then
    record 5 obj_versions 1 "$v"
    record 5 obj_history_limit_s 1 "$(awk -F'|' '{ gsub(/ /, "", $6); print $6 }' <<<"$line")" s
    record 5 obj_blame_s 1 "$(awk -F'|' '{ gsub(/ /, "", $7); print $7 }' <<<"$line")" s
    record 5 obj_asof_s 1 "$(awk -F'|' '{ gsub(/ /, "", $4); print $4 }' <<<"$line")" s
  fi
}
