#!/usr/bin/env python3
"""external.py — walrev against SQL that nobody here wrote (issue 13).

difftest.py checks walrev with a workload we wrote; this runs any directory
of .sql files (PostgreSQL's own regression tests, an application's
migrations, ...) against a database tracked by walrev and checks that
`walrev snapshot --at LSN --table T` equals every table after every file.

For each file, in name order (or the order of --files):
  * it runs through psql (no ON_ERROR_STOP: statements that fail just fail),
    once in the tracked database and once in an untracked control database;
    an ERROR that only the tracked database raised is walrev getting in an
    application's way, and is reported (and fails the run);
  * then every table logical decoding could see (permanent tables and
    partitioned tables outside the system schemas and walrev's own; unlogged
    tables too, where walrev must answer with an error naming it unlogged) is
    recorded: the flushed WAL position and `COPY (SELECT * FROM t) TO
    STDOUT`, lines sorted bytewise (as difftest.py); with --marks N also at
    N-1 statement ends spread over the file (outside transaction blocks,
    COPY data and dollar quotes), while its psql session waits, so the
    tables a file creates and drops again are compared too.
The worker runs throughout and is stopped (SIGTERM) and restarted once half
way (--restart-after). At the end it catches up to the last position and
every recording is compared with `walrev snapshot`, byte for byte after the
same sort. Tables dropped by a later file are compared at the points where
they existed. The output gives equal/total by table kind and each
divergence with its table, the file after which it was recorded and the
first differing lines.

Usage: external.py --sql-dir DIR --walrev BIN --conninfo-base 'host=... port=... user=...'
                   [--files a.sql,b.sql] [--prelude FILE] [--workdir DIR] [--db NAME]
                   [--psql-var NAME=VALUE]... [--psql-setting NAME=VALUE]... [--restart-after N] [--show N] [--jobs N] [--batch N] [--marks N]
Exit status: 0 all equal, 1 any divergence or worker failure, 2 usage.
"""
import argparse
import io
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import difftest  # noqa: E402  (Worker, snapshot_all, judge_snapshot, load_known)

# What a table is, most specific first: a table-point counts under the first
# of its kinds (several may apply).
KINDS = ["unlogged", "partitioned", "partition", "inherit_parent", "inherit_child", "generated",
         "replident_index", "replident_nothing", "keyless_full", "keyless", "keyed"]

TABLES_SQL = r"""
SELECT c.oid, format('%%I.%%I', n.nspname, c.relname), c.relkind, c.relpersistence, c.relreplident,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
               AND NOT a.attisdropped AND a.attgenerated <> ''),
       c.relispartition,
       EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhparent = c.oid) AND c.relkind = 'r',
       EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = c.oid) AND NOT c.relispartition,
       n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND c.relpersistence IN ('p', 'u')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
   AND n.nspname <> ALL (%s)
 ORDER BY 2
"""


WORKERS = []
# the worker is started and stopped by the main thread and by --chaos's
WORKER_LOCK = threading.Lock()


class Chaos:
    """--chaos SEED: while the files run, the worker is stopped by SIGTERM or
    SIGKILL every 0.3-3 s and started again after up to 1 s (not only between
    files: in the middle of their statements, COPYs and transactions), and,
    with --marks, at once after a mark whose part of the file ended with DDL
    (half of them: a restart right after DDL, which the worker may not have
    decoded yet). A worker that exited by itself is counted and started again."""

    def __init__(self, worker, seed):
        self.worker = worker
        self.rng = random.Random(seed)
        self.done = threading.Event()
        self.counts = defaultdict(int)
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.done.wait(self.rng.uniform(0.3, 3)):
            self.bounce("timer", self.rng.uniform(0, 1))

    def bounce(self, why, pause):
        sig = signal.SIGKILL if self.rng.random() < 0.5 else signal.SIGTERM
        with WORKER_LOCK:
            check_died(self.worker, why)
            self.worker.stop(sig)
        self.counts[f"{why} {signal.Signals(sig).name}"] += 1
        if pause:
            time.sleep(pause)
        with WORKER_LOCK:
            self.worker.start()


DIED = []


def check_died(worker, during):
    """Counts a worker that exited by itself (not by our signal) and lets
    the caller start it again. Called under WORKER_LOCK."""
    if worker.died():
        print(f"external: the worker exited by itself ({worker.proc.returncode}) during {during}; see worker.log",
              flush=True)
        worker.proc = None
        DIED.append(during)
        worker.start()


DDL_LINE = re.compile(rb"^\s*(create|alter|drop|truncate)\b", re.I | re.M)


def kinds_of(row):
    _oid, _q, relkind, persistence, replident, has_pk, generated, ispart, inh_parent, inh_child = row[:10]
    k = set()
    if persistence == "u":
        k.add("unlogged")
    if relkind == "p":
        k.add("partitioned")
    if ispart:
        k.add("partition")
    if inh_parent:
        k.add("inherit_parent")
    if inh_child:
        k.add("inherit_child")
    if generated:
        k.add("generated")
    if replident == "i":
        k.add("replident_index")
    elif replident == "n":
        k.add("replident_nothing")
    elif replident == "f":
        k.add("keyless_full" if not has_pk else "keyed")
    elif has_pk:
        k.add("keyed")
    else:
        k.add("keyless")
    return k


def kinds_known(kinds, known):
    return any(k in known for k in kinds)


def primary_kind(kinds):
    return next(k for k in KINDS if k in kinds)


TIMEOUT = "external.py: TIMEOUT"


# --psql-setting NAME=VALUE: the application's sessions (both databases) start
# with these settings, so a run can check that what walrev records does not
# follow the application's DateStyle, IntervalStyle, ...
PSQL_SETTINGS = []


def psql_cmd(conninfo, path, variables):
    cmd = ["psql", "-X", "-a", "-v", "ON_ERROR_STOP=0", "-v", "VERBOSITY=terse", "-d", conninfo, "-f", path]
    for v in variables:
        cmd += ["-v", v]
    # PGDATESTYLE and PGTZ are startup parameters libpq sends after the options: they would win
    env = dict(os.environ, PGTZ="UTC", PGDATESTYLE="Postgres, MDY")
    options = "-c statement_timeout=60s -c lock_timeout=10s"
    for setting in PSQL_SETTINGS:
        name, _, value = setting.partition("=")
        by_env = {"datestyle": "PGDATESTYLE", "timezone": "PGTZ"}.get(name.lower())
        if by_env:
            env[by_env] = value
        else:
            options += " -c " + name + "=" + value.replace("\\", "\\\\").replace(" ", "\\ ")
    env["PGOPTIONS"] = options
    return cmd, env


def script_cmd(conninfo, path):
    """A `.sh` file (pgbench, say) runs under bash with libpq's environment
    naming the database (PGHOST, PGPORT, PGUSER, PGDATABASE)."""
    env = dict(os.environ, PGTZ="UTC", PGDATESTYLE="Postgres, MDY")
    names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "dbname": "PGDATABASE"}
    for kv in conninfo.split():
        k, _, v = kv.partition("=")
        if k in names:
            env[names[k]] = v
    return ["bash", path], env


def psql(conninfo, path, variables, timeout):
    """Runs one file; returns its output (stdout and stderr, interleaved)."""
    cmd, env = script_cmd(conninfo, path) if path.endswith(".sh") else psql_cmd(conninfo, path, variables)
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                           cwd=os.path.dirname(path), env=env)
        return p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        return (e.stdout or b"").decode(errors="replace") + f"\n{TIMEOUT}\n"


TXN_BEGIN = re.compile(r"^\s*(begin|start\s+transaction)\b(?!\s+atomic)", re.I)
TXN_END = re.compile(r"^\s*(commit|rollback|end|abort|prepare\s+transaction)\b(?!\s+(to|prepared)\b)", re.I)
DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def sql_code(line, state):
    """The parts of one line outside string literals, quoted identifiers,
    dollar quotes and comments (each quoted part as one blank), and the
    quoting still open at its end: None, ("'", escapes), ('"',), ("$", tag) or
    ("/*", depth). A rough lexer: enough to find statement ends."""
    out, j, n = [], 0, len(line)
    while j < n:
        if state is None:
            c = line[j]
            if line.startswith("--", j):
                break
            if line.startswith("/*", j):
                state, j = ("/*", 1), j + 2
                continue
            m = DOLLAR.match(line, j) if c == "$" else None
            if m and not (j and (line[j - 1].isalnum() or line[j - 1] == "_")):
                state, j = ("$", m.group(0)), m.end()
                out.append(" ")
                continue
            if c in "'\"":
                escapes = c == "'" and j and line[j - 1] in "eE" and not (j > 1 and (line[j - 2].isalnum() or line[j - 2] == "_"))
                state, j = (c, escapes) if c == "'" else (c,), j + 1
                out.append(" ")
                continue
            out.append(c)
            j += 1
        elif state[0] == "$":
            k = line.find(state[1], j)
            state, j = (state, n) if k < 0 else (None, k + len(state[1]))
        elif state[0] == "/*":  # block comments nest
            if line.startswith("/*", j):
                state, j = ("/*", state[1] + 1), j + 2
            elif line.startswith("*/", j):
                state, j = (None if state[1] == 1 else ("/*", state[1] - 1)), j + 2
            else:
                j += 1
        else:
            q, k = state[0], j
            while k < n and line[k] != q:
                k += 2 if (len(state) > 1 and state[1] and line[k] == "\\") else 1
            state, j = (state, n) if k >= n else (None, k + 1)
    return "".join(out), state


META_COPY_IN = re.compile(r"^\s*\\copy\b.*\bfrom\s+p?stdin\b", re.I)


def data_blocks_after(lines, i):
    """The `\\.` lines after line i and before the next line naming FROM stdin."""
    n = 0
    for raw in lines[i + 1:]:
        line = raw.decode(errors="replace").rstrip("\r\n")
        if line == "\\.":
            n += 1
        elif re.search(r"\bfrom\s+p?stdin\b", line, re.I):
            break
    return n


def statement_ends(lines):
    """The line numbers after which a statement ended at top level: outside a
    transaction block, COPY ... FROM stdin data, string literals, dollar
    quotes and comments (a rough reading of SQL: a mark in the middle of a
    statement only records the point before it runs, psql runs a backslash
    command at once)."""
    # copy_data: the COPY ... FROM stdin data blocks still to come (one line
    # may hold several, `copy t from stdin\; copy t from stdin;`). A COPY that
    # fails before reading (copyselect.sql's `copy (select ...) from stdin;`)
    # has none: a `\.` belongs to the nearest COPY ... FROM stdin before it, so
    # a line's blocks are at most the `\.` lines before the next such line.
    ends, quoted, copy_data, txn = [], None, 0, False
    for i, raw in enumerate(lines):
        line = raw.decode(errors="replace").rstrip("\r\n")
        if copy_data:
            copy_data -= line == "\\."
            if not copy_data and not txn:
                ends.append(i + 1)
            continue
        began_quoted = quoted is not None
        code, quoted = sql_code(line, quoted)
        if quoted:
            continue
        if not began_quoted and TXN_BEGIN.match(code):
            txn = True
        elif not began_quoted and TXN_END.match(code):
            txn = False
        if not began_quoted and META_COPY_IN.match(line):  # psql's \copy ... from stdin: one block
            copy_data = min(1, data_blocks_after(lines, i))
            if not copy_data and not txn:
                ends.append(i + 1)
        elif re.search(r"\bfrom\s+stdin\b", code, re.I) and code.rstrip().endswith(";"):
            copy_data = min(len(re.findall(r"\bfrom\s+stdin\b", code, re.I)), data_blocks_after(lines, i))
            if not copy_data and not txn:
                ends.append(i + 1)
        elif code.rstrip().endswith(";") and not txn:
            ends.append(i + 1)
    return ends


MARK = re.compile(r"^@@external mark (\d+)@@$")


def psql_marked(conninfo, path, variables, timeout, marks, on_mark):
    """Runs one file through one psql session, stopping at marks - 1 statement
    ends spread over it, where on_mark(line) records a point while psql waits;
    returns psql's output as psql()."""
    with open(path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    ends = statement_ends(lines)
    cuts = []
    for k in range(1, marks):
        later = [e for e in ends if e >= k * len(lines) // marks and (not cuts or e > cuts[-1])]
        if later and later[0] < len(lines):
            cuts.append(later[0])
    cmd, env = psql_cmd(conninfo, "-", variables)
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         cwd=os.path.dirname(path), env=env)
    out, seen = [], queue.Queue()

    def reader():
        for raw in p.stdout:
            line = raw.decode(errors="replace")
            out.append(line)
            m = MARK.match(line.rstrip("\n"))
            if m:
                seen.put(int(m.group(1)))
        seen.put(None)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    deadline = time.time() + timeout
    prev = 0
    try:
        for k, end in enumerate(cuts):
            p.stdin.write(b"".join(lines[prev:end]) + f"\n\\echo @@external mark {k}@@\n".encode())
            p.stdin.flush()
            prev = end
            if seen.get(timeout=max(1, deadline - time.time())) is None:
                break
            on_mark(end, b"".join(lines[cuts[k - 1] if k else 0:end]))
        p.stdin.write(b"".join(lines[prev:]))
        p.stdin.close()
        p.wait(timeout=max(1, deadline - time.time()))
    except BrokenPipeError:
        # psql ended by itself, as it does after a failed \connect in a
        # script: the rest of the file is not run, as without marks
        p.wait()
    except (queue.Empty, subprocess.TimeoutExpired):
        p.kill()
        p.wait()
        out.append(f"\n{TIMEOUT}\n")
    t.join(timeout=10)
    return "".join(out)


ERR = re.compile(r"^(?:psql:[^:]*:\d+: )?(ERROR|FATAL|PANIC):\s+(.*)$", re.M)


# PostgreSQL itself refuses an UPDATE or DELETE of a published table that has
# no replica identity (no primary key, REPLICA IDENTITY DEFAULT or NOTHING):
# the price of tracking such a table, documented in docs/tracking.md.
REFUSED = re.compile(r"because it does not have a replica identity and publishes (updates|deletes)")


def errors_of(out, db=None):
    """The ERROR lines of a psql run, without line numbers, OIDs and the
    database's name (which differ between the two databases), as a multiset."""
    errs = defaultdict(int)
    for m in ERR.finditer(out):
        text = m.group(1) + ": " + m.group(2)
        if db:
            text = re.sub(r'(?<![\w$])"?' + re.escape(db) + r'"?(?![\w$])', "DB", text)
        errs[re.sub(r"\b\d{4,}\b", "N", text)] += 1
    return errs


def rollback_prepared(conninfo, db):
    """Rolls back the transactions a file left prepared in database db (as
    prepared_xacts.sql's 'foo5' when an earlier statement was refused): their
    identifiers are the cluster's, so the control's run of the same file would
    meet them ("transaction identifier ... is already in use") and diverge.
    Returns their identifiers. (ROLLBACK PREPARED runs in their database.)"""
    c = psycopg2.connect(conninfo)
    c.autocommit = True
    cur = c.cursor()
    cur.execute("SELECT gid FROM pg_prepared_xacts WHERE database = %s ORDER BY gid", (db,))
    gids = [r[0] for r in cur.fetchall()]
    for g in gids:
        cur.execute("ROLLBACK PREPARED %s", (g,))
    c.close()
    return gids


def lsn_now(cur):
    """The insert position after the last commit, once flushed (the cluster
    may run with synchronous_commit=off), as difftest.py."""
    cur.execute("SELECT pg_current_wal_insert_lsn()")
    target = cur.fetchone()[0]
    for _ in range(1000):
        cur.execute("SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", (target,))
        if cur.fetchone()[0]:
            break
        time.sleep(0.01)
    return target


def record_point(conn, walrev_schemas, workdir, idx, label):
    cur = conn.cursor()
    lsn = lsn_now(cur)
    cur.execute(TABLES_SQL, (walrev_schemas,))
    recs = []
    for row in cur.fetchall():
        q = row[1]
        buf = io.BytesIO()
        try:
            cur.copy_expert(f"COPY (SELECT * FROM {q}) TO STDOUT", buf)
        except psycopg2.Error as e:
            # a table the workload left unreadable (a domain made stricter,
            # a dropped function in a default, ...): nothing to compare
            print(f"external: point {idx}: cannot read {q}: {str(e).strip()}", flush=True)
            continue
        path = os.path.join(workdir, f"p{idx:03d}_{len(recs):04d}.copy")
        with open(path, "wb") as f:
            f.write(b"".join(sorted(buf.getvalue().splitlines(keepends=True))))
        # (schema, name) as they are: the file name of a --output-dir snapshot
        recs.append((q, kinds_of(row), path, (row[10], row[11])))
    # the position must not move while recording: nothing else writes
    return (idx, label, lsn, recs)


def check_file(name, out, cout, t1, points, timeout, timeouts, refused, interference, db, ctl):
    """Compares one file's run in the tracked database with the control's."""
    # a file that did not finish was not compared past where it stopped:
    # a failure of the run, whichever side (only the tracked one: walrev
    # held it up)
    stuck = [side for side, text in (("tracked", out), ("control", cout)) if TIMEOUT in text]
    if stuck:
        timeouts.append((name, stuck))
        print(f"external: {name} timed out after {timeout}s ({' and '.join(stuck)})", flush=True)
    e, c = errors_of(out, db), errors_of(cout, ctl)
    refused[name] = sum(n for m, n in e.items() if REFUSED.search(m))
    extra = [(m, n - c.get(m, 0)) for m, n in e.items() if n > c.get(m, 0) and not REFUSED.search(m)]
    interference += [(name, m, n) for m, n in extra]
    print(f"external: {name}: {time.time() - t1:.0f}s, {sum(e.values())} errors, "
          f"{sum(n for _, n in extra)} only where tracked, {refused[name]} UPDATE/DELETE without replica "
          f"identity refused; {len(points[-1][3])} tables", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sql-dir", required=True)
    ap.add_argument("--files", help="comma-separated file names in --sql-dir, in this order (default: all *.sql, sorted)")
    ap.add_argument("--prelude", help="a file run (tracked and control) before `walrev setup`")
    ap.add_argument("--walrev", required=True)
    ap.add_argument("--conninfo-base", required=True)
    ap.add_argument("--db", default="walrev_external")
    ap.add_argument("--workdir", default="/tmp/walrev-external")
    ap.add_argument("--psql-var", action="append", default=[], help="NAME=VALUE passed to psql -v")
    ap.add_argument("--psql-setting", action="append", default=[],
                    help="NAME=VALUE the application's psql sessions start with (PGOPTIONS; DateStyle: PGDATESTYLE)")
    ap.add_argument("--restart-after", type=int, default=-1,
                    help="stop and restart the worker after this many files (default: half; 0: never)")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per file")
    ap.add_argument("--show", type=int, default=40, help="divergences shown in detail")
    ap.add_argument("--jobs", type=int, default=2, help="snapshot processes at a time in the comparison")
    ap.add_argument("--batch", type=int, default=200, metavar="N",
                    help="tables per `walrev snapshot --output-dir` in the comparison (at most 256; 1: one "
                         "process per table-point)")
    ap.add_argument("--marks", type=int, default=1,
                    help="points per file: 1 after each file; N also at N-1 statement ends spread over it")
    ap.add_argument("--schedule", help="a pg_regress schedule (`test: a b c` lines): each line's files run "
                    "concurrently, one session each, and the tables are recorded after each line (replaces --files)")
    ap.add_argument("--chaos", type=int, metavar="SEED",
                    help="stop the worker (SIGTERM or SIGKILL) every 0.3-3 s during the files, and right after DDL at marks")
    ap.add_argument("--source-restarts", type=int, default=0, metavar="N",
                    help="restart the source server (pg_ctl stop -m fast or immediate, then start) after N random "
                         "files or groups, the worker running; needs --pgdir")
    ap.add_argument("--catch-up-timeout", type=int, default=1200, metavar="S",
                    help="seconds the worker may take to catch up at the end (default 1200)")
    ap.add_argument("--pgdir", help="the source cluster's tests/support/pgcluster.sh directory (--source-restarts)")
    ap.add_argument("--known", help="known divergences: a table kind a line (then why), reported as KNOWN, not failing")
    args = ap.parse_args()
    if not 1 <= args.batch <= 256:
        print(f"external: --batch {args.batch}: expected 1 to 256 (walrev snapshot takes 256 --table at most)",
              file=sys.stderr)
        return 2
    PSQL_SETTINGS.extend(args.psql_setting)

    if args.schedule:
        # pg_regress's schedule: `test: a b c` runs a, b and c at once
        groups = []
        with open(args.schedule) as f:
            for line in f:
                if line.startswith("test:"):
                    groups.append([n + ".sql" for n in line[5:].split()])
    else:
        names = args.files.split(",") if args.files else sorted(
            f for f in os.listdir(args.sql_dir) if f.endswith(".sql") or f.endswith(".sh"))
        groups = [[n] for n in names]
    groups = [[os.path.join(os.path.abspath(args.sql_dir), n) for n in g] for g in groups]
    files = [f for g in groups for f in g]
    if args.source_restarts and not args.pgdir:
        print("external: --source-restarts needs --pgdir", file=sys.stderr)
        return 2
    missing = [f for f in files if not os.path.exists(f)]
    if missing or not files:
        print(f"external: no such file(s): {' '.join(missing) or args.sql_dir + '/*.sql'}", file=sys.stderr)
        return 2
    os.makedirs(args.workdir, exist_ok=True)
    for f in os.listdir(args.workdir):
        if f.endswith(".copy") or f.endswith(".out"):
            os.unlink(os.path.join(args.workdir, f))
    db, ctl = args.db, args.db + "_control"
    slot = re.sub(r"[^a-z0-9_]", "_", db.lower())
    difftest.SLOT = slot
    admin = psycopg2.connect(args.conninfo_base + " dbname=postgres")
    admin.autocommit = True
    ac = admin.cursor()
    ac.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", (slot,))
    for d in (db, ctl):
        ac.execute("SELECT EXISTS (SELECT 1 FROM pg_prepared_xacts WHERE database = %s)", (d,))
        if ac.fetchone()[0]:  # DROP DATABASE refuses a database with prepared transactions
            rollback_prepared(args.conninfo_base + f" dbname={d}", d)
        ac.execute(f'DROP DATABASE IF EXISTS "{d}" WITH (FORCE)')
        ac.execute(f'CREATE DATABASE "{d}" TEMPLATE template0')
    conninfo = args.conninfo_base + f" dbname={db}"
    ctl_conninfo = args.conninfo_base + f" dbname={ctl}"
    log = open(os.path.join(args.workdir, "worker.log"), "ab")
    worker = difftest.Worker(argparse.Namespace(walrev=args.walrev), conninfo, log)
    WORKERS.append(worker)
    t0 = time.time()
    print(f"external: {len(files)} file(s) in {len(groups)} group(s) from {args.sql_dir}, database {db} (control {ctl}), workdir {args.workdir}",
          flush=True)

    if args.prelude:
        for c in (conninfo, ctl_conninfo):
            psql(c, os.path.abspath(args.prelude), args.psql_var, args.timeout)
    # The twin publishes every table too (no slot, nothing reads it): PostgreSQL
    # then refuses the same UPDATEs and DELETEs of tables without a replica
    # identity in both, and the states stay alike, so an error only the
    # tracked database raises is walrev's doing, not a consequence of those.
    cc = psycopg2.connect(ctl_conninfo)
    cc.autocommit = True
    cc.cursor().execute("CREATE PUBLICATION external_twin FOR ALL TABLES")
    cc.close()
    out = subprocess.run(worker.cmd("setup"), capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stdout, out.stderr)
        print("external: walrev setup failed", file=sys.stderr)
        return 1
    conn = psycopg2.connect(conninfo)
    conn.autocommit = True
    cur = conn.cursor()
    # a point inside a file may meet a lock the file's session holds: that
    # table is left out of the point rather than waited for
    cur.execute("SET lock_timeout = '3s'")
    # walrev's own schemas: its history store and its capture objects
    cur.execute("SELECT array_agg(nspname) FROM pg_namespace WHERE nspname LIKE 'walrev%%'")
    walrev_schemas = cur.fetchone()[0] or []
    worker.start()
    points = [record_point(conn, walrev_schemas, args.workdir, 0, "(setup)")]
    restart_after = len(groups) // 2 if args.restart_after < 0 else args.restart_after
    interference = []
    refused = defaultdict(int)
    timeouts = []
    chaos = None
    if args.chaos is not None:
        chaos = Chaos(worker, args.chaos)
        chaos.thread.start()
    # the groups after which the source server restarts (its own generator:
    # the chaos's draws depend on time)
    pick = random.Random(args.chaos or 0)
    middle = list(range(max(1, len(groups) // 5), max(2, len(groups) * 4 // 5)))
    source_restarts = sorted(pick.sample(middle, min(args.source_restarts, len(middle))))
    cluster = difftest.Cluster(args.pgdir) if args.pgdir else None
    for i, group in enumerate(groups, 1):
        gname = " ".join(os.path.basename(p) for p in group)
        t1 = time.time()
        if len(group) == 1 and args.marks > 1 and group[0].endswith(".sql"):
            def mark(line, part, name=gname):
                if chaos and DDL_LINE.search(b"\n".join(part.splitlines()[-5:])) and chaos.rng.random() < 0.5:
                    chaos.bounce("after DDL", 0)
                points.append(record_point(conn, walrev_schemas, args.workdir, len(points), f"{name}:{line}"))
            outs = [psql_marked(conninfo, group[0], args.psql_var, args.timeout, args.marks, mark)]
        else:
            with ThreadPoolExecutor(max_workers=len(group)) as pool:
                outs = list(pool.map(lambda p: psql(conninfo, p, args.psql_var, args.timeout), group))
        points.append(record_point(conn, walrev_schemas, args.workdir, len(points), gname))
        left = rollback_prepared(conninfo, db)
        with ThreadPoolExecutor(max_workers=len(group)) as pool:
            couts = list(pool.map(lambda p: psql(ctl_conninfo, p, args.psql_var, args.timeout), group))
        left_ctl = rollback_prepared(ctl_conninfo, ctl)
        if left or left_ctl:
            print(f"external: {gname} left prepared transactions, rolled back after its point: "
                  f"{' '.join(left) or '-'} (control: {' '.join(left_ctl) or '-'})", flush=True)
        for path, out, cout in zip(group, outs, couts):
            name = os.path.basename(path)
            for suffix, text in ((".out", out), (".control.out", cout)):
                with open(os.path.join(args.workdir, name + suffix), "w") as f:
                    f.write(text)
            check_file(name, out, cout, t1, points, args.timeout, timeouts, refused, interference, db, ctl)
        with WORKER_LOCK:
            check_died(worker, gname)
            if i == restart_after:
                worker.stop(signal.SIGTERM)
                worker.start()
                print(f"external: worker restarted after {gname}", flush=True)
        if i in source_restarts:
            mode = "immediate" if pick.random() < 0.6 else "fast"
            # what the twin committed last must survive the crash as the
            # tracked database's does (its point waited for the flush): the
            # cluster may run with synchronous_commit = off
            lsn_now(cur)
            cluster.down(mode)
            time.sleep(pick.uniform(0, 1.5))
            cluster.up()
            conn = psycopg2.connect(conninfo)
            conn.autocommit = True
            cur = conn.cursor()
            cur.execute("SET lock_timeout = '3s'")
            print(f"external: source server restarted (-m {mode}) after {gname}", flush=True)
    if chaos:
        chaos.done.set()
        chaos.thread.join()
        print("external: chaos: " + ", ".join(f"{k} {n}" for k, n in sorted(chaos.counts.items())), flush=True)
    with WORKER_LOCK:
        check_died(worker, "the last files")
    final = lsn_now(cur)
    worker.stop(signal.SIGTERM)
    print(f"external: workload done in {time.time() - t0:.0f}s; catching up to {final}", flush=True)
    try:
        worker.catch_up(final, timeout=args.catch_up_timeout)
    except Exception as ex:  # noqa: BLE001
        print(f"external: {ex}", flush=True)
        DIED.append("the catch-up")

    # the comparison
    jobs = [(p, rec) for p in points for rec in p[3]]
    print(f"external: comparing {len(jobs)} table-points, {args.jobs} snapshot processes at a time, "
          f"up to {args.batch} tables each", flush=True)
    results = difftest.snapshot_all(worker, [(p[2], rec[0], rec[3], "unlogged" in rec[1]) for p, rec in jobs],
                                    args.workdir, args.jobs, args.batch, t0, "external")
    per_kind = defaultdict(lambda: [0, 0])
    fails = defaultdict(list)   # table -> [(point idx, label, lsn, kinds, detail)]
    for ((idx, label, lsn, _), (q, kinds, path, _names)), p in zip(jobs, results):
        kind = primary_kind(kinds)
        per_kind[kind][1] += 1
        detail = difftest.judge_snapshot(p, path, "unlogged" in kinds)
        if detail is None:
            per_kind[kind][0] += 1
            continue
        fails[q].append((idx, label, lsn, kinds, detail))
    known = difftest.load_known(args.known)
    known_fails = {q: fs for q, fs in fails.items() if all(kinds_known(f[3], known) for f in fs)}

    eq = sum(v[0] for v in per_kind.values())
    total = sum(v[1] for v in per_kind.values())
    print(f"\nexternal: {eq}/{total} table-points equal ({len(points)} points, {time.time() - t0:.0f}s)")
    for k in KINDS:
        if k in per_kind:
            e, n = per_kind[k]
            print(f"  {k:18s} {e:5d}/{n:<5d}{'' if e == n else '  DIVERGES'}")
    shown = 0
    for q, fs in sorted(fails.items(), key=lambda kv: (kv[1][0][0], kv[0])):
        shown += 1
        if shown > args.show:
            continue
        idx, label, lsn, kinds, detail = fs[0]
        why = "; ".join(f"{k}: {known[k]}" for k in sorted(kinds) if k in known)
        print(f"\n{'KNOWN (' + why + ')' if q in known_fails else 'DIVERGES'}: {q} ({' '.join(sorted(kinds))}) first after {label} (point {idx}, {lsn}); "
              f"at {len(fs)} point(s): {' '.join(str(f[0]) for f in fs[:20])}")
        print("  " + detail.replace("\n", "\n  "))
    if shown > args.show:
        print(f"\n... and {shown - args.show} more diverging tables")
    if sum(refused.values()):
        print(f"\nexternal: {sum(refused.values())} UPDATE/DELETE of tables without a replica identity refused by "
              f"PostgreSQL because a publication carries them (in the twin too: not counted as interference)")
    if interference:
        print(f"\nexternal: {len(interference)} error(s) raised only in the tracked database (walrev got in the way):")
        for name, m, n in interference[:args.show]:
            print(f"  {name}: {n}x {m[:300]}")
    if DIED:
        print(f"\nexternal: FAILED: the worker failed {len(DIED)} time(s) (during {', '.join(DIED)}); its errors:")
        with open(os.path.join(args.workdir, "worker.log"), errors="replace") as f:
            for line in f:
                if "level=error" in line or "status=fatal" in line:
                    print("  " + line.rstrip()[:400])
    if timeouts:
        print(f"\nexternal: FAILED: {len(timeouts)} file(s) timed out: "
              + ", ".join(f"{n} ({' and '.join(s)})" for n, s in timeouts))
    ok = len(fails) == len(known_fails) and not interference and not DIED and not timeouts
    print(f"\nexternal: {'OK' if ok else 'FAILED'}: {eq}/{total} equal, {len(fails) - len(known_fails)} tables "
          f"diverge ({len(known_fails)} more under known entries), {len(interference)} tracked-only errors")
    return 0 if ok else 1


def main_guarded():
    try:
        return main()
    finally:
        # never leave a worker behind (its slot would stay active)
        for w in WORKERS:
            w.stop(signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main_guarded())
