#!/usr/bin/env bash
# run_fuzzer.sh — short libFuzzer smoke run for CTest.
# Usage: run_fuzzer.sh <fuzz-binary> <tests-source-dir> <corpus-dir> <seconds>
# A target with its own seed folder (tests/fuzz/seeds/<target>/, real inputs
# of that reader) is seeded from it alone. fuzz_pgoutput, whose inputs are
# wire messages, is seeded from tests/fuzz/seeds/* and from the golden fixtures
# (tests/golden/fixtures/*.bin: records of uint32 big-endian length + raw
# CopyData bytes; each 'w' record's pgoutput payload, i.e. the bytes after the
# 25-byte XLogData header, becomes one seed file), runs the fuzzer for the
# given time (or WALREV_FUZZ_RUNS executions), prints the executions reached,
# and fails on any crash.
set -euo pipefail

if [ $# -ne 4 ]; then
    echo "usage: $0 <fuzz-binary> <tests-source-dir> <corpus-dir> <seconds>" >&2
    exit 2
fi
bin=$1 src=$2 corpus=$3 seconds=$4

mkdir -p "$corpus"
target=$(basename "$bin")
if [ -d "$src/fuzz/seeds/$target" ]; then
    find "$src/fuzz/seeds/$target" -maxdepth 1 -type f -exec cp -f {} "$corpus/" \;
    echo "seeded from tests/fuzz/seeds/$target; corpus has $(find "$corpus" -type f | wc -l) files"
    fixtures=
else
    find "$src/fuzz/seeds" -maxdepth 1 -type f -exec cp -f {} "$corpus/" \;
    fixtures=$src/golden/fixtures
fi

# Split fixture files into one seed per record. One Python pass: spawning
# od/dd per record took two minutes for the ~1,500 records.
if [ -n "$fixtures" ]; then
nseeds=$(/usr/bin/python3 - "$fixtures" "$corpus" <<'PY'
import os, struct, sys
src, out = sys.argv[1], sys.argv[2]
n = 0
for name in sorted(os.listdir(src)) if os.path.isdir(src) else []:
    if not name.endswith(".bin"):
        continue
    data = open(os.path.join(src, name), "rb").read()
    off = rec = 0
    while off + 4 <= len(data):
        (length,) = struct.unpack_from(">I", data, off)
        off += 4
        if off + length > len(data):
            print("warning: %s: record %d truncated, stopping" % (name, rec), file=sys.stderr)
            break
        body = data[off:off + length]
        # an XLogData record's pgoutput payload follows its 25-byte header
        seed = body[25:] if body[:1] == b"w" and length > 25 else body
        if seed:
            with open(os.path.join(out, "fixture-%s-%d" % (name[:-4], rec)), "wb") as f:
                f.write(seed)
            n += 1
        off += length
        rec += 1
print(n)
PY
)
echo "seeded $nseeds fixture records; corpus has $(find "$corpus" -type f | wc -l) files"
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# WALREV_FUZZ_RUNS=N: a long run of N executions instead of a timed one.
if [ -n "${WALREV_FUZZ_RUNS:-}" ]; then limit=-runs=$WALREV_FUZZ_RUNS; else limit=-max_total_time=$seconds; fi
"$bin" "$corpus" "$limit" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$corpus/../" >"$log" 2>&1 || status=$?
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
echo "fuzzer $(basename "$bin"): executions=${execs:-unknown} seconds=$seconds exit=$status"
if [ "$status" -ne 0 ]; then
    tail -n 60 "$log" >&2
    exit 1
fi
