#!/usr/bin/env bash
# simple-update
pgbench -n -c 4 -j 2 -T 3 -b simple-update 2>&1 | sed -E -n "/^number of (transactions|failed)/p; s/.*(ERROR:.*)/\1/p"
