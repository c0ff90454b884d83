#!/usr/bin/env bash
# Branches (issue 18): a branch of three tables with foreign keys, work on
# main and on the branch at once, the diff each way, a clean merge applied
# in foreign-key order under required approvals, then a branch where every
# conflict kind occurs (cell, delete/update, update/delete, insert/insert,
# unique and foreign-key constraints), each settled ours, theirs or by a
# value; refused merges change nothing; `walrev verify` holds after all.
source "$(dirname "$0")/lib.sh"
source_db branches branches
sync() { run_to_now "$TEST_TMP/run.log" --source "$SRC" --slot branches; }
# as ACTOR SQL: one transaction attributed to ACTOR (type:id)
as() { q $DB "BEGIN; SELECT walrev.context('{\"actor\": {\"type\": \"${1%%:*}\", \"id\": \"${1#*:}\"}}'); $2; COMMIT" >/dev/null; }
# must_fail WHAT OUTFILE CMD...: CMD fails (stderr to OUTFILE.err)
must_fail() {
  local what=$1 out=$2
  shift 2
  if "$@" >"$out" 2>"$out.err"; then cat "$out" "$out.err" >&2; fail "$what succeeded"; fi
}
main_state() {
  q $DB "SELECT 'c', id, name, tier FROM customer UNION ALL SELECT 'p', id, name, price::text FROM product
         UNION ALL SELECT 'o', id, customer_id::text, product_id || 'x' || qty FROM orders ORDER BY 1, 2"
}

q $DB "CREATE TABLE customer (id int PRIMARY KEY, name text NOT NULL, tier text);
       CREATE TABLE product (id serial PRIMARY KEY, name text NOT NULL UNIQUE, price numeric(8,2));
       CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customer (id),
                            product_id int REFERENCES product (id) ON DELETE SET NULL, qty int NOT NULL);"
w_setup
as user:seed "INSERT INTO customer VALUES (1, 'acme', 'gold'), (2, 'globex', 'silver'), (5, 'initech', NULL);
              INSERT INTO product (name, price) VALUES ('bolt', 1.50), ('nut', 0.25);
              INSERT INTO orders VALUES (1, 1, 1, 10), (2, 2, 2, 5), (3, 1, 2, 7)"
sync

# --- create ---
W branch create feature --actor user:alice >"$TEST_TMP/create.out" 2>"$TEST_TMP/create.err" ||
  { cat "$TEST_TMP/create.out" "$TEST_TMP/create.err"; fail "branch create feature"; }
FORK=$(q $DB "SELECT max(id) FROM walrev.revision")
expect_eq "create says what it made" "$(cat "$TEST_TMP/create.out")" \
  "created branch feature in schema branch_feature: 3 tables as of revision $FORK ($(q $DB "SELECT commit_lsn FROM walrev.revision WHERE id = $FORK"))"
expect_eq "the branch holds main's rows" \
  "$(q $DB "SELECT * FROM branch_feature.orders ORDER BY id")" "1|1|1|10
2|2|2|5
3|1|2|7"
expect_eq "the branch's foreign keys point within the branch" \
  "$(q $DB "SELECT conrelid::regclass || ' -> ' || confrelid::regclass FROM pg_constraint
            WHERE contype = 'f' AND connamespace = 'branch_feature'::regnamespace ORDER BY 1")" \
  "branch_feature.orders -> branch_feature.customer
branch_feature.orders -> branch_feature.product"
expect_eq "keys and unique constraints copied" \
  "$(q $DB "SELECT count(*) FROM pg_index WHERE indrelid = 'branch_feature.product'::regclass AND indisunique")" "2"
expect_eq "the branch schema is published" \
  "$(q $DB "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables
            WHERE pubname = 'walrev' AND schemaname = 'branch_feature'")" "customer,orders,product"
expect_eq "the branch record" \
  "$(q $DB "SELECT name, schema_name, fork_revision = $FORK, created_by, jsonb_array_length(tables) FROM walrev.branch")" \
  "feature|branch_feature|t|user:alice|3"
must_fail "a second branch feature" "$TEST_TMP/create2" W branch create feature
grep -q 'branch feature exists already' "$TEST_TMP/create2.err" || { cat "$TEST_TMP/create2.err"; fail "no reason"; }
must_fail "a branch named main" "$TEST_TMP/create3" W branch create main
grep -q 'invalid branch name main' "$TEST_TMP/create3.err" || { cat "$TEST_TMP/create3.err"; fail "no reason"; }

# --- work on both at once ---
as user:bob "UPDATE branch_feature.product SET price = 1.75 WHERE id = 1;
             INSERT INTO branch_feature.customer VALUES (10, 'hooli', 'bronze');
             INSERT INTO branch_feature.orders VALUES (4, 10, 1, 3)"
as user:carol "UPDATE product SET name = 'hex nut' WHERE id = 2; INSERT INTO customer VALUES (20, 'umbrella', NULL)"
as user:bob "DELETE FROM branch_feature.orders WHERE id = 3"
sync

expect_eq "diff main..feature: what the branch changed since the fork" "$(W diff main..feature --format csv)" \
'table,key,change,column,old_value,new_value
public.customer,"[""10""]",added,id,,10
public.customer,"[""10""]",added,name,,hooli
public.customer,"[""10""]",added,tier,,bronze
public.orders,"[""3""]",removed,id,3,
public.orders,"[""3""]",removed,customer_id,1,
public.orders,"[""3""]",removed,product_id,2,
public.orders,"[""3""]",removed,qty,7,
public.orders,"[""4""]",added,id,,4
public.orders,"[""4""]",added,customer_id,,10
public.orders,"[""4""]",added,product_id,,1
public.orders,"[""4""]",added,qty,,3
public.product,"[""1""]",changed,price,1.50,1.75'
expect_eq "diff feature..main: what main changed since the fork" "$(W diff feature..main --format csv)" \
'table,key,change,column,old_value,new_value
public.customer,"[""20""]",added,id,,20
public.customer,"[""20""]",added,name,,umbrella
public.customer,"[""20""]",added,tier,,
public.product,"[""2""]",changed,name,nut,hex nut'
expect_eq "diff --table and json" "$(W diff main..feature --table product --format json)" \
'[
{"table":"public.product","key":"[\"1\"]","change":"changed","column":"price","old_value":"1.50","new_value":"1.75"}
]'
must_fail "diff with an unknown branch" "$TEST_TMP/diffx" W diff main..nosuch
grep -q 'no branch nosuch' "$TEST_TMP/diffx.err" || { cat "$TEST_TMP/diffx.err"; fail "no reason"; }

expect_eq "branch list: fork, the branch's revisions, main's since" \
  "$(W branch list --format csv | cut -d, -f1,2,3,6,7,8,9,10)" \
  "branch,schema,fork_revision,created_by,tables,branch_revisions,main_revisions_since,approvals
feature,branch_feature,$FORK,user:alice,3,2,1,0"

# --- a clean merge: plan, approvals, apply ---
BEFORE=$(main_state)
W merge feature >"$TEST_TMP/plan.sql" 2>"$TEST_TMP/plan.err" || { cat "$TEST_TMP/plan.sql" "$TEST_TMP/plan.err"; fail "merge feature (plan)"; }
expect_eq "the plan: parents inserted before children, deletes last" "$(grep -v '^SELECT walrev.context' "$TEST_TMP/plan.sql")" \
"BEGIN;
INSERT INTO public.customer (id, name, tier) OVERRIDING SYSTEM VALUE VALUES ('10'::integer, 'hooli'::text, 'bronze'::text);
INSERT INTO public.orders (id, customer_id, product_id, qty) OVERRIDING SYSTEM VALUE VALUES ('4'::integer, '10'::integer, '1'::integer, '3'::integer);
UPDATE public.product SET price = '1.75'::numeric(8,2) WHERE id = '1'::integer;
DELETE FROM public.orders WHERE id = '3'::integer;
COMMIT;"
expect_eq "planning changed nothing" "$(main_state)" "$BEFORE"
printf '[branches]\nrequired_approvals = 1\n' >"$TEST_TMP/walrev.ini"
WA() { W -c "$TEST_TMP/walrev.ini" "$@"; }
must_fail "merge --apply without an approval" "$TEST_TMP/apply0" WA merge feature --apply --actor user:erin
grep -q 'branch feature has 0 approval(s) of its revision .*, 1 required' "$TEST_TMP/apply0.err" ||
  { cat "$TEST_TMP/apply0.err"; fail "no reason for the refusal"; }
expect_eq "the refused merge changed nothing" "$(main_state)" "$BEFORE"
must_fail "merge --apply without --actor" "$TEST_TMP/apply1" W merge feature --apply
grep -q 'needs --actor' "$TEST_TMP/apply1.err" || { cat "$TEST_TMP/apply1.err"; fail "no reason"; }

W review feature >"$TEST_TMP/review.md" 2>"$TEST_TMP/review.err" || { cat "$TEST_TMP/review.err"; fail "review"; }
grep -q '^| public.orders | 1 | 1 | 0 |$' "$TEST_TMP/review.md" || { cat "$TEST_TMP/review.md"; fail "review: summary of orders"; }
grep -q '^\*\*ready to merge\*\*$' "$TEST_TMP/review.md" || { cat "$TEST_TMP/review.md"; fail "review: verdict"; }
WA review feature --format json >"$TEST_TMP/review.json" || fail "review --format json"
expect_eq "review json: verdict, approvals, who changed what" \
  "$(jq -r '[.verdict, .approvals.current, .approvals.required, ([.revisions[] | .actor_type + ":" + .actor_id + "/" + .changes] | join(" ")), ([.summary[] | "\(.table)=\(.added)/\(.removed)/\(.changed)"] | join(" ")), (.conflicts | length)] | @tsv' "$TEST_TMP/review.json")" \
  "$(printf 'blocked: needs approvals\t0\t1\tuser:bob/3 user:bob/1\tpublic.customer=1/0/0 public.orders=1/1/0 public.product=0/0/1\t0')"
W review feature --approve --actor user:dave >"$TEST_TMP/approve.out" || fail "approve"
grep -q '^approved branch feature at its revision [0-9]* by user:dave$' "$TEST_TMP/approve.out" || { cat "$TEST_TMP/approve.out"; fail "approve output"; }
WA merge feature --apply --actor user:erin >"$TEST_TMP/apply.sql" 2>"$TEST_TMP/apply.err" ||
  { cat "$TEST_TMP/apply.sql" "$TEST_TMP/apply.err"; fail "merge --apply"; }
expect_eq "merge --apply says so" "$(tail -1 "$TEST_TMP/apply.err")" "merged branch feature into main: 4 statements as one transaction"
expect_eq "main after the merge" "$(main_state)" "c|1|acme|gold
c|2|globex|silver
c|5|initech|
c|10|hooli|bronze
c|20|umbrella|
o|1|1|1x10
o|2|2|2x5
o|4|10|1x3
p|1|bolt|1.75
p|2|hex nut|0.25"
sync
MREV=$(q $DB "SELECT max(id) FROM walrev.revision")
BREVS=$(q $DB "SELECT string_agg(id::text, ',' ORDER BY id) FROM walrev.revision WHERE actor_id = 'bob'")
expect_eq "the merge is one revision by the merger, naming the branch and its revisions" \
  "$(q $DB "SELECT actor_type || ':' || actor_id, meta->'merge'->>'branch', meta->'merge'->>'fork_revision',
                   (SELECT string_agg(x, ',') FROM jsonb_array_elements_text(meta->'merge'->'revisions') x), n_insert, n_update, n_delete
            FROM walrev.revision WHERE id = $MREV")" "user:erin|feature|$FORK|$BREVS|2|1|1"
W log --format csv --limit 1 >"$TEST_TMP/log.csv" || fail log
grep -q "walrev merge feature: branch feature forked at revision $FORK, its revisions ${BREVS//,/, }" "$TEST_TMP/log.csv" ||
  { cat "$TEST_TMP/log.csv"; fail "log does not link the merge to the branch's revisions"; }
W merge feature >"$TEST_TMP/plan2.sql" 2>/dev/null || fail "merge after merge"
expect_eq "merged: nothing left to merge" "$(cat "$TEST_TMP/plan2.sql")" "-- walrev merge feature: nothing to change on main"

# --- every conflict kind ---
W branch create conf --actor user:alice >/dev/null 2>"$TEST_TMP/create_conf.err" || { cat "$TEST_TMP/create_conf.err"; fail "branch create conf"; }
expect_eq "a branch copies no other branch's tables" \
  "$(q $DB "SELECT string_agg(t->>'table', ',' ORDER BY t->>'table') FROM walrev.branch, jsonb_array_elements(tables) t WHERE name = 'conf'")" \
  "public.customer,public.orders,public.product"
as user:frank "UPDATE branch_conf.product SET price = 2.00, name = 'bolt M4' WHERE id = 1;
               UPDATE branch_conf.product SET name = 'hex nut M4' WHERE id = 2;
               UPDATE branch_conf.orders SET qty = 11 WHERE id = 1;
               UPDATE branch_conf.orders SET qty = 6 WHERE id = 2;
               DELETE FROM branch_conf.customer WHERE id = 20;
               UPDATE branch_conf.customer SET tier = 'platinum' WHERE id = 1;
               INSERT INTO branch_conf.customer VALUES (30, 'wayne', 'gold');
               INSERT INTO branch_conf.product VALUES (100, 'washer', 0.10);
               INSERT INTO branch_conf.orders VALUES (5, 5, 2, 1)"
as user:gina "UPDATE product SET price = 1.90, name = 'bolt M5' WHERE id = 1;
              UPDATE product SET price = 0.30 WHERE id = 2;
              DELETE FROM orders WHERE id IN (1, 2);
              UPDATE customer SET tier = 'gold' WHERE id = 20;
              INSERT INTO customer VALUES (30, 'wayne ent', 'gold');
              INSERT INTO product VALUES (101, 'washer', 0.15);
              DELETE FROM customer WHERE id = 5"
sync
BEFORE=$(main_state)
must_fail "merge conf with open conflicts" "$TEST_TMP/conf.out" W merge conf --format csv
expect_eq "every conflict kind, with base, ours and theirs" "$(sed '/^BEGIN;$/,$d' "$TEST_TMP/conf.out")" \
'-- 8 conflicts, 8 unresolved
table,key,kind,column,base,ours,theirs,resolution,detail
public.customer,"[""20""]",update/delete,,"{""id"":""20"",""name"":""umbrella"",""tier"":null}","{""id"":""20"",""name"":""umbrella"",""tier"":""gold""}",,,
public.customer,"[""30""]",insert/insert,name,,wayne ent,wayne,,
public.orders,"[""1""]",delete/update,,"{""id"":""1"",""customer_id"":""1"",""product_id"":""1"",""qty"":""10""}",,"{""id"":""1"",""customer_id"":""1"",""product_id"":""1"",""qty"":""11""}",,
public.orders,"[""2""]",delete/update,,"{""id"":""2"",""customer_id"":""2"",""product_id"":""2"",""qty"":""5""}",,"{""id"":""2"",""customer_id"":""2"",""product_id"":""2"",""qty"":""6""}",,
public.product,"[""1""]",cell,name,bolt,bolt M5,bolt M4,,
public.product,"[""1""]",cell,price,1.75,1.90,2.00,,
public.product,"[""100""]",constraint,,,,"{""id"":""100"",""name"":""washer"",""price"":""0.10""}",,"constraint product_name_key: duplicate key value violates unique constraint ""product_name_key"""
public.orders,"[""5""]",constraint,,,,"{""id"":""5"",""customer_id"":""5"",""product_id"":""2"",""qty"":""1""}",,"constraint orders_customer_id_fkey: insert or update on table ""orders"" violates foreign key constraint ""orders_customer_id_fkey"""'
grep -q 'error: nothing changed: 8 unresolved conflicts; settle them with --resolve FILE' "$TEST_TMP/conf.out.err" ||
  { cat "$TEST_TMP/conf.out.err"; fail "merge conf: no reason"; }
expect_eq "a merge with conflicts changed nothing" "$(main_state)" "$BEFORE"
must_fail "merge conf --apply with open conflicts" "$TEST_TMP/conf_apply0" W merge conf --apply --actor user:erin
grep -q 'merge refused, nothing changed: 6 unresolved conflicts' "$TEST_TMP/conf_apply0.err" ||
  { cat "$TEST_TMP/conf_apply0.err"; fail "merge --apply with conflicts: no reason"; }
expect_eq "the refused merge --apply changed nothing" "$(main_state)" "$BEFORE"
W review conf --format json >"$TEST_TMP/review_conf.json" || fail "review conf"
expect_eq "review lists the conflicts and blocks" \
  "$(jq -r '[.verdict, (.conflicts | length), ([.conflicts[].kind] | unique | join(","))] | @tsv' "$TEST_TMP/review_conf.json")" \
  "$(printf 'blocked: unresolved conflicts with main\t8\tcell,constraint,delete/update,insert/insert,update/delete')"

cat >"$TEST_TMP/resolve.json" <<'JSON'
{
  "public.product": {"1": {"price": "theirs", "name": {"value": "bolt M6"}}, "[\"100\"]": "ours"},
  "public.orders": {"1": "ours", "2": "theirs", "5": "ours"},
  "public.customer": {"[\"20\"]": "theirs", "30": {"name": "ours"}}
}
JSON
W merge conf --resolve "$TEST_TMP/resolve.json" --format csv >"$TEST_TMP/conf2.out" 2>"$TEST_TMP/conf2.err" ||
  { cat "$TEST_TMP/conf2.out" "$TEST_TMP/conf2.err"; fail "merge conf --resolve"; }
expect_eq "with the resolve file: no conflict open" "$(head -1 "$TEST_TMP/conf2.out")" "-- 6 conflicts, 0 unresolved"
expect_eq "every conflict settled, each way (the constraint ones by leaving the rows out)" \
  "$(sed '1d;/^BEGIN;$/,$d' "$TEST_TMP/conf2.out" | cut -d, -f2-4 | sed 's/^"\[""\([0-9]*\)""\]"/\1/'; sed '/^BEGIN;$/,$d' "$TEST_TMP/conf2.out" | grep -o ',\(ours\|theirs\|value\),$')" \
'key,kind,column
20,update/delete,
30,insert/insert,name
1,delete/update,
2,delete/update,
1,cell,name
1,cell,price
,theirs,
,ours,
,ours,
,theirs,
,value,
,theirs,'

expect_eq "the resolved plan, in foreign-key order" "$(sed -n '/^BEGIN;$/,$p' "$TEST_TMP/conf2.out" | grep -v '^SELECT walrev.context')" \
"BEGIN;
INSERT INTO public.orders (id, customer_id, product_id, qty) OVERRIDING SYSTEM VALUE VALUES ('2'::integer, '2'::integer, '2'::integer, '6'::integer);
UPDATE public.customer SET tier = 'platinum'::text WHERE id = '1'::integer;
UPDATE public.product SET name = 'bolt M6'::text, price = '2.00'::numeric(8,2) WHERE id = '1'::integer;
UPDATE public.product SET name = 'hex nut M4'::text WHERE id = '2'::integer;
DELETE FROM public.customer WHERE id = '20'::integer;
COMMIT;"
expect_eq "planning with a resolve file changed nothing" "$(main_state)" "$BEFORE"
W merge conf --resolve "$TEST_TMP/resolve.json" --apply --actor user:erin >/dev/null 2>"$TEST_TMP/conf_apply.err" ||
  { cat "$TEST_TMP/conf_apply.err"; fail "merge conf --apply --resolve"; }
expect_eq "main after the resolved merge" "$(main_state)" "c|1|acme|platinum
c|2|globex|silver
c|10|hooli|bronze
c|30|wayne ent|gold
o|2|2|2x6
o|4|10|1x3
p|1|bolt M6|2.00
p|2|hex nut M4|0.30
p|101|washer|0.15"
echo '{"public.product": {"1": "mine"}}' >"$TEST_TMP/bad.json"
must_fail "a resolve file with a bad answer" "$TEST_TMP/bad" W merge conf --resolve "$TEST_TMP/bad.json"
grep -q 'expected "ours", "theirs" or {"value": V}' "$TEST_TMP/bad.err" || { cat "$TEST_TMP/bad.err"; fail "bad resolve: no reason"; }

# --- stale approvals, drop, verify ---
sync
W branch drop conf --actor user:alice >"$TEST_TMP/drop.out" || fail "branch drop conf"
expect_eq "drop says so" "$(cat "$TEST_TMP/drop.out")" "dropped branch conf (schema branch_conf); its revisions stay in the history"
expect_eq "the schema is gone" "$(q $DB "SELECT count(*) FROM pg_namespace WHERE nspname = 'branch_conf'")" "0"
must_fail "merging a dropped branch" "$TEST_TMP/gone" W merge conf
grep -q 'no branch conf' "$TEST_TMP/gone.err" || { cat "$TEST_TMP/gone.err"; fail "no reason"; }
as user:bob "UPDATE branch_feature.customer SET tier = 'gold' WHERE id = 10"
sync
must_fail "an approval made before the branch changed again" "$TEST_TMP/stale" WA merge feature --apply --actor user:erin
grep -q 'has 0 approval(s) of its revision' "$TEST_TMP/stale.err" || { cat "$TEST_TMP/stale.err"; fail "stale approval counted"; }
expect_eq "branch list after the drop" "$(W branch list --format csv | cut -d, -f1,8,10)" "branch,branch_revisions,approvals
feature,3,1"

# --- --at, --table, and a table without a primary key ---
W branch create old --at "$FORK" --table customer --actor user:ann >/dev/null 2>&1 || fail "branch create old --at"
expect_eq "--at: the table as of the fork of feature" "$(q $DB "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM branch_old.customer")" \
  "1:acme,2:globex,5:initech"
expect_eq "--table: only that table" "$(q $DB "SELECT count(*) FROM pg_tables WHERE schemaname = 'branch_old'")" "1"
expect_eq "diff between two branches: what feature changed since the earlier fork" \
  "$(W diff old..feature --table customer --format csv)" 'table,key,change,column,old_value,new_value
public.customer,"[""10""]",added,id,,10
public.customer,"[""10""]",added,name,,hooli
public.customer,"[""10""]",added,tier,,gold'
W branch drop old >/dev/null || fail "branch drop old"
q $DB "CREATE TABLE note (msg text); INSERT INTO note VALUES ('no key')"
sync
must_fail "a branch of a table without a primary key" "$TEST_TMP/nokey" W branch create nokey
grep -q 'table public.note has no primary key' "$TEST_TMP/nokey.err" || { cat "$TEST_TMP/nokey.err"; fail "no name given"; }
expect_eq "the refused branch left nothing" "$(q $DB "SELECT count(*) FROM pg_namespace WHERE nspname = 'branch_nokey'")/$(q $DB "SELECT count(*) FROM walrev.branch WHERE name = 'nokey'")" "0/0"
sync
must "$TEST_TMP/verify.out" "verify after branches and merges" W verify
grep -q '^verified [0-9]* revisions' "$TEST_TMP/verify.out" || { cat "$TEST_TMP/verify.out"; fail "verify output"; }
pass "walrev verify holds after branches, merges and drops"
