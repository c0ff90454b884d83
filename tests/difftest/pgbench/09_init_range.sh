#!/usr/bin/env bash
# pgbench_accounts dropped and made again in 8 range partitions
pgbench -i -q -s 1 --partitions=8 --partition-method=range 2>&1
