-- DDL on pgbench's tables between runs: a column with a default, an identity
-- added to a keyless table with rows (a rewrite), FULL, a partition detached,
-- written and attached again
ALTER TABLE pgbench_accounts ADD COLUMN note text DEFAULT 'n';
ALTER TABLE pgbench_history ADD COLUMN hid bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
DELETE FROM pgbench_history WHERE hid % 5 = 0;
ALTER TABLE pgbench_accounts DETACH PARTITION pgbench_accounts_3;
UPDATE pgbench_accounts_3 SET note = 'detached' WHERE aid % 3 = 0;
ALTER TABLE pgbench_accounts ATTACH PARTITION pgbench_accounts_3 FOR VALUES WITH (modulus 8, remainder 2);
ALTER TABLE pgbench_tellers ALTER COLUMN tbalance TYPE bigint;
