#!/usr/bin/env bash
# TPC-B-like after the DDL
pgbench -n -c 4 -j 2 -T 4 2>&1 | sed -E -n "/^number of (transactions|failed)/p; s/.*(ERROR:.*)/\1/p"
