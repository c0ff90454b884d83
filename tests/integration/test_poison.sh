#!/usr/bin/env bash
# Poison input (issue 14.1): whatever a role with only CONNECT can put into
# the WAL — contexts with NUL escapes, NUL bytes, invalid UTF-8, oversized
# and incompressible actor ids, huge messages — is recorded, bounded and
# sanitised with a warning; it never stops the worker. The raw message stays
# covered by the checksum and verify passes.
source "$(dirname "$0")/lib.sh"
source_db poison_src poison

q $DB "CREATE TABLE item (id int PRIMARY KEY, note text);"
w_setup
q postgres "DROP ROLE IF EXISTS poison_mallory; CREATE ROLE poison_mallory LOGIN;"
q $DB "REVOKE ALL ON SCHEMA public FROM PUBLIC; GRANT USAGE ON SCHEMA public TO poison_mallory;
       GRANT INSERT, UPDATE ON item TO poison_mallory;"
M() { psql -X -q -v ON_ERROR_STOP=1 -At -U poison_mallory -d $DB -c "$*" >/dev/null; }

# Each attack is its own transaction with one row, so the row proves the
# transaction was recorded after the poison.
M "BEGIN; SELECT pg_logical_emit_message(true,'walrev','{\"actor\":{\"type\":\"x\",\"id\":\"\\u0000\"}}'); INSERT INTO item VALUES (1, 'nul id'); COMMIT;"
M "BEGIN; SELECT pg_logical_emit_message(true,'walrev','{\"meta\":{\"k\":[\"v\\u0000w\"]},\"actor\":{\"type\":\"t\",\"id\":\"m\"}}'); INSERT INTO item VALUES (2, 'nul meta'); COMMIT;"
M "BEGIN; SELECT pg_logical_emit_message(true,'walrev',json_build_object('actor',json_build_object('type','x','id',(SELECT string_agg(md5(g::text), '') FROM generate_series(1,100) g)))::text); INSERT INTO item VALUES (3, 'long id'); COMMIT;"
M "BEGIN; SELECT pg_logical_emit_message(true,'walrev','{\"description\":\"before\\u0000after\"}'); INSERT INTO item VALUES (4, 'nul description'); COMMIT;"
M "BEGIN; SELECT pg_logical_emit_message(true,'walrev','\\x7b00ff7d'::bytea); INSERT INTO item VALUES (5, 'binary'); COMMIT;"
M "BEGIN; SELECT pg_logical_emit_message(true,'walrev',(SELECT '{\"description\":\"' || string_agg(md5(g::text), '') || '\"}' FROM generate_series(1,100000) g)); INSERT INTO item VALUES (6, 'huge'); COMMIT;"
M "BEGIN; SELECT pg_logical_emit_message(true,'walrev','{\"actor\":{\"type\":\"walrev\",\"id\":\"baseline\"}}'); INSERT INTO item VALUES (7, 'reserved'); COMMIT;"
M "BEGIN; SELECT pg_logical_emit_message(true,'walrev','{\"actor\":{\"type\":\"' || repeat('\\u0001', 600) || '\",\"id\":\"y\"}}'); INSERT INTO item VALUES (8, 'long type'); COMMIT;"
STOP=$(current_lsn $DB)

run_to "$STOP" "$TEST_TMP/run.log" --source "$SRC" --slot poison
pass "run reached the stop LSN"

expect_eq "every transaction recorded once, in order" \
  "$(q $DB "$H SELECT string_agg(new_values[1], ',' ORDER BY revision_id) FROM object_delta_arrays WHERE relid = 'public.item'::regclass")" \
  "1,2,3,4,5,6,7,8"

R() { q $DB "$H SELECT r.id FROM revision r JOIN object_delta d ON d.revision_id = r.id WHERE d.relid = 'public.item'::regclass AND coalesce(d.new_values[1], d.new_value) = '$1'"; }

r=$(R 1)
expect_eq "NUL in actor id: stored sanitised, warned" \
  "$(q $DB "$H SELECT actor_type, actor_id = E'\\uFFFD', actor->>'id' = E'\\uFFFD', warnings LIKE '%NUL%' FROM revision WHERE id = $r")" "x|t|t|t"
expect_eq "NUL in actor id: the context row too, raw kept exactly" \
  "$(q $DB "$H SELECT actor_id = E'\\uFFFD', raw = '{\"actor\":{\"type\":\"x\",\"id\":\"\\u0000\"}}', raw_sha256 IS NULL FROM revision_context WHERE revision_id = $r")" "t|t|t"

r=$(R 2)
expect_eq "NUL in meta values: sanitised" \
  "$(q $DB "$H SELECT meta::text = E'{\"k\": [\"v\\uFFFDw\"]}', warnings LIKE '%NUL characters in meta%' FROM revision WHERE id = $r")" "t|t"

r=$(R 3)
expect_eq "incompressible 3200-byte actor id: cut to 512 bytes, warned" \
  "$(q $DB "$H SELECT octet_length(r.actor_id), octet_length(c.raw) > 3200, warnings LIKE '%actor.id%512%' FROM revision r JOIN revision_context c ON c.revision_id = r.id WHERE r.id = $r")" "512|t|t"

r=$(R 4)
expect_eq "NUL in description: not cut short" \
  "$(q $DB "$H SELECT description = E'before\\uFFFDafter' FROM revision WHERE id = $r")" "t"

r=$(R 5)
expect_eq "binary message (NUL byte, invalid UTF-8): raw sanitised, hash kept, warned" \
  "$(q $DB "$H SELECT c.raw, encode(c.raw_sha256, 'hex') = encode(sha256('\\x7b00ff7d'::bytea), 'hex'), r.actor_id IS NULL, r.warnings LIKE '%not valid UTF-8%' FROM revision r JOIN revision_context c ON c.revision_id = r.id WHERE r.id = $r")" \
  "{��}|t|t|t"

r=$(R 6)
expect_eq "3.2 MB context: not applied, raw bounded to 1 MiB with the hash of all of it, warned" \
  "$(q $DB "$H SELECT octet_length(c.raw), encode(c.raw_sha256, 'hex') = (SELECT encode(sha256(convert_to('{\"description\":\"' || string_agg(md5(g::text), '') || '\"}', 'UTF8')), 'hex') FROM generate_series(1,100000) g), r.description IS NULL, r.warnings LIKE '%message of 3200018 bytes exceeds 1048576 bytes%' FROM revision r JOIN revision_context c ON c.revision_id = r.id WHERE r.id = $r")" \
  "1048576|t|t|t"

r=$(R 7)
expect_eq "reserved actor type walrev from a user: not taken as walrev's, warned" \
  "$(q $DB "$H SELECT actor_type IS NULL, actor_id IS NULL, warnings LIKE '%reserved%' FROM revision WHERE id = $r")" "t|t|t"

r=$(R 8)
expect_eq "long actor type: bounded to 128 bytes" \
  "$(q $DB "$H SELECT octet_length(actor_type) FROM revision WHERE id = $r")" "128"

expect_verify "verify passes over the poison"

# Row values: a key longer than a B-tree entry may be (the history indexes
# object_delta and keyframe_row by key): a table without a primary key whose
# row is 3200 bytes (its identity is synthetic, docs/history-store.md), and a primary key whose JSON form is six times its
# size (control characters are escaped as \u00XX).
q $DB "CREATE TABLE blob (body text); ALTER TABLE blob REPLICA IDENTITY FULL;
       CREATE TABLE ctl (k text PRIMARY KEY, n int);"
q $DB "INSERT INTO blob SELECT string_agg(md5(g::text), '') FROM generate_series(1, 100) g"
q $DB "INSERT INTO ctl SELECT string_agg(chr(1 + (g * 7) % 30) || chr(1 + (g * 13) % 29), ''), 1 FROM generate_series(1, 400) g"
q $DB "UPDATE ctl SET n = 2"
q $DB "INSERT INTO item VALUES (9, 'after huge keys')"
run_to_now "$TEST_TMP/run2.log" --source "$SRC" --slot poison
expect_eq "the change after the huge keys is recorded" \
  "$(q $DB "$H SELECT count(*) FROM object_delta_arrays WHERE relid = 'public.item'::regclass AND new_values[1] = '9'")" "1"
expect_eq "a 3200-byte row of a table without a key: a synthetic identity, its value stored whole" \
  "$(q $DB "$H SELECT d.key ~ '^#[0-9]+\.[0-9]+$', d.new_values[1] = (SELECT body FROM public.blob) FROM object_delta_arrays d WHERE relid = 'public.blob'::regclass")" "t|t"
expect_eq "a key whose JSON is 4800 bytes: digest key, and the update found its old value through it" \
  "$(q $DB "$H SELECT string_agg(d.op::text || ':' || (d.key = (SELECT '[\"sha256:' || encode(sha256(convert_to(k, 'UTF8')), 'hex') || '\"]' FROM public.ctl))::text || ':' || coalesce(d.old_values::text, '-'), ',' ORDER BY d.revision_id) FROM object_delta_arrays d WHERE relid = 'public.ctl'::regclass")" "I:true:-,U:true:{1}"
expect_eq "the newest rows of the history equal the live table" \
  "$(q $DB "$H SELECT vals[1] = (SELECT k FROM public.ctl), vals[2] FROM current_rows('public.ctl'::regclass)")" "t|2"
expect_verify "verify passes after the huge keys"
