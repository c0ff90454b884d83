#!/usr/bin/env bash
# CTest's integration.difftest_valgrind (normal build only: valgrind and ASan
# do not mix): the differential test with another fixed seed than
# test_difftest, every `walrev run` under valgrind memcheck. The worker's
# memory errors that only a particular restart point reaches (two
# use-after-frees in the assembler were found this way) fail it.
source "$WALREV_SOURCE_DIR/tests/integration/lib.sh"
command -v valgrind >/dev/null || fail "valgrind is not installed (scripts/deps.sh installs it)"
DIFFTEST_DIR=$(mktemp -d /tmp/walrev-difftest-vg.XXXXXX)
export DIFFTEST_DIR
trap 'rm -rf "$DIFFTEST_DIR"' EXIT
bash "$WALREV_SOURCE_DIR/tests/difftest/run" --valgrind --seed "${DIFFTEST_VALGRIND_SEED:-7}" \
  || fail "difftest under valgrind: a memory error in the worker, or a divergence outside the known list"
pass "difftest under valgrind: no memory error, every divergence a known one"
