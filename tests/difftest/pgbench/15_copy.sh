#!/usr/bin/env bash
# bulk inserts into the split range
pgbench -n -c 4 -j 2 -T 3 -f copy.pgb 2>&1 | sed -E -n "/^number of (transactions|failed)/p; s/.*(ERROR:.*)/\1/p"
