-- a range partition detached concurrently, split in two and attached again;
-- a column retyped through the root; a column dropped; truncate
ALTER TABLE pgbench_accounts DETACH PARTITION pgbench_accounts_8 CONCURRENTLY;
CREATE TABLE pgbench_accounts_8b (LIKE pgbench_accounts INCLUDING ALL);
INSERT INTO pgbench_accounts_8b SELECT * FROM pgbench_accounts_8 WHERE aid > 95000;
DELETE FROM pgbench_accounts_8 WHERE aid > 95000;
ALTER TABLE pgbench_accounts ATTACH PARTITION pgbench_accounts_8 FOR VALUES FROM (87501) TO (95001);
ALTER TABLE pgbench_accounts ATTACH PARTITION pgbench_accounts_8b FOR VALUES FROM (95001) TO (MAXVALUE);
ALTER TABLE pgbench_accounts ALTER COLUMN abalance TYPE bigint;
ALTER TABLE pgbench_accounts DROP COLUMN filler;
TRUNCATE pgbench_history;
ALTER TABLE pgbench_branches ADD COLUMN created timestamptz DEFAULT clock_timestamp();
