#!/usr/bin/env bash
# How the history session commits (issue 16), against a second private
# PostgreSQL this test starts (and stops) itself, whose WAL writer sleeps
# 10 s (only whole WAL pages are written early), so batches committed
# asynchronously stay unflushed in its WAL buffers:
#   - [history] synchronous_commit = off: after an immediate (crash) stop of
#     the history server, whose recovery keeps exactly what was flushed, the
#     slot's confirmed_flush_lsn is not past what the server kept (its
#     checkpoint), although the batches were visible before the crash and the
#     server's default is synchronous_commit = on (the worker sets off
#     itself); after the history server restarts, the worker resends what the
#     crash lost: every transaction recorded exactly once, ids dense, verify
#     passes;
#   - synchronous_commit = auto (the default): one-row transactions, whose
#     batches the quiet history server leaves unflushed, are flushed by the
#     caught-up worker itself: the slot is confirmed through the last of them
#     long before the WAL writer wakes, and a crash right after loses none
#     (the flush is real: before, `sync` took only a transaction id, which
#     commits without flushing, and this crash lost all five);
#   - synchronous_commit = on: recorded and stopped cleanly too.
source "$(dirname "$0")/lib.sh"
source_db async_commit
H=$TEST_TMP/hist-cluster
wpid=
cleanup() {
  set +e
  [ -n "$wpid" ] && kill -9 "$wpid" 2>/dev/null
  bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" stop "$H" >/dev/null 2>&1
}
on_exit cleanup

bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" start "$H" \
  "synchronous_commit = on" "wal_writer_delay = 10s" "bgwriter_lru_maxpages = 0" "checkpoint_timeout = 1h" \
  >/dev/null || fail "second cluster did not start"
HPORT=$(cat "$H/port")
HQ() { psql -X -q -v ON_ERROR_STOP=1 -At -h 127.0.0.1 -p "$HPORT" -U postgres -d "$1" -c "$2"; }
HQ postgres "CREATE DATABASE hist"
HIST="host=127.0.0.1 port=$HPORT user=postgres dbname=hist"
# (functions, so that wait_for evaluates them on every try)
rows_are() { [ "$(HQ hist "SELECT count(*) FROM walrev.object_delta" 2>/dev/null)" = "$1" ]; }
slot_confirmed() { q $DB "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'async_commit'"; }
slot_confirmed_through() { [ "$(q $DB "SELECT confirmed_flush_lsn >= '$1'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'async_commit'")" = t ]; }
hist_connected() { [ "$(HQ hist "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'walrev-history'")" = 1 ]; }
last_end() { HQ hist "SELECT coalesce(max(end_lsn), '0/0') FROM walrev.revision"; }
start_worker() {
  "$WALREV_BIN" -c "$TEST_TMP/walrev.conf" run >/dev/null 2>>"$TEST_TMP/run.log" &
  wpid=$!
  wait_for 20 hist_connected \
    || { cat "$TEST_TMP/run.log"; fail "the worker did not connect to the history store"; }
}
# crash_history: an immediate stop of the history server (its WAL buffers are
# lost, what was flushed stays), then the worker killed as a crash would; the
# slot's confirmed position at that moment is left in $confirmed.
crash_history() {
  local pm
  pm=$(head -1 "$H/data/postmaster.pid")
  kill -QUIT "$pm"
  wait_for 20 bash -c "! kill -0 $pm 2>/dev/null" || fail "the history server did not stop"
  kill -9 "$wpid"; wait "$wpid" 2>/dev/null || true; wpid=
  confirmed=$(slot_confirmed)
}
# restart_history: the history server started again on its own data directory
# (pgcluster.sh start would make a new one).
restart_history() {
  local pgbin
  pgbin=$(dirname "$(readlink -f "$(ls /usr/lib/postgresql/*/bin/pg_ctl | head -1)")")
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$H/data" -l "$H/restart.log" -w start >/dev/null
  else
    "$pgbin/pg_ctl" -D "$H/data" -l "$H/restart.log" -w start >/dev/null
  fi
  wait_for 30 HQ postgres "SELECT 1" >/dev/null 2>&1 || fail "the history server did not come back"
}

q $DB "CREATE TABLE t (id int PRIMARY KEY, v text)"
source_conf async_commit <<CONF
[history]
conninfo = $HIST
batch_max_ms = 5
synchronous_commit = off
[worker]
connect_timeout = 2
status_interval_ms = 50
CONF
w_setup

# ---- off: confirmed behind the history server's flush ----
start_worker
for i in $(seq 1 60); do
  q $DB "INSERT INTO t VALUES ($i, 'v$i')"
done
wait_for 30 rows_are 60 \
  || { cat "$TEST_TMP/run.log"; fail "the 60 rows were not recorded"; }
pass "60 one-row transactions visible in the history"

# The newest batches are committed but their commit records sit on the
# history server's last, partly filled WAL page, which the sleeping WAL
# writer has not written: the slot must not be confirmed past them.
echo "# history server WAL: flushed $(HQ hist "SELECT pg_current_wal_flush_lsn()"), inserted $(HQ hist "SELECT pg_current_wal_insert_lsn()")"
crash_history
restart_history
kept=$(HQ hist "SELECT count(*) FROM walrev.object_delta")
end=$(last_end)
cp_end=$(HQ hist "SELECT coalesce(max(end_lsn), '0/0') FROM walrev.checkpoint")
echo "# after the crash: $kept of 60 rows kept, last revision ends at $end, checkpoint $cp_end; slot confirmed $confirmed"
# The checkpoint may lie past the last revision: once every batch was flushed
# (the WAL writer's 10 s passed on a slow run) the worker records the
# source's WAL end as its idle position, through WAL of other databases (in
# the shared test cluster), and confirms the slot there.
expect_eq "the slot was never confirmed past what the crashed history server kept" \
  "$(q $DB "SELECT '$confirmed'::pg_lsn <= '$cp_end'::pg_lsn AND '$end'::pg_lsn <= '$cp_end'::pg_lsn")" "t"

# Restart: what the crash lost is streamed again from the slot.
start_worker
for i in $(seq 61 70); do q $DB "INSERT INTO t VALUES ($i, 'after')"; done
wait_for 60 rows_are 70 \
  || { cat "$TEST_TMP/run.log"; fail "the history did not get every row back (has $(HQ hist "SELECT count(*) FROM walrev.object_delta"))"; }
expect_clean_stop "clean stop exits 0"
expect_history_once 70 after 10
expect_verify "the chain verifies"
# After a clean stop everything is flushed (the stop forces the flush): the
# slot is confirmed through the last revision at least.
expect_eq "after a clean stop the slot is confirmed through the last revision" \
  "$(q $DB "SELECT confirmed_flush_lsn >= '$(last_end)'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'async_commit'")" "t"

# ---- auto (the default): caught up, each batch durable when reported ----
sed -i '/^synchronous_commit = off$/d' "$TEST_TMP/walrev.conf"
grep -q 'synchronous_commit' "$TEST_TMP/walrev.conf" && fail "config not edited"
start_worker
for i in $(seq 71 75); do
  q $DB "INSERT INTO t VALUES ($i, 'auto')"
  wait_for 30 rows_are "$i" || { cat "$TEST_TMP/run.log"; fail "row $i not recorded"; }
done
end=$(last_end)
# Off, this waits for the WAL writer (10 s here); auto flushes the batches
# itself once a poll 20 ms after a commit finds it still unflushed.
wait_for 5 slot_confirmed_through "$end" \
  || { cat "$TEST_TMP/run.log"; fail "the slot was not confirmed through $end within 5 s: the batches were not durable when committed"; }
pass "the slot is confirmed through the last revision ($end) at once"
crash_history
restart_history
expect_eq "a crash of the history server right after lost none of them" \
  "$(HQ hist "SELECT count(*) FILTER (WHERE 'auto' = ANY (new_values)) FROM walrev.object_delta_arrays")|$(last_end)" "5|$end"
expect_eq "the slot was never confirmed past what the crashed history server kept" \
  "$(HQ hist "SELECT '$confirmed'::pg_lsn <= max(end_lsn) FROM walrev.checkpoint")" "t"

# ---- on: the session commits synchronously ----
printf 'synchronous_commit = on\n' >"$TEST_TMP/sync.line"
sed -i '/^batch_max_ms = 5$/r '"$TEST_TMP/sync.line" "$TEST_TMP/walrev.conf"
grep -qx 'synchronous_commit = on' "$TEST_TMP/walrev.conf" || fail "config not edited"
start_worker
q $DB "INSERT INTO t VALUES (76, 'sync')"
wait_for 30 rows_are 76 || fail "row 76 not recorded"
kill -TERM "$wpid"; rc=0; wait "$wpid" || rc=$?; wpid=
expect_eq "with synchronous_commit = on: recorded, clean stop" "$rc" 0
grep -q 'synchronous_commit' "$TEST_TMP/run.log" && { cat "$TEST_TMP/run.log"; fail "an error about synchronous_commit"; }
expect_history_once 76 after 10
pass "done"
