#!/usr/bin/env bash
# `walrev status` (issue 17.3): every field against what the catalogs and the
# history store say, in JSON and aligned form; exit 0 healthy (a worker
# streaming), 1 degraded (slot inactive, lag over a limit, the worker's last
# run failed, a database unreachable), 2 usage; the worker's state row
# (streaming, stopped, failed with its error).
source "$(dirname "$0")/lib.sh"

source_db status_t
W() { "$WALREV_BIN" --source "$SRC" --slot status_t --publication status_pub "$@"; }
on_exit '[ -n "${wpid:-}" ] && kill -9 "$wpid" 2>/dev/null'
on_exit "$PSQL -d postgres -c \"SELECT pg_drop_replication_slot('status_t') FROM pg_replication_slots WHERE slot_name = 'status_t' AND NOT active\" >/dev/null"

q $DB "CREATE TABLE t (id int PRIMARY KEY, v text)"
w_setup
q $DB "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 5) g"
q $DB "UPDATE t SET v = 'w' WHERE id = 1"
run_to_now "$TEST_TMP/run.log" --source "$SRC" --slot status_t --publication status_pub

# jq-free field access: python reads the JSON
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); exec("v=d"+sys.argv[2]); print(json.dumps(v) if not isinstance(v,str) else v)' "$@"; }
st() { rc=0; W status "$@" >"$TEST_TMP/s.out" 2>"$TEST_TMP/s.err" || rc=$?; }

# ---- stopped worker: degraded (slot inactive), every field checked ----
st --format json
expect_eq "inactive slot: exit 1" "$rc" 1
J=$TEST_TMP/s.out
expect_eq "healthy" "$(field $J '["healthy"]')" false
expect_eq "problems" "$(field $J '["problems"]')" '["slot status_t is inactive: no walrev run is streaming from it"]'
read -r conf restart ws <<<"$(q $DB "SELECT confirmed_flush_lsn, restart_lsn, wal_status FROM pg_replication_slots WHERE slot_name = 'status_t'" | tr '|' ' ')"
expect_eq "slot" "$(field $J '["slot"]["name"]') $(field $J '["slot"]["exists"]') $(field $J '["slot"]["active"]')" "status_t true false"
expect_eq "confirmed LSN" "$(field $J '["slot"]["confirmed_flush_lsn"]')" "$conf"
expect_eq "restart LSN" "$(field $J '["slot"]["restart_lsn"]')" "$restart"
# the byte counts are measured at the WAL position status read (source_wal_lsn): WAL moves on
SW=$(field $J '["source_wal_lsn"]')
expect_eq "retained WAL bytes" "$(field $J '["slot"]["retained_wal_bytes"]')" "$(q $DB "SELECT pg_wal_lsn_diff('$SW', '$restart')::bigint")"
expect_eq "wal_status" "$(field $J '["slot"]["wal_status"]')" "$ws"
expect_eq "lag bytes" "$(field $J '["lag"]["bytes"]')" "$(q $DB "SELECT pg_wal_lsn_diff('$SW', '$conf')::bigint")"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["lag"]["seconds"]; assert isinstance(s,(int,float)) and s >= 0, s' $J || fail "lag seconds not a number"
# every top-level field of the JSON is in docs/cli.md's table of status fields
python3 - "$J" "$WALREV_SOURCE_DIR/docs/cli.md" <<'PY' || fail "status --format json has fields docs/cli.md does not list"
import json, re, sys
doc = open(sys.argv[2]).read()
table = doc[doc.index("| line | field | what |"):]
table = table[:table.index("\n\n")]
named = set(re.findall(r"`([a-z_]+)(?:[.\[`])", table))
missing = [k for k in json.load(open(sys.argv[1])) if k not in named]
print("undocumented status fields:", missing) if missing else None
sys.exit(1 if missing else 0)
PY
rid=$(q $DB "SELECT max(id) FROM walrev.revision")
expect_eq "last revision id" "$(field $J '["last_revision"]["id"]')" "$rid"
expect_eq "last revision commit time" "$(field $J '["last_revision"]["commit_time"]')" "$(q $DB "SELECT commit_time FROM walrev.revision WHERE id = $rid")"
expect_eq "last revision end" "$(field $J '["last_revision"]["end_lsn"]')" "$(q $DB "SELECT end_lsn FROM walrev.revision WHERE id = $rid")"
expect_eq "history sink position" "$(field $J '["sinks"][0]["sink"]') $(field $J '["sinks"][0]["durable_end_lsn"]') $(field $J '["sinks"][0]["revision_id"]')" \
  "history $(q $DB "SELECT end_lsn || ' ' || revision_id FROM walrev.checkpoint WHERE slot_name = 'status_t'")"
expect_eq "every sink: the slot's confirmed LSN" "$(field $J '["sinks"][1]["durable_end_lsn"]')" "$conf"
# rates: revisions and changes of the last 60 s / 60 (the inserts and the update just made are in it)
nrev=$(q $DB "SELECT count(*) FROM walrev.revision")
python3 - "$J" "$nrev" <<'PY' || fail "rates: $(field $J '["rates"]')"
import json, sys
r = json.load(open(sys.argv[1]))["rates"]
revs, changes = r["revisions_per_second"] * 60, r["changes_per_second"] * 60
assert r["window_seconds"] == 60
assert abs(revs - round(revs)) < 1e-6 and 2 <= round(revs) <= int(sys.argv[2]), revs
assert abs(changes - round(changes)) < 1e-6 and round(changes) >= 6, changes
PY
pass "rates"
expect_eq "baselines in progress" "$(field $J '["baselines"]')" "[]"
expect_eq "gaps" "$(field $J '["gaps"]["count"]')" 0
expect_eq "worker state after a clean stop" "$(field $J '["worker"]["state"]') $(field $J '["worker"]["last_error"]')" "stopped null"

# the aligned form says the same
st
expect_eq "aligned: exit 1" "$rc" 1
grep -qx "health           degraded" "$TEST_TMP/s.out" || { cat "$TEST_TMP/s.out"; fail "aligned health"; }
grep -qx "problem          slot status_t is inactive: no walrev run is streaming from it" "$TEST_TMP/s.out" || fail "aligned problem"
grep -qx "last revision    $rid committed $(q $DB "SELECT commit_time FROM walrev.revision WHERE id = $rid"), end $(q $DB "SELECT end_lsn FROM walrev.revision WHERE id = $rid")" "$TEST_TMP/s.out" \
  || { cat "$TEST_TMP/s.out"; fail "aligned last revision"; }
grep -qx "gaps             0" "$TEST_TMP/s.out" || fail "aligned gaps"
grep -q "^worker           stopped since " "$TEST_TMP/s.out" || fail "aligned worker"
grep -qx "last error       none" "$TEST_TMP/s.out" || fail "aligned last error"

# ---- a streaming worker: healthy, exit 0 ----
"$WALREV_BIN" --source "$SRC" --slot status_t --publication status_pub run 2>"$TEST_TMP/run2.log" &
wpid=$!
active() { st --format json; [ "$(field $J '["slot"]["active"]')" = true ] && [ "$(field $J '["worker"]["state"]')" = streaming ]; }
wait_for 30 active || { cat "$TEST_TMP/s.out" "$TEST_TMP/run2.log"; fail "the worker never showed as streaming"; }
wait_for 30 sh -c "\"$WALREV_BIN\" --source '$SRC' --slot status_t status >/dev/null 2>&1" || { W status; fail "never healthy while streaming"; }
st --format json
expect_eq "streaming: exit 0" "$rc" 0
expect_eq "streaming: healthy, no problems" "$(field $J '["healthy"]') $(field $J '["problems"]')" "true []"
expect_eq "streaming: worker pid" "$(field $J '["worker"]["pid"]')" "$wpid"
kill -TERM $wpid
wait $wpid || fail "worker did not stop cleanly"
wpid=

# ---- each sink's durable position, as the worker recorded it (a file sink beside the history) ----
sink_names() { python3 -c 'import json,sys; print(json.dumps([s["sink"] for s in json.load(open(sys.argv[1]))["sinks"]]))' "$J"; }
q $DB "INSERT INTO t VALUES (5000, 'to the file too')"
run_to_now "$TEST_TMP/run3.log" --source "$SRC" --slot status_t --publication status_pub -- --file "$TEST_TMP/out.msgpack"
st --format json
last_end=$(q $DB "SELECT end_lsn FROM walrev.revision ORDER BY id DESC LIMIT 1")
expect_eq "sinks: history, file, all" "$(sink_names)" '["history", "file", "all (slot confirmed)"]'
expect_eq "the file sink holds through the last revision" "$(field $J '["sinks"][1]["durable_end_lsn"]')" "$last_end"
expect_eq "recorded with the worker's stop" "$(field $J '["sinks"][1]["recorded_at"]')" \
  "$(q $DB "SELECT sinks_at FROM walrev.worker_state WHERE slot_name = 'status_t'")"
expect_eq "worker_state.sinks" "$(q $DB "SELECT sinks FROM walrev.worker_state WHERE slot_name = 'status_t'")" \
  "[{\"sink\": \"history\", \"durable_end_lsn\": \"$(q $DB "SELECT end_lsn FROM walrev.checkpoint WHERE slot_name = 'status_t'")\"}, {\"sink\": \"file\", \"durable_end_lsn\": \"$last_end\"}]"
st
grep -qx "sink             file durable to $last_end (recorded by the worker $(q $DB "SELECT sinks_at FROM walrev.worker_state WHERE slot_name = 'status_t'"))" "$TEST_TMP/s.out" \
  || { cat "$TEST_TMP/s.out"; fail "aligned file sink line"; }
pass "aligned: one line per sink"
# a store whose worker_state predates the sinks columns: status and the worker go on without them
q $DB "ALTER TABLE walrev.worker_state DROP COLUMN sinks, DROP COLUMN sinks_at"
q $DB "INSERT INTO t VALUES (5001, 'old store')"
run_to_now "$TEST_TMP/run4.log" --source "$SRC" --slot status_t --publication status_pub -- --file "$TEST_TMP/out.msgpack"
st --format json
expect_eq "old store: no recorded sinks" "$(sink_names)" '["history", "all (slot confirmed)"]'
expect_eq "old store: the state is still recorded" "$(field $J '["worker"]["state"]')" stopped
must "$TEST_TMP/setup2.out" "setup again" W setup
expect_eq "setup adds the columns back" "$(q $DB "SELECT count(*) FROM pg_attribute WHERE attrelid = 'walrev.worker_state'::regclass AND attname IN ('sinks', 'sinks_at')")" 2

# ---- lag over a limit ----
q $DB "INSERT INTO t SELECT g, 'x' FROM generate_series(6, 2000) g"
st --format json --max-lag-bytes 1000 --max-lag-seconds 100000
expect_eq "lag over the limit: exit 1" "$rc" 1
lagb=$(field $J '["lag"]["bytes"]')
[ "$lagb" -gt 1000 ] || fail "lag $lagb after 2000 rows"
expect_eq "lag problems" "$(field $J '["problems"]')" "[\"slot status_t is inactive: no walrev run is streaming from it\", \"lag $lagb bytes is over --max-lag-bytes 1000\"]"
expect_eq "limits reported" "$(field $J '["limits"]')" '{"max_lag_bytes": 1000, "max_lag_seconds": 100000}'

# ---- a failed run records its error ----
rc=0
"$WALREV_BIN" --source "host=127.0.0.1 port=$PGPORT user=no_such_role dbname=$DB" --history "$SRC" --slot status_t \
  --publication status_pub run 2>"$TEST_TMP/fail.log" || rc=$?
expect_eq "a refused login ends the worker with 1" "$rc" 1
st --format json
expect_eq "failed worker: exit 1" "$rc" 1
expect_eq "failed state" "$(field $J '["worker"]["state"]') $(field $J '["worker"]["last_error_class"]') $(field $J '["worker"]["errors"]')" "failed fatal 1"
field $J '["worker"]["last_error"]' | grep -qF 'no_such_role' || fail "last error: $(field $J '["worker"]["last_error"]')"
[ "$(field $J '["worker"]["last_error_at"]')" != null ] || fail "no last_error_at"
field $J '["problems"]' | grep -qF '"worker failed: ' || fail "problems: $(field $J '["problems"]')"

# ---- a history store without the schema: the server's message, not a crash ----
# (status passed NULL for the SQLSTATE pgio_error_text writes: a failed store query was a SIGSEGV)
rc=0
WALREV_SCHEMA=no_such_schema W status --format json >"$J" 2>"$TEST_TMP/s.err" || rc=$?
expect_eq "store without the schema: exit 1" "$rc" 1
expect_eq "store without the schema: its problem" "$(field $J '["problems"][-1]')" \
  'history store: relation "no_such_schema.revision" does not exist (run walrev setup?)'

# ---- unreachable source, usage errors ----
rc=0
"$WALREV_BIN" --source "host=127.0.0.1 port=1 dbname=x" --history "$SRC" --slot status_t status --format json >"$J" 2>/dev/null || rc=$?
expect_eq "unreachable source: exit 1" "$rc" 1
field $J '["problems"][0]' | grep -q '^source: could not connect' || fail "unreachable problem: $(field $J '["problems"]')"
for args in "--format xml" "--max-lag-bytes -5" "--max-lag-seconds soon" "surplus" "--bogus"; do
  # shellcheck disable=SC2086
  st $args
  expect_eq "status $args exits 2" "$rc" 2
  expect_eq "status $args prints nothing" "$(cat "$TEST_TMP/s.out")" ""
done
echo "all status tests passed"
