#!/usr/bin/env bash
# A table dropped while the slot was lost: the gap revision records its drop
# (it reconciles the table log first), so a snapshot at or after the gap says
# the table was dropped there, and before the gap it answers its rows as the
# history held them. (docs/history-store.md, Gaps.)
source "$(dirname "$0")/lib.sh"
source_db gap_drop_src gapdrop
wpid=
kill_at_exit 9 wpid
q $DB "CREATE TABLE m (id int PRIMARY KEY, v text); INSERT INTO m VALUES (1, 'm');
       CREATE TABLE d (id int PRIMARY KEY, v text); INSERT INTO d SELECT g, 'd' || g FROM generate_series(1, 3) g;
       CREATE TABLE dk (a int, b text); INSERT INTO dk VALUES (1, 'k'), (1, 'k');"
w_setup
worker_up --source "$SRC" --slot $SLOT
q $DB "UPDATE d SET v = 'x' WHERE id = 2"
marker_catch_up m 300
before=$(q $DB "SET search_path = walrev; SELECT max(id) FROM revision")
worker_down

wait_for 30 slot_idle || fail "the slot stayed active after the worker stopped"
q $DB "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null
q $DB "DROP TABLE d; DROP TABLE dk"
must "$TMP/setup2.out" "setup after the slot was dropped" W setup
gap=$(q $DB "SET search_path = walrev; SELECT max(id) FROM revision WHERE actor_type = 'walrev' AND actor_id = 'gap'")
[ -n "$gap" ] || { cat "$TMP/setup2.out"; fail "no gap revision"; }

for t in d dk; do
  for at in "$gap" ""; do
    out=$(W snapshot --table $t ${at:+--at "$at"} 2>&1) && fail "a snapshot of $t after the gap answered: $out"
    grep -q "table $t did not exist at revision [0-9]*: it was dropped in revision $gap" <<<"$out" ||
      fail "the snapshot of $t says it was dropped in the gap revision: $out"
  done
done
pass "at and after the gap revision $gap, d and dk say they were dropped there"
expect_eq "before the gap, d answers its rows" "$(W snapshot --table d --at "$before" 2>/dev/null | sort)" \
  "$(printf '1\td1\n2\tx\n3\td3')"
expect_eq "before the gap, dk answers its two equal rows" "$(W snapshot --table dk --at "$before" 2>/dev/null)" \
  "$(printf '1\tk\n1\tk')"
