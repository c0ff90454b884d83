#!/usr/bin/env bash
# pgbench (external.py runs a .sh file under bash, PGDATABASE naming the
# database): pgbench_accounts in 4 range partitions, 4 clients at once moving
# rows across partitions by key changes, deleting and upserting
# (../pgbench/move.pgb), then the built-in TPC-B-like script; a fixed number
# of transactions. tests/difftest/pgbench is the longer run.
pgbench -i -q -s 1 --partitions=4 --partition-method=range 2>&1 | sed -E -n 's/.*(ERROR:.*)/\1/p'
pgbench -n -c 4 -j 2 -t 40 -f ../pgbench/move.pgb 2>&1 | sed -E -n '/^number of failed/p; s/.*(ERROR:.*)/\1/p'
pgbench -n -c 4 -j 2 -t 40 2>&1 | sed -E -n '/^number of failed/p; s/.*(ERROR:.*)/\1/p'
