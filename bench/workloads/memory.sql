-- memory.sql — scenario 4's tables: a narrow table for one huge INSERT
-- transaction, and one whose payload is TOASTed out of line uncompressed
-- (STORAGE EXTERNAL), so every 1 MiB value travels whole through the WAL.
CREATE TABLE big (id bigint PRIMARY KEY, a text NOT NULL, b integer NOT NULL, c timestamptz NOT NULL);
CREATE TABLE toasty (id integer PRIMARY KEY, n integer NOT NULL, payload text NOT NULL);
ALTER TABLE toasty ALTER COLUMN payload SET STORAGE EXTERNAL;
