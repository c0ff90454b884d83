# s2_source_cost.sh — scenario 2, cost to the source (P2): pgbench TPC-B-like
# TPS (-c 4 -j 2) with nothing attached, a bare pg_recvlogical consumer,
# walrev (history store in the same cluster), walrev with its history store
# on a second cluster ("another server"), and a generic audit trigger —
# interleaved: every round visits each of them once, each round in a rotated
# order (A B C … then B C … A), so drift of the machine falls on all alike and
# ratios pair within a round. periods SYSTEM VERSIONING, a peer no target
# compares with, runs in round 1 only; walrev with REPLICA IDENTITY FULL
# (config walrev_full) is kept for `S2_EXTRA="periods walrev_full"`.
# Each configuration that writes has its own database initialised the same
# way (none and recv share one: they write nothing else). Consumers start
# caught up (pg_recvlogical's slot advanced past other databases' WAL;
# walrev run to the WAL's end first, walrev_catch_up: advancing its slot would
# be a gap, reconciled during the measurement) and are stopped only once
# they have confirmed everything the run wrote.
#
# Besides TPS, counted CPU (steady on a shared machine): the whole source
# server's, the store server's and the consumer process's, from pgbench's
# start until the consumer confirmed the run's WAL, per source transaction;
# and, directly, the processes a consumer adds (its walsender, walrev's
# history backend and keyframe connection — found by the application_name
# its conninfo sets — and its own process).

s2_core="none recv walrev walrev_remote audit"
s2_extra=${S2_EXTRA:-periods}
S2_TABLES=pgbench_accounts,pgbench_branches,pgbench_tellers

s2_db() {
  case $1 in none|recv) echo s2_plain ;; walrev|walrev_full) echo s2_walrev ;; walrev_remote) echo s2_remote ;; *) echo "s2_$1" ;; esac
}
# s2_walrev_opts CONFIG — sets S2_OPTS (walrev's global options), S2_SLOT and
# S2_APP (the application_name of its connections) for a walrev
# configuration; the remote one writes its history to the second cluster,
# under its own schema and publication.
s2_walrev_opts() {
  local db; db=$(s2_db "$1")
  S2_APP=s2_$1
  if [ "$1" = walrev_remote ]; then
    S2_SLOT=walrev_s2r
    S2_OPTS=(--source "$(conninfo $db) application_name=$S2_APP" --history "$(conninfo2 s2_store) application_name=$S2_APP"
             --schema walrev_r --publication walrev_r --slot $S2_SLOT)
  else
    S2_SLOT=walrev_s2
    S2_OPTS=(--source "$(conninfo $db) application_name=$S2_APP" --slot $S2_SLOT)
  fi
}

scenario_2() {
  local secs=${S2_SECS:-30} scale=10 r cfg db order i
  S2_CATCHUP=120
  [ "$QUICK" = 1 ] && { secs=${S2_SECS:-8}; scale=5; S2_CATCHUP=30; }
  [ "$HAVE_WALREV" = 1 ] && start_store_cluster
  log "s2: initialising pgbench databases (scale $scale)"
  # one pgbench -i, then copies of it (CREATE DATABASE … TEMPLATE copies the files: the same rows, seconds)
  recreate_db s2_plain
  pgbench -i -s $scale -q "$(conninfo s2_plain)" >"$WORK/logs/s2_init_s2_plain.log" 2>&1 || die "s2: pgbench -i failed"
  for db in s2_walrev s2_remote s2_periods s2_audit; do
    q postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    q postgres "CREATE DATABASE $db TEMPLATE s2_plain" >/dev/null
  done
  qf s2_periods "$BENCH/workloads/periods.sql" -v tbls=$S2_TABLES >/dev/null
  qf s2_audit "$BENCH/workloads/audit.sql" -v tbls=$S2_TABLES >/dev/null
  q s2_plain "CREATE PUBLICATION walrev FOR TABLES IN SCHEMA public" >/dev/null
  if [ "$HAVE_WALREV" = 1 ]; then
    q2 postgres "DROP DATABASE IF EXISTS s2_store WITH (FORCE)" >/dev/null
    q2 postgres "CREATE DATABASE s2_store" >/dev/null
    # With the baseline, as a deployment runs: every account's old image is in
    # the store (a bounded row cache cannot hold them all, so updates still
    # look them up). A first drain after it moves the slot past the baseline's
    # WAL, which a deployment's worker left behind long ago.
    for cfg in walrev walrev_remote; do
      s2_walrev_opts $cfg
      local t0; t0=$(now_s)
      "$WALREV_BIN" "${S2_OPTS[@]}" setup >>"$WORK/logs/setup.log" 2>&1 || die "s2: walrev setup ($cfg) failed"
      record 2 "setup_s_$cfg" 1 "$(elapsed "$t0" "$(now_s)")" s
      "$WALREV_BIN" "${S2_OPTS[@]}" run --stop-lsn "$(current_lsn)" >>"$WORK/logs/setup.log" 2>&1 \
        || die "s2: walrev's first drain after setup ($cfg) failed"
    done
  fi
  create_slot s2_plain s2_recv pgoutput
  for db in s2_plain s2_walrev s2_remote s2_periods s2_audit; do q $db "VACUUM ANALYZE" >/dev/null; done
  q postgres "CHECKPOINT" >/dev/null
  note 2 "pgbench -c 4 -j 2 -T $secs (TPC-B-like, scale $scale), $RUNS rounds, interleaved: each round runs every configuration once, in an order rotated by one each round; periods in round 1 only. Each writing configuration in its own database; periods and the audit trigger on $S2_TABLES; walrev set up with the baseline of the pgbench rows (old images of accounts come from the store); the remote store is a second PostgreSQL cluster on this machine (same settings), so its CPU is counted apart but shares the cores."

  local core=($s2_core)
  for r in $(seq 1 "$RUNS"); do
    order=()
    for i in $(seq 0 $((${#core[@]} - 1))); do order+=("${core[(i + r - 1) % ${#core[@]}]}"); done
    [ "$r" = 1 ] && order+=($s2_extra)
    for cfg in "${order[@]}"; do
      case $cfg in walrev*) [ "$HAVE_WALREV" = 1 ] || continue ;; esac
      s2_one "$cfg" "$r" "$secs"
    done
  done
  cp "$RES/s2_tps.tsv" "$RES/s2_tps.dat" 2>/dev/null || true
}

# s2_one CONFIG RUN SECONDS
s2_one() {
  local cfg=$1 r=$2 secs=$3 db pid= slot= pfx end waited tps failed aborted app=
  db=$(s2_db "$cfg")
  pfx="$WORK/tmp/s2_${cfg}_$r"
  case $cfg in
    walrev_full) for t in ${S2_TABLES//,/ } pgbench_history; do q $db "ALTER TABLE $t REPLICA IDENTITY FULL" >/dev/null; done ;;
  esac
  case $cfg in
    recv)
      slot=s2_recv app=s2_recv
      advance_slot $db $slot
      pg_recvlogical -d "$(conninfo $db) application_name=$app" --slot $slot --start -o proto_version=1 \
        -o publication_names=walrev -F 0 -s 1 -f /dev/null >"$pfx.consumer.log" 2>&1 &
      pid=$! ;;
    walrev*)
      s2_walrev_opts "$cfg"
      slot=$S2_SLOT app=$S2_APP
      timeout 900 "$WALREV_BIN" "${S2_OPTS[@]}" run --stop-lsn "$(current_lsn)" >>"$WORK/logs/catch_up.log" 2>&1 \
        || die "s2: walrev ($cfg) could not catch up (log: $WORK/logs/catch_up.log)"
      "$WALREV_BIN" "${S2_OPTS[@]}" run >"$pfx.consumer.log" 2>&1 &
      pid=$! ;;
  esac
  if [ -n "$pid" ]; then
    track_pid "$pid"
    wait_active $db $slot 30 || die "s2: $cfg did not start streaming: $(tail -3 "$pfx.consumer.log")"
    sleep 1
  fi
  q $db "VACUUM pgbench_branches, pgbench_tellers" >/dev/null
  local cpu0 cpu20=0 ccpu0=0 ccpu=0 ntx
  cpu0=$(server_cpu); [ -d "$PGDIR2/data" ] && cpu20=$(server_cpu_of "$PGDIR2")
  if [ -n "$pid" ]; then
    ccpu0=$(proc_cpu "$pid")
    { app_cpu_snap "$PGDIR" "$app"; [ -d "$PGDIR2/data" ] && app_cpu_snap "$PGDIR2" "$app"; } >"$pfx.app0"
  fi
  pgbench -c 4 -j 2 -T "$secs" -n --failures-detailed "$(conninfo $db)" >"$pfx.log" 2>&1 || true
  read -r tps failed aborted < <(pgbench_tps "$pfx.log")
  record 2 "tps_$cfg" "$r" "$tps" TPS
  record 2 "failed_$cfg" "$r" "$failed"
  record 2 "aborted_clients_$cfg" "$r" "$aborted"
  printf '%s\t%s\t%s\n' "$cfg" "$r" "$tps" >>"$RES/s2_tps.tsv"
  ntx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$pfx.log" | head -1)
  ntx=${ntx:-0}
  if [ -n "$pid" ]; then
    end=$(current_lsn)
    if waited=$(wait_slot $db $slot "$end" "$S2_CATCHUP"); then
      record 2 "catchup_s_$cfg" "$r" "$waited" s
    else
      note 2 "run $r: $cfg had not confirmed the run's WAL ($end) $S2_CATCHUP s after pgbench ended; it was stopped there (the next start catches up first)."
    fi
    ccpu=$(calc "$(proc_cpu "$pid") - $ccpu0")
    { app_cpu_snap "$PGDIR" "$app"; [ -d "$PGDIR2/data" ] && app_cpu_snap "$PGDIR2" "$app"; } >"$pfx.app1"
    [ "$ntx" -gt 0 ] && record 2 "own_cpu_ms_per_tx_$cfg" "$r" "$(calc "($(app_cpu_delta "$pfx.app0" "$pfx.app1") + $ccpu) * 1000 / $ntx")" ms
    if [ "$cfg" = recv ]; then stop_proc "$pid" INT; else stop_proc "$pid" TERM; fi
  fi
  # Counted, not timed: CPU of the whole source server (pgbench's backends,
  # the walsender, walrev's history backend and keyframes when the store is
  # there, triggers, autovacuum), of the store server when it is another one,
  # plus the consumer's process, from pgbench's start until the consumer
  # confirmed the run's WAL, per transaction pgbench committed.
  if [ "$ntx" -gt 0 ]; then
    local src store=0
    src=$(calc "$(server_cpu) - $cpu0")
    [ -d "$PGDIR2/data" ] && store=$(calc "$(server_cpu_of "$PGDIR2") - $cpu20")
    record 2 "src_cpu_ms_per_tx_$cfg" "$r" "$(calc "$src * 1000 / $ntx")" ms
    record 2 "cpu_ms_per_tx_$cfg" "$r" "$(calc "($src + $store + $ccpu) * 1000 / $ntx")" ms
  fi
  case $cfg in
    walrev_full) for t in ${S2_TABLES//,/ } pgbench_history; do q $db "ALTER TABLE $t REPLICA IDENTITY DEFAULT" >/dev/null; done ;;
  esac
  log "s2 run $r: $cfg $tps TPS (failed $failed, aborted clients $aborted)"
}
