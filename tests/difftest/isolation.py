#!/usr/bin/env python3
"""tests/difftest/isolation.py — PostgreSQL's isolation specs as a workload for
external.py: concurrent sessions interleaved step by step by PostgreSQL's own
isolationtester, under a tracked database (docs/difftest.md).

    python3 tests/difftest/isolation.py --specs $PG/src/test/isolation/specs --out DIR [--per N]

writes into DIR, for each spec with `permutation` lines (at most --per of
them, spread over the list; specs that list none would run every order of
their steps), one `.sh` file that runs isolationtester on the spec reduced
to that permutation and without its global teardown, and DIR/prelude
(for --prelude; no .sql, which external.py would run as a file). A file's
point (external.py records the tables after each file) so sees the
permutation's end state; the next file runs that teardown first. The
prelude gives every table created without a primary key REPLICA IDENTITY
FULL (in both databases), so that the specs' UPDATEs and DELETEs of keyless
tables run instead of being refused by the publication. Roles are the
cluster's: a spec whose setup creates one meets the tracked run's in the
twin's (reported as errors only where tracked, none walrev's doing).
"""
import argparse
import os
import re

ISOLATIONTESTER = "/usr/lib/postgresql/15/lib/pgxs/src/test/isolation/isolationtester"

# specscanner.l: keywords and identifiers, "quoted" identifiers, { SQL } blocks
# (ended by the first }), numbers and punctuation, # comments
TOKEN = re.compile(r'\s+|#[^\n]*|\{\s*(?P<sql>.*?)\s*\}|"(?P<q>(?:[^"]|"")*)"|(?P<id>[A-Za-z_][A-Za-z_0-9]*)|(?P<p>[()*,0-9]+)',
                   re.S)

PRELUDE = """-- isolation.py: tables made without a primary key get REPLICA IDENTITY FULL
CREATE FUNCTION iso_full() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.oid::regclass AS t FROM pg_event_trigger_ddl_commands() d JOIN pg_class c ON c.oid = d.objid
            WHERE d.command_tag = 'CREATE TABLE' AND c.relkind = 'r' AND c.relpersistence = 'p'
              AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
  LOOP
    EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', r.t);
  END LOOP;
END $$;
CREATE EVENT TRIGGER iso_full ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION iso_full();
"""


def tokens(text):
    out, i = [], 0
    while i < len(text):
        m = TOKEN.match(text, i)
        if not m:
            raise ValueError(f"unexpected {text[i:i + 20]!r}")
        i = m.end()
        for kind in ("sql", "q", "id", "p"):
            if m.group(kind) is not None:
                out.append(("id" if kind == "q" else kind, m.group(kind), m.group(0)))
                break
    return out


def split_spec(text):
    """The spec without its global teardown and permutations; the teardown's
    SQL (or None); the permutations, each as its text."""
    toks = tokens(text)
    body, teardown, perms, in_session, i = [], None, [], False, 0
    while i < len(toks):
        kind, val, raw = toks[i]
        if kind == "id" and val == "session":
            in_session = True
        if kind == "id" and val == "teardown" and not in_session:
            teardown = toks[i + 1][1]
            i += 2
            continue
        if kind == "id" and val == "permutation":
            j = i + 1
            while j < len(toks) and not (toks[j][0] == "id" and toks[j][1] == "permutation"):
                j += 1
            perms.append(" ".join(t[2] for t in toks[i + 1:j]))
            i = j
            continue
        body.append(raw + ("\n" if kind == "sql" else " "))
        i += 1
    return "".join(body), teardown, perms


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--specs", required=True, help="src/test/isolation/specs of a PostgreSQL source tree")
    ap.add_argument("--out", required=True)
    ap.add_argument("--per", type=int, default=2, help="permutations per spec (default 2)")
    ap.add_argument("--isolationtester", default=ISOLATIONTESTER)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "prelude"), "w") as f:
        f.write(PRELUDE)
    n, prev, skipped = 0, None, []
    for spec in sorted(s for s in os.listdir(args.specs) if s.endswith(".spec")):
        with open(os.path.join(args.specs, spec)) as f:
            try:
                body, teardown, perms = split_spec(f.read())
            except ValueError as e:
                skipped.append(f"{spec} ({e})")
                continue
        if not perms:
            skipped.append(f"{spec} (no permutation listed)")
            continue
        if len(perms) > args.per:
            picks = sorted({round(k * (len(perms) - 1) / max(1, args.per - 1)) for k in range(args.per)})
            perms = [perms[k] for k in picks]
        for k, perm in enumerate(perms):
            n += 1
            base = f"i{n:04d}_{spec[:-5]}_{k}"
            with open(os.path.join(args.out, base + ".spec"), "w") as f:
                f.write(body + "\npermutation " + perm + "\n")
            with open(os.path.join(args.out, base + ".sh"), "w") as f:
                f.write(f"# {spec}, permutation {perm}\nd=$(dirname \"$0\")\n")
                if prev:
                    f.write(f"psql -X -q -d \"$PGDATABASE\" -f \"$d/{prev}.teardown\"\n")
                f.write(f"{args.isolationtester} \"dbname=$PGDATABASE\" < \"$d/{base}.spec\"\n")
            prev = None
            if teardown:
                with open(os.path.join(args.out, base + ".teardown"), "w") as f:
                    f.write(teardown + ";\n")
                prev = base
    print(f"isolation: {n} files in {args.out}; skipped {len(skipped)}: {', '.join(skipped)}")


if __name__ == "__main__":
    main()
