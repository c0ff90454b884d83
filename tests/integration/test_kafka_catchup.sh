#!/usr/bin/env bash
# Kafka behind the history store (issue 14.11/14.6), made on purpose: the
# brokers go down, UPDATE, DELETE and INSERT transactions commit into the
# history store (Kafka cannot take them), the worker is SIGKILLed, the
# brokers come back. The next run must give Kafka exactly the revisions it
# lacks — each once, under the history's id and checksum — with the old
# values the history recorded: re-assembled against the store's newest
# image, an UPDATE looked like no change and its revision never reached
# Kafka (the next one then collided with the store's ids).
source "$(dirname "$0")/lib.sh"
: "${WALREV_MOCK_KAFKA:?run through ctest}"
source_db kafka_catchup
cleanup() {
  [ -n "${wpid:-}" ] && kill -9 "$wpid" 2>/dev/null || true
  [ -n "${mpid:-}" ] && kill "$mpid" 2>/dev/null || true
}
on_exit cleanup
kafka_conf kcu kcu
q $DB "CREATE TABLE acct (id int PRIMARY KEY, balance int, owner text)"
w_setup
confirmed_through() { [ "$(q $DB "SELECT confirmed_flush_lsn >= '$1' FROM pg_replication_slots WHERE slot_name = 'kcu'")" = t ]; }
revisions() { q $DB "$H SELECT count(*) FROM revision"; }

"$WALREV_BIN" -c "$TMP/walrev.conf" run 2>>"$TMP/run.log" &
wpid=$!
q_at END1 "INSERT INTO acct SELECT g, 100, 'o' || g FROM generate_series(1, 10) g"
wait_for 60 confirmed_through "$END1" || { tail -20 "$TMP/run.log"; fail "the first rows did not reach every sink"; }
pass "10 rows in the history store and on Kafka"

# Brokers down: the history store goes on, Kafka cannot.
kill -USR1 "$mpid"
before=$(revisions)
for i in $(seq 1 20); do
  q $DB "UPDATE acct SET balance = balance + $i WHERE id = $(( (i % 10) + 1 ))"
done
q $DB "DELETE FROM acct WHERE id = 3; INSERT INTO acct VALUES (11, 7, 'new'); UPDATE acct SET owner = 'renamed' WHERE id = 4"
expected=$((before + 21))
wait_for 60 eval '[ "$(revisions)" = "$expected" ]' || { tail -20 "$TMP/run.log"; fail "the history store did not record the 21 transactions ($(revisions) revisions)"; }
kill -9 "$wpid"; wait "$wpid" 2>/dev/null || true; wpid=
pass "21 transactions in the history store while the brokers were down, then SIGKILL"

kill -USR2 "$mpid"
END2=$(current_lsn $DB)
timeout 120 "$WALREV_BIN" -c "$TMP/walrev.conf" run --stop-lsn "$END2" 2>"$TMP/run2.log" \
  || { tail -20 "$TMP/run2.log"; fail "the catching-up run"; }
grep -q 'msg="kafka sink opened" prefix=kcu holds_through=' "$TMP/run2.log" || { cat "$TMP/run2.log"; fail "no position read back"; }
HOLDS=$(sed -n 's/.*msg="kafka sink opened" prefix=kcu holds_through=[^ ]* last_revision=\([0-9]*\).*/\1/p' "$TMP/run2.log" | head -1)
[ "$HOLDS" -lt "$expected" ] || fail "Kafka was not behind the history store (it holds revision $HOLDS of $expected)"
pass "Kafka was behind: it held revision $HOLDS of $expected"
expect_eq "every revision Kafka lacked was assembled again (none given nothing, none re-checksummed)" \
  "$(grep -o 'rechecksummed=[0-9]* not_reassembled=[0-9]*' "$TMP/run2.log")" "rechecksummed=0 not_reassembled=0"

q $DB "$H SELECT id || ' ' || xid || ' ' || commit_lsn || ' ' || encode(checksum, 'hex') FROM revision ORDER BY id" >"$TMP/hist.txt"
q $DB "$H SELECT row_to_json(a) FROM (SELECT revision_id, seq, op, key, col_id, old_value, new_value
    FROM attribute_delta) a" >"$TMP/hist_attrs.json"
W tail --brokers "$BROKERS" --prefix kcu --from-beginning --format json --timeout-ms 5000 \
  >"$TMP/kafka.json" 2>"$TMP/tail.err" || true
got=$(/usr/bin/python3 - "$TMP/kafka.json" "$TMP/hist.txt" "$TMP/hist_attrs.json" <<'PY'
import json, sys
hist = {}
for line in open(sys.argv[2]):
    i, x, l, c = line.split()
    hist[int(i)] = (int(x), l, c)
attrs = {}
for line in open(sys.argv[3]):
    a = json.loads(line)
    attrs.setdefault((a["revision_id"], a["seq"]), {})[a["col_id"]] = (a["old_value"], a["new_value"])
revs, problems, compared = {}, [], 0
for line in open(sys.argv[1]):
    v = json.loads(line)
    v = v.get("value", v)
    r = v["revision"]
    if v["type"] == "revision":
        revs[r["id"]] = revs.get(r["id"], 0) + 1
        h = hist.get(r["id"])
        if h != (r["xid"], r["commit_lsn"], v["checksum"][2:]):
            problems.append("revision %d: %s, history %s" % (r["id"], (r["xid"], r["commit_lsn"], v["checksum"]), h))
    elif v["type"] == "delta":
        got = {c["col_id"]: (c.get("old"), c.get("new")) for c in v["changes"]}
        h = attrs.get((r["id"], v["seq"]), {})
        if v["op"] == "insert":
            h = {k: (None, n) for k, (o, n) in h.items()}
        elif v["op"] == "delete":
            h = {k: (o, None) for k, (o, n) in h.items()}
        compared += 1
        if got != h:
            problems.append("delta %s: %s, history %s" % (v["id"], got, h))
if set(revs) != set(hist):
    problems.append("revisions differ: %d missing, %d extra" % (len(set(hist) - set(revs)), len(set(revs) - set(hist))))
problems += ["revision %d sent %d times" % (i, n) for i, n in revs.items() if n != 1]
print("# %d deltas compared" % compared, file=sys.stderr)
print("; ".join(problems[:5]) if problems else "ok %d" % len(revs))
PY
)
expect_eq "Kafka: every revision once, under the history's id and checksum, every old and new value the history's" \
  "$got" "ok $(wc -l <"$TMP/hist.txt")"
