#!/usr/bin/env bash
# walrev erase (issue 14.5): a customer's e-mail address is erased from the
# history while the chain keeps verifying. The dry run counts per column and
# changes nothing; --apply (the worker running, history + Kafka mock cluster)
# records an erase revision (who, what, why, never the value) and erases the
# values from deltas and keyframe rows in the same history transaction; then
# no text column of the history schema holds the address, verify passes,
# snapshot/history/blame show <erased>, the Kafka stream carries the erase
# event, a later change of the row does not bring the old address back, and a
# tampered erasure (a kept hash, the erase revision's reason) fails verify.
source "$(dirname "$0")/lib.sh"
: "${WALREV_MOCK_KAFKA:?run through ctest}"
source_db erase_gdpr
# the worker first, at once (a clean stop would wait for the mock cluster killed after it)
on_exit '[ -n "${wpid:-}" ] && kill -KILL "$wpid" 2>/dev/null'
on_exit '[ -n "${mpid:-}" ] && kill "$mpid" 2>/dev/null'
kafka_conf erase_gdpr er "erase_tombstones = true"

q $DB "CREATE TABLE customer (id int PRIMARY KEY, email text, name text, plan text);
       CREATE TABLE note (k text PRIMARY KEY, body text)"
w_setup
q $DB "BEGIN; SELECT walrev.context('{\"actor\":{\"type\":\"user\",\"id\":\"7\"}}');
       INSERT INTO customer VALUES (1, 'alice@example.com', 'Alice', 'free'), (2, 'bob@example.com', 'Bob', 'free'); COMMIT" >/dev/null
q $DB "UPDATE customer SET plan = 'pro' WHERE id = 1"
q $DB "UPDATE customer SET email = 'alice@new.example.com' WHERE id = 1"
"$WALREV_BIN" -c "$TMP/walrev.conf" run >/dev/null 2>"$TMP/run.log" &
wpid=$!
# 1,100 single-row updates of the name: a keyframe of customer falls due (2 live rows, floor 250, factor 4),
# so the address is in a keyframe row too.
for t in $(seq 1 11); do
  q $DB "BEGIN; $(for i in $(seq 1 100); do printf "UPDATE customer SET name = 'Alice %d' WHERE id = 1; " $((t * 100 + i)); done) COMMIT;"
done
wait_for 60 q_is $DB "$H SELECT count(*) >= 1 FROM keyframe WHERE relid = 'public.customer'::regclass" t || true
expect_eq "a keyframe of customer was taken" \
  "$(q $DB "$H SELECT count(*) >= 1 FROM keyframe WHERE relid = 'public.customer'::regclass")" "t"

# Every row of every table of the history schema whose text holds $1 (text, text[], jsonb, any column).
holding() {
  q $DB "DO \$\$ DECLARE r record; n bigint; total bigint := 0; BEGIN
    FOR r IN SELECT c.table_name, c.column_name FROM information_schema.columns c
             JOIN information_schema.tables t USING (table_schema, table_name)
             WHERE c.table_schema = 'walrev' AND t.table_type = 'BASE TABLE'
               -- a partition's rows are its parent's (format 6): counted once, through the parent
               AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = format('walrev.%I', c.table_name)::regclass)
               AND c.data_type IN ('text', 'ARRAY', 'jsonb', 'json', 'character varying', 'USER-DEFINED') LOOP
      EXECUTE format('SELECT count(*) FROM walrev.%I WHERE %I::text LIKE %L', r.table_name, r.column_name, '%$1%') INTO n;
      total := total + n;
    END LOOP;
    PERFORM set_config('walrev_test.holding', total::text, false);
  END \$\$; SELECT current_setting('walrev_test.holding')" | tail -1
}
wait_caught_up() {
  local stop
  stop=$(current_lsn $DB)
  wait_for 60 q_is $DB "$H SELECT end_lsn >= '$stop' FROM checkpoint" t || fail "worker did not catch up to $stop"
}
wait_caught_up
ALICE_BEFORE=$(holding alice@)
[ "$ALICE_BEFORE" -ge 4 ] || fail "the history should hold the address before the erasure (rows: $ALICE_BEFORE)"
KF_VALUES=$(q $DB "$H SELECT count(*) FROM keyframe_row kr JOIN keyframe k ON k.id = kr.keyframe_id
                      WHERE k.relid = 'public.customer'::regclass AND kr.key = '[\"1\"]' AND kr.vals[2] IS NOT NULL")
[ "$KF_VALUES" -ge 1 ] || fail "a keyframe row holds the address"
pass "the history holds alice's addresses in $ALICE_BEFORE rows, $KF_VALUES of them keyframe rows"
NREV_BEFORE=$(q $DB "$H SELECT max(id) FROM revision")

# Dry run: counts per column, nothing changed.
must "$TMP/dry.out" "erase dry run" W erase --table customer --key 1 --columns email --reason "GDPR request 123"
expect_eq "the dry run says what it would erase, per column" "$(cat "$TMP/dry.out")" \
"object [\"1\"] of public.customer, columns {\"email\"}
would erase 3 value(s) in deltas and $KF_VALUES in keyframes:
  public.customer.email: 3 value(s) in 2 delta(s), $KF_VALUES in keyframes
nothing changed (dry run): add --apply to erase"
expect_eq "the dry run changed nothing" "$(holding alice@)|$(q $DB "$H SELECT max(id) FROM revision")" \
  "$ALICE_BEFORE|$NREV_BEFORE"

# Refusals: a key column, an unknown column, no reason, an object the history lacks, the reserved actor type.
refuse() { # refuse WHAT EXPECTED-MESSAGE ARGS...
  local what=$1 msg=$2
  shift 2
  if W erase "$@" >"$TMP/refused.out" 2>&1; then fail "$what: accepted"; fi
  grep -qF -- "$msg" "$TMP/refused.out" || { cat "$TMP/refused.out"; fail "$what: message"; }
  pass "refused: $what"
}
refuse "a key column" "id is part of the key, which identifies the object; it cannot be erased" \
  --table customer --key 1 --columns id --reason x
refuse "an unknown column" "table customer never had a column phone" --table customer --key 1 --columns phone --reason x
refuse "no reason" "--reason is required" --table customer --key 1 --columns email
refuse "an object without history" "the history has no object [\"99\"]" --table customer --key 99 --reason x
refuse "--wait without --apply" "--wait waits for the worker to erase: it needs --apply" --table customer --key 1 --reason x --wait 5
refuse "the reserved actor type" "the actor type walrev is reserved" --table customer --key 1 --reason x --actor walrev:me

# Only walrev's role can ask: a database user cannot write the erasure log.
q postgres "DROP ROLE IF EXISTS erase_mallory; CREATE ROLE erase_mallory LOGIN"
if psql -X -q -At -U erase_mallory -d $DB -c "INSERT INTO walrev.erasure_log (relid, nspname, relname, key, col_ids, col_names, reason)
     VALUES ('public.customer'::regclass, 'public', 'customer', '[\"2\"]', '{2}', '{email}', 'x')" >"$TMP/mallory.out" 2>&1; then
  fail "a user without privileges inserted an erasure request"
fi
grep -q "permission denied" "$TMP/mallory.out" || { cat "$TMP/mallory.out"; fail "mallory's refusal"; }
pass "a database user cannot request an erasure: $(head -1 "$TMP/mallory.out")"

# Apply, the worker running: it records the erase revision and erases in one history transaction.
W erase --table customer --key 1 --columns email --reason "GDPR request 123" --actor operator:dpo --apply \
  --wait 60 >"$TMP/apply.out" 2>&1 || { cat "$TMP/apply.out"; cat "$TMP/run.log"; fail "erase --apply"; }
ER=$(q $DB "$H SELECT revision_id FROM erasure WHERE relid = 'public.customer'::regclass AND key = '[\"1\"]'")
expect_eq "--apply waits for the worker and says what it erased" "$(tail -1 "$TMP/apply.out")" \
  "erased 3 value(s) in deltas and $KF_VALUES in keyframes; erase revision $ER"
expect_eq "no stored row holds either address any more (every text column of the history schema)" \
  "$(holding alice@)" "0"
[ "$(holding bob@example.com)" -ge 1 ] || fail "bob's address was erased too"
pass "bob's address is untouched"
expect_eq "the erase revision: who, what, why (never the value)" \
  "$(q $DB "$H SELECT r.actor_type, r.actor_id, r.description, r.db_session_user, r.attested, d.op, rv.relname,
               (SELECT string_agg(rv.col_names[array_position(rv.col_ids, u.c)] || '=' || coalesce(u.v, '-'), ' ' ORDER BY u.c)
                FROM unnest(d.col_ids, d.new_values) u(c, v) WHERE rv.col_names[array_position(rv.col_ids, u.c)]
                     IN ('relname', 'key', 'col_names', 'reason', 'requested_by'))
             FROM revision r JOIN object_delta_arrays d ON d.revision_id = r.id
             JOIN relation_version rv ON rv.relid = d.relid AND rv.version = d.relversion WHERE r.id = $ER")" \
  "operator|dpo|erase: GDPR request 123|postgres|t|I|erasure_log|relname=customer key=[\"1\"] col_names={email} reason=GDPR request 123 requested_by=postgres"
expect_eq "each erased value keeps its keyed hash, not its bare SHA-256, and is flagged" \
  "$(q $DB "$H SELECT count(*), count(*) FILTER (WHERE value_hash IN (sha256('alice@example.com'), sha256('alice@new.example.com'))),
               (SELECT count(*) FROM object_delta_arrays d, unnest(d.attr_flags) f WHERE d.relid = 'public.customer'::regclass AND f & 24 <> 0)
             FROM erased_value")" "3|0|2"
must "$TMP/verify.out" "verify after the erasure" W verify
pass "verify after the erasure: $(cat "$TMP/verify.out")"

# Readers show the values as erased, never as NULL.
W snapshot --table customer >"$TMP/snap.out" 2>"$TMP/r.err" || { cat "$TMP/r.err"; fail snapshot; }
expect_eq "snapshot: the address is <erased>" "$(sort "$TMP/snap.out")" \
  "$(printf '1\t<erased>\tAlice 1200\tpro\n2\tbob@example.com\tBob\tfree')"
INS=$(q $DB "$H SELECT revision_id FROM object_delta WHERE relid = 'public.customer'::regclass AND key = '[\"1\"]' AND op = 'I'")
W snapshot --table customer --at "$INS" >"$TMP/snap2.out" 2>"$TMP/r.err" || { cat "$TMP/r.err"; fail "snapshot at $INS"; }
expect_eq "snapshot of an earlier revision: erased too" "$(sort "$TMP/snap2.out")" \
  "$(printf '1\t<erased>\tAlice\tfree\n2\tbob@example.com\tBob\tfree')"
W history --table customer --key 1 --format csv >"$TMP/hist.out" 2>"$TMP/r.err" || { cat "$TMP/r.err"; fail history; }
expect_eq "history: old and new values <erased>" \
  "$(grep -c '<erased>' "$TMP/hist.out")|$(grep -c alice "$TMP/hist.out" || true)" "2|0"
W blame --table customer --key 1 --format csv >"$TMP/blame.out" 2>"$TMP/r.err" || { cat "$TMP/r.err"; fail blame; }
expect_eq "blame: the address is <erased>" "$(grep '^email,' "$TMP/blame.out" | cut -d, -f2)" "<erased>"

# A later change of the row does not bring the old address back (the worker's row cache forgot it).
q $DB "UPDATE customer SET email = 'carol@example.com' WHERE id = 1"
wait_caught_up
expect_eq "a change after the erasure: no old address comes back" "$(holding alice@)" "0"
expect_eq "...and the new address is recorded" \
  "$(q $DB "$H SELECT count(*) FROM object_delta_arrays WHERE relid = 'public.customer'::regclass AND 'carol@example.com' = ANY (new_values)")" "1"

# A key with a quote, a backslash and a tab (escaped in its JSON form) is found and erased as well.
q $DB "INSERT INTO note VALUES (E'a\"b\\\\c\td', 'secret note'), ('plain', 'kept note')"
wait_caught_up
NKEY=$(q $DB "$H SELECT key FROM object_delta WHERE relid = 'public.note'::regclass AND key <> '[\"plain\"]'")
must "$TMP/note.out" "erase of the note" W erase --table note --key "$NKEY" --reason "test" --apply --wait 60
expect_eq "a key with a quote, a backslash and a tab: erased" \
  "$(tail -1 "$TMP/note.out" | cut -d';' -f1)|$(holding 'secret note')|$(holding 'kept note')" \
  "erased 1 value(s) in deltas and 0 in keyframes|0|1"

kill -TERM $wpid
wait $wpid || { cat "$TMP/run.log"; fail "worker stop"; }
wpid=

# Kafka: the erase event (the erasure_log row, revision $ER) reached the stream.
NMSG=$(q $DB "$H SELECT (SELECT count(*) FROM revision) + (SELECT count(*) FROM object_delta) + 2")
W tail --brokers "$BROKERS" --prefix er --from-beginning --format json --max-messages "$NMSG" \
  --timeout-ms 20000 >"$TMP/tail.json" 2>"$TMP/tail.err" || { cat "$TMP/tail.err"; fail tail; }
got=$(/usr/bin/python3 - "$TMP/tail.json" "$ER" "$NKEY" <<'PY'
import json, sys
er = int(sys.argv[2])
out = []
for line in open(sys.argv[1]):
    m = json.loads(line)
    v = m.get("value", m)
    if v.get("type") == "delta" and v["revision"]["id"] == er:
        vals = sorted(str(c.get("new")) for c in v.get("changes", []))
        out.append("%s %s.%s %s" % (v["op"], v["table"]["schema"], v["table"]["name"],
                                     "GDPR request 123" in vals and "[\"1\"]" in vals))
    if v.get("type") == "revision" and v["revision"]["id"] == er:
        out.append("revision %s" % v.get("description"))
    if v.get("type") == "tombstone" and v["topic"] == "er.public.customer":
        out.append("tombstone %s %s" % (v["topic"], v["key"]))
    if v.get("type") == "tombstone" and v["topic"] == "er.public.note":
        out.append("tombstone %s %s" % (v["topic"], v["key"] == sys.argv[3]))
print("\n".join(sorted(out)))
PY
)
expect_eq "Kafka carries the erase event (the erasure_log row and its revision) and a tombstone keyed by the object (erase_tombstones)" "$got" \
  "insert walrev.erasure_log True
revision erase: GDPR request 123
tombstone er.public.customer [\"1\"]
tombstone er.public.note True"

# Tampering with an erasure fails verify, naming the revision.
ROW=$(q $DB "$H SELECT revision_id || ' ' || seq || ' ' || col_id || ' ' || which::text FROM erased_value ORDER BY 1 LIMIT 1")
set -- $ROW
q $DB "$H CREATE TABLE public.saved_hash AS SELECT * FROM erased_value;
       UPDATE erased_value SET value_hash = sha256('alice@example.com') WHERE revision_id = $1 AND seq = $2 AND which = '$4'"
if W verify >"$TMP/tamper.out" 2>&1; then fail "verify passed with a forged erased-value hash"; fi
grep -qF "history does not verify at revision $1:" "$TMP/tamper.out" || { cat "$TMP/tamper.out"; fail "tamper message"; }
pass "a forged erased-value hash fails verify at revision $1"
q $DB "$H DELETE FROM erased_value; INSERT INTO erased_value SELECT * FROM public.saved_hash;
       DELETE FROM erased_value WHERE revision_id = $1 AND seq = $2 AND which = '$4'"
if W verify >"$TMP/tamper.out" 2>&1; then fail "verify passed with an erased value's hash deleted"; fi
grep -qF "erased value has no hash in erased_value" "$TMP/tamper.out" || { cat "$TMP/tamper.out"; fail "missing hash message"; }
pass "an erased value without its hash fails verify"
q $DB "$H DELETE FROM erased_value; INSERT INTO erased_value SELECT * FROM public.saved_hash; DROP TABLE public.saved_hash"
# The erased value put back where it was (it hashes as before, so the chain alone holds): verify names the erasure.
q $DB "$H UPDATE object_delta SET new_values = array_replace(new_values, NULL, 'alice@example.com')
       WHERE relid = 'public.customer'::regclass AND key = '[\"1\"]' AND op = 'I'"
if W verify >"$TMP/tamper.out" 2>&1; then fail "verify passed with an erased value put back"; fi
grep -qF "revision $ER erased values of key [\"1\"] of table" "$TMP/tamper.out" || { cat "$TMP/tamper.out"; fail "put-back message"; }
pass "an erased value put back fails verify, naming the erase revision $ER"
q $DB "$H UPDATE object_delta SET new_values = array_replace(new_values, 'alice@example.com', NULL)
       WHERE relid = 'public.customer'::regclass AND key = '[\"1\"]' AND op = 'I'"
q $DB "$H UPDATE object_delta SET new_values = array_replace(new_values, 'GDPR request 123', 'routine cleanup') WHERE revision_id = $ER"
if W verify >"$TMP/tamper.out" 2>&1; then fail "verify passed with the erase revision's reason rewritten"; fi
grep -qF "history does not verify at revision $ER:" "$TMP/tamper.out" || { cat "$TMP/tamper.out"; fail "reason tamper message"; }
pass "the erase revision's reason rewritten fails verify at revision $ER"
q $DB "$H UPDATE object_delta SET new_values = array_replace(new_values, 'routine cleanup', 'GDPR request 123') WHERE revision_id = $ER"
must "$TMP/verify.out" "verify after undoing the tampering" W verify
pass "undone, verify passes again"
