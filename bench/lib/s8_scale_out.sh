# s8_scale_out.sh — scenario 8, beyond one machine: several workers, one per
# source database, writing into one history store on another server (the
# second cluster, $WORK/pg2), each under its own schema (docs/deployment.md).
# Three source databases get the same WAL (10-row transactions of the
# 12-column table's mix); per run, one worker drains one database's WAL
# alone, then three workers drain the three databases' at once. The
# aggregate rate against the single one says how the store takes several
# writers; the store server's CPU per change says what each costs it.
# (The other deployment, one worker with its store on another server, is
# scenario 2's "walrev, history on another server": what the source pays.)

S8_K=3

s8_opts() { # s8_opts K SLOT — sets S8_OPTS for source database K
  S8_OPTS=(--source "$(conninfo s8_src$1)" --history "$(conninfo2 s8_store)" --schema "src$1" --slot "$2")
}

s8_fresh() { # s8_fresh K SLOT — an empty store schema for source K, on SLOT
  q2 s8_store "DROP SCHEMA IF EXISTS src$1 CASCADE" >/dev/null
  s8_opts "$1" "$2"
  "$WALREV_BIN" "${S8_OPTS[@]}" setup --no-baseline >>"$WORK/logs/setup.log" 2>&1 \
    || die "s8: walrev setup for s8_src$1 failed (log: $WORK/logs/setup.log)"
}

scenario_8() {
  [ "$HAVE_WALREV" = 1 ] || { note 8 "skipped: walrev not built."; return 0; }
  local m=100000 k r end pfx pids t0 t1 c0 c1
  [ "$QUICK" = 1 ] && m=20000
  start_store_cluster
  q2 postgres "DROP DATABASE IF EXISTS s8_store WITH (FORCE)" >/dev/null
  q2 postgres "CREATE DATABASE s8_store" >/dev/null
  for k in $(seq 1 $S8_K); do
    recreate_db s8_src$k
    qf s8_src$k "$BENCH/workloads/table12.sql" >/dev/null
    # the publication and walrev's objects before the slots (as in scenario 1)
    s8_fresh "$k" s8_init_$k
    drop_slot s8_src$k s8_init_$k
    for r in $(seq 1 "$RUNS"); do
      create_slot s8_src$k "s8_m${k}_$r" pgoutput
      [ "$k" = 1 ] && create_slot s8_src1 "s8_single_$r" pgoutput
    done
  done
  log "s8: $m row changes in 10-row transactions in each of $S8_K databases"
  for k in $(seq 1 $S8_K); do
    psql "$(conninfo s8_src$k)" -XAtq -v ON_ERROR_STOP=1 -c "SET synchronous_commit = off" -c "CALL bench_mixed($((m / 10)), 10)"
  done
  end=$(current_lsn)
  q postgres "CHECKPOINT" >/dev/null
  note 8 "$S8_K source databases in the bench cluster, each with its own WAL of $m row changes (scenario 1's mix, 10-row transactions); one history store database on a second cluster (same settings, same machine: the cores are shared, the store server's CPU is counted apart), a schema per source (\`--history … --schema srcK\`). Per run: one worker alone on one database, then $S8_K workers at once, one per database."
  for r in $(seq 1 "$RUNS"); do
    s8_fresh 1 "s8_single_$r"
    pfx="$WORK/tmp/s8_single_$r"
    c0=$(server_cpu_of "$PGDIR2")
    timed "$pfx" 1800 "$WALREV_BIN" "${S8_OPTS[@]}" run --stop-lsn "$end" || die "s8: walrev (single) failed: $(tail -5 "$pfx.log")"
    c1=$(server_cpu_of "$PGDIR2")
    record 8 cps_single "$r" "$(calc "$m / $(time_field "$pfx" 1)")" changes/s
    record 8 store_cpu_us_single "$r" "$(calc "($c1 - $c0) * 1e6 / $m")" µs
    s8_check 1 "$m"
    drop_slot s8_src1 "s8_single_$r"
    for k in $(seq 1 $S8_K); do s8_fresh "$k" "s8_m${k}_$r"; done
    pids=()
    c0=$(server_cpu_of "$PGDIR2"); t0=$(now_s)
    for k in $(seq 1 $S8_K); do
      s8_opts "$k" "s8_m${k}_$r"
      timeout 1800 "$WALREV_BIN" "${S8_OPTS[@]}" run --stop-lsn "$end" >"$WORK/tmp/s8_m${k}_$r.log" 2>&1 &
      pids+=($!); track_pid $!
    done
    for k in "${!pids[@]}"; do
      wait "${pids[$k]}" || die "s8: walrev for s8_src$((k + 1)) failed: $(tail -5 "$WORK/tmp/s8_m$((k + 1))_$r.log")"
    done
    t1=$(now_s); c1=$(server_cpu_of "$PGDIR2")
    record 8 cps_multi "$r" "$(calc "$S8_K * $m / $(elapsed "$t0" "$t1")")" changes/s
    record 8 store_cpu_us_multi "$r" "$(calc "($c1 - $c0) * 1e6 / ($S8_K * $m)")" µs
    for k in $(seq 1 $S8_K); do s8_check "$k" "$m"; drop_slot s8_src$k "s8_m${k}_$r"; done
    log "s8 run $r: one worker $(calc "$m / $(time_field "$pfx" 1)") changes/s, $S8_K workers $(calc "$S8_K * $m / $(elapsed "$t0" "$t1")") changes/s in all"
  done
}

s8_check() { # s8_check K N — the store schema of source K holds N row changes
  local got
  got=$(q2 s8_store "SELECT coalesce(sum(n_insert + n_update + n_delete), 0) FROM src$1.revision")
  [ "$got" = "$2" ] || die "s8: the store holds $got row changes of s8_src$1, expected $2"
}
