#!/usr/bin/env bash
# The differential test of issue 13 with a fixed seed: a random workload over
# every table kind, the worker stopped by SIGTERM and SIGKILL and its slot
# lost once, `walrev snapshot` compared with the live tables at every point.
# Divergences listed in tests/difftest/known.txt are reported as KNOWN and
# do not fail; any other does. tests/difftest/run --seeds N runs more seeds.
source "$(dirname "$0")/lib.sh"
DIFFTEST_DIR=$TEST_TMP
export DIFFTEST_DIR
bash "$WALREV_SOURCE_DIR/tests/difftest/run" --seed "${DIFFTEST_SEED:-1}" \
  || fail "difftest diverged outside the known list (or the worker failed)"
pass "difftest: every divergence is a known one"
