#!/usr/bin/env bash
# Strict mode (issue 14.3): with [actors] in the worker's configuration, every
# context's actor is recorded verified or not. Verified: signed with an
# application's key (HMAC-SHA256 over app, transaction, actor and
# description, the key in the config) or claimed by a role the config binds
# to that actor (the role as walrev.context() attests it). Anything else —
# unsigned, unbound, a bad signature, an unknown application, a signed
# context copied into another transaction — is recorded unverified with a
# warning on its revision, never fatal. log, show, history and blame show
# verified and the server-side user, the file sink's messages (Kafka's) carry
# them; verify accepts the verdicts and fails an impossible one. A bad [actors] entry is a configuration error (exit 2) that
# never prints the key.
source "$(dirname "$0")/lib.sh"
source_db strict_src
KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
WRONG=ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100
source_conf strict <<EOF
# a FOR TABLE publication, so that a table can join it later (with a baseline)
tables = public.doc

[file]
path = $TMP/stream.mp

[actors]
key.billing = $KEY
role.strict_app = user:*, service:reports
role.strict_team = team:ops
EOF

# ---- configuration errors: exit 2, the file and line named, the key never printed ----
bad_conf() { # bad_conf WHAT LINE EXPECTED
  printf '[actors]\n%s\n' "$2" >"$TMP/bad.conf"
  rc=0
  "$WALREV_BIN" -c "$TMP/bad.conf" rules >"$TMP/bad.out" 2>"$TMP/bad.err" || rc=$?
  expect_eq "$1: exit 2" "$rc" 2
  expect_eq "$1: message" "$(cat "$TMP/bad.err")" "walrev: $TMP/bad.conf:2: $3"
}
bad_conf "a short key" "key.billing = 0011aabb" \
  "[actors] key.billing: the key must be 32 to 128 hex digits (16 to 64 bytes; \`openssl rand -hex 32\`)"
bad_conf "a key that is not hex" "key.billing = 0011223344556677889900112233445566778899zz" \
  "[actors] key.billing: the key must be hex digits only"
bad_conf "a key without a name" "key. = $KEY" "[actors] key.: an application name is needed after 'key.'"
bad_conf "a binding that is no actor" "role.app = user:*, admin" \
  "[actors] role.app: 'admin' is not an actor TYPE:ID or TYPE:*"
bad_conf "an unknown key" "strictness = high" "unknown key 'strictness' in [actors]"

# walrev rules prints the policy in force, never a key
must "$TMP/rules.out" rules "$WALREV_BIN" -c "$TMP/walrev.conf" rules
expect_eq "rules: the policy in force" "$(sed -n '/^strict mode/,$p' "$TMP/rules.out")" "strict mode ([actors]): on
  application keys: billing
  role bindings:
    strict_app: user:*, service:reports
    strict_team: team:ops"
if grep -qi "$KEY" "$TMP/rules.out"; then fail "rules printed the key"; fi

# ---- the application's side: HMAC-SHA256 in SQL (checked against openssl) ----
q $DB "CREATE TABLE doc (id int PRIMARY KEY, body text);
CREATE FUNCTION test_hmac(k bytea, m text) RETURNS text LANGUAGE plpgsql AS \$f\$
DECLARE ipad bytea := decode(repeat('36', 64), 'hex'); opad bytea := decode(repeat('5c', 64), 'hex');
BEGIN
  FOR i IN 0 .. length(k) - 1 LOOP
    ipad := set_byte(ipad, i, get_byte(k, i) # 54); opad := set_byte(opad, i, get_byte(k, i) # 92);
  END LOOP;
  RETURN encode(sha256(opad || sha256(ipad || convert_to(m, 'UTF8'))), 'hex');
END \$f\$;
-- the context an application signs: L(app) L(xid) L(type) L(id) L(description), L(x) = octet length ':' x
CREATE FUNCTION signed_ctx(k text, app text, t text, i text, d text, x text) RETURNS text LANGUAGE sql AS \$f\$
  SELECT json_build_object('actor', json_build_object('type', t, 'id', i), 'description', d,
           'signature', json_build_object('app', app, 'xid', x, 'hmac', test_hmac(decode(k, 'hex'),
             octet_length(app) || ':' || app || octet_length(x) || ':' || x || octet_length(t) || ':' || t
             || octet_length(i) || ':' || i || octet_length(d) || ':' || d)))::text
\$f\$;"
expect_eq "the test's HMAC is HMAC-SHA256 (openssl)" \
  "$(q $DB "SELECT test_hmac(decode('$KEY', 'hex'), 'abc')")" \
  "$(printf abc | openssl dgst -sha256 -mac HMAC -macopt hexkey:$KEY | sed 's/^.*= //')"

w_setup
q postgres "DROP ROLE IF EXISTS strict_app; DROP ROLE IF EXISTS strict_team; DROP ROLE IF EXISTS strict_other;
            CREATE ROLE strict_app LOGIN; CREATE ROLE strict_team; CREATE ROLE strict_other LOGIN;
            GRANT strict_team TO strict_app;"
q $DB "GRANT INSERT ON doc TO strict_app, strict_team, strict_other;"
AS() { local role=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -At -U "$role" -d $DB -c "$*" >/dev/null; }
X="(txid_current() % 4294967296)::text"
ctx() { echo "walrev.context('{\"actor\":{\"type\":\"$1\",\"id\":\"$2\"}}')"; }

# 1-4 role bindings (walrev.context() attests the role)
AS strict_app "BEGIN; SELECT $(ctx user 42); INSERT INTO doc VALUES (1, 'bound role'); COMMIT;"
AS strict_app "BEGIN; SELECT $(ctx admin root); INSERT INTO doc VALUES (2, 'actor not bound'); COMMIT;"
AS strict_app "BEGIN; SET LOCAL ROLE strict_team; SELECT $(ctx team ops); INSERT INTO doc VALUES (3, 'bound current role'); COMMIT;"
AS strict_other "BEGIN; SELECT $(ctx user 7); INSERT INTO doc VALUES (4, 'role not bound'); COMMIT;"
# 5-8 application signatures (any role; the key is the application's, not the database's)
AS strict_other "BEGIN; SELECT pg_logical_emit_message(true, 'walrev', signed_ctx('$KEY', 'billing', 'service', 'billing', 'nightly run', $X));
                 INSERT INTO doc VALUES (5, 'signed'); COMMIT;"
AS strict_other "BEGIN; SELECT walrev.context(signed_ctx('$KEY', 'billing', 'service', 'billing', 'attested and signed', $X));
                 INSERT INTO doc VALUES (6, 'signed via context()'); COMMIT;"
AS strict_other "BEGIN; SELECT pg_logical_emit_message(true, 'walrev', signed_ctx('$WRONG', 'billing', 'service', 'billing', 'nightly run', $X));
                 INSERT INTO doc VALUES (7, 'wrong key'); COMMIT;"
AS strict_other "BEGIN; SELECT pg_logical_emit_message(true, 'walrev', signed_ctx('$KEY', 'payroll', 'service', 'payroll', 'x', $X));
                 INSERT INTO doc VALUES (8, 'unknown app'); COMMIT;"
# 9-11 no signature, no attestation; no actor; the reserved type
AS strict_other "BEGIN; SELECT pg_logical_emit_message(true, 'walrev', '{\"actor\":{\"type\":\"user\",\"id\":\"9\"}}');
                 INSERT INTO doc VALUES (9, 'plain message'); COMMIT;"
AS strict_app "BEGIN; SELECT walrev.context('{\"description\":\"no actor\"}'); INSERT INTO doc VALUES (10, 'no actor'); COMMIT;"
AS strict_app "BEGIN; SELECT $(ctx walrev me); INSERT INTO doc VALUES (11, 'reserved type'); COMMIT;"
run_to_now "$TMP/run.log" -c "$TMP/walrev.conf"
# 12: revision 5's signed context copied into another transaction (as a WAL reader could)
RAW=$(q $DB "$H SELECT c.raw FROM revision_context c JOIN object_delta d ON d.revision_id = c.revision_id
             WHERE d.relid = 'public.doc'::regclass AND d.key = '[\"5\"]'")
AS strict_other "BEGIN; SELECT pg_logical_emit_message(true, 'walrev', \$r\$$RAW\$r\$); INSERT INTO doc VALUES (12, 'copied'); COMMIT;"
run_to_now "$TMP/run.log" -c "$TMP/walrev.conf"

grep -q 'msg="strict mode: every context' "$TMP/run.log" || { cat "$TMP/run.log"; fail "no strict mode line"; }
grep -q 'level=warn msg="context actor not verified (strict mode)' "$TMP/run.log" || { cat "$TMP/run.log"; fail "no warning logged"; }
pass "the worker says it is in strict mode and warns of unverified actors (and did not stop)"

expect_eq "per revision: actor, attested, verdict, how, server user, warning" \
  "$(q $DB "$H SELECT d.new_values[1], coalesce(r.actor_type || ':' || r.actor_id, '-'), r.attested,
                coalesce(r.actor_verified::text, '-'), coalesce(r.verified_by, '-'), coalesce(r.db_session_user, '-'),
                coalesce(replace(r.warnings, E'\n', ' / '), '-')
           FROM revision r JOIN object_delta_arrays d ON d.revision_id = r.id
           WHERE d.relid = 'public.doc'::regclass ORDER BY 1")" \
"1|user:42|t|true|role:strict_app|strict_app|-
10|-|t|false|-|strict_app|-
11|-|t|false|-|strict_app|context: actor type \"walrev\" is reserved for walrev itself; actor not recorded
12|service:billing|f|false|-|-|context: signature of application \"billing\" does not verify (another key, an altered context or another transaction): actor not verified
2|admin:root|t|false|-|strict_app|context: actor admin:root is not bound to role strict_app ([actors] role.ROLE): actor not verified
3|team:ops|t|true|role:strict_team|strict_app|-
4|user:7|t|false|-|strict_other|context: actor user:7 is not bound to role strict_other ([actors] role.ROLE): actor not verified
5|service:billing|f|true|key:billing|-|-
6|service:billing|t|true|key:billing|strict_other|-
7|service:billing|f|false|-|-|context: signature of application \"billing\" does not verify (another key, an altered context or another transaction): actor not verified
8|service:payroll|f|false|-|-|context: signed by unknown application \"payroll\" (no [actors] key for it): actor not verified
9|user:9|f|false|-|-|context: actor user:9 not verified: neither signed with an application key nor attested by walrev.context()"
expect_eq "each context row carries the same verdict as its revision" \
  "$(q $DB "$H SELECT count(*) FROM revision r JOIN revision_context c ON c.revision_id = r.id AND c.context_no = 1
           WHERE (r.actor_verified, r.verified_by) IS DISTINCT FROM (c.actor_verified, c.verified_by)")|$(
     q $DB "$H SELECT count(*) FROM revision_context WHERE actor_verified")" "0|4"

# walrev's own contexts (the chunks of a baseline of a table joining the publication) are verified as walrev's
LASTREV=$(q $DB "$H SELECT max(id) FROM revision")
q $DB "CREATE TABLE late_t (id int PRIMARY KEY, v text); INSERT INTO late_t VALUES (1, 'a'), (2, 'b'), (3, 'c')"
worker_start "$TMP/run.log" -c "$TMP/walrev.conf"
on_exit 'worker_kill'
q $DB "ALTER PUBLICATION walrev ADD TABLE late_t"
bf_done() { [ "$(q $DB "SELECT state || ':' || rows_recorded FROM walrev.backfill WHERE relid = 'late_t'::regclass")" = "done:3" ]; }
wait_for 60 bf_done || { tail -20 "$TMP/run.log"; fail "the baseline of late_t did not finish"; }
worker_stop || { cat "$TMP/run.log"; fail "worker stop"; }
expect_eq "the baseline's chunk revisions: walrev's actor, verified as walrev's" \
  "$(q $DB "$H SELECT DISTINCT r.actor_type, r.actor_verified, r.verified_by, c.actor_verified, c.verified_by
           FROM revision r JOIN revision_context c ON c.revision_id = r.id WHERE r.id > $LASTREV")" \
  "walrev|t|walrev|t|walrev"

# the file sink (as Kafka: the same messages) carries the same server identity and verdict
"$WALREV_BIN" tail --file "$TMP/stream.mp" --format json >"$TMP/stream.json" || fail "tail --file"
python3 -c 'import json, sys
def t(v): return "-" if v is None else str(v).lower()
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m["type"] == "revision":
        print("|".join([m["id"], t(m["attested"]), t(m["db_session_user"]), t(m["actor_verified"]), t(m["verified_by"])]))
    elif m["type"] == "delta" and m["context"] and m["table"]["name"] == "doc":
        c = m["context"]
        print("d" + m["id"] + "|" + "|".join([t(c["attested"]), t(c["db_session_user"]), t(c["actor_verified"]), t(c["verified_by"])]))
' "$TMP/stream.json" | sort >"$TMP/stream.got"
q $DB "$H SELECT id || '|' || attested || '|' || coalesce(db_session_user, '-') || '|' || coalesce(actor_verified::text, '-')
              || '|' || coalesce(verified_by, '-') FROM revision
       UNION ALL
       SELECT 'd' || d.revision_id || '.' || d.seq || '|' || c.attested || '|' || coalesce(c.db_session_user, '-') || '|'
              || coalesce(c.actor_verified::text, '-') || '|' || coalesce(c.verified_by, '-')
       FROM object_delta d JOIN revision_context c ON c.revision_id = d.revision_id AND c.context_no = d.context_no
       WHERE d.relid = 'public.doc'::regclass" | sed 's/|t|/|true|/; s/|f|/|false|/' | sort >"$TMP/stream.want"
expect_eq "the file sink's revisions and doc deltas carry the store's identity and verdict" \
  "$(cat "$TMP/stream.got")" "$(cat "$TMP/stream.want")"
expect_eq "...for every revision and every doc delta" "$(wc -l <"$TMP/stream.got")" 26

# ---- what readers show: verified is strict mode's verdict, db_user the session user ----
REV1=$(q $DB "$H SELECT revision_id FROM object_delta WHERE relid = 'public.doc'::regclass AND key = '[\"1\"]'")
REV2=$(q $DB "$H SELECT revision_id FROM object_delta WHERE relid = 'public.doc'::regclass AND key = '[\"2\"]'")
REV5=$(q $DB "$H SELECT revision_id FROM object_delta WHERE relid = 'public.doc'::regclass AND key = '[\"5\"]'")
W log --table doc --format csv >"$TMP/log.out" 2>"$TMP/r.err" || { cat "$TMP/r.err"; fail log; }
expect_eq "log's header" "$(head -1 "$TMP/log.out")" \
  "revision,commit_time,actor_type,actor_id,description,inserts,updates,deletes,truncates,verified,db_user"
expect_eq "log: verified and db_user per revision (newest first)" \
  "$(tail -n +2 "$TMP/log.out" | awk -F, '{ print $3 ":" $4 "|" $10 "|" $11 }' | tr '\n' ' ')" \
  "service:billing|f| :|f|strict_app :|f|strict_app user:9|f| service:payroll|f| service:billing|f| service:billing|t|strict_other service:billing|t| user:7|f|strict_other team:ops|t|strict_app admin:root|f|strict_app user:42|t|strict_app "
W show "$REV5" --format json >"$TMP/show.out" 2>"$TMP/r.err" || { cat "$TMP/r.err"; fail show; }
expect_eq "show: a signed revision and its changes are verified, with no server user" \
  "$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1])); r = d["revision"]
print(json.dumps([r["actor_id"], r["verified"], r["db_user"], sorted({json.dumps([c["verified"], c["db_user"]]) for c in d["changes"]})]))' "$TMP/show.out")" \
  '["billing", true, null, ["[true, null]"]]'
W history --table doc --key 2 --format csv >"$TMP/hist.out" 2>"$TMP/r.err" || { cat "$TMP/r.err"; fail history; }
expect_eq "history: the unbound actor's change is not verified" \
  "$(tail -n +2 "$TMP/hist.out" | awk -F, '{ print $(NF-1) "|" $NF }' | sort -u)" "f|strict_app"
W blame --table doc --key 1 --format csv >"$TMP/blame.out" 2>"$TMP/r.err" || { cat "$TMP/r.err"; fail blame; }
expect_eq "blame: the bound role's values are verified" \
  "$(tail -n +2 "$TMP/blame.out" | awk -F, '{ print $1 "|" $(NF-1) "|" $NF }')" "id|t|strict_app
body|t|strict_app"

# ---- verify: the verdicts pass; a forged one fails naming the revision ----
expect_verify "verify passes"
forge() { # forge WHAT REV VERIFIED BY EXPECTED
  q $DB "$H UPDATE revision_context SET actor_verified = $3, verified_by = $4 WHERE revision_id = $2;
            UPDATE revision SET actor_verified = $3, verified_by = $4 WHERE id = $2"
  local out rc=0
  out=$(W verify 2>&1) || rc=$?
  expect_eq "$1: verify exits 1" "$rc" 1
  case "$out" in *"$5"*) pass "$1: $out" ;; *) echo "$out"; fail "$1: message" ;; esac
}
REV9=$(q $DB "$H SELECT revision_id FROM object_delta WHERE relid = 'public.doc'::regclass AND key = '[\"9\"]'")
REV4=$(q $DB "$H SELECT revision_id FROM object_delta WHERE relid = 'public.doc'::regclass AND key = '[\"4\"]'")
forge "an unattested actor marked verified by a role" "$REV9" true "'role:strict_app'" \
  "revision $REV9: context 1's actor_verified is not what its raw message says"
unforge() { q $DB "$H UPDATE revision_context SET actor_verified = false, verified_by = NULL WHERE revision_id = $1;
                     UPDATE revision SET actor_verified = false, verified_by = NULL WHERE id = $1"; }
unforge "$REV9"
forge "an unsigned actor marked signed" "$REV4" true "'key:billing'" \
  "revision $REV4: context 1's actor_verified is not what its raw message says"
unforge "$REV4"
q $DB "$H UPDATE revision SET actor_verified = false, verified_by = NULL WHERE id = $REV1"
rc=0
out=$(W verify 2>&1) || rc=$?
expect_eq "a revision's verdict unlike its first context's: verify exits 1" "$rc" 1
case "$out" in *"revision $REV1: its actor_verified is not that of its first context"*) pass "$out" ;;
  *) echo "$out"; fail "a revision's verdict unlike its first context's: message" ;; esac
q $DB "$H UPDATE revision SET actor_verified = true, verified_by = 'role:strict_app' WHERE id = $REV1"
must "$TMP/verify2.out" "verify after undoing the forgeries" W verify
pass "verify passes again once the forgeries are undone"
echo "all strict actor tests passed"
