#!/usr/bin/env bash
# The differential test of issue 13 under server faults, with a fixed seed and
# a short workload: the source server (a private cluster: the shared one is
# never crashed) stopped with `pg_ctl stop -m immediate` or `-m fast` and
# started again at random points -- between steps, mid-transaction, around a
# bulk COMMIT, after DDL, after PREPARE and COMMIT PREPARED --, the history
# store in a second cluster stopped, started and its walrev sessions
# terminated, the Kafka brokers (a mock cluster) taken down, on top of the
# worker's SIGTERM/SIGKILL (also right after DDL) and the lost slot.
# `walrev snapshot` must still equal the live tables at every point.
# tests/difftest/run --source-faults --history-faults --kafka-faults --seeds N
# runs more seeds.
source "$(dirname "$0")/lib.sh"
DIFFTEST_DIR=$TEST_TMP
export DIFFTEST_DIR
bash "$WALREV_SOURCE_DIR/tests/difftest/run" --seed "${DIFFTEST_FAULTS_SEED:-3}" --steps 250 --points 10 \
  --source-faults --history-faults --kafka-faults \
  || fail "difftest under server faults diverged outside the known list (or the worker failed)"
pass "difftest under server faults: every divergence is a known one"
