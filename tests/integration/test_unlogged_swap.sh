#!/usr/bin/env bash
# An unlogged table whose name passes to a logged table (a swap of names): a
# snapshot under that name at a point before the swap names the unlogged
# table that had it then, instead of saying the logged table did not exist
# yet, or answering with the logged table's rows (found by tests/difftest seed 106: an unlogged table has no relation
# version, so the name it had then was never matched).
source "$(dirname "$0")/lib.sh"
source_db unlogged_swap unlogged_swap

q $DB "CREATE UNLOGGED TABLE u (id int PRIMARY KEY, v text); INSERT INTO u VALUES (1, 'scratch');
       CREATE TABLE k (id int PRIMARY KEY, w text); INSERT INTO k VALUES (1, 'kept')"
w_setup
q $DB "INSERT INTO k VALUES (2, 'kept too')"
P0=$(current_lsn $DB)
q $DB "BEGIN; ALTER TABLE u RENAME TO tmp; ALTER TABLE k RENAME TO u; ALTER TABLE tmp RENAME TO k; COMMIT"
q $DB "INSERT INTO u VALUES (3, 'kept three')"
P1=$(current_lsn $DB)
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"

snap() { W snapshot --at "$1" --table "$2" 2>&1 | tail -n +2 | sort; }
rc=0; W snapshot --at "$P0" --table u >"$TMP/p0u.out" 2>&1 || rc=$?
expect_eq "before the swap, u (unlogged then) fails" "$rc" 1
grep -q "table public.u is unlogged" "$TMP/p0u.out" || { cat "$TMP/p0u.out"; fail "before the swap, u is named unlogged"; }
expect_eq "before the swap, k is the logged table" "$(snap "$P0" k)" "$(printf '1\tkept\n2\tkept too')"
expect_eq "after the swap, u is the logged table" "$(snap "$P1" u)" "$(printf '1\tkept\n2\tkept too\n3\tkept three')"
rc=0; W snapshot --at "$P1" --table k >"$TMP/p1k.out" 2>&1 || rc=$?
expect_eq "after the swap, k (unlogged now) fails" "$rc" 1
grep -q "table public.k is unlogged" "$TMP/p1k.out" || { cat "$TMP/p1k.out"; fail "after the swap, k is named unlogged"; }
pass "a name an unlogged table passed on is answered for the table that had it then"
