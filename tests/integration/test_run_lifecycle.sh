#!/usr/bin/env bash
# `walrev run` as a service: READY/STATUS/WATCHDOG/STOPPING to a socket
# standing in for systemd; the walsender killed under it → reconnect with
# backoff and nothing lost; a quiet or untracked database does not pin WAL;
# SIGTERM → final feedback and exit 0.
source "$(dirname "$0")/lib.sh"
source_db life_src
cleanup() {
  [ -n "${wpid:-}" ] && kill -9 "$wpid" 2>/dev/null || true
  [ -n "${npid:-}" ] && kill "$npid" 2>/dev/null || true
}
on_exit cleanup
q $DB "CREATE TABLE tracked (id int PRIMARY KEY, v text)"
must "$TMP/setup.out" setup "$WALREV_BIN" --source "$SRC" --slot life --publication life_pub setup

/usr/bin/python3 "$(dirname "$0")/notify_listener.py" "$TMP/notify.sock" "$TMP/notify.log" &
npid=$!
wait_for 5 test -S "$TMP/notify.sock" || true
NOTIFY_SOCKET="$TMP/notify.sock" WATCHDOG_USEC=2000000 WATCHDOG_PID= \
  "$WALREV_BIN" --source "$SRC" --slot life --publication life_pub run 2>"$TMP/run.log" &
wpid=$!
wait_for 10 grep -q '^READY=1' "$TMP/notify.log" 2>/dev/null || true
grep -q '^READY=1' "$TMP/notify.log" || { cat "$TMP/run.log"; fail "no READY=1"; }
pass "READY=1 once streaming"

q $DB "INSERT INTO tracked VALUES (1, 'before')"
# Kill the walsender: the worker must reconnect and lose nothing.
sleep 1
q $DB "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'life'" >/dev/null
q $DB "INSERT INTO tracked VALUES (2, 'during reconnect')"
tracked_deltas() { [ "$(q $DB "SELECT count(*) FROM walrev.object_delta WHERE relid = 'public.tracked'::regclass")" = 2 ]; }
wait_for 20 tracked_deltas || true
expect_eq "both changes recorded across the reconnect" \
  "$(q $DB "SELECT string_agg(new_values[2], ',' ORDER BY revision_id) FROM walrev.object_delta_arrays WHERE relid = 'public.tracked'::regclass")" "before,during reconnect"
grep -q 'retrying' "$TMP/run.log" || fail "the reconnect was not logged"
pass "walsender loss logged and retried"

# WAL that concerns no tracked table (another database): the slot must still
# advance past it, or a quiet database would pin WAL forever.
q postgres "DROP TABLE IF EXISTS life_noise; CREATE TABLE life_noise (id int); INSERT INTO life_noise SELECT generate_series(1, 20000)"
TARGET=$(current_lsn postgres)
slot_past_target() { [ "$(q $DB "SELECT confirmed_flush_lsn >= '$TARGET' FROM pg_replication_slots WHERE slot_name = 'life'")" = t ]; }
wait_for 20 slot_past_target || true
expect_eq "WAL of untracked work does not stay pinned" \
  "$(q $DB "SELECT confirmed_flush_lsn >= '$TARGET' FROM pg_replication_slots WHERE slot_name = 'life'")" "t"

sleep 2.5
grep -q '^WATCHDOG=1' "$TMP/notify.log" || fail "no WATCHDOG=1 within the watchdog interval"
grep -q '^STATUS=' "$TMP/notify.log" || fail "no STATUS="
pass "WATCHDOG=1 and STATUS= sent"

expect_clean_stop "SIGTERM: clean exit"
grep -q '^STOPPING=1' "$TMP/notify.log" || fail "no STOPPING=1"
grep -q 'msg="stopped"' "$TMP/run.log" || fail "no final stop line"
pass "STOPPING=1 and a final status before exit"

# The stop confirmed the slot past the untracked WAL; the store knows it is
# complete through that point, so a snapshot as of it answers (instead of
# "beyond the history"), and the checkpoint's revision and the chain are the
# last revision's still.
expect_eq "the checkpoint is complete through the stop position, its revision the last one" \
  "$(q $DB "SELECT c.end_lsn >= '$TARGET' AND c.end_lsn > r.end_lsn, c.revision_id = r.id, c.checksum = r.checksum
            FROM walrev.checkpoint c, (SELECT * FROM walrev.revision ORDER BY id DESC LIMIT 1) r WHERE c.slot_name = 'life'")" "t|t|t"
expect_eq "snapshot as of an LSN after the last revision, before the stop" \
  "$("$WALREV_BIN" --source "$SRC" snapshot --at "$TARGET" --table tracked --format csv 2>"$TMP/snap.err" | sort | tr '\n' ' ')" \
  "1,before 2,during reconnect id,v "
must "$TMP/verify.out" "verify after the stop" "$WALREV_BIN" --source "$SRC" verify
pass "verify after the stop: $(cat "$TMP/verify.out")"
# A worker started again from that checkpoint records what comes next.
q $DB "INSERT INTO tracked VALUES (3, 'after restart')"
run_to_now "$TMP/run2.log" --source "$SRC" --slot life --publication life_pub
expect_eq "a restart from the recorded position records the next change" \
  "$(q $DB "SELECT string_agg(new_values[2], ',' ORDER BY revision_id) FROM walrev.object_delta_arrays WHERE relid = 'public.tracked'::regclass")" \
  "before,during reconnect,after restart"

# A slot that does not exist (a typo in --slot, or setup never run with it):
# fatal, exit 1, and the message says what creates it.
rc=0
timeout 60 "$WALREV_BIN" --source "$SRC" --slot life_missing --publication life_pub run --stop-lsn 0/1 \
  2>"$TMP/missing.log" || rc=$?
expect_eq "a missing slot: exit 1" "$rc" 1
grep -q 'msg="source: replication slot \\"life_missing\\" does not exist on .* (SQLSTATE 42704): walrev setup, with the same --slot, creates it" status=fatal' "$TMP/missing.log" ||
  { cat "$TMP/missing.log"; fail "the missing slot is not named with what creates it"; }
pass "a missing slot is named, with what creates it"
