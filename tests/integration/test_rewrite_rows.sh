#!/usr/bin/env bash
# Values a table rewrite computes row by row (issue 13): ADD COLUMN with a
# volatile default (random(), clock_timestamp(), nextval), ADD COLUMN ...
# GENERATED AS IDENTITY, ALTER COLUMN ... TYPE ... USING (also to the same
# type: the shape does not change, the values do). pgoutput sends none of
# them; the DDL capture sends the rows as the rewrite left them
# (rewrite_row), and the worker records each: an UPDATE with exact old values
# for a table whose key the DDL left alone, a truncate and baseline rows for
# a table without a key or one whose key a USING may have rewritten. And
# columns a DROP DOMAIN/TYPE ... CASCADE drops (no ALTER TABLE names the
# table) are captured on sql_drop: the relation version changes at the drop.
source "$(dirname "$0")/lib.sh"
source_db rewrite_rows rewriterows
LOG=$TMP/run.log
H() { q $DB "$@"; }

wide_cols=$(seq -s, 1 120 | sed 's/\([0-9]*\)/c\1 int/g')
H "CREATE SEQUENCE sq START 100;
   CREATE TABLE k (id int PRIMARY KEY, n int, t text);
   INSERT INTO k SELECT g, g, 'r' || g FROM generate_series(1, 5) g;
   UPDATE k SET n = NULL WHERE id = 5;
   CREATE TABLE kk (id int PRIMARY KEY, v text);            -- the key itself rewritten by USING
   INSERT INTO kk VALUES (1, 'a'), (2, 'b');
   CREATE TABLE kl (a int, b text);                         -- keyless, equal rows
   ALTER TABLE kl REPLICA IDENTITY FULL;
   INSERT INTO kl VALUES (1, 'x'), (1, 'x'), (2, 'y');
   CREATE TABLE pt (id int PRIMARY KEY, v int) PARTITION BY RANGE (id);
   CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (10);
   CREATE TABLE pt2 PARTITION OF pt FOR VALUES FROM (10) TO (20);
   INSERT INTO pt VALUES (1, 1), (2, 2), (11, 11);
   CREATE TABLE wide (id int PRIMARY KEY, $wide_cols);       -- more columns than a function takes arguments
   INSERT INTO wide (id, c1, c120) VALUES (1, 1, 120), (2, 2, 240);
   CREATE DOMAIN dm_pos AS int CHECK (VALUE > 0);
   CREATE TYPE en AS ENUM ('x', 'y');
   CREATE TABLE dd (id int PRIMARY KEY, p dm_pos, e en, v text);
   INSERT INTO dd VALUES (1, 5, 'x', 'a'), (2, 6, 'y', 'b');
   CREATE TABLE big (id int PRIMARY KEY, n numeric(12,3), v text);   -- more rows than a batch (5000) or fetch (2000)
   INSERT INTO big SELECT g, g + 0.125, 'v' || g FROM generate_series(1, 12001) g;
   CREATE TABLE ddk (a int, p dm_pos);                      -- keyless: its rows' digests follow
   ALTER TABLE ddk REPLICA IDENTITY FULL;
   INSERT INTO ddk VALUES (1, 1), (1, 2);"
w_setup
grep -q "event trigger walrev_capture_drop" "$TMP/setup.out" || fail "setup installs the sql_drop capture"
pass "setup installs the sql_drop capture"

point() {
  H "COPY (SELECT * FROM $2) TO STDOUT" | sort >"$TMP/p$1.$2.copy"
  current_lsn $DB >"$TMP/p$1.$2.lsn"
}
check() {
  expect_eq "point $1: snapshot of $2 equals the table" \
    "$(W snapshot --at "$(cat "$TMP/p$1.$2.lsn")" --table "$2" 2>"$TMP/snap.err" | sort)" "$(cat "$TMP/p$1.$2.copy")"
}

"$WALREV_BIN" --source "$SRC" --slot rewriterows run 2>>"$LOG" &
wpid=$!
on_exit 'kill $wpid 2>/dev/null'

H "ALTER TABLE k ADD COLUMN r float8 DEFAULT random(), ADD COLUMN c timestamptz DEFAULT clock_timestamp(),
     ADD COLUMN s int DEFAULT nextval('sq'), ADD COLUMN i int GENERATED ALWAYS AS IDENTITY"
point 1 k
H "ALTER TABLE k ALTER COLUMN n TYPE int USING n * 10 + length(t)"   # the same type: the same shape
point 2 k
H "ALTER TABLE k ALTER COLUMN t TYPE text USING upper(t) || r::text, ALTER COLUMN s TYPE bigint USING s - 50"
point 3 k
H "UPDATE k SET t = 'later' WHERE id = 2"
point 4 k
H "ALTER TABLE kk ALTER COLUMN id TYPE bigint USING id + 100"
point 1 kk
H "UPDATE kk SET v = 'b2' WHERE id = 102"
point 2 kk
H "ALTER TABLE kl ADD COLUMN r float8 DEFAULT random()"
point 1 kl
H "DELETE FROM kl WHERE ctid = (SELECT ctid FROM kl WHERE a = 1 LIMIT 1)"
point 2 kl
H "ALTER TABLE pt ALTER COLUMN v TYPE bigint USING v * 2"
for t in pt pt1 pt2; do point 1 $t; done
H "ALTER TABLE wide ALTER COLUMN c120 TYPE bigint USING c120 + c1"
point 1 wide
# restated from the history in batches (a constant default, a cast by the source), then rows sent by the capture
H "ALTER TABLE big ADD COLUMN d text DEFAULT 'dd', ALTER COLUMN n TYPE numeric(12,1)"
point 1 big
H "ALTER TABLE big ADD COLUMN r int DEFAULT (random() * 1000)::int"
point 2 big
point 1 dd
H "DROP DOMAIN dm_pos CASCADE"
point 2 dd
point 2 ddk
H "DROP TYPE en CASCADE"
point 3 dd
kill -TERM $wpid
wait $wpid || fail "the worker stopped cleanly"
H "INSERT INTO ddk VALUES (1); DELETE FROM ddk WHERE ctid = (SELECT ctid FROM ddk LIMIT 1);
   UPDATE dd SET v = 'a2' WHERE id = 1"
point 3 ddk
point 4 dd
run_to_now "$LOG" --source "$SRC" --slot rewriterows

for p in 1 2 3 4; do check $p k; done
for p in 1 2; do check $p kk; check $p kl; done
for t in pt pt1 pt2 wide; do check 1 $t; done
check 1 big; check 2 big
expect_eq "the restatement of 12001 rows: one UPDATE each in the ADD COLUMN's revision, one each for the rows" \
  "$(H "SELECT string_agg(n::text, ' ' ORDER BY revision_id) FROM (SELECT revision_id, count(*) AS n
        FROM walrev.object_delta WHERE relid = 'big'::regclass AND op = 'U' GROUP BY revision_id) x")" "12001 12001"
for p in 1 2 3 4; do check $p dd; done
for p in 2 3; do check $p ddk; done

# history: the rewrite's values as UPDATEs with exact old values, the same as the table holds
expect_eq "ADD COLUMN: each row's volatile default, clock and sequence values and identity recorded, old NULL" \
  "$(H "SELECT string_agg(od.key || ':' || ad.col_id || ':' || ad.flags || ':' || coalesce(ad.old_value, 'NULL')
                          || '>' || ad.new_value, ' ' ORDER BY od.key, ad.col_id)
        FROM walrev.attribute_delta ad JOIN walrev.object_delta od USING (revision_id, seq)
        WHERE od.relid = 'k'::regclass AND od.op = 'U' AND od.revision_id = (SELECT min(revision_id)
          FROM walrev.object_delta WHERE relid = 'k'::regclass AND op = 'U')")" \
  "$(H "SELECT string_agg(format('[\"%s\"]:%s:0:NULL>%s', id, x.n, x.v), ' ' ORDER BY format('[\"%s\"]', id), x.n)
        FROM (SELECT id, r, c, s, i FROM k) k0, LATERAL (VALUES (4, format('%s', r)), (5, format('%s', c)),
          (6, format('%s', s + 50)), (7, format('%s', i))) x(n, v)")"
expect_eq "the USING retype to the same type: old and new values exact, a NULL left alone" \
  "$(H "SELECT string_agg(od.key || ':' || ad.old_value || '>' || ad.new_value, ' ' ORDER BY od.key)
        FROM walrev.attribute_delta ad JOIN walrev.object_delta od USING (revision_id, seq)
        WHERE od.relid = 'k'::regclass AND od.op = 'U' AND ad.col_id = 2")" \
  '["1"]:1>12 ["2"]:2>22 ["3"]:3>32 ["4"]:4>42'
expect_eq "the later UPDATE of k records the rewritten text as its old value" \
  "$(H "SELECT ad.old_value FROM walrev.attribute_delta ad JOIN walrev.object_delta od USING (revision_id, seq)
        WHERE od.relid = 'k'::regclass AND ad.new_value = 'later'")" "$(H "SELECT 'R2' || r::text FROM k WHERE id = 2")"
expect_eq "no value of k, kk, kl or pt is flagged unknown" \
  "$(H "SELECT count(*) FROM walrev.attribute_delta ad JOIN walrev.object_delta od USING (revision_id, seq)
        WHERE od.relid IN ('k'::regclass, 'kk'::regclass, 'kl'::regclass, 'pt1'::regclass, 'pt2'::regclass)
          AND ad.flags & 6 <> 0")" "0"
expect_eq "a key rewritten by USING: the rows begin anew under their new keys (a truncate, then baseline rows)" \
  "$(H "SELECT string_agg(op::text || coalesce(key, ''), ' ' ORDER BY revision_id, seq) FROM walrev.object_delta
        WHERE relid = 'kk'::regclass")" 'S["1"] S["2"] T S["101"] S["102"] U["102"]'
expect_eq "a keyless table's rewrite: truncate and its three rows; the FULL delete found one of them" \
  "$(H "SELECT string_agg(op::text, '' ORDER BY revision_id, seq) FROM walrev.object_delta
        WHERE relid = 'kl'::regclass")" 'SSSTSSSD'
expect_eq "the keyless delete matched a row of the rewrite (no new identity)" \
  "$(H "SELECT count(*) FROM walrev.object_delta d WHERE relid = 'kl'::regclass AND op = 'D' AND NOT old_unknown
          AND key IN (SELECT key FROM walrev.object_delta WHERE relid = 'kl'::regclass AND op = 'S'
                      AND revision_id = (SELECT max(revision_id) FROM walrev.object_delta
                                         WHERE relid = 'kl'::regclass AND op = 'T'))")" "1"
expect_eq "the wide table's column 121 rewritten in both rows" \
  "$(H "SELECT string_agg(od.key || ':' || ad.old_value || '>' || ad.new_value, ' ' ORDER BY od.key)
        FROM walrev.attribute_delta ad JOIN walrev.object_delta od USING (revision_id, seq)
        WHERE od.relid = 'wide'::regclass AND od.op = 'U'")" '["1"]:120>121 ["2"]:240>242'
expect_eq "DROP DOMAIN and DROP TYPE ... CASCADE: a relation version of dd at each drop" \
  "$(H "SELECT string_agg(array_length(col_ids, 1)::text, ',' ORDER BY version) FROM walrev.relation_version
        WHERE relid = 'dd'::regclass")" "4,3,2"
expect_eq "the version without the domain column is valid from the drop, before any row of dd changed" \
  "$(H "SELECT valid_from <= '$(cat "$TMP/p2.dd.lsn")' FROM walrev.relation_version
        WHERE relid = 'dd'::regclass AND array_length(col_ids, 1) = 3")" "t"
grep -q 'values rewritten outside the WAL are not known' "$LOG" && fail "no value is unknown"
pass "no value is unknown"
W verify >/dev/null 2>&1 || fail verify
pass "verify passes"
