#!/usr/bin/env bash
# bench/lib/report.py draws its plots (issue 17.11): from a small made-up
# results directory it writes every plot of scenarios 1-4 without a gnuplot
# error, each names what it shows (bar labels in words, no bare "(a)"), the
# lag and RSS plots draw their goal lines (50 ms, 64 MiB), and no plot uses
# gnuplot's enhanced text, which would turn walrev_full's "_" into a subscript.
set -euo pipefail
: "${WALREV_SOURCE_DIR:?run through ctest}"
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }
for tool in python3 gnuplot; do command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/deps.sh)"; done
T=$(mktemp -d /tmp/walrev-test-report-XXXXXX)
trap 'rm -rf "$T"' EXIT
RES=$T/results
mkdir -p "$RES" "$T/bench"

printf '%s\t%s\n' mode quick runs 3 scenarios '1 2 3 4' total_seconds 60 >"$RES/meta.tsv"
{
  for r in 1 2 3; do
    printf '1\tchanges\t%d\t100000\t\n' $r
    for c in a j1 j2 c d; do printf '1\tcps_%s\t%d\t%d\tper s\n' "$c" $r $((40000 + r * 1000)); done
    for c in none recv walrev walrev_full periods audit; do printf '2\ttps_%s\t%d\t%d\tTPS\n' "$c" $r $((900 + r)); done
    for k in max_tps rate_tps achieved_tps revisions lag_p50_ms lag_p99_ms lag_p99_steady_ms lag_max_ms; do
      printf '3\t%s_w\t%d\t%d\t\n3\t%s_n\t%d\t%d\t\n' "$k" $r 40 "$k" $r 30
    done
    for k in peak_rss_a rss_growth_a seconds_a rows_per_s_a rows_a peak_rss_b rss_growth_b seconds_b toast_rows_b; do
      printf '4\t%s\t%d\t%d\t\n' "$k" $r 20
    done
  done
} >"$RES/figures.tsv"
for f in s1_rss_c_1 s1_rss_d_1 s4_rss_a_1 s4_rss_b_1; do printf '0 10240\n1000 20480\n2000 25600\n' >"$RES/$f.dat"; done
for l in w n; do for r in 1 2 3; do printf '0.1 12\n0.5 20\n1.0 35\n' >"$RES/s3_lag_${l}_$r.dat"; done; done

python3 "$WALREV_SOURCE_DIR/bench/lib/report.py" "$RES" "$T/bench" "$T" 2>"$T/report.err" \
  || { cat "$T/report.err"; fail "report.py exited non-zero"; }
[ ! -s "$T/report.err" ] || { cat "$T/report.err"; fail "report.py wrote errors (gnuplot)"; }
for p in s1_throughput s1_rss s2_tps s3_lag_w s3_lag_n s4_rss; do
  [ -s "$T/bench/plots/$p.png" ] || fail "no plot $p.png"
  grep -q "$p.png" "$T/bench/report.md" || fail "report.md does not show $p.png"
  grep -q 'noenhanced' "$RES/$p.png.gp" || fail "$p uses enhanced text (underscores become subscripts)"
done
pass "report.py drew 6 plots with no gnuplot error, all without enhanced text"

grep -q '"walrev, REPLICA IDENTITY FULL"' "$RES/s2_tps.png.dat" || fail "s2 bars are not named in words"
grep -q '"walrev → history store"' "$RES/s1_throughput.png.dat" || fail "s1 bars are not named in words"
if grep -E '^"\([a-z0-9]+\)"' "$RES/s1_throughput.png.dat" "$RES/s2_tps.png.dat"; then fail "a bare (key) label"; fi
grep -q '"none"' "$RES/s2_tps.png.dat" && fail "a bare key label in s2"
pass "bars are named in words"

grep -q '^plot .*, 50 with lines .*goal: p99 lag ≤ 50 ms' "$RES/s3_lag_w.png.gp" || fail "s3 lag plot lacks its 50 ms goal line"
for p in s1_rss s4_rss; do
  grep -q '^plot .*, 64 with lines .*goal: RSS ≤ 64 MiB' "$RES/$p.png.gp" || fail "$p lacks its 64 MiB goal line"
done
pass "goal lines: 50 ms on the lag plots, 64 MiB on the RSS plots"
for p in s1_throughput s1_rss s2_tps s3_lag_w s4_rss; do
  grep -Eq "^set ylabel '.{12,}'" "$RES/$p.png.gp" || fail "$p's y axis label is too bare"
done
pass "axis labels say what they measure"
echo "all bench report tests passed"
