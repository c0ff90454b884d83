#!/usr/bin/env python3
"""difftest.py — walrev's seeded randomised differential test (issue 13).

A seeded random workload runs against a fresh database tracked by walrev while
`walrev run` is stopped by SIGTERM and SIGKILL at random points and restarted,
and once loses its slot (dropped, then `walrev setup` again). At POINTS points
the live tables are recorded (`COPY (SELECT * FROM t) TO STDOUT`, lines sorted
bytewise: the canonical order, and a multiset for tables without a key)
together with the position (the WAL insert position after the last commit,
flushed). At the end the worker catches up to the final position and
`walrev snapshot --at LSN --table T` is compared with every recording, byte for
byte after the same sort. It prints equal/total by table kind and the first
differing lines of each divergence.

Every table-point carries tags: what the table is at that point (keyed,
keyless, partition, generated, ...) and what has been done to it so far
(drop_column, truncate, 2pc, ...). A divergence whose tags meet an entry of
the known list (--known FILE, tests/difftest/known.txt) is reported as KNOWN
and does not fail the run; any other divergence does (exit 1). Known entries
that no longer diverge are named so that the list can shrink.

Usage: difftest.py --conninfo-base 'host=... port=... user=...' --walrev BIN
                   [--seed N] [--steps N] [--points N] [--known FILE] [--workdir DIR]
"""
import argparse
import atexit
import base64
import contextlib
import io
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import psycopg2.extensions

SLOT = "dt"

# ---------------------------------------------------------------- values
# Each generator returns PostgreSQL input text (or None for NULL); columns
# are written as %s::type so the server parses exactly that text.


def maybe_null(r, v, p=0.1):
    return None if r.random() < p else v


TEXTS = ["", " ", "hello", "tab\there", "line\nbreak", "cr\rret", "back\\slash", "quote's \"dq\"",
         "NULL", "\\N", "unicode é漢字🙂", "comma,brace{}", "  lead and trail  ", "x" * 300]


def g_int2(r): return str(r.choice([0, 1, -1, 32767, -32768, r.randint(-30000, 30000)]))
def g_int4(r): return str(r.choice([0, 7, -1, 2147483647, -2147483648, r.randint(-10 ** 9, 10 ** 9), r.randint(0, 50)]))
def g_int8(r): return str(r.choice([0, 9223372036854775807, -9223372036854775808, r.randint(-10 ** 17, 10 ** 17)]))


def g_numeric(r):
    return r.choice([f"{r.randint(-10 ** 6, 10 ** 6)}.{r.randint(0, 999):03d}", "NaN", "0", "-0.000",
                     "123456789012345678901234567890.123456789012345", "1e-20", "Infinity", "-Infinity",
                     "1.50", str(r.randint(0, 99))])


def g_num123(r): return f"{r.randint(-99999999, 99999999)}.{r.randint(0, 999)}"


def g_float8(r):
    return r.choice([repr(r.uniform(-1e6, 1e6)), "0.1", "-0", "Infinity", "-Infinity", "NaN", "1e-300",
                     "1.7976931348623157e308", "3"])


def g_float4(r): return r.choice(["3.14159", "1e-40", "-0", "0.1", repr(float(r.randint(-1000, 1000)) / 8)])
def g_text(r): return r.choice(TEXTS + ["w%d" % r.randint(0, 10 ** 6)])
def g_varchar20(r): return r.choice([t for t in TEXTS if len(t) <= 20] + ["v%d" % r.randint(0, 999)])
def g_char5(r): return r.choice(["ab", "abcde", "", " x", "é"])
def g_bool(r): return r.choice(["t", "f"])
def g_date(r): return r.choice(["2024-02-29", "1999-12-31", "infinity", "0001-01-01 BC", "2038-01-19"])


def g_ts(r):
    return r.choice(["2024-01-02 03:04:05.678901", "infinity", "1970-01-01 00:00:00",
                     "2000-02-29 23:59:59.5", f"2021-0{r.randint(1, 9)}-1{r.randint(0, 9)} 12:00:00"])


def g_tstz(r):
    return r.choice(["2024-01-02 03:04:05+05:30", "2024-06-01 12:00:00.5-07", "-infinity",
                     "1900-01-01 00:00:00+00", f"2022-0{r.randint(1, 9)}-0{r.randint(1, 9)} 01:02:03.{r.randint(0, 999999)}+00"])


def g_interval(r):
    return r.choice(["1 year 2 mons 3 days 04:05:06.789", "-1 days", "00:00:00", "P1Y2M", "3 weeks",
                     "-00:00:01.5", "1000 years"])


def g_time(r): return r.choice(["23:59:59.999999", "00:00:00", "12:34:56"])
def g_timetz(r): return r.choice(["12:00:00+03", "00:00:01-11:30"])
def g_uuid(r): return str(uuid.UUID(int=r.getrandbits(128)))


def g_jsonb(r):
    return r.choice(['{"a": [1, 2, {"b": null}], "c": "x\\ny"}', "[]", "{}", '"str"', "null", "1.50",
                     '{"z": 1, "a": 2, "é": "漢"}', '[true, false, -0.0e0]'])


def g_json(r): return r.choice(['{"b":1,  "a" : [ 1,2 ] }', '[ ]', '"\\u00e9"', '{"a":1,"a":2}'])
def g_bytea(r): return "\\x" + r.randbytes(r.choice([0, 1, 5, 40])).hex()
def g_int4arr(r): return r.choice(["{1,NULL,3}", "{}", "{{1,2},{3,4}}", "{-5}", "[0:1]={7,8}"])
def g_textarr(r): return r.choice(['{"a b","",NULL,"q\\"x","NULL"}', "{}", "{x}", '{"back\\\\slash","tab\tin"}'])
def g_mood(r): return r.choice(["happy", "sad", "meh"])
def g_posint(r): return str(r.randint(1, 10 ** 6))
def g_inet(r): return r.choice(["192.168.0.1/24", "10.0.0.1", "::1", "2001:db8::/32"])
def g_macaddr(r): return r.choice(["08:00:2b:01:02:03", "ff:ff:ff:ff:ff:ff"])
def g_varbit(r): return r.choice(["1010", "", "1", "11110000"])
def g_range(r): return r.choice(["[1,5)", "empty", "(,10]", "[3,4]"])
def g_pair(r): return r.choice(['(1,"a b")', "(,)", '(2,"")', '(-3,"q\\"x")'])
def g_point(r): return r.choice(["(1.5,-2)", "(0,0)"])


# key name -> (SQL type, generator)
TYPES = {
    "int2": ("smallint", g_int2), "int4": ("integer", g_int4), "int8": ("bigint", g_int8),
    "numeric": ("numeric", g_numeric), "num123": ("numeric(12,3)", g_num123),
    "num101": ("numeric(10,1)", g_num123),
    "float8": ("double precision", g_float8), "float4": ("real", g_float4),
    "text": ("text", g_text), "varchar": ("character varying", g_text),
    "varchar20": ("character varying(20)", g_varchar20), "char5": ("character(5)", g_char5),
    "bool": ("boolean", g_bool), "date": ("date", g_date), "ts": ("timestamp without time zone", g_ts),
    "tstz": ("timestamp with time zone", g_tstz), "interval": ("interval", g_interval),
    "time": ("time without time zone", g_time), "timetz": ("time with time zone", g_timetz),
    "uuid": ("uuid", g_uuid), "jsonb": ("jsonb", g_jsonb), "json": ("json", g_json),
    "bytea": ("bytea", g_bytea), "int4arr": ("integer[]", g_int4arr), "textarr": ("text[]", g_textarr),
    "mood": ("mood", g_mood), "posint": ("posint", g_posint), "inet": ("inet", g_inet),
    "macaddr": ("macaddr", g_macaddr), "varbit": ("bit varying(8)", g_varbit),
    "int4range": ("int4range", g_range), "pair": ("pair", g_pair), "point": ("point", g_point),
    "bigtext": ("text", None), "bigbytea": ("bytea", None),   # TOAST: Workload.val makes them
}
# Types for random extra columns; the 'types' table has every type.
COMMON_TYPES = ["int4", "int8", "numeric", "num123", "text", "varchar20", "bool", "tstz", "ts", "jsonb",
                "bytea", "int4arr", "textarr", "mood", "interval", "date", "uuid", "float8", "int2"]
# Retypes whose text output is the same value for every value (a rewrite
# that logical decoding does not see cannot change what the history holds).
SAFE_RETYPE = {"int2": "int4", "int4": "int8", "int8": "numeric", "varchar20": "text", "text": "varchar",
               "num123": "numeric", "jsonb": "text"}
# DDL that makes a new relation version of a table's columns or key
COLUMN_DDL = {"add_column", "add_column_default", "drop_column", "rename_column", "retype", "retype_lossy",
              "drop_pk", "add_pk", "replident_f", "replident_d", "replident_i", "drop_ri_index"}
# Retypes that change the text of existing values without a row change in WAL.
LOSSY_RETYPE = {"ts": "tstz", "num123": "num101"}

# ---------------------------------------------------------------- model


class Col:
    def __init__(self, name, tkey, gen_expr=None):
        self.name, self.tkey, self.gen_expr = name, tkey, gen_expr
        self.referenced = False  # used by a generated column: not dropped or retyped
        self.auto = False        # an identity or serial column: the server fills it in
        self.notnull = False     # SET NOT NULL (not a key's)
        self.fk = None           # REFERENCES this table's id: values are its keys

    @property
    def sqltype(self):
        return TYPES[self.tkey][0]


class Table:
    def __init__(self, schema, name, kind):
        self.schema, self.name, self.kind = schema, name, kind
        self.cols = []
        self.pk = None            # list of column names, or None
        self.keycols = set()      # columns that are or were in the primary key
        self.replident = "d"      # 'd' default, 'f' full, 'i' USING INDEX
        self.ri_index = None      # under 'i': the identity index's name (None: dropped, no identity left)
        self.ri_cols = []         # its columns
        self.unlogged = False
        self.partitioned = False  # a partitioned table (no storage)
        self.parent = None        # the partitioned table it is attached to
        self.dropped = False
        self.written = False      # any committed change since creation
        self.tags = set()         # operations done to it so far
        self.seq = 0              # unique key counter
        self.toast = False
        self.busy = False         # held by a prepared transaction
        self.frozen = False       # never written or altered (never_changed, baseline_only)
        self.bounds = None        # a partition leaf's (lo, hi, regions)
        self.ranges = {}          # a partitioned root's attached children -> (lo, hi)
        self.detached_from = None
        self.ddl_starts = None    # worker starts when its last column DDL committed
        self.ddl_unwritten = False  # altered or renamed, no row changed since
        self.inh_parent = None    # INHERITS: the parent it inherits from now
        self.inh_kids = []        # INHERITS: the tables inheriting from it now
        self.inh_was = None       # INHERITS: the parent it no longer inherits from (NO INHERIT)
        self.typed_of = None      # a typed table (CREATE TABLE ... OF type): the type's name
        self.fk_group = None      # REFERENCES: the parent and its children (one list, shared)
        self.wide = False         # a table of many columns
        self.matview = False      # a materialized view (its right answer: an error naming it so)
        self.born_out = False     # --user-publication: made while the publication did not cover it
        self.joined = False       # ... and covered at a point since (UserPub.expected)

    @property
    def q(self):
        return f"{self.schema}.{self.name}"

    def col(self, name):
        return next(c for c in self.cols if c.name == name)

    def writable_cols(self):
        return [c for c in self.cols if c.gen_expr is None and not c.auto]

    def kind_tags(self):
        t = {tag for tag, on in (
            ("matview", self.matview),
            ("unlogged", self.unlogged),
            ("new_schema", self.schema != "public"),
            ("partitioned", self.partitioned),
            ("partition", self.parent is not None),
            ("inherit_parent", self.inh_kids),
            ("inherit_child", self.inh_parent is not None),
            ("typed", self.typed_of),
            ("generated", any(c.gen_expr for c in self.cols)),
            ("toast", self.toast),
            ("types", self.kind == "types"),
            ("wide", self.wide),
            ("never_changed", not self.written and not self.partitioned),
        ) if on}
        if self.replident == "i" and self.ri_index:
            t.add("keyed_index")
        elif self.pk:
            t.add("keyed_composite" if len(self.pk) > 1 else "keyed")
        elif self.replident == "f":
            t.add("keyless_full")
        else:
            t.add("keyless")
        return t


KIND_ORDER = ["matview", "unlogged", "new_schema", "partitioned", "partition", "inherit_parent", "inherit_child", "typed",
              "generated", "toast", "types", "wide",
              "never_changed", "keyed_index", "keyed_composite", "keyed", "keyless_full", "keyless"]


def primary_kind(tags):
    return next(k for k in KIND_ORDER if k in tags)


def copy_escape(v):
    if v is None:
        return "\\N"
    return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


# ---------------------------------------------------------------- sessions


class Session:
    """One client connection of the workload. The main one runs each step's
    transaction to its end; the others (--sessions) keep a transaction open
    across steps, so transactions overlap, interleave in the WAL and commit in
    another order than they began (MoreOps.session_step)."""

    def __init__(self, name, conninfo, lock_timeout, sync_commit=False):
        self.name, self.conninfo, self.lock_timeout, self.sync_commit = name, conninfo, lock_timeout, sync_commit
        self.conn = None
        self.n = 0           # transactions begun

    def connect(self):
        """A new connection, no transaction open (again after a source server fault)."""
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg2.Error:
                pass
        self.conn = psycopg2.connect(self.conninfo)
        self.conn.autocommit = True
        self.cur = self.conn.cursor()
        self.cur.execute(f"SET lock_timeout = '{self.lock_timeout}'; SET statement_timeout = '60s'")
        if self.sync_commit:
            # the cluster may commit asynchronously (tests/support/pgcluster.sh):
            # a crash must not lose a commit the model has taken
            self.cur.execute("SET synchronous_commit = on")
        self.post, self.sp_stack = [], []
        self.created = []    # tables its open transaction created (Workload.forget_created)
        self.open = False    # a transaction is open (sessions other than the main one)
        self.held = []       # the tables it holds (busy) until it ends
        self.strong = False  # it took a lock a recording would wait for (DDL, TRUNCATE, CREATE)


class MoreOps:
    """The workload's second part (mixed into Workload): overlapping
    transactions of several sessions, many tables in many schemas made before
    setup and mid-run (--tables), and the forms a third-party workload has and
    the first part lacks: SET/DROP DEFAULT, SET/DROP NOT NULL, REPLICA
    IDENTITY NOTHING, SET UNLOGGED, SET SCHEMA, TRUNCATE ... RESTART IDENTITY
    / CASCADE over foreign keys, generated columns added to tables with rows
    and dropped, a column dropped and added again under its name, a table
    dropped and made again under its name, two tables' names swapped, upserts,
    updates and deletes of many rows, many equal rows, partial inserts (the
    defaults fill in), wide tables, a partitioned subtree attached and
    detached, DETACH PARTITION ... CONCURRENTLY. Each op returns True when it
    did something; a failing statement rolls its transaction back."""

    # -- sessions
    @contextlib.contextmanager
    def on_session(self, s):
        prev, self.s = self.s, s
        try:
            yield
        finally:
            self.s = prev

    def hold(self, s, t, strong=False):
        """s's transaction uses t: t, its partition tree and its family are
        busy (no other transaction picks them) until s ends."""
        for x in self.tree(self.root_of(t)) + self.family(t):
            if not x.busy:
                x.busy = True
                s.held.append(x)
        s.strong = s.strong or strong

    def session_step(self, step):
        """One step of a session other than the main one: begin and do an
        operation, or do another in its open transaction, a savepoint or a
        rollback to one, or end it (commit, roll back, PREPARE)."""
        s = self.r.choice(self.sessions[1:])
        with self.on_session(s):
            try:
                if not s.open:
                    self.begin()
                    s.open, s.n = True, s.n + 1
                    self.session_op(s)
                    return
                what = self.r.choices(["op", "commit", "rollback", "savepoint", "prepare"], [45, 35, 6, 8, 6])[0]
                if what == "op":
                    self.session_op(s)
                elif what == "savepoint":
                    if s.sp_stack and self.r.random() < 0.5:
                        name = s.sp_stack[-1][0]
                        self.rollback_to(name)
                        self.x(f"RELEASE SAVEPOINT {name}")
                        s.sp_stack.pop()
                        self.stats["session_rollback_to"] += 1
                    else:
                        self.savepoint(f"sp{len(s.sp_stack)}")
                else:
                    self.session_end(s, what, step)
            except psycopg2.Error as e:
                self.stats["failed_tx"] += 1
                self.note(f"{s.name} rolled back: {str(e).strip().splitlines()[0]}")
                self.session_end(s, "rollback", step)

    def session_op(self, s):
        r = self.r
        what = r.choices(["dml", "copy", "ddl", "truncate", "create", "more"], [70, 6, 9, 3, 4, 8])[0]
        if what == "create":
            t = self.make_keyed() if r.random() < 0.6 else self.make_keyless(r.random() < 0.5)
            self.hold(s, t, strong=True)
            self.insert(t, r.randint(1, 4))
            return
        strong = what in ("ddl", "truncate", "more")
        pool = self.live(lambda t: not t.busy and not t.frozen and not (t.parent is not None and t.partitioned)
                         and (not strong or self.ddl_target(t)))
        if not pool:
            return
        t = r.choice(pool)
        self.hold(s, t, strong)
        if what == "dml":
            self.dml(t)
        elif what == "copy":
            self.copy_in(t, r.choice([20, 200]) if not t.toast else 3)
        elif what == "ddl":
            self.ddl(t)
        elif what == "truncate":
            self.x(f"TRUNCATE {t.q}")
            self.mark_written(t, "truncate")
        else:
            self.more_table_op(t)
        self.stats["session_op"] += 1

    def session_end(self, s, how, step=0):
        """Commit, roll back or PREPARE s's open transaction (PREPARE only
        without DDL or new tables: a prepared transaction keeps its locks);
        its tables are free again, a prepared one's once it is finished."""
        if not s.open:
            return
        with self.on_session(s):
            try:
                if how == "prepare" and not s.strong and not s.created:
                    gid = f"dt_{s.name}_{s.n}"
                    self.x(f"PREPARE TRANSACTION '{gid}'")
                    self.prepared.append((gid, list(s.held), self.post, step + self.r.randint(0, 6)))
                    self.post, s.held = [], []
                    self.stats["2pc"] += 1
                elif how in ("commit", "prepare"):
                    self.commit()
                    self.stats["session_commit"] += 1
                else:
                    self.rollback()
            except psycopg2.Error as e:
                self.note(f"{s.name}: {how} failed: {str(e).strip().splitlines()[0]}")
                try:
                    self.x("ROLLBACK")
                except psycopg2.Error:
                    pass
                self.post = []
                self.forget_created()
        for t in s.held:
            t.busy = False
        s.held, s.open, s.strong, s.sp_stack = [], False, False, []

    def settle_sessions(self, strong_only):
        """End the open transactions a recording (or a new slot) would wait
        for: those holding strong locks, or all of them. DML-only ones stay
        open across a point (their rows are not the point's)."""
        for s in self.sessions[1:]:
            if s.open and (s.strong or s.created or not strong_only):
                self.session_end(s, "commit" if self.r.random() < 0.85 else "rollback")

    # -- many tables, many schemas
    def make_any(self, schema="public"):
        """A table of a random kind (with its partitions or family); returns
        the tables to fill."""
        r = self.r
        kind = r.choices(["keyed", "keyless", "keyless_full", "generated", "toast", "toast_full", "wide", "fk",
                          "equal", "partitioned", "inherit", "typed"],
                         [8, 3, 3, 2, 1, 1, 1.5, 1.5, 1.5, 0.7, 0.5, 0.5])[0]
        if schema != "public" and kind in ("partitioned", "inherit", "typed"):
            kind = "keyed"
        if kind == "keyed":
            t = self.make_keyed(schema=schema)
        elif kind in ("keyless", "keyless_full", "equal"):
            t = self.make_keyless(kind != "keyless", schema=schema, third="bool" if kind == "equal" else None)
        elif kind == "generated":
            t = self.make_generated(r.random() < 0.6, schema=schema)
        elif kind in ("toast", "toast_full"):
            t = self.make_toast(schema=schema, keyless=kind == "toast_full")
        elif kind == "wide":
            t = self.make_wide(schema)
        elif kind == "fk":
            return self.make_fk(schema)
        elif kind == "partitioned":
            t = self.make_partitioned()
        elif kind == "inherit":
            t = self.make_inherit()
        else:
            t = self.make_typed()
        return [t] + self.descendants(t)

    def make_matview(self, base):
        """A materialized view of base (REFRESHed now and then: mo_refresh)."""
        t = Table(base.schema, self.new_name("mv"), "matview")
        t.matview = t.frozen = True
        t.cols = [Col(c.name, c.tkey) for c in base.cols]
        self.x(f"CREATE MATERIALIZED VIEW {t.q} AS SELECT * FROM {base.q}")
        return self.add_table(t)

    def mo_refresh(self):
        t = self.pick(self.live(lambda t: t.matview))
        if t is None:
            return False
        self.x(f"REFRESH MATERIALIZED VIEW {t.q}")
        self.log_op(t, "refresh")
        return True

    def make_wide(self, schema="public"):
        """100-250 columns; keyed, or keyless under FULL."""
        keyed = self.r.random() < 0.6
        t = Table(schema, self.new_name("wd"), "keyed_int" if keyed else "keyless")
        t.wide = True
        t.cols = [Col("id", "int4")] + [Col(self.new_col_name(), self.r.choice(COMMON_TYPES))
                                        for _ in range(self.r.randint(100, 250))]
        t.pk = ["id"] if keyed else None
        return self.create_plain(t, not keyed)

    def make_fk(self, schema="public"):
        """A parent and two children REFERENCES it: one keyed (ON UPDATE
        CASCADE ON DELETE CASCADE), one keyless under FULL (ON DELETE SET NULL)."""
        base = self.new_name("fk")
        p = Table(schema, base, "keyed_int")
        p.cols = [Col("id", "int4"), Col("v", "text")]
        p.pk = ["id"]
        self.create(p, self.col_defs(p))
        c1 = Table(schema, base + "_c", "keyed_int")
        c1.cols = [Col("id", "int4"), Col("pid", "int4"), Col("w", "text")]
        c1.pk = ["id"]
        self.create(c1, self.col_defs(c1)[:-1] + [
            "PRIMARY KEY (id)", f"FOREIGN KEY (pid) REFERENCES {p.q} (id) ON UPDATE CASCADE ON DELETE CASCADE"])
        c2 = Table(schema, base + "_n", "keyless")
        c2.cols = [Col("a", "int4"), Col("b", "text"), Col("pid", "int4")]
        self.create(c2, self.col_defs(c2) + [
            f"FOREIGN KEY (pid) REFERENCES {p.q} (id) ON UPDATE CASCADE ON DELETE SET NULL"])
        self.replident_full(c2)
        p.fk_group = c1.fk_group = c2.fk_group = [p, c1, c2]
        for c in (c1.col("pid"), c2.col("pid")):
            c.fk, c.referenced = p, True
        return [p, c1, c2]

    def populate(self, n, schema="public"):
        """About n tables of random kinds, with rows."""
        made = 0
        while made < n:
            ts = self.make_any(schema)
            for t in ts:
                if not t.partitioned:
                    self.insert(t, self.r.randint(1, 6))
            made += len(ts)
        return made

    def schema_batch(self, n):
        """CREATE SCHEMA and about n tables in it (and some in an older one)."""
        self.nschema += 1
        name = f"s_b{self.nschema}"
        self.x(f"CREATE SCHEMA {name}")
        self.populate(n, name)
        if self.schemas and self.r.random() < 0.5:
            self.populate(max(1, n // 3), self.r.choice(self.schemas))
        self.on_commit(lambda: self.schemas.append(name))
        self.stats["schema_batch"] += 1
        return True

    # -- one table
    MORE_TABLE_OPS = {"set_default": 2, "not_null": 2, "replident_nothing": 1, "set_unlogged": 0.6,
                      "truncate_restart": 1, "add_generated": 2, "drop_generated": 1.5, "readd_column": 2,
                      "upsert": 3, "bulk_update": 2, "bulk_delete": 1.5, "equal_rows": 2, "insert_partial": 2,
                      "set_schema": 1.5}

    def more_table_op(self, t, op=None):
        op = op or self.r.choices(list(self.MORE_TABLE_OPS), list(self.MORE_TABLE_OPS.values()))[0]
        done = getattr(self, "mo_" + op)(t)
        if done:
            self.stats["more:" + op] += 1
        return done

    def pick(self, xs):
        """One of xs at random, None when there is none (the seed's draws as a choice behind an emptiness test)."""
        return self.r.choice(xs) if xs else None

    def plain_cols(self, t):
        """Columns DDL may change: not a key's, not generated or used by one, no identity, no REFERENCES."""
        return [c for c in t.writable_cols() if c.name not in t.keycols and not (t.pk and c.name in t.pk)
                and c.name not in t.ri_cols and not c.referenced and c.fk is None
                and c.name not in ("a", "b", "id", "region")]

    def mo_set_default(self, t):
        c = self.pick([c for c in self.plain_cols(t) if c.tkey in COMMON_TYPES])
        if c is None:
            return False
        if self.r.random() < 0.3:
            self.x(f"ALTER TABLE {t.q} ALTER COLUMN {c.name} DROP DEFAULT")
        else:
            self.x(f"ALTER TABLE {t.q} ALTER COLUMN {c.name} SET DEFAULT %s::{c.sqltype}", (TYPES[c.tkey][1](self.r),))
        self.mo_insert_partial(t)
        return self.col_ddl_done(t, "set_default", f"set_default {c.name}")

    def mo_not_null(self, t):
        c = self.pick(self.plain_cols(t))
        if c is None:
            return False
        if c.notnull:
            self.x(f"ALTER TABLE {t.q} ALTER COLUMN {c.name} DROP NOT NULL")
            self.on_commit(lambda: setattr(c, "notnull", False))
            return self.col_ddl_done(t, "drop_not_null", f"drop_not_null {c.name}")
        if self.ident(t) or t.replident == "f":
            self.x(f"UPDATE {t.q} SET {c.name} = %s::{self.castof(c)} WHERE {c.name} IS NULL",
                   (TYPES[c.tkey][1](self.r) if TYPES[c.tkey][1] else self.val(c),))
            self.mark_written(t)
        self.x(f"ALTER TABLE {t.q} ALTER COLUMN {c.name} SET NOT NULL")
        self.on_commit(lambda: setattr(c, "notnull", True))
        return self.col_ddl_done(t, "set_not_null", f"set_not_null {c.name}")

    def mo_replident_nothing(self, t):
        if t.replident == "n":
            return False
        self.x(f"ALTER TABLE {t.q} REPLICA IDENTITY NOTHING")
        self.on_commit(lambda: setattr(t, "replident", "n"))
        return self.col_ddl_done(t, "replident_n", "replident_n")

    def mo_set_unlogged(self, t):
        if t.unlogged or t.fk_group:
            return False
        self.x(f"ALTER TABLE {t.q} SET UNLOGGED")
        self.on_commit(lambda: (setattr(t, "unlogged", True), t.tags.add("set_unlogged")))
        self.log_op(t, "set_unlogged")
        return True

    def mo_truncate_restart(self, t):
        cascade = bool(t.fk_group) and t is t.fk_group[0]
        self.x(f"TRUNCATE {t.q} RESTART IDENTITY{' CASCADE' if cascade else ''}")
        for x in (t.fk_group if cascade else [t]):
            self.mark_written(x, "truncate")
            self.log_op(x, "truncate restart identity" + (" cascade" if cascade else ""))
        return True

    def mo_add_generated(self, t):
        src = self.pick([c for c in t.cols if c.gen_expr is None and c.tkey in ("int2", "int4", "int8", "text")])
        if src is None:
            return False
        name = self.new_col_name()
        tkey, expr = (("text", f"lower({src.name}) || '#'") if src.tkey == "text"
                      else ("int8", f"{src.name}::bigint * 3 - 1"))
        self.x(f"ALTER TABLE {t.q} ADD COLUMN {name} {TYPES[tkey][0]} GENERATED ALWAYS AS ({expr}) STORED")

        def fn():
            src.referenced = True
            t.cols.append(Col(name, tkey, expr))
        self.on_commit(fn)
        return self.col_ddl_done(t, "add_generated", f"add_generated {name} AS ({expr})")

    def mo_drop_generated(self, t):
        c = self.pick([c for c in t.cols if c.gen_expr])
        if c is None:
            return False
        self.x(f"ALTER TABLE {t.q} DROP COLUMN {c.name}")
        self.on_commit(lambda: t.cols.remove(c))
        return self.col_ddl_done(t, "drop_generated", f"drop_generated {c.name}")

    def mo_readd_column(self, t):
        """DROP COLUMN c and ADD COLUMN c of another type (one ALTER TABLE or two)."""
        c = self.pick(self.plain_cols(t))
        if c is None:
            return False
        nc = Col(c.name, self.r.choice([k for k in COMMON_TYPES if k != c.tkey]))
        if self.r.random() < 0.5:
            self.x(f"ALTER TABLE {t.q} DROP COLUMN {c.name}, ADD COLUMN {c.name} {nc.sqltype}")
        else:
            self.x(f"ALTER TABLE {t.q} DROP COLUMN {c.name}")
            self.x(f"ALTER TABLE {t.q} ADD COLUMN {c.name} {nc.sqltype}")
        self.on_commit(lambda: (t.cols.remove(c), t.cols.append(nc)))
        return self.col_ddl_done(t, "readd_column", f"readd_column {c.name} {nc.sqltype}")

    def mo_upsert(self, t):
        """INSERT ... ON CONFLICT (key) DO UPDATE / DO NOTHING, existing keys and new."""
        if (not t.pk or len(t.pk) != 1 or t.partitioned or t.parent or t.replident == "n"
                or t.col(t.pk[0]).tkey not in ("int4", "text", "uuid") or t.col(t.pk[0]).auto):
            return False
        k = t.pk[0]
        keys = [x[0] for x in self.rows(f"SELECT {k}::text FROM {t.q} ORDER BY 1")]
        cols = t.writable_cols()
        rows = []
        for key in self.r.sample(keys, min(len(keys), self.r.randint(0, 3))) + [None] * self.r.randint(1, 3):
            v = self.row_vals(t)
            if key is not None:
                v[k] = key
            rows.append([v[c.name] for c in cols])
        nonkey = [c for c in cols if c.name not in t.keycols and c.name not in t.ri_cols]
        if nonkey and self.r.random() < 0.75:
            action = "DO UPDATE SET " + ", ".join(f"{c.name} = EXCLUDED.{c.name}"
                                                  for c in self.r.sample(nonkey, min(2, len(nonkey))))
        else:
            action = "DO NOTHING"
        ph = "(" + ", ".join(f"%s::{self.castof(c)}" for c in cols) + ")"
        self.x(f"INSERT INTO {t.q} ({', '.join(c.name for c in cols)}) VALUES {', '.join([ph] * len(rows))} "
               f"ON CONFLICT ({k}) {action}", [v for row in rows for v in row])
        self.mark_written(t, "upsert")
        return True

    def mo_bulk_update(self, t):
        """One UPDATE of every row (or of those matching a condition)."""
        if not (self.ident(t) or t.replident == "f"):
            return False
        cs = [c for c in t.writable_cols() if c.name not in (self.ident(t) or []) and not (t.pk and c.name in t.pk)
              and c.name not in ("id", "region") and not (t.replident == "i" and c.name in t.ri_cols)]
        if not cs:
            return False
        c = self.r.choice(cs)
        cond = self.r.choice(["", f" WHERE {c.name} IS NOT NULL"])
        self.x(f"UPDATE {t.q} SET {c.name} = %s::{self.castof(c)}{cond}", (self.upd_val(t, c),))
        self.mark_written(t, "bulk")
        return True

    def mo_bulk_delete(self, t):
        """About half the rows in one DELETE."""
        if not (self.ident(t) or t.replident == "f") or t.partitioned:
            return False
        ctids = [x[0] for x in self.rows(f"SELECT ctid::text FROM {t.q} ORDER BY ctid")]
        if not ctids:
            return False
        self.x(f"DELETE FROM {t.q} WHERE ctid = ANY(%s::tid[])", (self.r.sample(ctids, (len(ctids) + 1) // 2),))
        self.mark_written(t, "bulk")
        return True

    def mo_equal_rows(self, t):
        """Copies of one row of a table without a key (a multiset)."""
        if t.pk or t.ri_index or t.partitioned or t.parent is not None:
            return False
        cols = ", ".join(c.name for c in t.writable_cols())
        if not self.rows(f"SELECT 1 FROM {t.q} LIMIT 1"):
            self.insert(t, 1)
        n = self.r.choice([2, 5, 30])
        self.x(f"INSERT INTO {t.q} ({cols}) SELECT {cols} FROM (SELECT {cols} FROM {t.q} ORDER BY ctid LIMIT 1) x "
               f"CROSS JOIN generate_series(1, {n})")
        self.mark_written(t, "equal_rows")
        return True

    def mo_insert_partial(self, t):
        """An INSERT naming some columns: the defaults fill in the others."""
        bounds = self.part_bounds(t)
        if bounds is False:
            return False
        v = self.row_vals(t, bounds)
        must = set(t.keycols) | set(t.pk or []) | set(t.ri_cols) | {"id", "region"}
        cols = [c for c in t.writable_cols() if c.name in must or c.notnull or self.r.random() < 0.4]
        if not cols:
            self.x(f"INSERT INTO {t.q} DEFAULT VALUES")
        else:
            self.x(f"INSERT INTO {t.q} ({', '.join(c.name for c in cols)}) VALUES "
                   f"({', '.join(f'%s::{self.castof(c)}' for c in cols)})", [v[c.name] for c in cols])
        self.mark_written(t)
        return True

    def mo_set_schema(self, t):
        where = [s for s in self.schemas + ["public"] if s != t.schema]
        if not where or t.frozen:
            return False
        to = self.r.choice(where)
        self.x(f"ALTER TABLE {t.q} SET SCHEMA {to}")
        self.on_commit(lambda: (setattr(t, "schema", to), t.tags.add("set_schema"), setattr(t, "ddl_unwritten", True)))
        self.log_op(t, f"set schema {to}")
        return True

    # Every seed does each of these once at least (due at its own step,
    # retried until it did something), as the rewrite operations.
    MORE_FORCED = ["fk", "refresh", "set_default", "not_null", "replident_nothing", "set_unlogged", "truncate_restart",
                   "add_generated", "upsert", "readd_column", "bulk_update", "set_schema", "recreate",
                   "equal_rows", "attach_subtree", "bulk_delete", "rename_swap", "drop_generated",
                   "insert_partial", "truncate_cascade", "detach_subtree", "detach_concurrently"]

    def tx_op(self, fn):
        """fn() in one transaction; True when it committed and fn said it did something."""
        res = []
        return self.step_tx(lambda: res.append(fn())) and bool(res and res[0])

    def more_forced(self, op):
        r = self.r
        if op in ("recreate", "detach_concurrently"):
            return getattr(self, "mo_" + op)()
        if op in ("rename_swap", "refresh"):
            return self.tx_op(getattr(self, "mo_" + op))
        if op == "fk":
            return self.tx_op(lambda: [self.insert(t, r.randint(2, 5)) for t in self.make_fk()])
        if op == "truncate_cascade":
            ps = self.live(lambda t: t.fk_group and t is t.fk_group[0] and not t.busy)
            return self.tx_op(lambda: self.mo_truncate_restart(r.choice(ps))) if ps else False
        if op in ("attach_subtree", "detach_subtree"):
            roots = self.live(lambda t: t.partitioned and t.parent is None and t.ranges
                              and not any(x.busy for x in self.tree(t)))
            subs = [(root, x) for root in roots for x in self.tree(root)
                    if x.parent is root and x.partitioned and x.bounds]
            if op == "detach_subtree":
                return self.tx_op(lambda: self.mo_detach(*r.choice(subs))) if subs else False
            return self.tx_op(lambda: self.mo_attach_subtree(r.choice(roots))) if roots else False
        dml = op in ("upsert", "bulk_update", "bulk_delete", "equal_rows", "insert_partial")
        cands = self.live(lambda t: not t.busy and not t.frozen and (
            self.ddl_target(t) if not dml else not (t.parent is not None and t.partitioned)))
        r.shuffle(cands)
        return self.tx_op(lambda: any(self.more_table_op(t, op) for t in cands[:12]))

    # -- main session only: several tables, or their own transactions
    def more_step(self, step, dml_table):
        r = self.r
        op = r.choices(["table", "ddl_table", "recreate", "rename_swap", "set_schema_any", "subtree",
                        "detach_concurrently"], [12, 8, 1.5, 1, 1, 1.2, 0.8])[0]
        if op == "table":
            t = dml_table()
            if t is not None:
                what = r.choice(["upsert", "bulk_update", "bulk_delete", "equal_rows", "insert_partial"])
                self.step_tx(lambda: self.more_table_op(t, what))
        elif op == "ddl_table":
            ts = self.live(lambda t: self.ddl_target(t) and not t.busy)
            if ts:
                t = r.choice(ts)
                self.step_tx(lambda: self.more_table_op(t))
        elif op == "set_schema_any":
            # partitions, partitioned tables, INHERITS members too
            ts = self.live(lambda t: not t.busy and not t.frozen and not self.ddl_target(t))
            if ts:
                t = r.choice(ts)
                self.step_tx(lambda: self.mo_set_schema(t))
        elif op == "recreate":
            self.mo_recreate()
        elif op == "rename_swap":
            self.step_tx(self.mo_rename_swap)
        elif op == "subtree":
            roots = self.live(lambda t: t.partitioned and t.parent is None and t.ranges and not t.busy
                              and not any(x.busy for x in self.tree(t)))
            if roots:
                root = r.choice(roots)
                subs = [x for x in self.tree(root) if x.parent is root and x.partitioned and x.bounds]
                if subs and r.random() < 0.4:
                    sub = r.choice(subs)
                    self.step_tx(lambda: self.mo_detach(root, sub))
                else:
                    self.step_tx(lambda: self.mo_attach_subtree(root))
        else:
            self.mo_detach_concurrently()

    def mo_recreate(self):
        """DROP TABLE t and CREATE TABLE under its name (another kind), in one
        transaction or two."""
        t = self.pick(self.live(lambda t: self.ddl_target(t) and not t.busy and not t.fk_group and t.kind != "types"))
        if t is None:
            return False
        keyed = self.r.random() < 0.5

        def drop():
            self.x(f"DROP TABLE {t.q}")
            self.on_commit(lambda: setattr(t, "dropped", True))
            self.log_op(t, "drop_table (made again)")
            self.mark_written(t)

        def make():
            nt = (self.make_keyed(schema=t.schema, name=t.name) if keyed else
                  self.make_keyless(self.r.random() < 0.5, schema=t.schema, name=t.name))
            nt.tags.add("recreated")
            self.insert(nt, self.r.randint(1, 5))
        if self.r.random() < 0.5:
            done = self.step_tx(lambda: (drop(), make()))
        else:
            done = self.step_tx(drop) and self.step_tx(make)
        if done:
            self.stats["more:recreate"] += 1
        return done

    def mo_rename_swap(self):
        """Two tables' names swapped in one transaction (through a third name)."""
        ts = self.live(lambda t: self.ddl_target(t) and not t.busy and t.schema == "public")
        if len(ts) < 2:
            return False
        a, b = self.r.sample(ts, 2)
        tmp = self.new_name("tmp")
        self.x(f"ALTER TABLE {a.q} RENAME TO {tmp}")
        self.x(f"ALTER TABLE {b.q} RENAME TO {a.name}")
        self.x(f"ALTER TABLE public.{tmp} RENAME TO {b.name}")

        def fn(an=a.name, bn=b.name):
            a.name, b.name = bn, an
            for x in (a, b):
                x.tags |= {"rename_table", "rename_swap"}
                x.ddl_unwritten = True
        self.on_commit(fn)
        self.log_op(a, f"renamed to {b.name} (swap)")
        self.log_op(b, f"renamed to {a.name} (swap)")
        self.stats["more:rename_swap"] += 1
        return True

    def mo_attach_subtree(self, root):
        """A partitioned table (LIST region) with two leaves and rows, attached
        under root for a new range."""
        n = 1 + max(hi for lo, hi in root.ranges.values()) // 100000
        lo, hi = 100000 * n, 100000 * (n + 1)
        sub = Table("public", self.new_name(root.name + "s"), "partitioned")
        sub.partitioned, sub.bounds = True, (lo, hi, ["x", "y"])
        sub.cols, sub.pk = [Col(c.name, c.tkey) for c in root.cols], list(root.pk)
        self.create(sub, self.col_defs(sub), " PARTITION BY LIST (region)")
        for reg in ("x", "y"):
            leaf = Table("public", f"{sub.name}_{reg}", "partition")
            leaf.parent, leaf.cols, leaf.pk, leaf.bounds = sub, [Col(c.name, c.tkey) for c in root.cols], sub.pk, (lo, hi, [reg])
            self.x(f"CREATE TABLE {leaf.q} PARTITION OF {sub.q} FOR VALUES IN ('{reg}')")
            self.add_table(leaf)
        self.insert(sub, self.r.randint(2, 6))
        self.x(f"ALTER TABLE {root.q} ATTACH PARTITION {sub.q} FOR VALUES FROM ({lo}) TO ({hi})")

        self.attached_on_commit(root, sub, lo, hi)
        self.log_op(root, f"attach subtree {sub.q}")
        self.mark_written(root)
        self.stats["more:attach_subtree"] += 1
        return True

    def mo_detach(self, root, sub):
        self.x(f"ALTER TABLE {root.q} DETACH PARTITION {sub.q}")
        self.on_commit(lambda: self.model_detach(root, sub))
        self.log_op(root, f"detach subtree {sub.q}")
        self.log_op(sub, f"detached from {root.q}")
        self.stats["more:detach_subtree"] += 1
        return True

    def mo_detach_concurrently(self, schema=None):
        """DETACH PARTITION ... CONCURRENTLY (two transactions of its own,
        outside a transaction block; FINALIZE when it stopped between them);
        of a root in schema when given."""
        self.settle_sessions(strong_only=False)
        roots = self.live(lambda t: t.partitioned and t.parent is None and not any(x.busy for x in self.tree(t))
                          and schema in (None, t.schema))
        leaf = self.pick([x for root in roots for x in self.tree(root) if x.parent is root and not x.partitioned])
        if leaf is None:
            return False
        root = leaf.parent
        try:
            self.x(f"ALTER TABLE {root.q} DETACH PARTITION {leaf.q} CONCURRENTLY")
        except psycopg2.Error as e:
            self.note(f"detach concurrently: {str(e).strip().splitlines()[0]}")
            pend = self.rows("SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = %s::regclass", (leaf.q,))
            if not pend:
                pass
            elif pend[0][0]:
                self.x(f"ALTER TABLE {root.q} DETACH PARTITION {leaf.q} FINALIZE")
            else:
                return False
        self.model_detach(root, leaf)
        leaf.tags.add("detach_concurrently")
        self.log_op(root, f"detach concurrently {leaf.q}")
        self.log_op(leaf, f"detached concurrently from {root.q}")
        self.stats["more:detach_concurrently"] += 1
        return True


# ---------------------------------------------------------------- --user-publication


class UserPub:
    """--user-publication: setup is given a publication the user made
    (userpub: FOR TABLES IN SCHEMA public, and, after setup, the tables of a
    schema up listed one by one), and the user changes it while the
    workload runs: a table dropped from it and added back, SET TABLE, DROP
    and ADD TABLES IN SCHEMA, a row filter or a column list put on and
    taken off, publish = without every action and back,
    publish_via_partition_root on and off, DETACH PARTITION ... CONCURRENTLY
    of a partition published through its parent alone, and the publication
    dropped and made again (in one transaction, the worker running or
    stopped). Its steps draw from a generator of their own, so the rest of
    a seed's workload is the same with and without them.

    What each table-point should answer is read from PostgreSQL's catalog
    at the point, not from walrev's: published (the rows, byte for byte) or
    not (walrev's refusal naming it unpublished). expected() says which."""
    NAME = "userpub"
    OPS = ["leave", "rejoin", "set_table", "drop_schema", "add_schema", "filter", "unfilter", "publish", "viaroot",
           "detach_concurrently", "recreate"]
    WEIGHTS = [5, 4, 3, 2, 2, 3, 2, 1.5, 1.5, 1, 2]

    def __init__(self, w, worker, seed):
        self.w, self.worker = w, worker
        self.r = random.Random(seed * 1000003 + 13)
        self.done = defaultdict(int)   # op -> times it changed the publication
        self.ever_out = set()          # table ids seen unpublished at a point
        # every kind of change at least once a seed (unless the seed has too few
        # steps for them): half the steps take the next one not done yet
        self.todo = list(self.OPS)
        self.r.shuffle(self.todo)

    def create(self):
        """Before setup: the user's publication, of schema public."""
        self.w.x(f"CREATE PUBLICATION {self.NAME} FOR TABLES IN SCHEMA public")

    def make_up(self):
        """After setup: schema up, kept out of the publication (a session with
        walrev.publish_new_schema = off), its tables listed one by one."""
        w = self.w

        def body():
            w.x("SET LOCAL walrev.publish_new_schema = off")
            w.x("CREATE SCHEMA up")
            ts = [w.make_keyed(schema="up", keytype="int"), w.make_keyless(True, schema="up"),
                  w.make_keyed(schema="up", keytype="text")]
            root = w.make_partitioned(schema="up")
            w.x(f"ALTER PUBLICATION {self.NAME} ADD TABLE " + ", ".join(t.q for t in ts + [root]))
            for t in ts + [x for x in w.tree(root) if not x.partitioned]:
                w.insert(t, self.r.randint(2, 6))
        if not w.step_tx(body):
            raise RuntimeError("--user-publication: could not make schema up")

    # -- the publication as the catalog has it
    def q1(self, sql, params=None):
        return self.w.rows(sql, params)

    def listed(self):
        """{qualified name: partial} of the tables the publication lists itself."""
        return dict(self.q1("SELECT format('%%I.%%I', n.nspname, c.relname), pr.prqual IS NOT NULL OR pr.prattrs IS NOT NULL"
                            " FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid"
                            " JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
                            " WHERE p.pubname = %s AND n.nspname <> 'walrev'", (self.NAME,)))

    def schemas(self):
        return [s for (s,) in self.q1("SELECT n.nspname FROM pg_publication_namespace pn JOIN pg_publication p"
                                      " ON p.oid = pn.pnpubid JOIN pg_namespace n ON n.oid = pn.pnnspid"
                                      " WHERE p.pubname = %s ORDER BY 1", (self.NAME,))]

    def options(self):
        return self.q1("SELECT pubinsert AND pubupdate AND pubdelete AND pubtruncate, pubviaroot FROM pg_publication"
                       " WHERE pubname = %s", (self.NAME,))[0]

    def up_tables(self):
        """up's tables the publication may list: not partitions (those go through their root)."""
        return [t for t in self.w.live(lambda t: t.schema == "up" and t.parent is None and not t.busy and not t.unlogged)]

    # -- steps
    def step(self, step):
        w = self.w
        w.settle_sessions(strong_only=True)
        acts, viaroot = self.options()
        if not acts and self.r.random() < 0.7:
            op = "publish"
        elif viaroot and self.r.random() < 0.7:
            op = "viaroot"
        elif self.todo and self.r.random() < 0.5:
            op = self.todo.pop(0)
            self.todo.append(op)   # tried again later unless it does something now
        else:
            op = self.r.choices(self.OPS, self.WEIGHTS)[0]
        did = getattr(self, "op_" + op)()
        if did:
            if op in self.todo:
                self.todo.remove(op)
            self.done[op] += 1
            w.event(f"publication: {did}")
            w.stats["pub:" + op] += 1

    def before_setup(self):
        """What walrev setup (run again after the lost slot) would refuse,
        undone first, as its fix says: every action published, no
        publish_via_partition_root, no row filter or column list. (Refused,
        setup makes no slot, the worker makes one itself once every open
        transaction has ended, and points recorded meanwhile fall inside
        the gap.)"""
        for q, part in self.listed().items():
            if part:
                self.w.step_tx(lambda q=q: (self.w.x(f"ALTER PUBLICATION {self.NAME} DROP TABLE {q}"),
                                            self.w.x(f"ALTER PUBLICATION {self.NAME} ADD TABLE {q}")))
        self.alter("SET (publish = 'insert, update, delete, truncate', publish_via_partition_root = false)")

    def alter(self, what):
        sql = f"ALTER PUBLICATION {self.NAME} {what}"
        return sql if self.w.step_tx(lambda: self.w.x(sql)) else None

    def op_leave(self):
        ts = [q for q, part in self.listed().items() if q.startswith("up.")]
        return self.alter(f"DROP TABLE {self.r.choice(ts)}") if ts else None

    def op_rejoin(self):
        listed = self.listed()
        ts = [t.q for t in self.up_tables() if t.q not in listed]
        return self.alter(f"ADD TABLE {self.r.choice(ts)}") if ts else None

    def op_set_table(self):
        ts = [t.q for t in self.up_tables()]
        keep = [q for q in ts if self.r.random() < 0.6]
        parts = [f"TABLES IN SCHEMA {', '.join(self.schemas())}"] if self.schemas() else []
        parts += [f"TABLE {', '.join(keep)}"] if keep else []
        return self.alter("SET " + ", ".join(parts)) if parts else None

    def op_drop_schema(self):
        ss = self.schemas()
        # public (nearly every table) now and then, the others mostly
        ss = [s for s in ss if s != "public" or self.r.random() < 0.25]
        return self.alter(f"DROP TABLES IN SCHEMA {self.r.choice(ss)}") if ss else None

    def op_add_schema(self):
        have = set(self.schemas())
        ss = [s for s in ["public", "up"] + self.w.schemas if s not in have]
        return self.alter(f"ADD TABLES IN SCHEMA {self.r.choice(ss)}") if ss else None

    def op_filter(self):
        """A row filter (on a key column: UPDATE and DELETE need the filter's
        columns in the replica identity) or a column list (the key and some
        columns), in one transaction that drops and adds the table again."""
        listed = self.listed()
        ts = [t for t in self.up_tables() if t.q in listed and not listed[t.q]]
        if not ts:
            return None
        t = self.r.choice(ts)
        if self.r.random() < 0.5 or not t.pk:
            key = (t.pk or [t.cols[0].name])[0]
            how = f"WHERE ({key} IS NOT NULL AND length({key}::text) % 2 = 0)"
        else:
            rest = [c.name for c in t.cols if c.name not in t.pk and not c.gen_expr]
            if not rest:
                return None
            how = "(" + ", ".join(t.pk + rest[:-1]) + ")"
        sql = f"ALTER PUBLICATION {self.NAME} DROP TABLE {t.q}; ALTER PUBLICATION {self.NAME} ADD TABLE {t.q} {how}"
        return sql if self.w.step_tx(lambda: (self.w.x(sql.split("; ")[0]), self.w.x(sql.split("; ")[1]))) else None

    def op_unfilter(self):
        ts = [q for q, part in self.listed().items() if part]
        if not ts:
            return None
        q = self.r.choice(ts)
        sql = f"ALTER PUBLICATION {self.NAME} DROP TABLE {q}; ALTER PUBLICATION {self.NAME} ADD TABLE {q}"
        return sql if self.w.step_tx(lambda: (self.w.x(sql.split("; ")[0]), self.w.x(sql.split("; ")[1]))) else None

    def op_publish(self):
        acts, _ = self.options()
        if acts:
            return self.alter("SET (publish = '" + self.r.choice(["insert, update", "insert, update, delete",
                                                                   "insert, update, truncate"]) + "')")
        return self.alter("SET (publish = 'insert, update, delete, truncate')")

    def op_viaroot(self):
        _, viaroot = self.options()
        return self.alter(f"SET (publish_via_partition_root = {'false' if viaroot else 'true'})")

    def op_detach_concurrently(self):
        return "DETACH PARTITION ... CONCURRENTLY of up" if self.w.mo_detach_concurrently(schema="up") else None

    def op_recreate(self):
        """DROP PUBLICATION and CREATE PUBLICATION again in one transaction,
        as the user had it or with one change (a table or schema less or
        more), the worker running or stopped (started again after)."""
        w = self.w
        listed, schemas = self.listed(), self.schemas()
        acts, viaroot = self.options()
        tables = [q for q, part in listed.items() if not part]
        r = self.r
        change = r.choice(["same", "less", "more"])
        if change == "less" and tables:
            tables.remove(r.choice(tables))
        elif change == "less" and len(schemas) > 1:
            schemas.remove(r.choice([s for s in schemas if s != "public"] or schemas))
        elif change == "more":
            extra = [t.q for t in self.up_tables() if t.q not in tables]
            if extra:
                tables.append(r.choice(extra))
        parts = ([f"TABLES IN SCHEMA {', '.join(schemas)}"] if schemas else []) + \
                ([f"TABLE {', '.join(tables)}"] if tables else [])
        if not parts:
            return None
        opts = []
        if not acts:
            opts.append("publish = 'insert, update, delete, truncate'")
        if viaroot:
            opts.append("publish_via_partition_root = true")
        create = f"CREATE PUBLICATION {self.NAME} FOR " + ", ".join(parts) + (f" WITH ({', '.join(opts)})" if opts else "")
        stopped = r.random() < 0.5 and self.worker.proc is not None
        if stopped:
            self.worker.stop(signal.SIGTERM)
            w.event("worker SIGTERM (the publication made again while it is stopped)")
        try:
            ok = w.step_tx(lambda: (w.x(f"DROP PUBLICATION {self.NAME}"), w.x(create)))
        finally:
            if stopped:
                self.worker.start()
                w.event("worker restarted")
        return f"DROP PUBLICATION; {create} ({'worker stopped' if stopped else 'worker running'})" if ok else None

    # -- the right answer
    def state(self):
        """{table: published} of the model's live tables (no matview), as expected() says."""
        pubs = self.expected()
        live = [t for t in self.w.live() if not t.matview]
        oids = self.q1("SELECT to_regclass(x)::bigint FROM unnest(%s::text[]) WITH ORDINALITY u(x, i) ORDER BY i",
                       ([t.q for t in live],))
        return {t: pubs.get(o, False) for t, (o,) in zip(live, oids)}

    OUT = ("is not published at revision",)
    NEW = ("was not tracked yet at revision", "is incomplete at revision")

    def want(self, t, out, tags):
        """The right answers of t at a point: (rows are right, the refusals
        that are). Out of the publication: the refusal naming it unpublished
        (or, for a table never tracked yet, that it was not). Published: its
        rows; also the refusal that its (or a member's) first baseline is not
        there yet, after a first join. (A rejoin while another transaction
        had written the table fails: test_unpublish_inflight.)"""
        members = [t] + self.w.descendants(t)
        joined = any(m.joined for m in members)
        never = any(m.born_out and not m.joined for m in members)
        if joined:
            tags.add("first_join")
        if out:
            return (False, self.OUT + (self.NEW if never or joined else ()))
        return (True, self.NEW if joined else ())

    def published(self, q):
        """Whether table q (made in this transaction, maybe) is published now, as expected() says."""
        (o,) = self.q1("SELECT to_regclass(%s)::bigint", (q,))[0]
        return self.expected().get(o, False)

    def expected(self):
        """{table oid: published} for every ordinary and partitioned table
        outside walrev's schema, as PostgreSQL's catalog has it now. A table
        is published when the publication covers it (FOR ALL TABLES, itself,
        an ancestor, or one's schema), sends every action, lists it without a
        row filter or column list (a partition's ancestor's filter does not
        apply to it without publish_via_partition_root, as pgoutput does),
        and, WITH (publish_via_partition_root), it is no partitioned table
        and has no covered ancestor (its changes would arrive under that
        root, which walrev does not take apart); and every table below it
        (partitions, INHERITS children) is published too, since its rows are
        theirs as well."""
        rows = self.q1("""
            WITH p AS (SELECT oid, puballtables, pubviaroot,
                              pubinsert AND pubupdate AND pubdelete AND pubtruncate AS acts
                         FROM pg_publication WHERE pubname = %s),
                 cov AS (SELECT c.oid FROM pg_class c, p
                          WHERE p.puballtables
                             OR c.oid IN (SELECT prrelid FROM pg_publication_rel WHERE prpubid = p.oid)
                             OR c.relnamespace IN (SELECT pnnspid FROM pg_publication_namespace WHERE pnpubid = p.oid))
            SELECT c.oid::bigint,
                   coalesce((SELECT acts FROM p), false)
                   AND EXISTS (SELECT 1 FROM (SELECT c.oid AS relid UNION SELECT relid FROM pg_partition_ancestors(c.oid)) a
                                WHERE a.relid IN (SELECT oid FROM cov))
                   AND NOT (c.relkind = 'r' AND EXISTS (SELECT 1 FROM pg_publication_rel pr, p
                                                         WHERE pr.prpubid = p.oid AND pr.prrelid = c.oid
                                                           AND (pr.prqual IS NOT NULL OR pr.prattrs IS NOT NULL)))
                   AND NOT (coalesce((SELECT pubviaroot FROM p), false)
                            AND (c.relkind = 'p' OR EXISTS (SELECT 1 FROM pg_partition_ancestors(c.oid) a
                                                             WHERE a.relid <> c.oid AND a.relid IN (SELECT oid FROM cov))))
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('walrev', 'pg_catalog', 'information_schema')
               AND n.nspname !~ '^pg_'""", (self.NAME,))
        own = dict(rows)
        kids = defaultdict(list)
        for child, parent in self.q1("SELECT inhrelid::bigint, inhparent::bigint FROM pg_inherits WHERE NOT inhdetachpending"):
            kids[parent].append(child)
        memo = {}

        def whole(o, depth=0):
            if o not in memo:
                memo[o] = own.get(o, False) and (depth > 50 or all(whole(k, depth + 1) for k in kids[o]))
            return memo[o]
        return {o: whole(o) for o in own}


# ---------------------------------------------------------------- the worker


class Worker:
    """`walrev run` as a child process, stopped and restarted at random."""

    def __init__(self, args, conninfo, log, history=None, config=None):
        self.args, self.conninfo, self.log = args, conninfo, log
        self.history = history   # the history store's conninfo (--history-cluster), else the source's
        self.config = config     # a config file with the Kafka and file sinks (--kafka)
        self.proc = None
        self.starts = self.terms = self.kills = 0

    def cmd(self, *rest):
        conf = ["-c", self.config] if self.config else []
        hist = ["--history", self.history] if self.history else []
        pub = ["--publication", UserPub.NAME] if getattr(self.args, "user_publication", False) else []
        return [self.args.walrev] + conf + ["--source", self.conninfo] + hist + ["--slot", SLOT] + pub + list(rest)

    def start(self):
        if self.proc is None:
            self.proc = subprocess.Popen(self.cmd("run"), stdout=subprocess.DEVNULL, stderr=self.log)
            self.starts += 1

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if sig == signal.SIGKILL:
                self.kills += 1
            else:
                self.terms += 1
        self.proc = None

    def died(self):
        return self.proc is not None and self.proc.poll() is not None

    def catch_up(self, lsn, timeout=180):
        self.stop()
        r = subprocess.run(self.cmd("run", "--stop-lsn", lsn), stdout=subprocess.DEVNULL, stderr=self.log,
                           timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"walrev run --stop-lsn {lsn} failed ({r.returncode}); see the worker log")


# ---------------------------------------------------------------- faults

DDL_RE = re.compile(r"\s*(ALTER|CREATE|DROP|TRUNCATE)\b", re.I)


class Cluster:
    """A cluster of tests/support/pgcluster.sh that the test stops (a crash
    with `immediate`) and starts again, keeping its data."""

    def __init__(self, pgdir):
        self.pgdir = pgdir
        self.script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support", "pgcluster.sh")
        with open(os.path.join(pgdir, "port")) as f:
            self.port = f.read().strip()

    def pgctl(self, *what):
        r = subprocess.run(["bash", self.script, what[0], self.pgdir] + list(what[1:]), capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"pgcluster.sh {' '.join(what)} {self.pgdir} failed: {r.stderr.strip()}")

    def down(self, mode):
        self.pgctl("down", mode)

    def up(self):
        self.pgctl("up")


class Faults:
    """Every fault the test injects, drawn from a generator of its own (they
    depend on time, and must not change the workload of a seed):

    - the worker stopped by SIGTERM or SIGKILL every 0.3-3 s and restarted
      after up to 1 s; also right after a transaction with DDL commits (at
      once, or once the slot is confirmed past it) -- issue 13's "restarts
      after DDL";
    - --source-faults: the source server stopped with `pg_ctl stop -m
      immediate` (a crash: open transactions are lost, the slot's position
      goes back to its last checkpoint) or `-m fast` and started again, every
      2-8 s, at a point of one of these kinds: between two steps, in the
      middle of a transaction (lost), before the COMMIT of a transaction with
      a bulk COPY (lost) or right after it, after a DDL inside its transaction
      (lost) or right after that transaction commits, right after PREPARE
      TRANSACTION and right after COMMIT PREPARED. The workload's session then
      commits synchronously, so that what COMMIT acknowledged survives;
    - --history-cluster: the history store's own cluster stopped (immediate
      or fast) for 0.3-4 s, or the worker's history sessions ended by
      pg_terminate_backend, every 1.5-6 s.

    The workload calls before()/after() around each statement; a fault
    inside an open transaction raises psycopg2.OperationalError (the
    transaction is gone, and the model is rolled back as for any failure),
    one after a COMMIT or PREPARE returns normally (it took effect)."""

    WHERE = ["between steps", "mid-transaction", "before a bulk COMMIT", "after a bulk COMMIT",
             "after DDL in its transaction", "after a DDL COMMIT", "after PREPARE", "after COMMIT PREPARED"]

    def __init__(self, args, seed, worker, w, slot):
        self.args, self.worker, self.w, self.slot = args, worker, w, slot
        self.cr = random.Random(seed * 7919 + 1)
        self.counts = defaultdict(int)
        now = time.time()
        self.next_kill = now + self.cr.uniform(0.5, 2.5)
        self.restart_at = None
        # --calm: no faults at all (the history store may still be a cluster of its own)
        self.source = Cluster(args.source_cluster) if args.source_faults and not args.calm else None
        self.history = Cluster(args.history_cluster) if args.history_cluster and not args.calm else None
        self.next_source = now + self.cr.uniform(2.0, 8.0)
        self.armed = None          # a source fault waiting for its kind of point: [where, countdown, since step]
        self.next_history = now + self.cr.uniform(1.5, 6.0)
        self.history_up_at = None
        self.kafka_pid = args.kafka_mock_pid if args.kafka and not args.calm else None
        self.next_kafka = now + self.cr.uniform(1.0, 6.0)
        self.kafka_up_at = None
        self.tx_ddl = False        # the open transaction ran DDL
        self.tx_copies = 0         # w.stats["copy"] when it began
        self.step = 0

    # -- between steps
    def tick(self, step):
        self.step = step
        now = time.time()
        worker, w = self.worker, self.w
        if worker.died():
            # Never expected: nothing a workload or a fault does may stop the
            # worker; it exits by itself only on a fatal error or a crash.
            print(f"difftest: the worker exited by itself ({worker.proc.returncode}); see worker.log", flush=True)
            worker.proc = None
            w.stats["worker_died"] += 1
            self.restart_at = now + 0.2
        self.tick_history(now)
        self.tick_kafka(now)
        if self.source is not None and not w.lost_window:
            if self.armed is None and now >= self.next_source:
                where = self.cr.choice(self.WHERE)
                self.armed = [where, self.cr.randint(1, 6), step]
            if self.armed is not None and (self.armed[0] == "between steps" or step - self.armed[2] > 40):
                self.crash_source("between steps" if self.armed[0] == "between steps" else
                                  f"between steps (no point '{self.armed[0]}' came)")
        if self.args.calm:
            if worker.proc is None and self.restart_at is not None and now >= self.restart_at:
                worker.start()
                self.restart_at = None
            return
        if worker.proc is not None and now >= self.next_kill:
            sig = self.cr.choice([signal.SIGTERM, signal.SIGKILL])
            worker.stop(sig)
            w.event(f"worker {signal.Signals(sig).name}")
            self.restart_at = now + self.cr.uniform(0.0, 1.0)
        elif worker.proc is None and self.restart_at is not None and now >= self.restart_at and not w.paused:
            worker.start()
            w.event("worker restarted")
            self.restart_at = None
            self.next_kill = now + self.cr.uniform(0.3, 2.0)

    def tick_history(self, now):
        if self.history is None:
            return
        if self.history_up_at is not None:
            if now >= self.history_up_at:
                self.history.up()
                self.w.event("history server started again")
                self.history_up_at = None
                self.next_history = now + self.cr.uniform(1.5, 6.0)
            return
        if now < self.next_history:
            return
        how = self.cr.choice(["immediate", "fast", "terminate"])
        self.counts[f"history {how}"] += 1
        if how == "terminate":
            c = psycopg2.connect(f"host=127.0.0.1 port={self.history.port} user=postgres dbname=postgres")
            c.autocommit = True
            cur = c.cursor()
            cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name LIKE 'walrev-%' AND pid <> pg_backend_pid()")
            n = cur.fetchone()[0]
            c.close()
            self.w.event(f"history server: {n} walrev session(s) terminated")
            self.next_history = now + self.cr.uniform(1.5, 6.0)
            return
        self.history.down(how)
        self.w.event(f"history server stopped ({how})")
        self.history_up_at = now + self.cr.uniform(0.3, 4.0)

    def tick_kafka(self, now):
        """--kafka: every broker of the mock cluster down (SIGUSR1) for 0.5-5 s, then up (SIGUSR2)."""
        if self.kafka_pid is None:
            return
        if self.kafka_up_at is not None and now >= self.kafka_up_at:
            os.kill(self.kafka_pid, signal.SIGUSR2)
            self.w.event("Kafka brokers up again")
            self.kafka_up_at = None
            self.next_kafka = now + self.cr.uniform(1.0, 6.0)
        elif self.kafka_up_at is None and now >= self.next_kafka:
            os.kill(self.kafka_pid, signal.SIGUSR1)
            self.counts["kafka brokers down"] += 1
            self.w.event("Kafka brokers down")
            self.kafka_up_at = now + self.cr.uniform(0.5, 5.0)

    def heal(self):
        """Every server up again (before `walrev setup` and the final catch-up)."""
        if self.history_up_at is not None:
            self.history.up()
            self.w.event("history server started again")
            self.history_up_at = None
        if self.kafka_up_at is not None:
            os.kill(self.kafka_pid, signal.SIGUSR2)
            self.w.event("Kafka brokers up again")
            self.kafka_up_at = None
        self.armed = None

    # -- around the workload's statements
    def in_tx(self):
        return self.w.conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE

    def before(self, sql):
        a = self.armed
        if a is None or not self.in_tx():
            return
        head = sql.lstrip()[:20].upper()
        if a[0] == "mid-transaction":
            a[1] -= 1
            if a[1] <= 0:
                self.crash_source(a[0], lost=True)
        elif a[0] == "before a bulk COMMIT" and head == "COMMIT" and self.w.stats["copy"] > self.tx_copies:
            self.crash_source(a[0], lost=True)

    def after(self, sql):
        head = sql.lstrip()[:20].upper()
        if head == "BEGIN":
            self.tx_ddl, self.tx_copies = False, self.w.stats["copy"]
            return
        if DDL_RE.match(sql) and self.in_tx():
            self.tx_ddl = True
            if self.armed is not None and self.armed[0] == "after DDL in its transaction":
                self.crash_source(self.armed[0], lost=True)
        a = self.armed[0] if self.armed is not None else None
        if head == "COMMIT":
            if self.tx_ddl:
                self.after_ddl_commit()
            if a == "after a DDL COMMIT" and self.tx_ddl or \
                    a == "after a bulk COMMIT" and self.w.stats["copy"] > self.tx_copies:
                self.crash_source(a)
        elif head.startswith("PREPARE TRANSACTION") and a == "after PREPARE":
            self.crash_source(a)
        elif head.startswith("COMMIT PREPARED") and a == "after COMMIT PREPARED":
            self.crash_source(a)

    def after_ddl_commit(self):
        """Issue 13: restarts after DDL. A third of the DDL commits stop the
        worker at once (it may not have decoded the DDL) or once its slot is
        confirmed past the commit (the DDL is durable in the history)."""
        worker, w = self.worker, self.w
        if self.args.calm or worker.proc is None or w.paused or self.cr.random() >= 0.33:
            return
        when = "at once"
        if self.cr.random() < 0.5:
            w.cur.execute("SELECT pg_current_wal_insert_lsn()")
            lsn = w.cur.fetchone()[0]
            when = "once confirmed past it"
            deadline = time.time() + 3
            while time.time() < deadline:
                w.cur.execute("SELECT coalesce(bool_or(confirmed_flush_lsn >= %s::pg_lsn), false) "
                              "FROM pg_replication_slots WHERE slot_name = %s", (lsn, self.slot))
                if w.cur.fetchone()[0]:
                    break
                time.sleep(0.02)
            else:
                when = "3 s after it (not confirmed yet)"
        sig = self.cr.choice([signal.SIGTERM, signal.SIGKILL])
        worker.stop(sig)
        self.counts["worker stopped after DDL"] += 1
        w.event(f"worker {signal.Signals(sig).name} after a DDL commit, {when}")
        self.restart_at = time.time() + self.cr.uniform(0.0, 0.5)

    def crash_source(self, where, lost=False):
        """Stop the source server (immediate: a crash) and start it again; the
        workload reconnects. lost: raise, the open transaction is gone."""
        mode = "immediate" if self.cr.random() < 0.7 else "fast"
        self.armed = None
        self.next_source = time.time() + self.cr.uniform(2.0, 8.0)
        self.counts[f"source {mode}"] += 1
        self.counts[f"source down {where}"] += 1
        self.w.event(f"source server stopped ({mode}) {where}")
        try:
            self.w.conn.close()
        except psycopg2.Error:
            pass
        self.source.down(mode)
        time.sleep(self.cr.uniform(0.0, 1.5))
        self.source.up()
        self.w.event("source server started again")
        self.w.connect()
        if lost:
            raise psycopg2.OperationalError(f"difftest: the source server was stopped ({mode}) {where}")

    def summary(self):
        parts = [f"{k} {n}" for k, n in sorted(self.counts.items())]
        return ", ".join(parts) if parts else "none"


# ---------------------------------------------------------------- the workload


class Workload(MoreOps):
    def __init__(self, args, rng, conninfo, workdir):
        self.args, self.r, self.conninfo, self.workdir = args, rng, conninfo, workdir
        self.faults = None   # Faults: called around every statement
        self.sessions = []
        self.connect()
        # every statement the workload runs, in order, with the points and
        # worker events between them: what a divergence is reduced from
        self.sqllog = open(os.path.join(workdir, "workload.sql"), "w")
        self.tables = []
        self.ntab = 0
        self.ncol = 0
        self.setup_done = False
        self.slot_lost = False
        self.lost_window = False
        self.prepared = []   # (gid, tables, post-actions, due step)
        self.points = []     # (index, lsn, [(table q, tags, file)])
        self.stats = defaultdict(int)
        self.ctx_n = 0
        self.new_schema = None
        self.keyseq = 0
        self.events = []
        self.oplog = defaultdict(list)
        self.worker = None
        self.udts = {}       # types of our own: name -> {kind, name, labels | attrs}
        self.nudt = 0
        self.paused = False  # the worker stopped for the rest of a transaction (pause_worker)
        self.schemas = []    # schemas made mid-run (SET SCHEMA moves tables between them and public)
        self.userpub = None  # UserPub under --user-publication
        self.nschema = 0

    def connect(self):
        """The sessions (again after a source server fault, which ended their
        transactions: what those created leaves the model, what they held is
        free). The main one runs the steps one transaction at a time; the
        others (--sessions) keep theirs open across steps (session_step)."""
        for s in self.sessions:
            self.s = s
            self.forget_created()
            for t in s.held:
                t.busy = False
        if not self.sessions:
            self.sessions = [Session("main", self.conninfo, "5s", self.args.source_faults)]
        for s in self.sessions:
            s.connect()
        self.main = self.s = self.sessions[0]

    # the current session's connection, cursor, post-commit model changes and savepoints
    conn = property(lambda self: self.s.conn)
    cur = property(lambda self: self.s.cur)
    post = property(lambda self: self.s.post, lambda self, v: setattr(self.s, "post", v))
    sp_stack = property(lambda self: self.s.sp_stack, lambda self, v: setattr(self.s, "sp_stack", v))

    # -- SQL helpers
    def logsql(self, sql, params=None):
        text = self.cur.mogrify(sql, params).decode() if params is not None else sql
        who = "" if self.s is self.main else f"/* {self.s.name} */ "
        self.sqllog.write(who + text.rstrip().rstrip(";") + ";\n")

    def x(self, sql, params=None):
        if self.faults:
            self.faults.before(sql)
        self.logsql(sql, params)
        self.cur.execute(sql, params)
        if self.faults:
            self.faults.after(sql)

    def rows(self, sql, params=None):
        self.x(sql, params)
        return self.cur.fetchall()

    def lsn(self):
        """The insert position after the last commit, once flushed (the
        cluster may run with synchronous_commit=off; see tests/integration/lib.sh)."""
        target = self.rows("SELECT pg_current_wal_insert_lsn()")[0][0]
        for _ in range(1000):
            if self.rows("SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", (target,))[0][0]:
                break
            time.sleep(0.01)
        return target

    # -- transactions with post-commit model changes
    def begin(self):
        self.x("BEGIN")
        self.post = []
        self.sp_stack = []
        if self.setup_done and self.r.random() < 0.3:
            self.ctx_n += 1
            actor = {"actor": {"type": self.r.choice(["user", "job"]), "id": str(self.r.randint(1, 99))},
                     "description": f"difftest step {self.ctx_n}"}
            import json
            self.x("SELECT walrev.context(%s::jsonb)", (json.dumps(actor),))

    def on_commit(self, fn):
        self.post.append(fn)

    def savepoint(self, name):
        self.x(f"SAVEPOINT {name}")
        self.sp_stack.append((name, len(self.post), len(self.s.created)))

    def rollback_to(self, name):
        self.x(f"ROLLBACK TO SAVEPOINT {name}")
        while self.sp_stack and self.sp_stack[-1][0] != name:
            self.sp_stack.pop()
        _, n, nc = self.sp_stack[-1]
        del self.post[n:]
        for t in self.s.created[nc:]:   # created after the savepoint: gone
            self.tables.remove(t)
        del self.s.created[nc:]

    def commit(self):
        self.x("COMMIT")
        for fn in self.post:
            fn()
        self.post = []
        self.s.created = []

    def forget_created(self):
        """The tables this session's transaction created leave the model when
        it rolls back (they never existed)."""
        for t in self.s.created:
            if t in self.tables:
                self.tables.remove(t)
        self.s.created = []

    def rollback(self):
        self.x("ROLLBACK")
        self.forget_tx()

    def forget_tx(self):
        """The model as before the transaction that failed or rolled back:
        tables are added to it as they are created (the transaction's later
        statements use them), so those it created go again. A source server
        fault right after a CREATE TABLE left a table the model had and the
        database did not."""
        self.post = []
        self.forget_created()

    def step_tx(self, body):
        """Run body() in one transaction; a failure rolls it back (model untouched)."""
        try:
            self.begin()
            body()
            self.commit()
            return True
        except psycopg2.Error as e:
            self.stats["failed_tx"] += 1
            self.note(f"rolled back: {str(e).strip().splitlines()[0]}")
            try:
                self.x("ROLLBACK")
            except psycopg2.Error:
                pass
            self.forget_tx()
            return False
        finally:
            self.resume_worker()

    def pause_worker(self, why):
        """Stop the worker until this transaction and what runs after its
        commit (ANALYZE, VACUUM) are done: its next walsender decodes the
        transaction only then, as a worker that lags does (a key's index
        dropped, then relhasindex cleared in place: pgoutput marks no key)."""
        w = self.worker
        if (w is None or self.args.calm or w.proc is None or self.paused or self.sp_stack
                or self.s is not self.main):
            return
        w.stop(signal.SIGTERM)
        self.paused = True
        self.event(f"worker SIGTERM (paused: {why})")

    def resume_worker(self):
        if self.paused:
            self.paused = False
            self.worker.start()
            self.event("worker restarted")

    def after_key_drop(self, t):
        """ANALYZE (sometimes VACUUM) of t right after the commit: with no
        index left, both clear pg_class.relhasindex in place."""
        how = "VACUUM" if self.r.random() < 0.3 else "ANALYZE"

        def fn():
            if not t.dropped:
                self.x(f"{how} {t.q}")
        self.on_commit(fn)

    def event(self, what):
        """A worker event, listed with the divergences after it."""
        self.events.append((len(self.points), what))
        self.sqllog.write(f"-- {what}\n")

    def log_op(self, t, what):
        self.on_commit(lambda: self.oplog[id(t)].append((len(self.points), what)))

    def note(self, msg):
        if self.args.verbose:
            print("  " + msg, flush=True)

    # -- tables
    def live(self, pred=lambda t: True):
        return [t for t in self.tables if not t.dropped and pred(t)]

    def new_name(self, base):
        self.ntab += 1
        return f"{base}_{self.ntab}"

    def new_col_name(self):
        self.ncol += 1
        return f"c{self.ncol}"

    def create(self, t, ddl_cols, extra="", after_setup=None):
        kw = "UNLOGGED TABLE" if t.unlogged else "TABLE"
        self.x(f"CREATE {kw} {t.q} ({', '.join(ddl_cols)}){extra}")
        if self.setup_done:
            t.tags.add("created_after_setup")
        return self.add_table(t)

    def create_plain(self, t, full):
        """t with its columns (col_defs) and nothing else; under REPLICA IDENTITY FULL when full."""
        self.create(t, self.col_defs(t))
        if full:
            self.replident_full(t)
        return t

    def replident_full(self, t):
        self.x(f"ALTER TABLE {t.q} REPLICA IDENTITY FULL")
        t.replident = "f"

    def add_table(self, t):
        """t joins the model now (a rollback takes it out: forget_created)."""
        if self.userpub and self.setup_done:
            # made outside the publication: its first join is a first baseline (UserPub.expected)
            t.born_out = not self.userpub.published(t.q)
        self.tables.append(t)
        self.s.created.append(t)
        return t

    def col_defs(self, t):
        out = []
        for c in t.cols:
            d = f"{c.name} {c.sqltype}"
            if c.gen_expr:
                d += f" GENERATED ALWAYS AS ({c.gen_expr}) STORED"
            out.append(d)
        if t.pk:
            out.append(f"PRIMARY KEY ({', '.join(t.pk)})")
            t.keycols |= set(t.pk)
        return out

    def make_keyed(self, schema="public", keytype=None, unlogged=False, name=None):
        keytype = keytype or self.r.choice(["int", "text", "composite", "uuid"])
        t = Table(schema, name or self.new_name({"int": "ki", "text": "kt", "composite": "kc", "uuid": "ku"}[keytype]),
                  "keyed_" + keytype)
        t.unlogged = unlogged
        if keytype == "int":
            t.cols = [Col("id", "int4")]
        elif keytype == "text":
            t.cols = [Col("code", "text")]
        elif keytype == "uuid":
            t.cols = [Col("uid", "uuid")]
        else:
            t.cols = [Col("ka", "text"), Col("kb", "int4")]
        t.pk = [c.name for c in t.cols]
        for _ in range(self.r.randint(2, 5)):
            t.cols.append(Col(self.new_col_name(), self.r.choice(COMMON_TYPES)))
        self.create(t, self.col_defs(t))
        return t

    def make_keyless(self, full, schema="public", name=None, third=None):
        t = Table(schema, name or self.new_name("kf" if full else "kl"), "keyless")
        t.cols = [Col("a", "int4"), Col("b", "text"), Col(self.new_col_name(), third or self.r.choice(COMMON_TYPES))]
        return self.create_plain(t, full)

    def make_generated(self, keyed, schema="public"):
        t = Table(schema, self.new_name("gk" if keyed else "gl"), "generated")
        t.cols = [Col("id", "int4"), Col("a", "int4"), Col("b", "text"),
                  Col("g1", "int8", "a::bigint * 2 + 1"), Col("g2", "text", "upper(b) || '!'")]
        t.col("a").referenced = t.col("b").referenced = True
        t.pk = ["id"] if keyed else None
        return self.create_plain(t, not keyed)

    def make_types(self):
        t = Table("public", self.new_name("types"), "types")
        t.cols = [Col("id", "int4")] + [Col(f"t_{k}", k) for k in TYPES if k not in ("varchar", "num101", "bigtext", "bigbytea")]
        t.pk = ["id"]
        self.create(t, self.col_defs(t))
        return t

    def make_toast(self, schema="public", keyless=False):
        """keyless: no key, REPLICA IDENTITY FULL (the old row is the whole row, TOASTed values too)."""
        t = Table(schema, self.new_name("toast"), "toast")
        t.toast = True
        t.cols = [Col("id", "int4"), Col("n", "int4"), Col("big", "bigtext"), Col("bb", "bigbytea"),
                  Col("small", "text")]
        t.pk = None if keyless else ["id"]
        return self.create_plain(t, keyless)

    def make_partitioned(self, schema="public"):
        """p (RANGE id) -> p_a (LIST region) -> p_a_x, p_a_y; p -> p_b (leaf)."""
        base = self.new_name("p")
        root = Table(schema, base, "partitioned")
        root.partitioned = True
        root.cols = [Col("id", "int4"), Col("region", "text"), Col("v", "text"), Col("n", "int4")]
        root.pk = ["id", "region"]
        self.create(root, self.col_defs(root), " PARTITION BY RANGE (id)")
        mid = Table(schema, base + "_a", "partitioned")
        mid.partitioned, mid.parent, mid.cols, mid.pk = True, root, list(root.cols), root.pk
        self.x(f"CREATE TABLE {mid.q} PARTITION OF {root.q} FOR VALUES FROM (0) TO (100000) PARTITION BY LIST (region)")
        self.add_table(mid)
        for reg in ("x", "y"):
            leaf = Table(schema, f"{base}_a_{reg}", "partition")
            leaf.parent, leaf.cols, leaf.pk, leaf.bounds = mid, list(root.cols), root.pk, (0, 100000, [reg])
            self.x(f"CREATE TABLE {leaf.q} PARTITION OF {mid.q} FOR VALUES IN ('{reg}')")
            self.add_table(leaf)
        leaf = Table(schema, base + "_b", "partition")
        leaf.parent, leaf.cols, leaf.pk, leaf.bounds = root, list(root.cols), root.pk, (100000, 200000, ["x", "y"])
        self.x(f"CREATE TABLE {leaf.q} PARTITION OF {root.q} FOR VALUES FROM (100000) TO (200000)")
        self.add_table(leaf)
        root.ranges = {mid.name: (0, 100000), leaf.name: (100000, 200000)}
        return root

    def tree(self, root):
        """root and every table attached under it, at any level."""
        out = [root]
        for t in self.live(lambda t: t.parent is not None):
            p = t.parent
            while p is not None and p is not root:
                p = p.parent
            if p is root:
                out.append(t)
        return out

    def root_of(self, t):
        while t.parent is not None:
            t = t.parent
        return t

    # -- values
    def val(self, c):
        if c.tkey == "bigtext":
            # incompressible: base64 of random bytes, 6-30 kB, stored out of line
            return base64.b64encode(self.r.randbytes(self.r.randint(4500, 22000))).decode()
        if c.tkey == "bigbytea":
            return "\\x" + self.r.randbytes(self.r.randint(2500, 6000)).hex()
        v = maybe_null(self.r, TYPES[c.tkey][1](self.r))
        return TYPES[c.tkey][1](self.r) if v is None and c.notnull else v

    def castof(self, c):
        return {"bigtext": "text", "bigbytea": "bytea"}.get(c.tkey, c.sqltype)

    def key_val(self, t, c, bounds=None):
        self.keyseq += 1
        if bounds is not None:
            lo, hi, _ = bounds
            return str(lo + (self.keyseq * 7919) % (hi - lo))
        if c.tkey == "int4":
            return str(self.keyseq * 7919 % 1000003)
        if c.tkey == "uuid":
            return g_uuid(self.r)
        suffix = self.r.choice(["", " ", ",", '"', "é", "\\", "'", "{x}"])
        return f"k{self.keyseq}{suffix}"

    def row_vals(self, t, bounds=None):
        vals = {}
        for c in t.writable_cols():
            if bounds is not None and c.name == "id":
                vals[c.name] = self.key_val(t, c, bounds)
            elif bounds is not None and c.name == "region":
                vals[c.name] = self.r.choice(bounds[2])
            elif c.name in t.keycols:
                # a key column, or one that was (NOT NULL stays after DROP PRIMARY KEY)
                vals[c.name] = self.key_val(t, c)
            elif t.kind == "keyless" and c.name == "a":
                vals[c.name] = str(self.r.randint(0, 5))   # duplicates on purpose
            elif t.kind == "keyless" and c.name == "b":
                vals[c.name] = self.r.choice(["same", "other", None, ""])
            elif t.kind == "generated" and c.name == "a":
                vals[c.name] = maybe_null(self.r, str(self.r.randint(-1000, 1000)))
            elif c.fk is not None:
                vals[c.name] = self.fk_val(c)
            else:
                vals[c.name] = self.val(c)
        return vals

    def insert(self, t, n=None):
        n = n or self.r.randint(1, 4)
        bounds = self.part_bounds(t)
        if bounds is False:
            return
        cols = t.writable_cols()
        allrows = []
        for _ in range(n):
            v = self.row_vals(t, bounds)
            allrows.append([v[c.name] for c in cols])
        ph = "(" + ", ".join(f"%s::{self.castof(c)}" for c in cols) + ")"
        sql = f"INSERT INTO {t.q} ({', '.join(c.name for c in cols)}) VALUES " + ", ".join([ph] * n)
        self.x(sql, [v for row in allrows for v in row])
        self.mark_written(t)
        self.stats["insert"] += 1

    def attached_on_commit(self, root, t, lo, hi):
        """Once the ATTACH's transaction commits, t is root's range partition [lo, hi)."""
        def fn():
            t.parent = root
            root.ranges[t.name] = (lo, hi)
            t.tags.add("attached")
            root.tags.add("attach")
        self.on_commit(fn)

    def mark_written(self, t, tag=None):
        def fn(ts=self.tree(self.root_of(t)) if (t.partitioned or t.parent) else [t]):
            for x in ts:
                x.written = True
                x.ddl_unwritten = False
                if tag:
                    x.tags.add(tag)
                if self.lost_window:
                    x.tags.add("changed_while_slot_lost")
        self.on_commit(fn)

    def copy_in(self, t, n):
        bounds = self.part_bounds(t)
        if bounds is False:
            return
        cols = t.writable_cols()
        buf = io.StringIO()
        for _ in range(n):
            v = self.row_vals(t, bounds)
            buf.write("\t".join(copy_escape(v[c.name]) for c in cols) + "\n")
        buf.seek(0)
        self.sqllog.write(f"-- COPY {t.q} FROM STDIN: {n} rows\n")
        self.cur.copy_expert(f"COPY {t.q} ({', '.join(c.name for c in cols)}) FROM STDIN", buf)
        self.mark_written(t, "copy")
        self.log_op(t, f"copy {n} rows")
        self.stats["copy"] += 1

    # Partitions: rows go through the table named, within the bounds of one
    # leaf under it (or its own, for a leaf, attached or detached).
    def part_bounds(self, t):
        """None (not a partition), False (no leaf attached) or (lo, hi, regions)."""
        if t.bounds is not None:
            return t.bounds
        if not t.partitioned:
            return None
        leaves = [x for x in self.tree(t) if x.bounds is not None]
        return self.r.choice(leaves).bounds if leaves else False

    def ident(self, t):
        """The columns rows are updated and deleted by: the replica identity
        index's under USING INDEX, else the primary key's (None: by ctid under
        FULL, or none at all)."""
        if t.replident == "i":
            return t.ri_cols if t.ri_index else None
        if t.replident == "n":
            return None   # REPLICA IDENTITY NOTHING: PostgreSQL refuses UPDATE and DELETE
        return t.pk

    def keys(self, t, limit=None):
        cols = self.ident(t)
        rows = self.rows(f"SELECT {', '.join(c + '::text' for c in cols)} FROM {t.q} ORDER BY 1" +
                         ("" if len(cols) == 1 else ", 2"))
        return rows

    def key_where(self, t, key):
        return " AND ".join(f"{c} = %s::{t.col(c).sqltype}" for c in self.ident(t)), list(key)

    def update(self, t):
        if self.ident(t):
            keys = self.keys(t)
            if not keys:
                return self.insert(t)
            nonkey = [c for c in t.writable_cols() if c.name not in self.ident(t) and c.name not in (t.pk or [])]
            for key in self.r.sample(keys, min(len(keys), self.r.randint(1, 3))):
                w, wp = self.key_where(t, key)
                if (self.r.random() < 0.12 and t.pk and not (t.partitioned or t.parent) and self.ident(t) == t.pk
                        and all(t.col(c).tkey in ("int4", "text", "uuid") for c in t.pk)):
                    c = t.col(t.pk[-1])
                    self.x(f"UPDATE {t.q} SET {c.name} = %s::{c.sqltype} WHERE {w}", [self.key_val(t, c)] + wp)
                    self.mark_written(t, "key_update")
                    continue
                if t.partitioned and self.r.random() < 0.2 and "region" in t.pk:
                    # moves a row of p_a between its list partitions (a delete and an insert)
                    # or changes the region within another leaf
                    self.x(f"UPDATE {t.q} SET region = CASE region WHEN 'x' THEN 'y' ELSE 'x' END WHERE {w}", wp)
                    self.mark_written(t, "partition_move")
                    continue
                if not nonkey:
                    continue
                cs = self.r.sample(nonkey, min(len(nonkey), self.r.randint(1, 2)))
                sets = ", ".join(f"{c.name} = %s::{self.castof(c)}" for c in cs)
                self.x(f"UPDATE {t.q} SET {sets} WHERE {w}", [self.upd_val(t, c) for c in cs] + wp)
                self.mark_written(t)
        elif t.replident == "f":
            ctids = [r[0] for r in self.rows(f"SELECT ctid::text FROM {t.q}")]
            if not ctids:
                return self.insert(t)
            cs = [c for c in t.writable_cols()]
            c = self.r.choice(cs)
            if self.r.random() < 0.3 and "a" in [x.name for x in cs]:
                # every one of several equal rows
                self.x(f"UPDATE {t.q} SET {c.name} = %s::{self.castof(c)} WHERE a = %s::integer",
                       [self.upd_val(t, c) if c.name != "a" else str(self.r.randint(0, 5)), str(self.r.randint(0, 5))])
            else:
                self.x(f"UPDATE {t.q} SET {c.name} = %s::{self.castof(c)} WHERE ctid = %s::tid",
                       [self.upd_val(t, c) if c.name != "a" else str(self.r.randint(0, 5)), self.r.choice(ctids)])
            self.mark_written(t)
        else:
            return self.insert(t)
        self.stats["update"] += 1

    def delete(self, t):
        if self.ident(t):
            keys = self.keys(t)
            if not keys:
                return
            for key in self.r.sample(keys, min(len(keys), self.r.randint(1, 2))):
                w, wp = self.key_where(t, key)
                self.x(f"DELETE FROM {t.q} WHERE {w}", wp)
        elif t.replident == "f":
            ctids = [r[0] for r in self.rows(f"SELECT ctid::text FROM {t.q}")]
            if not ctids:
                return
            # exactly one of possibly equal rows
            self.x(f"DELETE FROM {t.q} WHERE ctid = %s::tid", [self.r.choice(ctids)])
        else:
            return
        self.mark_written(t)
        self.stats["delete"] += 1

    def upd_val(self, t, c):
        """A new value of c for an UPDATE."""
        if t.kind == "generated" and c.name == "a":
            return str(self.r.randint(0, 99))
        return self.fk_val(c) if c.fk is not None else self.val(c)

    def fk_val(self, c):
        """A key of the table c references (read in this session), or NULL."""
        ids = [x[0] for x in self.rows(f"SELECT id::text FROM {c.fk.q} ORDER BY id")]
        return self.r.choice(ids) if ids and self.r.random() < 0.85 else None

    def dml(self, t):
        op = self.r.choices(["insert", "update", "delete"], [4, 4, 1.5])[0]
        getattr(self, op)(t)

    # -- DDL
    def ddl(self, t):
        ops = ["add_column", "add_column_default", "drop_column", "rename_column", "retype", "rename_table",
               "truncate", "pk", "replident", "retype_lossy", "drop_table"]
        w = [3, 1.5, 3, 3, 2, 2, 1.5, 2, 1, 0.7, 0.4]
        op = self.r.choices(ops, w)[0]
        r = self.r
        if op == "add_column":
            c = Col(self.new_col_name(), r.choice(COMMON_TYPES))
            self.x(f"ALTER TABLE {t.q} ADD COLUMN {c.name} {c.sqltype}")
            self.on_commit(lambda: t.cols.append(c))
        elif op == "add_column_default":
            c = Col(self.new_col_name(), r.choice(["int4", "text", "bool"]))
            dflt = {"int4": "42", "text": "'dflt'", "bool": "true"}[c.tkey]
            self.x(f"ALTER TABLE {t.q} ADD COLUMN {c.name} {c.sqltype} DEFAULT {dflt}")
            self.on_commit(lambda: t.cols.append(c))
        elif op == "drop_column":
            cs = [c for c in t.cols if not (t.pk and c.name in t.pk) and not c.gen_expr and not c.referenced
                  and c.name not in ("a", "b")]
            if len(cs) < 1 or len(t.cols) < 3:
                return
            c = r.choice(cs)
            self.x(f"ALTER TABLE {t.q} DROP COLUMN {c.name}")
            self.on_commit(lambda: t.cols.remove(c))
            if c.name in t.ri_cols:
                # the replica identity index goes with its column (an ALTER TABLE)
                self.on_commit(lambda: (setattr(t, "ri_index", None), setattr(t, "ri_cols", [])))
        elif op == "rename_column":
            cs = [c for c in t.cols if not c.referenced and c.name not in ("a", "b", "id", "region")]
            if not cs:
                return
            c = r.choice(cs)
            new = self.new_col_name()
            self.x(f"ALTER TABLE {t.q} RENAME COLUMN {c.name} TO {new}")

            def fn(c=c, old=c.name, new=new):
                c.name = new
                if old in t.keycols:
                    t.keycols = (t.keycols - {old}) | {new}
                if t.pk and old in t.pk:
                    t.pk = [new if k == old else k for k in t.pk]
                t.ri_cols = [new if k == old else k for k in t.ri_cols]
            self.on_commit(fn)
        elif op in ("retype", "retype_lossy"):
            m = SAFE_RETYPE if op == "retype" else LOSSY_RETYPE
            cs = [c for c in t.cols if c.tkey in m and not c.gen_expr and not c.referenced
                  and not (t.pk and c.name in t.pk) and c.name not in t.ri_cols]
            if not cs:
                return
            c = r.choice(cs)
            newk = m[c.tkey]
            self.x(f"ALTER TABLE {t.q} ALTER COLUMN {c.name} TYPE {TYPES[newk][0]}")
            self.on_commit(lambda: setattr(c, "tkey", newk))
        elif op == "rename_table":
            new = self.new_name(t.name.split("_")[0] + "r")
            self.x(f"ALTER TABLE {t.q} RENAME TO {new}")
            self.on_commit(lambda: setattr(t, "name", new))
        elif op == "truncate":
            self.x(f"TRUNCATE {t.q}")
        elif op == "pk":
            if t.pk:
                self.op_drop_pk(t, tag=False)
                op = "drop_pk"
            else:
                cand = "id" if any(c.name == "id" for c in t.cols) else None
                if cand is None:
                    return
                dup = self.rows(f"SELECT count(*) - count(DISTINCT id) + count(*) FILTER (WHERE id IS NULL) FROM {t.q}")[0][0]
                if dup:
                    return
                self.x(f"ALTER TABLE {t.q} ADD PRIMARY KEY (id)")
                op = "add_pk"
                self.on_commit(lambda: (setattr(t, "pk", ["id"]), t.keycols.add("id")))
        elif op == "replident":
            # from USING INDEX back to DEFAULT (the index stays, an identity no more)
            new = "f" if t.replident == "d" else "d"
            self.x(f"ALTER TABLE {t.q} REPLICA IDENTITY {'FULL' if new == 'f' else 'DEFAULT'}")
            op = "replident_" + new
            self.on_commit(lambda: setattr(t, "replident", new))
        elif op == "drop_table":
            if len(self.live(lambda x: x.kind.startswith("keyed"))) < 4:
                return
            self.x(f"DROP TABLE {t.q}")
            self.on_commit(lambda: setattr(t, "dropped", True))
        tag = op
        self.on_commit(lambda: t.tags.add(tag))
        self.log_op(t, op + (f" {c.name}" if op in ("add_column", "add_column_default", "drop_column", "retype",
                                                     "retype_lossy") else ""))
        if op in COLUMN_DDL:
            self.on_commit(lambda: setattr(t, "ddl_starts", self.worker.starts if self.worker else 0))
        if op in COLUMN_DDL or op == "rename_table":
            self.on_commit(lambda: setattr(t, "ddl_unwritten", True))
        if op in ("truncate", "drop_table"):
            self.mark_written(t)
        self.stats["ddl:" + op] += 1

    def op_drop_pk(self, t, tag=True):
        """DROP CONSTRAINT of t's primary key, after updates and deletes by it
        in the same transaction, then ANALYZE or VACUUM; the worker decodes it
        all only after that (pause_worker)."""
        cname = self.rows("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
                          (t.q,))[0][0]
        self.pause_worker(f"drop_pk {t.q}")
        for _ in range(self.r.randint(1, 2)):
            self.update(t) if self.r.random() < 0.7 else self.delete(t)
        self.x(f"ALTER TABLE {t.q} DROP CONSTRAINT {cname}")
        self.on_commit(lambda: setattr(t, "pk", None))
        self.after_key_drop(t)
        if tag:
            self.col_ddl_done(t, "drop_pk", "drop_pk")
        return True

    def ri_candidate(self, t):
        """A table with no replica identity index and former key columns that
        still hold unique non-NULL values (a primary key dropped, or made so)."""
        return (self.ddl_target(t) and not t.busy and not t.ri_index and t.replident in ("d", "f")
                and [c.name for c in t.cols if c.name in t.keycols] and not t.toast)

    def op_replident_index(self, t):
        """REPLICA IDENTITY USING INDEX of a unique index on t's former key columns."""
        cols = [c.name for c in t.cols if c.name in t.keycols]
        dup = self.rows(f"SELECT count(*) - count(DISTINCT ({', '.join(cols)})) FROM {t.q}")[0][0]
        if dup:
            return False
        idx = self.new_name("ri")
        for c in cols:
            self.x(f"ALTER TABLE {t.q} ALTER COLUMN {c} SET NOT NULL")
        self.x(f"CREATE UNIQUE INDEX {idx} ON {t.q} ({', '.join(cols)})")
        self.x(f"ALTER TABLE {t.q} REPLICA IDENTITY USING INDEX {idx}")
        self.on_commit(lambda: (setattr(t, "replident", "i"), setattr(t, "ri_index", idx),
                                setattr(t, "ri_cols", cols)))
        self.col_ddl_done(t, "replident_i", f"replident_i {idx}")
        return True

    def op_drop_ri_index(self, t):
        """DROP INDEX of t's replica identity index (no ALTER TABLE: its
        capture is the sql_drop one), after changes by it in the same
        transaction, then ANALYZE or VACUUM; decoded only after that."""
        self.pause_worker(f"drop_ri_index {t.q}")
        for _ in range(self.r.randint(1, 2)):
            self.update(t) if self.r.random() < 0.7 else self.delete(t)
        self.x(f"DROP INDEX {t.schema}.{t.ri_index}")
        self.on_commit(lambda: (setattr(t, "ri_index", None), setattr(t, "ri_cols", [])))
        self.after_key_drop(t)
        self.col_ddl_done(t, "drop_ri_index", "drop_ri_index")
        return True

    def make_ri(self):
        """A table for USING INDEX: a former key column, unique values, no key."""
        t = Table("public", self.new_name("ri"), "keyed_int")
        t.cols = [Col("id", "int4")] + [Col(self.new_col_name(), self.r.choice(COMMON_TYPES)) for _ in range(2)]
        t.keycols = {"id"}
        self.create(t, self.col_defs(t))
        return t

    def model_detach(self, root, leaf):
        leaf.parent = None
        leaf.detached_from = root
        leaf.tags.add("detached")
        root.tags.add("detach")
        root.ranges.pop(leaf.name, None)

    def partition_op(self, root):
        """DETACH a leaf, or ATTACH a new one (or a detached one) with rows."""
        r = self.r
        attached = [t for t in self.tree(root) if t.parent is root and not t.partitioned]
        detached = self.live(lambda t: t.detached_from is root and t.parent is None and not t.busy)
        if attached and r.random() < 0.5:
            leaf = r.choice(attached)
            self.x(f"ALTER TABLE {root.q} DETACH PARTITION {leaf.q}")
            self.on_commit(lambda: self.model_detach(root, leaf))
            self.log_op(root, f"detach {leaf.q}")
            self.log_op(leaf, f"detached from {root.q}")
            self.stats["detach"] += 1
            return
        if detached and r.random() < 0.6:
            leaf = r.choice(detached)
            lo, hi, _ = leaf.bounds
            for c in root.cols:   # ATTACH needs every column the root has now (ADD COLUMN while detached)
                if not any(x.name == c.name for x in leaf.cols):
                    self.x(f"ALTER TABLE {leaf.q} ADD COLUMN {c.name} {c.sqltype}")
                    self.on_commit(lambda c=c: leaf.cols.append(Col(c.name, c.tkey)))
        else:
            n = 1 + max(hi for lo, hi in root.ranges.values()) // 100000 if root.ranges else 3
            lo, hi = 100000 * n, 100000 * (n + 1)
            # new leaves of a root in --user-publication's schema up stay there (published through it)
            leaf = Table(root.schema if root.schema == "up" else "public", self.new_name(root.name + "c"), "partition")
            leaf.cols = [Col(c.name, c.tkey) for c in root.cols]
            leaf.pk = list(root.pk)
            leaf.bounds = (lo, hi, ["x", "y"])
            if r.random() < 0.5:
                # its own column order and a dropped column: attribute numbers unlike the root's
                r.shuffle(leaf.cols)
                self.create(leaf, ["junk integer"] + self.col_defs(leaf))
                self.x(f"ALTER TABLE {leaf.q} DROP COLUMN junk")
                leaf.tags.add("odd_attnums")
            else:
                self.create(leaf, self.col_defs(leaf))
            self.insert(leaf, r.randint(1, 5))
        self.x(f"ALTER TABLE {root.q} ATTACH PARTITION {leaf.q} FOR VALUES FROM ({lo}) TO ({hi})")

        self.attached_on_commit(root, leaf, lo, hi)
        self.log_op(root, f"attach {leaf.q}")
        self.log_op(leaf, f"attached to {root.q}")
        self.mark_written(root)
        self.stats["attach"] += 1

    # -- rewrites and types (the DDL capture's rows: docs/difftest.md)
    # Each returns True when it did something (a forced op is retried until then).
    def make_udt(self, kind):
        """A type of its own (domain, enum, composite for columns, composite
        for a typed table), registered in TYPES under its name."""
        self.nudt += 1
        name = {"domain": "dom", "enum": "en", "comp": "cp", "tcomp": "tcp"}[kind] + str(self.nudt)
        u = {"kind": kind, "name": name}
        if kind == "domain":
            self.x(f"CREATE DOMAIN {name} AS integer CHECK (VALUE > 0)")
            TYPES[name] = (name, g_posint)
        elif kind == "enum":
            u["labels"] = ["lo", "mid", "hi w"]
            self.x(f"CREATE TYPE {name} AS ENUM ('lo', 'mid', 'hi w')")
            TYPES[name] = (name, lambda r, u=u: r.choice(u["labels"]))
        else:
            u["attrs"] = [("x", "int4"), ("y", "text"), ("z", "int4")]
            self.x(f"CREATE TYPE {name} AS (x integer, y text, z integer)")
            TYPES[name] = (name, lambda r, u=u: comp_literal(r, u["attrs"]))
        self.on_commit(lambda: self.udts.__setitem__(name, u))
        return u

    def make_typed(self):
        u = self.make_udt("tcomp")
        t = Table("public", self.new_name("ty"), "typed")
        t.typed_of = u["name"]
        t.cols = [Col("x", "int4"), Col("y", "text"), Col("z", "int4")]
        t.pk = ["x"]
        t.keycols = {"x"}
        self.x(f"CREATE TABLE {t.q} OF {u['name']} (PRIMARY KEY (x))")
        if self.setup_done:
            t.tags.add("created_after_setup")
        return self.add_table(t)

    def make_inherit(self):
        """p (id, v, n) <- c (+ extra) <- gc (+ g); each keyed on id."""
        base = self.new_name("ih")
        p = Table("public", base, "inherit")
        p.cols = [Col("id", "int4"), Col("v", "text"), Col("n", "int4")]
        p.pk = ["id"]
        self.create(p, self.col_defs(p))
        prev = p
        for suffix, own in (("c", "extra"), ("gc", "g")):
            t = Table("public", f"{base}_{suffix}", "inherit")
            t.cols = [Col(c.name, c.tkey) for c in prev.cols] + [Col(own, "text")]
            t.pk = ["id"]
            t.keycols = {"id"}
            self.create(t, [f"{own} text", "PRIMARY KEY (id)"], f" INHERITS ({prev.q})")
            t.inh_parent = prev
            prev.inh_kids.append(t)
            prev = t
        return p

    def family(self, t):
        """An INHERITS tree's tables, attached or not (locked together)."""
        if t.fk_group:
            return t.fk_group   # REFERENCES: a parent and its children, locked together
        if t.kind != "inherit":
            return []
        base = t.name.split("_")[0]
        return self.live(lambda x: x.kind == "inherit" and x.name.split("_")[0] == base)

    def ddl_target(self, t):
        """A table the generic DDL may alter (its columns are its own)."""
        return not (t.partitioned or t.parent is not None or t.frozen or t.detached_from or t.typed_of
                    or t.inh_parent is not None or t.inh_kids or t.kind == "inherit")

    def descendants(self, t):
        """The tables an ALTER of t reaches: its partitions (any depth) or the
        tables inheriting from it now."""
        if t.partitioned:
            return [x for x in self.tree(t) if x is not t]
        out = []
        for k in t.inh_kids:
            out.append(k)
            out.extend(self.descendants(k))
        return out

    def col_ddl_done(self, t, tag, what):
        """Model bookkeeping shared by the column DDL below."""
        ts = [t] + self.descendants(t)

        def fn():
            for x in ts:
                x.tags.add(tag)
                x.ddl_starts = self.worker.starts if self.worker else 0
                x.ddl_unwritten = True
        self.on_commit(fn)
        for x in ts:
            self.log_op(x, what)
        self.stats["ddl:" + tag] += 1
        return True

    def add_col_everywhere(self, t, name, tkey, auto=False):
        """ADD COLUMN reaches every table inheriting from t."""
        def fn():
            for x in [t] + self.descendants(t):
                c = Col(name, tkey)
                c.auto = auto
                x.cols.append(c)
        self.on_commit(fn)

    def op_add_volatile(self, t):
        name = self.new_col_name()
        tkey, dflt = self.r.choice([("float8", "random()"), ("tstz", "clock_timestamp()"),
                                    ("int8", "nextval('dt_seq')"), ("uuid", "gen_random_uuid()"),
                                    ("int4", "(random() * 1000)::int")])
        self.x(f"ALTER TABLE {t.q} ADD COLUMN {name} {TYPES[tkey][0]} DEFAULT {dflt}")
        self.add_col_everywhere(t, name, tkey)
        return self.col_ddl_done(t, "add_volatile", f"add_volatile {name} {dflt}")

    def op_add_identity(self, t):
        name = self.new_col_name()
        tkey, spec = self.r.choice([("int4", "integer GENERATED ALWAYS AS IDENTITY"),
                                    ("int8", "bigint GENERATED BY DEFAULT AS IDENTITY (START 1000)"),
                                    ("int4", "serial"), ("int8", "bigserial")])
        self.x(f"ALTER TABLE {t.q} ADD COLUMN {name} {spec}")
        self.add_col_everywhere(t, name, tkey, auto=True)
        return self.col_ddl_done(t, "add_identity", f"add_identity {name} {spec}")

    # USING expressions: tkey -> [(new tkey, expression of {c})]; the same type
    # too (the shape does not change, the values do)
    USING = {"int4": [("int4", "{c} / 2 + 1"), ("text", "'u' || {c}"), ("int8", "{c}::bigint * 3")],
             "int8": [("int8", "{c} / 3"), ("numeric", "{c} + 0.5")],
             "int2": [("int4", "{c} * 2")],
             "text": [("text", "upper({c}) || '!'"), ("text", "reverse({c})")],
             "varchar20": [("text", "{c} || '?'")],
             "numeric": [("numeric", "{c} * 2")],
             "num123": [("num123", "{c} / 2")],
             "bool": [("bool", "NOT {c}")],
             "float8": [("float8", "{c} / 2")],
             "jsonb": [("jsonb", "jsonb_build_array({c})")],
             "date": [("date", "{c} + 1")],
             "tstz": [("tstz", "{c} + interval '1 day'")]}

    def op_retype_using(self, t, same=False):
        cs = [c for c in t.cols if c.tkey in self.USING and not c.gen_expr and not c.referenced and not c.auto
              and c.name not in ("a", "b", "region")
              and not (t.pk and c.name in t.pk and (c.tkey != "int4" or t.kind == "inherit" or t.partitioned))]
        if not cs:
            return False
        c = self.r.choice(cs)
        if t.pk and c.name in t.pk:
            newk, expr = "int4", "-{c}"        # a key rewritten: rows begin anew under new keys
        else:
            opts = self.USING[c.tkey]
            if same:
                opts = [o for o in opts if o[0] == c.tkey] or opts
            newk, expr = self.r.choice(opts)
        self.x(f"ALTER TABLE {t.q} ALTER COLUMN {c.name} TYPE {TYPES[newk][0]} USING {expr.format(c=c.name)}")

        def fn(name=c.name):
            for x in [t] + self.descendants(t):
                for cc in x.cols:
                    if cc.name == name:
                        cc.tkey = newk
        self.on_commit(fn)
        return self.col_ddl_done(t, "retype_using", f"retype_using {c.name} {TYPES[newk][0]} USING {expr}")

    def op_combo(self, t):
        """Several of the above in one ALTER TABLE: a volatile default, an
        identity (not through a parent) and a USING retype."""
        parts, adds = [], []
        a = self.new_col_name()
        parts.append(f"ADD COLUMN {a} double precision DEFAULT random()")
        adds.append((a, "float8", False))
        if not (t.partitioned or t.inh_kids):
            b = self.new_col_name()
            parts.append(f"ADD COLUMN {b} bigint GENERATED BY DEFAULT AS IDENTITY")
            adds.append((b, "int8", True))
        cs = [c for c in t.cols if c.tkey in self.USING and not c.gen_expr and not c.referenced and not c.auto
              and c.name not in ("a", "b", "region") and not (t.pk and c.name in t.pk)]
        retyped = None
        if cs:
            c = self.r.choice(cs)
            newk, expr = self.r.choice(self.USING[c.tkey])
            parts.append(f"ALTER COLUMN {c.name} TYPE {TYPES[newk][0]} USING {expr.format(c=c.name)}")
            retyped = (c.name, newk)
        self.x(f"ALTER TABLE {t.q} " + ", ".join(parts))
        for name, tkey, auto in adds:
            self.add_col_everywhere(t, name, tkey, auto)
        if retyped:
            def fn(name=retyped[0], newk=retyped[1]):
                for x in [t] + self.descendants(t):
                    for cc in x.cols:
                        if cc.name == name:
                            cc.tkey = newk
            self.on_commit(fn)
        return self.col_ddl_done(t, "combo", "combo " + "; ".join(parts))

    def op_drop_expression(self, t):
        c = self.pick([c for c in t.cols if c.gen_expr])
        if c is None:
            return False
        self.x(f"ALTER TABLE {t.q} ALTER COLUMN {c.name} DROP EXPRESSION")
        self.on_commit(lambda: setattr(c, "gen_expr", None))
        return self.col_ddl_done(t, "drop_expression", f"drop_expression {c.name}")

    def udt_users(self, name):
        return [t for t in self.live() if any(c.tkey == name for c in t.cols)]

    def udt_free(self, u):
        return not any(t.busy for t in self.udt_users(u["name"]))

    def op_udt_col(self, t, kind=None):
        """A column of a domain, an enum or a composite type of its own."""
        kinds = [kind] if kind else ["domain", "enum", "comp"]
        have = [u for u in self.udts.values() if u["kind"] in kinds]
        if have and self.r.random() < 0.5 and not kind:
            u = self.r.choice(have)
        else:
            u = self.make_udt(self.r.choice(kinds))
        name = self.new_col_name()
        self.x(f"ALTER TABLE {t.q} ADD COLUMN {name} {u['name']}")
        self.add_col_everywhere(t, name, u["name"])
        return self.col_ddl_done(t, "udt_col", f"udt_col {name} {u['name']}")

    def op_drop_udt(self, kind):
        """DROP DOMAIN / DROP TYPE ... CASCADE: drops the columns of that type
        in every table (no ALTER TABLE names them)."""
        us = [u for u in self.udts.values() if u["kind"] in kind and self.udt_free(u)]
        if kind == ("domain",):
            us = [u for u in us if self.udt_users(u["name"])] or us
        if not us:
            return False
        u = self.r.choice(us)
        users = self.udt_users(u["name"])
        self.x(f"DROP {'DOMAIN' if u['kind'] == 'domain' else 'TYPE'} {u['name']} CASCADE")
        tag = "drop_domain" if u["kind"] == "domain" else "drop_type"

        def fn():
            for t in users:
                t.cols = [c for c in t.cols if c.tkey != u["name"]]
            del self.udts[u["name"]]
        self.on_commit(fn)
        for t in users:
            self.col_ddl_done(t, tag, f"{tag} {u['name']} cascade")
        self.stats["ddl:" + tag] += 0 if users else 1
        return True

    def op_enum_rename(self):
        us = [u for u in self.udts.values() if u["kind"] == "enum" and self.udt_free(u)]
        u = self.pick([u for u in us if self.udt_users(u["name"])] or us)
        if u is None:
            return False
        i = self.r.randrange(len(u["labels"]))
        old = u["labels"][i]
        self.nudt += 1
        new = f"r{self.nudt} {old[:20]}"
        self.x(f"ALTER TYPE {u['name']} RENAME VALUE %s TO %s", (old, new))
        self.on_commit(lambda: u["labels"].__setitem__(i, new))
        for t in self.udt_users(u["name"]):
            self.col_ddl_done(t, "enum_rename", f"enum_rename {u['name']} {old} -> {new}")
        self.stats["ddl:enum_rename"] += 1
        return True

    def typed_tables(self, u):
        return [t for t in self.live() if t.typed_of == u["name"]]

    def op_comp_attr(self, what):
        """ALTER TYPE composite DROP / ADD ATTRIBUTE (columns of the type lose or
        gain a field) or ALTER ATTRIBUTE TYPE (typed tables only: PostgreSQL
        refuses it while a column uses the type), CASCADE to typed tables."""
        kinds = ("tcomp",) if what == "alter" else ("comp", "tcomp")
        us = [u for u in self.udts.values() if u["kind"] in kinds and self.udt_free(u)
              and not any(t.busy for t in self.typed_tables(u))]
        if what == "drop":
            us = [u for u in us if len(u["attrs"]) > 1]
        u = self.pick([u for u in us if self.udt_users(u["name"]) or self.typed_tables(u)] or us)
        if u is None:
            return False
        typed = self.typed_tables(u)
        users = self.udt_users(u["name"]) + typed
        if what == "drop":
            i = self.r.randrange(1, len(u["attrs"]))
            a = u["attrs"][i][0]
            self.x(f"ALTER TYPE {u['name']} DROP ATTRIBUTE {a} CASCADE")

            def fn():
                del u["attrs"][i]
                for t in typed:
                    t.cols = [c for c in t.cols if c.name != a]
            tag = "comp_drop_attr"
        elif what == "add":
            self.nudt += 1
            a = f"w{self.nudt}"
            self.x(f"ALTER TYPE {u['name']} ADD ATTRIBUTE {a} integer CASCADE")

            def fn():
                u["attrs"].append((a, "int4"))
                for t in typed:
                    t.cols.append(Col(a, "int4"))
            tag = "comp_add_attr"
        else:
            cands = [(i, at) for i, at in enumerate(u["attrs"]) if i > 0 and at[1] in ("int4", "int8", "text")]
            if not cands:
                return False
            i, (a, k) = self.r.choice(cands)
            newk = {"int4": "int8", "int8": "numeric", "text": "varchar"}[k]
            self.x(f"ALTER TYPE {u['name']} ALTER ATTRIBUTE {a} TYPE {TYPES[newk][0]} CASCADE")

            def fn():
                u["attrs"][i] = (a, newk)
                for t in typed:
                    t.col(a).tkey = newk
            tag = "comp_alter_attr"
        self.on_commit(fn)
        for t in users:
            self.col_ddl_done(t, tag, f"{tag} {u['name']}.{a}")
        self.stats["ddl:" + tag] += 0 if users else 1
        return True

    def op_inherit(self, what):
        """NO INHERIT / INHERIT again a child, or ADD COLUMN to a parent (it
        reaches the tables inheriting from it now, not those detached)."""
        fam = self.live(lambda t: t.kind == "inherit" and not t.busy)
        if what == "add_col":
            t = self.pick([t for t in fam if t.inh_kids and not any(k.busy for k in self.descendants(t))])
            if t is None:
                return False
            name = self.new_col_name()
            tkey = self.r.choice(["int4", "text", "jsonb"])
            dflt = self.r.choice(["", "", " DEFAULT 7" if tkey == "int4" else ""])
            self.x(f"ALTER TABLE {t.q} ADD COLUMN {name} {TYPES[tkey][0]}{dflt}")
            self.add_col_everywhere(t, name, tkey)
            return self.col_ddl_done(t, "inherit_add_col", f"inherit_add_col {name}")
        k = self.pick([t for t in fam if t.inh_parent is not None or t.inh_was is not None])
        if k is None:
            return False
        if k.inh_parent is not None:
            p = k.inh_parent
            if p.busy:
                return False
            self.x(f"ALTER TABLE {k.q} NO INHERIT {p.q}")
            tag = "no_inherit"
        else:
            p = k.inh_was
            if p.dropped or p.busy:
                return False
            for c in p.cols:       # INHERIT needs every column of the parent
                if not any(cc.name == c.name for cc in k.cols):
                    self.x(f"ALTER TABLE {k.q} ADD COLUMN {c.name} {c.sqltype}")
                    k_c = Col(c.name, c.tkey)
                    self.on_commit(lambda k_c=k_c: k.cols.append(k_c))
            self.x(f"ALTER TABLE {k.q} INHERIT {p.q}")
            tag = "inherit"

        def fn():  # at commit: the family as the statement left it
            if tag == "inherit":
                p.inh_kids.append(k)
                k.inh_parent, k.inh_was = p, None
            else:
                p.inh_kids.remove(k)
                k.inh_parent, k.inh_was = None, p
            k.tags.add(tag)
            p.tags.add(tag)
        what = f"{tag.replace('_', ' ')} {p.q}"
        self.on_commit(fn)
        self.log_op(k, what)
        self.log_op(p, what + f" ({k.q})")
        self.stats["inherit_toggle"] += 1
        return True

    def rewrite_op(self, op):
        """One of the operations above on a table it fits; False when none fits."""
        r = self.r
        plain = self.live(lambda t: self.ddl_target(t) and not t.busy)
        parents = self.live(lambda t: ((t.kind == "inherit" and t.inh_kids) or (t.partitioned and t.parent is None))
                            and not t.busy and not any(k.busy for k in self.descendants(t)))
        if op == "via_parent":
            # through a partitioned root or an INHERITS parent: the ALTER reaches the tables below
            roots = [t for t in parents if t.partitioned] if r.random() < 0.6 else parents
            if not roots:
                return False
            t = r.choice(roots)
            sub = r.choice(["add_volatile", "retype_using", "udt_col", "combo"])
            return getattr(self, "op_" + sub)(t)
        if op == "combo":
            return self.op_combo(r.choice(plain + parents)) if plain + parents else False
        if op in ("add_volatile", "add_identity", "retype_using", "retype_using_same", "udt_col"):
            pool = plain + parents * (2 if op != "add_identity" else 0)
            if not pool:
                return False
            t = r.choice(pool)
            if op == "retype_using_same":
                return self.op_retype_using(t, same=True)
            return getattr(self, "op_" + op)(t)
        if op == "drop_expression":
            gs = [t for t in plain if any(c.gen_expr for c in t.cols)]
            return self.op_drop_expression(r.choice(gs)) if gs else False
        if op in ("drop_domain", "drop_type"):
            return self.op_drop_udt(("domain",) if op == "drop_domain" else ("enum", "comp"))
        if op == "enum_rename":
            return self.op_enum_rename()
        if op.startswith("comp_"):
            return self.op_comp_attr(op.split("_")[1])
        if op == "inherit_toggle":
            return self.op_inherit("toggle")
        if op == "inherit_add_col":
            return self.op_inherit("add_col")
        if op == "drop_pk":
            ks = [t for t in plain if t.pk]
            return self.op_drop_pk(r.choice(ks)) if ks else False
        if op == "replident_index":
            # no primary key: once the index is dropped the table has none left
            cs = [t for t in plain if self.ri_candidate(t) and not t.pk]
            return self.op_replident_index(r.choice(cs)) if cs else False
        if op == "drop_ri_index":
            cs = [t for t in plain if t.replident == "i" and t.ri_index]
            return self.op_drop_ri_index(r.choice(cs)) if cs else False
        raise ValueError(op)

    def prepare_for(self, op):
        """What a forced operation needs and no longer has (the random ones
        dropped its type, altered its last attribute, ...)."""
        plain = self.live(lambda t: self.ddl_target(t) and not t.busy)
        need = {"drop_domain": "domain", "drop_type": "enum", "enum_rename": "enum", "comp_drop": "comp",
                "comp_add": "comp"}.get(op)
        if need and plain:
            self.op_udt_col(self.r.choice(plain), need)
        elif op in ("drop_pk", "replident_index", "drop_ri_index"):
            t = self.make_keyed(keytype="int") if op == "drop_pk" else self.make_ri()
            self.insert(t, self.r.randint(2, 5))
            if op == "drop_ri_index":
                self.op_replident_index(t)
        elif op in ("comp_alter", "inherit_toggle", "inherit_add_col", "drop_expression"):
            t = self.make_typed() if op == "comp_alter" else (
                self.make_generated(True) if op == "drop_expression" else self.make_inherit())
            for x in [t] + self.descendants(t):
                self.insert(x, self.r.randint(1, 4))


# (a USING INDEX early, its DROP INDEX late: points see the table under it in between)
REWRITE_OPS = ["add_volatile", "replident_index", "add_identity", "retype_using", "retype_using_same", "udt_col",
               "drop_expression", "drop_domain", "drop_type", "enum_rename", "comp_drop", "comp_add", "comp_alter",
               "inherit_toggle", "inherit_add_col", "combo", "via_parent", "drop_pk", "drop_ri_index"]
REWRITE_WEIGHTS = [3, 1, 2, 3, 1.5, 3, 1, 1, 1, 1.5, 1, 0.7, 1, 3, 1.5, 1.5, 2, 0.7, 0.7]


def comp_literal(r, attrs):
    vals = []
    for _, k in attrs:
        if k == "text" or k == "varchar":
            vals.append('"' + r.choice(["a", "b c", "", "q,x"]) + '"')
        else:
            vals.append(r.choice(["", str(r.randint(-50, 50))]))
    return "(" + ",".join(vals) + ")"


# ---------------------------------------------------------------- the run


def run(args):
    global SLOT
    seed = args.seed
    SLOT = f"difftest_{seed}"   # slots are per cluster: one per seed
    r = random.Random(seed)
    db = f"difftest_{seed}"
    base = args.conninfo_base
    admin = psycopg2.connect(base + " dbname=postgres")
    admin.autocommit = True
    ac = admin.cursor()
    ac.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s", (db,))
    ac.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    ac.execute(f'CREATE DATABASE "{db}"')
    # small decoding memory: big transactions spill to disk in the walsender
    ac.execute(f"ALTER DATABASE \"{db}\" SET logical_decoding_work_mem = '64kB'")
    conninfo = base + f" dbname={db}"
    workdir = args.workdir or f"/tmp/difftest-{seed}"
    os.makedirs(workdir, exist_ok=True)
    for f in os.listdir(workdir):
        if f.startswith("p") and f.endswith(".copy"):
            os.unlink(os.path.join(workdir, f))
    log = open(os.path.join(workdir, "worker.log"), "ab")
    history = None
    if args.history_cluster:
        # the history store in a cluster of its own, which the faults stop and start
        with open(os.path.join(args.history_cluster, "port")) as f:
            hbase = f"host=127.0.0.1 port={f.read().strip()} user=postgres"
        hadmin = psycopg2.connect(hbase + " dbname=postgres")
        hadmin.autocommit = True
        hadmin.cursor().execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        hadmin.cursor().execute(f'CREATE DATABASE "{db}"')
        hadmin.close()
        history = hbase + f" dbname={db}"
    config = None
    if args.kafka:
        # the Kafka sink (a mock cluster whose brokers the faults take down) and the file sink beside the history
        config = os.path.join(workdir, "walrev.conf")
        for f in ("changes.mp", "walrev.conf"):
            if os.path.exists(os.path.join(workdir, f)):
                os.unlink(os.path.join(workdir, f))
        with open(config, "w") as f:
            f.write(f"[kafka]\nbootstrap.servers = {args.kafka}\ntopic_prefix = dt{seed}\n"
                    f"[file]\npath = {os.path.join(workdir, 'changes.mp')}\n")
    w = Workload(args, r, conninfo, workdir)
    worker = Worker(args, conninfo, log, history, config)
    w.worker = worker
    # a run that dies of an exception must not leave its worker running (seed 21
    # under --source-faults, before forget_tx, left one streaming for good)
    atexit.register(lambda: worker.proc is not None and worker.proc.poll() is None and worker.proc.kill())
    t0 = time.time()
    print(f"difftest: seed {seed}, database {db}, workdir {workdir}", flush=True)

    # types used by the odd-type columns
    w.x("CREATE TYPE mood AS ENUM ('happy', 'sad', 'meh')")
    w.x("CREATE DOMAIN posint AS integer CHECK (VALUE > 0)")
    w.x("CREATE TYPE pair AS (x integer, y text)")
    w.x("CREATE SEQUENCE dt_seq")

    # -- before setup: tables with rows (the baseline) and some never written
    w.begin()
    filled = [w.make_keyed(keytype=kt) for kt in ("int", "text", "composite", "uuid")]
    filled += [w.make_keyless(False), w.make_keyless(True), w.make_generated(True), w.make_generated(False),
               w.make_types(), w.make_toast(), w.make_partitioned(), w.make_keyed(unlogged=True, keytype="int")]
    # types of its own (dropped, renamed and altered later), a typed table,
    # an INHERITS tree and a table with columns of those types
    w.make_udt("domain"), w.make_udt("enum"), w.make_udt("comp")
    filled += [w.make_typed(), w.make_inherit()]
    filled += w.live(lambda t: t.inh_parent is not None)
    ut = Table("public", w.new_name("ut"), "keyed_int")
    ut.cols = [Col("id", "int4"), Col(w.new_col_name(), "text")] + [
        Col(w.new_col_name(), n) for n in ("dom1", "en2", "cp3")]
    ut.pk = ["id"]
    filled.append(w.create(ut, w.col_defs(ut)))
    ri = w.make_ri()                             # REPLICA IDENTITY USING INDEX before setup
    filled.append(ri)
    empty = w.make_keyed(keytype="int")          # never written at all
    baseline_only = w.make_keyed(keytype="int")  # rows before setup, never changed after
    # a table without a column, with rows (INSERT ... DEFAULT VALUES, empty lines in COPY): its
    # baseline and the lost slot's gap revision found no column (test_zero_columns)
    # (REPLICA IDENTITY DEFAULT: inserts only, and it is never written after setup)
    nocols = w.create(Table("public", w.new_name("nc"), "keyless"), [])
    for _ in range(3):
        w.x(f"INSERT INTO {nocols.q} DEFAULT VALUES")
    for t in filled:
        w.insert(t, r.randint(2, 6))
    w.insert(baseline_only, 3)
    w.op_replident_index(ri)
    w.make_matview(filled[0])
    w.commit()
    # --tables: about half of the extra tables before setup (their rows are
    # the baseline), the rest in new schemas mid-run (schema_batch)
    extra = args.tables // 2
    while extra > 0:
        w.begin()
        extra -= w.populate(min(extra, 40))
        w.commit()
    empty.frozen = baseline_only.frozen = nocols.frozen = True
    baseline_only.tags.add("baseline_only")
    nocols.tags.add("no_columns")
    if args.user_publication:
        w.userpub = UserPub(w, worker, seed)
        w.userpub.create()
    out = subprocess.run(worker.cmd("setup"), capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stdout, out.stderr)
        raise RuntimeError("walrev setup failed")
    w.setup_done = True
    w.sessions += [Session(f"s{i}", conninfo, "300ms", args.source_faults) for i in range(1, args.sessions)]
    for s in w.sessions[1:]:
        s.connect()
    worker.start()
    if w.userpub:
        w.userpub.make_up()

    steps = args.steps
    point_steps = set(int(steps * (i + 1) / (args.points + 1)) for i in range(args.points))
    lost_at = int(steps * 0.72) if not args.calm else -1
    # one long outage: the worker stays stopped for --outage steps (DDL, drops
    # and new tables pile up), then decodes them all under a catalog that has
    # moved on
    outage = range(int(steps * 0.4), int(steps * 0.4) + args.outage) if not args.calm else range(0)
    schema_at = int(steps * 0.3)
    nbatch = (args.tables - args.tables // 2 + 19) // 20   # the rest of --tables, ~20 a schema
    batch_at = {int(steps * (0.1 + 0.7 * i / nbatch)) for i in range(nbatch)} if nbatch else set()
    late_never_at = int(steps * 0.2)
    forced = [(int(steps * (0.05 + 0.85 * i / len(REWRITE_OPS))), op) for i, op in enumerate(REWRITE_OPS)]
    mforced = [(int(steps * (0.07 + 0.8 * i / len(w.MORE_FORCED))), op) for i, op in enumerate(w.MORE_FORCED)]
    faults = Faults(args, seed, worker, w, SLOT)
    w.faults = faults

    def pick(pred):
        c = w.live(lambda t: pred(t) and not t.busy)
        return r.choice(c) if c else None

    def dml_table():
        return pick(lambda t: not t.frozen and not (t.parent is not None and t.partitioned))

    def new_table(empty):
        """A table of a random kind (with its children), with rows unless empty."""
        c = r.choice(["keyed", "keyless", "keyless_full", "generated", "toast", "inherit", "typed"])
        t = {"keyed": lambda: w.make_keyed(), "keyless": lambda: w.make_keyless(False),
             "keyless_full": lambda: w.make_keyless(True), "generated": lambda: w.make_generated(True),
             "toast": lambda: w.make_toast(), "inherit": lambda: w.make_inherit(),
             "typed": lambda: w.make_typed()}[c]()
        for x in [] if empty else [t] + w.descendants(t):
            w.insert(x, r.randint(1, 5))

    def partition_step():
        roots = w.live(lambda t: t.partitioned and t.parent is None and not t.busy)
        if roots:
            root = r.choice(roots)
            if not any(t.busy for t in w.tree(root)):
                w.step_tx(lambda: w.partition_op(root))

    def lost_window_writes():
        """What the lost slot never sends: rows, and the DDL only the table
        log tells replay of (ATTACH/DETACH, new tables, one left empty, column
        DDL), which the gap revision must restore (test_gap_partitions)."""
        for _ in range(r.randint(3, 8)):
            t = dml_table()
            if t is not None:
                w.step_tx(lambda: w.dml(t))
        for _ in range(2):
            partition_step()
        w.step_tx(lambda: new_table(False))
        w.step_tx(lambda: new_table(True))
        t = pick(w.ddl_target)
        if t is not None:
            w.step_tx(lambda: w.ddl(t))

    def finish_prepared(pt, commit):
        gid, ts, post, _ = pt
        if commit:
            w.x(f"COMMIT PREPARED '{gid}'")
            for fn in post:
                fn()
            for t in ts:
                t.tags.add("2pc")
            w.event(f"COMMIT PREPARED {gid}: " + " ".join(sorted({t.q for t in ts})))
        else:
            w.x(f"ROLLBACK PREPARED '{gid}'")
        for t in ts:
            t.busy = False
        w.prepared.remove(pt)

    for step in range(steps):
        if step == outage.start and len(outage):
            worker.stop(signal.SIGKILL)
            w.event(f"worker SIGKILL (an outage of {len(outage)} steps)")
        elif step == outage.stop and len(outage):
            worker.start()
            w.event("worker restarted (outage over)")
        if step not in outage:
            faults.tick(step)
        # due prepared transactions
        for pt in list(w.prepared):
            if step >= pt[3]:
                finish_prepared(pt, r.random() < 0.8)
        if step == schema_at:
            def mk_schema():
                w.x("CREATE SCHEMA s_mid")
                t1 = w.make_keyed(schema="s_mid", keytype="int")
                t2 = w.make_keyless(True, schema="s_mid")
                w.insert(t1, 3)
                w.insert(t2, 3)
                w.on_commit(lambda: w.schemas.append("s_mid"))
            w.step_tx(mk_schema)
        if step in batch_at:
            w.step_tx(lambda: w.schema_batch(20))
        if step == late_never_at:
            if w.step_tx(lambda: w.make_keyed(keytype="text")):
                w.tables[-1].frozen = True
        if step == lost_at:
            # catch up, stop; write while no slot; drop the slot; setup again.
            # A new slot waits for every open transaction, and a prepared one
            # never ends by itself (setup gives up, naming it: test_slot_wait):
            # finish them first, as an operator would.
            print(f"difftest: step {step}: losing the slot", flush=True)
            w.settle_sessions(strong_only=False)
            for pt in list(w.prepared):
                finish_prepared(pt, True)
            faults.heal()
            if w.userpub:
                w.userpub.before_setup()
            worker.catch_up(w.lsn())
            w.lost_window = True
            lost_window_writes()
            w.x(f"SELECT pg_drop_replication_slot('{SLOT}')")
            out = subprocess.run(worker.cmd("setup"), capture_output=True, text=True)
            log.write(f"--- setup after the slot was dropped (rc {out.returncode})\n{out.stdout}{out.stderr}".encode())
            log.flush()
            w.lost_window = False
            w.slot_lost = True
            worker.start()
            faults.next_kill = time.time() + faults.cr.uniform(0.5, 3.0)

        # every rewrite operation at least once in every seed: each is due at
        # its own step and tried at each step from then until it did something
        if forced and step >= forced[0][0]:
            res = []
            due, op = forced.pop(0)
            if not (w.step_tx(lambda: res.append(w.rewrite_op(op))) and res[0]):
                w.step_tx(lambda: w.prepare_for(op))
                forced.append((step + 3, op))
                forced.sort(key=lambda f: f[0])
        if mforced and step >= mforced[0][0]:
            due, op = mforced.pop(0)
            if not w.more_forced(op):
                mforced.append((step + 3, op))
                mforced.sort(key=lambda f: f[0])
        if w.userpub and w.userpub.r.random() < args.pub_rate:
            w.userpub.step(step)
        kind = r.choices(["dml", "multi", "ddl", "copy", "savepoint", "2pc", "partition", "create", "truncate_multi",
                          "set_logged", "rewrite", "session", "more"],
                         [50, 10, 9, 6, 6, 4, 3, 2, 1, 0.6, 4, 25 if len(w.sessions) > 1 else 0, 6])[0]
        if kind == "dml":
            t = dml_table()
            if t is not None:
                w.step_tx(lambda: w.dml(t))
        elif kind == "multi":
            def body():
                for _ in range(r.randint(2, 5)):
                    t = dml_table()
                    if t is not None:
                        w.dml(t)
            w.step_tx(body)
        elif kind == "ddl":
            t = pick(w.ddl_target)
            if t is not None:
                w.step_tx(lambda: w.ddl(t))
        elif kind == "rewrite":
            op = r.choices(REWRITE_OPS, REWRITE_WEIGHTS)[0]
            w.step_tx(lambda: w.rewrite_op(op))
        elif kind == "copy":
            t = dml_table()
            if t is not None:
                n = r.choice([20, 50, 200, 1500]) if not t.toast else r.randint(2, 6)
                w.step_tx(lambda: w.copy_in(t, n))
        elif kind == "savepoint":
            def body():
                ta, tb = dml_table(), dml_table()
                if ta is None or tb is None:
                    return
                w.dml(ta)
                w.savepoint("s1")
                w.dml(tb)
                if r.random() < 0.3 and w.ddl_target(tb):
                    w.ddl(tb)  # DDL inside a savepoint, maybe rolled back
                w.mark_written(tb, "savepoint")
                if r.random() < 0.6:
                    w.rollback_to("s1")
                    for t in (ta, tb):
                        w.on_commit(lambda t=t: t.tags.add("savepoint_rollback"))
                w.savepoint("s2")
                w.dml(ta)
                w.x("RELEASE SAVEPOINT s2")
            if r.random() < 0.15:
                # a whole transaction rolled back
                try:
                    w.begin()
                    t = dml_table()
                    if t is not None:
                        w.dml(t)
                    w.rollback()
                except psycopg2.Error:
                    w.x("ROLLBACK")
            else:
                w.step_tx(body)
        elif kind == "2pc":
            ts = []
            gid = f"dt_{step}"
            ok = True
            try:
                w.begin()
                for _ in range(r.randint(1, 3)):
                    t = dml_table()
                    if t is None:
                        continue
                    w.dml(t)
                    ts.extend(w.tree(w.root_of(t)))
                    ts.extend(w.family(t))
                w.x(f"PREPARE TRANSACTION '{gid}'")
            except psycopg2.Error as e:
                ok = False
                w.note(f"2pc failed: {e}")
                w.x("ROLLBACK")
            if ok:
                for t in ts:
                    t.busy = True
                w.prepared.append((gid, ts, w.post, step + r.randint(0, 6)))
                w.post = []
                w.stats["2pc"] += 1
        elif kind == "partition":
            partition_step()
        elif kind == "create":
            w.step_tx(lambda: new_table(False))
        elif kind == "truncate_multi":
            ts = [t for t in (dml_table(), dml_table()) if t is not None]
            ts = list({id(t): t for t in ts}.values())
            if ts:
                def body():
                    w.x("TRUNCATE " + ", ".join(t.q for t in ts))
                    for t in ts:
                        w.mark_written(t, "truncate")
                w.step_tx(body)
        elif kind == "session":
            w.session_step(step)
        elif kind == "more":
            w.more_step(step, dml_table)
        elif kind == "set_logged" and step > steps * 0.6:
            t = pick(lambda t: t.unlogged)
            if t is not None:
                def body():
                    w.x(f"ALTER TABLE {t.q} SET LOGGED")
                    w.on_commit(lambda: (setattr(t, "unlogged", False), t.tags.add("set_logged")))
                w.step_tx(body)

        if step in point_steps:
            w.settle_sessions(strong_only=True)
            record_point(w, step)
    # finish open and prepared transactions
    w.settle_sessions(strong_only=False)
    for pt in list(w.prepared):
        finish_prepared(pt, True)
    w.forced_left = [op for _, op in forced + mforced]
    record_point(w, steps)
    final = w.lsn()
    if args.calm:
        # let the one worker reach the end, so that it never restarts
        for _ in range(1200):
            if w.rows("SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots WHERE slot_name = %s",
                      (final, SLOT))[0][0]:
                break
            time.sleep(0.1)
    worker.stop(signal.SIGTERM)
    faults.heal()
    w.faults = None
    t_work = time.time() - t0
    print(f"difftest: workload done in {t_work:.0f}s: {args.steps} steps, {len(w.points)} points, worker started "
          f"{worker.starts}x, SIGTERM {worker.terms}, SIGKILL {worker.kills}; faults: {faults.summary()}; "
          f"catching up to {final}", flush=True)
    if not args.calm:
        worker.catch_up(final, timeout=600)
    return check(args, w, worker, workdir, t0, faults)


def record_point(w, step):
    lsn = w.lsn()
    idx = len(w.points)
    recs = []
    # --user-publication: what the catalog says is published at this point
    out = set()
    if w.userpub:
        state = w.userpub.state()
        out = {id(t) for t, pub in state.items() if not pub}
        for t in state:
            # a table made outside the publication joins it for the first time: walrev
            # baselines it (asynchronously), and says "not tracked yet" until then
            t.joined = t.joined or (t.born_out and id(t) not in out)
    for t in w.live():
        buf = io.BytesIO()
        w.cur.copy_expert(f"COPY (SELECT * FROM {t.q}) TO STDOUT", buf)
        path = os.path.join(w.workdir, f"p{idx:03d}_{t.schema}.{t.name}.copy")
        with open(path, "wb") as f:
            f.write(b"".join(sorted(buf.getvalue().splitlines(keepends=True))))
        tags = t.kind_tags() | t.tags
        if w.slot_lost:
            tags.add("after_slot_loss")
        if t.ddl_starts is not None:
            # a column DDL: the worker is always restarted after it (at the latest
            # to catch up at the end), which is what 13.1 is about
            tags.add("column_ddl")
        if t.ddl_unwritten:
            tags.add("ddl_unwritten")
        if id(t) in out:
            tags.add("unpublished")
            w.userpub.ever_out.add(id(t))
        elif w.userpub and id(t) in w.userpub.ever_out:
            tags.add("pub_rejoined")
        want = w.userpub.want(t, id(t) in out, tags) if w.userpub else (True, ())
        recs.append((id(t), t.q, sorted(tags), path, "materialized view" if t.matview else t.unlogged, want))
    w.points.append((idx, step, lsn, recs))
    w.sqllog.write(f"-- point {idx} at step {step}: {lsn}\n")
    w.sqllog.flush()
    print(f"difftest: point {idx} at step {step}: {lsn}, {len(recs)} tables", flush=True)


def load_known(path):
    known = {}
    if not path:
        return known
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split(None, 1)
            known[parts[0]] = parts[1] if len(parts) > 1 else ""
    return known


def snap_one(worker, lsn, q):
    """One table at one point, as a process of its own: the reference form,
    whose stdout and stderr judge_snapshot reads."""
    return subprocess.run(worker.cmd("snapshot", "--at", lsn, "--table", q), capture_output=True, timeout=600)


def output_file_part(name):
    """A name as walrev snapshot --output-dir writes it in a file name."""
    return name.replace("%", "%25").replace("/", "%2F").replace(".", "%2E")


def snap_batch(worker, lsn, tables, workdir):
    """The tables [(q, (schema, name))] at one point through one `walrev
    snapshot --output-dir` (each process costs its start, two connections
    and the point's resolution: one per table-point, they took hours under
    the regression suite). Returns (done, single, again): the results read
    from the files, as snap_one's would be (a file's bytes are what stdout
    would be), by position in tables; the positions to run on their own (a
    table that failed, wrote no file, or may have been cut off); the
    positions to batch again (those after the failure: walrev stops at the
    first table that fails)."""
    d = tempfile.mkdtemp(dir=workdir, prefix="snapshot-")
    try:
        cmd = worker.cmd("snapshot", "--at", lsn, "--output-dir", d)
        for q, _names in tables:
            cmd += ["--table", q]
        try:
            rc = subprocess.run(cmd, capture_output=True, timeout=600 + 30 * len(tables)).returncode
        except subprocess.TimeoutExpired:
            rc = None
        files = [os.path.join(d, f"{output_file_part(nsp)}.{output_file_part(rel)}.copy") for _q, (nsp, rel) in tables]
        have = [os.path.exists(f) for f in files]
        # the tables are written in order, each file closed before the next
        # table is read: on failure, every file before the last one there is
        # whole, and the last may be the failing table's, cut off
        last = max((i for i, h in enumerate(have) if h), default=-1) if rc != 0 else len(tables)
        done, single = {}, []
        for i in range(min(last, len(tables))):
            if have[i]:
                with open(files[i], "rb") as f:
                    done[i] = subprocess.CompletedProcess(cmd, 0, f.read(), b"")
            else:
                single.append(i)
        if rc != 0:
            single.append(max(last, 0))
        again = list(range(max(last, 0) + 1, len(tables))) if rc != 0 else []
        return done, single, again
    finally:
        shutil.rmtree(d, ignore_errors=True)


def snapshot_all(worker, jobs, workdir, njobs, batch, t0, who):
    """walrev's snapshot of every table-point of jobs [(lsn, q, (schema,
    name), alone)], as finished processes in jobs' order (judge_snapshot's
    input). Each point's tables go through --output-dir batches of up to
    `batch`; a table that makes its batch fail, one marked alone (an
    unlogged one: its right answer is an error) and one whose file name
    would be ambiguous (a '/' in it, or two tables of a point with one name)
    run on their own, so that every verdict, error or rows, is the one a
    process of its own would give (a binary older than the file names'
    escapes wrote a '/' into a path and two names into one file)."""
    results = [None] * len(jobs)
    units = []   # (lsn, [job index]); a unit of one runs on its own
    by_point = defaultdict(list)
    for k, (lsn, _q, _names, _alone) in enumerate(jobs):
        by_point[lsn].append(k)
    for lsn, ks in by_point.items():
        seen = defaultdict(int)
        for k in ks:
            seen["%s.%s" % jobs[k][2]] += 1
        grouped = []
        for k in ks:
            name = "%s.%s" % jobs[k][2]
            if batch == 1 or jobs[k][3] or "/" in name or seen[name] > 1:
                units.append((lsn, [k]))
            else:
                grouped.append(k)
        units += [(lsn, grouped[i:i + batch]) for i in range(0, len(grouped), batch)]
    counts = [0, 0]   # table-points done, processes run
    lock = threading.Lock()

    def finished(n, procs):
        with lock:
            before = counts[0]
            counts[0] += n
            counts[1] += procs
            step = max(1, len(jobs) // 10)
            if counts[0] // step != before // step:
                print(f"{who}: compared {counts[0]}/{len(jobs)} table-points in {counts[1]} snapshot "
                      f"processes ({time.time() - t0:.0f}s)", flush=True)

    def run_unit(unit):
        lsn, ks = unit
        while ks:
            if len(ks) == 1:
                results[ks[0]] = snap_one(worker, lsn, jobs[ks[0]][1])
                finished(1, 1)
                return
            done, single, again = snap_batch(worker, lsn, [(jobs[k][1], jobs[k][2]) for k in ks], workdir)
            for i, p in done.items():
                results[ks[i]] = p
            for i in single:
                results[ks[i]] = snap_one(worker, lsn, jobs[ks[i]][1])
            finished(len(done) + len(single), 1 + len(single))
            ks = [ks[i] for i in again]

    with ThreadPoolExecutor(max_workers=njobs) as pool:
        list(pool.map(run_unit, units))
    print(f"{who}: {len(jobs)} table-points in {counts[1]} snapshot processes ({time.time() - t0:.0f}s)", flush=True)
    return results


def check(args, w, worker, workdir, t0, faults):
    known = load_known(args.known)
    per_kind = defaultdict(lambda: [0, 0])
    by_table = defaultdict(list)   # table id -> [(point, lsn, name, tags, detail, known tags)]
    hit_known = defaultdict(int)
    # the snapshots: --jobs processes at a time, --batch tables each
    jobs = [(idx, lsn, rec) for idx, step, lsn, recs in w.points for rec in recs]
    results = snapshot_all(worker, [(lsn, rec[1], tuple(rec[1].split(".", 1)), bool(rec[4] or rec[5][1])) for _idx, lsn, rec in jobs],
                           workdir, args.jobs, args.batch, t0, "difftest")
    refused = defaultdict(int)   # --user-publication: table-points refused, as they may be
    for (idx, lsn, rec), p in zip(jobs, results):
        if True:
            tid, q, tags, path, unlogged, out = rec
            kind = primary_kind(tags)
            per_kind[kind][1] += 1
            detail = judge_snapshot(p, path, unlogged, out)
            if detail is None:
                per_kind[kind][0] += 1
                if p.returncode != 0 and out[1] and not unlogged:
                    refused[kind] += 1
                    refused["out" if UserPub.OUT[0] in p.stderr.decode(errors="replace") else "new"] += 1
                continue
            # an entry is a tag, or tags joined by '+' that must all be there
            kt = [k for k in known if all(part in tags for part in k.split("+"))]
            for t in kt:
                hit_known[t] += 1
            by_table[tid].append((idx, lsn, q, tags, detail, kt))
    total_eq = sum(v[0] for v in per_kind.values())
    total = sum(v[1] for v in per_kind.values())
    print(f"\ndifftest: seed {args.seed}: {total_eq}/{total} table-points equal "
          f"({time.time() - t0:.0f}s; worker started {worker.starts}x, SIGTERM {worker.terms}, SIGKILL {worker.kills}, "
          f"{'no stops, no lost slot' if args.calm else 'slot lost once'})")
    print(f"  faults: {faults.summary()}")
    for k in KIND_ORDER:
        if k in per_kind:
            e, n = per_kind[k]
            rf = f"  ({e - refused[k]} equal, {refused[k]} refused as expected)" if w.userpub else ""
            print(f"  {k:16s} {e:5d}/{n:<5d}{'' if e == n else '  DIVERGES'}{rf}")
    if w.userpub:
        print(f"  publication changes: {dict(sorted(w.userpub.done.items()))}; of the {total_eq} right answers, "
              f"{refused['out']} refusals naming the table unpublished, {refused['new']} naming it not tracked "
              f"yet or incomplete (made outside the publication, before its first baseline)"
              + (f"; never made: {', '.join(w.userpub.todo)}" if w.userpub.todo else ""))
    # one entry per table: its first divergence in detail, the other points counted
    new = {tid: fs for tid, fs in by_table.items() if any(not f[5] for f in fs)}
    old = {tid: fs for tid, fs in by_table.items() if tid not in new}
    shown = defaultdict(int)
    for label, group in (("FAIL", new), ("KNOWN", old)):
        for tid, fs in sorted(group.items(), key=lambda kv: kv[1][0][0]):
            first = next((f for f in fs if not f[5]), fs[0]) if label == "FAIL" else fs[0]
            idx, lsn, q, tags, detail, kt = first
            key = (label, primary_kind(tags), tuple(kt))
            shown[key] += 1
            if shown[key] > args.show:
                continue
            print(f"\n{label}{' (' + '; '.join(f'{t}: {known[t]}' for t in kt) + ')' if kt else ''}: "
                  f"{q} at point {idx} ({lsn}); diverges at {len(fs)} point(s): {' '.join(str(f[0]) for f in fs)}")
            print(f"  tags: {' '.join(tags)}")
            ops = [f"p{pi}: {what}" for pi, what in w.oplog[tid] if pi <= idx]
            evs = [what for pi, what in w.events if (idx == 0 or pi > idx - 1) and pi <= idx]
            print(f"  table's operations: {'; '.join(ops[-8:]) or '-'}")
            if evs:
                print(f"  since the previous point: {'; '.join(evs[-6:])}")
            print("  " + detail.replace("\n", "\n  "))
    for key, n in sorted(shown.items()):
        if n > args.show:
            print(f"  ... and {n - args.show} more {key[0]} tables of kind {key[1]}"
                  f"{' (known: ' + ','.join(key[2]) + ')' if key[2] else ''}")
    nold = sum(len(fs) for fs in old.values())
    if old:
        print(f"\nKNOWN: {nold} table-points of {len(old)} tables diverge under known entries: "
              + ", ".join(f"{t} ({n})" for t, n in sorted(hit_known.items())))
    unused = [t for t in known if t not in hit_known]
    if unused:
        print("known entries with no divergence in this run (remove them once they stay quiet): " + ", ".join(unused))
    print(f"workload: {dict(sorted(w.stats.items()))}")
    if w.forced_left:
        print(f"difftest: rewrite operations this seed never did: {', '.join(w.forced_left)}")
    died = w.stats.get("worker_died", 0)
    if died:
        print(f"\ndifftest: FAILED: the worker exited by itself {died} time(s) (a fatal error or a crash; "
              f"nothing a workload does may stop it). Its errors:")
        with open(os.path.join(w.workdir, "worker.log"), errors="replace") as f:
            for line in f:
                if " level=error " in line or " error " in line or "status=fatal" in line:
                    print("  " + line.rstrip()[:400])
        return 1
    if new:
        nnew = sum(len(fs) for fs in new.values())
        print(f"\ndifftest: FAILED: {len(new)} tables diverge outside the known list at {nnew} points (seed {args.seed})")
        return 1
    print(f"\ndifftest: OK (seed {args.seed}): {total_eq}/{total} equal, {nold} known divergences")
    return 0


def judge_snapshot(p, want_path, unlogged, want=(True, ())):
    """None when walrev's snapshot of a table-point (p, the finished
    `walrev snapshot` process) is right: its rows, sorted bytewise, are the
    live table's (the sorted COPY at want_path); for an unlogged table, which
    logical decoding cannot see, an error naming it so is the right answer.
    Under --user-publication want is (rows are right, the refusals that
    are: UserPub.want): for a table the publication did not carry whole at
    the point, rows (even the right ones) are a silent answer walrev cannot
    know to be right, and only the refusal naming it unpublished is.
    Otherwise what is wrong, in a few lines."""
    with open(want_path, "rb") as f:
        want_rows = f.read()
    err = p.stderr.decode(errors="replace").strip()
    rows_ok, refusals = want
    if p.returncode != 0 and any(x in err for x in refusals):
        return None
    if not rows_ok and not unlogged:
        if p.returncode == 0:
            same = b"".join(sorted(p.stdout.splitlines(keepends=True))) == want_rows
            return (f"expected the refusal naming it unpublished; got rows ({'equal to' if same else 'unlike'} "
                    f"the table's), silently")
        return f"expected the refusal naming it unpublished; got rc {p.returncode}: " + err[-300:]
    if unlogged:
        # True: unlogged; a string: what else the relation is (materialized view)
        word = unlogged if isinstance(unlogged, str) else "unlogged"
        if p.returncode != 0 and word in err.lower():
            return None
        return f"expected an error naming the table {word}; got rc {p.returncode}: " + err[-300:]
    if p.returncode != 0:
        return f"snapshot failed (rc {p.returncode}): " + err[-300:]
    got = b"".join(sorted(p.stdout.splitlines(keepends=True)))
    return None if got == want_rows else diff_lines(want_rows, got)


def diff_lines(want, got, n=4):
    wl, gl = want.splitlines(), got.splitlines()
    from collections import Counter
    cw, cg = Counter(wl), Counter(gl)
    missing = list((cw - cg).elements())
    extra = list((cg - cw).elements())

    def cut(b):
        s = b.decode(errors="replace")
        return s if len(s) < 200 else s[:200] + f"...({len(s)} chars)"
    out = [f"table has {len(wl)} rows, snapshot {len(gl)}; {len(missing)} only in the table, {len(extra)} only in the snapshot"]
    out += ["- " + cut(x) for x in missing[:n]]
    out += ["+ " + cut(x) for x in extra[:n]]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conninfo-base", required=True, help="conninfo without dbname, e.g. 'host=127.0.0.1 port=5432 user=postgres'")
    ap.add_argument("--walrev", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--points", type=int, default=20)
    ap.add_argument("--tables", type=int, default=0, help="about this many more tables of random kinds: half "
                    "before setup, half in new schemas made mid-run")
    ap.add_argument("--outage", type=int, default=40, help="steps the worker stays stopped once, at 40%% "
                    "of the steps (0: none)")
    ap.add_argument("--sessions", type=int, default=3, help="client sessions; all but one keep transactions "
                    "open across steps (1: one transaction at a time)")
    ap.add_argument("--jobs", type=int, default=2, help="snapshot processes at once")
    ap.add_argument("--batch", type=int, default=200, metavar="N",
                    help="tables per `walrev snapshot --output-dir` (at most 256; 1: one process per table-point)")
    ap.add_argument("--known", help="known-divergences file")
    ap.add_argument("--workdir")
    ap.add_argument("--show", type=int, default=3, help="divergences shown per kind")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--calm", action="store_true", help="one worker, never stopped, no lost slot (to tell "
                    "divergences that need a restart from those that do not)")
    ap.add_argument("--source-faults", action="store_true",
                    help="stop the source server (pg_ctl -m immediate or fast) and start it again at random points; "
                    "needs --source-cluster")
    ap.add_argument("--source-cluster", help="the source's tests/support/pgcluster.sh directory (for --source-faults)")
    ap.add_argument("--history-cluster", help="a tests/support/pgcluster.sh directory: the history store lives there "
                    "and is stopped, started and has its walrev sessions terminated at random points")
    ap.add_argument("--kafka", metavar="BROKERS", help="also write the Kafka sink (these bootstrap servers, "
                    "walrev-mock-kafka's) and the file sink (WORKDIR/changes.mp)")
    ap.add_argument("--user-publication", action="store_true",
                    help="setup is given a publication the user made (userpub), which the user changes mid-run: "
                    "tables and schemas leave and rejoin, row filters, column lists, publish=, "
                    "publish_via_partition_root, DETACH ... CONCURRENTLY, DROP and CREATE PUBLICATION")
    ap.add_argument("--pub-rate", type=float, default=0.06, help="with --user-publication: the chance that a step "
                    "begins with a change of the publication")
    ap.add_argument("--kafka-mock-pid", type=int, help="walrev-mock-kafka's pid: its brokers are taken down "
                    "(SIGUSR1) and up (SIGUSR2) at random points")
    args = ap.parse_args()
    if args.kafka and not args.kafka_mock_pid:
        ap.error("--kafka needs --kafka-mock-pid PID")
    if args.source_faults and not args.source_cluster:
        ap.error("--source-faults needs --source-cluster DIR")
    sys.exit(run(args))


if __name__ == "__main__":
    main()
