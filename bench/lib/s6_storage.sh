# s6_storage.sh — scenario 6, storage: bytes of history per single-column
# UPDATE of a 12-column row, one update per transaction, kept by walrev (every
# table, index and TOAST byte of schema walrev), by a generic jsonb audit
# trigger (audit_log) and by periods SYSTEM VERSIONING (bench12_history).
# Each keeper has its own database; sizes are taken after the starting rows
# are in (and captured) and again after the updates.

scenario_6() {
  local rows=10000 rounds=10 n r db before after lsn
  [ "$QUICK" = 1 ] && rows=2000
  n=$((rows * rounds))
  note 6 "$rows rows of the 12-column table, then $rounds rounds of UPDATE bench12 SET c_int = c_int + 1 WHERE id = i, one row per transaction ($n updates); sizes exclude the starting rows (measured after they were captured)."
  record 6 updates 1 "$n"
  for r in $(seq 1 "$RUNS"); do
    # audit trigger (on UPDATE only matters: the rows go in before the trigger)
    db=s6_audit
    recreate_db $db
    qf $db "$BENCH/workloads/table12.sql" >/dev/null
    q $db "CALL bench_fill($rows)" >/dev/null
    qf $db "$BENCH/workloads/audit.sql" -v tbls=bench12 >/dev/null
    q $db "VACUUM ANALYZE" >/dev/null
    before=$(q $db "SELECT pg_total_relation_size('audit_log')")
    psql "$(conninfo $db)" -XAtq -v ON_ERROR_STOP=1 -c "SET synchronous_commit = off" -c "CALL bench_touch($rows, $rounds)"
    after=$(q $db "SELECT pg_total_relation_size('audit_log')")
    record 6 bytes_per_update_audit "$r" "$(calc "($after - $before) / $n")" B

    # periods
    db=s6_periods
    recreate_db $db
    qf $db "$BENCH/workloads/table12.sql" >/dev/null
    q $db "CALL bench_fill($rows)" >/dev/null
    qf $db "$BENCH/workloads/periods.sql" -v tbls=bench12 >/dev/null
    q $db "VACUUM ANALYZE" >/dev/null
    before=$(q $db "SELECT pg_total_relation_size('bench12_history')")
    psql "$(conninfo $db)" -XAtq -v ON_ERROR_STOP=1 -c "SET synchronous_commit = off" -c "CALL bench_touch($rows, $rounds)"
    after=$(q $db "SELECT pg_total_relation_size('bench12_history')")
    record 6 bytes_per_update_periods "$r" "$(calc "($after - $before) / $n")" B

    [ "$HAVE_WALREV" = 1 ] || continue
    db=s6_walrev
    recreate_db $db
    qf $db "$BENCH/workloads/table12.sql" >/dev/null
    fresh_store $db s6_walrev
    q $db "CALL bench_fill($rows)" >/dev/null
    lsn=$(current_lsn)
    timed "$WORK/tmp/s6_fill_$r" 900 "$WALREV_BIN" --source "$(conninfo $db)" --slot s6_walrev run --stop-lsn "$lsn" \
      || die "s6: walrev run (fill) failed: $(tail -5 "$WORK/tmp/s6_fill_$r.log")"
    before=$(history_bytes $db)
    psql "$(conninfo $db)" -XAtq -v ON_ERROR_STOP=1 -c "SET synchronous_commit = off" -c "CALL bench_touch($rows, $rounds)"
    lsn=$(current_lsn)
    timed "$WORK/tmp/s6_upd_$r" 1800 "$WALREV_BIN" --source "$(conninfo $db)" --slot s6_walrev run --stop-lsn "$lsn" \
      || die "s6: walrev run (updates) failed: $(tail -5 "$WORK/tmp/s6_upd_$r.log")"
    after=$(history_bytes $db)
    record 6 bytes_per_update_walrev "$r" "$(calc "($after - $before) / $n")" B
    record 6 capture_updates_per_s "$r" "$(calc "$n / $(time_field "$WORK/tmp/s6_upd_$r" 1)")" revisions/s
    if [ "$r" = 1 ]; then
      q $db "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c
             JOIN pg_namespace s ON s.oid = c.relnamespace
             WHERE s.nspname = 'walrev' AND c.relkind = 'r' AND pg_total_relation_size(c.oid) > 16384
             ORDER BY 2 DESC" | tr '|' '\t' >"$RES/s6_walrev_tables.tsv"
    fi
    log "s6 run $r: walrev $(calc "($after - $before) / $n") B/update"
  done
}
