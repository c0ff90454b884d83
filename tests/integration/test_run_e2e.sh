#!/usr/bin/env bash
# End to end: setup, a workload with actors, rollbacks, savepoints, 2PC,
# concurrent sessions, DEFAULT and FULL replica identity, NULL vs empty
# string, truncate; `walrev run --stop-lsn`; the history asserted exactly;
# `walrev verify` passes; a second run adds nothing.
source "$(dirname "$0")/lib.sh"
source_db e2e_run e2e

q $DB "CREATE TABLE account (id int PRIMARY KEY, owner text, balance numeric(12,2), note text);
       CREATE TABLE entry (id bigserial PRIMARY KEY, account_id int REFERENCES account(id), amount numeric, memo text);
       CREATE TABLE tag (name text, colour text);
       ALTER TABLE tag REPLICA IDENTITY FULL;
       CREATE TABLE setting (k text PRIMARY KEY, v text, n int);
       ALTER TABLE setting REPLICA IDENTITY FULL;"
w_setup

q $DB "BEGIN;
       SELECT walrev.context('{\"actor\":{\"type\":\"user\",\"id\":\"42\"},\"description\":\"open accounts\"}');
       INSERT INTO account VALUES (1, 'ann', 10.50, NULL), (2, 'bob', 0, '');
       SELECT walrev.context('{\"actor\":{\"type\":\"system\",\"id\":\"fixer\"},\"description\":\"normalise\"}');
       UPDATE account SET owner = 'Ann' WHERE id = 1;
       COMMIT;"
q $DB "BEGIN; INSERT INTO account VALUES (3, 'ghost', 1, 'x'); ROLLBACK;"
q $DB "BEGIN; INSERT INTO tag VALUES ('red', '#f00');
       SAVEPOINT s1; INSERT INTO tag VALUES ('lost', 'x'); ROLLBACK TO SAVEPOINT s1;
       INSERT INTO tag VALUES ('blue', NULL); INSERT INTO setting VALUES ('mode', 'a', 1); COMMIT;"
q $DB "BEGIN; UPDATE account SET balance = balance + 5, note = 'topped up' WHERE id = 2;
       PREPARE TRANSACTION 'walrev-2pc';"
q $DB "BEGIN; UPDATE tag SET colour = '' WHERE name = 'blue'; UPDATE setting SET v = 'b'; COMMIT;"
q $DB "COMMIT PREPARED 'walrev-2pc'"
# Two interleaved sessions: B commits first, so B's revision comes first.
psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null <<'SQL' &
BEGIN; INSERT INTO entry (account_id, amount, memo) VALUES (1, 1, 'A'); SELECT pg_sleep(1.5); COMMIT;
SQL
apid=$!
sleep 0.5
q $DB "INSERT INTO entry (account_id, amount, memo) VALUES (2, 2, 'B')"
wait $apid
q $DB "DELETE FROM account WHERE id = 2 AND NOT EXISTS (SELECT 1 FROM entry WHERE account_id = 2)" # no-op: entry exists
q $DB "DELETE FROM entry WHERE memo = 'B'; DELETE FROM account WHERE id = 2"
q $DB "DELETE FROM tag WHERE name = 'red'"
q_at STOP "TRUNCATE tag"

run_to "$STOP" "$TEST_TMP/run.log" --source "$SRC" --slot e2e
pass "run reached the stop LSN"

expect_eq "revisions with actors in commit order (revision 1: the baseline of the empty tables)" "$(q $DB "$H SELECT id, coalesce(actor_type||':'||actor_id, '-'), coalesce(description, '-'), n_insert, n_update, n_delete, n_truncate, n_snapshot, gid IS NOT NULL FROM revision ORDER BY id")" \
"1|walrev:baseline|baseline of existing rows|0|0|0|0|0|f
2|user:42|open accounts|2|1|0|0|0|f
3|-|-|3|0|0|0|0|f
4|-|-|0|2|0|0|0|f
5|-|-|0|1|0|0|0|f
6|-|-|1|0|0|0|0|f
7|-|-|1|0|0|0|0|f
8|-|-|0|0|2|0|0|f
9|-|-|0|0|1|0|0|f
10|-|-|0|0|0|1|0|f"

expect_eq "contexts of revision 2" "$(q $DB "$H SELECT context_no, actor_type, actor_id, description FROM revision_context WHERE revision_id = 2 ORDER BY 1")" \
"1|user|42|open accounts
2|system|fixer|normalise"

expect_eq "deltas of revision 2 (context in force per change)" "$(q $DB "$H SELECT seq, op, key, context_no, col_ids::text, old_values::text, new_values::text FROM object_delta_arrays WHERE revision_id = 2 ORDER BY seq")" \
'1|I|["1"]|1|{1,2,3,4}||{1,ann,10.50,NULL}
2|I|["2"]|1|{1,2,3,4}||{2,bob,0.00,""}
3|U|["1"]|2|{2}|{ann}|{Ann}'

expect_eq "2PC update under REPLICA IDENTITY DEFAULT: only changed columns, exact old values" \
"$(q $DB "$H SELECT col_ids::text, old_values::text, new_values::text, old_unknown FROM object_delta_arrays WHERE revision_id = 5")" \
'{3,4}|{0.00,""}|{5.00,"topped up"}|f'

expect_eq "FULL identity: without a primary key the row keeps the identity its insert gave it (a multiset); with one, the primary key; NULL vs empty string" \
"$(q $DB "$H SELECT op, key, coalesce(old_values::text, '-'), new_values::text FROM object_delta_arrays d WHERE revision_id = 4 ORDER BY seq")" \
'U|#3.2|-|{""}
U|["mode"]|{a}|{b}'

expect_eq "interleaved sessions in commit order" \
"$(q $DB "$H SELECT revision_id, new_values[4] FROM object_delta_arrays WHERE relid = 'public.entry'::regclass AND op = 'I' ORDER BY revision_id")" \
"6|B
7|A"

expect_eq "delete under DEFAULT: old values from history" \
"$(q $DB "$H SELECT key, old_values::text FROM object_delta_arrays WHERE revision_id = 8 ORDER BY seq")" \
'["2"]|{2,2,2,B}
["2"]|{2,bob,5.00,"topped up"}'

expect_eq "the newest rows of the history equal the live tables" \
"$(q $DB "$H SELECT sum((SELECT count(*) FROM current_rows(t.relid))) FROM tracked_table t")" "$(q $DB "SELECT (SELECT count(*) FROM account) + (SELECT count(*) FROM entry) + (SELECT count(*) FROM tag) + (SELECT count(*) FROM setting)")"

must "$TEST_TMP/verify.out" "verify" "$WALREV_BIN" --source "$SRC" --slot e2e verify
pass "verify passes"

# A second run to the same point adds nothing and duplicates nothing.
run_to "$STOP" "$TEST_TMP/run.log" --source "$SRC" --slot e2e
expect_eq "no duplicates after a second run" "$(q $DB "$H SELECT count(*), max(id) FROM revision")" "10|10"
expect_eq "slot confirmed at or past the stop LSN" \
  "$(q $DB "SELECT confirmed_flush_lsn >= '$STOP' FROM pg_replication_slots WHERE slot_name = 'e2e'")" "t"
