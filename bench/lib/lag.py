#!/usr/bin/env python3
"""lag.py POLLS REVS OUT.dat — commit-to-durable lag of each revision.

POLLS: "epoch|max_revision_id" lines from the 5 ms poller (blank lines ignored).
REVS:  "id commit_epoch" lines of the revisions written during the run.
A revision's lag is the time of the first poll whose max id reached it minus
its commit time; it overstates the true lag by at most one poll interval.
Prints "p50_ms p99_ms max_ms n"; writes "seconds_since_first_commit lag_ms"
to OUT.dat for the plot. Revisions no poll saw are left out (counted in n only
if seen).
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
    polls = []
    with open(sys.argv[1]) as f:
        for line in f:
            line = line.strip()
            if not line or "|" not in line:
                continue
            t, mx = line.split("|", 1)
            try:
                polls.append((float(t), int(mx)))
            except ValueError:
                continue
    revs = []
    with open(sys.argv[2]) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                revs.append((int(parts[0]), float(parts[1])))
    lags = []
    out = []
    j = 0
    t_first = revs[0][1] if revs else 0.0
    for rid, ct in revs:
        while j < len(polls) and polls[j][1] < rid:
            j += 1
        if j == len(polls):
            break
        lag_ms = (polls[j][0] - ct) * 1000.0
        lags.append(lag_ms)
        out.append("%.3f %.2f" % (ct - t_first, lag_ms))
    with open(sys.argv[3], "w") as f:
        f.write("\n".join(out) + "\n")
    s = sorted(lags)
    print("%.1f %.1f %.1f %d" % (percentile(s, 50), percentile(s, 99), s[-1] if s else float("nan"), len(s)))


if __name__ == "__main__":
    main()
