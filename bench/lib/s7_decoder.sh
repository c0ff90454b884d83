# s7_decoder.sh — scenario 7, the pgoutput decoder alone (bench/decoder_bench,
# no server, no sink): a synthetic stream of 12-column changes, and the golden
# fixtures captured from a real server. Each decoder_bench call already
# reports the median of its 5 passes; we run it RUNS times and keep all.

scenario_7() {
  [ -x "$DECODER_BENCH" ] || { note 7 "skipped: decoder_bench was not built."; return 0; }
  local r secs=3 out fixtures=()
  [ "$QUICK" = 1 ] && secs=1
  for f in "$ROOT"/tests/golden/fixtures/*.bin; do [ -f "$f" ] && fixtures+=("$f"); done
  for r in $(seq 1 "$RUNS"); do
    out=$("$DECODER_BENCH" --seconds "$secs")
    s7_parse synthetic "$r" "$out"
    if [ ${#fixtures[@]} -gt 0 ]; then
      out=$("$DECODER_BENCH" --seconds "$secs" "${fixtures[@]}")
      s7_parse fixtures "$r" "$out"
    fi
  done
  note 7 "synthetic: begin, 20 twelve-column inserts, 5 updates with old key, 5 deletes, commit, repeated; fixtures: tests/golden/fixtures/*.bin (${#fixtures[@]} files, mostly small messages, a 1 MiB TOAST value and a streamed transaction)."
}

s7_parse() {
  local mbs mps
  mbs=$(sed -n 's/^decoder: \([0-9.]*\) MB\/s.*/\1/p' <<<"$3")
  mps=$(sed -n 's/^decoder: [0-9.]* MB\/s, \([0-9.]*\) messages\/s.*/\1/p' <<<"$3")
  record 7 "mb_per_s_$1" "$2" "$mbs" MB/s
  record 7 "msgs_per_s_$1" "$2" "$mps" messages/s
}
