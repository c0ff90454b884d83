# s6_storage.sh — scenario 6, storage (P6): bytes of history per
# single-column UPDATE of a 12-column row kept by walrev (every table, index
# and TOAST byte of schema walrev: revisions, deltas, keyframes, their
# indexes), in one-update transactions and in 100-row transactions, by a
# generic jsonb audit trigger (audit_log) and by periods SYSTEM VERSIONING
# (bench12_history). Each keeper has its own database; sizes are taken after
# the starting rows are in (and captured) and again after the updates.
# Storage is counted, not timed: one run (the sizes repeat to the byte).

# s6_trigger_keeper NAME WORKLOAD TABLE ROWS ROUNDS: a keeper made by a
# workload SQL file (a trigger) in database s6_NAME, after the starting rows;
# records bytes_per_update_NAME, the growth of TABLE over the updates.
s6_trigger_keeper() {
  local name=$1 sql=$2 table=$3 rows=$4 rounds=$5 db=s6_$1 before after
  recreate_db $db
  qf $db "$BENCH/workloads/table12.sql" >/dev/null
  q $db "CALL bench_fill($rows)" >/dev/null
  qf $db "$BENCH/workloads/$sql" -v tbls=bench12 >/dev/null
  q $db "VACUUM ANALYZE" >/dev/null
  before=$(q $db "SELECT pg_total_relation_size('$table')")
  psql "$(conninfo $db)" -XAtq -v ON_ERROR_STOP=1 -c "SET synchronous_commit = off" -c "CALL bench_touch($rows, $rounds)"
  after=$(q $db "SELECT pg_total_relation_size('$table')")
  record 6 "bytes_per_update_$name" 1 "$(calc "($after - $before) / ($rows * $rounds)")" B
}

# s6_relation_bytes DB — one line per relation of schema walrev: name, bytes
# (a table's heap with its TOAST, free space and visibility maps; an index's
# own). The lines sum to history_bytes.
s6_relation_bytes() {
  q "$1" "SELECT c.relname, CASE WHEN c.relkind = 'i' THEN pg_relation_size(c.oid) ELSE pg_table_size(c.oid) END
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'walrev' AND c.relkind IN ('r', 'm', 'i') ORDER BY 1" | tr '|' '\t'
}

# s6_keyframes DB — keyframes in the store and the rows they hold: "count rows".
s6_keyframes() {
  q "$1" "SELECT count(*), coalesce(sum(n_rows), 0) FROM walrev.keyframe" | tr '|' ' '
}

scenario_6() {
  local rows=10000 rounds=10 n db before after lsn per kf0 kf1
  [ "$QUICK" = 1 ] && rows=2000
  n=$((rows * rounds))
  note 6 "$rows rows of the 12-column table, then $rounds rounds of UPDATE bench12 SET c_int = c_int + 1 WHERE id = i ($n updates), one row per transaction, and for walrev also 100 rows per transaction; sizes exclude the starting rows (measured after they were captured). Counted, not timed: one run."
  record 6 updates 1 "$n"
  # audit trigger (on UPDATE only matters: the rows go in before the trigger)
  s6_trigger_keeper audit audit.sql audit_log "$rows" "$rounds"
  s6_trigger_keeper periods periods.sql bench12_history "$rows" "$rounds"

  [ "$HAVE_WALREV" = 1 ] || return 0
  for per in 1 100; do
    db=s6_walrev_$per
    recreate_db $db
    qf $db "$BENCH/workloads/table12.sql" >/dev/null
    fresh_store $db s6_walrev_$per
    q $db "CALL bench_fill($rows)" >/dev/null
    lsn=$(current_lsn)
    timed "$WORK/tmp/s6_fill_$per" 900 "$WALREV_BIN" --source "$(conninfo $db)" --slot s6_walrev_$per run --stop-lsn "$lsn" \
      || die "s6: walrev run (fill) failed: $(tail -5 "$WORK/tmp/s6_fill_$per.log")"
    before=$(history_bytes $db)
    s6_relation_bytes $db >"$WORK/tmp/s6_rel_before_$per"
    kf0=$(s6_keyframes $db)
    psql "$(conninfo $db)" -XAtq -v ON_ERROR_STOP=1 -c "SET synchronous_commit = off" -c "CALL bench_touch_tx($rows, $rounds, $per)"
    lsn=$(current_lsn)
    timed "$WORK/tmp/s6_upd_$per" 1800 "$WALREV_BIN" --source "$(conninfo $db)" --slot s6_walrev_$per run --stop-lsn "$lsn" \
      || die "s6: walrev run (updates) failed: $(tail -5 "$WORK/tmp/s6_upd_$per.log")"
    after=$(history_bytes $db)
    local key=walrev; [ $per = 100 ] && key=walrev100
    record 6 "bytes_per_update_$key" 1 "$(calc "($after - $before) / $n")" B
    # Keyframes taken while the updates were captured, and their rows: the
    # keyframe rule (keyframe_factor 1) asks for about one per table's live
    # rows of deltas, i.e. n / rows of them holding n rows in all.
    kf1=$(s6_keyframes $db)
    record 6 "keyframes_$key" 1 "$(( ${kf1% *} - ${kf0% *} ))"
    record 6 "keyframe_rows_$key" 1 "$(( ${kf1#* } - ${kf0#* } ))" rows
    # Where the bytes went: each relation's growth over the updates, per update.
    s6_relation_bytes $db | awk -F'\t' -v n=$n 'NR == FNR { b[$1] = $2; next }
        $2 - b[$1] != 0 { printf "%s\t%d\t%.1f\n", $1, $2 - b[$1], ($2 - b[$1]) / n }' \
        "$WORK/tmp/s6_rel_before_$per" - | sort -t$'\t' -k2,2nr >"$RES/s6_${key}_growth.tsv"
    record 6 "capture_updates_per_s_$key" 1 "$(calc "$n / $(time_field "$WORK/tmp/s6_upd_$per" 1)")" updates/s
    q $db "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c
           JOIN pg_namespace s ON s.oid = c.relnamespace
           WHERE s.nspname = 'walrev' AND c.relkind = 'r' AND pg_total_relation_size(c.oid) > 16384
           ORDER BY 2 DESC" | tr '|' '\t' >"$RES/s6_${key}_tables.tsv"
    log "s6: walrev, $per per transaction: $(calc "($after - $before) / $n") B/update"
  done
}
