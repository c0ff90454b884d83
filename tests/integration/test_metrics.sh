#!/usr/bin/env bash
# Prometheus metrics (issue 17.4): `walrev run` with [metrics] listen serves
# /metrics; a workload's counters are exact (revisions and changes per sink
# equal what the history holds, the file sink's bytes equal the file's size,
# keyframes equal the store's), positions equal the slot's and the store's,
# a lost stream counts one retry and one error of class retry; the text
# passes `promtool check metrics`. A port in use or a bad address ends the
# run with a clear error. Every line the worker wrote at debug level is
# strict logfmt (issue 17.6).
source "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || fail "promtool missing (Debian package prometheus: scripts/deps.sh)"

source_db metrics_t
SLOT=metrics_t
W() { "$WALREV_BIN" --source "$SRC" --slot $SLOT --publication metrics_pub "$@"; }
on_exit '[ -n "${WORKER_PID:-}" ] && worker_kill'

# a table big enough for keyframes (more than 250 rows), one small
q $DB "CREATE TABLE big (id int PRIMARY KEY, v int); INSERT INTO big SELECT g, 0 FROM generate_series(1, 300) g;
       CREATE TABLE t (id int PRIMARY KEY, v text)"
w_setup
KF0=$(q $DB "$H SELECT count(*) FROM keyframe")
REV0=$(q $DB "$H SELECT max(id) FROM revision")
expect_eq "setup took the baseline's keyframe" "$KF0" 1

cat >"$TEST_TMP/walrev.conf" <<CONF
[history]
keyframe_factor = 1
[worker]
reconcile_interval = 1
[file]
path = $TEST_TMP/out.msgpack
[metrics]
listen = 127.0.0.1:0
CONF
LOG=$TEST_TMP/run.log
# test-only fault (docs/history-store.md#quarantine): a delta holding this value fails the history store
export WALREV_TEST_INJECT_DATA_ERROR=POISON-VALUE
worker_start "$LOG" -c "$TEST_TMP/walrev.conf" --source "$SRC" --slot $SLOT --publication metrics_pub -v -v
url() { sed -n 's/.*msg="serving metrics" url=\(http[^ ]*\).*/\1/p' "$LOG" | head -1; }
has_url() { [ -n "$(url)" ]; }
wait_for 10 has_url || { cat "$LOG"; fail "no 'serving metrics' line"; }
URL=$(url)
case "$URL" in http://127.0.0.1:[1-9]*/metrics) pass "serving at $URL (port 0: one the system chose)" ;; *) fail "url $URL" ;; esac

M=$TEST_TMP/metrics.txt
scrape() { curl -sf "$URL" -o "$M"; }
# metric SERIES: its value in the last scrape ("" when absent)
metric() { awk -v k="$1" '$1 == k { print $2 }' "$M"; }
has() { scrape && [ "$(metric "$1")" = "$2" ]; }

wait_for 30 has walrev_streaming 1 || { cat "$M" "$LOG"; fail "never streaming"; }
expect_eq "build info" "$(metric 'walrev_build_info{version="'"$("$WALREV_BIN" --version | cut -d' ' -f2)"'"}')" 1

# ---- a workload: 7 transactions (and one rolled back), 9 row changes, then one of 1,200 (a keyframe falls due: more than
# keyframe_factor 1 x 300 rows and than the floor of 1,000 deltas) ----
q $DB "INSERT INTO t VALUES (1, 'a')"
q $DB "INSERT INTO t VALUES (2, 'b'), (3, 'c')"
q $DB "UPDATE t SET v = 'with \"quotes\" and spaces' WHERE id = 1"
q $DB "BEGIN; UPDATE t SET v = 'x' WHERE id = 2; DELETE FROM t WHERE id = 3; COMMIT"
q $DB "BEGIN; INSERT INTO t VALUES (9, 'rolled back'); ROLLBACK"
q $DB "INSERT INTO t VALUES (4, 'd')"
q $DB "UPDATE t SET v = 'e' WHERE id = 4"
q $DB "DELETE FROM t WHERE id = 4"
q $DB "BEGIN; UPDATE big SET v = 1; UPDATE big SET v = 2; UPDATE big SET v = 3; UPDATE big SET v = 4; COMMIT"
# caught up: 8 revisions handed over, the keyframe taken, both sinks durable through the last revision
caught_up() {
  local last
  last=$(q $DB "SELECT pg_wal_lsn_diff(end_lsn, '0/0') FROM walrev.revision ORDER BY id DESC LIMIT 1")
  scrape && [ "$(metric 'walrev_sink_revisions_total{sink="history"}')" = 8 ] &&
    [ "$(metric walrev_keyframes_total)" = 1 ] &&
    [ "$(metric 'walrev_sink_durable_lsn{sink="file"}')" -ge "$last" ] &&
    [ "$(metric 'walrev_sink_durable_lsn{sink="history"}')" -ge "$last" ]
}
wait_for 60 caught_up || { cat "$M"; tail -20 "$LOG"; fail "the metrics never showed the workload"; }
NREV=$(($(q $DB "$H SELECT count(*) FROM revision") - REV0))
expect_eq "8 committed transactions, 8 revisions in the store" "$NREV" 8
expect_eq "revisions per sink: one per committed transaction" \
  "$(metric 'walrev_sink_revisions_total{sink="history"}') $(metric 'walrev_sink_revisions_total{sink="file"}')" "8 8"
NCH=$(q $DB "$H SELECT count(*) FROM object_delta WHERE revision_id > $REV0")
expect_eq "changes: 9 + 1200 in the store" "$NCH" 1209
expect_eq "changes per sink" \
  "$(metric 'walrev_sink_changes_total{sink="history"}') $(metric 'walrev_sink_changes_total{sink="file"}')" "1209 1209"
expect_eq "the file sink's bytes are the file's size" \
  "$(metric 'walrev_sink_written_bytes_total{sink="file"}')" "$(stat -c %s "$TEST_TMP/out.msgpack")"
[ "$(metric 'walrev_sink_written_bytes_total{sink="history"}')" -gt 0 ] || fail "no history bytes"
pass "history bytes $(metric 'walrev_sink_written_bytes_total{sink="history"}')"
expect_eq "keyframes: the store's, less setup's" "$(metric walrev_keyframes_total)" "$(($(q $DB "$H SELECT count(*) FROM keyframe") - KF0))"
expect_eq "keyframe duration histogram counts them" "$(metric walrev_keyframe_duration_seconds_count)" 1
expect_eq "last revision id" "$(metric walrev_last_revision_id)" "$(q $DB "$H SELECT max(id) FROM revision")"
expect_eq "no retries, no errors" \
  "$(metric walrev_retries_total) $(metric 'walrev_errors_total{class="retry"}') $(metric 'walrev_errors_total{class="fatal"}')" "0 0 0"
BATCHES=$(metric walrev_history_batch_commit_duration_seconds_count)
[ "$BATCHES" -ge 1 ] && [ "$BATCHES" -le 8 ] || fail "history batches $BATCHES for 8 revisions"
expect_eq "+Inf bucket = count" "$(metric 'walrev_history_batch_commit_duration_seconds_bucket{le="+Inf"}')" "$BATCHES"
# every update and delete under REPLICA IDENTITY DEFAULT needs its old image once: from the
# row cache (read ahead in batches or kept from before) or looked up in the history store
L=$(metric walrev_row_lookups_total) C=$(metric walrev_row_cache_hits_total)
expect_eq "lookups ($L) + cache hits ($C) = updates and deletes" "$((L + C))" \
  "$(q $DB "$H SELECT count(*) FROM object_delta WHERE revision_id > $REV0 AND op IN ('U', 'D')")"
# positions: equal the slot's and the store's once both settle (idle positions move them every 5 s)
positions() {
  scrape && [ "$(metric walrev_slot_confirmed_lsn)" = "$(q $DB "SELECT pg_wal_lsn_diff(confirmed_flush_lsn, '0/0') FROM pg_replication_slots WHERE slot_name = '$SLOT'")" ] &&
    [ "$(metric 'walrev_sink_durable_lsn{sink="history"}')" = "$(q $DB "SELECT pg_wal_lsn_diff(end_lsn, '0/0') FROM walrev.checkpoint WHERE slot_name = '$SLOT'")" ]
}
wait_for 30 positions || { cat "$M"; fail "positions differ from the slot's and the store's"; }
pass "confirmed LSN = the slot's confirmed_flush_lsn, history durable = the store's checkpoint"
R=$(metric walrev_slot_retained_wal_bytes)
[ -n "$R" ] && [ "$R" -gt 0 ] || { cat "$M"; fail "retained WAL '$R'"; }
pass "retained WAL $R bytes"
LB=$(metric walrev_lag_bytes) LS=$(metric walrev_lag_seconds)
[ -n "$LB" ] && [ "$LB" -ge 0 ] && python3 -c "import sys; assert 0 <= float(sys.argv[1]) < 60" "$LS" || fail "lag $LB bytes, $LS s"
pass "lag $LB bytes, $LS s"
caught_up_lag() { scrape && [ "$(metric walrev_lag_bytes)" = 0 ] && [ "$(metric walrev_lag_seconds)" = 0.000000 ]; }
wait_for 30 caught_up_lag || { cat "$M"; fail "never caught up: lag $(metric walrev_lag_bytes) bytes, $(metric walrev_lag_seconds) s"; }
pass "caught up: no lag in bytes or seconds"

# the continuous reconciliation compares the tables with the history every second: no difference
reconciled() { scrape && [ "$(metric walrev_reconcile_rounds_total)" -ge 1 ]; }
wait_for 60 reconciled || { cat "$M"; fail "no reconciliation round"; }
expect_eq "reconciliation: no failed round, no divergence, no difference" \
  "$(metric walrev_reconcile_rounds_failed_total) $(metric walrev_reconcile_divergences_total) $(metric walrev_reconcile_differences_total)" \
  "0 0 0"

must "$TEST_TMP/promtool.out" "promtool check metrics" promtool check metrics <"$M"
expect_eq "promtool check metrics: no problem" "$(cat "$TEST_TMP/promtool.out")" ""
curl -s -o /dev/null -w '%{http_code}' "${URL%/metrics}/" >"$TEST_TMP/code" || true
expect_eq "other paths: 404" "$(cat "$TEST_TMP/code")" 404

# ---- a lost stream: one retry, one error of class retry; counters go on ----
q $DB "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '$SLOT'" >/dev/null
wait_for 30 has walrev_retries_total 1 || { cat "$M"; tail -20 "$LOG"; fail "no retry counted"; }
expect_eq "an error of class retry" "$(metric 'walrev_errors_total{class="retry"}')" 1
wait_for 30 has walrev_streaming 1 || fail "not streaming again"
q $DB "INSERT INTO t VALUES (5, 'after the retry')"
wait_for 30 has 'walrev_sink_revisions_total{sink="history"}' 9 || { cat "$M"; fail "revisions after the retry"; }
expect_eq "changes after the retry" "$(metric 'walrev_sink_changes_total{sink="file"}')" 1210

# ---- a revision the history store refuses twice: two retries, then stored quarantined ----
q $DB "INSERT INTO t VALUES (6, 'POISON-VALUE')"
wait_for 60 has walrev_quarantined_revisions_total 1 || { cat "$M"; tail -20 "$LOG"; fail "nothing quarantined"; }
expect_eq "quarantined in the store" "$(q $DB "$H SELECT count(*) FROM revision WHERE quarantined")" 1
expect_eq "two more retries, each counted as class retry" \
  "$(metric walrev_retries_total) $(metric 'walrev_errors_total{class="retry"}') $(metric 'walrev_errors_total{class="fatal"}')" "3 3 0"

# ---- the address in use, a bad address ----
PORT=${URL#http://127.0.0.1:}
PORT=${PORT%/metrics}
rc=0
W run --no-history --file "$TEST_TMP/other.msgpack" --metrics-listen "127.0.0.1:$PORT" 2>"$TEST_TMP/inuse.log" || rc=$?
expect_eq "a port in use: exit 1" "$rc" 1
grep -q "^ts=[^ ]* level=error msg=\"metrics: cannot listen on 127.0.0.1:$PORT: Address already in use\" status=fatal\$" "$TEST_TMP/inuse.log" \
  || { cat "$TEST_TMP/inuse.log"; fail "no clear error for a port in use"; }
pass "a port in use is named with its reason"
[ ! -e "$TEST_TMP/other.msgpack" ] || fail "it wrote before giving up"
rc=0
W run --metrics-listen "localhost" 2>"$TEST_TMP/bad.log" || rc=$?
expect_eq "a bad address: exit 2" "$rc" 2
expect_eq "its message" "$(cat "$TEST_TMP/bad.log")" \
  "walrev: option --metrics-listen: [metrics] listen: 'localhost' is not HOST:PORT ([IPV6]:PORT, :PORT for every address)"
rc=0
WALREV_METRICS_LISTEN=1.2.3.4 W run 2>"$TEST_TMP/bad.log" || rc=$?
expect_eq "a bad address in the environment: exit 2" "$rc" 2

worker_stop || fail "the worker did not stop cleanly"
WORKER_PID=
curl -sf "$URL" >/dev/null 2>&1 && fail "still serving after the stop"
pass "the endpoint ends with the worker"

# ---- every line the worker wrote, at debug level, through a retry: strict logfmt ----
N=$(python3 "$WALREV_SOURCE_DIR/tests/integration/logfmt_check.py" --count "$LOG" "$TEST_TMP/inuse.log") \
  || { echo "$N"; fail "lines that are not logfmt"; }
[ "$N" -gt 30 ] || fail "only $N lines"
grep -q 'level=debug' "$LOG" || fail "no debug line checked"
pass "$N log lines, all strict logfmt"
echo "all metrics tests passed"
