-- REPLICA IDENTITY USING INDEX, a unique index without a primary key, ON CONFLICT
CREATE TABLE ri_idx (a int NOT NULL, b text NOT NULL, c text);
CREATE UNIQUE INDEX ri_idx_ab ON ri_idx (a, b);
ALTER TABLE ri_idx REPLICA IDENTITY USING INDEX ri_idx_ab;
INSERT INTO ri_idx VALUES (1, 'x', 'one'), (2, 'y', 'two'), (3, 'z', 'three');
UPDATE ri_idx SET c = 'ONE' WHERE a = 1;
UPDATE ri_idx SET b = 'yy' WHERE a = 2;
DELETE FROM ri_idx WHERE a = 3;
CREATE TABLE uniq_nopk (u int UNIQUE, v text);
INSERT INTO uniq_nopk VALUES (1, 'a'), (2, 'b'), (NULL, 'n'), (NULL, 'n');
CREATE TABLE upsert (id int PRIMARY KEY, hits int NOT NULL DEFAULT 1, note text);
INSERT INTO upsert VALUES (1, 1, 'new'), (2, 1, 'new');
INSERT INTO upsert VALUES (1, 1, 'again'), (3, 1, 'new')
  ON CONFLICT (id) DO UPDATE SET hits = upsert.hits + 1, note = excluded.note;
INSERT INTO upsert VALUES (2, 1, 'ignored') ON CONFLICT DO NOTHING;
INSERT INTO upsert VALUES (2, 5, 'cond') ON CONFLICT (id) DO UPDATE SET hits = 99 WHERE upsert.hits > 10;
