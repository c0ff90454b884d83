#!/usr/bin/env bash
# An UNLOGGED partition of a partitioned table (issue 13.7 with 13.4):
# logical decoding sees none of its rows, and the parent's snapshot used to
# leave them out silently. Now every replay command on the parent (at any
# level) fails naming the partition, schema-qualified, while it is attached
# and unlogged: snapshot and diff at such a point, blame at it, history and
# log over a range that holds one; after ALTER TABLE ... SET LOGGED (its rows
# come as a baseline) or DETACH the parent answers again, byte for byte.
# setup and run name the partition as they name any unlogged table.
source "$(dirname "$0")/lib.sh"
source_db unlogged_partition unlogpart

q $DB "CREATE TABLE p (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
       CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (100);
       CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (100) TO (300) PARTITION BY RANGE (id);
       CREATE TABLE p2a PARTITION OF p2 FOR VALUES FROM (100) TO (200);
       CREATE UNLOGGED TABLE pu PARTITION OF p2 FOR VALUES FROM (200) TO (300);
       INSERT INTO p VALUES (1, 'one'), (2, 'two'), (101, 'a101'), (201, 'u201'), (202, 'u202')"
w_setup
grep -qF "table public.pu is UNLOGGED: logical decoding cannot capture it, so walrev cannot track it (ALTER TABLE public.pu SET LOGGED starts its history with a baseline)" "$TMP/setup.out" ||
  { cat "$TMP/setup.out"; fail "setup names the unlogged partition"; }
pass "setup names the unlogged partition"

NP=0
LSN=()
TABLES="p p2 p1"
q $DB "UPDATE p SET v = 'one!' WHERE id = 1; UPDATE p SET v = 'u201!' WHERE id = 201"
E0=$(current_lsn $DB)                                                  # pu attached, unlogged
run_to "$E0" "$LOG" --source "$SRC" --slot unlogpart                   # a start that finds pu unlogged
q $DB "ALTER TABLE pu SET LOGGED"; point                               # 0: its rows as a baseline
q $DB "CREATE UNLOGGED TABLE lu (id int PRIMARY KEY, v text); INSERT INTO lu VALUES (301, 'l301');
       UPDATE p SET v = 'two!' WHERE id = 2"; point                    # 1: lu not attached: no matter
q $DB "ALTER TABLE p ATTACH PARTITION lu FOR VALUES FROM (300) TO (400);
       INSERT INTO p VALUES (302, 'l302'), (3, 'three')"
E2=$(current_lsn $DB)                                                  # lu attached, unlogged
q $DB "ALTER TABLE p DETACH PARTITION lu; DELETE FROM p WHERE id = 3"; point   # 2: lu gone again
q $DB "ALTER TABLE p1 SET UNLOGGED; UPDATE p SET v = 'lost' WHERE id = 1"
E4=$(current_lsn $DB)                                                  # a logged partition made unlogged
q $DB "ALTER TABLE p1 SET LOGGED"
E5=$(current_lsn $DB)                                                  # p1 logged again: its baseline
q $DB "UPDATE p SET v = 'a101!' WHERE id = 101"; point                 # 3
run_to_now "$LOG" --source "$SRC" --slot unlogpart
grep -qF 'table public.pu is unlogged: logical decoding cannot see its changes, so walrev cannot track it (ALTER TABLE public.pu SET LOGGED starts its history with a baseline)' "$LOG" ||
  { cat "$LOG"; fail "run names the unlogged partition at start"; }
grep -qF 'table public.lu is unlogged' "$LOG" || { cat "$LOG"; fail "run names the unlogged table attached later"; }
pass "run names the unlogged partitions"

snapshot_points
expect_eq "table-points equal after SET LOGGED and DETACH, byte for byte" "$EQUAL" 12
expect_eq "the parent after SET LOGGED: pu's rows from its baseline" \
  "$(W snapshot --at "${LSN[0]}" --table p --format csv --order key 2>/dev/null)" \
"id,v
1,one!
2,two
101,a101
201,u201!
202,u202"
expect_eq "after the partition made unlogged is logged again: its rows then" \
  "$(W snapshot --at "${LSN[3]}" --table p --format csv --order key 2>/dev/null)" \
"id,v
1,lost
2,two!
101,a101!
201,u201!
202,u202"

rev_at() { W snapshot --at "$1" --table p2a 2>&1 >/dev/null | sed -n 's/^resolved .* to revision \([0-9]*\) .*/\1/p'; }
R0=$(rev_at "$E0")
R2=$(rev_at "$E2")
R4=$(rev_at "$E4")
PU="table public.pu is a partition of public.p2 and is unlogged at revision"
LU="table public.lu is a partition of public.p and is unlogged at revision"
P1="table public.p1 is a partition of public.p and is unlogged at revision"
# expect_refused WHAT NAMED ARG...: W ARG... fails (exit 1), prints nothing, and its error names NAMED
expect_refused() {
  local what=$1 named=$2 rc=0
  shift 2
  W "$@" >"$TMP/r.out" 2>"$TMP/r.err" || rc=$?
  expect_eq "$what: refused, nothing printed" "$rc:$(wc -c <"$TMP/r.out")" "1:0"
  grep -qF "$named" "$TMP/r.err" || { cat "$TMP/r.err"; fail "$what: the error names the partition"; }
}
expect_refused "snapshot of p, pu unlogged two levels down" "$PU $R0: logical decoding cannot see its rows, so walrev cannot know the rows of public.p" \
  snapshot --at "$E0" --table p
expect_refused "snapshot of the sub-partitioned p2" "$PU $R0: logical decoding cannot see its rows, so walrev cannot know the rows of public.p2" \
  snapshot --at "$E0" --table p2
expect_refused "snapshot of p with lu attached" "$LU $R2: logical decoding cannot see its rows, so walrev cannot know the rows of public.p (SELECT * FROM it includes them; ALTER TABLE public.lu SET LOGGED starts its history with a baseline, DETACH PARTITION leaves it out)" \
  snapshot --at "$E2" --table p
expect_refused "snapshot of p with p1 made unlogged" "$P1 $R4" snapshot --at "$E4" --table p
expect_refused "--format json too" "$LU $R2" snapshot --at "$E2" --table p --format json
expect_eq "p2 is not below lu's parent: it answers" "$(W snapshot --at "$E2" --table p2 2>/dev/null | LC_ALL=C sort)" \
  "$(printf '101\ta101\n201\tu201!\n202\tu202')"
expect_refused "diff from a point with pu unlogged" "$PU $R0" diff "$E0" "${LSN[0]}" --table p
expect_refused "diff to a point with lu attached" "$LU $R2" diff "${LSN[1]}" "$E2" --table p
expect_eq "diff between points without one: exact" \
  "$(W diff "${LSN[1]}" "${LSN[2]}" --table p --format csv 2>/dev/null)" "table,key,change,column,old_value,new_value"
expect_eq "diff across SET LOGGED of p1" \
  "$(W diff "${LSN[2]}" "${LSN[3]}" --table p --format csv 2>/dev/null)" \
'table,key,change,column,old_value,new_value
public.p,"[""1""]",changed,v,one!,lost
public.p,"[""101""]",changed,v,a101,a101!'
expect_refused "blame at a point with lu attached" "$LU $R2" blame --table p --key 1 --at "$E2"
expect_eq "blame at a point without one" \
  "$(W blame --table p --key 2 --at "${LSN[2]}" --format csv 2>/dev/null | cut -d, -f1,2)" "column,value
id,2
v,two!"
expect_refused "history over all of time (pu unlogged from the baseline, revision 1)" "$PU 1:" history --table p --key 2
expect_refused "history up to lu's attachment" "$LU $R2" history --table p --key 2 --since "${LSN[1]}" --until "$E2"
expect_refused "log of p over all of time" "$PU 1:" log --table p
expect_eq "history since the last SET LOGGED" \
  "$(W history --table p --key 101 --since "$E5" --format csv 2>/dev/null | cut -d, -f3,7-9)" "op,column,old_value,new_value
U,v,a101,a101!"
expect_eq "log since the last SET LOGGED: the update" \
  "$(W log --table p --since "$E5" --format csv 2>/dev/null | tail -n +2 | cut -d, -f1)" "$(rev_at "${LSN[3]}")"
expect_refused "history from the SET UNLOGGED of p1" "$P1 $R4" history --table p --key 101 --since "$E4"

# the partitions themselves say unlogged at those points
out=$(W snapshot --at "$E2" --table lu 2>&1) && fail "a snapshot of lu succeeded: $out"
echo "$out" | grep -q 'table public.lu is unlogged' || fail "lu itself: $out"
pass "the unlogged partition itself says unlogged"

expect_eq "the table log follows lu's ATTACH and DETACH while unlogged" \
  "$(q $DB "SELECT event, coalesce(parent::regclass::text, '-') FROM walrev.table_log WHERE relname = 'lu' ORDER BY id")" \
"unlogged|-
unlogged|p
unlogged|-"
W verify >/dev/null 2>&1 || fail verify
pass "verify passes"
