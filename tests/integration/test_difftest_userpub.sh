#!/usr/bin/env bash
# The differential test of issue 13 with a publication the user chose and
# changes while the worker runs (tests/difftest/run --user-publication):
# tables and schemas leave it and rejoin, row filters, column lists,
# publish = without every action and publish_via_partition_root come and
# go, DETACH PARTITION ... CONCURRENTLY of a partition published through
# its parent alone, and the publication dropped and made again, on top of
# the worker's SIGTERM/SIGKILL and the lost slot. Each table-point must
# answer the live table's rows where PostgreSQL's catalog says the
# publication carried it whole, and walrev's refusal naming it unpublished
# where it did not: rows there (right or wrong) or a refusal where rows
# were due fail. A short fixed seed; tests/difftest/run --user-publication
# --seeds N runs more.
source "$(dirname "$0")/lib.sh"
DIFFTEST_DIR=$TEST_TMP
export DIFFTEST_DIR
bash "$WALREV_SOURCE_DIR/tests/difftest/run" --seed "${DIFFTEST_USERPUB_SEED:-5}" --user-publication \
  --known "$WALREV_SOURCE_DIR/tests/difftest/known_userpub.txt" \
  --steps 120 --points 6 --outage 15 --pub-rate 0.3 \
  || fail "difftest with a user-chosen publication diverged outside the known list (or the worker failed)"
pass "difftest with a user-chosen publication: every table-point its rows or the refusal, as the catalog says"
