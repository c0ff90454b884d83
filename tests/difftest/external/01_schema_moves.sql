-- ALTER TABLE ... SET SCHEMA, renames, DROP and re-CREATE of the same name
CREATE SCHEMA ext_other;
CREATE TABLE mover (id int PRIMARY KEY, v text);
INSERT INTO mover VALUES (1, 'a'), (2, 'b');
ALTER TABLE mover SET SCHEMA ext_other;
UPDATE ext_other.mover SET v = 'b2' WHERE id = 2;
INSERT INTO ext_other.mover VALUES (3, 'c');
CREATE TABLE reborn (id int PRIMARY KEY, v text);
INSERT INTO reborn VALUES (1, 'first life');
DROP TABLE reborn;
CREATE TABLE reborn (k text PRIMARY KEY, n numeric, extra bool DEFAULT true);
INSERT INTO reborn VALUES ('a', 1.5), ('b', NULL);
ALTER TABLE base_keyed ALTER COLUMN v SET DEFAULT 'new default';
INSERT INTO base_keyed (id) VALUES (21), (22);
UPDATE base_keyed SET v = DEFAULT WHERE id = 3;
