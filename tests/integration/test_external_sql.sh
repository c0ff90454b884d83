#!/usr/bin/env bash
# tests/difftest/external.py on the small SQL directory tests/difftest/external
# (statements the random difftest lacks: SET SCHEMA, INHERITS, CREATE TABLE AS
# and SELECT INTO, REPLICA IDENTITY USING INDEX, ON CONFLICT, DROP and
# re-CREATE of a name, SET DEFAULT, unique index without a key, composite,
# enum, domain and range columns, TRUNCATE ... CASCADE, a transaction left
# prepared, an error naming the database, two COPY ... FROM stdin in one
# line, semicolons inside literals and nested comments, regclass/regtype/regproc
# values in a rewrite's rows, date/time values with PGDATESTYLE in walrev's
# environment and other styles in the application's session, which starts
# with IntervalStyle sql_standard, DDL under session_replication_role =
# replica, ALTER SCHEMA ... RENAME TO, columns of extensions' types with
# intarray's operators installed beside walrev's history functions; pgbench,
# 4 clients moving rows across range partitions, through a .sh file), each
# file fed in 3 parts with points between (--marks 3), the worker restarted
# half way, and stopped by SIGTERM or SIGKILL every 0.3-3 s during the files
# and right after DDL at marks (--chaos): every table equals `walrev snapshot` at every
# point, outside
# tests/difftest/external/known.txt, and no statement fails only because the
# database is tracked. The same runner takes any directory of SQL
# (docs/difftest.md, "SQL nobody here wrote").
source "$(dirname "$0")/lib.sh"
py=
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import psycopg2' 2>/dev/null; then py=$p; break; fi
done
[ -n "$py" ] || fail "needs Python 3 with psycopg2"
work=$TEST_TMP
dir=$WALREV_SOURCE_DIR/tests/difftest/external
rc=0
# PGDATESTYLE reaches every libpq connection, the worker's too (external.py
# is documented to run so, as PostgreSQL's regression suite does)
out=$(PGDATESTYLE="Postgres, MDY" "$py" "$WALREV_SOURCE_DIR/tests/difftest/external.py" --sql-dir "$dir" --prelude "$dir/prelude.psql" \
        --known "$dir/known.txt" --walrev "$WALREV_BIN" --workdir "$work" --db walrev_external_ci \
        --marks 3 --restart-after 2 --chaos 5 --timeout 120 --psql-setting IntervalStyle=sql_standard \
        --conninfo-base "host=127.0.0.1 port=$(cat "$WALREV_TEST_PGDIR/port") user=postgres" 2>&1) || rc=$?
echo "$out"
[ $rc = 0 ] || fail "external SQL diverged (or walrev got in its way)"
# the run covered what it claims: every file, every kind, the restart
for f in 01_schema_moves 02_inherit_ctas 03_identity_conflict 04_types_truncate 05_prepared 06_copy_twice 07_quoted_semicolons 08_reg_names 09_value_styles 10_replica_role 11_schema_rename 12_extension_types 13_pgbench; do
  grep -Eq "^external: $f.(sql|sh): .* 0 only where tracked" <<<"$out" || fail "no clean run of $f"
done
grep -q "^number of failed transactions: 0 " "$work/13_pgbench.sh.out" || fail "pgbench did not run its transactions"
grep -Eq "^external: chaos: .*after DDL SIG.*timer SIG" <<<"$out" || fail "--chaos did not stop the worker after DDL and on its timer"
grep -q "^  partition " <<<"$out" || fail "no partition was compared"
if grep -q "FAILED: the worker failed" <<<"$out"; then fail "the worker exited by itself"; fi
grep -A3 "^SHOW IntervalStyle" "$work/09_value_styles.sql.out" | grep -q " sql_standard$" \
  || fail "the application's sessions did not start with --psql-setting IntervalStyle=sql_standard"
grep -q "worker restarted after 02_inherit_ctas.sql" <<<"$out" || fail "the worker was not restarted"
grep -q "^external: 05_prepared.sql left prepared transactions, rolled back after its point: external_px_left (control: external_px_left)$" <<<"$out" \
  || fail "the transaction 05_prepared.sql left prepared was not rolled back in both databases"
for k in inherit_child replident_index keyless keyed; do
  grep -Eq "^  $k +([0-9]+)/\1 *$" <<<"$out" || fail "kind $k not all equal"
done
psql -X -q -h 127.0.0.1 -p "$(cat "$WALREV_TEST_PGDIR/port")" -U postgres -d postgres \
  -c "SELECT pg_drop_replication_slot('walrev_external_ci')" \
  -c "DROP DATABASE walrev_external_ci WITH (FORCE)" -c "DROP DATABASE walrev_external_ci_control WITH (FORCE)" >/dev/null
pass "external SQL: every table equals its snapshot after every file"
