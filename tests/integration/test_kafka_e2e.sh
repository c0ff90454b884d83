#!/usr/bin/env bash
# The worker with the history store and Kafka sinks together, against
# librdkafka's mock cluster in its own process: every revision reaches both,
# the Kafka stream read back with `walrev tail` equals the history store
# (revision ids, sequence, operation, key, values), and the slot is confirmed.
source "$(dirname "$0")/lib.sh"
source_db kafka_e2e
on_exit '[ -n "${mpid:-}" ] && kill "$mpid" 2>/dev/null'
kafka_conf kafka_e2e wr
q $DB "CREATE TABLE item (id int PRIMARY KEY, name text, qty int); INSERT INTO item VALUES (1, 'existing', 1)"
w_setup
for i in $(seq 2 40); do
  echo "BEGIN; SELECT walrev.context('{\"actor\":{\"type\":\"user\",\"id\":\"u$((i % 3))\"}}');
        INSERT INTO item VALUES ($i, 'item $i', $i); UPDATE item SET qty = qty + 1 WHERE id = $((i - 1)); COMMIT;"
done | psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null
q $DB "DELETE FROM item WHERE id % 10 = 0; UPDATE item SET name = NULL WHERE id = 5"
run_to_now "$TMP/run.log" -c "$TMP/walrev.conf"
pass "worker drained to $STOP with history + kafka"

NREV=$(q $DB "SELECT count(*) FROM walrev.revision")
NDELTA=$(q $DB "SELECT count(*) FROM walrev.object_delta")
W tail --brokers "$BROKERS" --prefix wr --from-beginning --format json --max-messages $((NREV + NDELTA)) \
  --timeout-ms 20000 >"$TMP/tail.json" 2>"$TMP/tail.err" || { cat "$TMP/tail.err"; fail tail; }
expect_eq "every revision and delta message arrived" "$(wc -l <"$TMP/tail.json")" "$((NREV + NDELTA))"
got=$(/usr/bin/python3 - "$TMP/tail.json" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1]):
    m = json.loads(line)
    v = m.get("value", m)
    if v.get("type") != "delta":
        continue
    ch = {c["col_id"]: c.get("new") for c in v.get("changes", [])}
    rows.append("%d|%d|%s|%s|%s" % (v["revision"]["id"], v["seq"], v["op"][0].upper(), v["key"],
                                    ",".join("%s=%s" % (k, ch[k]) for k in sorted(ch))))
print("\n".join(sorted(rows)))
PY
)
want=$(q $DB "SELECT d.revision_id || '|' || d.seq || '|' || d.op::text || '|' || coalesce(d.key, 'None') || '|' ||
  coalesce((SELECT string_agg(c || '=' || coalesce(n, 'None'), ',' ORDER BY c) FROM unnest(d.col_ids, d.new_values) AS u(c, n)), '')
  FROM walrev.object_delta_arrays d" | sort)
expect_eq "the Kafka stream equals the history store, delta by delta" "$got" "$want"
expect_eq "slot confirmed past the stop LSN (both sinks durable)" \
  "$(q $DB "SELECT confirmed_flush_lsn >= '$STOP' FROM pg_replication_slots WHERE slot_name = 'kafka_e2e'")" "t"
