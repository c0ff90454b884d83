#!/usr/bin/env bash
# simple-update and select-only mixed
pgbench -n -c 4 -j 2 -T 3 -b simple-update@3 -b select-only@1 2>&1 | sed -E -n "/^number of (transactions|failed)/p; s/.*(ERROR:.*)/\1/p"
