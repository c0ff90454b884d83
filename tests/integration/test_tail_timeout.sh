#!/usr/bin/env bash
# `walrev tail --timeout-ms` counts once reading has started (partitions
# assigned, each read to a message or its end), not from start (issue 17.10):
# the group join alone takes ~3 s (the mock's initial rebalance delay), yet
# `--timeout-ms 300 --from-beginning` prints every message; with the brokers
# down while tail starts, a 500 ms timeout must not end tail before it has
# joined; once the brokers are back it reads every message and then stops
# after 500 ms of quiet. With the brokers down throughout, it gives up after
# 30 s with exit 1 and says why.
source "$(dirname "$0")/lib.sh"
source_db tail_timeout
on_exit '[ -n "${mpid:-}" ] && kill "$mpid" 2>/dev/null'
kafka_conf tail_timeout tt
q $DB "CREATE TABLE item (id int PRIMARY KEY, name text)"
w_setup --no-baseline
q $DB "INSERT INTO item VALUES (1, 'a')"
q $DB "INSERT INTO item VALUES (2, 'b')"
q $DB "UPDATE item SET name = 'c' WHERE id = 1"
run_to_now "$TMP/run.log" -c "$TMP/walrev.conf"
NMSG=$(( $(q $DB "SELECT count(*) FROM walrev.revision") + $(q $DB "SELECT count(*) FROM walrev.object_delta") ))
[ "$NMSG" -ge 6 ] || fail "expected at least 6 messages in Kafka, have $NMSG"

# Brokers up: the group join takes longer than the timeout; every message is still read.
W tail --brokers "$BROKERS" --prefix tt --from-beginning --timeout-ms 300 >"$TMP/tail0.json" 2>"$TMP/tail0.err" \
  || { cat "$TMP/tail0.err"; fail "tail --timeout-ms 300"; }
expect_eq "--timeout-ms 300: every message read although the join took longer" "$(wc -l <"$TMP/tail0.json")" "$NMSG"

# Brokers down: tail cannot join its group; its 500 ms must not run yet.
kill -USR1 "$mpid"
t0=$(date +%s%N)
W tail --brokers "$BROKERS" --prefix tt --from-beginning --timeout-ms 500 >"$TMP/tail1.json" 2>"$TMP/tail1.err" &
tpid=$!
sleep 3
kill -0 "$tpid" 2>/dev/null || { cat "$TMP/tail1.err"; fail "tail ended while it had no partitions (--timeout-ms counted from start)"; }
pass "tail still waits for its partitions after 3 s with --timeout-ms 500"
kill -USR2 "$mpid"
rc=0; wait "$tpid" || rc=$?
t1=$(date +%s%N)
[ "$rc" = 0 ] || { cat "$TMP/tail1.err"; fail "tail exited $rc"; }
expect_eq "every message read once the brokers were back" "$(wc -l <"$TMP/tail1.json")" "$NMSG"
expect_eq "revisions among them" "$(grep -c '"type":"revision"' "$TMP/tail1.json")" \
  "$(q $DB "SELECT count(*) FROM walrev.revision")"
pass "tail read $NMSG messages and stopped $(( (t1 - t0) / 1000000 )) ms after start"

# Brokers up, nothing new: tail stops after its quiet time, counted from assignment.
t0=$(date +%s%N)
W tail --brokers "$BROKERS" --prefix tt --timeout-ms 1000 >"$TMP/tail2.json" 2>"$TMP/tail2.err" \
  || { cat "$TMP/tail2.err"; fail "tail with nothing new"; }
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "nothing new printed" "$(wc -c <"$TMP/tail2.json")" "0"
[ "$ms" -ge 1000 ] && [ "$ms" -lt 25000 ] || fail "tail with nothing new took $ms ms (want 1000..25000)"
pass "tail with nothing new stopped after $ms ms (>= its 1000 ms timeout)"

# Brokers down throughout: no assignment within 30 s is an error, not a quiet stream.
kill -USR1 "$mpid"
t0=$(date +%s)
rc=0; W tail --brokers "$BROKERS" --prefix tt --timeout-ms 200 >"$TMP/tail3.json" 2>"$TMP/tail3.err" || rc=$?
s=$(( $(date +%s) - t0 ))
expect_eq "tail without partitions exits 1" "$rc" "1"
grep -q 'nothing assigned or read after 30 s' "$TMP/tail3.err" || { cat "$TMP/tail3.err"; fail "no reason given"; }
[ "$s" -ge 29 ] && [ "$s" -le 45 ] || fail "tail without partitions gave up after $s s (want ~30)"
pass "tail without partitions gives up after $s s, exit 1, with a reason"
kill -USR2 "$mpid"
echo "all tail timeout tests passed"
