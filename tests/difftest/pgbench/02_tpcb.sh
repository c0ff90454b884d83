#!/usr/bin/env bash
# the built-in TPC-B-like script, 4 clients
pgbench -n -c 4 -j 2 -T 4 2>&1 | sed -E -n "/^number of (transactions|failed)/p; s/.*(ERROR:.*)/\1/p"
