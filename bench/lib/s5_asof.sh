# s5_asof.sh — scenario 5, as-of queries: delegates to bench/asof_bench.sh
# (written with the replay engine) and keeps its output for the report. It is
# given the bench cluster's conninfo, the walrev binary and the size: its
# default (100,000 rows, objects of up to 10^6 versions) in full mode,
# 3,000 rows and up to 10^5 versions in quick mode.

scenario_5() {
  local script="$BENCH/asof_bench.sh" args=()
  if [ ! -f "$script" ]; then
    note 5 "missing: bench/asof_bench.sh does not exist yet, so the as-of figures are not measured."
    return 0
  fi
  # Its own --quick (20,000 rows, history up to 100x) alone takes about 10
  # minutes here; bench/run --quick must stay under 10 in all.
  [ "$QUICK" = 1 ] && args+=(--rows 3000 --versions 100000)
  log "s5: running bench/asof_bench.sh ${args[*]}"
  recreate_db s5
  ASOF_CONNINFO="$(conninfo s5)" PGCONNINFO="$(conninfo s5)" BENCH_CONNINFO="$(conninfo s5)" \
  WALREV_BIN="$WALREV_BIN" PGDIR="$PGDIR" \
    bash "$script" "${args[@]}" >"$RES/s5_asof.md" 2>"$WORK/logs/s5_asof.err" \
    || { note 5 "bench/asof_bench.sh failed (exit $?): $(tail -3 "$WORK/logs/s5_asof.err" | tr '\n' ' ')"; return 0; }
}
