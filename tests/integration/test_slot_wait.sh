#!/usr/bin/env bash
# A new slot waits for every transaction open when it is created; a PREPAREd
# one never ends by itself. On a private cluster (a prepared transaction holds
# back slot creation in every database of its cluster): with a transaction
# prepared and the slot dropped, `walrev setup` (with and without a baseline)
# gives up after [worker] slot_create_timeout with an error that names the
# prepared transaction, exit 1, no slot left behind; once it is committed,
# setup succeeds and the history records the gap and the prepared change.
source "$(dirname "$0")/lib.sh"
C=$TEST_TMP/cluster
bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" start "$C" >/dev/null || fail "private cluster did not start"
on_exit 'bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" stop "$C" >/dev/null 2>&1'
export PGPORT=$(cat "$C/port")
DB=slotwait
q postgres "CREATE DATABASE $DB"
SRC=$(conninfo $DB)
SLOT=waitslot
printf '[worker]\nslot_create_timeout = 3\n' >"$TEST_TMP/walrev.conf"
W() { "$WALREV_BIN" -c "$TEST_TMP/walrev.conf" --source "$SRC" --slot $SLOT "$@"; }
H="SET search_path = walrev;"

q $DB "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b')"
must "$TEST_TMP/setup1.out" "first setup" W setup
run_to_now "$TEST_TMP/run.log" -c "$TEST_TMP/walrev.conf" --source "$SRC" --slot $SLOT

q $DB "BEGIN; UPDATE t SET v = 'prepared' WHERE id = 1; PREPARE TRANSACTION 'held by a test'"
q $DB "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null

for mode in baseline no-baseline; do
  args=(); [ $mode = no-baseline ] && args=(--no-baseline)
  t0=$(date +%s)
  set +e
  timeout 60 "$WALREV_BIN" -c "$TEST_TMP/walrev.conf" --source "$SRC" --slot $SLOT setup "${args[@]}" \
    >"$TEST_TMP/setup-$mode.out" 2>&1
  rc=$?
  set -e
  took=$(($(date +%s) - t0))
  [ $rc = 124 ] && fail "setup ($mode) still waited after 60 s"
  expect_eq "setup ($mode) with a prepared transaction open fails" "$rc" 1
  [ $took -le 30 ] || fail "setup ($mode) took $took s with slot_create_timeout = 3"
  grep -q "not consistent after 3 s" "$TEST_TMP/setup-$mode.out" &&
    grep -q "prepared transaction 'held by a test' in database $DB by postgres" "$TEST_TMP/setup-$mode.out" ||
    { cat "$TEST_TMP/setup-$mode.out"; fail "setup ($mode) does not name the prepared transaction"; }
  pass "setup ($mode) names the prepared transaction it waited for"
  expect_eq "setup ($mode) left no slot behind" \
    "$(q $DB "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$SLOT'")" 0
done

q $DB "COMMIT PREPARED 'held by a test'"
must "$TEST_TMP/setup2.out" "setup after COMMIT PREPARED" W setup
run_to_now "$TEST_TMP/run.log" -c "$TEST_TMP/walrev.conf" --source "$SRC" --slot $SLOT
expect_eq "the gap revision records the prepared change" \
  "$(q $DB "$H SELECT string_agg(d.op::text || d.key, ' ') FROM revision r
             JOIN object_delta d ON d.revision_id = r.id WHERE r.actor_id = 'gap'")" 'U["1"]'
expect_like_table "the history of t equals the table" t "$(W snapshot --table t 2>/dev/null | sort)"
