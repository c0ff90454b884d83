#!/usr/bin/env bash
# Actors that cannot be forged (issue 14.3): walrev.context() records what the
# server knows — session_user, the caller's current_user, application_name —
# signed by a SECURITY DEFINER function with a key only walrev's role can
# read; the worker checks the signature and the transaction. A client with
# CONNECT only cannot read the key, so whatever it emits itself (a plain
# message, a forged attestation, a copy of another transaction's) is
# recorded unattested with a warning. Verify re-derives the columns.
source "$(dirname "$0")/lib.sh"
source_db attest_src attest

q $DB "CREATE TABLE doc (id int PRIMARY KEY, body text);"
w_setup
grep -q "context attestation key" "$TMP/setup.out" || { cat "$TMP/setup.out"; fail "setup made no key"; }
q postgres "DROP ROLE IF EXISTS attest_app; DROP ROLE IF EXISTS attest_team; CREATE ROLE attest_app LOGIN; CREATE ROLE attest_team;
            GRANT attest_team TO attest_app;"
q $DB "GRANT INSERT ON doc TO attest_app, attest_team;"
A() { PGAPPNAME=billing psql -X -q -v ON_ERROR_STOP=1 -At -U attest_app -d $DB -c "$*"; }

if A "SELECT count(*) FROM walrev.context_key" >/dev/null 2>&1; then fail "a CONNECT-only role read the key"; fi
pass "the key is not readable by the application's role"

A "BEGIN; SELECT walrev.context('{\"actor\":{\"type\":\"user\",\"id\":\"42\"}}'); INSERT INTO doc VALUES (1, 'signed'); COMMIT;" >/dev/null
A "BEGIN; SET LOCAL ROLE attest_team; SELECT walrev.context('{\"actor\":{\"type\":\"user\",\"id\":\"43\"}}'); INSERT INTO doc VALUES (2, 'as team'); COMMIT;" >/dev/null
A "BEGIN; SELECT walrev.context_attested('{\"actor\":{\"type\":\"user\",\"id\":\"44\"}}', 'postgres'); INSERT INTO doc VALUES (3, 'claims postgres'); COMMIT;" >/dev/null
A "BEGIN; SELECT pg_logical_emit_message(true, 'walrev', '{\"actor\":{\"type\":\"user\",\"id\":\"45\"}}'); INSERT INTO doc VALUES (4, 'plain'); COMMIT;" >/dev/null
A "BEGIN; SELECT pg_logical_emit_message(true, 'walrev', json_build_object('walrev_attest', json_build_object('session_user', 'postgres', 'current_user', 'postgres', 'application_name', 'admin', 'xid', (txid_current() % 4294967296)::text, 'sig', repeat('ab', 32)), 'context', '{\"actor\":{\"type\":\"user\",\"id\":\"46\"}}')::text); INSERT INTO doc VALUES (5, 'forged'); COMMIT;" >/dev/null
run_to_now "$TMP/run.log" --source "$SRC" --slot attest
# A signed message copied into another transaction (as someone who can read the WAL could)
RAW=$(q $DB "$H SELECT raw FROM revision_context WHERE actor_id = '42'")
A "BEGIN; SELECT pg_logical_emit_message(true, 'walrev', \$r\$$RAW\$r\$); INSERT INTO doc VALUES (6, 'replayed'); COMMIT;" >/dev/null
run_to_now "$TMP/run.log" --source "$SRC" --slot attest

expect_eq "server-side identity per revision: attested only through walrev.context()" \
  "$(q $DB "$H SELECT d.new_values[1], r.actor_id, r.attested, coalesce(r.db_session_user, '-'), coalesce(r.db_current_user, '-'),
                coalesce(r.application_name, '-'), coalesce(r.warnings, '-') LIKE '%attestation does not verify%'
           FROM revision r JOIN object_delta_arrays d ON d.revision_id = r.id WHERE d.relid = 'public.doc'::regclass ORDER BY 1")" \
"1|42|t|attest_app|attest_app|billing|f
2|43|t|attest_app|attest_team|billing|f
3|44|t|attest_app|-|billing|f
4|45|f|-|-|-|f
5|46|f|-|-|-|t
6|42|f|-|-|-|t"
expect_eq "the context rows carry the same" \
  "$(q $DB "$H SELECT string_agg(attested::text, ',' ORDER BY revision_id) FROM revision_context WHERE revision_id > 1")" \
  "true,true,true,false,false,false"

expect_verify "verify passes"
R=$(q $DB "$H SELECT revision_id FROM revision_context WHERE actor_id = '42' AND attested")
q $DB "$H UPDATE revision_context SET db_session_user = 'postgres' WHERE revision_id = $R; UPDATE revision SET db_session_user = 'postgres' WHERE id = $R"
out=$(W verify 2>&1) && fail "verify passed a forged session user"
q $DB "$H UPDATE revision_context SET db_session_user = 'attest_app' WHERE revision_id = $R; UPDATE revision SET db_session_user = 'attest_app' WHERE id = $R"
case "$out" in *"revision $R: context 1's db_session_user is not what its raw message says"*) pass "forged session user: $out" ;; *) echo "$out"; fail "forged session user message" ;; esac
R4=$(q $DB "$H SELECT revision_id FROM revision_context WHERE actor_id = '45'")
q $DB "$H UPDATE revision_context SET attested = true WHERE revision_id = $R4; UPDATE revision SET attested = true WHERE id = $R4"
out=$(W verify 2>&1) && fail "verify passed a plain message marked attested"
q $DB "$H UPDATE revision_context SET attested = false WHERE revision_id = $R4; UPDATE revision SET attested = false WHERE id = $R4"
case "$out" in *"revision $R4: context 1's attested is not what its raw message says"*) pass "forged attested flag: $out" ;; *) echo "$out"; fail "forged attested message" ;; esac
expect_eq "the key never reaches the history (nor a baseline of it)" \
  "$(q $DB "$H SELECT count(*) FROM object_delta WHERE relid = 'walrev.context_key'::regclass")" "0"
