#!/usr/bin/env bash
# Undo and --into (issue 13, item 12). A DELETE of an invoice that cascades to
# its lines, reverted with `walrev revert REV --apply`, comes back parents
# first, as rollback orders it (the plan and the live rows asserted exactly).
# `snapshot --into asof` with crm.lead and public.lead both tracked keeps the
# schemas apart (asof."crm.lead", asof."public.lead"; a name no other schema
# has stays as it is); the schema it made carries walrev's mark, and a later
# `walrev setup` does not publish it while it does publish a new user schema.
source "$(dirname "$0")/lib.sh"
source_db undo_into undo_into

q $DB "CREATE SCHEMA crm;
       CREATE TABLE invoice (id int PRIMARY KEY, customer text NOT NULL);
       CREATE TABLE invoice_line (invoice_id int NOT NULL REFERENCES invoice (id) ON DELETE CASCADE,
                                  line int, item text, PRIMARY KEY (invoice_id, line));
       CREATE TABLE public.lead (id int PRIMARY KEY, name text);
       CREATE TABLE crm.lead (id int PRIMARY KEY, name text, stage text);"
w_setup

q $DB "INSERT INTO invoice VALUES (1001, 'acme'), (1002, 'globex');
       INSERT INTO invoice_line VALUES (1001, 1, 'bolts'), (1001, 2, 'nuts'), (1002, 1, 'gears');
       INSERT INTO public.lead VALUES (1, 'public one'), (2, 'public two');
       INSERT INTO crm.lead VALUES (1, 'crm one', 'new'), (7, 'crm seven', 'won');"
q $DB "DELETE FROM invoice WHERE id = 1001"
run_to_now "$TEST_TMP/run.log" --source "$SRC" --slot undo_into
REV=$(q $DB "$H SELECT DISTINCT revision_id FROM object_delta WHERE op = 'D' AND relid = 'public.invoice'::regclass")
expect_eq "the cascading DELETE is one revision of three deletes, parent first" \
  "$(q $DB "$H SELECT string_agg(relid::regclass::text || ' ' || key, ', ' ORDER BY seq) FROM object_delta
            WHERE revision_id = $REV")" \
  'public.invoice ["1001"], public.invoice_line ["1001","1"], public.invoice_line ["1001","2"]'

# --- revert in foreign-key order ---
W revert "$REV" --apply >"$TEST_TMP/revert.sql" 2>"$TEST_TMP/revert.err" ||
  { cat "$TEST_TMP/revert.sql" "$TEST_TMP/revert.err"; fail "revert --apply of the cascading delete"; }
expect_eq "the plan re-inserts the invoice before its lines" "$(grep '^INSERT' "$TEST_TMP/revert.sql")" \
"INSERT INTO public.invoice (id, customer) VALUES ('1001'::integer, 'acme'::text);
INSERT INTO public.invoice_line (invoice_id, line, item) VALUES ('1001'::integer, '2'::integer, 'nuts'::text);
INSERT INTO public.invoice_line (invoice_id, line, item) VALUES ('1001'::integer, '1'::integer, 'bolts'::text);"
expect_eq "applied as one transaction" "$(tail -1 "$TEST_TMP/revert.err")" "applied 3 statements as one transaction"
expect_eq "the invoice is back" "$(q $DB "SELECT id, customer FROM invoice ORDER BY id")" "1001|acme
1002|globex"
expect_eq "its lines are back" "$(q $DB "SELECT * FROM invoice_line ORDER BY 1, 2")" "1001|1|bolts
1001|2|nuts
1002|1|gears"
# A second revert of the same revision finds the rows there: nothing changes.
if W revert "$REV" --apply >"$TEST_TMP/revert2.sql" 2>"$TEST_TMP/revert2.err"; then
  fail "reverting the delete twice succeeded"
fi
grep -q 'violates\|rejected\|duplicate' "$TEST_TMP/revert2.err" || { cat "$TEST_TMP/revert2.err"; fail "second revert: no reason given"; }
expect_eq "the failed second revert changed nothing" "$(q $DB "SELECT count(*) FROM invoice_line")" "3"

# --- snapshot --into keeps schemas apart ---
run_to_now "$TEST_TMP/run.log" --source "$SRC" --slot undo_into
W snapshot --into asof >"$TEST_TMP/into.out" 2>"$TEST_TMP/into.err" ||
  { cat "$TEST_TMP/into.err"; fail "snapshot --into asof with two tables named lead"; }
expect_eq "each table loaded under its name, the two leads by schema" "$(grep '^loaded' "$TEST_TMP/into.err" | sort)" \
'loaded 2 rows into asof."crm.lead"
loaded 2 rows into asof."public.lead"
loaded 2 rows into asof.invoice
loaded 3 rows into asof.invoice_line'
expect_eq "crm.lead as it is" "$(q $DB "SELECT * FROM asof.\"crm.lead\" ORDER BY id")" "1|crm one|new
7|crm seven|won"
expect_eq "public.lead as it is" "$(q $DB "SELECT * FROM asof.\"public.lead\" ORDER BY id")" "1|public one
2|public two"
expect_eq "no table took the shared name alone" "$(q $DB "SELECT to_regclass('asof.lead') IS NULL")" "t"
expect_eq "the schema carries walrev's mark" \
  "$(q $DB "SELECT obj_description('asof'::regnamespace, 'pg_namespace') LIKE 'walrev snapshot --into:%'")" "t"
# Loading again: the tables exist, so it fails and leaves the first load whole.
if W snapshot --into asof >/dev/null 2>"$TEST_TMP/into2.err"; then fail "a second --into asof succeeded"; fi
grep -q 'already exists' "$TEST_TMP/into2.err" || { cat "$TEST_TMP/into2.err"; fail "second --into: no reason given"; }
expect_eq "the first load is untouched" "$(q $DB "SELECT count(*) FROM asof.\"crm.lead\"")" "2"

# --- a later setup publishes a new schema, never asof ---
q $DB "CREATE SCHEMA sales; CREATE TABLE sales.deal (id int PRIMARY KEY)"
must "$TEST_TMP/setup2.out" "setup again" W setup
published() {
  q $DB "SELECT string_agg(n.nspname, ',' ORDER BY n.nspname) FROM pg_publication_namespace pn
         JOIN pg_publication p ON p.oid = pn.pnpubid JOIN pg_namespace n ON n.oid = pn.pnnspid
         WHERE p.pubname = 'walrev'"
}
expect_eq "setup published sales and not asof" "$(published)" "crm,public,sales"
