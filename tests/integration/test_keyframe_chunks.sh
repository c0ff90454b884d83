#!/usr/bin/env bash
# Keyframes are stored packed (store format 7, issue 16 P6): up to 64 rows in
# key order per keyframe_chunk row (keys[i] and rows[i], the vals literal),
# fewer when their bytes reach 6000 so a chunk stays in line, first_key the
# chunk's lowest key, and the view keyframe_row unnests them. The CLI's
# snapshot splits the literals itself: values that need quoting in an array
# literal come out as the table has them, with deltas on top and without. The worker's old-image lookups find a key
# in the chunk that covers it (the first and last key of every chunk are
# updated by a fresh worker, whose cache is empty), and a format 6 store
# (one keyframe_row per row) is packed in place by `walrev setup`: the same
# rows, verify still proves them, and lookups read the packed chunks.
# Every C reader of a keyframe reads its chunks with the snapshot's decoder
# (schema/kfchunk.h): the keyframe thread's fold of the previous keyframe and
# the deltas (a new keyframe of odd, its quoting rows 1-8 only in the old
# one's chunks), the server-sorted snapshot (--memory 0); a misread literal
# shows as a row unlike the table's, and in verify's keyframe check.
source "$(dirname "$0")/lib.sh"
source_db kfc_src kfc

q $DB "CREATE TABLE big (id int PRIMARY KEY, v text, n int);
       INSERT INTO big SELECT g, 'v' || g, g % 7 FROM generate_series(1, 300) g;
       CREATE TABLE odd (id int PRIMARY KEY, v text, w text);
       INSERT INTO odd VALUES (1, '', NULL), (2, 'NULL', 'null'), (3, 'a,b', '{x}'), (4, 'say \"hi\"', E'back\\\\slash'),
           (5, ' lead', E'tab\\there'), (6, E'line\\nbreak', 'ünï'), (7, 'plain', ''), (8, '}', '\"');
       INSERT INTO odd SELECT g, 'p' || g, NULL FROM generate_series(9, 300) g;  -- 250 rows or more: a baseline keyframe
       CREATE TABLE wide (id int PRIMARY KEY, pad text);
       INSERT INTO wide SELECT g, (SELECT string_agg(md5(g || ':' || i), '') FROM generate_series(1, 30) i)
           FROM generate_series(1, 300) g;"
W setup >"$TMP/setup.out" 2>&1 || { cat "$TMP/setup.out"; fail setup; }
KF=$(q $DB "$H SELECT id FROM keyframe WHERE relid = 'public.big'::regclass")
[ -n "$KF" ] || fail "no baseline keyframe of big"

# chunks: their sizes, each in key order from its first_key, together every row once in key order
layout() {
  q $DB "$H SELECT count(*) || ':' || min(cardinality(rows)) || ':' || max(cardinality(rows)) || ':'
               || bool_and(first_key = keys[1] AND cardinality(keys) = cardinality(rows))
             FROM keyframe_chunk WHERE keyframe_id = $KF"
  q $DB "$H SELECT (SELECT array_agg(u.key ORDER BY c.first_key, u.o) FROM keyframe_chunk c,
                      unnest(c.keys) WITH ORDINALITY AS u(key, o) WHERE c.keyframe_id = $KF)
                 = (SELECT array_agg(key ORDER BY key) FROM keyframe_row WHERE keyframe_id = $KF)"
}
expect_eq "300 rows in 5 chunks of at most 64, each from its first key, in key order" "$(layout)" "5:44:64:true
t"
expect_eq "keyframe_row (the view) holds every row with its values" \
  "$(q $DB "$H SELECT count(*) || ':' || count(*) FILTER (WHERE vals[2] = 'v' || (key::json->>0)) FROM keyframe_row
             WHERE keyframe_id = $KF")" "300:300"
expect_eq "keyframe_rows_of finds a key in its chunk, and none for a key no chunk holds" \
  "$(q $DB "$H SELECT string_agg(coalesce(r.vals[2], '-'), ',' ORDER BY k.o)
             FROM unnest(ARRAY['[\"1\"]', '[\"199\"]', '[\"99\"]', '[\"0\"]', '[\"999\"]']) WITH ORDINALITY AS k(key, o)
             LEFT JOIN LATERAL keyframe_rows_of($KF, k.key) r ON true")" "v1,v199,v99,-,-"

# update the first and the last row of every chunk through a fresh worker:
# each old image comes from the keyframe (the worker's cache starts empty)
EDGES=$(q $DB "$H SELECT string_agg(DISTINCT (e.key::json->>0), ',') FROM keyframe_chunk c,
                 LATERAL (VALUES (c.keys[1]), (c.keys[cardinality(c.keys)])) e(key)
               WHERE c.keyframe_id = $KF")
NEDGES=$(echo "$EDGES" | tr ',' '\n' | wc -l)
check_old_images() {
  local what=$1 suffix=$2
  q_at END "UPDATE big SET v = v || '$suffix' WHERE id IN ($EDGES)"
  W run --stop-lsn "$END" >"$TMP/run_$suffix.log" 2>&1 || { cat "$TMP/run_$suffix.log"; fail "run $what"; }
  expect_eq "$what: every edge row's old value came from its chunk" \
    "$(q $DB "$H SELECT count(*) || ':' || count(*) FILTER (WHERE NOT old_unknown AND old_values[1] || '$suffix' = new_values[1])
               FROM object_delta_arrays WHERE relid = 'public.big'::regclass AND op = 'U' AND new_values[1] LIKE '%$suffix'")" \
    "$NEDGES:$NEDGES"
}
check_old_images "after setup" x
OUT=$(W verify 2>&1) || { echo "$OUT"; fail verify; }
pass "verify: $OUT"

# ---- literals that quote, chunks closed by bytes, writes through the view ----
same_as_table() { # same_as_table TABLE WHAT: the CLI's snapshot equals the table
  local a b
  a=$(W snapshot --table "$1" | LC_ALL=C sort | md5sum)
  b=$($PSQL -d $DB -c "COPY (SELECT * FROM $1) TO STDOUT" | LC_ALL=C sort | md5sum)
  expect_eq "$2" "$a" "$b"
}
[ -n "$(q $DB "$H SELECT id FROM keyframe WHERE relid = 'public.odd'::regclass")" ] || fail "no baseline keyframe of odd"
same_as_table odd "odd values from the keyframe alone (the fold splits the literals)"
q_at END "UPDATE odd SET w = w || '!' WHERE id IN (2, 4)"
W run --stop-lsn "$END" >"$TMP/run_odd.log" 2>&1 || { cat "$TMP/run_odd.log"; fail "run odd"; }
same_as_table odd "odd values from the keyframe with deltas on top (keyed)"
WKF=$(q $DB "$H SELECT id FROM keyframe WHERE relid = 'public.wide'::regclass")
expect_eq "wide rows: chunks closed once their bytes reach 6000 (7 rows of about 970 B), none out of line" \
  "$(q $DB "$H SELECT count(*) || ':' || max(cardinality(keys)) || ':'
                   || bool_and(octet_length(array_to_string(keys[1:cardinality(keys) - 1], ''))
                               + octet_length(array_to_string(rows[1:cardinality(rows) - 1], '')) < 6000)
                   || ':' || (SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'walrev.keyframe_chunk'::regclass)
             FROM keyframe_chunk WHERE keyframe_id = $WKF")" "43:7:true:0"
same_as_table wide "wide rows from their chunks"
ALL=$(q $DB "$H SELECT md5(string_agg(keyframe_id || key || relversion || vals::text, ',' ORDER BY keyframe_id, key))
              FROM keyframe_row")
q $DB "$H INSERT INTO keyframe_row VALUES ($KF, '[\"150a\"]', 99, '{150a,forged,1}')" >/dev/null
expect_eq "a row written through the view: in the chunk that covers it, its own relversion, its neighbours kept" \
  "$(q $DB "$H SELECT string_agg(r.key || '=' || r.relversion || ':' || r.vals[2], ' ' ORDER BY k.o)
             FROM unnest(ARRAY['[\"150\"]', '[\"150a\"]', '[\"151\"]']) WITH ORDINALITY AS k(key, o),
                  LATERAL keyframe_rows_of($KF, k.key) r")" \
  "[\"150\"]=1:v150 [\"150a\"]=99:forged [\"151\"]=1:v151"
if q $DB "$H INSERT INTO keyframe_row VALUES ($KF, '[\"150a\"]', 99, '{x}')" >/dev/null 2>&1; then
  fail "a second row of the same key was accepted"
fi
q $DB "$H DELETE FROM keyframe_row WHERE keyframe_id = $KF AND key = '[\"150a\"]'" >/dev/null
expect_eq "deleted through the view: every keyframe row as before" \
  "$(q $DB "$H SELECT md5(string_agg(keyframe_id || key || relversion || vals::text, ',' ORDER BY keyframe_id, key))
             FROM keyframe_row")" "$ALL"

# ---- a format 6 store: one keyframe_row tuple per row, packed by setup ----
BEFORE=$(q $DB "$H SELECT md5(string_agg(keyframe_id || key || relversion || vals::text, ',' ORDER BY keyframe_id, key))
                 FROM keyframe_row")
q $DB "$H BEGIN;
       CREATE TABLE kr6 AS SELECT keyframe_id, key, relversion, vals FROM keyframe_row;
       DROP VIEW keyframe_row; DROP TABLE keyframe_chunk;
       ALTER TABLE kr6 RENAME TO keyframe_row;
       ALTER TABLE keyframe_row ALTER COLUMN keyframe_id SET NOT NULL, ALTER COLUMN key SET NOT NULL,
           ALTER COLUMN relversion SET NOT NULL, ALTER COLUMN vals SET NOT NULL, ADD PRIMARY KEY (keyframe_id, key);
       UPDATE store_info SET value = '6' WHERE key = 'format_version';
       COMMIT" >/dev/null
expect_eq "the format 6 store: keyframe_row a table of one row per keyframe row" \
  "$(q $DB "$H SELECT relkind::text || ':' || (SELECT count(*) FROM keyframe_row) FROM pg_class WHERE oid = 'walrev.keyframe_row'::regclass")" \
  "r:$(q $DB "$H SELECT sum(n_rows) FROM keyframe")"
upgrade_by_setup 6
expect_eq "setup (twice) packs it in place: format 7, keyframe_row a view, the same rows" \
  "$(q $DB "$H SELECT (SELECT value FROM store_info WHERE key = 'format_version') || ':' || relkind::text FROM pg_class
             WHERE oid = 'walrev.keyframe_row'::regclass")
$(q $DB "$H SELECT md5(string_agg(keyframe_id || key || relversion || vals::text, ',' ORDER BY keyframe_id, key))
          FROM keyframe_row")" "7:v
$BEFORE"
expect_eq "the packed keyframe: 5 chunks of at most 64, in key order" "$(layout)" "5:44:64:true
t"
OUT=$(W verify 2>&1) || { echo "$OUT"; fail "verify after the upgrade"; }
pass "verify after the upgrade: $OUT"
check_old_images "after the upgrade" y
a=$(W snapshot --table big | sort | md5sum)
b=$($PSQL -d $DB -c "COPY (SELECT * FROM big) TO STDOUT" | sort | md5sum)
expect_eq "snapshot after the upgrade equals the table" "$a" "$b"

# ---- the keyframe thread folds the previous keyframe's chunks (rows 1-8 untouched since) ----
OKF=$(q $DB "$H SELECT max(id) FROM keyframe WHERE relid = 'public.odd'::regclass")
q_at END "DO \$\$ BEGIN FOR r IN 1..4 LOOP UPDATE odd SET w = 'r' || r WHERE id > 8; END LOOP; END \$\$"
W run --stop-lsn "$END" >"$TMP/run_kf.log" 2>&1 || { cat "$TMP/run_kf.log"; fail "run for a new keyframe of odd"; }
NKF=$(q $DB "$H SELECT max(id) FROM keyframe WHERE relid = 'public.odd'::regclass")
[ "$NKF" -gt "$OKF" ] || fail "no new keyframe of odd after 1,168 deltas (keyframe $OKF, then $NKF)"
expect_eq "the new keyframe of odd, folded from the old one's chunks and the deltas, holds the table's rows" \
  "$(q $DB "$H SELECT string_agg(key || '=' || vals::text, ' ' ORDER BY key) FROM keyframe_row WHERE keyframe_id = $NKF")" \
  "$(q $DB "SELECT string_agg(format('[\"%s\"]', id) || '=' || ARRAY[id::text, v, w]::text, ' '
             ORDER BY format('[\"%s\"]', id) COLLATE \"C\") FROM odd")"
same_as_table odd "odd from the new keyframe alone"
a=$(W snapshot --table odd --memory 0 | LC_ALL=C sort | md5sum)
expect_eq "odd through the server-sorted fold (--memory 0): the chunks merged with the deltas" "$a" \
  "$($PSQL -d $DB -c "COPY (SELECT * FROM odd) TO STDOUT" | LC_ALL=C sort | md5sum)"
q_at END "UPDATE odd SET v = v || '?' WHERE id IN (1, 3, 5, 150)"
W run --stop-lsn "$END" >"$TMP/run_kf2.log" 2>&1 || { cat "$TMP/run_kf2.log"; fail "run odd 2"; }
a=$(W snapshot --table odd --memory 0 | LC_ALL=C sort | md5sum)
expect_eq "odd through the server-sorted fold, deltas on top of the new keyframe" "$a" \
  "$($PSQL -d $DB -c "COPY (SELECT * FROM odd) TO STDOUT" | LC_ALL=C sort | md5sum)"
OUT=$(W verify 2>&1) || { echo "$OUT"; fail "verify with the folded keyframe"; }
pass "verify with the folded keyframe: $OUT"
