#!/usr/bin/env bash
# Revision ids stay unique and increasing across restarts and crashes in
# every sink combination (issue 14.6). With [history] enabled = false and
# Kafka alone, every start used to begin at id 1, so after SIGKILL cycles one
# id named two transactions and the documented dedup rule dropped real ones.
# Kafka alone: the worker is SIGKILLed repeatedly while a workload (run as a
# role with CONNECT only) commits; every transaction must reach Kafka, each
# id must name one transaction (xid, commit LSN) only, and ids must grow with
# commit LSNs. Then Kafka + file, the same: the file's ids dense from 1.
source "$(dirname "$0")/lib.sh"
source_db pl_ids
kill_at_exit TERM mpid
kill_at_exit TERM lpid
kill_at_exit 9 wpid # the last registered goes first
start_mock_kafka "$TMP"
mpid=$MOCK_PID

q $DB "CREATE TABLE ledger (n int PRIMARY KEY, phase int);"
q postgres "DROP ROLE IF EXISTS pl_app; CREATE ROLE pl_app LOGIN;"
q $DB "GRANT INSERT ON ledger TO pl_app;"

# phase NAME PREFIX FIRST LAST [FILE]: SIGKILL cycles while transactions FIRST..LAST commit.
phase() {
  local name=$1 prefix=$2 first=$3 last=$4 file=${5:-}
  cat >"$TMP/$name.conf" <<CONF
[source]
conninfo = $SRC
slot = pl_$name
[history]
enabled = false
[kafka]
bootstrap.servers = $BROKERS
topic_prefix = $prefix
CONF
  [ -n "$file" ] && printf '[file]\npath = %s\n' "$file" >>"$TMP/$name.conf"
  must "$TMP/$name.setup" "$name setup" "$WALREV_BIN" -c "$TMP/$name.conf" setup
  (
    for i in $(seq "$first" "$last"); do
      echo "INSERT INTO ledger VALUES ($i, $first);"
      [ $((i % 10)) = 0 ] && echo "SELECT pg_sleep(0.05);"
    done
  ) | psql -X -q -v ON_ERROR_STOP=1 -U pl_app -d $DB >/dev/null &
  lpid=$!
  kills=0
  while kill -0 "$lpid" 2>/dev/null; do
    worker_start "$TMP/$name.log" -c "$TMP/$name.conf"
    wpid=$WORKER_PID
    sleep "0.$((RANDOM % 5 + 3))"
    worker_kill "$wpid"
    kills=$((kills + 1))
  done
  wait "$lpid"; lpid=
  STOP=$(current_lsn $DB)
  timeout 120 "$WALREV_BIN" -c "$TMP/$name.conf" run --stop-lsn "$STOP" 2>>"$TMP/$name.log" || { tail "$TMP/$name.log"; fail "$name final run"; }
  wpid=
  [ "$kills" -ge 3 ] || fail "$name: only $kills SIGKILL cycles"
  "$WALREV_BIN" -c "$TMP/$name.conf" tail --brokers "$BROKERS" --prefix "$prefix" --from-beginning --format json \
    --timeout-ms 5000 >"$TMP/$name.json" 2>"$TMP/$name.tail.err" || true
  /usr/bin/python3 - "$TMP/$name.json" "$first" "$last" "$kills" <<'PY' || fail "$name: ids"
import json, sys
path, first, last, kills = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
by_id, rows = {}, set()
for line in open(path):
    m = json.loads(line)
    v = m.get("value", m)
    r = v["revision"]
    if v.get("type") == "revision":
        by_id.setdefault(r["id"], set()).add((r["xid"], r["commit_lsn"]))
    elif v.get("type") == "delta":
        rows.add(int(v["changes"][0]["new"]) if v.get("changes") else None)
shared = {i: t for i, t in by_id.items() if len(t) > 1}
if shared:
    print("ids naming more than one transaction:", sorted(shared.items())[:5]); sys.exit(1)
lsn = lambda s: int(s.split("/")[0], 16) << 32 | int(s.split("/")[1], 16)
order = sorted((lsn(next(iter(t))[1]), i) for i, t in by_id.items())
ids = [i for _, i in order]
if ids != sorted(ids) or len(set(ids)) != len(ids):
    print("ids do not grow with commit LSNs"); sys.exit(1)
missing = set(range(first, last + 1)) - rows
if missing:
    print("transactions missing from Kafka:", sorted(missing)[:10]); sys.exit(1)
print("ok - %d transactions, %d revisions, ids unique and increasing after %d SIGKILL cycles" % (last - first + 1, len(by_id), kills))
PY
}

phase kafka pk 1 300
phase kafka_file pkf 301 600 "$TMP/revs.msgpack"
# the file: ids dense from 1 however often the worker was killed
"$WALREV_BIN" tail --file "$TMP/revs.msgpack" --format json >"$TMP/file.json" 2>"$TMP/file.err" || { cat "$TMP/file.err"; fail "tail of the file"; }
expect_eq "the file's revision ids are dense from 1, one per transaction" \
  "$(/usr/bin/python3 -c '
import json, sys
ids = [json.loads(l)["revision"]["id"] for l in open(sys.argv[1]) if json.loads(l).get("type") == "revision"]
print(ids == list(range(1, len(ids) + 1)), len(ids) >= 300)' "$TMP/file.json")" "True True"
