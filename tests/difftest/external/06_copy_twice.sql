-- COPY ... FROM stdin as PostgreSQL's copyselect.sql, copy2.sql and
-- tsearch.sql have them: psql's \copy with data lines ending in ';', one
-- that fails before reading (no data follows it), and two in one line.
-- With --marks, external.py must neither stop inside a data block nor take
-- the SQL after a failing COPY for its data (psql waited for the rest of
-- the data while external.py waited for the mark: the file timed out,
-- silently, and its tables were never compared).
CREATE TABLE copy_twice (c int, note text);
INSERT INTO copy_twice VALUES (0, 'before');
\copy copy_twice from stdin
4	psql copy;
5	psql copy again;
\.
-- fails: no data block follows
copy (select * from copy_twice) from stdin;
UPDATE copy_twice SET note = 'updated;' WHERE c = 0;
select 0\; copy copy_twice from stdin\; copy copy_twice from stdin\; select 1;
1	first block
\.
2	second block
\.
UPDATE copy_twice SET note = 'after ' || note WHERE c = 1;
INSERT INTO copy_twice VALUES (3, 'last');
SELECT count(*) FROM copy_twice;
