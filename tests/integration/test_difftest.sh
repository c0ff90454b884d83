#!/usr/bin/env bash
# The differential test of issue 13 with a fixed seed: a random workload over
# every table kind, the worker stopped by SIGTERM and SIGKILL and its slot
# lost once, `walrev snapshot` compared with the live tables at every point.
# Divergences listed in tests/difftest/known.txt are reported as KNOWN and
# do not fail; any other does. tests/difftest/run --seeds N runs more seeds.
source "$(dirname "$0")/lib.sh"
DIFFTEST_DIR=$(mktemp -d /tmp/walrev-difftest-ci.XXXXXX)
export DIFFTEST_DIR
trap 'rm -rf "$DIFFTEST_DIR"' EXIT
# A worker that dies by a signal (SIGSEGV) in the restart-heavy workload is an
# open bug (closing note of 2026-12-06: it does not reproduce under ASan); the
# run is repeated, loudly, at most twice for that cause only. Any divergence
# outside the known list fails at once.
for attempt in 1 2 3; do
  rc=0
  bash "$WALREV_SOURCE_DIR/tests/difftest/run" --seed "${DIFFTEST_SEED:-1}" 2>&1 | tee "$DIFFTEST_DIR/out.$attempt" || rc=1
  [ "${PIPESTATUS[0]}" = 0 ] && rc=0 || rc=1
  [ $rc = 0 ] && break
  grep -Eq 'run --stop-lsn .* failed \(-(11|6|7)\)' "$DIFFTEST_DIR/out.$attempt" \
    || fail "difftest diverged outside the known list"
  echo "WARNING: difftest attempt $attempt: the worker died by a signal (open bug); running again" >&2
done
[ $rc = 0 ] || fail "difftest: the worker died by a signal in three attempts"
pass "difftest: every divergence is a known one"
