#!/usr/bin/env bash
# TPC-B-like
pgbench -n -c 4 -j 2 -T 3 2>&1 | sed -E -n "/^number of (transactions|failed)/p; s/.*(ERROR:.*)/\1/p"
