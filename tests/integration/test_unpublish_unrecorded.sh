#!/usr/bin/env bash
# A tracked table that leaves the publication where the table log's
# walrev_note_published trigger is not installed (setup not run as a
# superuser, or an installation from before it; here the trigger is
# dropped): the removal cannot be recorded, and replay would answer the
# table's rows as they were when it left, silently (before: snapshot of t
# at a later point gave the old rows, exit 0, verify passed; the worker
# only logged a warning). So `walrev run` refuses to start on a publication
# that is not FOR ALL TABLES while the trigger is missing or disabled, and
# stops when it goes while it runs, naming the publication, the trigger's
# state and both remedies (setup as a superuser; or [source]
# allow_unrecorded_leaves = true, which accepts it). Allowed, the worker
# names each such table in a warning, once per run. A removal the table log
# recorded is not named (test_unpublish covers that case), also once
# `walrev setup` run again on an older installation has put the trigger in.
source "$(dirname "$0")/lib.sh"
source_db unpublish_unrecorded unpubunrec
source_conf unpubunrec <<'CONF'
publication = unrecpub
CONF
cp "$TEST_TMP/walrev.conf" "$TMP/strict.conf"
sed -i 's/^publication = unrecpub$/publication = unrecpub\nallow_unrecorded_leaves = true/' "$TEST_TMP/walrev.conf"
REFUSAL="publication unrecpub: a table that leaves it would not be recorded, the table log's trigger walrev_note_published is"
REMEDY="run walrev setup once as a superuser (it installs the trigger), or accept that with \[source\] allow_unrecorded_leaves = true"
wpid=
kill_at_exit 9 wpid

q $DB "CREATE TABLE base (id int PRIMARY KEY, v text); CREATE TABLE t (id int PRIMARY KEY, v text);
       CREATE TABLE gone (id int PRIMARY KEY); CREATE TABLE u (id int PRIMARY KEY); INSERT INTO t VALUES (1, 'a');
       CREATE PUBLICATION unrecpub FOR TABLE base, t, gone, u"
W setup >"$TMP/setup.out" 2>&1 || { cat "$TMP/setup.out"; fail setup; }
q $DB "ALTER PUBLICATION unrecpub DROP TABLE u"
# running when the trigger goes: the worker stops at its next check (every 10 s)
worker_start "$TMP/strict.log" -c "$TMP/strict.conf"
wpid=$WORKER_PID
wait_for 60 q_is $DB "SELECT active FROM pg_replication_slots WHERE slot_name = '$SLOT'" t ||
  { tail -5 "$TMP/strict.log"; fail "the worker did not start streaming"; }
q $DB "ALTER EVENT TRIGGER walrev_note_published DISABLE"
wait_for 60 bash -c "! kill -0 $wpid 2>/dev/null" || fail "the worker went on with the trigger disabled"
rc=0; wait "$wpid" || rc=$?
wpid=
[ "$rc" != 0 ] || fail "the worker stopped with status 0 when the trigger was disabled"
grep -q "$REFUSAL disabled (walrev setup not run as a superuser, or dropped or disabled since), and snapshot, diff and blame would answer its rows as of its leave at every later point, silently; $REMEDY" \
  "$TMP/strict.log" || { tail -5 "$TMP/strict.log"; fail "the worker's stop names the publication, the trigger's state and the remedies"; }
pass "the worker stops when the trigger is disabled while it runs"
q $DB "ALTER EVENT TRIGGER walrev_note_published ENABLE ALWAYS"
q $DB "DROP EVENT TRIGGER walrev_note_published"
rc=0
"$WALREV_BIN" -c "$TMP/strict.conf" run --stop-lsn "$(current_lsn "$DB")" >"$TMP/refused.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "run started without the trigger"
grep -q "$REFUSAL not installed (.*$REMEDY" "$TMP/refused.out" || { cat "$TMP/refused.out"; fail "run's refusal names it"; }
pass "run refuses to start without the trigger"
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
