-- Lines ending in ';' inside a string literal, a function body in single
-- quotes and a nested block comment, as PostgreSQL's tsearch.sql, plpgsql.sql
-- and comments.sql have them: with --marks, external.py must not stop there
-- (the mark fed inside the literal became part of it, psql waited for the
-- rest while external.py waited for the mark: the file timed out and its
-- later points were lost).
CREATE TABLE quoted_semi (id int PRIMARY KEY, body text);
INSERT INTO quoted_semi VALUES (1, 'Water, water, every where
  And all the boards did shrink;
Water, water, every where,
  Nor any drop to drink.');
CREATE FUNCTION quoted_semi_touch() RETURNS trigger AS '
begin
    new.body := new.body || '' (touched);'';
    return new;
end;
' LANGUAGE plpgsql;
CREATE TRIGGER quoted_semi_touch BEFORE UPDATE ON quoted_semi
    FOR EACH ROW EXECUTE FUNCTION quoted_semi_touch();
/* a comment holding a statement:
SELECT 'not run';
/* nested:
SELECT 'not run either';
*/ still inside the outer comment;
*/
UPDATE quoted_semi SET body = 'E''s: ' || body WHERE id = 1;
INSERT INTO quoted_semi VALUES (2, E'escaped \' quote;
and a second line;');
SELECT id, length(body) FROM quoted_semi ORDER BY id;
