-- DDL under session_replication_role = replica (what a replication tool's
-- apply session runs under; PostgreSQL's event_trigger.sql does it): event
-- triggers enabled ORIGIN fire for nothing there, while the WAL still reaches
-- the slot. walrev's are ENABLE ALWAYS: the table created empty is known, the
-- volatile default's rewrite sends its values, the new schema is published.
SET session_replication_role = replica;
CREATE TABLE replica_empty (a int);
CREATE TABLE replica_rows (id int PRIMARY KEY, v text);
INSERT INTO replica_rows VALUES (1, 'a'), (2, 'b');
ALTER TABLE replica_rows ADD COLUMN n int DEFAULT (random() * 0)::int + 5;
CREATE SCHEMA replica_schema;
CREATE TABLE replica_schema.t (id int PRIMARY KEY, w text);
INSERT INTO replica_schema.t VALUES (1, 'x');
RESET session_replication_role;
UPDATE replica_rows SET v = 'c' WHERE id = 2;
INSERT INTO replica_schema.t VALUES (2, 'y');
DROP TABLE replica_empty;
