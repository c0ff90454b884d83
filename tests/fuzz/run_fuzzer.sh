#!/usr/bin/env bash
# run_fuzzer.sh — short libFuzzer smoke run for CTest.
# Usage: run_fuzzer.sh <fuzz-binary> <tests-source-dir> <corpus-dir> <seconds>
# Seeds the corpus from tests/fuzz/seeds/* and from the golden fixtures
# (tests/golden/fixtures/*.bin: records of uint32 big-endian length + raw
# CopyData bytes; each 'w' record's pgoutput payload, i.e. the bytes after the
# 25-byte XLogData header, becomes one seed file), runs the fuzzer for the
# given time, prints the executions reached, and fails on any crash.
set -euo pipefail

if [ $# -ne 4 ]; then
    echo "usage: $0 <fuzz-binary> <tests-source-dir> <corpus-dir> <seconds>" >&2
    exit 2
fi
bin=$1 src=$2 corpus=$3 seconds=$4

mkdir -p "$corpus"
if [ -d "$src/fuzz/seeds" ]; then
    find "$src/fuzz/seeds" -maxdepth 1 -type f -exec cp -f {} "$corpus/" \;
fi

# Split fixture files into one seed per record (pure bash + od/dd; no python needed).
shopt -s nullglob
nseeds=0
for fx in "$src"/golden/fixtures/*.bin; do
    size=$(stat -c %s "$fx")
    off=0 rec=0
    base=$(basename "$fx" .bin)
    while [ $((off + 4)) -le "$size" ]; do
        len=$(od -An -tu1 -j "$off" -N4 "$fx" | awk '{print ($1*16777216)+($2*65536)+($3*256)+$4}')
        off=$((off + 4))
        if [ $((off + len)) -gt "$size" ]; then
            echo "warning: $fx: record $rec truncated, stopping" >&2
            break
        fi
        kind=$(od -An -c -j "$off" -N1 "$fx" | tr -d ' ')
        if [ "$kind" = "w" ] && [ "$len" -gt 25 ]; then
            dd if="$fx" of="$corpus/fixture-$base-$rec" bs=64K iflag=skip_bytes,count_bytes skip=$((off + 25)) count=$((len - 25)) status=none
            nseeds=$((nseeds + 1))
        elif [ "$len" -gt 0 ]; then
            dd if="$fx" of="$corpus/fixture-$base-$rec" bs=64K iflag=skip_bytes,count_bytes skip="$off" count="$len" status=none
            nseeds=$((nseeds + 1))
        fi
        off=$((off + len))
        rec=$((rec + 1))
    done
done
echo "seeded $nseeds fixture records; corpus has $(find "$corpus" -type f | wc -l) files"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
"$bin" "$corpus" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$corpus/../" >"$log" 2>&1 || status=$?
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
echo "fuzzer $(basename "$bin"): executions=${execs:-unknown} seconds=$seconds exit=$status"
if [ "$status" -ne 0 ]; then
    tail -n 60 "$log" >&2
    exit 1
fi
