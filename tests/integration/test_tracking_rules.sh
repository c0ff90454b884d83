#!/usr/bin/env bash
# Tracking rules end to end: a hidden column's value (even as part of a key)
# never reaches the history store, the file sink or the logs, though its
# changes are recorded; an untracked column makes no delta; an excluded table
# makes no history; a suppression is honoured only when allowed and is itself
# recorded with what it skipped.
source "$(dirname "$0")/lib.sh"
source_db rules_src
SECRET='s3cr3t-Value-7781'
source_conf rules <<CONF
[tracking]
hidden = public.users.password, public.apikeys.token
untracked = public.users.last_seen
exclude = public.sessions
allow_suppress = true
[log]
level = debug
CONF

q $DB "CREATE TABLE users (id int PRIMARY KEY, name text, password text, last_seen timestamptz);
       CREATE TABLE apikeys (token text PRIMARY KEY, owner int);
       CREATE TABLE sessions (id int PRIMARY KEY, data text);"
w_setup

q $DB "INSERT INTO users VALUES (1, 'ann', '$SECRET-1', now());
       INSERT INTO apikeys VALUES ('$SECRET-key', 1);
       INSERT INTO sessions VALUES (1, '$SECRET-session');"
q $DB "UPDATE users SET last_seen = now() + interval '1 hour' WHERE id = 1"      # untracked only: no delta
q $DB "UPDATE users SET password = '$SECRET-2' WHERE id = 1"                     # hidden change: recorded, no values
q $DB "UPDATE users SET password = '$SECRET-2', name = 'Ann' WHERE id = 1"        # hidden unchanged: only name
q $DB "BEGIN; SELECT walrev.context('{\"actor\":{\"type\":\"job\",\"id\":\"import\"},\"suppress\":true}');
       INSERT INTO users VALUES (2, 'bulk', '$SECRET-3', NULL), (3, 'bulk', '$SECRET-4', NULL); COMMIT;" >/dev/null
q $DB "DELETE FROM apikeys"
run_to_now "$TMP/run.log" -c "$TMP/walrev.conf" -- --file "$TMP/revisions.msgpack"

expect_eq "deltas: hidden changes flagged without values, untracked-only update absent, excluded table absent" \
  "$(q $DB "$H SELECT revision_id, rv.relname, d.op, d.col_ids::text, coalesce(d.old_values::text, '-'), coalesce(d.new_values::text, '-'), coalesce(d.attr_flags::text, '-') FROM object_delta_arrays d JOIN relation_version rv ON rv.relid = d.relid AND rv.version = d.relversion WHERE revision_id > 1 ORDER BY revision_id, seq")" \
"2|users|I|{1,2,3}|-|{1,ann,NULL}|{0,0,1}
2|apikeys|I|{1,2}|-|{NULL,1}|{1,0}
3|users|U|{3}|-|-|{1}
4|users|U|{2}|{ann}|{Ann}|-
6|apikeys|D|{1,2}|{NULL,1}|-|{1,0}"
expect_eq "the suppressed transaction is a revision that says what it skipped" \
  "$(q $DB "$H SELECT n_insert, n_suppressed, actor_id, warnings FROM revision WHERE id = 5")" \
  "0|2|import|tracking suppressed by context: 2 changes not recorded"
expect_eq "a hidden key column is keyed by its digest" \
  "$(q $DB "$H SELECT key LIKE '[\"sha256:%' FROM object_delta WHERE relid = 'public.apikeys'::regclass LIMIT 1")" "t"
expect_eq "the newest rows hold no hidden value" "$(q $DB "$H SELECT count(*) FROM tracked_table t, current_rows(t.relid) c WHERE array_to_string(c.vals, ',') LIKE '%$SECRET%'")" "0"

# Search every place a value could leak to.
q $DB "COPY (SELECT * FROM walrev.revision) TO STDOUT; COPY (SELECT * FROM walrev.revision_context) TO STDOUT;
       COPY (SELECT * FROM walrev.object_delta) TO STDOUT; COPY (SELECT c.* FROM walrev.tracked_table t, walrev.current_rows(t.relid) c) TO STDOUT;
       COPY (SELECT * FROM walrev.keyframe_row) TO STDOUT" >"$TMP/store.dump"
for f in "$TMP/store.dump" "$TMP/revisions.msgpack" "$TMP/run.log"; do
  [ -s "$f" ] || fail "$f is empty: nothing was searched"
  if grep -a -q "$SECRET" "$f"; then fail "hidden value found in $(basename "$f")"; fi
done
pass "no hidden value in the history store, the file sink output or the debug log"
"$WALREV_BIN" -c "$TMP/walrev.conf" rules | grep -q "public.users.password" || fail "rules command does not list the hidden column"
pass "walrev rules lists the rules"
