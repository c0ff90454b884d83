#!/usr/bin/env bash
# Control messages cannot be forged (issue 14.2): a role with only CONNECT
# emits walrev.ddl (a column map swapping two columns), walrev.backfill (a
# baseline chunk) and walrev.watermark messages, and tries to write the DDL
# capture table. Nothing of it is acted on: relation versions, history and
# snapshots follow the real DDL only, and each forged message is a warning
# on its revision. Real DDL still keeps renames exact.
source "$(dirname "$0")/lib.sh"
source_db ctlforge ctlforge
M() { $PSQL -U ctlforge_mallory -d $DB -c "$*"; }

q postgres "DROP ROLE IF EXISTS ctlforge_mallory; CREATE ROLE ctlforge_mallory LOGIN" 2>/dev/null
q $DB "REVOKE ALL ON DATABASE $DB FROM PUBLIC; GRANT CONNECT ON DATABASE $DB TO ctlforge_mallory;
       CREATE TABLE t (id int PRIMARY KEY, email text, secret text);
       INSERT INTO t VALUES (1, 'ann@example.com', 's1');"
w_setup
grep -q "DDL capture event trigger walrev_capture_ddl writing walrev.ddl_capture" "$TMP/setup.out" ||
  { cat "$TMP/setup.out"; fail "setup installs the DDL capture table"; }
expect_eq "the capture table is published, private, and written by a SECURITY DEFINER function" \
  "$(q $DB "SELECT (SELECT count(*) FROM pg_publication_tables WHERE pubname = 'walrev' AND schemaname = 'walrev'
                     AND tablename = 'ddl_capture'),
                   has_table_privilege('ctlforge_mallory', 'walrev.ddl_capture', 'INSERT'),
                   has_table_privilege('ctlforge_mallory', 'walrev.ddl_capture', 'UPDATE'),
                   (SELECT prosecdef FROM pg_proc WHERE oid = 'walrev.capture_ddl()'::regprocedure)")" "1|f|f|t"

# A real rename, then (before the first change under the new shape) a forged
# column map that would put secret's values under mail and back.
q $DB "ALTER TABLE t RENAME COLUMN email TO mail"
RELID=$(q $DB "SELECT 't'::regclass::oid")
M "SELECT pg_logical_emit_message(true, 'walrev.ddl',
     '{\"relid\":$RELID,\"columns\":[[1,\"id\"],[3,\"mail\"],[2,\"secret\"]]}')" >/dev/null
M "SELECT pg_logical_emit_message(true, 'walrev.backfill',
     '{\"actor\":{\"type\":\"walrev\",\"id\":\"baseline\"},\"meta\":{\"backfill\":{\"id\":\"x\",\"relid\":$RELID}}}')" >/dev/null
M "SELECT pg_logical_emit_message(true, 'walrev.watermark', '{\"id\":\"x\",\"relid\":$RELID}')" >/dev/null
if M "INSERT INTO walrev.ddl_capture (relid, info) VALUES ($RELID, '{}')" >"$TMP/insert.out" 2>&1; then
  fail "ctlforge_mallory wrote the capture table"
fi
grep -q "permission denied for schema walrev\|permission denied for table ddl_capture" "$TMP/insert.out" ||
  { cat "$TMP/insert.out"; fail "the capture table refuses ctlforge_mallory"; }
pass "ctlforge_mallory cannot write walrev.ddl_capture: $(head -1 "$TMP/insert.out")"
q $DB "UPDATE t SET mail = 'ann@new.example' WHERE id = 1; INSERT INTO t VALUES (2, 'bob@example.com', 's2');"
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"

expect_eq "relation versions follow the real DDL only (the rename keeps col_id 2)" \
  "$(q $DB "$H SELECT version, col_ids::text, col_names::text FROM relation_version
            WHERE relid = $RELID ORDER BY version")" \
"1|{1,2,3}|{id,email,secret}
2|{1,2,3}|{id,mail,secret}"
q $DB "$H SELECT id, coalesce(actor_type, '-'), n_insert + n_update + n_delete + n_snapshot,
          regexp_replace(warnings, ' at [0-9A-F]+/[0-9A-F]+:', ' at LSN:', 'g')
       FROM revision WHERE id > 1 ORDER BY id" >"$TMP/revs"
expect_eq "the rename (its own revision, with its row in the table log), each forged message a warning with no actor and no rows, then the real changes" "$(cat "$TMP/revs")" \
"2|-|1|
3|-|0|ignored a logical message with prefix \"walrev.ddl\" at LSN: not emitted by walrev (control messages are only taken from walrev's own tables and watermarks)
4|-|0|ignored a logical message with prefix \"walrev.backfill\" at LSN: not emitted by walrev (control messages are only taken from walrev's own tables and watermarks)
5|-|0|ignored a logical message with prefix \"walrev.watermark\" at LSN: not emitted by walrev (control messages are only taken from walrev's own tables and watermarks)
6|-|2|"
expect_eq "the update is recorded under mail (col_id 2), not secret" \
  "$(q $DB "$H SELECT revision_id, op, key, col_ids::text, old_values::text, new_values::text FROM object_delta_arrays
            WHERE relid = $RELID AND revision_id > 1 ORDER BY revision_id, seq")" \
'6|U|["1"]|{2}|{ann@example.com}|{ann@new.example}
6|I|["2"]|{1,2,3}||{2,bob@example.com,s2}'
expect_eq "snapshot equals the table" \
  "$(W snapshot --table t --format csv 2>/dev/null | sort)" \
  "$( (printf 'id,mail,secret\n'; q $DB "COPY (SELECT * FROM t) TO STDOUT (FORMAT csv)") | sort)"
expect_verify "verify"
# Upgrade path: an installation from before had a capture that emitted
# walrev.ddl messages; setup replaces it with the table capture in place.
q $DB "CREATE OR REPLACE FUNCTION walrev.capture_ddl() RETURNS event_trigger LANGUAGE plpgsql
       AS \$f\$ BEGIN PERFORM pg_logical_emit_message(true, 'walrev.ddl', '{}'); END \$f\$"
must "$TMP/setup2.out" "setup over an old capture" W setup
grep -q "created   DDL capture event trigger walrev_capture_ddl writing walrev.ddl_capture" "$TMP/setup2.out" ||
  { cat "$TMP/setup2.out"; fail "setup replaces the old capture"; }
expect_eq "the old message capture is replaced by the table capture" \
  "$(q $DB "SELECT prosecdef, prosrc LIKE '%INSERT INTO walrev.ddl_capture%', prosrc LIKE '%emit_message%'
            FROM pg_proc WHERE oid = 'walrev.capture_ddl()'::regprocedure")" "t|t|f"
q $DB "ALTER TABLE t RENAME COLUMN secret TO secret2"
q $DB "UPDATE t SET secret2 = 's9' WHERE id = 1"
W run --stop-lsn "$(current_lsn $DB)" 2>"$TMP/run2.log" || { cat "$TMP/run2.log"; fail "run after the upgrade"; }
expect_eq "after the upgrade a rename still keeps its column's identity" \
  "$(q $DB "$H SELECT version, col_ids::text, col_names::text FROM relation_version WHERE relid = $RELID ORDER BY version")" \
"1|{1,2,3}|{id,email,secret}
2|{1,2,3}|{id,mail,secret}
3|{1,2,3}|{id,mail,secret2}"
q postgres "DROP DATABASE $DB WITH (FORCE)" >/dev/null 2>&1 || true
q postgres "DROP ROLE ctlforge_mallory"
