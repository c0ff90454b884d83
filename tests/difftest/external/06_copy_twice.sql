-- Two COPY ... FROM stdin in one line, as PostgreSQL's copyselect.sql has
-- them: with --marks, external.py must not stop between their data blocks
-- (psql would wait for the second block while external.py waited for the
-- mark: the file timed out, silently, and its tables were never compared).
CREATE TABLE copy_twice (c int, note text);
INSERT INTO copy_twice VALUES (0, 'before');
select 0\; copy copy_twice from stdin\; copy copy_twice from stdin\; select 1;
1	first block
\.
2	second block
\.
UPDATE copy_twice SET note = 'after ' || note WHERE c = 1;
INSERT INTO copy_twice VALUES (3, 'last');
SELECT count(*) FROM copy_twice;
