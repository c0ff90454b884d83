#!/usr/bin/env bash
# Quarantine (issue 14.1, defence in depth; docs/history-store.md#quarantine):
# a revision the history store refuses twice with a data error is stored
# whole as raw msgpack in walrev.quarantine, its revision row flagged, so the
# stream goes on, ids stay dense, nothing is lost and the slot moves on only
# past what is durable. Contexts are sanitised, so no user input fails the
# store any more: the data error is provoked by the test-only fault
# WALREV_TEST_INJECT_DATA_ERROR (a delta with that value is written with a
# NUL byte the server refuses: SQLSTATE 22021).
source "$(dirname "$0")/lib.sh"
source_db quarantine_src
start_mock_kafka "$TMP"
mpid=$MOCK_PID
on_exit kill "$mpid"
source_conf quar <<CONF
[history]
partition_revisions = 2
[file]
path = $TMP/changes.mp
[kafka]
bootstrap.servers = $BROKERS
topic_prefix = qk
CONF
DECODE=/usr/bin/python3
KD="$WALREV_SOURCE_DIR/tests/integration/kafka_decode.py"

q $DB "CREATE TABLE item (id int PRIMARY KEY, note text); CREATE TABLE pad (n int)"
w_setup
BASE=$(q $DB "$H SELECT max(id) FROM revision")
# Partitions of 2 revisions: boundaries are the odd ids. The quarantined
# revision (BASE + 3) is made odd so that a prune can cut exactly at it.
if [ $((BASE % 2)) = 1 ]; then
  q $DB "INSERT INTO pad VALUES (1)"
  run_to "$(current_lsn $DB)" "$TMP/pad.log" -c "$TMP/walrev.conf"
  BASE=$(q $DB "$H SELECT max(id) FROM revision")
fi

# Five transactions in one batch's reach; the third carries the poison value
# and a context, and changes two rows.
q $DB "INSERT INTO item VALUES (1, 'a1')"
q $DB "INSERT INTO item VALUES (2, 'a2')"
PXID=$(psql -X -q -At -d $DB -c "BEGIN" -c "SELECT walrev.context('{\"actor\":{\"type\":\"user\",\"id\":\"poisoner\"}}')" \
  -c "INSERT INTO item VALUES (3, 'POISON-VALUE'), (30, 'beside it')" -c "SELECT txid_current()" -c "COMMIT" | tail -1)
q $DB "INSERT INTO item VALUES (4, 'a4')"
q_at STOP "UPDATE item SET note = 'a5' WHERE id = 1"

export WALREV_TEST_INJECT_DATA_ERROR=POISON-VALUE
run_to "$STOP" "$TMP/run1.log" -c "$TMP/walrev.conf"
pass "the worker went on past the data error to the stop LSN"

expect_eq "the first failure makes it commit revision by revision" \
  "$(grep -c 'data error in the history store; committing revisions' "$TMP/run1.log")" 1
expect_eq "the second failure, alone, names the revision for quarantine" \
  "$(grep -c 'revision failed twice on a data error' "$TMP/run1.log")" 1
expect_eq "the next session quarantines it" "$(grep -c 'msg="quarantining revision' "$TMP/run1.log")" 1
grep 'revision failed twice' "$TMP/run1.log" | grep -q 'sqlstate=22021' || { cat "$TMP/run1.log"; fail "the error's SQLSTATE"; }
pass "the failure is SQLSTATE 22021"

N=$((BASE + 5))
expect_eq "revision ids dense, one per transaction" \
  "$(q $DB "$H SELECT count(*), min(id), max(id) FROM revision")" "$N|1|$N"
QR=$(q $DB "$H SELECT id FROM revision WHERE quarantined")
expect_eq "exactly the poison transaction's revision is flagged" \
  "$(q $DB "$H SELECT id, xid FROM revision WHERE quarantined")" "$((BASE + 3))|$PXID"
expect_eq "its row: counts, no actor, the warning" \
  "$(q $DB "$H SELECT n_insert, actor_id IS NULL, warnings LIKE 'quarantined: the history store refused it twice (22021)%' FROM revision WHERE id = $QR")" \
  "2|t|t"
expect_eq "no deltas or contexts of it in the tables" \
  "$(q $DB "$H SELECT (SELECT count(*) FROM object_delta WHERE revision_id = $QR), (SELECT count(*) FROM revision_context WHERE revision_id = $QR)")" \
  "0|0"
expect_eq "the quarantine row: id, xid, LSNs, SQLSTATE, error" \
  "$(q $DB "$H SELECT q.revision_id, q.xid, q.commit_lsn = r.commit_lsn, q.end_lsn = r.end_lsn, q.sqlstate, q.error LIKE '%invalid byte sequence%' FROM quarantine q JOIN revision r ON r.id = q.revision_id")" \
  "$QR|$PXID|t|t|22021|t"
q $DB "$H SELECT encode(raw, 'hex') FROM quarantine" | xxd -r -p >"$TMP/raw.mp"
$DECODE "$KD" "$TMP/raw.mp" >"$TMP/raw.json" || { cat "$TMP/raw.json"; fail "the raw form does not decode"; }
expect_eq "the raw form: both deltas with their values and context, then the revision message with its checksum" \
  "$($DECODE -c '
import json, sys
out = []
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m["type"] == "delta":
        out.append("delta:%s:%s:%s" % (m["key"], ",".join(str(c.get("new")) for c in m["changes"]), m["context"]["actor"]["id"]))
    elif m["type"] == "revision":
        out.append("revision:%s:%s" % (m["revision"]["id"], m["checksum"]))
print(" ".join(out))' "$TMP/raw.json")" \
  "delta:[\"3\"]:3,POISON-VALUE:poisoner delta:[\"30\"]:30,beside it:poisoner revision:$QR:$(q $DB "$H SELECT '\\x' || encode(checksum, 'hex') FROM revision WHERE id = $QR")"
expect_eq "the other transactions recorded as usual" \
  "$(q $DB "$H SELECT string_agg(d.key || '=' || coalesce(d.new_values[2], d.new_values[1]), ',' ORDER BY d.revision_id) FROM object_delta_arrays d WHERE d.relid = 'public.item'::regclass")" \
  '["1"]=a1,["2"]=a2,["4"]=a4,["1"]=a5'

$DECODE "$KD" "$TMP/changes.mp" >"$TMP/file.json" || fail "the file sink's stream does not decode"
expect_eq "the file sink got the quarantined revision once, whole" \
  "$(grep -c '"POISON-VALUE"' "$TMP/file.json")|$(grep '"type": *"revision"' "$TMP/file.json" | grep -c "\"id\": *$QR[,}]")" "1|1"

W tail --brokers "$BROKERS" --prefix qk --from-beginning --format json --timeout-ms 5000 >"$TMP/kafka.json" 2>"$TMP/tail.err" || true
expect_eq "Kafka got the quarantined revision: its delta with the poison value, its revision message with the history's checksum" \
  "$(/usr/bin/python3 - "$TMP/kafka.json" "$QR" "$(q $DB "$H SELECT '\\x' || encode(checksum, 'hex') FROM revision WHERE id = $QR")" <<'PY'
import json, sys
qr, sum_ = int(sys.argv[2]), sys.argv[3]
deltas, revs = set(), set()
for line in open(sys.argv[1]):
    v = json.loads(line)
    v = v.get("value", v)
    if v["revision"]["id"] != qr:
        continue
    if v["type"] == "delta":
        deltas.add((v["seq"], ",".join(str(c.get("new")) for c in v["changes"])))
    elif v["type"] == "revision":
        revs.add(v["checksum"] == sum_)
print(sorted(deltas), sorted(revs))
PY
)" "[(1, '3,POISON-VALUE'), (2, '30,beside it')] [True]"
expect_eq "the slot is confirmed to the stop LSN" \
  "$(q $DB "SELECT confirmed_flush_lsn >= '$STOP' FROM pg_replication_slots WHERE slot_name = 'quar'")" t

rc=0; W verify >"$TMP/verify.out" 2>&1 || rc=$?
[ $rc = 0 ] || { cat "$TMP/verify.out"; fail "verify exited $rc"; }
expect_eq "verify passes and reports the quarantined revision" \
  "$(grep -c "^quarantined: revision $QR (xid $PXID, .*SQLSTATE 22021: .*invalid byte sequence.*in walrev.quarantine" "$TMP/verify.out")|$(grep -c "^verified $N revisions" "$TMP/verify.out")" "1|1"
must "$TMP/log.out" log W log
grep -E "^ *$QR .*\[quarantined\]" "$TMP/log.out" >/dev/null || { cat "$TMP/log.out"; fail "log does not mark it"; }
pass "log marks the revision [quarantined]"

# A restart neither quarantines again nor loses anything.
q $DB "INSERT INTO item VALUES (6, 'a6')"
run_to_now "$TMP/run2.log" -c "$TMP/walrev.conf"
expect_eq "after a restart: no data error, one quarantined revision, ids dense" \
  "$(grep -c 'data error\|msg="quarantin' "$TMP/run2.log")|$(q $DB "$H SELECT count(*) FROM quarantine")|$(q $DB "$H SELECT count(*), max(id) FROM revision")" \
  "0|1|$((N + 1))|$((N + 1))"
expect_eq "the new transaction recorded" \
  "$(q $DB "$H SELECT count(*) FROM object_delta_arrays WHERE relid = 'public.item'::regclass AND new_values[2] = 'a6'")" 1
must "$TMP/verify2.out" "verify after the restart" W verify
pass "verify passes after the restart"

# Tampering: the flag taken off (its rows are then missing from the chain),
# or the quarantine row deleted, fails verify at that revision.
q $DB "$H UPDATE revision SET quarantined = false WHERE id = $QR"
rc=0; W verify >"$TMP/t1.out" 2>&1 || rc=$?
expect_eq "unflagged: verify exits 1 at that revision" "$rc|$(grep -c "at revision $QR:" "$TMP/t1.out")" "1|1"
q $DB "$H UPDATE revision SET quarantined = true WHERE id = $QR"
q $DB "$H CREATE TABLE q_saved AS SELECT * FROM quarantine; DELETE FROM quarantine"
rc=0; W verify >"$TMP/t2.out" 2>&1 || rc=$?
expect_eq "its quarantine row deleted: verify exits 1 naming it" \
  "$rc|$(grep -c "revision $QR: flagged quarantined but the quarantine table holds no row for it" "$TMP/t2.out")" "1|1"
q $DB "$H INSERT INTO quarantine SELECT * FROM q_saved"
q $DB "$H UPDATE quarantine q SET raw = overlay(q.raw placing '\\x00'::bytea from position('\\xc420'::bytea || r.checksum in q.raw) + 2) FROM revision r WHERE r.id = q.revision_id"
rc=0; W verify >"$TMP/t3.out" 2>&1 || rc=$?
expect_eq "its raw form altered where the checksum is: verify exits 1 naming it" \
  "$rc|$(grep -c "revision $QR: flagged quarantined but its quarantine row is not its own" "$TMP/t3.out")" "1|1"
q $DB "$H UPDATE revision SET quarantined = true WHERE id = $((QR + 1)); INSERT INTO quarantine SELECT $((QR + 1)), xid, commit_lsn, end_lsn, sqlstate, error, raw, quarantined_at FROM q_saved"
q $DB "$H DELETE FROM quarantine WHERE revision_id = $QR; INSERT INTO quarantine SELECT * FROM q_saved"
rc=0; W verify >"$TMP/t4.out" 2>&1 || rc=$?
expect_eq "another revision flagged with a copy of the raw form: verify exits 1 naming it" \
  "$rc|$(grep -c "revision $((QR + 1)): flagged quarantined but" "$TMP/t4.out")" "1|1"
q $DB "$H UPDATE revision SET quarantined = false WHERE id = $((QR + 1)); DELETE FROM quarantine WHERE revision_id = $((QR + 1)); DROP TABLE q_saved"
must "$TMP/verify3.out" "verify after restoring" W verify
pass "verify passes again once restored"

# Pruned exactly at the quarantined revision: its parent is then the prune's
# anchor, which its raw form must carry, and the chain still verifies.
ANCHOR=$(q $DB "$H SELECT encode(checksum, 'hex') FROM revision WHERE id = $((QR - 1))")
must "$TMP/prune.out" "prune at the quarantined revision" W prune --before "$QR" --apply
expect_eq "pruned up to the quarantined revision, which is kept" \
  "$(q $DB "$H SELECT (SELECT min(id) FROM revision), (SELECT count(*) FROM quarantine), (SELECT encode(anchor, 'hex') FROM prune)")" \
  "$QR|1|$ANCHOR"
rc=0; W verify >"$TMP/verify4.out" 2>&1 || rc=$?
[ $rc = 0 ] || { cat "$TMP/verify4.out"; fail "verify after pruning at the quarantined revision exited $rc"; }
expect_eq "verify passes from the anchor and still reports the quarantined revision" \
  "$(grep -c "^quarantined: revision $QR " "$TMP/verify4.out")|$(grep -c "^verified $((N + 2 - QR)) revisions" "$TMP/verify4.out")" "1|1"
q $DB "$H UPDATE prune SET anchor = decode(repeat('00', 32), 'hex')"
rc=0; W verify >"$TMP/t5.out" 2>&1 || rc=$?
expect_eq "an anchor that is not the raw form's parent fails verify at the quarantined revision" \
  "$rc|$(grep -c "revision $QR: flagged quarantined but its quarantine row is not its own" "$TMP/t5.out")" "1|1"
q $DB "$H UPDATE prune SET anchor = decode('$ANCHOR', 'hex')"
