#!/usr/bin/env bash
# Faults of the history store's connection, against a second private
# PostgreSQL this test starts (and stops) itself — never the shared one:
#   - a wrong password on the history store is fatal at once, with a clear
#     message that names the refused login and not the password, exit 1;
#   - a frozen history server (every process of it SIGSTOPped) ends the
#     session within [worker] reply_timeout_ms with a timeout error instead of
#     hanging, the worker keeps retrying (connect_timeout bounds each attempt),
#     and after SIGCONT it recovers: every transaction recorded exactly once,
#     the chain verifies, a clean stop exits 0.
source "$(dirname "$0")/lib.sh"
source_db conn_faults
H=$TMP/hist-cluster
frozen=()
cleanup() {
  set +e # a failed kill of a process already gone must not skip the rest
  [ ${#frozen[@]} -gt 0 ] && kill -CONT "${frozen[@]}" 2>/dev/null || true
  [ -n "${wpid:-}" ] && kill -9 "$wpid" 2>/dev/null || true
  bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" stop "$H" >/dev/null 2>&1 || true
}
on_exit cleanup

bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" start "$H" >/dev/null || fail "second cluster did not start"
HPORT=$(cat "$H/port")
HQ() { psql -X -q -v ON_ERROR_STOP=1 -At -h 127.0.0.1 -p "$HPORT" -U postgres -d "$1" -c "$2"; }
HQ postgres "CREATE DATABASE hist"
HQ postgres "CREATE ROLE hist_user LOGIN SUPERUSER PASSWORD 'Right-Pw-4711'"
# Password authentication for hist_user (the cluster trusts everyone else).
sed -i "1i host all hist_user 127.0.0.1/32 scram-sha-256" "$H/data/pg_hba.conf"
HQ postgres "SELECT pg_reload_conf()" >/dev/null
HIST="host=127.0.0.1 port=$HPORT user=postgres dbname=hist"

q $DB "CREATE TABLE t (id int PRIMARY KEY, v text)"
source_conf conn_faults <<CONF
[history]
conninfo = $HIST
batch_max_ms = 20
[worker]
connect_timeout = 2
reply_timeout_ms = 3000
status_interval_ms = 200
CONF
w_setup

# ---- a wrong password on the history store: fatal, clear, at once ----
t0=$(date +%s%N)
rc=0
timeout 60 "$WALREV_BIN" -c "$TMP/walrev.conf" run \
  --history "host=127.0.0.1 port=$HPORT user=hist_user password=Wrong-Pw-0815 dbname=hist" \
  >"$TMP/pw.out" 2>"$TMP/pw.err" || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "a wrong history password exits 1 (not retried forever, not killed by timeout)" "$rc" 1
[ "$ms" -lt 15000 ] || fail "a wrong history password took $ms ms to fail"
pass "it failed after $ms ms"
grep -qE 'history store: could not connect: .*password authentication failed for user \\?"hist_user\\?"' "$TMP/pw.err" \
  || { cat "$TMP/pw.err"; fail "no clear message about the refused login"; }
python3 "$WALREV_SOURCE_DIR/tests/integration/logfmt_check.py" "$TMP/pw.err" || fail "lines that are not logfmt"
grep -q 'the server refused this login: authentication failed; not retrying' "$TMP/pw.err" \
  || { cat "$TMP/pw.err"; fail "the message does not say it is not retrying"; }
expect_eq "no retry was attempted" "$(grep -c '; retrying' "$TMP/pw.err" || true)" 0
expect_eq "the password is in no output" "$(cat "$TMP/pw.out" "$TMP/pw.err" | grep -c 'Wrong-Pw-0815' || true)" 0
# The right password works (the failure was the password, not the setup).
STOP0=$(current_lsn $DB)
timeout 60 "$WALREV_BIN" -c "$TMP/walrev.conf" run --stop-lsn "$STOP0" \
  --history "host=127.0.0.1 port=$HPORT user=hist_user password=Right-Pw-4711 dbname=hist" \
  >/dev/null 2>"$TMP/ok.err" || { cat "$TMP/ok.err"; fail "the right password did not work"; }
pass "the right password works"

# ---- a frozen history server ----
"$WALREV_BIN" -c "$TMP/walrev.conf" run >"$TMP/run.out" 2>"$TMP/run.log" &
wpid=$!
for i in $(seq 1 10); do q $DB "INSERT INTO t VALUES ($i, 'before')"; done
hist_rows_are() { [ "$(HQ hist "SELECT count(*) FROM walrev.object_delta" 2>/dev/null)" = "$1" ]; }
wait_hist() { wait_for "$2" hist_rows_are "$1"; } # COUNT SECONDS
wait_hist 10 30 || { cat "$TMP/run.log"; fail "the first 10 rows were not recorded"; }
pass "10 rows recorded before the freeze"

PM=$(head -1 "$H/data/postmaster.pid")
frozen=("$PM" $(ps -o pid= --ppid "$PM"))
kill -STOP "${frozen[@]}"
t0=$(date +%s%N)
for i in $(seq 11 20); do q $DB "INSERT INTO t VALUES ($i, 'during')"; done
got=""
wait_for 20 grep -q 'no reply from the server within 3000 ms' "$TMP/run.log" && got=1
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ -n "$got" ] || { cat "$TMP/run.log"; fail "no timeout error within 20 s of the freeze"; }
[ "$ms" -ge 2500 ] && [ "$ms" -le 8000 ] || { cat "$TMP/run.log"; fail "timeout error after $ms ms, want about 3000"; }
pass "the frozen history server gave a timeout error after $ms ms (reply_timeout_ms = 3000)"
grep -q 'history store: connection lost during .*no reply from the server within 3000 ms.*; retrying' "$TMP/run.log" \
  || { cat "$TMP/run.log"; fail "the timeout was not retried"; }
# While frozen, each new attempt gives up after connect_timeout; the worker stays alive.
sleep 5
kill -0 "$wpid" 2>/dev/null || { cat "$TMP/run.log"; fail "the worker exited while the history server was frozen"; }
n=$(grep -c '; retrying' "$TMP/run.log")
[ "$n" -ge 2 ] || { cat "$TMP/run.log"; fail "want at least 2 retries while frozen, got $n"; }
pass "still retrying while frozen ($n attempts)"

kill -CONT "${frozen[@]}"
frozen=()
wait_hist 20 60 || { cat "$TMP/run.log"; fail "the worker did not recover after SIGCONT"; }
pass "recovered after SIGCONT: 20 rows recorded"
expect_clean_stop "clean stop after recovery exits 0"

expect_history_once 20 during 10
expect_verify "the chain verifies"
