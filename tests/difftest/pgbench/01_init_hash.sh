#!/usr/bin/env bash
# pgbench's tables, pgbench_accounts in 8 hash partitions
pgbench -i -q -s 1 --partitions=8 --partition-method=hash 2>&1
