#!/usr/bin/env bash
# A publication WITH (publish_via_partition_root = true) (issue 13): the
# changes of a partition then arrive under its partitioned root's relid,
# which walrev does not take apart. Before, setup accepted such a
# publication ("ok 4 table(s) published"), and every snapshot of the
# partitioned table and its partitions answered no rows, exit 0, where the
# tables held rows. Now setup refuses it by name with the remedy; switched on
# while walrev runs, the option takes the partitioned tables and their
# partitions out of what walrev tracks (the table log records them
# 'unpublished' in the ALTER PUBLICATION's transaction) and every reader
# refuses them by name at those points; switched off again, they rejoin
# with their rows, and their history is exact again from there.
# The stream agrees (the file sink and Kafka): while the option is on, the
# changes pgoutput sends under the root are recorded by no sink, and each
# revision that had some says so in its warnings, counting them and naming
# the root. Before, they went to Kafka and the file under the root's name
# (a topic wr.public.r, which the docs say a partitioned table never has)
# while the history refused the same tables as unpublished.
source "$(dirname "$0")/lib.sh"
source_db pubviaroot pubviaroot
start_mock_kafka "$TMP"
mpid=$MOCK_PID
kill_at_exit TERM mpid
source_conf pubviaroot <<EOF
publication = userpub
[file]
path = $TMP/stream.msgpack
[kafka]
bootstrap.servers = $BROKERS
topic_prefix = wr
EOF

q $DB "CREATE TABLE base (id int PRIMARY KEY, v text); INSERT INTO base VALUES (1, 'b1');
       CREATE TABLE r (id int PRIMARY KEY, v text) PARTITION BY LIST (id);
       CREATE TABLE r1 PARTITION OF r FOR VALUES IN (1, 2, 3);
       CREATE TABLE r2 PARTITION OF r FOR VALUES IN (4, 5, 6);
       INSERT INTO r VALUES (1, 'r1'), (4, 'r4');
       CREATE PUBLICATION userpub FOR TABLE base, r WITH (publish_via_partition_root = true)"
rc=0
W setup >"$TMP/setup.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || { cat "$TMP/setup.out"; fail "setup accepted a publication WITH (publish_via_partition_root = true)"; }
grep -q "error: publication userpub is WITH (publish_via_partition_root = true)" "$TMP/setup.out" ||
  { cat "$TMP/setup.out"; fail "setup's refusal names the publication and the option"; }
grep -q "fix: ALTER PUBLICATION userpub SET (publish_via_partition_root = false)" "$TMP/setup.out" ||
  { cat "$TMP/setup.out"; fail "setup's refusal gives the remedy"; }
expect_eq "setup made no slot" "$(q $DB "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$SLOT'")" 0
expect_eq "setup left the publication as the user made it" \
  "$(q $DB "SELECT pubviaroot FROM pg_publication WHERE pubname = 'userpub'")" t
pass "setup refuses publish_via_partition_root by name, with the remedy"

q $DB "ALTER PUBLICATION userpub SET (publish_via_partition_root = false)"
W setup >"$TMP/setup.out" 2>&1 || { cat "$TMP/setup.out"; fail "setup after the remedy"; }
expect_eq "without the option or a filter, published_now asks no table whether it is published via its root or in part" \
  "$(published_now_asks)" "base r r1 r2|false|false"
NP=0
LSN=()
TABLES="base r r1 r2"
q $DB "UPDATE r SET v = 'r1b' WHERE id = 1; UPDATE base SET v = 'b2'"
point # 0
q $DB "ALTER PUBLICATION userpub SET (publish_via_partition_root = true)"
point # 1: r, r1, r2 arrive under r from here
expect_eq "with the option, published_now asks each table whether it is published via its root (not in part)" \
  "$(published_now_asks)" "base|true|false"
q $DB "UPDATE r SET v = 'r1c' WHERE id = 1; INSERT INTO r VALUES (2, 'two'), (5, 'five'); DELETE FROM r WHERE id = 4;
       UPDATE base SET v = 'b3'"
point # 2
run_to "${LSN[2]}" "$LOG" -c "$TEST_TMP/walrev.conf"
# restarted while the option is on: it says so at start, and names a
# partition created then as published through its root (not as outside the
# publication: it is in it, through r)
q $DB "UPDATE r1 SET v = 'r2x' WHERE id = 2; UPDATE r SET v = 'r5x' WHERE id = 5; INSERT INTO base VALUES (2, 'b');
       CREATE TABLE r3 PARTITION OF r FOR VALUES IN (7, 8); INSERT INTO r VALUES (7, 'seven')"
TABLES="base r r1 r2 r3"
point # 3
run_to "${LSN[3]}" "$LOG" -c "$TEST_TMP/walrev.conf"
grep -q 'level=warn msg="partitioned tables and their partitions are not tracked: publication userpub is WITH (publish_via_partition_root = true).*ALTER PUBLICATION userpub SET (publish_via_partition_root = false)' "$LOG" ||
  { tail -20 "$LOG"; fail "the worker warns at start that the publication publishes through partition roots"; }
grep -q 'level=warn msg="partition public.r3 is not tracked: publication userpub is WITH (publish_via_partition_root = true)' "$LOG" ||
  { tail -20 "$LOG"; fail "the worker names the new partition as published through its root"; }
grep -q 'r3 is not in publication' "$LOG" && fail "the worker said r3 is not in the publication: it is, through r"
pass "the worker names the option at start and the partition created under it"
q $DB "ALTER PUBLICATION userpub SET (publish_via_partition_root = false)"
point # 4: back, with their rows
q $DB "UPDATE r SET v = 'r1d' WHERE id = 1; DELETE FROM r WHERE id = 5; INSERT INTO r VALUES (6, 'six'), (8, 'eight')"
point # 5
run_to "${LSN[5]}" "$LOG" -c "$TEST_TMP/walrev.conf"

for ((i = 0; i < NP; i++)); do
  for tb in r r1 r2 r3; do
    [ -f "$TEST_TMP/$i.$tb" ] || continue
    case "$tb:$i" in
      r3:[34] | r:4) # r3 created under the option: it (and r) refused until its baseline once it is back
        expect_snapshot_refused "$tb" "${LSN[$i]}" "at point $i (r3 created while published through its root)" \
          "table $tb is incomplete at revision [0-9]*: it joined the publication after setup and its baseline.* completed in revision [0-9]*" \
          "the refusal of $tb at point $i names it incomplete"
        rm "$TEST_TMP/$i.$tb" ;;
      *:[123])
        expect_unpublished "$tb" "$i" ;;
    esac
  done
done
expect_points_equal 15
pass "every point published through the root refused by name, the others the live tables byte for byte"

expect_refused "blame of r1 through its root" "table r1 is not published at revision" \
  blame --table r1 --key 1 --at "${LSN[2]}"
expect_refused "diff of r through its root" \
  "table public\.r[12] is a partition of public\.r and is not published at revision" \
  diff "${LSN[0]}" "${LSN[2]}" --table r
expect_refused "restore of r2 through its root" "table r2 is not published at revision" \
  restore --table r2 --key 4 --at "${LSN[3]}"
expect_refused "snapshot --into of r1 through its root" "table r1 is not published at revision" \
  snapshot --table r1 --at "${LSN[3]}" --into asof
pass "blame, diff, restore and --into refuse a partition published through its root by name"
expect_verify "verify passes"

# The stream: the file's and Kafka's messages, as JSON lines.
W tail --file "$TMP/stream.msgpack" --format json >"$TMP/file.json" 2>"$TMP/tail.err" ||
  { cat "$TMP/tail.err"; fail "tail of the file sink"; }
grep -v '"type":"relation"' "$TMP/file.json" | LC_ALL=C sort >"$TMP/file.sorted"
n=$(wc -l <"$TMP/file.sorted")
W tail --brokers "$BROKERS" --prefix wr --from-beginning --format json --max-messages "$n" --timeout-ms 20000 \
  >"$TMP/kafka.json" 2>"$TMP/tail.err" || { cat "$TMP/tail.err"; fail "tail of Kafka"; }
LC_ALL=C sort "$TMP/kafka.json" | cmp -s - "$TMP/file.sorted" ||
  { LC_ALL=C sort "$TMP/kafka.json" | diff - "$TMP/file.sorted" | head -20; fail "Kafka carries what the file does"; }
python3 - "$TMP/file.json" >"$TMP/stream.check" <<'PY'
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1])]
print("root deltas", sum(1 for m in msgs if m["type"] == "delta" and m["table"]["name"] == "r"))
print("root relations", sum(1 for m in msgs if m["type"] == "relation" and m["table"]["name"] == "r"))
for m in msgs:
    if m["type"] == "revision" and m["warnings"] and "partitioned" in m["warnings"]:
        print("warning", m["warnings"].split(":")[0])
PY
expect_eq "the stream while the option was on" "$(cat "$TMP/stream.check")" "root deltas 0
root relations 0
warning 4 changes under partitioned table(s) public.r not recorded
warning 3 changes under partitioned table(s) public.r not recorded"
grep -q '"warnings":"4 changes under partitioned table(s) public.r not recorded: the publication is WITH (publish_via_partition_root = true), which sends partitions.* changes under their root; their partitions are unpublished (table log) until it is false again"' \
  "$TMP/file.json" || fail "the warning says why and until when"
pass "no sink records the changes under the root; each revision that had some says how many and names the root"
pass done
