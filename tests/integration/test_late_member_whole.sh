#!/usr/bin/env bash
# A partitioned table whose new partition joins the publication after setup
# with rows of its own (a table made outside it, then attached): the
# partition's change can reach the history before its baseline records its
# other rows. A snapshot of the parent at a point before that baseline
# completed is refused, naming the member (test_late_table_whole has a table
# of its own); from the baseline on, the parent equals the table.
source "$(dirname "$0")/lib.sh"
source_db wholem_src wholem
wpid=
kill_at_exit 9 wpid
printf '[source]\ntables = public.base, public.lq\n' >"$TMP/walrev.conf"
W() { "$WALREV_BIN" -c "$TMP/walrev.conf" --source "$SRC" --slot "$SLOT" "$@"; }

q $DB "CREATE TABLE base (id int PRIMARY KEY, v text);
       INSERT INTO base VALUES (1, 'b1');
       CREATE TABLE lq (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
       CREATE TABLE lq1 PARTITION OF lq FOR VALUES FROM (0) TO (100);
       INSERT INTO lq SELECT g, 'q' || g FROM generate_series(1, 4) g;
       CREATE TABLE lq2 (id int PRIMARY KEY, v text);
       INSERT INTO lq2 SELECT g, 'u' || g FROM generate_series(101, 105) g;"
w_setup

# With the worker stopped, lq2 becomes a partition and one of its rows
# changes: the stream holds that change before any baseline can read lq2.
q $DB "ALTER TABLE lq ATTACH PARTITION lq2 FOR VALUES FROM (100) TO (200)"
q_at L1 "UPDATE lq SET v = 'in' WHERE id = 102"
worker_up -c "$TMP/walrev.conf" --source "$SRC" --slot "$SLOT"
wait_for 60 backfill_state_is lq2 done || { tail -20 "$LOG"; fail "the baseline of lq2 did not finish"; }
marker_catch_up base 600
expect_clean_stop "the worker stops cleanly"

expect_whole_from lq2
whole=$WHOLE
expect_snapshot_refused lq "$L1" "before its member's baseline" \
  "table lq is incomplete at revision [0-9]*: it joined the publication after setup and its baseline (its member public.lq2's) completed in revision $whole" \
  "the parent's refusal names its member and the revision"
pass "before its member's baseline, lq is refused, naming lq2 and revision $whole"
expect_like_table "from the baseline on, lq equals the table" lq "$(W snapshot --table lq --at "$whole" | sort)"
pass "lq equals the source from revision $whole"
