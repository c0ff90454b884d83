#!/usr/bin/env bash
# Hidden columns and suppressed changes across restarts and a cold row cache
# (issue 13 items 10 and 11). A hidden column's change is recorded exactly
# when its value changed: the store keeps a keyed digest of it (never the
# value), so an UPDATE of another column or of an untracked one after a
# restart records no phantom "secret changed", and rewriting the same secret
# records nothing. After a change under a suppressing context the next
# recorded old values are flagged unknown (never the values from before it),
# also after a restart, and exact again from the change after; a table
# without a key keeps each row's identity through a suppressed change.
source "$(dirname "$0")/lib.sh"
source_db hidsup_src
WPID=
kill_at_exit 9 WPID
SECRET='pw-Secret-4471'
source_conf hidsup <<CONF
[worker]
row_cache_mb = 1
[history]
batch_max_ms = 5
[tracking]
hidden = public.u.secret
untracked = public.u.seen
allow_suppress = true
CONF
start_worker() { WORKER_OUT="$TMP/run.log" worker_start "$TMP/run.log" -c "$TMP/walrev.conf"; WPID=$WORKER_PID; }
caught_up() { marker_caught_up "$WPID" "$TMP/run.log"; }
restart() { # restart TERM|KILL: stop after catching up; the next worker starts with a cold row cache
  caught_up
  kill -"$1" "$WPID"
  local rc=0; wait "$WPID" || rc=$?
  [ "$1" = KILL ] || [ $rc = 0 ] || { tail -20 "$TMP/run.log"; fail "exit status $rc after SIGTERM"; }
  start_worker
}
suppressed() { q $DB "BEGIN; SELECT walrev.context('{\"actor\":{\"type\":\"job\",\"id\":\"rebuild\"},\"suppress\":true}'); $1; COMMIT;" >/dev/null; }
# attribute deltas of a table after revision $2: key column old new flags
attrs() {
  q $DB "SELECT key, column_name, coalesce(old_value, '-'), coalesce(new_value, '-'), flags FROM walrev.attribute_delta
         WHERE relid = '$1'::regclass AND revision_id > $2 ORDER BY revision_id, seq, col_id"
}
last_rev() { q $DB "SELECT max(id) FROM walrev.revision"; }

q $DB "CREATE TABLE u (id int PRIMARY KEY, name text, secret text, seen int);
       CREATE TABLE s (id int PRIMARY KEY, approved_at text, note text);
       CREATE TABLE kl (a int, b text); ALTER TABLE kl REPLICA IDENTITY FULL;
       CREATE TABLE marker (id int PRIMARY KEY);
       INSERT INTO u SELECT g, 'n' || g, '$SECRET-' || g, 0 FROM generate_series(1, 3000) g;
       INSERT INTO s VALUES (1, 't0', 'n'), (2, 'x0', 'n');
       INSERT INTO kl VALUES (1, 'x'), (1, 'x');"
w_setup
start_worker

# ---- hidden columns (item 11)
caught_up; r0=$(last_rev)
q $DB "UPDATE u SET seen = 1 WHERE id = 1"                      # untracked only
restart TERM
q $DB "UPDATE u SET name = 'a2' WHERE id = 1"                   # another column, cold cache
q $DB "UPDATE u SET secret = '$SECRET-1' WHERE id = 1"          # the same secret again
q $DB "UPDATE u SET seen = 2, name = 'b2' WHERE id = 2"         # untracked and another column
q $DB "UPDATE u SET name = name || '+' WHERE id BETWEEN 10 AND 2999"  # more rows than the 1 MiB cache holds
restart KILL
q $DB "UPDATE u SET name = 'a3' WHERE id = 1"                   # after SIGKILL: no phantom either
q $DB "UPDATE u SET secret = '$SECRET-new' WHERE id = 1"        # a real change
q $DB "UPDATE u SET secret = '$SECRET-new', name = 'a4' WHERE id = 1"
q $DB "UPDATE u SET name = 'c3', secret = '$SECRET-3' WHERE id = 3"  # secret unchanged, name changed
caught_up
expect_eq "hidden column: recorded exactly when it changed" \
  "$(attrs u "$r0" | grep -v '|name|n[0-9]*|n[0-9]*+|0$')" \
'["1"]|name|n1|a2|0
["2"]|name|n2|b2|0
["1"]|name|a2|a3|0
["1"]|secret|-|-|1
["1"]|name|a3|a4|0
["3"]|name|n3|c3|0'
expect_eq "the range update recorded one name change per row and nothing else" \
  "$(attrs u "$r0" | grep -c '|name|n[0-9]*|n[0-9]*+|0$')" 2990
expect_eq "no hidden value in the history" \
  "$(q $DB "SELECT count(*) FROM walrev.object_delta WHERE concat(new_values::text, old_values::text, new_value, old_value, key) LIKE '%$SECRET%'")" 0
expect_eq "hidden digests kept for every row" \
  "$(q $DB "SELECT count(*) FROM walrev.row_digest WHERE relid = 'u'::regclass AND col_id = 3")" 3000
expect_eq "no stored digest equals the plain SHA-256 of its value" \
  "$(q $DB "SELECT count(*) FROM walrev.row_digest d JOIN u ON d.key = '[\"' || u.id || '\"]' WHERE d.relid = 'u'::regclass AND d.digest = sha256(convert_to(u.secret, 'UTF8'))")" 0
if q $DB "SET ROLE walrev_reader; SELECT count(*) FROM walrev.digest_key" >/dev/null 2>"$TMP/err"; then
  fail "walrev_reader can read the digest key"
fi
grep -q "permission denied" "$TMP/err" || { cat "$TMP/err"; fail "reading the digest key: unexpected error"; }
pass "walrev_reader cannot read the digest key"

# ---- suppressed changes (item 10)
r1=$(last_rev)
suppressed "UPDATE s SET approved_at = 't1' WHERE id = 1"
q $DB "UPDATE s SET approved_at = 't2' WHERE id = 1"           # old value: unknown, never t0
q $DB "UPDATE s SET approved_at = 't3' WHERE id = 1"           # known again: t2
suppressed "UPDATE s SET approved_at = 't4' WHERE id = 1"
suppressed "UPDATE s SET note = 'm' WHERE id = 2"
restart TERM
q $DB "UPDATE s SET approved_at = 't5' WHERE id = 1"           # after a restart: still unknown
q $DB "UPDATE s SET approved_at = 't6' WHERE id = 1"
q $DB "UPDATE s SET approved_at = 'x1' WHERE id = 2"           # note and approved_at both unknown
suppressed "DELETE FROM s WHERE id = 1"
q $DB "INSERT INTO s VALUES (1, 't7', 'n')"
q $DB "UPDATE s SET approved_at = 't8' WHERE id = 1"           # the insert made it whole again
caught_up
expect_eq "after a suppressed change: old values unknown once, then exact" \
  "$(attrs s "$r1")" \
'["1"]|id|-|1|2
["1"]|approved_at|-|t2|2
["1"]|note|-|n|2
["1"]|approved_at|t2|t3|0
["1"]|id|-|1|2
["1"]|approved_at|-|t5|2
["1"]|note|-|n|2
["1"]|approved_at|t5|t6|0
["2"]|id|-|2|2
["2"]|approved_at|-|x1|2
["2"]|note|-|m|2
["1"]|id|-|1|0
["1"]|approved_at|-|t7|0
["1"]|note|-|n|0
["1"]|approved_at|t7|t8|0'
expect_eq "suppressed changes counted" "$(q $DB "SELECT sum(n_suppressed) FROM walrev.revision WHERE id > $r1")" 4

# ---- a table without a key through a suppressed change
suppressed "UPDATE kl SET b = 'y' WHERE ctid = (SELECT ctid FROM kl LIMIT 1)"
restart KILL
q $DB "UPDATE kl SET b = 'z' WHERE b = 'y'"
lsn=$(current_lsn $DB)
caught_up
kill -TERM "$WPID"; wait "$WPID" || fail "exit status after SIGTERM"; WPID=
expect_eq "keyless: the suppressed row is found by its new values" \
  "$(q $DB "SELECT op::text || ' ' || old_value || '>' || new_value FROM walrev.attribute_delta WHERE relid = 'kl'::regclass AND op = 'U'")" "U y>z"
expect_eq "keyless snapshot equals the table" "$(W snapshot --at "$lsn" --table kl | LC_ALL=C sort)" \
  "$(q $DB "COPY (SELECT * FROM kl) TO STDOUT" | LC_ALL=C sort)"
expect_verify verify
grep -q "$SECRET" "$TMP/run.log" && fail "a hidden value reached the log"
pass "no hidden value in the log"
$PSQL -d postgres -c "SELECT pg_drop_replication_slot('hidsup')" >/dev/null
