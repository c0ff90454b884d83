"""stream_revisions.py: what the shell tests that compare a stream of walrev
messages (`walrev tail --format json`, file or Kafka) with the history
store's revisions both read. Run them with PYTHONPATH at this folder."""
import json


def read_history(path):
    """(xid, commit LSN) -> revision id, from lines `id xid commit_lsn`."""
    hist = {}
    for line in open(path):
        i, x, l = line.split()
        hist[(int(x), l)] = int(i)
    return hist


def read_messages(path):
    """Each message of a `walrev tail --format json` output, a Kafka
    record's value unwrapped."""
    for line in open(path):
        v = json.loads(line)
        yield v.get("value", v)
