#!/usr/bin/env python3
"""lag.py POLLS REVS OUT.dat — commit-to-visible and commit-to-durable lag of
each revision.

POLLS: "epoch|max_revision_id|flush_bytes|insert_bytes" lines from the 5 ms
poller (blank lines ignored; the last two fields may be absent).
REVS:  "id commit_epoch" lines of the revisions written during the run.
A revision is visible at the first poll whose max id reached it; it is
durable at the first poll, from then on, whose WAL flush position reached
the insert position of that first poll (its batch's commit record lies
before it: an upper bound by at most one poll interval). Lag = that poll's
time minus the source commit time.
Prints "p50 p99 max n durable_p50 durable_p99 durable_max" (ms); writes
"seconds_since_first_commit visible_ms durable_ms" to OUT.dat for the plot.
Revisions no poll saw are left out.
"""
import sys


def percentile(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = (len(sorted_vals) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def main():
    polls = []  # (t, max_id, flush, insert)
    with open(sys.argv[1]) as f:
        for line in f:
            p = line.strip().split("|")
            if len(p) < 2:
                continue
            try:
                t, mx = float(p[0]), int(p[1])
                fl = float(p[2]) if len(p) >= 4 else None
                ins = float(p[3]) if len(p) >= 4 else None
            except ValueError:
                continue
            polls.append((t, mx, fl, ins))
    revs = []
    with open(sys.argv[2]) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                revs.append((int(parts[0]), float(parts[1])))
    vis, dur, out = [], [], []
    j = 0
    t_first = revs[0][1] if revs else 0.0
    for rid, ct in revs:
        while j < len(polls) and polls[j][1] < rid:
            j += 1
        if j == len(polls):
            break
        v = (polls[j][0] - ct) * 1000.0
        d = None
        if polls[j][3] is not None:
            m = j
            while m < len(polls) and polls[m][2] < polls[j][3]:
                m += 1
            if m < len(polls):
                d = (polls[m][0] - ct) * 1000.0
        else:
            d = v
        vis.append(v)
        if d is not None:
            dur.append(d)
        out.append("%.3f %.2f %s" % (ct - t_first, v, "%.2f" % d if d is not None else "NaN"))
    with open(sys.argv[3], "w") as f:
        f.write("\n".join(out) + "\n")
    s, sd = sorted(vis), sorted(dur)
    print("%.1f %.1f %.1f %d %.1f %.1f %.1f" % (
        percentile(s, 50), percentile(s, 99), s[-1] if s else float("nan"), len(s),
        percentile(sd, 50), percentile(sd, 99), sd[-1] if sd else float("nan")))


if __name__ == "__main__":
    main()
