# s2_source_cost.sh — scenario 2, cost to the source: pgbench TPC-B-like TPS
# (-c 4 -j 2) with nothing attached, a bare pg_recvlogical consumer, walrev
# (REPLICA IDENTITY DEFAULT and FULL), periods SYSTEM VERSIONING and a generic
# audit trigger. Each configuration has its own database initialised the same
# way; one run visits every configuration in turn, so ratios pair within it.
# Consumers start caught up (pg_recvlogical's slot advanced past other
# databases' WAL; walrev run to the WAL's end first, walrev_catch_up: advancing
# its slot would be a gap, reconciled during the measurement) and are
# stopped only once they have confirmed everything the run wrote.

s2_configs="none recv walrev walrev_full periods audit"
S2_TABLES=pgbench_accounts,pgbench_branches,pgbench_tellers

s2_db() { case $1 in none|recv|walrev|walrev_full) echo s2_plain ;; *) echo "s2_$1" ;; esac; }

scenario_2() {
  local secs=30 scale=10 r cfg db
  S2_CATCHUP=120
  [ "$QUICK" = 1 ] && { secs=8; scale=5; S2_CATCHUP=20; }
  log "s2: initialising pgbench databases (scale $scale)"
  for db in s2_plain s2_periods s2_audit; do
    recreate_db $db
    pgbench -i -s $scale -q "$(conninfo $db)" >"$WORK/logs/s2_init_$db.log" 2>&1 || die "s2: pgbench -i failed on $db"
  done
  qf s2_periods "$BENCH/workloads/periods.sql" -v tbls=$S2_TABLES >/dev/null
  qf s2_audit "$BENCH/workloads/audit.sql" -v tbls=$S2_TABLES >/dev/null
  if [ "$HAVE_WALREV" = 1 ]; then
    # With the baseline, as a deployment runs: every account's old image is in
    # the store (a bounded row cache cannot hold them all, so updates still
    # look them up). A first drain after it moves the slot past the baseline's
    # WAL, which a deployment's worker left behind long ago.
    walrev_cmd s2_plain --slot walrev_s2 setup >>"$WORK/logs/setup.log" 2>&1 || die "s2: walrev setup failed"
    walrev_cmd s2_plain --slot walrev_s2 run --stop-lsn "$(current_lsn)" >>"$WORK/logs/setup.log" 2>&1 \
      || die "s2: walrev's first drain after setup failed"
    q s2_plain "CHECKPOINT" >/dev/null
  else
    q s2_plain "CREATE PUBLICATION walrev FOR TABLES IN SCHEMA public" >/dev/null
  fi
  create_slot s2_plain s2_recv pgoutput
  for db in s2_plain s2_periods s2_audit; do q $db "VACUUM ANALYZE" >/dev/null; done
  q postgres "CHECKPOINT" >/dev/null
  note 2 "pgbench -c 4 -j 2 -T $secs (TPC-B-like, scale $scale); each configuration in its own database; periods and the audit trigger on $S2_TABLES; walrev set up with the baseline of the pgbench rows (old images of accounts come from the store)."

  for r in $(seq 1 "$RUNS"); do
    for cfg in $s2_configs; do
      case $cfg in walrev|walrev_full) [ "$HAVE_WALREV" = 1 ] || continue ;; esac
      s2_one "$cfg" "$r" "$secs"
    done
  done
  cp "$RES/s2_tps.tsv" "$RES/s2_tps.dat" 2>/dev/null || true
}

# s2_one CONFIG RUN SECONDS
s2_one() {
  local cfg=$1 r=$2 secs=$3 db pid= slot= pfx end waited tps failed aborted
  db=$(s2_db "$cfg")
  pfx="$WORK/tmp/s2_${cfg}_$r"
  case $cfg in
    walrev_full) for t in ${S2_TABLES//,/ } pgbench_history; do q $db "ALTER TABLE $t REPLICA IDENTITY FULL" >/dev/null; done ;;
  esac
  case $cfg in
    recv)
      slot=s2_recv
      advance_slot $db $slot
      pg_recvlogical -d "$(conninfo $db)" --slot $slot --start -o proto_version=1 \
        -o publication_names=walrev -F 0 -s 1 -f /dev/null >"$pfx.consumer.log" 2>&1 &
      pid=$! ;;
    walrev|walrev_full)
      slot=walrev_s2
      walrev_catch_up $db $slot
      "$WALREV_BIN" --source "$(conninfo $db)" --slot $slot run >"$pfx.consumer.log" 2>&1 &
      pid=$! ;;
  esac
  if [ -n "$pid" ]; then
    track_pid "$pid"
    wait_active $db $slot 30 || die "s2: $cfg did not start streaming: $(tail -3 "$pfx.consumer.log")"
    sleep 1
  fi
  q $db "VACUUM pgbench_branches, pgbench_tellers" >/dev/null
  local cpu0 ccpu0=0 ccpu=0 ntx
  cpu0=$(server_cpu); [ -n "$pid" ] && ccpu0=$(proc_cpu "$pid")
  pgbench -c 4 -j 2 -T "$secs" -n --failures-detailed "$(conninfo $db)" >"$pfx.log" 2>&1 || true
  read -r tps failed aborted < <(pgbench_tps "$pfx.log")
  record 2 "tps_$cfg" "$r" "$tps" TPS
  record 2 "failed_$cfg" "$r" "$failed"
  record 2 "aborted_clients_$cfg" "$r" "$aborted"
  printf '%s\t%s\t%s\n' "$cfg" "$r" "$tps" >>"$RES/s2_tps.tsv"
  if [ -n "$pid" ]; then
    end=$(current_lsn)
    if waited=$(wait_slot $db $slot "$end" "$S2_CATCHUP"); then
      record 2 "catchup_s_$cfg" "$r" "$waited" s
    else
      note 2 "run $r: $cfg had not confirmed the run's WAL ($end) $S2_CATCHUP s after pgbench ended; it was stopped there (the next start skips the rest)."
    fi
    ccpu=$(calc "$(proc_cpu "$pid") - $ccpu0")
    if [ "$cfg" = recv ]; then stop_proc "$pid" INT; else stop_proc "$pid" TERM; fi
  fi
  # Counted, not timed: CPU of the whole server (pgbench's backends, the
  # walsender, walrev's history backend and keyframes, triggers, autovacuum)
  # plus the consumer's process, from pgbench's start until the consumer
  # confirmed the run's WAL, per transaction pgbench committed.
  ntx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$pfx.log" | head -1)
  [ "${ntx:-0}" -gt 0 ] && record 2 "cpu_ms_per_tx_$cfg" "$r" "$(calc "($(server_cpu) - $cpu0 + $ccpu) * 1000 / $ntx")" ms
  case $cfg in
    walrev_full) for t in ${S2_TABLES//,/ } pgbench_history; do q $db "ALTER TABLE $t REPLICA IDENTITY DEFAULT" >/dev/null; done ;;
  esac
  log "s2 run $r: $cfg $tps TPS (failed $failed, aborted clients $aborted)"
}
