#!/usr/bin/python3
"""kafka_decode.py — an independent decoder of walrev's msgpack wire format
(docs/kafka-format.md), written only from the document, with python3-msgpack.

Reads a stream of concatenated walrev messages — a file-sink file, or Kafka
message values as written by `kcat -C -t TOPIC -e -f '%s'` — from each FILE
(or stdin for "-") and prints one JSON line per message, in the same view as
`walrev tail --format json`: bin values as "\\x" + lower-case hex. Exits 1
with a message naming the offending message if anything is not a valid
walrev message. Use /usr/bin/python3 (the system python has python3-msgpack).
"""
import json
import sys

import msgpack

FORMAT_VERSION = 1
OPS = {"insert", "update", "delete", "truncate", "snapshot"}

# Required keys per message type: key -> allowed python types (None = nil).
TABLE = {"schema": (str,), "name": (str,), "relid": (int,), "version": (int,)}
REQUIRED = {
    "delta": {
        "revision": (dict,), "seq": (int,), "table": (dict,), "op": (str,),
        "key": (str, type(None)), "context": (dict, type(None)), "changes": (list,),
    },
    "revision": {
        "revision": (dict,), "origin": (str, type(None)), "actor": (dict, type(None)),
        "description": (str, type(None)), "counts": (dict,), "tables": (list,),
        "checksum": (bytes,), "parent_checksum": (bytes,),
    },
    "relation": {
        "table": (dict,), "replident": (str,), "valid_from": (str,), "columns": (list,),
    },
}


class FormatError(Exception):
    pass


def check(msg, where):
    if not isinstance(msg, dict):
        raise FormatError(f"{where}: top level is not a map")
    if msg.get("v") != FORMAT_VERSION:
        raise FormatError(f"{where}: format version {msg.get('v')!r} is not supported")
    kind = msg.get("type")
    if kind not in REQUIRED or not isinstance(msg.get("id"), str):
        raise FormatError(f"{where}: unknown type {kind!r} or missing id")
    for key, types in REQUIRED[kind].items():
        if key not in msg or not isinstance(msg[key], types) or isinstance(msg[key], bool) and bool not in types:
            raise FormatError(f"{where}: key {key} missing or of the wrong type")
    if kind == "delta":
        for key, types in TABLE.items():
            if not isinstance(msg["table"].get(key), types):
                raise FormatError(f"{where}: table.{key} missing")
        if msg["op"] not in OPS:
            raise FormatError(f"{where}: unknown op {msg['op']!r}")
        rev = msg["revision"]
        if msg["id"] != f"{rev['id']}.{msg['seq']}":
            raise FormatError(f"{where}: id {msg['id']} is not <revision id>.<seq>")
        for change in msg["changes"]:
            if change["flags"] & 1 and ("old" in change or "new" in change):
                raise FormatError(f"{where}: a hidden column carries a value")
    elif kind == "revision":
        if len(msg["checksum"]) != 32 or len(msg["parent_checksum"]) != 32:
            raise FormatError(f"{where}: checksums must be 32 bytes")
        if msg["id"] != str(msg["revision"]["id"]):
            raise FormatError(f"{where}: id is not the revision id")


def view(obj):
    """The JSON view: bytes as \\x-hex, everything else as is."""
    if isinstance(obj, bytes):
        return "\\x" + obj.hex()
    if isinstance(obj, dict):
        return {k: view(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [view(v) for v in obj]
    return obj


def decode_stream(stream, name, out):
    unpacker = msgpack.Unpacker(stream, raw=False, strict_map_key=True)
    count = 0
    for msg in unpacker:
        check(msg, f"{name}: message {count + 1}")
        out.write(json.dumps(view(msg), ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count


def main(argv):
    paths = argv[1:] or ["-"]
    try:
        for path in paths:
            if path == "-":
                decode_stream(sys.stdin.buffer, "stdin", sys.stdout)
            else:
                with open(path, "rb") as f:
                    decode_stream(f, path, sys.stdout)
    except (FormatError, ValueError, msgpack.exceptions.UnpackException) as e:
        print(f"kafka_decode.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
