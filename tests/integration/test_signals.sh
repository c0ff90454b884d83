#!/usr/bin/env bash
# Signals to `walrev run` as a service receives them: SIGHUP (a stray
# `kill -HUP`, logrotate, an operator expecting a reload) is logged and
# ignored — its default action would end the worker without a clean stop,
# and systemd, counting a death by SIGHUP as clean, would not restart it —
# and the worker goes on streaming; SIGTERM then stops it cleanly, exit 0.
source "$(dirname "$0")/lib.sh"

source_db signals_t signals_t
on_exit '[ -n "${WORKER_PID:-}" ] && worker_kill'
q $DB "CREATE TABLE t (id int PRIMARY KEY, v text)"
w_setup

worker_start "$LOG" --source "$SRC" --slot "$SLOT"
streaming() { grep -q 'msg="streaming"' "$LOG"; }
wait_for 30 streaming || { cat "$LOG"; fail "never streaming"; }

# in_history K: row K of t is in its newest snapshot
in_history() { W snapshot --table t --format csv 2>/dev/null | grep -q "^$1,"; }
q $DB "INSERT INTO t VALUES (1, 'before')"
wait_for 30 in_history 1 || { cat "$LOG"; fail "row 1 never in the history"; }

kill -HUP "$WORKER_PID"
warned() { grep -q 'level=warn msg="SIGHUP ignored: walrev does not reload its configuration' "$LOG"; }
wait_for 10 warned || { cat "$LOG"; fail "no log line for SIGHUP"; }
kill -0 "$WORKER_PID" 2>/dev/null || { cat "$LOG"; fail "SIGHUP ended the worker"; }
pass "SIGHUP logged, worker still running"

q $DB "INSERT INTO t VALUES (2, 'after')"
wait_for 30 in_history 2 || { cat "$LOG"; fail "row 2 (after SIGHUP) never in the history"; }
pass "streaming goes on after SIGHUP"

rc=0
worker_stop || rc=$?
WORKER_PID=
expect_eq "SIGTERM after SIGHUP: clean stop" "$rc" 0
grep -q 'level=error' "$LOG" && { cat "$LOG"; fail "an error was logged"; }
pass "no error logged"
