-- composite, enum, domain and range columns; TRUNCATE ... CASCADE
CREATE TABLE typed (id int PRIMARY KEY, m ext_mood, p ext_pos, pr ext_pair, r int4range, ts tstzrange,
                    arr ext_mood[], parr ext_pair[]);
INSERT INTO typed VALUES
  (1, 'ok', 5, ROW(1, 'a b'), '[1,5)', '[2024-01-01 00:00+00,2024-02-01 00:00+00)', '{ok,bad}', ARRAY[ROW(1,'x')::ext_pair]),
  (2, NULL, 1, ROW(NULL, ''), 'empty', NULL, '{}', '{}'),
  (3, 'meh', 7, ROW(-3, 'q"x\'), '(,10]', '(,)', NULL, NULL);
UPDATE typed SET pr.y = 'changed', r = '[3,4]' WHERE id = 1;
ALTER TYPE ext_mood ADD VALUE 'great';
UPDATE typed SET m = 'great' WHERE id = 3;
CREATE TABLE t_parent (id int PRIMARY KEY);
CREATE TABLE t_child (id int PRIMARY KEY, pid int REFERENCES t_parent);
INSERT INTO t_parent SELECT generate_series(1, 5);
INSERT INTO t_child SELECT g, g FROM generate_series(1, 5) g;
TRUNCATE t_parent CASCADE;
INSERT INTO t_parent VALUES (9);
TRUNCATE base_keyless;
INSERT INTO base_keyless VALUES (7, 'after truncate'), (7, 'after truncate');
