#!/usr/bin/env python3
"""report.py RESULTS_DIR BENCH_DIR WORK_DIR — write bench/report.md and
bench/plots/*.png from the raw figures bench/run recorded.

figures.tsv: scenario, key, run, value, unit — one line per measured value.
Every figure is shown as median (min–max) over its runs; every ratio is taken
run by run (numerator and denominator from the same run) before the median.
Plots are drawn by gnuplot (`set terminal pngcairo`, which gnuplot-nox has),
without enhanced text (an underscore is an underscore), with the goal lines.
"""
import collections
import os
import statistics
import subprocess
import sys

RES, BENCH, WORK = sys.argv[1:4]
PLOTS = os.path.join(BENCH, "plots")
os.makedirs(PLOTS, exist_ok=True)

figs = collections.defaultdict(dict)  # (scen, key) -> {run: value}
units = {}
with open(os.path.join(RES, "figures.tsv")) as f:
    for line in f:
        p = line.rstrip("\n").split("\t")
        if len(p) < 4 or p[3] in ("", "nan"):
            continue
        try:
            figs[(p[0], p[1])][int(p[2])] = float(p[3])
        except ValueError:
            continue
        units[(p[0], p[1])] = p[4] if len(p) > 4 else ""

notes = collections.defaultdict(list)
if os.path.exists(os.path.join(RES, "notes.tsv")):
    with open(os.path.join(RES, "notes.tsv")) as f:
        for line in f:
            p = line.rstrip("\n").split("\t", 1)
            if len(p) == 2:
                notes[p[0]].append(p[1])

meta = collections.defaultdict(list)
with open(os.path.join(RES, "meta.tsv")) as f:
    for line in f:
        p = line.rstrip("\n").split("\t", 1)
        if len(p) == 2:
            meta[p[0]].append(p[1])


def m1(k):
    return meta[k][0] if meta.get(k) else "?"


def stats(vals):
    vals = list(vals)
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals), len(vals)


def fig(s, k):
    return stats(figs.get((s, k), {}).values())


def measured(s, k, series):
    """(c, label, figure of s's k_c) for each (c, label) of series measured."""
    for c, label in series:
        st = fig(s, f"{k}_{c}")
        if st is not None:
            yield c, label, st


def bar(name, st):
    """A plot_bars row: name, then st's median, min and max."""
    return name, st[0], st[1], st[2]


def ratio(s, num, den, s2=None):
    a = figs.get((s, num), {})
    b = figs.get((s2 or s, den), {})
    return stats(a[r] / b[r] for r in a if r in b and b[r] > 0)


def fmt(x):
    if x is None:
        return "—"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def cell(st):
    if st is None:
        return "—"
    med, lo, hi, n = st
    if n == 1:
        return fmt(med)
    return f"{fmt(med)} ({fmt(lo)}–{fmt(hi)})"


targets = []  # rows for the summary table
MODE = None  # set below from meta: every verdict says which mode it came from


def section(sc, title):
    """A scenario's section: its heading and the notes it recorded."""
    return [f"## {sc}. {title}\n"] + [f"{n}\n" for n in notes.get(sc, [])]


def target(name, st, goal, higher_is_better, unit="", every=False):
    """A verdict on the median of st (median, min, max, n); every=True judges
    the worst run instead (a goal that must hold in every round)."""
    rel = "≥" if higher_is_better else "≤"
    mode = MODE if MODE == "full" else f"{MODE}: sizes too small to decide"
    if st is None:
        targets.append((name, "not measured", f"{rel} {fmt(goal)}{unit}", "—", "not measured", mode))
        return
    med = (st[1] if higher_is_better else st[2]) if every else st[0]
    met = med >= goal if higher_is_better else med <= goal
    pct = abs(med / goal - 1) * 100 if goal else 0
    verdict = "**met**" if met else "**missed**"
    what = "worst round " if every else ""
    margin = (f"{what}{pct:.0f}% {'above' if med >= goal else 'below'} the goal ({med / goal:.2f}× it)"
              if goal else "—")
    targets.append((name, cell(st) + unit, f"{rel} {fmt(goal)}{unit}{' in every round' if every else ''}",
                    margin, verdict, mode))


def target_text(name, measured, goal, margin, verdict):
    mode = MODE if MODE == "full" else f"{MODE}: sizes too small to decide"
    targets.append((name, measured, goal, margin, verdict, mode))


def gnuplot(script, png):
    # Kept next to the data (RESULTS_DIR/PNG.gp) so a plot can be redrawn by hand.
    with open(os.path.join(RES, png + ".gp"), "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        sys.stderr.write("gnuplot failed: " + r.stderr[-500:] + "\n")


def write_dat(name, rows):
    path = os.path.join(RES, name)
    with open(path, "w") as f:
        for row in rows:
            f.write(" ".join(str(x) for x in row) + "\n")
    return path


def gp_str(text):
    """A gnuplot single-quoted string: a quote is doubled."""
    return "'" + str(text).replace("'", "''") + "'"


# Every plot: noenhanced, so an underscore in a label (walrev_full) is an
# underscore, not a subscript.
TERMINAL = "set encoding utf8\nset terminal pngcairo size 900,500 noenhanced"


def plot_bars(png, title, ylabel, rows, goal=None):
    """rows: (label, median, min, max); label names the bar in words (no bare
    (a)); goal: (value, title) drawn as a dashed horizontal line."""
    if not rows:
        return False
    dat = write_dat(png + ".dat", [(f'"{l}"', m, lo, hi) for l, m, lo, hi in rows])
    goal_plot = f", {goal[0]} with lines dt 2 lw 2 lc rgb '#cc3311' title {gp_str(goal[1])}" if goal else ""
    gnuplot(f"""
{TERMINAL}
set output {gp_str(os.path.join(PLOTS, png))}
set title {gp_str(title)}
set ylabel {gp_str(ylabel)}
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.6 border -1
set boxwidth 0.8
set yrange [0:*]
set grid ytics
set xtics rotate by -20
set key below
set bmargin 6
plot {gp_str(dat)} using 2:3:4:xtic(1) title 'median, bar from min to max' lc rgb '#4477aa'{goal_plot}
""", png)
    return True


def plot_lines(png, title, xlabel, ylabel, series, style="lines", goal=None):
    """series: (title, datfile, using); goal: (value, title) drawn as a dashed
    horizontal line, the scale reaching it even when every point is below."""
    series = [s for s in series if os.path.exists(s[1]) and os.path.getsize(s[1]) > 0]
    if not series:
        return False
    plots = ", ".join(f"{gp_str(d)} using {u} with {style} title {gp_str(t)}" for t, d, u in series)
    if goal:
        plots += f", {goal[0]} with lines dt 2 lw 2 lc rgb '#cc3311' title {gp_str(goal[1])}"
    gnuplot(f"""
{TERMINAL}
set output {gp_str(os.path.join(PLOTS, png))}
set title {gp_str(title)}
set xlabel {gp_str(xlabel)}
set ylabel {gp_str(ylabel)}
set grid
set key below
set yrange [0:*]
set offsets 0, 0, graph 0.05, 0
plot {plots}
""", png)
    return True


out = []
w = out.append
mode = m1("mode")
MODE = mode
w("# walrev benchmarks\n")
w(f"Generated by `bench/run{' --quick' if mode == 'quick' else ''}` "
  f"(mode **{mode}**, {m1('runs')} runs per figure, scenarios {m1('scenarios')}, "
  f"{float(m1('total_seconds')):.0f} s in all). Figures are **median (min–max)** over the runs; "
  "each ratio is computed run by run from two figures of the same run, then summarised. "
  "Regenerate with `bench/run` (see bench/README.md).\n")
for n in notes.get("all", []):
    w(f"> {n}\n")

w("## Machine and versions\n")
w("| | |\n| --- | --- |")
for k, label in [("cpu", "CPU"), ("nproc", "cores (nproc)"), ("memory", "memory"), ("kernel", "kernel"),
                 ("os", "OS"), ("postgresql", "PostgreSQL"), ("walrev_rev", "walrev git revision"),
                 ("walrev_version", "walrev --version"), ("gcc", "compiler"), ("wal2json", "wal2json"),
                 ("periods", "periods")]:
    w(f"| {label} | {m1(k)} |")
w("")
w("PostgreSQL settings (server, load generator and consumers share the cores): "
  + ", ".join(f"`{c}`" for c in meta.get("pgconf", [])) + ". walrev: Release build "
  "(`-O3`, no tests), default configuration (a history batch commits after 2000 revisions or 20 ms, busy or idle, "
  "with `synchronous_commit = off` on the history session and the slot confirmed behind its WAL flush; "
  "`[history] synchronous_commit = auto`: walrev flushes a batch itself when the server has not 20 ms after its "
  "commit), "
  "history store in the source database, except where a scenario says it is on the second cluster (another server).\n")

sections = []

# ---------- scenario 1 ----------
# (key, what it is, the bar's label in plots: words, not the bare key)
S1 = [("a", "pg_recvlogical, pgoutput proto 1 → /dev/null (the limit)"),
      ("j1", "pg_recvlogical, wal2json format 1 → file"),
      ("j2", "pg_recvlogical, wal2json format 2 → file"),
      ("c", "walrev run → history store"),
      ("d", "walrev run --no-history → file sink (msgpack)")]
S1_BAR = {"a": "pg_recvlogical pgoutput (limit)", "j1": "pg_recvlogical wal2json v1",
          "j2": "pg_recvlogical wal2json v2", "c": "walrev → history store", "d": "walrev → file sink"}
if fig("1", "changes"):
    s = section("1", "Capture throughput")
    s.append("| consumer | changes/s | seconds | ratio to (a), same run | bytes out per change | peak RSS MiB |")
    s.append("| --- | --- | --- | --- | --- | --- |")
    bars = []
    for c, label, st in measured("1", "cps", S1):
        bpc = fig("1", "bytes_per_change_a") if c == "a" else fig("1", f"bytes_per_change_{c}")
        rss = fig("1", f"peak_rss_{c}")
        rt = ratio("1", f"cps_{c}", "cps_a") if c != "a" else None
        s.append(f"| ({c}) {label} | {cell(st)} | {cell(fig('1', f'seconds_{c}'))} | {cell(rt) if rt else '1'} | {cell(bpc)} | {cell(rss)} |")
        bars.append(bar(S1_BAR[c], st))
    hb = fig("1", "history_bytes_per_change_c")
    if hb:
        s.append(f"\nHistory store growth for (c): {cell(hb)} bytes per row change (all tables, indexes, TOAST). "
                 f"WAL drained: {fmt(fig('1', 'wal_bytes')[0] / 1e6)} MB. Bytes out for (a) measured once to a file "
                 "(pg_recvlogical adds a newline per message); for (c) see the history figure.")
    if fig("1", "cpu_us_per_change_a") or fig("1", "cpu_us_per_change_c"):
        s.append("\nCounted rather than timed (so other load on the machine does not move it): CPU per row "
                 "change of everything the drain ran — the server's processes (walsender decoding, the history "
                 "backend, the keyframe connection: the postmaster's children, exited ones included) plus the "
                 "consumer's own process — and, for (c), the history commits and the WAL it wrote.\n")
        s.append("| consumer | CPU µs per change, all | of it the server's | ratio to (a), same run |")
        s.append("| --- | --- | --- | --- |")
        for c, label, st in measured("1", "cpu_us_per_change", S1):
            rt = ratio("1", f"cpu_us_per_change_{c}", "cpu_us_per_change_a") if c != "a" else None
            s.append(f"| ({c}) {label} | {cell(st)} | {cell(fig('1', f'server_cpu_us_per_change_{c}'))} | "
                     f"{cell(rt) if rt else '1'} |")
        if fig("1", "commits_per_krev_c"):
            s.append(f"\n(c) committed {cell(fig('1', 'commits_per_krev_c'))} transactions in the database per "
                     f"1,000 revisions (history batches, keyframes and their bookkeeping) and wrote "
                     f"{cell(fig('1', 'wal_bytes_per_change_c'))} bytes of WAL per row change.")
    kf = fig("1", "keyframes_c")
    if kf:
        s.append(f"\nKeyframes (c) took in the background during the drain: {cell(kf)}, "
                 f"{cell(fig('1', 'keyframe_ms_c'))} ms in all (on the keyframe thread's own connection; "
                 "one still running at the stop is cancelled and left to a later run, see the notes above).")
    if plot_bars("s1_throughput.png", "Scenario 1: row changes per second draining one fixed WAL, per consumer "
                 "(median, min-max)", "row changes per second", bars):
        s.append("\n![throughput per consumer](plots/s1_throughput.png)\n")
    series = []
    for c, t in (("c", "walrev → history store"), ("d", "walrev → file sink")):
        p = os.path.join(RES, f"s1_rss_{c}_1.dat")
        series.append((t + " (run 1)", p, "($1/1000):($2/1024)"))
    if plot_lines("s1_rss.png", "Scenario 1: walrev resident memory (RSS) while draining one fixed WAL",
                  "seconds since walrev started", "walrev RSS (MiB)", series, goal=(64, "goal: RSS ≤ 64 MiB")):
        s.append("![walrev RSS over time, scenario 1](plots/s1_rss.png)\n")
    if fig("1", "cps_a_p1"):
        s.append("\nPer phase (each phase drained by its own process up to the phase's end LSN; the rate is the "
                 "phase's changes over its time, ratios run by run):\n")
        s.append("| phase | changes | WAL MB | (a) pg_recvlogical changes/s | (c) history store changes/s | (c) / (a) "
                 "| (d) file sink changes/s | (d) / (a) | (j1) wal2json changes/s |")
        s.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        pbars = []
        for k, size in ((1, "1-row"), (2, "10-row"), (3, "100-row"), (4, "10,000-row")):
            ch, wb = fig("1", f"changes_p{k}"), fig("1", f"wal_bytes_p{k}")
            rc, rd = ratio("1", f"cps_c_p{k}", f"cps_a_p{k}"), ratio("1", f"cps_d_p{k}", f"cps_a_p{k}")
            s.append(f"| {k}: {size} transactions | {fmt(ch[0]) if ch else '—'} | {fmt(wb[0] / 1e6) if wb else '—'} "
                     f"| {cell(fig('1', f'cps_a_p{k}'))} | {cell(fig('1', f'cps_c_p{k}'))} | {cell(rc)} "
                     f"| {cell(fig('1', f'cps_d_p{k}'))} | {cell(rd)} | {cell(fig('1', f'cps_j1_p{k}'))} |")
            if rc:
                pbars.append(bar(f"{size} tx: history store", rc))
            if rd:
                pbars.append(bar(f"{size} tx: file sink", rd))
            target(f"P1. phase {k} ({size} transactions): history store vs pg_recvlogical",
                   rc, 0.9, True, "×")
        su = [fig("1", f"startup_s_{c}_p{k}") for c in ("c", "d") for k in (1, 2, 3, 4)]
        if any(su):
            allsu = [v for c in ("c", "d") for k in (1, 2, 3, 4) for v in figs.get(("1", f"startup_s_{c}_p{k}"), {}).values()]
            s.append(f"\nwalrev's phase times run from its \"streaming\" log line to \"stop position reached\": its "
                     f"start before that (connections, catalog and history checks) took {cell(stats(allsu))} s per "
                     "process and is left out of its rates, a fixed cost that would weigh on short phases; "
                     "pg_recvlogical's start (a connection) is left in.")
        if plot_bars("s1_phases.png", "Scenario 1: walrev's drain rate per phase, ratio to pg_recvlogical of the "
                     "same WAL (median, min-max)", "ratio to pg_recvlogical (changes/s)", pbars,
                     goal=(0.9, "goal: history store ≥ 0.9× in every phase")):
            s.append("\n![ratio per phase](plots/s1_phases.png)\n")
    else:
        target("P1. (c) walrev → history store vs (a) pg_recvlogical", ratio("1", "cps_c", "cps_a"), 0.9, True, "×")
    target("P1. (d) walrev → file sink vs (a) pg_recvlogical, whole WAL", ratio("1", "cps_d", "cps_a"), 1.0, True, "×")
    for which in ("c", "d"):
        p = os.path.join(RES, f"s1_perf_{which}.txt")
        if os.path.exists(p):
            s.append(f"\n### Profile of ({which}) (perf, cpu-clock, whole machine, one extra drain)\n")
            s.append("Whole machine: every process on it appears under its own name, including any "
                     "that are not part of the benchmark (on a shared machine: other builds and tests); "
                     "`postgres` lumps together the walsender decoding the WAL and the backend that "
                     "takes walrev's history writes.\n")
            s.append("```\n" + open(p).read().rstrip() + "\n```\n")
    sections.append(s)

# ---------- scenario 2 ----------
S2 = [("none", "nothing attached"), ("recv", "pg_recvlogical pgoutput attached (bare consumer)"),
      ("walrev", "walrev attached, REPLICA IDENTITY DEFAULT, history in the same cluster"),
      ("walrev_remote", "walrev attached, history on another server (second cluster)"),
      ("walrev_full", "walrev attached, REPLICA IDENTITY FULL (round 1 only)"),
      ("periods", "periods SYSTEM VERSIONING (triggers; round 1 only)"),
      ("audit", "generic audit trigger (to_jsonb OLD/NEW)")]
S2_BAR = {"none": "nothing attached", "recv": "pg_recvlogical", "walrev": "walrev",
          "walrev_remote": "walrev, store on another server", "walrev_full": "walrev, REPLICA IDENTITY FULL",
          "periods": "periods (triggers)", "audit": "audit trigger (jsonb)"}
if fig("2", "tps_none"):
    s = section("2", "Cost to the source")
    s.append("| load | TPS | vs nothing, same round | vs bare consumer, same round | vs audit trigger, same round "
             "| failed tx | aborted clients | consumer catch-up after the run, s |")
    s.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    bars = []
    for c, label, st in measured("2", "tps", S2):
        vs0 = ratio("2", f"tps_{c}", "tps_none") if c != "none" else None
        vsr = ratio("2", f"tps_{c}", "tps_recv") if c not in ("none", "recv") else None
        vsa = ratio("2", f"tps_{c}", "tps_audit") if c.startswith("walrev") else None
        s.append(f"| {label} | {cell(st)} | {cell(vs0) if vs0 else '1'} | {cell(vsr) if vsr else '—'} | "
                 f"{cell(vsa) if vsa else '—'} | {cell(fig('2', f'failed_{c}'))} | "
                 f"{cell(fig('2', f'aborted_clients_{c}'))} | {cell(fig('2', f'catchup_s_{c}'))} |")
        bars.append(bar(S2_BAR[c], st))
    s.append("\nCommits are durable (`fsync = on`, `synchronous_commit = on`), so TPS here is bound by the "
             "WAL flush latency of this machine's disk more than by CPU. TPS moves with whatever else runs on "
             "the machine; the counted CPU below does not, and is the figure to judge cost by.")
    if fig("2", "cpu_ms_per_tx_none"):
        s.append("\nCounted rather than timed: CPU per transaction pgbench committed, from pgbench's start until "
                 "the consumer confirmed the run's WAL. *Everything* = the whole source server (pgbench's "
                 "backends, walsender, triggers, autovacuum; walrev's history backend and keyframe connection "
                 "when the store is there) + the store server when it is another one + the consumer's process; "
                 "*added* = that minus nothing attached, same round (what the trigger costs shows only here: it "
                 "runs inside pgbench's backends). *Consumer's own* = directly the processes the consumer adds "
                 "— its walsender, walrev's history backend and keyframe connection (on either server, found by "
                 "the application_name of its conninfo) and its own process. *Source server* = the source "
                 "cluster alone: what the source pays when the store is elsewhere.\n")
        s.append("| load | everything, ms/tx | added vs nothing, ms/tx | consumer's own, ms/tx "
                 "| source server only, ms/tx |")
        s.append("| --- | --- | --- | --- | --- |")
        base = figs.get(("2", "cpu_ms_per_tx_none"), {})
        cbars = []
        for c, label, st in measured("2", "cpu_ms_per_tx", S2):
            mine = figs.get(("2", f"cpu_ms_per_tx_{c}"), {})
            added = stats(mine[r] - base[r] for r in mine if r in base) if c != "none" else None
            own = fig("2", f"own_cpu_ms_per_tx_{c}")
            s.append(f"| {label} | {cell(st)} | {cell(added) if added else '—'} | {cell(own)} | "
                     f"{cell(fig('2', f'src_cpu_ms_per_tx_{c}'))} |")
            if added and c != "none":
                cbars.append(bar(S2_BAR[c], added))

        def added_ratio(num, den):
            a, b = figs.get(("2", f"cpu_ms_per_tx_{num}"), {}), figs.get(("2", f"cpu_ms_per_tx_{den}"), {})
            return stats((a[r] - base[r]) / (b[r] - base[r]) for r in a
                         if r in base and r in b and b[r] - base[r] > 0)
        rw_a, rw_r = added_ratio("walrev", "audit"), added_ratio("walrev", "recv")
        own_r = ratio("2", "own_cpu_ms_per_tx_walrev", "own_cpu_ms_per_tx_recv")
        s.append(f"\nwalrev's added CPU per transaction is {cell(rw_a)}× the audit trigger's and {cell(rw_r)}× the "
                 f"bare consumer's (same round); its own processes spend {cell(own_r)}× what the bare consumer's "
                 "walsender and pg_recvlogical spend.")
        if plot_bars("s2_cpu.png", "Scenario 2: CPU added per source transaction vs nothing attached (median, min-max)",
                     "CPU ms per pgbench transaction, added", cbars):
            s.append("\n![CPU added per transaction](plots/s2_cpu.png)\n")
        target("P2. CPU added per source transaction, walrev vs the audit trigger (counted)", rw_a, 1.0, False, "×")
    if plot_bars("s2_tps.png", "Scenario 2: pgbench TPC-B-like transactions per second, -c 4 -j 2 "
                 "(median, min-max)", "transactions per second (TPS)", bars):
        s.append("\n![TPS per configuration](plots/s2_tps.png)\n")
    target("P2. TPS, walrev attached vs bare pg_recvlogical", ratio("2", "tps_walrev", "tps_recv"), 0.97, True, "×")
    target("P2. TPS, walrev attached vs the audit trigger", ratio("2", "tps_walrev", "tps_audit"), 1.0, True, "×",
           every=True)
    sections.append(s)

# ---------- scenario 3 ----------
if fig("3", "lag_p99_ms_n") or notes.get("3"):
    s = section("3", "Commit-to-durable lag")
    if fig("3", "lag_p99_ms_n"):
        s.append("| figure | 70% of the max TPS with nothing attached |\n| --- | --- |")
        for k, label in [("max_tps", "that maximum (TPS)"), ("rate_tps", "pgbench rate (TPS)"),
                         ("achieved_tps", "achieved TPS"), ("revisions", "revisions measured per run"),
                         ("lag_p50_ms", "commit → visible in the store, p50, ms"),
                         ("lag_p99_ms", "commit → visible, p99, ms"),
                         ("durable_p50_ms", "commit → durable in the store, p50, ms"),
                         ("durable_p99_ms", "commit → durable, p99, ms"),
                         ("durable_p99_steady_ms", "commit → durable, p99 after the first second, ms"),
                         ("durable_max_ms", "commit → durable, max, ms")]:
            s.append(f"| {label} | {cell(fig('3', k + '_n'))} |")
        s.append("\nVisible = first 5 ms poll of `max(id)` in `walrev.revision` that sees the revision; durable = "
                 "first poll, from then on, whose `pg_current_wal_flush_lsn()` reached the WAL insert position of "
                 "that first poll (the history session commits asynchronously; that position also holds other sessions' WAL, "
                 "so durable overstates by up to one WAL flush); each minus the source "
                 "`commit_time` (both overstate by up to one poll interval plus the poll's own time).")
        series = [(f"run {r}", os.path.join(RES, f"s3_lag_n_{r}.dat"), "1:3") for r in range(1, 4)]
        if plot_lines("s3_lag_n.png", "Scenario 3: commit-to-durable lag of each revision at 70% of the max TPS "
                      "with nothing attached", "seconds into the run",
                      "lag: source commit to revision durable in the store (ms)",
                      series, style="points pt 7 ps 0.3", goal=(25, "goal: p99 lag ≤ 25 ms")):
            s.append("\n![lag over time](plots/s3_lag_n.png)\n")
        target("P3. commit → durable p99 at 70% of the max TPS with nothing attached",
               fig("3", "durable_p99_ms_n"), 25, False, " ms")
    sections.append(s)

# ---------- scenario 4 ----------
if fig("4", "peak_rss_a") or notes.get("4"):
    s = section("4", "Memory")
    if fig("4", "peak_rss_a"):
        s.append("| transaction | peak RSS, MiB | RSS growth first quarter → peak of second half, MiB | seconds | rows/s |")
        s.append("| --- | --- | --- | --- | --- |")
        s.append(f"| A: {fmt(fig('4', 'rows_a')[0])}-row INSERT | {cell(fig('4', 'peak_rss_a'))} | {cell(fig('4', 'rss_growth_a'))} | {cell(fig('4', 'seconds_a'))} | {cell(fig('4', 'rows_per_s_a'))} |")
        s.append(f"| B: {fmt(fig('4', 'toast_rows_b')[0])} × 1 MiB TOAST rows inserted, then rewritten | {cell(fig('4', 'peak_rss_b'))} | {cell(fig('4', 'rss_growth_b'))} | {cell(fig('4', 'seconds_b'))} | |")
        series = [("A: huge INSERT (run 1)", os.path.join(RES, "s4_rss_a_1.dat"), "($1/1000):($2/1024)"),
                  ("B: 1 MiB TOAST rows (run 1)", os.path.join(RES, "s4_rss_b_1.dat"), "($1/1000):($2/1024)")]
        if plot_lines("s4_rss.png", "Scenario 4: walrev resident memory (RSS) while capturing large transactions",
                      "seconds since walrev started", "walrev RSS (MiB)", series, goal=(64, "goal: RSS ≤ 64 MiB")):
            s.append("\n![RSS over time, scenario 4](plots/s4_rss.png)\n")
        target("4. peak RSS, huge INSERT", fig("4", "peak_rss_a"), 64, False, " MiB")
        target("4. peak RSS, 1 MiB TOAST rows", fig("4", "peak_rss_b"), 64, False, " MiB")
    sections.append(s)

# ---------- scenario 5 ----------
Q = [("log_actor", "`walrev log --actor user:7` over a day"), ("history", "`walrev history` of one object"),
     ("diff", "`walrev diff` of two points"), ("attr", "`attribute_delta` by table and a time window (SQL)")]
if "5" in m1("scenarios").split():
    s = section("5", "As of and the audit queries")
    if fig("5", "snap_ratio_base"):
        rows = fig("5", "rows")
        s.append(f"### Snapshot of a {fmt(rows[0]) if rows else '?'}-row table through the write path\n")
        s.append("| point | deltas after the baseline | keyframes | snapshot, s | COPY, s | snapshot / COPY, per round |")
        s.append("| --- | --- | --- | --- | --- | --- |")
        pts = [("base", "right after the baseline", None, "keyframes_base")]
        for k in (1, 2, 3):
            pts.append((f"newest_{k}", "newest", f"deltas_{k}", f"keyframes_{k}"))
            pts.append((f"mid_{k}", "half-way through the last growth", f"deltas_{k}", f"keyframes_{k}"))
        bars, worst = [], None
        for key, label, dk, kk in pts:
            st = fig("5", f"snap_ratio_{key}")
            if st is None:
                continue
            d = fig("5", dk) if dk else None
            s.append(f"| {label} | {fmt(d[0]) if d else 0} | {cell(fig('5', kk))} | {cell(fig('5', f'snap_s_{key}'))} "
                     f"| {cell(fig('5', f'copy_s_{key}'))} | {cell(st)} |")
            bars.append(bar(f"{label.split(' ')[0]} at {fmt(d[0]) if d else 0} deltas", st))
            if worst is None or st[0] > worst[1][0]:
                worst = (label + (f" at {fmt(d[0])} deltas" if d else ""), st)
        dr = [fig("5", f"drain_cps_{k}") for k in (1, 2, 3)]
        s.append("\nThe worker's drain of each growth (bulk transactions and the small ones): "
                 + ", ".join(f"{cell(x)} changes/s" for x in dr if x) + f"; the baseline took "
                 f"{cell(fig('5', 'baseline_s'))} s; the store held {cell(fig('5', 'history_mb_3'))} MiB at the end.")
        if plot_bars("s5_snapshot.png", "Scenario 5: snapshot of the table / COPY of it, as history grows "
                     "(median, min-max)", "snapshot time / COPY time", bars, goal=(1.5, "goal: ≤ 1.5× COPY")):
            s.append("\n![snapshot vs COPY](plots/s5_snapshot.png)\n")
        target(f"P5. snapshot / COPY at every point (worst: {worst[0]})", worst[1], 1.5, False, "×")
        for kind in ("newest", "mid"):
            med = [fig("5", f"snap_ratio_{kind}_{k}") for k in (1, 2, 3)]
            if all(med):
                sp = max(m[0] for m in med) / min(m[0] for m in med)
                target_text(f"P5. flat as history grows 100× ({kind}: ratio to COPY at 1×, 10×, 100×)",
                            " / ".join(fmt(m[0]) for m in med) + f": spread {sp:.2f}", "≤ 1.20 (±20%)",
                            f"{abs(sp / 1.2 - 1) * 100:.0f}% {'below' if sp <= 1.2 else 'above'} the goal",
                            "**met**" if sp <= 1.2 else "**missed**")
    if fig("5", "q_history_s_big"):
        d1, d3 = fig("5", "deltas_1"), fig("5", "deltas_3")
        s.append(f"\n### Audit queries (Q), at {fmt(d1[0]) if d1 else '?'} and at {fmt(d3[0]) if d3 else '?'} deltas\n")
        s.append("The store content came through the worker (not written by SQL). Seconds, median of the rounds; "
                 "rows returned at the larger size in the last column. `bench/q_reference.tsv` holds a full "
                 "run's figures for later runs to compare with (written by the first full run that finds none).\n")
        ref = {}
        refp = os.path.join(BENCH, "q_reference.tsv")
        if os.path.exists(refp):
            for line in open(refp):
                p = line.rstrip("\n").split("\t")
                if len(p) >= 2 and not line.startswith("#"):
                    try:
                        ref[p[0]] = float(p[1])
                    except ValueError:
                        pass
        s.append("| query | at the first size, s | at the largest, s | largest / first | reference run, s "
                 "| now / reference | rows |")
        s.append("| --- | --- | --- | --- | --- | --- | --- |")
        latest = []
        for k, label in Q:
            a, b = fig("5", f"q_{k}_s_small"), fig("5", f"q_{k}_s_big")
            if b is None:
                continue
            rr = ref.get(f"q_{k}_s_big")
            rows = fig("5", f"q_{k}_rows_big")
            s.append(f"| {label} | {cell(a)} | {cell(b)} | {fmt(b[0] / a[0]) if a and a[0] else '—'} | "
                     f"{fmt(rr) if rr else '—'} | {fmt(b[0] / rr) + '×' if rr else '—'} | {fmt(rows[0]) if rows else '—'} |")
            latest.append((f"q_{k}_s_big", b[0]))
            if rr:
                target(f"Q. {label} at {fmt(d3[0]) if d3 else '?'} deltas vs the reference run",
                       stats([b[0] / rr]), 1.2, False, "×")
        if not ref:
            target_text(f"Q. audit queries no slower at {fmt(d3[0]) if d3 else '?'} deltas", "recorded (see the table)",
                        "no slower than a reference run", "—",
                        "reference recorded now" if mode == "full" else "not judged (no reference)")
            if mode == "full" and latest:
                with open(refp, "w") as f:
                    f.write(f"# bench/run full-mode audit query seconds at {fmt(d3[0]) if d3 else '?'} deltas, "
                            f"walrev {m1('walrev_rev')}; report.py compares later runs with these\n")
                    for k, v in latest:
                        f.write(f"{k}\t{v}\n")
    p = os.path.join(RES, "s5_asof.md")
    if os.path.exists(p) and os.path.getsize(p) > 0:
        s.append("\n" + open(p).read().rstrip().replace("### ", "#### ") + "\n")
    v = fig("5", "obj_versions")
    if v:
        target(f"P5. `history --limit 100` of one object at {fmt(v[0])} versions", fig("5", "obj_history_limit_s"),
               0.05, False, " s")
        target(f"P5. `blame` of one object at {fmt(v[0])} versions", fig("5", "obj_blame_s"), 0.05, False, " s")
    sections.append(s)

# ---------- scenario 6 ----------
if fig("6", "bytes_per_update_audit"):
    s = section("6", "Storage")
    s.append("| history kept by | bytes per update | ratio to audit trigger | ratio to periods |")
    s.append("| --- | --- | --- | --- |")
    for c, label, st in measured("6", "bytes_per_update", [
            ("audit", "generic jsonb audit trigger (audit_log, with its index)"),
            ("periods", "periods history table (full old row, no index)"),
            ("walrev", "walrev, one update per transaction (every table and index of schema walrev)"),
            ("walrev100", "walrev, 100 updates per transaction")]):
        ra = ratio("6", f"bytes_per_update_{c}", "bytes_per_update_audit") if c != "audit" else None
        rp = ratio("6", f"bytes_per_update_{c}", "bytes_per_update_periods") if c.startswith("walrev") else None
        s.append(f"| {label} | {cell(st)} | {cell(ra) if ra else '1'} | {cell(rp) if rp else '—'} |")
    for c in ("walrev", "walrev100"):
        p = os.path.join(RES, f"s6_{c}_tables.tsv")
        if os.path.exists(p):
            s.append(f"\n{c}'s history tables at the end (bytes, heap + TOAST + indexes, including the starting rows): "
                     + ", ".join(f"`{l.split(chr(9))[0]}` {int(l.split(chr(9))[1]):,}" for l in open(p) if "\t" in l))
        kf, kr = fig("6", f"keyframes_{c}"), fig("6", f"keyframe_rows_{c}")
        if kf:
            s.append(f"\n{c} took {int(kf[0]):,} keyframes holding {int(kr[0]):,} rows while it captured the updates "
                     f"(the keyframe rule, `keyframe_factor` 1, asks for about updates / rows of them).")
        p = os.path.join(RES, f"s6_{c}_growth.tsv")
        if os.path.exists(p):
            s.append(f"\n{c}: where the bytes of the updates went (each relation's growth; a table's heap with its TOAST, an index alone):\n")
            s.append("| relation | bytes | bytes per update |\n| --- | --- | --- |")
            for l in open(p):
                f = l.rstrip("\n").split("\t")
                if len(f) == 3:
                    s.append(f"| `{f[0]}` | {int(f[1]):,} | {float(f[2]):.1f} |")
        cu = fig("6", f"capture_updates_per_s_{c}")
        if cu:
            s.append(f"\n{c} captured the updates at {cell(cu)} updates/s.")
    for c, what in (("walrev", "one-update transactions"), ("walrev100", "100-row transactions")):
        target(f"P6. bytes per single-column update, {what}", fig("6", f"bytes_per_update_{c}"), 120, False, " B")
        target(f"P6. bytes per update vs periods, {what}",
               ratio("6", f"bytes_per_update_{c}", "bytes_per_update_periods"), 0.5, False, "×")
    sections.append(s)

# ---------- scenario 7 ----------
if fig("7", "mb_per_s_synthetic") or notes.get("7"):
    s = section("7", "Decoder alone")
    s.append("| input | MB/s | messages/s |\n| --- | --- | --- |")
    for c in ("synthetic", "fixtures"):
        if fig("7", f"mb_per_s_{c}"):
            s.append(f"| {c} | {cell(fig('7', f'mb_per_s_{c}'))} | {cell(fig('7', f'msgs_per_s_{c}'))} |")
    s.append("")
    sections.append(s)

# ---------- scenario 8 ----------
if fig("8", "cps_single") or notes.get("8"):
    s = section("8", "Beyond one machine: several workers into one history store")
    if fig("8", "cps_single"):
        s.append("| workers | changes/s, all together | store server CPU µs per change |\n| --- | --- | --- |")
        s.append(f"| one, alone | {cell(fig('8', 'cps_single'))} | {cell(fig('8', 'store_cpu_us_single'))} |")
        s.append(f"| three at once, one per source database | {cell(fig('8', 'cps_multi'))} | "
                 f"{cell(fig('8', 'store_cpu_us_multi'))} |")
        s.append(f"\nThree workers together drain {cell(ratio('8', 'cps_multi', 'cps_single'))}× one worker's rate "
                 "(same run). On this machine the three sources, the store server and the workers share two "
                 "cores, so this says how the store takes concurrent writers, not what three machines would reach. "
                 "The other deployment, a store on another server, is scenario 2's \"history on another "
                 "server\" row: what the source then pays. See docs/deployment.md.")
    sections.append(s)

w("## Targets\n")
if targets:
    w("Each verdict comes from this run and says its mode: only a **full** run's verdicts count "
      "(issue 16: quick sizes hide the misses).\n")
    w("| target | measured | goal | margin | verdict | from |\n| --- | --- | --- | --- | --- | --- |")
    for t in targets:
        w("| " + " | ".join(t) + " |")
else:
    w("No target was measured in this run.")
w("")
for s in sections:
    out.extend(s)
    out.append("")
w("## Scenario wall times\n")
w("| scenario | seconds | load average (1 min) at its end |\n| --- | --- | --- |")
for sc in m1("scenarios").split():
    st = fig(sc, "scenario_seconds")
    la = fig(sc, "loadavg_end")
    w(f"| {sc} | {fmt(st[0]) if st else '—'} | {fmt(la[0]) if la else 'not recorded'} |")
w("")
for sc in m1("scenarios").split():
    if notes.get(sc) and not any(sec[0].startswith(f"## {sc}.") for sec in sections):
        w(f"Scenario {sc}: " + " ".join(notes[sc]) + "\n")

with open(os.path.join(BENCH, "report.md"), "w") as f:
    f.write("\n".join(out).rstrip() + "\n")
