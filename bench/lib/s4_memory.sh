# s4_memory.sh — scenario 4, memory: walrev's peak RSS (and RSS over time)
# while capturing (A) one huge INSERT transaction and (B) a transaction that
# rewrites N rows each holding a 1 MiB uncompressed TOASTed value (after the
# transaction that inserted them). One WAL, one slot per run, a fresh history
# store per run; part A stops at A's end LSN, part B continues from there.

scenario_4() {
  [ "$HAVE_WALREV" = 1 ] || { note 4 "skipped: walrev not built."; return 0; }
  local db=s4 rows=5000000 toast=1000 r lsn_a lsn_b pfx
  [ "$QUICK" = 1 ] && { rows=200000; toast=200; }
  recreate_db $db
  qf $db "$BENCH/workloads/memory.sql" >/dev/null
  fresh_store $db s4_init
  drop_slot $db s4_init
  for r in $(seq 1 "$RUNS"); do create_slot $db "s4_$r" pgoutput; done
  log "s4: one $rows-row INSERT transaction, then $toast x 1 MiB TOASTed rows inserted and rewritten"
  q $db "INSERT INTO big SELECT g, md5(g::text), g % 1000, now() FROM generate_series(1, $rows) g" >/dev/null
  lsn_a=$(current_lsn)
  q $db "INSERT INTO toasty SELECT g, 0, repeat(md5(g::text), 32768) FROM generate_series(1, $toast) g" >/dev/null
  q $db "UPDATE toasty SET n = n + 1, payload = repeat(md5((id + 1000000)::text), 32768)" >/dev/null
  lsn_b=$(current_lsn)
  note 4 "A: INSERT of $rows rows (bigint, text(32), int, timestamptz) in one transaction. B: $toast rows with a 1 MiB STORAGE EXTERNAL text inserted in one transaction, then all rewritten (new 1 MiB value each) in one more; RSS of walrev's process, sampled every 50 ms."
  record 4 rows_a 1 "$rows"
  record 4 toast_rows_b 1 "$toast"
  for r in $(seq 1 "$RUNS"); do
    fresh_store $db "s4_$r"
    pfx="$WORK/tmp/s4_a_$r"
    timed "$pfx" 3600 "$WALREV_BIN" --source "$(conninfo $db)" --slot "s4_$r" run --stop-lsn "$lsn_a" \
      || die "s4: walrev run (A) failed: $(tail -5 "$pfx.log")"
    record 4 peak_rss_a "$r" "$(calc "$(time_field "$pfx" 2) / 1024")" MiB
    record 4 seconds_a "$r" "$(time_field "$pfx" 1)" s
    record 4 rows_per_s_a "$r" "$(calc "$rows / $(time_field "$pfx" 1)")" rows/s
    record 4 rss_growth_a "$r" "$(s4_growth "$pfx.rss")" MiB
    cp "$pfx.rss" "$RES/s4_rss_a_$r.dat"
    pfx="$WORK/tmp/s4_b_$r"
    timed "$pfx" 3600 "$WALREV_BIN" --source "$(conninfo $db)" --slot "s4_$r" run --stop-lsn "$lsn_b" \
      || die "s4: walrev run (B) failed: $(tail -5 "$pfx.log")"
    record 4 peak_rss_b "$r" "$(calc "$(time_field "$pfx" 2) / 1024")" MiB
    record 4 seconds_b "$r" "$(time_field "$pfx" 1)" s
    record 4 rss_growth_b "$r" "$(s4_growth "$pfx.rss")" MiB
    cp "$pfx.rss" "$RES/s4_rss_b_$r.dat"
    local stored
    stored=$(q $db "SELECT coalesce(sum(n_insert + n_update), 0) FROM walrev.revision")
    [ "$stored" = $((rows + 2 * toast)) ] || die "s4: run $r: walrev stored $stored row changes, expected $((rows + 2 * toast))"
    drop_slot $db "s4_$r"
    log "s4 run $r: peak RSS A $(time_field "$WORK/tmp/s4_a_$r" 2) KiB, B $(time_field "$pfx" 2) KiB"
  done
}

# s4_growth RSSFILE — MiB the RSS grew from the end of the first quarter of
# the capture to its peak in the last half ("flat" means about 0).
s4_growth() {
  awk '{ t[NR] = $1; v[NR] = $2 } END {
    if (NR < 4) { print 0; exit }
    q = v[int(NR / 4)]; m = 0
    for (i = int(NR / 2); i <= NR; i++) if (v[i] > m) m = v[i]
    printf "%.1f", (m - q) / 1024 }' "$1"
}
