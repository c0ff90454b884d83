#!/usr/bin/env python3
"""logfmt_check.py FILE... — every line is strict logfmt as walrev writes it
(docs/configuration.md#logs): an optional journal priority "<N>", then
ts=<RFC 3339 UTC, ms> level=<error|warn|info|debug> msg="<text>" and
key=value fields; a value is a bare token (no space, '=', '"' or control
byte) or a quoted string whose only escapes are \\" \\\\ \\n \\r \\t \\uXXXX;
keys are unique. Prints each bad line with the reason and exits 1; with
--count prints how many lines were checked."""
import re
import sys

KEY = re.compile(r'[A-Za-z_][A-Za-z0-9_.-]*')
BARE = re.compile(r'[^ ="\x00-\x1f\x7f]+')
QUOTED = re.compile(r'"((?:[^"\\\x00-\x1f\x7f]|\\["\\nrt]|\\u[0-9a-f]{4})*)"')
TS = re.compile(r'\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$')


def parse(line):
    """[(key, value)] or raises ValueError."""
    m = re.match(r'<[0-7]>', line)
    if m:
        line = line[m.end():]
    pairs, pos = [], 0
    while pos < len(line):
        if pairs:
            if line[pos] != ' ':
                raise ValueError(f'no space before column {pos}')
            pos += 1
        k = KEY.match(line, pos)
        if not k:
            raise ValueError(f'no key at column {pos}')
        pos = k.end()
        if pos >= len(line) or line[pos] != '=':
            raise ValueError(f'key {k.group()} without =')
        pos += 1
        q = QUOTED.match(line, pos)
        b = None if q else BARE.match(line, pos)
        if not q and not b:
            raise ValueError(f'bad value of {k.group()} at column {pos}')
        v = q or b
        pairs.append((k.group(), v.group(1) if q else v.group()))
        pos = v.end()
    keys = [k for k, _ in pairs]
    if keys[:3] != ['ts', 'level', 'msg']:
        raise ValueError(f'starts with {keys[:3]}, not ts level msg')
    if not TS.match(pairs[0][1]):
        raise ValueError(f'ts {pairs[0][1]!r}')
    if pairs[1][1] not in ('error', 'warn', 'info', 'debug'):
        raise ValueError(f'level {pairs[1][1]!r}')
    if not re.match(r'"', line[line.index('msg=') + 4:]):
        raise ValueError('msg not quoted')
    if len(set(keys)) != len(keys):
        raise ValueError('a key twice')
    return pairs


def main():
    args = sys.argv[1:]
    count = '--count' in args
    files = [a for a in args if a != '--count']
    bad = n = 0
    for f in files:
        with open(f, encoding='utf-8', errors='strict') as fh:
            for i, line in enumerate(fh, 1):
                line = line.rstrip('\n')
                n += 1
                try:
                    parse(line)
                except ValueError as e:
                    bad += 1
                    print(f'{f}:{i}: {e}: {line}')
    if count:
        print(n)
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
