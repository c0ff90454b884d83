#!/usr/bin/env bash
# A table renamed by ALTER INDEX (PostgreSQL accepts ALTER INDEX t RENAME TO
# for a table, for compatibility; found by tests/difftest/external.py on
# PostgreSQL's alter_table.sql). The table log and the DDL capture listened
# for CREATE/ALTER TABLE only, so a partitioned table or a table without a
# change since the rename was "unknown table" under its new name. Both now
# hear ALTER INDEX too (an index itself is skipped, as before).
source "$(dirname "$0")/lib.sh"
source_db rename_via_index renameviaindex

q $DB "CREATE TABLE before_setup (id int PRIMARY KEY, v text); INSERT INTO before_setup VALUES (1, 'a'), (2, 'b')"
w_setup
q $DB "CREATE TABLE pt (a int, b text) PARTITION BY LIST (a);
       CREATE TABLE pt1 PARTITION OF pt FOR VALUES IN (1);
       INSERT INTO pt VALUES (1, 'x'), (1, 'y');
       CREATE TABLE quiet (id int PRIMARY KEY);
       CREATE INDEX quiet_idx ON quiet (id);"
q_at END "ALTER INDEX pt RENAME TO pt_renamed; ALTER INDEX before_setup RENAME TO after_rename;
       ALTER INDEX quiet RENAME TO quiet2; ALTER INDEX quiet_idx RENAME TO quiet_idx2"
run_to "$END" "$LOG" --source "$SRC" --slot renameviaindex

expect_eq "a partitioned table renamed by ALTER INDEX answers under its new name" \
  "$(W snapshot --at "$END" --table pt_renamed 2>"$TMP/e1" | sort)" "$(printf '1\tx\n1\ty')"
expect_eq "a table tracked before setup, renamed by ALTER INDEX, never changed since" \
  "$(W snapshot --at "$END" --table after_rename 2>"$TMP/e2" | sort)" "$(printf '1\ta\n2\tb')"
expect_eq "a table never written, renamed by ALTER INDEX, is empty under its new name" \
  "$(W snapshot --at "$END" --table quiet2 2>"$TMP/e3"; echo "rc=$?")" "rc=0"
expect_eq "its old name finds it too (docs/replay.md: new and old names)" \
  "$(W snapshot --at "$END" --table pt 2>"$TMP/e4" | sort)" "$(printf '1\tx\n1\ty')"
W verify >/dev/null 2>&1 || fail verify
pass "verify passes"
