# s1_capture.sh — scenario 1, capture throughput: one fixed WAL of mixed row
# changes on the 12-column table, drained to the same end LSN by every
# consumer from its own slot (created before the WAL was written). Consumers
# run one after another within a run, so each run's ratios compare like with
# like. Profiles walrev (perf, whole system) when a ratio misses its target.

s1_consumers="a j1 j2 c d"

scenario_1() {
  local db=s1 n r slot pfx end start secs changes bytes
  if [ "$QUICK" = 1 ]; then n=200000; S1_WALREV_TIMEOUT=20; else n=1000000; S1_WALREV_TIMEOUT=600; fi
  recreate_db $db
  qf $db "$BENCH/workloads/table12.sql" >/dev/null
  # The publication (and walrev's own objects) must exist before the slots:
  # pgoutput reads the publication through the slot's historic snapshot.
  if [ "$HAVE_WALREV" = 1 ]; then
    fresh_store $db s1_init
    drop_slot $db s1_init
  else
    q $db "CREATE PUBLICATION walrev FOR TABLES IN SCHEMA public" >/dev/null
  fi
  for r in $(seq 1 "$RUNS"); do
    create_slot $db "s1_a_$r" pgoutput
    create_slot $db "s1_j1_$r" wal2json
    create_slot $db "s1_j2_$r" wal2json
    if [ "$HAVE_WALREV" = 1 ]; then
      create_slot $db "s1_c_$r" pgoutput
      create_slot $db "s1_d_$r" pgoutput
    fi
  done
  create_slot $db s1_bytes pgoutput
  if [ "$HAVE_WALREV" = 1 ]; then create_slot $db s1_profc pgoutput; create_slot $db s1_profd pgoutput; fi

  start=$(current_lsn)
  log "s1: generating $n row changes (10% in 1-row, 20% in 10-row, 30% in 100-row, 40% in 10,000-row transactions)"
  psql "$(conninfo $db)" -XAtq -v ON_ERROR_STOP=1 \
    -c "SET synchronous_commit = off" \
    -c "CALL bench_mixed($((n / 10)), 1)" \
    -c "CALL bench_mixed($((n / 50)), 10)" \
    -c "CALL bench_mixed($((n * 3 / 1000)), 100)" \
    -c "CALL bench_mixed($((n / 25000)), 10000)"
  end=$(current_lsn)
  q $db "CHECKPOINT" >/dev/null
  record 1 changes 1 "$n"
  record 1 wal_bytes 1 "$(q postgres "SELECT pg_wal_lsn_diff('$end', '$start')")" B
  note 1 "WAL: $n row changes (40% INSERT, 20% one-column UPDATE, 20% four-column UPDATE, 20% DELETE; 10% of them in 1-row, 20% in 10-row, 30% in 100-row, 40% in 10,000-row transactions), from $start to $end."

  # Bytes the server sends per change (pgoutput, proto 1), once, to a file.
  pg_recvlogical -d "$(conninfo $db)" --slot s1_bytes --start -o proto_version=1 \
    -o publication_names=walrev --endpos="$end" -F 0 -f "$WORK/tmp/s1_bytes.bin" --no-loop \
    >"$WORK/logs/s1_bytes.log" 2>&1 || log "s1: pgoutput byte count drain failed"
  bytes=$(stat -c %s "$WORK/tmp/s1_bytes.bin" 2>/dev/null || echo 0)
  record 1 bytes_per_change_a 1 "$(calc "$bytes / $n")" B
  rm -f "$WORK/tmp/s1_bytes.bin"
  drop_slot $db s1_bytes

  for r in $(seq 1 "$RUNS"); do
    for c in $s1_consumers; do
      slot="s1_${c}_$r"
      pfx="$WORK/tmp/s1_${c}_$r"
      local cpu0 cpu1 commits0=0 wal0
      if [ "$c" = c ] && [ "$HAVE_WALREV" = 1 ]; then fresh_store $db "$slot"; fi
      cpu0=$(server_cpu); commits0=$(db_commits $db); wal0=$(current_lsn)
      case $c in
        a)
          timed "$pfx" 900 pg_recvlogical -d "$(conninfo $db)" --slot "$slot" --start \
            -o proto_version=1 -o publication_names=walrev --endpos="$end" -F 0 -f /dev/null --no-loop \
            || die "s1: pg_recvlogical pgoutput failed: $(tail -3 "$pfx.log")"
          cpu1=$(server_cpu)
          record 1 cpu_us_per_change_a "$r" "$(calc "($cpu1 - $cpu0 + $(time_field "$pfx" 4)) * 1e6 / $n")" µs
          record 1 server_cpu_us_per_change_a "$r" "$(calc "($cpu1 - $cpu0) * 1e6 / $n")" µs ;;
        j1|j2)
          timed "$pfx" 900 pg_recvlogical -d "$(conninfo $db)" --slot "$slot" --start \
            -o format-version="${c#j}" --endpos="$end" -f "$pfx.json" --no-loop \
            || die "s1: pg_recvlogical wal2json failed: $(tail -3 "$pfx.log")"
          record 1 "bytes_per_change_$c" "$r" "$(calc "$(stat -c %s "$pfx.json") / $n")" B
          rm -f "$pfx.json" ;;
        c)
          [ "$HAVE_WALREV" = 1 ] || continue
          local before
          before=$(history_bytes $db)
          # Bounded: a drain that has not reached the end by then is stopped
          # (SIGINT, clean stop) and its rate is what it stored in that time.
          local rc=0
          timed "$pfx" "$S1_WALREV_TIMEOUT" "$WALREV_BIN" --source "$(conninfo $db)" --slot "$slot" run \
            --stop-lsn "$end" || rc=$?
          [ "$rc" = 0 ] || [ "$rc" = 124 ] || die "s1: walrev run (history) failed: $(tail -5 "$pfx.log")"
          cpu1=$(server_cpu)
          sleep 1 # the last backends' statistics reach pg_stat_database
          local revs
          read -r changes revs < <(q $db "SELECT coalesce(sum(n_insert + n_update + n_delete), 0), count(*) FROM walrev.revision" | tr '|' ' ')
          record 1 stored_changes_c "$r" "$changes"
          # Counted, not timed: what the history path costs per change and per
          # revision whatever else the machine runs (issue 16).
          record 1 commits_per_krev_c "$r" "$(calc "($(db_commits $db) - $commits0) * 1000 / ($revs > 0 ? $revs : 1)")"
          record 1 wal_bytes_per_change_c "$r" "$(calc "$(q postgres "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal0')") / ($changes > 0 ? $changes : 1)")" B
          record 1 cpu_us_per_change_c "$r" "$(calc "($cpu1 - $cpu0 + $(time_field "$pfx" 4)) * 1e6 / ($changes > 0 ? $changes : 1)")" µs
          record 1 server_cpu_us_per_change_c "$r" "$(calc "($cpu1 - $cpu0) * 1e6 / ($changes > 0 ? $changes : 1)")" µs
          if [ "$rc" = 124 ]; then
            note 1 "run $r: (c) had not reached the end LSN after $S1_WALREV_TIMEOUT s and was stopped; it had stored $changes of $n row changes: its changes/s is that count over the time taken."
            record 1 cps_c "$r" "$(calc "$changes / $(time_field "$pfx" 1)")" changes/s
            record 1 seconds_c "$r" "$(time_field "$pfx" 1)" s
            record 1 peak_rss_c "$r" "$(calc "$(time_field "$pfx" 2) / 1024")" MiB
            drop_slot $db "$slot"; continue
          elif [ "$changes" != "$n" ]; then
            note 1 "run $r: walrev stored $changes row changes, expected $n: its figures for this run are left out."
            drop_slot $db "$slot"; continue
          fi
          record 1 history_bytes_per_change_c "$r" "$(calc "($(history_bytes $db) - $before) / $n")" B
          # Keyframes are taken in the background; those still running at the stop are left to a later run.
          local kf
          kf=$(sed -n 's/.*msg="keyframes" taken=\([0-9]*\) failed=[0-9]* total_ms=\([0-9]*\).*/\1 \2/p' "$pfx.log" | tail -1)
          record 1 keyframes_c "$r" "${kf%% *}"
          record 1 keyframe_ms_c "$r" "${kf##* }" ms
          grep -q 'keyframes left to a later run' "$pfx.log" && note 1 "run $r: (c) $(sed -n 's/.*msg="keyframes left to a later run" //p' "$pfx.log" | tail -1) keyframe at the stop."
          record 1 peak_rss_c "$r" "$(calc "$(time_field "$pfx" 2) / 1024")" MiB ;;
        d)
          [ "$HAVE_WALREV" = 1 ] || continue
          timed "$pfx" 1800 "$WALREV_BIN" --source "$(conninfo $db)" --slot "$slot" run --no-history --file "$pfx.msgpack" \
            --stop-lsn "$end" || die "s1: walrev run (file) failed: $(tail -5 "$pfx.log")"
          cpu1=$(server_cpu)
          record 1 cpu_us_per_change_d "$r" "$(calc "($cpu1 - $cpu0 + $(time_field "$pfx" 4)) * 1e6 / $n")" µs
          record 1 server_cpu_us_per_change_d "$r" "$(calc "($cpu1 - $cpu0) * 1e6 / $n")" µs
          record 1 bytes_per_change_d "$r" "$(calc "$(stat -c %s "$pfx.msgpack") / $n")" B
          record 1 peak_rss_d "$r" "$(calc "$(time_field "$pfx" 2) / 1024")" MiB
          rm -f "$pfx.msgpack" ;;
      esac
      secs=$(time_field "$pfx" 1)
      record 1 "cps_$c" "$r" "$(calc "$n / $secs")" changes/s
      record 1 "seconds_$c" "$r" "$secs" s
      drop_slot $db "$slot"
      log "s1 run $r: $c drained $n changes in $secs s"
    done
    [ -f "$WORK/tmp/s1_c_$r.rss" ] && cp "$WORK/tmp/s1_c_$r.rss" "$RES/s1_rss_c_$r.dat"
    [ -f "$WORK/tmp/s1_d_$r.rss" ] && cp "$WORK/tmp/s1_d_$r.rss" "$RES/s1_rss_d_$r.dat"
  done

  [ "$HAVE_WALREV" = 1 ] || return 0
  # Profile what misses its target (ratios per run, median).
  local rc rd
  rc=$(s1_median_ratio c); rd=$(s1_median_ratio d)
  if awk -v x="$rc" 'BEGIN{exit !(x < 0.7)}'; then
    fresh_store $db s1_profc
    s1_profile c "$db" s1_profc "$end" run --stop-lsn "$end"
  fi
  if awk -v x="$rd" 'BEGIN{exit !(x < 0.9)}'; then
    s1_profile d "$db" s1_profd "$end" run --no-history --file "$WORK/tmp/s1_prof.msgpack" --stop-lsn "$end"
    rm -f "$WORK/tmp/s1_prof.msgpack"
  fi
  drop_slot $db s1_profc; drop_slot $db s1_profd
}

# s1_median_ratio c|d — median over runs of cps_X / cps_a.
s1_median_ratio() {
  local v
  v=$(awk -F'\t' -v x="cps_$1" '$1 == 1 && $2 == "cps_a" { a[$3] = $4 } $1 == 1 && $2 == x { b[$3] = $4 }
    END { for (r in b) if (a[r] > 0) print b[r] / a[r] }' "$RES/figures.tsv" | median)
  echo "${v:-1}"
}

# s1_profile c|d DB SLOT END walrev-args... — one more drain under perf, whole
# system (walrev, the walsender decoding, the backend taking the COPY).
s1_profile() {
  local which=$1 db=$2 slot=$3; shift 4
  local data="$WORK/tmp/s1_perf_$which.data"
  log "s1: profiling walrev ($which) with perf"
  perf record -e cpu-clock -F 999 -a -g -o "$data" -- timeout -s INT "$S1_WALREV_TIMEOUT" \
    "$WALREV_BIN" --source "$(conninfo "$db")" --slot "$slot" "$@" >"$WORK/logs/s1_perf_$which.log" 2>&1 \
    || [ $? = 124 ] || { note 1 "perf record failed for ($which): $(tail -2 "$WORK/logs/s1_perf_$which.log" | tr '\n' ' ')"; return 0; }
  {
    echo "## by process"
    perf report -i "$data" --stdio --no-children -g none --sort comm --percent-limit 1 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12
    echo "## top symbols (all processes)"
    perf report -i "$data" --stdio --no-children -g none --sort comm,dso,symbol --percent-limit 0.7 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
    echo "## walrev process, top symbols"
    perf report -i "$data" --stdio --no-children -g none --comms walrev --sort dso,symbol --percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^$' | head -30
  } >"$RES/s1_perf_$which.txt"
  rm -f "$data"
}
