-- ALTER SCHEMA ... RENAME TO renames every table in it with no row change
-- after (PostgreSQL's namespace.sql): each is known under its new name.
CREATE SCHEMA rename_me
    CREATE TABLE keyed (id int PRIMARY KEY, v text)
    CREATE TABLE keyless (v text)
    CREATE TABLE never_written (a int);
INSERT INTO rename_me.keyed VALUES (1, 'a'), (2, 'b');
INSERT INTO rename_me.keyless VALUES ('x'), ('x');
ALTER SCHEMA rename_me RENAME TO renamed;
SELECT count(*) FROM renamed.keyed;
ALTER SCHEMA renamed RENAME TO renamed_again;
UPDATE renamed_again.keyed SET v = 'c' WHERE id = 2;
