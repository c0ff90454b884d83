# s1_capture.sh — scenario 1, capture throughput (P1): one fixed WAL of mixed
# row changes on the 12-column table, in four phases (1-, 10-, 100- and
# 10,000-row transactions). Each phase is written into its own database
# (s1_p1 … s1_p4), whose slots are created right before it: a slot then reads
# its phase and nothing else (a consumer that stops at an LSN may have read a
# little past it — walrev stores what it read — and another database's
# changes are skipped by the walsender), so each phase has its own rate, and
# the whole drain's is the sum of the phases' times. Every consumer has its
# own slots; consumers run one after another within a run, so each run's
# ratios compare like with like. Profiles walrev (perf, whole system) over the
# phase that missed its target by most.

s1_consumers="a j1 c d"
# phase k: transaction size
S1_TXSIZE=(0 1 10 100 10000)
S1_PROFILE_SECS=20

scenario_1() {
  local n r k c start bytes
  if [ "$QUICK" = 1 ]; then n=200000; S1_WALREV_TIMEOUT=60; else n=1000000; S1_WALREV_TIMEOUT=400; fi
  # changes per phase: 10%, 20%, 30%, 40% (whole transactions)
  S1_N=(0 $((n / 10)) $((n / 50 * 10)) $((n * 3 / 1000 * 100)) $((n / 25000 * 10000)))
  n=$((S1_N[1] + S1_N[2] + S1_N[3] + S1_N[4]))
  for k in 1 2 3 4; do
    recreate_db s1_p$k
    qf s1_p$k "$BENCH/workloads/table12.sql" >/dev/null
    # The publication (and walrev's own objects) must exist before the slots:
    # pgoutput reads the publication through the slot's historic snapshot.
    if [ "$HAVE_WALREV" = 1 ]; then
      fresh_store s1_p$k s1_init_$k
      drop_slot s1_p$k s1_init_$k
    else
      q s1_p$k "CREATE PUBLICATION walrev FOR TABLES IN SCHEMA public" >/dev/null
    fi
  done
  start=$(current_lsn)
  S1_LSN=("$start")
  log "s1: generating $n row changes in four phases (1-, 10-, 100-, 10,000-row transactions), one database each"
  for k in 1 2 3 4; do
    for r in $(seq 1 "$RUNS"); do
      for c in $s1_consumers; do
        case $c in a) ;; c|d) [ "$HAVE_WALREV" = 1 ] || continue ;; esac
        case $c in j*) create_slot s1_p$k "s1_${c}_${r}_p$k" wal2json ;; *) create_slot s1_p$k "s1_${c}_${r}_p$k" pgoutput ;; esac
      done
    done
    create_slot s1_p$k "s1_bytes_p$k" pgoutput
    [ "$HAVE_WALREV" = 1 ] && create_slot s1_p$k "s1_prof_p$k" pgoutput
    S1_START[k]=$(current_lsn)
    psql "$(conninfo s1_p$k)" -XAtq -v ON_ERROR_STOP=1 -c "SET synchronous_commit = off" \
      -c "CALL bench_mixed($((S1_N[k] / S1_TXSIZE[k])), ${S1_TXSIZE[k]})"
    S1_LSN[k]=$(current_lsn)
    record 1 "changes_p$k" 1 "${S1_N[k]}"
    record 1 "wal_bytes_p$k" 1 "$(q postgres "SELECT pg_wal_lsn_diff('${S1_LSN[k]}', '${S1_START[k]}')")" B
  done
  q postgres "CHECKPOINT" >/dev/null
  record 1 changes 1 "$n"
  record 1 wal_bytes 1 "$(q postgres "SELECT pg_wal_lsn_diff('${S1_LSN[4]}', '$start')")" B
  note 1 "WAL: $n row changes (40% INSERT, 20% one-column UPDATE, 20% four-column UPDATE, 20% DELETE) in four phases, each in its own database with its own slots and drained separately to its end LSN: ${S1_N[1]} in 1-row, ${S1_N[2]} in 10-row, ${S1_N[3]} in 100-row and ${S1_N[4]} in 10,000-row transactions, from $start to ${S1_LSN[4]}."

  # Bytes the server sends per change (pgoutput, proto 1), once, to a file.
  bytes=0
  for k in 1 2 3 4; do
    pg_recvlogical -d "$(conninfo s1_p$k)" --slot "s1_bytes_p$k" --start -o proto_version=1 \
      -o publication_names=walrev --endpos="${S1_LSN[k]}" -F 0 -f "$WORK/tmp/s1_bytes.bin" --no-loop \
      >"$WORK/logs/s1_bytes.log" 2>&1 || log "s1: pgoutput byte count drain failed"
    bytes=$((bytes + $(stat -c %s "$WORK/tmp/s1_bytes.bin" 2>/dev/null || echo 0)))
    rm -f "$WORK/tmp/s1_bytes.bin"
    drop_slot s1_p$k "s1_bytes_p$k"
  done
  record 1 bytes_per_change_a 1 "$(calc "$bytes / $n")" B

  for r in $(seq 1 "$RUNS"); do
    for c in $s1_consumers; do
      [ "$HAVE_WALREV" = 1 ] || case $c in c|d) continue ;; esac
      s1_drain "$c" "$r" "$n"
    done
    [ -f "$WORK/tmp/s1_c_${r}_p1.rss" ] && cat "$WORK"/tmp/s1_c_"${r}"_p[1-4].rss | s1_join_rss >"$RES/s1_rss_c_$r.dat"
    [ -f "$WORK/tmp/s1_d_${r}_p1.rss" ] && cat "$WORK"/tmp/s1_d_"${r}"_p[1-4].rss | s1_join_rss >"$RES/s1_rss_d_$r.dat"
  done

  [ "$HAVE_WALREV" = 1 ] || return 0
  # Profile the phase where the history store's ratio is lowest, when it misses.
  local worst=0 wr=9 x
  for k in 1 2 3 4; do
    x=$(s1_median_ratio "c_p$k" "a_p$k")
    if awk -v x="$x" -v w="$wr" 'BEGIN{exit !(x < w)}'; then wr=$x; worst=$k; fi
  done
  if [ "$worst" != 0 ] && awk -v x="$wr" 'BEGIN{exit !(x < 0.9)}'; then
    fresh_store s1_p$worst "s1_prof_p$worst"
    note 1 "profiled: phase $worst (${S1_TXSIZE[worst]}-row transactions), where (c)'s median ratio to (a) was lowest ($wr): one more drain of it under perf, at most $S1_PROFILE_SECS s."
    s1_profile c "s1_p$worst" "s1_prof_p$worst" run --stop-lsn "${S1_LSN[worst]}"
  fi
  for k in 1 2 3 4; do drop_slot s1_p$k "s1_prof_p$k"; done
}

# s1_join_rss — the phases' RSS samples ("ms kib", each from 0) as one series.
s1_join_rss() { awk 'NR > 1 && $1 < prev { off += prev } { prev = $1; print $1 + off, $2 }'; }

# s1_drain CONSUMER RUN N — drain the four phases with one consumer, each
# from its database's slot for this run.
s1_drain() {
  local c=$1 r=$2 n=$3 db slot k pfx secs total=0 cpu0 cpu1 pcpu=0 out=0 commits0=0 wal0
  local stored changes revs=0 before=0 rc maxrss=0 got=0 hb=0
  if [ "$c" = c ]; then
    for k in 1 2 3 4; do fresh_store s1_p$k "s1_c_${r}_p$k"; before=$((before + $(history_bytes s1_p$k))); done
  fi
  cpu0=$(server_cpu); wal0=$(current_lsn)
  for k in 1 2 3 4; do commits0=$((commits0 + $(db_commits s1_p$k))); done
  for k in 1 2 3 4; do
    pfx="$WORK/tmp/s1_${c}_${r}_p$k"
    db=s1_p$k slot="s1_${c}_${r}_p$k"
    rc=0
    case $c in
      a)
        timed "$pfx" 900 pg_recvlogical -d "$(conninfo $db)" --slot "$slot" --start \
          -o proto_version=1 -o publication_names=walrev --endpos="${S1_LSN[k]}" -F 0 -f /dev/null --no-loop \
          || die "s1: pg_recvlogical pgoutput failed: $(tail -3 "$pfx.log")" ;;
      j1|j2)
        timed "$pfx" 900 pg_recvlogical -d "$(conninfo $db)" --slot "$slot" --start \
          -o format-version="${c#j}" --endpos="${S1_LSN[k]}" -f "$pfx.json" --no-loop \
          || die "s1: pg_recvlogical wal2json failed: $(tail -3 "$pfx.log")"
        out=$((out + $(stat -c %s "$pfx.json"))); rm -f "$pfx.json" ;;
      c)
        # Bounded: a phase that has not reached its end by then is stopped
        # (SIGINT, clean stop) and rated by what it stored.
        timed "$pfx" "$S1_WALREV_TIMEOUT" "$WALREV_BIN" --source "$(conninfo $db)" --slot "$slot" run \
          --stop-lsn "${S1_LSN[k]}" || rc=$?
        [ "$rc" = 0 ] || [ "$rc" = 124 ] || die "s1: walrev run (history) failed: $(tail -5 "$pfx.log")" ;;
      d)
        timed "$pfx" 1800 "$WALREV_BIN" --source "$(conninfo $db)" --slot "$slot" run --no-history \
          --file "$pfx.msgpack" --stop-lsn "${S1_LSN[k]}" || die "s1: walrev run (file) failed: $(tail -5 "$pfx.log")"
        out=$((out + $(stat -c %s "$pfx.msgpack"))); rm -f "$pfx.msgpack" ;;
    esac
    secs=$(time_field "$pfx" 1)
    # walrev: the drain proper, from "streaming" to "stop position reached" in
    # its log — its start (connections, catalog, history checks, ~0.3 s) is a
    # fixed cost that is not the drain's rate and would weigh on a short phase;
    # pg_recvlogical's start is a connection (tens of ms) and is left in.
    case $c in c|d)
      local d
      d=$(s1_log_secs "$pfx.log")
      if [ -n "$d" ] && [ "$rc" = 0 ]; then
        record 1 "startup_s_${c}_p$k" "$r" "$(calc "$secs - $d")" s
        secs=$d
      fi ;;
    esac
    pcpu=$(calc "$pcpu + $(time_field "$pfx" 4)")
    [ "$(time_field "$pfx" 2)" -gt "$maxrss" ] && maxrss=$(time_field "$pfx" 2)
    changes=${S1_N[k]}
    if [ "$c" = c ]; then
      changes=$(q $db "SELECT coalesce(sum(n_insert + n_update + n_delete), 0) FROM walrev.revision")
      revs=$((revs + $(q $db "SELECT count(*) FROM walrev.revision")))
    fi
    got=$((got + changes))
    drop_slot $db "$slot"
    record 1 "cps_${c}_p$k" "$r" "$(calc "$changes / $secs")" changes/s
    record 1 "seconds_${c}_p$k" "$r" "$secs" s
    total=$(calc "$total + $secs")
    log "s1 run $r: $c phase $k drained $changes changes in $secs s"
    if [ "$rc" = 124 ]; then
      note 1 "run $r: (c) had not reached the end of phase $k after $S1_WALREV_TIMEOUT s and was stopped there; it had stored $changes of ${S1_N[k]} row changes of the phase: its changes/s is that count over the time taken."
    fi
  done
  cpu1=$(server_cpu)
  record 1 "cps_$c" "$r" "$(calc "$got / $total")" changes/s
  record 1 "seconds_$c" "$r" "$total" s
  record 1 "cpu_us_per_change_$c" "$r" "$(calc "($cpu1 - $cpu0 + $pcpu) * 1e6 / ($got > 0 ? $got : 1)")" µs
  record 1 "server_cpu_us_per_change_$c" "$r" "$(calc "($cpu1 - $cpu0) * 1e6 / ($got > 0 ? $got : 1)")" µs
  case $c in j*|d) record 1 "bytes_per_change_$c" "$r" "$(calc "$out / $n")" B ;; esac
  case $c in c|d) record 1 "peak_rss_$c" "$r" "$(calc "$maxrss / 1024")" MiB ;; esac
  if [ "$c" = c ]; then
    sleep 1 # the last backends' statistics reach pg_stat_database
    local commits1=0 after=0
    for k in 1 2 3 4; do commits1=$((commits1 + $(db_commits s1_p$k))); after=$((after + $(history_bytes s1_p$k))); done
    record 1 stored_changes_c "$r" "$got"
    # Counted, not timed: what the history path costs per change and per
    # revision whatever else the machine runs (issue 16).
    record 1 commits_per_krev_c "$r" "$(calc "($commits1 - $commits0) * 1000 / ($revs > 0 ? $revs : 1)")"
    record 1 wal_bytes_per_change_c "$r" "$(calc "$(q postgres "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal0')") / ($got > 0 ? $got : 1)")" B
    if [ "$got" = "$n" ]; then
      record 1 history_bytes_per_change_c "$r" "$(calc "($after - $before) / $n")" B
    else
      note 1 "run $r: walrev stored $got row changes, expected $n."
    fi
    # Keyframes are taken in the background; those still running at a stop are left to a later run.
    local kf taken=0 ms=0
    for pfx in "$WORK"/tmp/s1_c_"${r}"_p[1-4].log; do
      kf=$(sed -n 's/.*msg="keyframes" taken=\([0-9]*\) failed=[0-9]* total_ms=\([0-9]*\).*/\1 \2/p' "$pfx" | tail -1)
      [ -n "$kf" ] && { taken=$((taken + ${kf%% *})); ms=$((ms + ${kf##* })); }
    done
    record 1 keyframes_c "$r" "$taken"
    record 1 keyframe_ms_c "$r" "$ms" ms
  fi
}

# s1_log_secs LOG — seconds from walrev's "streaming" line to its "stop
# position reached" line (empty when either is missing).
s1_log_secs() {
  local a b
  a=$(sed -n 's/^ts=\([^ ]*\) .*msg="streaming".*/\1/p' "$1" | head -1)
  b=$(sed -n 's/^ts=\([^ ]*\) .*msg="stop position reached".*/\1/p' "$1" | tail -1)
  [ -n "$a" ] && [ -n "$b" ] || return 0
  elapsed "$(date -d "$a" +%s.%N)" "$(date -d "$b" +%s.%N)"
}

# s1_median_ratio NUM DEN — median over runs of cps_NUM / cps_DEN.
s1_median_ratio() {
  local v
  v=$(awk -F'\t' -v x="cps_$1" -v y="cps_$2" '$1 == 1 && $2 == y { a[$3] = $4 } $1 == 1 && $2 == x { b[$3] = $4 }
    END { for (r in b) if (a[r] > 0) print b[r] / a[r] }' "$RES/figures.tsv" | median)
  echo "${v:-1}"
}

# s1_profile c|d DB SLOT walrev-args... — one more drain under perf, whole
# system (walrev, the walsender decoding, the backend taking the COPY).
s1_profile() {
  local which=$1 db=$2 slot=$3; shift 3
  local data="$WORK/tmp/s1_perf_$which.data"
  command -v perf >/dev/null || { note 1 "perf is not installed: no profile."; return 0; }
  log "s1: profiling walrev ($which) with perf"
  perf record -e cpu-clock -F 999 -a -g -o "$data" -- timeout -s INT "$S1_PROFILE_SECS" \
    "$WALREV_BIN" --source "$(conninfo "$db")" --slot "$slot" "$@" >"$WORK/logs/s1_perf_$which.log" 2>&1 \
    || [ $? = 124 ] || { note 1 "perf record failed for ($which): $(tail -2 "$WORK/logs/s1_perf_$which.log" | tr '\n' ' ')"; return 0; }
  {
    echo "## by process"
    perf report -i "$data" --stdio --no-children -g none --sort comm --percent-limit 1 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12
    echo "## top symbols (all processes)"
    perf report -i "$data" --stdio --no-children -g none --sort comm,dso,symbol --percent-limit 0.7 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
    echo "## walrev process, top symbols"
    perf report -i "$data" --stdio --no-children -g none --comms walrev --percentage relative --sort dso,symbol --percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^$' | head -30
  } >"$RES/s1_perf_$which.txt" || true
  rm -f "$data"
}
