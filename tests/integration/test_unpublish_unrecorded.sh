#!/usr/bin/env bash
# A tracked table that leaves the publication where the table log's
# walrev_note_published trigger is not installed (setup not run as a
# superuser, or an installation from before it; here the trigger is
# dropped): the removal cannot be recorded, and replay would answer the
# table's rows as they were when it left. The worker names each such table
# in a warning, once per run. A removal the table log recorded is not named
# (test_unpublish covers that case), also once `walrev setup` run again on
# an older installation has put the trigger in.
source "$(dirname "$0")/lib.sh"
source_db unpublish_unrecorded unpubunrec
source_conf unpubunrec <<'CONF'
publication = unrecpub
CONF

q $DB "CREATE TABLE base (id int PRIMARY KEY, v text); CREATE TABLE t (id int PRIMARY KEY, v text);
       CREATE TABLE gone (id int PRIMARY KEY); CREATE TABLE u (id int PRIMARY KEY); INSERT INTO t VALUES (1, 'a');
       CREATE PUBLICATION unrecpub FOR TABLE base, t, gone, u"
W setup >"$TMP/setup.out" 2>&1 || { cat "$TMP/setup.out"; fail setup; }
q $DB "ALTER PUBLICATION unrecpub DROP TABLE u"
q $DB "DROP EVENT TRIGGER walrev_note_published"
q $DB "ALTER PUBLICATION unrecpub DROP TABLE t, gone; DROP TABLE gone; UPDATE t SET v = 'b'"
run_to_now "$LOG" -c "$TEST_TMP/walrev.conf"
expect_eq "the table that left unrecorded is named once, with the publication" \
  "$(grep -c 'msg="a tracked table left the publication unrecorded (.*" table=public.t publication=unrecpub' "$LOG")" 1
expect_eq "a table dropped after it left is not (its drop is recorded)" "$(grep -c 'table=public.gone' "$LOG")" 0
expect_eq "a table whose removal the table log recorded is not" "$(grep -c 'table=public.u' "$LOG")" 0
expect_eq "one warning in all" "$(grep -c 'a tracked table left the publication unrecorded' "$LOG")" 1

# An installation from before the trigger (its table log marked with an
# older version's hash, the trigger absent): `walrev setup` run again
# installs it, and a removal after that is recorded, named by no warning
q $DB "COMMENT ON TABLE walrev.table_log IS 'walrev table log 0'"
W setup >"$TMP/setup2.out" 2>&1 || { cat "$TMP/setup2.out"; fail "setup run again"; }
expect_eq "setup run again installs the trigger" \
  "$(q $DB "SELECT count(*) FROM pg_event_trigger WHERE evtname = 'walrev_note_published' AND evtenabled = 'A'")" 1
q $DB "ALTER PUBLICATION unrecpub DROP TABLE base"
run_to_now "$TMP/run2.log" -c "$TEST_TMP/walrev.conf"
expect_eq "the removal after it is recorded" \
  "$(q $DB "SELECT event FROM walrev.table_log WHERE relid = 'public.base'::regclass ORDER BY id DESC LIMIT 1")" unpublished
expect_eq "and only t, still unrecorded, is named again" \
  "$(grep -o 'left the publication unrecorded.* table=[a-z.]*' "$TMP/run2.log" | sed 's/.* table=//')" public.t
