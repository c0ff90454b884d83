-- A transaction left prepared at the file's end, as PostgreSQL's
-- prepared_xacts.sql leaves 'foo5' once an UPDATE of its keyless table is
-- refused: its identifier is the cluster's, so external.py rolls it back after
-- the file's point, before the control database runs the same file (else the
-- control's PREPARE fails "already in use", and DROP DATABASE refuses both).
CREATE TABLE px_left (id int PRIMARY KEY, v text);
INSERT INTO px_left VALUES (1, 'committed before');
BEGIN;
INSERT INTO px_left VALUES (2, 'prepared, never committed');
PREPARE TRANSACTION 'external_px_left';
INSERT INTO px_left VALUES (3, 'committed after');
UPDATE px_left SET v = 'updated after' WHERE id = 1;
-- an error naming the database: the same in both databases but for its name
DO $$ BEGIN RAISE EXCEPTION 'refused in database %', current_database(); END $$;
