#!/usr/bin/env bash
# Chaos: the worker with all three sinks (history store, Kafka through
# librdkafka's mock cluster, file) under a steady load of source
# transactions, killed with SIGKILL at random points, cycle after cycle, while
# the Kafka brokers go down and come back and the history server (a second
# private cluster this test starts itself) is stopped and started. At the end
# one run drains to the last transaction, and every sink — the history store,
# the file and Kafka — must hold each source transaction exactly once, by
# (xid, commit LSN), under the history's revision id, ids unique, the chain
# verifying, the snapshot equal to the live table. A sink that is behind the
# others after a kill (Kafka acknowledges later than the history store
# commits) gets what it lacks on the next start; one that holds a revision
# already is not given it again (Kafka's position is its last revision
# message, read back at start).
#
#   cycles: WALREV_CHAOS_CYCLES (default 20, a few minutes in CI); the long run:
#     WALREV_CHAOS_CYCLES=100 ctest --output-on-failure -R 'pg\.|test_chaos'
#   seed:   WALREV_CHAOS_SEED (default: the time; printed, so a failure replays)
source "$(dirname "$0")/lib.sh"
CYCLES=${WALREV_CHAOS_CYCLES:-20}
SEED=${WALREV_CHAOS_SEED:-$(date +%s)}
RANDOM=$SEED
echo "# chaos: $CYCLES cycles, seed $SEED"
source_db chaos
H=$TMP/hist-cluster
cleanup() {
  set +e # a failed kill of a process already gone must not skip the rest
  touch "$TMP/stop-load"
  [ -n "${loadpid:-}" ] && { kill "$loadpid" 2>/dev/null; wait "$loadpid" 2>/dev/null; } || true
  [ -n "${wpid:-}" ] && kill -9 "$wpid" 2>/dev/null || true
  [ -n "${mpid:-}" ] && kill "$mpid" 2>/dev/null || true
  [ -n "${KEEP_TEST_TMP:-}" ] && { echo "# history cluster on port ${HPORT:-?} still running"; return; } || true
  bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" stop "$H" >/dev/null 2>&1 || true
}
on_exit cleanup

# The history store's own cluster, stopped and started by pg_ctl on its data directory.
bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" start "$H" >/dev/null || fail "history cluster did not start"
HPORT=$(cat "$H/port")
PGBIN=$(dirname "$(command -v pg_ctl 2>/dev/null || echo /usr/lib/postgresql/15/bin/pg_ctl)")
for v in 15 16 17; do [ -x /usr/lib/postgresql/$v/bin/pg_ctl ] && { PGBIN=/usr/lib/postgresql/$v/bin; break; }; done
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
hist_stop() { as_owner "$PGBIN/pg_ctl" -D "$H/data" -m fast -w -t 60 stop >/dev/null; }
hist_start() { as_owner "$PGBIN/pg_ctl" -D "$H/data" -l "$H/server.log" -w -t 60 start >/dev/null; }
HQ() { psql -X -q -v ON_ERROR_STOP=1 -At -h 127.0.0.1 -p "$HPORT" -U postgres -d hist -c "$1"; }
psql -X -q -h 127.0.0.1 -p "$HPORT" -U postgres -d postgres -c "CREATE DATABASE hist"

start_mock_kafka "$TMP"
mpid=$MOCK_PID

source_conf chaos <<CONF
[history]
conninfo = host=127.0.0.1 port=$HPORT user=postgres dbname=hist
[file]
path = $TMP/changes.mp
[kafka]
bootstrap.servers = $BROKERS
topic_prefix = ch
[worker]
connect_timeout = 2
reply_timeout_ms = 5000
CONF
q $DB "CREATE TABLE t (id bigserial PRIMARY KEY, v int, note text)"
w_setup

# Load: one transaction per psql call (until $TMP/stop-load exists), some
# with a context, some touching several rows.
load() {
  local i=0 sql
  while [ ! -e "$TMP/stop-load" ]; do
    i=$((i + 1))
    case $((i % 4)) in
      0) sql="INSERT INTO t (v, note) VALUES ($i, 'n$i')" ;;
      1) sql="BEGIN; SELECT walrev.context('{\"actor\":{\"type\":\"user\",\"id\":\"u$((i % 5))\"}}');
              INSERT INTO t (v) VALUES ($i); UPDATE t SET v = v + 1 WHERE id = (SELECT max(id) - 1 FROM t); COMMIT;" ;;
      2) sql="INSERT INTO t (v) SELECT g FROM generate_series(1, 3) g" ;;
      3) sql="UPDATE t SET note = 'u$i' WHERE id = (SELECT min(id) FROM t WHERE note IS NULL)" ;;
    esac
    psql -X -q -d $DB -c "$sql" >/dev/null 2>&1 || true
  done
}
# rsleep MIN_MS MAX_MS: a random pause
rsleep() { local ms=$(( $1 + RANDOM % ($2 - $1 + 1) )); sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"; }
load &
loadpid=$!

kafka_down=0
for c in $(seq 1 "$CYCLES"); do
  worker_up -c "$TMP/walrev.conf"
  # A broker outage in some cycles, a history server restart in others.
  if [ $((c % 5)) = 2 ]; then kill -USR1 "$mpid"; kafka_down=1; fi
  rsleep 300 2200
  if [ $((c % 5)) = 4 ]; then hist_stop; sleep 1; hist_start; fi
  if [ "$kafka_down" = 1 ] && [ $((RANDOM % 2)) = 0 ]; then kill -USR2 "$mpid"; kafka_down=0; fi
  rsleep 0 1500
  # It must still be running: every fault here is one to ride out.
  kill -0 "$wpid" 2>/dev/null || { tail -20 "$TMP/run.log"; fail "cycle $c: the worker exited by itself"; }
  worker_kill "$wpid"
  wpid=
done
[ "$kafka_down" = 1 ] && kill -USR2 "$mpid"
touch "$TMP/stop-load"
wait "$loadpid" 2>/dev/null || true
loadpid=
pass "$CYCLES SIGKILL cycles under load ($(grep -c 'brokers down' "$TMP/mock.log") broker outages, $((CYCLES / 5)) history restarts)"

END=$(current_lsn $DB)
timeout 300 "$WALREV_BIN" -c "$TMP/walrev.conf" run --stop-lsn "$END" >/dev/null 2>"$TMP/final.log" \
  || { tail -30 "$TMP/final.log"; fail "the final run did not drain to $END"; }
pass "the final run drained to $END"

# Every source transaction that touched t, as the history records it.
NTX=$(HQ "SELECT count(*) FROM walrev.revision r WHERE EXISTS (SELECT 1 FROM walrev.object_delta d WHERE d.revision_id = r.id)")
[ "$NTX" -gt $((CYCLES * 3)) ] || fail "too little load recorded: $NTX transactions"
expect_eq "history: each transaction once (xid, commit LSN)" \
  "$(HQ "SELECT count(*) = count(DISTINCT (xid, commit_lsn)) FROM walrev.revision")" "t"
expect_eq "history: ids dense" "$(HQ "SELECT max(id) - min(id) + 1 = count(*) FROM walrev.revision")" "t"
expect_eq "history: every row of the source, as it stands" \
  "$(W snapshot --table t 2>&1 | sort | md5sum)" \
  "$(psql -X -q -d $DB -c "COPY t TO STDOUT" | sort | md5sum)"
must "$TMP/verify.out" "verify" W verify
pass "history: $(cat "$TMP/verify.out")"
HQ "SELECT id || ' ' || xid || ' ' || commit_lsn FROM walrev.revision ORDER BY id" >"$TMP/hist.txt"
# Every attribute change the history holds, to compare the streams' deltas with, value by value.
HQ "SELECT row_to_json(a) FROM (SELECT revision_id, seq, op, key, col_id, old_value, new_value
    FROM walrev.attribute_delta) a" >"$TMP/hist_attrs.json"

# The same, read back from a stream of messages: (xid, commit LSN) -> ids.
check_stream() { # NAME FILE
  PYTHONPATH="$(dirname "$0")" /usr/bin/python3 - "$2" "$TMP/hist.txt" strict "$1" "$TMP/hist_attrs.json" <<'PY'
import json, sys
from stream_revisions import read_history, read_messages
hist = read_history(sys.argv[2])
attrs = {}
for line in open(sys.argv[5]):
    a = json.loads(line)
    attrs.setdefault((a["revision_id"], a["seq"]), {})[a["col_id"]] = (a["old_value"], a["new_value"])
by_tx, count, deltas, want, differ = {}, {}, {}, {}, []
ops = {"insert": "I", "update": "U", "delete": "D", "truncate": "T", "snapshot": "S"}
for v in read_messages(sys.argv[1]):
    if v.get("type") == "delta":
        d = deltas.setdefault(v["revision"]["id"], {})
        d[v["id"]] = d.get(v["id"], 0) + 1
        # the same change as the history's, old and new value of every column
        got = {c["col_id"]: (c.get("old"), c.get("new")) for c in v["changes"]}
        h = attrs.get((v["revision"]["id"], v["seq"]), {})
        if v["op"] == "insert":
            h = {k: (None, n) for k, (o, n) in h.items()}
        elif v["op"] == "delete":
            h = {k: (o, None) for k, (o, n) in h.items()}
        if got != h:
            differ.append("%s: %s, history %s" % (v["id"], got, h))
    if v.get("type") != "revision":
        continue
    r = v["revision"]
    want[r["id"]] = sum(t["count"] for t in v["tables"])
    k = (r["xid"], r["commit_lsn"])
    by_tx.setdefault(k, set()).add(r["id"])
    count[k] = count.get(k, 0) + 1
problems = []
if set(by_tx) != set(hist):
    problems.append("transactions differ: %d missing, %d extra" % (len(set(hist) - set(by_tx)), len(set(by_tx) - set(hist))))
problems += ["%s under ids %s" % (k, sorted(s)) for k, s in by_tx.items() if len(s) != 1][:5]
problems += ["%s id %s, history %s" % (k, s, hist.get(k)) for k, s in by_tx.items() if k in hist and s != {hist[k]}][:5]
ids = [i for s in by_tx.values() for i in s]
if len(ids) != len(set(ids)):
    problems.append("an id names two transactions")
problems += ["%s written %d times" % (k, n) for k, n in count.items() if n != 1][:5]
# every delta of every revision, by its id; none of a revision not there
problems += ["revision %d: %d of %d deltas" % (i, len(deltas.get(i, {})), n) for i, n in want.items()
             if len(deltas.get(i, {})) != n][:5]
if set(deltas) - set(want):
    problems.append("deltas of %d revisions that are not there" % len(set(deltas) - set(want)))
repeats = sum(n - 1 for d in deltas.values() for n in d.values())
problems += ["delta %s" % x for x in differ][:5]
if sys.argv[4] == "file" and repeats:
    problems.append("%d delta messages repeated" % repeats)
print("# %s holds %d of %d transactions, %d revision messages, %d deltas, %d delta messages repeated" %
      (sys.argv[4], len(by_tx), len(hist), sum(count.values()), sum(len(d) for d in deltas.values()), repeats),
      file=sys.stderr)
print("ok %d" % len(by_tx) if not problems else "; ".join(problems))
PY
}
W tail --file "$TMP/changes.mp" --format json >"$TMP/file.json" 2>"$TMP/tailf.err" || { cat "$TMP/tailf.err"; fail "tail --file"; }
expect_eq "file sink: each transaction exactly once, under the history's id" \
  "$(check_stream file "$TMP/file.json")" "ok $(wc -l <"$TMP/hist.txt")"
W tail --brokers "$BROKERS" --prefix ch --from-beginning --format json --timeout-ms 5000 \
  >"$TMP/kafka.json" 2>"$TMP/tailk.err" || true
expect_eq "Kafka: each transaction exactly once, under the history's id" \
  "$(check_stream kafka "$TMP/kafka.json")" "ok $(wc -l <"$TMP/hist.txt")"
