#!/usr/bin/env bash
# demo.sh — THE demo: builds walrev, starts a private PostgreSQL in
# ./.walrev-demo, creates a small invoicing database, runs `walrev setup`, a
# workload whose transactions name their actor with walrev.context(), prints
# the decoded replication stream of that workload, then runs `walrev run` up to
# the end of the workload and shows `walrev log`, `walrev show` and
# `walrev snapshot`, `walrev blame` and `walrev verify`. With --kafka the
# worker also streams to librdkafka's mock Kafka cluster (started here) and
# `walrev tail` reads the stream back. The cluster is stopped on exit unless
# --keep is given.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
keep=0
kafka=0
for a in "$@"; do
  case "$a" in
    --keep) keep=1 ;;
    --kafka) kafka=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "usage: scripts/demo.sh [--keep] [--kafka]" >&2; exit 2 ;;
  esac
done

demo=$root/.walrev-demo
build=$root/build
pgcluster=$root/tests/support/pgcluster.sh

section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

section "dependencies and build"
bash scripts/deps.sh
cmake -S "$root" -B "$build" -DWALREV_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target walrev-capture walrev-mock-kafka >/dev/null
have_walrev=1
if ! cmake --build "$build" -j"$(nproc)" --target walrev >"$build/walrev-demo-build.log" 2>&1; then
  have_walrev=0
  echo "walrev did not build (see $build/walrev-demo-build.log); the demo shows the decoded stream only"
fi

walrev=$build/worker/walrev
capture=$build/tools/walrev-capture

section "PostgreSQL in $demo"
# synchronous_commit on: pg_current_wal_lsn() then covers every commit of the workload.
PG_SYNC_COMMIT=on bash "$pgcluster" start "$demo/pg"
mock_pid=
stop_all() {
  [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null
  [ "$keep" = 0 ] && bash "$pgcluster" stop "$demo/pg" >/dev/null
  return 0
}
trap stop_all EXIT
config=$demo/walrev.conf
: >"$config"
if [ "$kafka" = 1 ]; then
  "$build/tools/walrev-mock-kafka" 1 >"$demo/kafka.bootstrap" 2>"$demo/kafka.log" &
  mock_pid=$!
  for _ in $(seq 50); do [ -s "$demo/kafka.bootstrap" ] && break; sleep 0.1; done
  brokers=$(head -1 "$demo/kafka.bootstrap")
  printf '[kafka]\nbootstrap.servers = %s\ntopic_prefix = demo\n' "$brokers" >"$config"
  echo "mock Kafka cluster (librdkafka) at $brokers"
fi
admin=$(bash "$pgcluster" conninfo "$demo/pg" postgres)
source_ci=$(bash "$pgcluster" conninfo "$demo/pg" demo)
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql "$admin" -o /dev/null -c "SET client_min_messages = warning" \
     -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = 'demo'" \
     -c "DROP DATABASE IF EXISTS demo WITH (FORCE)" -c "CREATE DATABASE demo"
psql "$source_ci" <<'SQL'
CREATE TABLE customer (
  id serial PRIMARY KEY,
  name text NOT NULL,
  email text
);
CREATE TABLE invoice (
  id serial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customer(id),
  status text NOT NULL DEFAULT 'draft',
  approved_at timestamptz
);
CREATE TABLE invoice_line (
  id serial PRIMARY KEY,
  invoice_id int NOT NULL REFERENCES invoice(id),
  item text NOT NULL,
  quantity int NOT NULL,
  unit_price numeric(10,2) NOT NULL
);
SQL
echo "created tables customer, invoice, invoice_line in database demo"

section "walrev setup"
publication=walrev
if [ "$have_walrev" = 1 ] && "$walrev" -c "$config" --source "$source_ci" setup; then
  setup_ok=1
else
  setup_ok=0
  echo "walrev setup is not available yet: creating the publication and walrev.context() by hand"
  publication=walrev_demo
  psql "$source_ci" <<'SQL'
CREATE PUBLICATION walrev_demo FOR ALL TABLES;
CREATE SCHEMA IF NOT EXISTS walrev;
CREATE FUNCTION walrev.context(ctx text) RETURNS pg_lsn LANGUAGE sql
  AS $$ SELECT pg_logical_emit_message(true, 'walrev', ctx) $$;
SQL
fi

section "workload (each transaction names its actor)"
workload=$(mktemp /tmp/walrev-demo-workload.XXXXXX.sql)
cat >"$workload" <<'SQL'
-- @workload
BEGIN;
SELECT walrev.context('{"actor":{"type":"user","id":"42"},"description":"create invoice"}');
INSERT INTO customer (name, email) VALUES ('ACME Corp', 'billing@acme.example');
INSERT INTO invoice (customer_id) VALUES (1);
INSERT INTO invoice_line (invoice_id, item, quantity, unit_price) VALUES
  (1, 'widget', 10, 2.50), (1, 'gadget', 1, 99.00);
COMMIT;
BEGIN;
SELECT walrev.context('{"actor":{"type":"user","id":"42"},"description":"approve invoice"}');
UPDATE invoice SET status = 'approved', approved_at = '2024-05-01 12:00:00+00' WHERE id = 1;
COMMIT;
BEGIN;
SELECT walrev.context('{"actor":{"type":"service","id":"billing"},"description":"apply 10% discount"}');
UPDATE invoice_line SET unit_price = round(unit_price * 0.9, 2) WHERE invoice_id = 1;
COMMIT;
UPDATE customer SET email = 'ap@acme.example' WHERE id = 1;
BEGIN;
SELECT walrev.context('{"actor":{"type":"user","id":"7"},"description":"draft and discard"}');
INSERT INTO invoice (customer_id) VALUES (1);
DELETE FROM invoice WHERE id = 2;
COMMIT;
SQL
grep -v '^--' "$workload"

section "the replication stream of that workload, decoded (walrev-capture --print)"
# A second slot, only for this printout, created before the workload runs.
"$capture" --source "$source_ci" --slot walrev_demo_print --publication "$publication" \
  --workload "$workload" --print
rm -f "$workload"
stop_lsn=$(command psql -X -A -t -v ON_ERROR_STOP=1 "$source_ci" -c "SELECT pg_current_wal_lsn()")

section "walrev run --stop-lsn $stop_lsn"
run_ok=0
if [ "$setup_ok" = 1 ] && timeout 300 "$walrev" -c "$config" --source "$source_ci" run --stop-lsn "$stop_lsn"; then
  run_ok=1
else
  echo "walrev run is not available or failed: the decoded stream above is what it would store"
fi

if [ "$run_ok" = 1 ]; then
  section "walrev log"
  "$walrev" --history "$source_ci" log || echo "(walrev log failed)"
  section "walrev show 2"
  "$walrev" --history "$source_ci" show 2 || echo "(walrev show failed)"
  section "what did invoice look like before the approval? walrev snapshot --at 2 --table invoice"
  "$walrev" --history "$source_ci" snapshot --at 2 --table invoice --format csv || echo "(walrev snapshot failed)"
  section "and after it: walrev snapshot --at 3 --table invoice"
  "$walrev" --history "$source_ci" snapshot --at 3 --table invoice --format csv || echo "(walrev snapshot failed)"
  section "who set each column of invoice 1? walrev blame --table invoice --key 1"
  "$walrev" --history "$source_ci" blame --table invoice --key 1 || echo "(walrev blame failed)"
  section "undo revision 4 (the discount): walrev revert 4 (plan only; --apply runs it)"
  "$walrev" --source "$source_ci" --history "$source_ci" revert 4 || echo "(walrev revert failed)"
  section "walrev verify (the checksum chain)"
  "$walrev" --history "$source_ci" verify || echo "(walrev verify failed)"
  if [ "$kafka" = 1 ]; then
    section "walrev tail: the same revisions read back from Kafka"
    "$walrev" -c "$config" tail --from-beginning --format table --timeout-ms 5000 --max-messages 200 \
      || echo "(walrev tail failed)"
  fi
fi

section "done"
if [ "$keep" = 1 ]; then
  echo "cluster kept running: psql \"$source_ci\"; stop with: bash $pgcluster stop $demo/pg"
fi
