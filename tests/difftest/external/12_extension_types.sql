-- Extensions' types and operators in the tracked database (issue 13, found by
-- external.py on PostgreSQL's contrib tests). intarray adds && @> <@ for
-- integer[], which makes the same operators on smallint[] ambiguous in every
-- query that leaves them unqualified: walrev's history functions live in the
-- same database and must name pg_catalog's.
CREATE EXTENSION IF NOT EXISTS intarray;
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE EXTENSION IF NOT EXISTS citext;
CREATE TABLE ext_keyless (a int, tags int[], h hstore);
INSERT INTO ext_keyless SELECT g, ARRAY[g, g + 1], hstore('k', g::text) FROM generate_series(1, 5) g;
INSERT INTO ext_keyless VALUES (1, '{1,2}', 'k=>1');
CREATE TABLE ext_keyed (id citext PRIMARY KEY, tags int[], h hstore);
INSERT INTO ext_keyed VALUES ('a', '{1}', 'x=>1'), ('B', '{2,3}', 'y=>2, z=>NULL'), ('c', NULL, '');
UPDATE ext_keyed SET id = 'A' WHERE id = 'a';
UPDATE ext_keyed SET tags = tags | 7, h = h || 'w=>"q r"' WHERE id = 'b';
CREATE TABLE ext_full (a int, tags int[], h hstore);
ALTER TABLE ext_full REPLICA IDENTITY FULL;
INSERT INTO ext_full SELECT g % 3, ARRAY[g % 2], hstore('k', (g % 2)::text) FROM generate_series(1, 6) g;
UPDATE ext_full SET tags = tags + 9 WHERE a = 1;
DELETE FROM ext_full WHERE a = 2 AND tags @> '{0}';
ALTER TABLE ext_keyed ADD COLUMN n citext DEFAULT 'Dflt';
UPDATE ext_keyed SET n = 'N' WHERE id = 'A';
DELETE FROM ext_keyed WHERE id = 'C';
INSERT INTO ext_keyless SELECT g, ARRAY[g], NULL FROM generate_series(6, 8) g;
