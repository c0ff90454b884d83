#!/usr/bin/env bash
# key changes across partitions, deletes, upserts
pgbench -n -c 4 -j 2 -T 4 -f move.pgb 2>&1 | sed -E -n "/^number of (transactions|failed)/p; s/.*(ERROR:.*)/\1/p"
