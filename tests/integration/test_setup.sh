#!/usr/bin/env bash
# `walrev setup` against real PostgreSQL: creates history store, context
# functions, publication (without walrev's own schema) and slot; a second run
# changes nothing; new schemas are added; --check and --replica-identity-full;
# a non-superuser path with [source] tables; history in another database;
# missing REPLICATION, a wrong port (password never shown) and wal_level =
# replica (on a private second cluster) fail with the fix spelled out.
source "$(dirname "$0")/lib.sh"

OUT=$TEST_TMP
PRIV=$OUT/pg-replica
on_exit "bash \"$WALREV_SOURCE_DIR/tests/support/pgcluster.sh\" stop \"$PRIV\" >/dev/null 2>&1"

# expect_has FILE TEXT / expect_lacks FILE TEXT
expect_has() { grep -qF -- "$2" "$1" || { echo "--- $1:"; cat "$1"; fail "expected '$2' in $1"; }; }
expect_lacks() { ! grep -qF -- "$2" "$1" || { echo "--- $1:"; cat "$1"; fail "unexpected '$2' in $1"; }; }

source_db setup_main
q $DB "CREATE TABLE public.item (id int PRIMARY KEY, name text);
       CREATE TABLE public.nokey (a int);
       CREATE SCHEMA app;
       CREATE TABLE app.note (id int PRIMARY KEY, body text);"

# ---- first run creates everything ----
rc=0; "$WALREV_BIN" --source "$SRC" --slot $DB setup >$OUT/1.out 2>$OUT/1.err || rc=$?
expect_eq "first setup exits 0" "$rc" 0
expect_has $OUT/1.out "ok        wal_level = logical"
expect_has $OUT/1.out "ok        role postgres may replicate (superuser)"
expect_has $OUT/1.out "ok        replication connection works"
expect_has $OUT/1.out "created   history store in schema walrev"
expect_has $OUT/1.out "created   functions walrev.context(jsonb) and walrev.context(text) on the source"
expect_has $OUT/1.out "created   publication walrev FOR TABLES IN SCHEMA (every schema but the history's)"
expect_has $OUT/1.out "created   replication slot $DB with a baseline of the existing rows"
expect_has $OUT/1.out "warning   public.nokey has REPLICA IDENTITY DEFAULT and no primary key: UPDATE and DELETE on it fail"
expect_has $OUT/1.out "info      2 published table(s) use a key (primary key or replica identity index), not FULL; walrev does not need FULL"
expect_has $OUT/1.out "ok        3 table(s) published"
expect_has $OUT/1.out "created   table log walrev.table_log and event triggers walrev_log_tables, walrev_schema_tables, walrev_log_drops, walrev_log_detach_pending"
expect_has $OUT/1.out "changed   publication walrev: added the table log walrev.table_log"
expect_has $OUT/1.out "created   DDL capture event trigger walrev_capture_ddl writing walrev.ddl_capture"
expect_has $OUT/1.out "created   table rewrite event trigger walrev_capture_rewrite (a table made LOGGED starts its history at the DDL)"
expect_has $OUT/1.out "created   event trigger walrev_capture_drop (columns a DROP ... CASCADE removes are recorded at the drop)"
expect_has $OUT/1.out "changed   publication walrev: added walrev.ddl_capture (walrev's DDL capture)"
expect_has $OUT/1.out "created   event trigger walrev_publish_schema: new schemas join publication walrev"
expect_eq "first setup summary" "$(tail -1 $OUT/1.out)" "setup complete: 13 change(s), 1 warning(s)"
# stderr carries only info lines (baseline progress), no warning or error
expect_eq "first setup: no warning or error on stderr" "$(grep -v " level=info " $OUT/1.err || true)" ""
expect_eq "slot is logical pgoutput in the database" \
  "$(q $DB "SELECT slot_type || ' ' || plugin || ' ' || database FROM pg_replication_slots WHERE slot_name = '$DB'")" \
  "logical pgoutput $DB"
expect_eq "publication covers user schemas, not walrev" \
  "$(q $DB "SELECT string_agg(n.nspname, ',' ORDER BY n.nspname) FROM pg_publication_namespace pn
            JOIN pg_namespace n ON n.oid = pn.pnnspid JOIN pg_publication p ON p.oid = pn.pnpubid
            WHERE p.pubname = 'walrev'")" "app,public"
expect_eq "published tables: the user's, walrev's table log, erasure log and DDL capture" \
  "$(q $DB "SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY schemaname, tablename) FROM pg_publication_tables WHERE pubname = 'walrev'")" \
  "app.note,public.item,public.nokey,walrev.ddl_capture,walrev.erasure_log,walrev.table_log"
expect_eq "history store tables exist" "$(q $DB "SELECT to_regclass('walrev.revision') IS NOT NULL AND to_regclass('walrev.checkpoint') IS NOT NULL")" "t"

# ---- the context functions: an untyped literal resolves (to the text
# overload, so even invalid JSON is emitted); ::jsonb validates early ----
q $DB "CREATE ROLE walrev_app LOGIN" 2>/dev/null || true
APP="host=127.0.0.1 port=$PGPORT user=walrev_app dbname=$DB"
lsn=$(psql -X -At -d "$APP" -c "SELECT walrev.context('{\"actor\":{\"type\":\"user\",\"id\":\"7\"}}')")
[[ "$lsn" =~ ^[0-9A-F]+/[0-9A-F]+$ ]] || fail "context() as an application role returned '$lsn'"
pass "context('{...}') resolves and runs as an ordinary role"
# An untyped literal goes to context(text): invalid JSON then passes through.
psql -X -At -d "$APP" -c "SELECT walrev.context('not json at all')" >/dev/null || fail "text overload rejected invalid JSON"
pass "invalid JSON through the text overload is emitted (recorded later as a warning)"
if psql -X -At -d "$APP" -c "SELECT walrev.context('not json'::jsonb)" >/dev/null 2>&1; then
  fail "jsonb overload accepted invalid JSON"
fi
pass "the jsonb overload rejects invalid JSON in the caller's transaction"

# ---- second run: idempotent ----
rc=0; "$WALREV_BIN" --source "$SRC" --slot $DB setup >$OUT/2.out 2>$OUT/2.err || rc=$?
expect_eq "second setup exits 0" "$rc" 0
expect_lacks $OUT/2.out "created"
expect_lacks $OUT/2.out "changed"
expect_has $OUT/2.out "ok        history store in schema walrev is up to date"
expect_has $OUT/2.out "ok        replication slot $DB exists (pgoutput, database $DB)"
expect_has $OUT/2.out "ok        publication walrev exists"
expect_eq "second setup summary" "$(tail -1 $OUT/2.out)" "nothing to change: walrev is already set up (1 warning(s))"
expect_eq "still one slot" "$(q $DB "SELECT count(*) FROM pg_replication_slots WHERE database = '$DB'")" 1

# ---- a new schema joins the publication at once (the schema trigger); one
# made where that was turned off is added by the next run; --replica-identity-full ----
q $DB "CREATE SCHEMA billing; CREATE TABLE billing.invoice (id int PRIMARY KEY)"
expect_eq "a new schema is in the publication as soon as it exists" \
  "$(q $DB "SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY schemaname, tablename) FROM pg_publication_tables
            WHERE pubname = 'walrev' AND schemaname = 'billing'")" "billing.invoice"
q $DB "SET walrev.publish_new_schema = off; CREATE SCHEMA legacy; CREATE TABLE legacy.t (id int PRIMARY KEY)"
expect_eq "a schema made with walrev.publish_new_schema = off is left out" \
  "$(q $DB "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'walrev' AND schemaname = 'legacy'")" "0"
rc=0; "$WALREV_BIN" --source "$SRC" --slot $DB setup --replica-identity-full >$OUT/3.out 2>&1 || rc=$?
expect_eq "third setup exits 0" "$rc" 0
expect_has $OUT/3.out "changed   publication walrev: added new schema(s)"
expect_has $OUT/3.out "changed   public.nokey: REPLICA IDENTITY FULL"
expect_has $OUT/3.out "changed   billing.invoice: REPLICA IDENTITY FULL"
expect_has $OUT/3.out "changed   legacy.t: REPLICA IDENTITY FULL"
expect_eq "third setup summary" "$(tail -1 $OUT/3.out)" "setup complete: 2 change(s), 0 warning(s)"
expect_eq "replica identity is FULL everywhere (but on walrev's own table log and capture table)" \
  "$(q $DB "SELECT string_agg(DISTINCT c.relreplident::text, ',') FROM pg_publication_tables t
            JOIN pg_class c ON c.oid = format('%I.%I', t.schemaname, t.tablename)::regclass
            WHERE t.pubname = 'walrev' AND t.schemaname <> 'walrev'")" "f"

# ---- --check changes nothing ----
DBC=setup_check
fresh_db $DBC
rc=0; "$WALREV_BIN" --source "$(conninfo $DBC)" --slot $DBC setup --check >$OUT/c.out 2>&1 || rc=$?
expect_eq "setup --check exits 0" "$rc" 0
expect_eq "setup --check summary" "$(tail -1 $OUT/c.out)" "checks passed; nothing was changed (--check)"
expect_eq "--check created no slot" "$(q $DBC "SELECT count(*) FROM pg_replication_slots WHERE database = '$DBC'")" 0
expect_eq "--check created no schema" "$(q $DBC "SELECT count(*) FROM pg_namespace WHERE nspname = 'walrev'")" 0

# ---- history in another database: FOR ALL TABLES, store over there ----
DBS=setup_src2; DBH=setup_hist2
fresh_db $DBS; fresh_db $DBH
q $DBS "CREATE TABLE t (id int PRIMARY KEY)"
rc=0; "$WALREV_BIN" --source "$(conninfo $DBS)" --history "$(conninfo $DBH)" --slot setup_src2 --schema audit setup >$OUT/h.out 2>&1 || rc=$?
expect_eq "setup with a separate history db exits 0" "$rc" 0
expect_has $OUT/h.out "created   publication walrev FOR ALL TABLES"
expect_has $OUT/h.out "created   functions audit.context(jsonb) and audit.context(text) on the source"
expect_eq "store in the history database" "$(q $DBH "SELECT to_regclass('audit.revision') IS NOT NULL")" "t"
expect_eq "no store in the source" "$(q $DBS "SELECT to_regclass('audit.revision') IS NULL")" "t"
expect_eq "context function in the source" "$(q $DBS "SELECT count(*) FROM pg_proc WHERE proname = 'context' AND pronamespace = 'audit'::regnamespace")" 2

# ---- a non-superuser with REPLICATION owning its database: FOR TABLE list ----
DBO=setup_owner
$PSQL -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$DBO'" >/dev/null
$PSQL -d postgres -c "DROP DATABASE IF EXISTS $DBO WITH (FORCE)"
q postgres "DROP ROLE IF EXISTS walrev_owner; CREATE ROLE walrev_owner LOGIN REPLICATION"
$PSQL -d postgres -c "CREATE DATABASE $DBO OWNER walrev_owner"
OWN="host=127.0.0.1 port=$PGPORT user=walrev_owner dbname=$DBO"
psql -X -q -d "$OWN" -c "CREATE SCHEMA shop AUTHORIZATION walrev_owner; CREATE TABLE shop.orders (id int PRIMARY KEY); CREATE TABLE shop.lines (id int PRIMARY KEY)"
cat >$OUT/owner.conf <<EOF
[source]
conninfo = $OWN
slot = setup_owner
tables = shop.orders, shop.lines
EOF
rc=0; "$WALREV_BIN" -c $OUT/owner.conf setup >$OUT/o.out 2>$OUT/o.err || rc=$?
[ "$rc" = 0 ] || { cat $OUT/o.out $OUT/o.err; fail "non-superuser setup exited $rc"; }
expect_has $OUT/o.out "ok        role walrev_owner may replicate (REPLICATION)"
expect_has $OUT/o.out "created   publication walrev FOR TABLE ([source] tables)"
expect_eq "publication lists the configured tables" \
  "$(q $DBO "SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY schemaname, tablename) FROM pg_publication_tables WHERE pubname = 'walrev'")" \
  "shop.lines,shop.orders"
echo "tables = shop.missing" >>$OUT/owner.conf
rc=0; "$WALREV_BIN" -c $OUT/owner.conf setup >$OUT/o2.out 2>$OUT/o2.err || rc=$?
expect_eq "setup with a missing listed table exits 1" "$rc" 1
expect_has $OUT/o2.err "error: table shop.missing listed in [source] tables does not exist in the source database"

# ---- missing REPLICATION: clear message, nothing changed ----
q postgres "DROP ROLE IF EXISTS walrev_norepl; CREATE ROLE walrev_norepl LOGIN"
DBN=setup_norepl
fresh_db $DBN
rc=0; "$WALREV_BIN" --source "host=127.0.0.1 port=$PGPORT user=walrev_norepl dbname=$DBN" --slot $DBN setup >$OUT/n.out 2>$OUT/n.err || rc=$?
expect_eq "setup without REPLICATION exits 1" "$rc" 1
expect_has $OUT/n.err "error: role walrev_norepl has neither REPLICATION nor SUPERUSER; reading a replication slot needs REPLICATION"
expect_has $OUT/n.err "  fix: as a superuser: ALTER ROLE walrev_norepl REPLICATION;"
expect_has $OUT/n.err "error: a publication FOR TABLES IN SCHEMA (every schema but the history's) needs a superuser in PostgreSQL 15"
expect_has $OUT/n.err "error: creating the history schema walrev needs CREATE on database setup_norepl"
expect_has $OUT/n.err "  fix: GRANT CREATE ON DATABASE setup_norepl TO <this role>; or run setup as the database owner"
expect_has $OUT/n.err "walrev setup: 4 problem(s) found; nothing was changed"
expect_eq "nothing created for the unprivileged role" \
  "$(q $DBN "SELECT count(*) FROM pg_namespace WHERE nspname = 'walrev'")|$(q $DBN "SELECT count(*) FROM pg_replication_slots WHERE database = '$DBN'")" "0|0"

# ---- wrong port: names host and port, never the password ----
BADPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rc=0; "$WALREV_BIN" --source "host=127.0.0.1 port=$BADPORT user=postgres password=Sup3rSecret dbname=x" setup >$OUT/p.out 2>$OUT/p.err || rc=$?
expect_eq "setup with a wrong port exits 1" "$rc" 1
expect_has $OUT/p.err "error: cannot connect to the source database (host=127.0.0.1 port=$BADPORT dbname=x user=postgres)"
expect_has $OUT/p.err "password given on the command line"
if grep -q Sup3rSecret $OUT/p.out $OUT/p.err; then fail "the password was printed"; fi
pass "the password appears nowhere in the output"

# ---- wal_level = replica, on a private cluster ----
bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" start "$PRIV" "wal_level = replica" >/dev/null
rc=0; "$WALREV_BIN" --source "$(cat "$PRIV/conninfo")" setup >$OUT/w.out 2>$OUT/w.err || rc=$?
expect_eq "setup with wal_level=replica exits 1" "$rc" 1
expect_has $OUT/w.err "error: wal_level is 'replica' on the source; walrev reads the WAL by logical decoding, which needs wal_level = logical"
expect_has $OUT/w.err "  fix: set wal_level = logical in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL"
expect_has $OUT/w.err "nothing was changed"

# Tidy the shared cluster: slots pin WAL for every later test.
for d in $DB $DBS $DBO; do
  $PSQL -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$d'" >/dev/null
done
echo "all setup tests passed"
