#!/usr/bin/python3
"""Stands in for systemd: receives sd_notify datagrams on a Unix socket and
appends each one, one line per field, to a log file."""
import os
import socket
import sys

path, log = sys.argv[1], sys.argv[2]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(log, "a", buffering=1) as out:
    while True:
        data = s.recv(4096).decode("utf-8", "replace")
        for field in data.split("\n"):
            if field:
                out.write(field + "\n")
