#!/usr/bin/env bash
# The slot is never confirmed past what the history store has made durable,
# also when a clean stop (SIGTERM) of a worker catching up on a backlog is
# followed at once by a crash of the history server (pg_ctl stop -m immediate
# on a cluster of its own): after each of six such rounds the slot must not
# stand past the history's checkpoint (else the next start records a gap).
# Before 23224cf the stop's WAL flush of the history server (sync) was a
# transaction that wrote no WAL, which PostgreSQL commits asynchronously
# whatever synchronous_commit says, and a round in two or three lost the
# stop's last batches (found by tests/difftest/run --history-faults, seed 32;
# 3 of 3 runs of this test failed on 7cb8f39).
source "$(dirname "$0")/lib.sh"
source_db histcrash histcrash
history_cluster
kill_at_exit 9 wpid
W() { "$WALREV_BIN" --source "$SRC" --history "$HIST" --slot "$SLOT" "$@"; }
q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text)"
w_setup
for round in 1 2 3 4 5 6; do
  for i in $(seq 1 40); do echo "INSERT INTO t SELECT g, 'r$round' FROM generate_series($round * 1000000 + $i * 1000, $round * 1000000 + $i * 1000 + 300) g;"; done | $PSQL -d "$DB"
  worker_up --source "$SRC" --history "$HIST" --slot "$SLOT"
  sleep "$((RANDOM % 2)).$((RANDOM % 9 + 1))"
  worker_stop "$wpid" || true
  wpid=
  bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" down "$HC" immediate
  bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" up "$HC"
  slot=$(q "$DB" "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$SLOT'")
  hist=$(HQ "SELECT end_lsn FROM walrev.checkpoint WHERE slot_name = '$SLOT'")
  expect_eq "round $round: the slot ($slot) is not past the history's checkpoint ($hist) after a history crash" \
    "$(q "$DB" "SELECT '$slot'::pg_lsn <= '$hist'::pg_lsn")" t
done
