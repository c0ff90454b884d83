#!/usr/bin/env bash
# A table that joins the publication after setup has its stream changes in
# the history before its baseline records the rows they did not touch. At a
# point in between, the history alone holds a fraction of the table: a
# snapshot there is refused by name (while the baseline is pending, and for
# good once it is done, naming the revision it completed in), never answered
# with the stream's rows alone; from that revision on it equals the table. A
# table there at setup is never refused. (A partitioned parent with such a
# member: test_late_member_whole.)
source "$(dirname "$0")/lib.sh"
source_db whole_src whole
wpid=; lpid=
kill_at_exit TERM lpid
kill_at_exit 9 wpid
late_tables_conf 2

q $DB "CREATE TABLE base (id int PRIMARY KEY, v text);
       INSERT INTO base VALUES (1, 'b1');
       CREATE TABLE late (id int PRIMARY KEY, v text);
       INSERT INTO late SELECT g, 'l' || g FROM generate_series(1, 5) g;
       CREATE TABLE late2 (id int PRIMARY KEY, v text);
       INSERT INTO late2 SELECT g, 'p' || g FROM generate_series(1, 4) g;"
w_setup

# With the worker stopped: the tables join, and one change of each is
# streamed before any baseline can read them.
q $DB "ALTER PUBLICATION walrev ADD TABLE late, late2;"
q_at L1 "UPDATE late SET v = 'in' WHERE id = 3; UPDATE late2 SET v = 'in' WHERE id = 2;"
q $DB "UPDATE base SET v = 'after' WHERE id = 1"

# The baseline cannot read late (locked): once the worker holds the stream's
# change of it, the table stays pending.
PGAPPNAME=whole_locker $PSQL -d $DB -c "BEGIN; LOCK TABLE late IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600)" \
  >/dev/null 2>&1 &
lpid=$!
locked() { [ "$(q $DB "SELECT count(*) FROM pg_locks WHERE relation = 'public.late'::regclass AND granted
                        AND mode = 'AccessExclusiveLock'")" = 1 ]; }
wait_for 10 locked || fail "the lock was not taken"
worker_up -c "$TMP/walrev.conf" --source "$SRC" --slot "$SLOT"
state_not() { [ "$(backfill_state "$1")" != "$2" ]; }
wait_for 60 state_not late none || { tail -20 "$LOG"; fail "no backfill row for late"; }
expect_snapshot_refused late "$L1" "while its baseline is pending" \
  "table late is incomplete at revision [0-9]*: it joined the publication after setup and its baseline is \(requested\|running\)" \
  "the refusal names the pending baseline"
pass "while its baseline is pending, late is refused ($(backfill_state late))"

# The lock goes; the baselines finish.
q $DB "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'whole_locker'" >/dev/null
wait "$lpid" 2>/dev/null || true
lpid=
for t in late late2; do
  wait_for 60 backfill_state_is $t done ||
    { tail -20 "$LOG"; fail "the baseline of $t did not finish ($(backfill_state $t))"; }
done
marker_catch_up base 600
expect_clean_stop "the worker stops cleanly"

expect_whole_from late
whole=$WHOLE
expect_snapshot_refused late "$L1" "before its baseline" \
  "table late is incomplete at revision [0-9]*: it joined the publication after setup and its baseline completed in revision $whole" \
  "the refusal names the revision the baseline completed in"
expect_snapshot_refused late2 "$L1" "before its baseline" \
  "table late2 is incomplete at revision [0-9]*: .*its baseline completed in revision" "late2's refusal"
pass "before their baselines, late and late2 are refused, naming where they became whole"

expect_like_table "from its baseline on, late equals the table" late "$(W snapshot --table late --at "$whole" | sort)"
expect_like_table "late2 at the newest point equals the table" late2 "$(W snapshot --table late2 | sort)"
expect_eq "a table there at setup is never refused" "$(W snapshot --table base --at "$L1")" "1	b1"
pass "from their baselines on, the tables equal the source"
