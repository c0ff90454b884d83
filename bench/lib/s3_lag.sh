# s3_lag.sh — scenario 3, commit-to-durable lag (P3): pgbench TPC-B-like at a
# fixed rate, 70% of the maximum TPS with nothing attached (scenario 2's
# median), with walrev running and its history store in the same cluster. A
# psql \watch poller reads the newest revision id and the server's WAL flush
# and insert positions every 5 ms; afterwards each revision's lag is the poll
# that saw it visible, and the poll that saw the WAL flushed past it (durable:
# the history session commits with synchronous_commit = off), minus its
# source commit_time, both from the server's clock (bench/lib/lag.py).

scenario_3() {
  [ "$HAVE_WALREV" = 1 ] || { note 3 "skipped: walrev not built."; return 0; }
  local db=s2_walrev slot=walrev_s2 secs=${S3_SECS:-45} rate r pfx pid ppid startid end maxn src
  [ "$QUICK" = 1 ] && secs=${S3_SECS:-10}
  if [ "$(q postgres "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot' AND database = '$db'")" = 0 ]; then
    db=s3 slot=walrev_s3
    recreate_db $db
    pgbench -i -s 10 -q "$(conninfo $db)" >"$WORK/logs/s3_init.log" 2>&1 || die "s3: pgbench -i failed"
    walrev_cmd $db --slot $slot setup >>"$WORK/logs/setup.log" 2>&1 || die "s3: walrev setup failed"
    walrev_cmd $db --slot $slot run --stop-lsn "$(current_lsn)" >>"$WORK/logs/setup.log" 2>&1 \
      || die "s3: walrev's first drain after setup failed"
  fi
  maxn=$(awk -F'\t' '$1 == 2 && $2 == "tps_none" { print $4 }' "$RES/figures.tsv" | median)
  src="scenario 2's median with nothing attached"
  if [ -z "$maxn" ]; then
    pgbench -c 4 -j 2 -T 15 -n "$(conninfo $db)" >"$WORK/tmp/s3_max.log" 2>&1 || true
    read -r maxn _ _ < <(pgbench_tps "$WORK/tmp/s3_max.log")
    src="a 15 s pgbench run with nothing attached (scenario 2 did not run)"
  fi
  record 3 max_tps_n 1 "$maxn" TPS
  rate=$(awk -v m="$maxn" 'BEGIN { printf "%d", m * 0.7 }')
  record 3 rate_tps_n 1 "$rate" TPS
  note 3 "pgbench -c 4 -j 2 --rate $rate -T $secs with walrev attached (REPLICA IDENTITY DEFAULT), history store in the same cluster, batch settings at their defaults; $rate TPS = 70% of $(printf '%.0f' "$maxn") TPS, $src."
  for r in $(seq 1 "$RUNS"); do
    pfx="$WORK/tmp/s3_n_$r"
    walrev_catch_up $db $slot
    "$WALREV_BIN" --source "$(conninfo $db)" --slot $slot run >"$pfx.walrev.log" 2>&1 &
    pid=$!; track_pid "$pid"
    wait_active $db $slot 30 || die "s3: walrev did not start streaming: $(tail -3 "$pfx.walrev.log")"
    sleep 1
    startid=$(q $db "SELECT coalesce(max(id), 0) FROM walrev.revision")
    psql "$(conninfo $db)" -XAtq -f "$BENCH/workloads/lagprobe.sql" >"$pfx.polls" 2>"$pfx.poller.err" &
    ppid=$!; track_pid "$ppid"
    q $db "VACUUM pgbench_branches, pgbench_tellers" >/dev/null
    pgbench -c 4 -j 2 -T "$secs" -n --rate "$rate" "$(conninfo $db)" >"$pfx.pgbench.log" 2>&1 || true
    end=$(current_lsn)
    wait_slot $db $slot "$end" 120 >/dev/null || note 3 "run $r: walrev had not confirmed $end 120 s after pgbench ended."
    sleep 0.5
    stop_proc "$ppid" TERM
    stop_proc "$pid" TERM
    q $db "SELECT id, extract(epoch FROM commit_time) FROM walrev.revision WHERE id > $startid ORDER BY id" \
      | tr '|' ' ' >"$pfx.revs"
    local out p50 p99 pmax nrev d50 d99 dmax
    out=$(python3 "$BENCH/lib/lag.py" "$pfx.polls" "$pfx.revs" "$RES/s3_lag_n_$r.dat") \
      || die "s3: lag computation failed"
    read -r p50 p99 pmax nrev d50 d99 dmax <<<"$out"
    record 3 lag_p50_ms_n "$r" "$p50" ms
    record 3 lag_p99_ms_n "$r" "$p99" ms
    record 3 lag_max_ms_n "$r" "$pmax" ms
    record 3 durable_p50_ms_n "$r" "$d50" ms
    record 3 durable_p99_ms_n "$r" "$d99" ms
    record 3 durable_max_ms_n "$r" "$dmax" ms
    record 3 revisions_n "$r" "$nrev"
    # The same without the run's first second (pgbench starting at full rate, walrev's first sight of each table)
    record 3 durable_p99_steady_ms_n "$r" \
      "$(awk '$1 >= 1 && $3 != "NaN" { print $3 }' "$RES/s3_lag_n_$r.dat" | sort -g | awk '{ v[NR] = $1 } END { k = int(NR * 0.99); if (k < 1) k = 1; if (NR) print v[k] }')" ms
    record 3 achieved_tps_n "$r" "$(pgbench_tps "$pfx.pgbench.log" | awk '{print $1}')" TPS
    log "s3 rate $rate run $r: $nrev revisions, durable lag p50 $d50 ms, p99 $d99 ms, max $dmax ms (visible p99 $p99 ms)"
  done
}
