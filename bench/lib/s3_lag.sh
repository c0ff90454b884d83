# s3_lag.sh — scenario 3, commit-to-durable lag: pgbench TPC-B-like at a fixed
# rate with walrev running. A psql \watch poller reads the newest revision id
# in the history store every 5 ms; afterwards each revision's lag is the first
# poll that saw it minus its source commit_time (both from the server's clock;
# synchronous_commit = on, so visible means durable). bench/lib/lag.py
# computes p50/p99/max.
#
# Two rates, each 70% of a maximum measured in scenario 2: of the system under
# test (pgbench with walrev attached: "w", the target's figure) and of the
# bare server (nothing attached: "n"). Walrev's own cost (scenario 2) puts the
# second near or above what the machine sustains with walrev attached, so it
# measures a backlog as much as the lag; both are reported.

scenario_3() {
  [ "$HAVE_WALREV" = 1 ] || { note 3 "skipped: walrev not built."; return 0; }
  local db=s2_plain slot=walrev_s2 secs=60 rate r pfx pid ppid startid end
  [ "$QUICK" = 1 ] && secs=10
  if [ "$(q postgres "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 0 ] \
     || [ "$(q postgres "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot' AND database = '$db'")" = 0 ]; then
    db=s3 slot=walrev_s3
    recreate_db $db
    pgbench -i -s 10 -q "$(conninfo $db)" >"$WORK/logs/s3_init.log" 2>&1 || die "s3: pgbench -i failed"
    walrev_cmd $db --slot $slot setup >>"$WORK/logs/setup.log" 2>&1 || die "s3: walrev setup failed"
    walrev_cmd $db --slot $slot run --stop-lsn "$(current_lsn)" >>"$WORK/logs/setup.log" 2>&1 \
      || die "s3: walrev's first drain after setup failed"
  fi
  local maxw maxn
  maxn=$(awk -F'\t' '$1 == 2 && $2 == "tps_none" { print $4 }' "$RES/figures.tsv" | median)
  maxw=$(awk -F'\t' '$1 == 2 && $2 == "tps_walrev" { print $4 }' "$RES/figures.tsv" | median)
  if [ -z "$maxn" ]; then
    pgbench -c 4 -j 2 -T 10 -n "$(conninfo $db)" >"$WORK/tmp/s3_max.log" 2>&1 || true
    read -r maxn _ _ < <(pgbench_tps "$WORK/tmp/s3_max.log")
  fi
  if [ -z "$maxw" ]; then
    walrev_catch_up $db $slot
    "$WALREV_BIN" --source "$(conninfo $db)" --slot $slot run >"$WORK/tmp/s3_maxw.walrev.log" 2>&1 &
    pid=$!; track_pid "$pid"
    wait_active $db $slot 30 || die "s3: walrev did not start streaming: $(tail -3 "$WORK/tmp/s3_maxw.walrev.log")"
    pgbench -c 4 -j 2 -T 10 -n "$(conninfo $db)" >"$WORK/tmp/s3_maxw.log" 2>&1 || true
    stop_proc "$pid" TERM
    read -r maxw _ _ < <(pgbench_tps "$WORK/tmp/s3_maxw.log")
  fi
  record 3 max_tps_w 1 "$maxw" TPS
  record 3 max_tps_n 1 "$maxn" TPS
  note 3 "pgbench -c 4 -j 2 --rate R -T $secs with walrev attached (REPLICA IDENTITY DEFAULT), history store in the same cluster, batch settings at their defaults; R = 70% of the $maxw TPS measured with walrev attached (the target's figure), then 70% of the $maxn TPS measured with nothing attached."
  local level m
  for level in w n; do
    [ $level = w ] && m=$maxw || m=$maxn
    rate=$(awk -v m="$m" 'BEGIN { printf "%d", m * 0.7 }')
    record 3 "rate_tps_$level" 1 "$rate" TPS
    for r in $(seq 1 "$RUNS"); do
      pfx="$WORK/tmp/s3_${level}_$r"
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
      wait_slot $db $slot "$end" 120 >/dev/null || note 3 "run $level$r: walrev had not confirmed $end 120 s after pgbench ended."
      sleep 0.5
      stop_proc "$ppid" TERM
      stop_proc "$pid" TERM
      q $db "SELECT id, extract(epoch FROM commit_time) FROM walrev.revision WHERE id > $startid ORDER BY id" \
        | tr '|' ' ' >"$pfx.revs"
      local out
      out=$(python3 "$BENCH/lib/lag.py" "$pfx.polls" "$pfx.revs" "$RES/s3_lag_${level}_$r.dat") \
        || die "s3: lag computation failed"
      read -r p50 p99 pmax nrev <<<"$out"
      record 3 "lag_p50_ms_$level" "$r" "$p50" ms
      record 3 "lag_p99_ms_$level" "$r" "$p99" ms
      record 3 "lag_max_ms_$level" "$r" "$pmax" ms
      record 3 "revisions_$level" "$r" "$nrev"
      # The same without the run's first second (pgbench starting at full rate, walrev's first sight of each table)
      record 3 "lag_p99_steady_ms_$level" "$r" \
        "$(awk '$1 >= 1 { print $2 }' "$RES/s3_lag_${level}_$r.dat" | sort -g | awk '{ v[NR] = $1 } END { k = int(NR * 0.99); if (k < 1) k = 1; if (NR) print v[k] }')" ms
      record 3 "achieved_tps_$level" "$r" "$(pgbench_tps "$pfx.pgbench.log" | awk '{print $1}')" TPS
      log "s3 rate $rate run $r: $nrev revisions, lag p50 $p50 ms, p99 $p99 ms, max $pmax ms"
    done
  done
}
