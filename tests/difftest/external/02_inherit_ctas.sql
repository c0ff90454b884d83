-- INHERITS (not partitioning), CREATE TABLE AS, SELECT INTO
INSERT INTO inh_parent VALUES (3, 'parent 3');
INSERT INTO inh_child VALUES (4, 'child 4', 40);
UPDATE inh_parent SET name = name || '!' WHERE id IN (1, 4);
DELETE FROM inh_parent WHERE id = 2;
CREATE TABLE ctas AS SELECT id, v FROM base_keyed WHERE id <= 5;
SELECT id * 10 AS id10, v INTO selinto FROM base_keyed WHERE id > 18;
INSERT INTO ctas VALUES (100, 'added');
CREATE TABLE ctas_empty AS SELECT * FROM base_keyed WITH NO DATA;
