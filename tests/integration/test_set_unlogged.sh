#!/usr/bin/env bash
# ALTER TABLE ... SET UNLOGGED of a tracked table (found by
# tests/difftest/external.py on PostgreSQL's identity.sql): logical decoding
# sees none of its changes from then on, but snapshots kept answering with
# the rows it had, silently wrong. The table log now records the SET
# UNLOGGED ('unlogged'), and a snapshot at or after it names the table
# unlogged (an error), until SET LOGGED starts its history again with a
# baseline: exact from there on.
source "$(dirname "$0")/lib.sh"
source_db set_unlogged setunlogged

q $DB "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b');
       CREATE TABLE other (id int PRIMARY KEY); INSERT INTO other VALUES (1);
       CREATE TABLE u (id int PRIMARY KEY, v text); INSERT INTO u VALUES (1, 'u1')"
w_setup
q_at A "UPDATE t SET v = 'a2' WHERE id = 1"
q $DB "ALTER TABLE t SET UNLOGGED; ALTER TABLE u SET UNLOGGED"
q_at B "UPDATE t SET v = 'lost' WHERE id = 2; INSERT INTO t VALUES (3, 'unseen'); INSERT INTO other VALUES (2);
        UPDATE u SET v = 'u2' WHERE id = 1"
q_at C "ALTER TABLE t SET LOGGED"
q_at D "DELETE FROM t WHERE id = 3; INSERT INTO t VALUES (4, 'd')"
run_to "$D" "$LOG" --source "$SRC" --slot setunlogged

expect_eq "before SET UNLOGGED: the rows it had" "$(W snapshot --at "$A" --table t 2>/dev/null | sort)" \
  "$(printf '1\ta2\n2\tb')"
rc=0
W snapshot --at "$B" --table t >"$TMP/b.out" 2>"$TMP/b.err" || rc=$?
expect_eq "while unlogged: an error, no rows" "$rc:$(wc -c <"$TMP/b.out")" "1:0"
grep -q 'table t is unlogged at revision [0-9]*: it was made UNLOGGED in revision [0-9]*' "$TMP/b.err" \
  || { cat "$TMP/b.err"; fail "the error names the table unlogged"; }
pass "the error names the table unlogged and the revision that made it so"
expect_eq "another table at the same point is unaffected" "$(W snapshot --at "$B" --table other 2>/dev/null | sort)" \
  "$(printf '1\n2')"
expect_eq "after SET LOGGED: its rows then (the baseline)" "$(W snapshot --at "$C" --table t 2>/dev/null | sort)" \
  "$(printf '1\ta2\n2\tlost\n3\tunseen')"
expect_eq "and its changes after" "$(W snapshot --at "$D" --table t 2>/dev/null | sort)" \
  "$(printf '1\ta2\n2\tlost\n4\td')"
W verify >/dev/null 2>&1 || fail verify
pass "verify passes"

# diff of every table from a point while t was logged to one while it was
# unlogged: t's rows there are unknown, and the diff said nothing of the
# changes it could not see (only 'other' and t's change before); it now
# names t, as diff --table t does
out=$(W diff "$A" "$B" 2>&1) && fail "a diff of every table into t's unlogged time answered: $out"
grep -q 'table public.t is unlogged at revision [0-9]*: it was made UNLOGGED in revision' <<<"$out" ||
  fail "the diff of every table names t: $out"
expect_eq "a diff of every table with t unlogged at neither point answers" \
  "$(W diff "$C" "$D" --format csv 2>/dev/null | tail -n +2 | cut -d, -f1,3 | LC_ALL=C sort | uniq -c | sed 's/^ *//')" \
  "2 public.t,added
2 public.t,removed"
pass "diff of every table names an unlogged table at either point"

# blame answers a row's values, which an unlogged table's history no longer
# knows: at a point while t was unlogged, and for u (unlogged still) at the
# newest, it names the table unlogged instead of the values before
rc=0
out=$(W blame --table t --key 2 --at "$B" 2>&1) || rc=$?
expect_eq "blame of t at a point while it was unlogged: an error" "$rc" 1
grep -q 'table t is unlogged at revision [0-9]*: it was made UNLOGGED in revision' <<<"$out" ||
  fail "blame names t unlogged: $out"
rc=0
out=$(W blame --table u --key 1 2>&1) || rc=$?
expect_eq "blame of u, unlogged since, at the newest: an error" "$rc" 1
grep -q 'table u is unlogged at revision [0-9]*: it was made UNLOGGED in revision' <<<"$out" ||
  fail "blame names u unlogged: $out"
expect_eq "blame of t at D (logged again): its baseline value" \
  "$(W blame --table t --key 2 --format csv 2>/dev/null | cut -d, -f1,2 | tail -n +2)" "id,2
v,lost"
pass "blame names a table unlogged at its point"
