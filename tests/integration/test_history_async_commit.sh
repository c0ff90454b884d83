#!/usr/bin/env bash
# The history session commits with synchronous_commit = off (issue 16), and
# the slot is confirmed only behind the history server's WAL flush: a crash of
# the history server may lose committed batches, never a revision whose
# source position the slot was confirmed past. Against a second private
# PostgreSQL this test starts (and stops) itself, whose WAL writer sleeps
# 10 s (only whole WAL pages are written early), so the last batches stay
# unflushed in its WAL buffers:
#   - after an immediate (crash) stop of the history server, whose recovery
#     keeps exactly what was flushed, the slot's confirmed_flush_lsn is not
#     past the end LSN of the last revision (and the checkpoint) it kept,
#     although the batches were visible before the crash and the server's
#     default is synchronous_commit = on (the worker sets off itself);
#   - [history] synchronous_commit = on: recorded and stopped cleanly too;
#   - after the history server restarts, the worker resends what the crash
#     lost: every transaction recorded exactly once, ids dense, verify passes.
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
hist_connected() { [ "$(HQ hist "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'walrev-history'")" = 1 ]; }

q $DB "CREATE TABLE t (id int PRIMARY KEY, v text)"
source_conf async_commit <<CONF
[history]
conninfo = $HIST
batch_max_ms = 5
[worker]
connect_timeout = 2
status_interval_ms = 50
CONF
W setup >"$TEST_TMP/setup.out" 2>&1 || { cat "$TEST_TMP/setup.out"; fail setup; }

"$WALREV_BIN" -c "$TEST_TMP/walrev.conf" run >/dev/null 2>"$TEST_TMP/run.log" &
wpid=$!
wait_for 20 hist_connected \
  || { cat "$TEST_TMP/run.log"; fail "the worker did not connect to the history store"; }
for i in $(seq 1 60); do
  q $DB "INSERT INTO t VALUES ($i, 'v$i')"
done
wait_for 30 rows_are 60 \
  || { cat "$TEST_TMP/run.log"; fail "the 60 rows were not recorded"; }
pass "60 one-row transactions visible in the history"

# The newest batches are committed but their commit records sit on the
# history server's last, partly filled WAL page, which the sleeping WAL
# writer has not written: the slot must not be confirmed past them.
hist_flush=$(HQ hist "SELECT pg_current_wal_flush_lsn()")
hist_insert=$(HQ hist "SELECT pg_current_wal_insert_lsn()")
echo "# history server WAL: flushed $hist_flush, inserted $hist_insert"

# Crash the history server: its WAL buffers are lost, what was flushed stays.
PM=$(head -1 "$H/data/postmaster.pid")
kill -QUIT "$PM"
wait_for 20 bash -c "! kill -0 $PM 2>/dev/null" || fail "the history server did not stop"
# The worker can confirm nothing more now; stop it hard, as a crash would.
kill -9 "$wpid"; wait "$wpid" 2>/dev/null || true; wpid=
confirmed=$(slot_confirmed)
# Started again on its own data directory (pgcluster.sh start would make a new one).
PGBIN=$(dirname "$(readlink -f "$(ls /usr/lib/postgresql/*/bin/pg_ctl | head -1)")")
if [ "$(id -u)" = 0 ]; then
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$H/data" -l "$H/restart.log" -w start >/dev/null
else
  "$PGBIN/pg_ctl" -D "$H/data" -l "$H/restart.log" -w start >/dev/null
fi
wait_for 30 HQ postgres "SELECT 1" >/dev/null 2>&1 || fail "the history server did not come back"
kept=$(HQ hist "SELECT count(*) FROM walrev.object_delta")
end=$(HQ hist "SELECT coalesce(max(end_lsn), '0/0') FROM walrev.revision")
cp_end=$(HQ hist "SELECT coalesce(max(end_lsn), '0/0') FROM walrev.checkpoint")
echo "# after the crash: $kept of 60 rows kept, last revision ends at $end, checkpoint $cp_end; slot confirmed $confirmed"
expect_eq "the slot was never confirmed past what the crashed history server kept" \
  "$(q $DB "SELECT '$confirmed'::pg_lsn <= '$cp_end'::pg_lsn AND '$cp_end'::pg_lsn = '$end'::pg_lsn")" "t"

# Restart: what the crash lost is streamed again from the slot.
"$WALREV_BIN" -c "$TEST_TMP/walrev.conf" run >/dev/null 2>>"$TEST_TMP/run.log" &
wpid=$!
for i in $(seq 61 70); do q $DB "INSERT INTO t VALUES ($i, 'after')"; done
wait_for 60 rows_are 70 \
  || { cat "$TEST_TMP/run.log"; fail "the history did not get every row back (has $(HQ hist "SELECT count(*) FROM walrev.object_delta"))"; }
expect_clean_stop "clean stop exits 0"
expect_history_once 70 after 10
expect_verify "the chain verifies"
# After a clean stop everything is flushed (the stop forces the flush): the
# slot is confirmed through the last revision at least.
expect_eq "after a clean stop the slot is confirmed through the last revision" \
  "$(q $DB "SELECT confirmed_flush_lsn >= '$(HQ hist "SELECT max(end_lsn) FROM walrev.revision")'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'async_commit'")" "t"

# [history] synchronous_commit = on: the session commits synchronously.
sed -i 's/^batch_max_ms = 5$/batch_max_ms = 5\nsynchronous_commit = on/' "$TEST_TMP/walrev.conf"
grep -qx 'synchronous_commit = on' "$TEST_TMP/walrev.conf" || fail "config not edited"
"$WALREV_BIN" -c "$TEST_TMP/walrev.conf" run >/dev/null 2>>"$TEST_TMP/run.log" &
wpid=$!
wait_for 20 hist_connected \
  || { cat "$TEST_TMP/run.log"; fail "the worker did not connect again"; }
q $DB "INSERT INTO t VALUES (71, 'sync')"
wait_for 30 rows_are 71 || fail "row 71 not recorded"
kill -TERM "$wpid"; rc=0; wait "$wpid" || rc=$?; wpid=
expect_eq "with synchronous_commit = on: recorded, clean stop" "$rc" 0
grep -q 'synchronous_commit' "$TEST_TMP/run.log" && { cat "$TEST_TMP/run.log"; fail "an error about synchronous_commit"; }
pass "done"
