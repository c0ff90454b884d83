#!/usr/bin/env bash
# bench/lib/report.py draws its plots and judges issue 16's targets (issue
# 17.11, issue 16): from a small made-up results directory it writes every
# plot without a gnuplot error, each names what it shows (bar labels in words,
# no bare "(a)"), the lag, RSS, phase and snapshot plots draw their goal lines
# (25 ms, 64 MiB, 0.9×, 1.5×), no plot uses gnuplot's enhanced text (which
# would turn walrev_full's "_" into a subscript), and the targets table gives
# a verdict per target with the mode it came from: P1 per phase, P2 "in every
# round" judged on the worst round, P5 flatness, P6 for both transaction
# sizes, and Q recorded as the reference by a full run (then compared).
set -euo pipefail
: "${WALREV_SOURCE_DIR:?run through ctest}"
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }
for tool in python3 gnuplot; do command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/deps.sh)"; done
T=$(mktemp -d /tmp/walrev-test-report-XXXXXX)
trap 'rm -rf "$T"' EXIT
RES=$T/results
mkdir -p "$RES" "$T/bench"

fake() { # fake MODE — a results directory of made-up figures
  rm -rf "$RES"; mkdir -p "$RES"
  printf '%s\t%s\n' mode "$1" runs 3 scenarios '1 2 3 4 5 6 8' total_seconds 60 >"$RES/meta.tsv"
  {
    for r in 1 2 3; do
      printf '1\tchanges\t%d\t100000\t\n' $r
      for c in a j1 c d; do
        printf '1\tcps_%s\t%d\t%d\tper s\n' "$c" $r $((40000 + r * 1000))
        for k in 1 2 3 4; do printf '1\tcps_%s_p%d\t%d\t%d\tper s\n' "$c" $k $r $((40000 + k * 1000)); done
      done
      # the 100-row phase of the history store misses: 0.5x
      printf '1\tcps_c_p3\t%d\t21500\tper s\n' $r
      for c in none recv walrev walrev_remote walrev_full periods audit; do
        printf '2\ttps_%s\t%d\t%d\tTPS\n' "$c" $r $((900 + r))
        printf '2\tcpu_ms_per_tx_%s\t%d\t1.%d\tms\n' "$c" $r $r
      done
      # walrev beats the audit trigger in rounds 1 and 2 only
      printf '2\ttps_audit\t%d\t%d\tTPS\n' $r $((r == 3 ? 950 : 850))
      printf '2\tcpu_ms_per_tx_walrev\t%d\t1.5\tms\n2\tcpu_ms_per_tx_audit\t%d\t1.6\tms\n' $r $r
      printf '2\town_cpu_ms_per_tx_walrev\t%d\t0.4\tms\n2\town_cpu_ms_per_tx_recv\t%d\t0.1\tms\n' $r $r
      for k in max_tps rate_tps achieved_tps revisions lag_p50_ms lag_p99_ms durable_p50_ms durable_p99_ms durable_p99_steady_ms durable_max_ms; do
        printf '3\t%s_n\t%d\t%d\t\n' "$k" $r 20
      done
      for k in peak_rss_a rss_growth_a seconds_a rows_per_s_a rows_a peak_rss_b rss_growth_b seconds_b toast_rows_b; do
        printf '4\t%s\t%d\t%d\t\n' "$k" $r 20
      done
      for k in base newest_1 mid_1 newest_2 mid_2 newest_3 mid_3; do
        printf '5\tsnap_ratio_%s\t%d\t1.%d\t\n5\tsnap_s_%s\t%d\t1\ts\n5\tcopy_s_%s\t%d\t1\ts\n' "$k" $r $r "$k" $r "$k" $r
      done
      printf '5\tsnap_ratio_newest_3\t%d\t2.0\t\n' $r
      for q in log_actor history diff attr; do printf '5\tq_%s_s_small\t%d\t0.1\ts\n5\tq_%s_s_big\t%d\t0.2\ts\n' $q $r $q $r; done
      printf '8\tcps_single\t%d\t30000\t\n8\tcps_multi\t%d\t45000\t\n' $r $r
    done
    for k in 1 2 3; do printf '5\tdeltas_%d\t1\t%d\t\n5\tkeyframes_%d\t1\t%d\t\n5\tdrain_cps_%d\t1\t50000\t\n' $k $((10 ** (k + 4))) $k $k $k; done
    printf '5\trows\t1\t1000000\t\n5\tobj_versions\t1\t1000000\t\n5\tobj_history_limit_s\t1\t0.03\ts\n5\tobj_blame_s\t1\t0.08\ts\n'
    printf '6\tbytes_per_update_audit\t1\t1000\tB\n6\tbytes_per_update_periods\t1\t200\tB\n'
    printf '6\tbytes_per_update_walrev\t1\t110\tB\n6\tbytes_per_update_walrev100\t1\t90\tB\n'
    printf '6\tkeyframes_walrev\t1\t10\t\n6\tkeyframe_rows_walrev\t1\t100000\trows\n'
  } >"$RES/figures.tsv"
  printf 'keyframe_row\t6635520\t331.8\nobject_delta_p1\t1679360\t84.0\n' >"$RES/s6_walrev_growth.tsv"
  for f in s1_rss_c_1 s1_rss_d_1 s4_rss_a_1 s4_rss_b_1; do printf '0 10240\n1000 20480\n2000 25600\n' >"$RES/$f.dat"; done
  for r in 1 2 3; do printf '0.1 12 14\n0.5 20 22\n1.0 35 NaN\n' >"$RES/s3_lag_n_$r.dat"; done
}

fake full
python3 "$WALREV_SOURCE_DIR/bench/lib/report.py" "$RES" "$T/bench" "$T" 2>"$T/report.err" \
  || { cat "$T/report.err"; fail "report.py exited non-zero"; }
[ ! -s "$T/report.err" ] || { cat "$T/report.err"; fail "report.py wrote errors (gnuplot)"; }
PLOTS="s1_throughput s1_rss s1_phases s2_tps s2_cpu s3_lag_n s4_rss s5_snapshot"
for p in $PLOTS; do
  [ -s "$T/bench/plots/$p.png" ] || fail "no plot $p.png"
  grep -q "$p.png" "$T/bench/report.md" || fail "report.md does not show $p.png"
  grep -q 'noenhanced' "$RES/$p.png.gp" || fail "$p uses enhanced text (underscores become subscripts)"
done
pass "report.py drew $(echo $PLOTS | wc -w) plots with no gnuplot error, all without enhanced text"

grep -q '"walrev, REPLICA IDENTITY FULL"' "$RES/s2_tps.png.dat" || fail "s2 bars are not named in words"
grep -q '"walrev, store on another server"' "$RES/s2_tps.png.dat" || fail "s2 lacks the remote store's bar"
grep -q '"walrev → history store"' "$RES/s1_throughput.png.dat" || fail "s1 bars are not named in words"
if grep -E '^"\([a-z0-9]+\)"' "$RES/s1_throughput.png.dat" "$RES/s2_tps.png.dat"; then fail "a bare (key) label"; fi
grep -q '"none"' "$RES/s2_tps.png.dat" && fail "a bare key label in s2"
pass "bars are named in words"

grep -q '^plot .*, 25 with lines .*goal: p99 lag ≤ 25 ms' "$RES/s3_lag_n.png.gp" || fail "s3 lag plot lacks its 25 ms goal line"
for p in s1_rss s4_rss; do
  grep -q '^plot .*, 64 with lines .*goal: RSS ≤ 64 MiB' "$RES/$p.png.gp" || fail "$p lacks its 64 MiB goal line"
done
grep -q '^plot .*, 0.9 with lines .*goal: history store ≥ 0.9× in every phase' "$RES/s1_phases.png.gp" || fail "s1_phases lacks its 0.9 goal line"
grep -q '^plot .*, 1.5 with lines .*goal: ≤ 1.5× COPY' "$RES/s5_snapshot.png.gp" || fail "s5_snapshot lacks its 1.5 goal line"
pass "goal lines: 25 ms lag, 64 MiB RSS, 0.9× per phase, 1.5× COPY"
for p in $PLOTS; do
  grep -Eq "^set ylabel '.{12,}'" "$RES/$p.png.gp" || fail "$p's y axis label is too bare"
done
pass "axis labels say what they measure"

R=$T/bench/report.md
verdict() { grep -F "| $1" "$R" | head -1; }
verdict 'P1. phase 3 (100-row transactions)' | grep -q '\*\*missed\*\* | full |' || fail "P1 phase 3 (0.5x) is not missed, from full: $(verdict 'P1. phase 3')"
verdict 'P1. phase 1 (1-row transactions)' | grep -q '\*\*met\*\* | full |' || fail "P1 phase 1 (1x) is not met"
[ "$(grep -c '^| P1\. phase' "$R")" = 4 ] || fail "not one P1 verdict per phase"
verdict 'P2. TPS, walrev attached vs the audit trigger' | grep -q 'in every round | worst round .* | \*\*missed\*\*' \
  || fail "P2 vs the trigger is not judged on its worst round: $(verdict 'P2. TPS, walrev attached vs the audit')"
verdict 'P2. CPU added per source transaction' | grep -q '\*\*met\*\*' || fail "P2 CPU (0.83x the trigger's added) is not met"
verdict 'P3. commit → durable p99' | grep -q '\*\*met\*\*' || fail "P3 (20 ms) is not met"
verdict 'P5. snapshot / COPY at every point (worst: newest at 10,000,000' | grep -q '\*\*missed\*\*' || fail "P5 worst point (2.0x) is not missed: $(verdict 'P5. snapshot')"
verdict 'P5. flat as history grows 100× (newest' | grep -q '\*\*missed\*\*' || fail "P5 newest spread (1.1 -> 2.0) is not missed"
verdict 'P5. flat as history grows 100× (mid' | grep -q '\*\*met\*\*' || fail "P5 mid spread is not met"
verdict 'P5. `history --limit 100`' | grep -q '\*\*met\*\*' || fail "history --limit (30 ms) is not met"
verdict 'P5. `blame`' | grep -q '\*\*missed\*\*' || fail "blame (80 ms) is not missed"
verdict 'P6. bytes per single-column update, one-update' | grep -q '\*\*met\*\*' || fail "P6 one-update (110 B) is not met"
verdict 'P6. bytes per update vs periods, 100-row' | grep -q '\*\*met\*\*' || fail "P6 100-row vs periods (0.45x) is not met"
verdict 'Q. audit queries' | grep -q 'reference recorded now' || fail "Q: the first full run does not record the reference"
[ -s "$T/bench/q_reference.tsv" ] && grep -q '^q_history_s_big	0.2$' "$T/bench/q_reference.tsv" || fail "no q_reference.tsv written"
grep -q '## 8. Beyond one machine' "$R" || fail "no scale-out section"
pass "verdicts: P1 per phase, P2 worst round, P3, P5 points and flatness, P6 both sizes, Q reference written"
grep -q '^walrev took 10 keyframes holding 100,000 rows' "$R" || fail "scenario 6 does not say how many keyframes walrev took"
grep -q '^| `keyframe_row` | 6,635,520 | 331.8 |$' "$R" || fail "scenario 6 does not list each relation's growth per update"
pass "scenario 6: keyframes taken and each relation's growth per update"

# a later full run compares with the reference; a quick run says its verdicts cannot decide
fake quick
sed -i 's/^\(5\tq_history_s_big\t[0-9]\t\)0.2/\10.5/' "$RES/figures.tsv"
python3 "$WALREV_SOURCE_DIR/bench/lib/report.py" "$RES" "$T/bench" "$T" 2>"$T/report.err" || { cat "$T/report.err"; fail "report.py (quick) failed"; }
verdict 'Q. `walrev history` of one object at 10,000,000 deltas vs the reference run' | grep -q '2.50×.*\*\*missed\*\* | quick: sizes too small to decide |' \
  || fail "Q history 2.5x the reference is not missed (quick): $(verdict 'Q. `walrev history`')"
verdict 'Q. `walrev log --actor user:7` over a day at 10,000,000 deltas' | grep -q '\*\*met\*\*' || fail "Q log at 1x the reference is not met"
pass "a later run is judged against q_reference.tsv; quick verdicts say they cannot decide"
echo "all bench report tests passed"
