#!/usr/bin/env bash
# pgbench's tables made again without partitions, with foreign keys, loaded server-side
pgbench -i -q -s 1 -I dtGvpf 2>&1
