-- regclass, regtype and regproc values a rewrite's rows, a missing value and a
-- rewrite's filled-in constant carry (the DDL
-- capture sends them): a name prints unqualified where its schema is on the
-- search_path, as the walsender prints streamed ones, not 'public.reg_ref'
CREATE TABLE reg_ref (a int);
CREATE TYPE reg_mood AS ENUM ('x');
CREATE TABLE reg_names (id int PRIMARY KEY, c regclass, t regtype, p regproc, cs regclass[]);
INSERT INTO reg_names VALUES (1, 'reg_ref', 'reg_mood', 'now', '{reg_ref,pg_class}'),
                             (2, 'pg_class', 'int4', NULL, NULL);
ALTER TABLE reg_names ALTER COLUMN id TYPE bigint USING id + 0;
CREATE TABLE reg_names_keyless (c regclass, t regtype);
ALTER TABLE reg_names_keyless REPLICA IDENTITY FULL;
INSERT INTO reg_names_keyless VALUES ('reg_ref', 'reg_mood'), ('reg_ref', 'reg_mood');
ALTER TABLE reg_names_keyless ADD COLUMN v int DEFAULT (random() * 1000)::int;
-- the same names as a missing value (ADD COLUMN with a constant default, no
-- rewrite) and as a rewrite's filled-in constant (next to a volatile default)
ALTER TABLE reg_names ADD COLUMN m regclass DEFAULT 'reg_ref', ADD COLUMN mt regtype[] DEFAULT '{reg_mood,int4}';
CREATE TABLE reg_fill (id int PRIMARY KEY);
INSERT INTO reg_fill VALUES (1);  -- one row: each filled value is one value, read back
ALTER TABLE reg_fill ADD COLUMN c regclass DEFAULT 'reg_ref', ADD COLUMN v int DEFAULT (random() * 1000)::int;
