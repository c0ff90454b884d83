/*
 * setup.c — `walrev setup` (see setup.h, docs/cli.md). Two phases: checks
 * that only read the catalogs and report every problem with its fix, then
 * steps that create what is missing, each reported as "created" or "ok".
 * It must never drop or overwrite anything it did not create, and never print
 * a password (conninfos are shown redacted).
 */
#include "setup/setup.h"

#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "decoder/stream.h"
#include "pgio/pgio.h"
#include "replay/replay.h"
#include "schema/store_sql.h"

/* How the publication selects tables (docs/cli.md#setup). */
typedef enum {
    PUB_ALL_TABLES, /* FOR ALL TABLES: history elsewhere (or off) */
    PUB_SCHEMAS,    /* FOR TABLES IN SCHEMA every user schema but the history's */
    PUB_TABLES      /* FOR TABLE the [source] tables list */
} PubMode;

typedef struct {
    const SetupConfig *cfg;
    const SetupOptions *opts;
    PGconn *src;
    PGconn *hist;   /* == src when the history store uses the same conninfo */
    bool same_db;   /* history store lives in the source database */
    bool superuser;
    PubMode mode;
    bool pub_exists;
    bool pub_all;   /* the existing publication is FOR ALL TABLES */
    bool slot_exists;
    int problems;
    int changes;
    int warnings;
} Setup;

/* ---- output ---- */

static void say(const char *tag, const char *fmt, ...) WR_PRINTF(2, 3);
static void say(const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%-9s ", tag);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
}

/* One problem: what is wrong (formatted) and how to fix it. */
static void problem(Setup *s, const char *fix, const char *fmt, ...) WR_PRINTF(3, 4);
static void problem(Setup *s, const char *fix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (fix) fprintf(stderr, "  fix: %s\n", fix);
    s->problems++;
}

static void warn(Setup *s, const char *fmt, ...) WR_PRINTF(2, 3);
static void warn(Setup *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%-9s ", "warning");
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    s->warnings++;
}

/* ---- SQL helpers ---- */

/* Run a parameterised query; on failure print it as a problem naming what
 * was being done and return NULL. */
static PGresult *run(Setup *s, PGconn *c, const char *what, const char *sql, int n,
                     const char *const *params)
{
    /* Without parameters use the simple protocol: it allows several
     * statements and is the only one a replication connection speaks. */
    PGresult *res;
    if (pgio_exec(c, sql, n, params, &res)) return res;
    char line[1024];
    const char *state;
    pgio_error_text(c, res, line, sizeof(line), &state);
    const char *fix = NULL;
    if (state && strcmp(state, "42501") == 0)
        fix = "run walrev setup as a role with the privilege named above (for example the "
              "database owner or a superuser), then run walrev as the less privileged role";
    problem(s, fix, "%s failed: %s", what, line);
    PQclear(res);
    return NULL;
}

static char *scalar(Setup *s, PGconn *c, const char *what, const char *sql, int n,
                    const char *const *params)
{
    PGresult *res = run(s, c, what, sql, n, params);
    if (!res) return NULL;
    char *v = (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) ? xstrdup(PQgetvalue(res, 0, 0))
                                                              : xstrdup("");
    PQclear(res);
    return v;
}

/* An identifier quoted as quote_ident() would (only when needed). Caller frees. */
static char *ident(PGconn *c, const char *name)
{
    (void)c;
    return store_quote_ident(name);
}

static PGconn *connect_db(Setup *s, const char *what, const char *conninfo, bool replication)
{
    PgioConnect how = {.what = "libpq", .app_name = "walrev-setup", .replication = replication};
    PGconn *c;
    WrError err = {0};
    if (pgio_connect(conninfo, &how, &c, &err) == WR_OK) return c;
    char *red = pgio_redact_conninfo(conninfo);
    const char *line = err.msg;
    if (replication)
        problem(s,
                "allow the user a replication connection to this database in pg_hba.conf "
                "(logical replication connections match the database name, not 'replication')",
                "cannot open a replication connection to the %s database (%s): %s", what, red, line);
    else
        problem(s,
                "check the conninfo (host, port, dbname, user) and that the server is running; "
                "put passwords in ~/.pgpass, PGPASSWORD or a service file",
                "cannot connect to the %s database (%s): %s", what, red, line);
    free(red);
    return NULL;
}

/* ---- checks ---- */

static int setting_int(Setup *s, const char *name)
{
    const char *p[] = {name};
    char *v = scalar(s, s->src, "reading a server setting",
                     "SELECT setting FROM pg_settings WHERE name = $1", 1, p);
    int out = v ? atoi(v) : -1;
    free(v);
    return out;
}

static void check_server(Setup *s)
{
    int version = PQserverVersion(s->src);
    if (version < 150000)
        problem(s, "upgrade the source to PostgreSQL 15 or later",
                "the source runs PostgreSQL %d.%d; walrev needs 15 or later", version / 10000,
                version % 10000);

    char *wal_level = scalar(s, s->src, "reading wal_level", "SHOW wal_level", 0, NULL);
    if (wal_level && strcmp(wal_level, "logical") != 0)
        problem(s,
                "set wal_level = logical in postgresql.conf (or ALTER SYSTEM SET wal_level = "
                "logical) and restart PostgreSQL",
                "wal_level is '%s' on the source; walrev reads the WAL by logical decoding, which "
                "needs wal_level = logical",
                wal_level);
    else if (wal_level)
        say("ok", "wal_level = logical");
    free(wal_level);

    int senders = setting_int(s, "max_wal_senders");
    if (senders == 0)
        problem(s, "set max_wal_senders = 10 (or more) in postgresql.conf and restart PostgreSQL",
                "max_wal_senders is 0 on the source; walrev run needs one WAL sender");
    else if (senders > 0)
        say("ok", "max_wal_senders = %d", senders);

    const char *p[] = {s->cfg->slot_name};
    PGresult *res = run(s, s->src, "reading replication slots",
                        "SELECT plugin, slot_type, database, coalesce(wal_status, ''),"
                        " (SELECT count(*) FROM pg_replication_slots),"
                        " current_setting('max_replication_slots')::int"
                        " FROM (SELECT 1) one LEFT JOIN pg_replication_slots ON slot_name = $1",
                        1, p);
    if (!res) return;
    s->slot_exists = !PQgetisnull(res, 0, 0);
    int used = atoi(PQgetvalue(res, 0, 4));
    int max = atoi(PQgetvalue(res, 0, 5));
    if (s->slot_exists) {
        const char *plugin = PQgetvalue(res, 0, 0);
        const char *type = PQgetvalue(res, 0, 1);
        const char *db = PQgetvalue(res, 0, 2);
        const char *walst = PQgetvalue(res, 0, 3);
        const char *cur = PQdb(s->src);
        if (strcmp(type, "logical") != 0 || strcmp(plugin, "pgoutput") != 0)
            problem(s, "choose another slot name ([source] slot, --slot) or drop the slot",
                    "replication slot %s exists but is a %s slot with plugin '%s'; walrev needs a "
                    "logical slot with plugin pgoutput",
                    s->cfg->slot_name, type, plugin);
        else if (strcmp(db, cur) != 0)
            problem(s, "choose another slot name ([source] slot, --slot)",
                    "replication slot %s exists but belongs to database %s, not %s",
                    s->cfg->slot_name, db, cur);
        else if (strcmp(walst, "lost") == 0)
            problem(s,
                    "drop it with SELECT pg_drop_replication_slot('<slot>') and run walrev setup "
                    "again; the history will have a gap from the slot's last position, and raising "
                    "max_slot_wal_keep_size prevents a repeat",
                    "replication slot %s was invalidated (wal_status = lost): the WAL it needed is "
                    "gone",
                    s->cfg->slot_name);
        else
            say("ok", "replication slot %s exists (pgoutput, database %s)", s->cfg->slot_name, db);
    } else if (max == 0) {
        problem(s, "set max_replication_slots = 10 (or more) in postgresql.conf and restart",
                "max_replication_slots is 0 on the source; walrev needs one logical slot");
    } else if (used >= max) {
        problem(s,
                "raise max_replication_slots in postgresql.conf and restart PostgreSQL, or drop an "
                "unused slot with SELECT pg_drop_replication_slot(name)",
                "all %d replication slots of the source are in use (max_replication_slots = %d)",
                used, max);
    } else {
        say("ok", "replication slots: %d of %d in use", used, max);
    }
    PQclear(res);
}

static void check_role(Setup *s)
{
    PGresult *res = run(s, s->src, "reading the role",
                        "SELECT current_user, rolsuper, rolreplication,"
                        " has_database_privilege(current_database(), 'CREATE')"
                        " FROM pg_roles WHERE rolname = current_user",
                        0, NULL);
    if (!res) return;
    const char *user = PQgetvalue(res, 0, 0);
    s->superuser = PQgetvalue(res, 0, 1)[0] == 't';
    bool repl = PQgetvalue(res, 0, 2)[0] == 't';
    if (!s->superuser && !repl) {
        char fix[256];
        char *q = ident(s->src, user);
        snprintf(fix, sizeof(fix), "as a superuser: ALTER ROLE %s REPLICATION;", q);
        free(q);
        problem(s, fix,
                "role %s has neither REPLICATION nor SUPERUSER; reading a replication slot needs "
                "REPLICATION",
                user);
    } else {
        say("ok", "role %s may replicate (%s)", user, s->superuser ? "superuser" : "REPLICATION");
    }
    PQclear(res);
}

/* ---- the publication ---- */

static const char *mode_text(PubMode m)
{
    switch (m) {
    case PUB_ALL_TABLES: return "FOR ALL TABLES";
    case PUB_SCHEMAS: return "FOR TABLES IN SCHEMA (every schema but the history's)";
    case PUB_TABLES: return "FOR TABLE ([source] tables)";
    }
    return "?";
}

/* Is the history store in the source database? Equal conninfo says yes at
 * once; otherwise compare what identifies a database on a running server:
 * name, OID and the postmaster's start time (to the microsecond). */
static void decide_same_db(Setup *s)
{
    if (!s->cfg->history_enabled) {
        s->same_db = false;
        return;
    }
    if (s->hist == s->src) {
        s->same_db = true;
        return;
    }
    const char *sql = "SELECT current_database() || '/' || d.oid || '/' || pg_postmaster_start_time()"
                      " FROM pg_database d WHERE d.datname = current_database()";
    char *a = scalar(s, s->src, "identifying the source database", sql, 0, NULL);
    char *b = scalar(s, s->hist, "identifying the history database", sql, 0, NULL);
    s->same_db = a && b && strcmp(a, b) == 0;
    free(a);
    free(b);
}

static void check_history(Setup *s)
{
    if (!s->cfg->history_enabled) return;
    const char *p[] = {s->cfg->history_schema};
    PGresult *res = run(s, s->hist, "checking the history database",
                        "SELECT to_regnamespace($1) IS NOT NULL,"
                        " has_database_privilege(current_database(), 'CREATE'), current_database()",
                        1, p);
    if (!res) return;
    const char *db = PQgetvalue(res, 0, 2);
    if (PQgetvalue(res, 0, 0)[0] != 't' && PQgetvalue(res, 0, 1)[0] != 't') {
        char fix[300];
        char *q = ident(s->hist, db);
        snprintf(fix, sizeof(fix),
                 "GRANT CREATE ON DATABASE %s TO <this role>; or run setup as the database owner", q);
        free(q);
        problem(s, fix, "creating the history schema %s needs CREATE on database %s",
                s->cfg->history_schema, db);
    } else {
        say("ok", "history database %s%s", db, s->same_db ? " (the source database)" : "");
    }
    PQclear(res);
}

static void check_tables(Setup *s)
{
    for (int i = 0; i < s->cfg->ntables; i++) {
        const char *p[] = {s->cfg->tables[i], s->cfg->history_schema};
        PGresult *res = run(s, s->src, "looking up a table of [source] tables",
                            "SELECT n.nspname, c.relname, c.relkind,"
                            " pg_has_role(c.relowner, 'USAGE'), n.nspname = $2"
                            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                            " WHERE c.oid = to_regclass($1)",
                            2, p);
        if (!res) continue;
        if (PQntuples(res) == 0) {
            problem(s,
                    "create it or correct [source] tables (names follow SQL: unquoted names are "
                    "folded to lower case)",
                    "table %s listed in [source] tables does not exist in the source database",
                    s->cfg->tables[i]);
        } else if (strchr("rp", PQgetvalue(res, 0, 2)[0]) == NULL) {
            problem(s, "list only ordinary or partitioned tables",
                    "%s.%s listed in [source] tables is not a table", PQgetvalue(res, 0, 0),
                    PQgetvalue(res, 0, 1));
        } else if (PQgetvalue(res, 0, 4)[0] == 't' && s->same_db) {
            problem(s, "remove it from [source] tables",
                    "%s.%s is one of walrev's own history tables; tracking it would record "
                    "walrev's own writes forever",
                    PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
        } else if (!s->pub_exists && !s->superuser && PQgetvalue(res, 0, 3)[0] != 't') {
            problem(s, "run walrev setup as the table's owner or a superuser",
                    "adding %s.%s to a publication needs ownership of the table",
                    PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
        }
        PQclear(res);
    }
}

static void check_publication(Setup *s)
{
    s->mode = s->cfg->ntables > 0 ? PUB_TABLES : s->same_db ? PUB_SCHEMAS : PUB_ALL_TABLES;
    const char *p[] = {s->cfg->publication, s->cfg->history_schema};
    PGresult *res = run(s, s->src, "reading the publication",
                        "SELECT p.puballtables, p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate,"
                        " EXISTS (SELECT 1 FROM pg_publication_namespace pn JOIN pg_namespace n"
                        "         ON n.oid = pn.pnnspid WHERE pn.pnpubid = p.oid AND n.nspname = $2)"
                        " OR EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_class c"
                        "         ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
                        "         WHERE pr.prpubid = p.oid AND n.nspname = $2 AND c.relname NOT IN ('table_log', 'ddl_capture', 'erasure_log'))"
                        " FROM pg_publication p WHERE p.pubname = $1",
                        2, p);
    if (!res) return;
    s->pub_exists = PQntuples(res) > 0;
    if (s->pub_exists) {
        bool all = PQgetvalue(res, 0, 0)[0] == 't';
        s->pub_all = all;
        bool has_history = PQgetvalue(res, 0, 5)[0] == 't';
        if (s->same_db && (all || has_history)) {
            char fix[300];
            snprintf(fix, sizeof(fix),
                     "DROP PUBLICATION %s; then run walrev setup again, or name another "
                     "publication ([source] publication, --publication)",
                     s->cfg->publication);
            problem(s, fix,
                    "publication %s publishes walrev's own history tables (schema %s, same "
                    "database): walrev would record its own writes forever",
                    s->cfg->publication, s->cfg->history_schema);
        } else {
            say("ok", "publication %s exists%s", s->cfg->publication,
                all ? " (FOR ALL TABLES)" : "");
        }
        static const char *ops[] = {"insert", "update", "delete", "truncate"};
        for (int i = 0; i < 4; i++)
            if (PQgetvalue(res, 0, 1 + i)[0] != 't')
                warn(s, "publication %s does not publish %s: walrev will not see them",
                     s->cfg->publication, ops[i]);
    } else {
        PGresult *priv = run(s, s->src, "checking CREATE on the source database",
                             "SELECT has_database_privilege(current_database(), 'CREATE')", 0,
                             NULL);
        if (priv && PQgetvalue(priv, 0, 0)[0] != 't') {
            char fix[300];
            char *db = ident(s->src, PQdb(s->src));
            snprintf(fix, sizeof(fix), "GRANT CREATE ON DATABASE %s TO <this role>; or run setup "
                     "as the database owner", db);
            free(db);
            problem(s, fix, "creating publication %s needs CREATE on database %s",
                    s->cfg->publication, PQdb(s->src));
        }
        PQclear(priv);
        if (s->mode != PUB_TABLES && !s->superuser)
            problem(s,
                    "run walrev setup once as a superuser, or list the tables to track in "
                    "[source] tables (then owning them is enough)",
                    "a publication %s needs a superuser in PostgreSQL 15", mode_text(s->mode));
    }
    PQclear(res);
    if (s->mode == PUB_TABLES) check_tables(s);
}

/* Schemas a PUB_SCHEMAS publication covers: every user schema except the
 * history store's and those `walrev snapshot --into` made. */
#define NOT_INTO_SCHEMA " AND coalesce(obj_description(oid, 'pg_namespace'), '') NOT LIKE '" STORE_INTO_SCHEMA_MARK "%'"
static const char *user_schemas_sql =
    "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('information_schema', $1)"
    " AND nspname !~ '^pg_'" NOT_INTO_SCHEMA " ORDER BY nspname";

static void append_schema_list(Setup *s, PGresult *res, StrBuf *sql)
{
    for (int i = 0; i < PQntuples(res); i++) {
        char *q = ident(s->src, PQgetvalue(res, i, 0));
        strbuf_appendf(sql, "%s%s", i ? ", " : "", q);
        free(q);
    }
}

static bool ensure_publication(Setup *s)
{
    char *pub = ident(s->src, s->cfg->publication);
    StrBuf sql;
    strbuf_init(&sql);
    bool ok = true;
    PGresult *res = NULL;

    if (!s->pub_exists) {
        strbuf_appendf(&sql, "CREATE PUBLICATION %s ", pub);
        if (s->mode == PUB_ALL_TABLES) {
            strbuf_append_str(&sql, "FOR ALL TABLES");
        } else if (s->mode == PUB_SCHEMAS) {
            const char *p[] = {s->cfg->history_schema};
            res = run(s, s->src, "listing schemas", user_schemas_sql, 1, p);
            if (!res) goto fail;
            if (PQntuples(res) == 0) {
                problem(s, "create a schema with the tables to track",
                        "the source database has no schema to publish besides %s",
                        s->cfg->history_schema);
                goto fail;
            }
            strbuf_append_str(&sql, "FOR TABLES IN SCHEMA ");
            append_schema_list(s, res, &sql);
        } else {
            strbuf_append_str(&sql, "FOR TABLE ");
            for (int i = 0; i < s->cfg->ntables; i++) {
                const char *p[] = {s->cfg->tables[i]};
                PQclear(res);
                res = run(s, s->src, "resolving a table", "SELECT to_regclass($1)::oid::regclass::text",
                          1, p);
                if (!res) goto fail;
                strbuf_appendf(&sql, "%s%s", i ? ", " : "", PQgetvalue(res, 0, 0));
            }
        }
        PQclear(res);
        res = run(s, s->src, "creating the publication", sql.data, 0, NULL);
        if (!res) goto fail;
        say("created", "publication %s %s", s->cfg->publication, mode_text(s->mode));
        s->changes++;
        goto done;
    }

    /* The publication exists: add what the configuration names and it lacks. */
    if (s->mode == PUB_SCHEMAS) {
        const char *p[] = {s->cfg->history_schema, s->cfg->publication};
        res = run(s, s->src, "listing schemas missing from the publication",
                  "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('information_schema', $1)"
                  " AND nspname !~ '^pg_'" NOT_INTO_SCHEMA " AND NOT EXISTS (SELECT 1 FROM pg_publication_namespace pn"
                  "  JOIN pg_publication pb ON pb.oid = pn.pnpubid"
                  "  WHERE pb.pubname = $2 AND pn.pnnspid = pg_namespace.oid)"
                  " AND EXISTS (SELECT 1 FROM pg_publication_namespace pn"
                  "  JOIN pg_publication pb ON pb.oid = pn.pnpubid WHERE pb.pubname = $2)"
                  " ORDER BY nspname",
                  2, p);
        if (!res) goto fail;
        if (PQntuples(res) > 0) {
            if (!s->superuser) {
                problem(s, "run walrev setup as a superuser to add them",
                        "publication %s lacks %d new schema(s); adding a schema needs a superuser",
                        s->cfg->publication, PQntuples(res));
                goto fail;
            }
            strbuf_appendf(&sql, "ALTER PUBLICATION %s ADD TABLES IN SCHEMA ", pub);
            append_schema_list(s, res, &sql);
            PQclear(res);
            res = run(s, s->src, "adding schemas to the publication", sql.data, 0, NULL);
            if (!res) goto fail;
            say("changed", "publication %s: added new schema(s)", s->cfg->publication);
            s->changes++;
        }
    } else if (s->mode == PUB_TABLES && !s->pub_all) {
        for (int i = 0; i < s->cfg->ntables; i++) {
            const char *p[] = {s->cfg->tables[i], s->cfg->publication};
            PQclear(res);
            res = run(s, s->src, "checking the publication's tables",
                      "SELECT to_regclass($1)::regclass::text, EXISTS (SELECT 1 FROM"
                      " pg_publication_tables t WHERE t.pubname = $2 AND"
                      " format('%I.%I', t.schemaname, t.tablename)::regclass = to_regclass($1))",
                      2, p);
            if (!res) goto fail;
            if (PQgetvalue(res, 0, 1)[0] == 't') continue;
            strbuf_reset(&sql);
            strbuf_appendf(&sql, "ALTER PUBLICATION %s ADD TABLE %s", pub, PQgetvalue(res, 0, 0));
            PGresult *r2 = run(s, s->src, "adding a table to the publication", sql.data, 0, NULL);
            if (!r2) goto fail;
            PQclear(r2);
            say("changed", "publication %s: added table %s", s->cfg->publication,
                PQgetvalue(res, 0, 0));
            s->changes++;
        }
    }
    goto done;

fail:
    ok = false;
done:
    PQclear(res);
    strbuf_free(&sql);
    free(pub);
    return ok;
}

/* ---- the history store and the context functions ---- */

static int count_objects(Setup *s, PGconn *c)
{
    const char *p[] = {s->cfg->history_schema};
    char *v = scalar(s, c, "reading the history schema",
                     "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid ="
                     " c.relnamespace WHERE n.nspname = $1) + (SELECT count(*) FROM pg_proc f"
                     " JOIN pg_namespace n ON n.oid = f.pronamespace WHERE n.nspname = $1)"
                     " + (SELECT count(*) FROM pg_namespace WHERE nspname = $1)",
                     1, p);
    int n = v ? atoi(v) : -1;
    free(v);
    return n;
}

static bool exec_simple(Setup *s, PGconn *c, const char *what, const char *sql)
{
    PGresult *res = run(s, c, what, sql, 0, NULL);
    PQclear(res);
    return res != NULL;
}

static bool ensure_history(Setup *s)
{
    int before = count_objects(s, s->hist);
    if (before < 0) return false;
    char *ddl = store_sql_render(s->cfg->history_schema);
    if (!ddl) {
        problem(s, NULL, "this walrev was built without the history store's DDL");
        return false;
    }
    /* Every statement of the DDL is idempotent; one transaction so a failure
     * leaves nothing half-made. */
    bool ok = exec_simple(s, s->hist, "starting the history store transaction", "BEGIN");
    if (ok) {
        PGresult *res;
        if (!pgio_exec(s->hist, ddl, 0, NULL, &res)) {
            char line[1024];
            const char *state;
            pgio_error_text(s->hist, res, line, sizeof(line), &state);
            problem(s,
                    state && strcmp(state, "42501") == 0
                        ? "GRANT CREATE ON DATABASE <history database> TO <this role>; or run "
                          "setup as the database owner"
                        : NULL,
                    "creating the history store (schema %s) failed: %s", s->cfg->history_schema, line);
            ok = false;
        }
        PQclear(res);
        /* The replay views and functions over the store come with it. */
        char *replay_sql = ok ? replay_sql_render(s->cfg->history_schema) : NULL;
        if (replay_sql) {
            ok = exec_simple(s, s->hist, "creating the replay views and functions", replay_sql);
            free(replay_sql);
        }
        if (ok)
            ok = exec_simple(s, s->hist, "committing the history store", "COMMIT");
        else
            PQclear(PQexec(s->hist, "ROLLBACK"));
    }
    free(ddl);
    if (!ok) return false;
    int after = count_objects(s, s->hist);
    if (after != before) {
        say("created", "history store in schema %s (%d objects)", s->cfg->history_schema, after);
        s->changes++;
    } else {
        say("ok", "history store in schema %s is up to date", s->cfg->history_schema);
    }
    return true;
}

/*
 * The body of each walrev.context() overload; compared on later runs so an
 * unchanged function is not replaced. Both hand the text to
 * context_attested() with the caller's current_user (a SECURITY INVOKER
 * function sees it; the definer function below would see its owner). The
 * text overload forwards the text as sent, so even invalid JSON reaches the
 * worker (and is recorded as a warning); the jsonb one rejects bad JSON in
 * the caller's transaction. An untyped literal, context('{...}'), resolves
 * to the text overload. %1$s is the schema.
 */
#define CONTEXT_BODY_JSONB " SELECT %s.context_attested(ctx::text, current_user) "
#define CONTEXT_BODY_TEXT " SELECT %s.context_attested(ctx, current_user) "

/*
 * Server-attested identity (docs/history-store.md#who-acted). A client can
 * emit any logical message, so identity it puts there proves nothing; this
 * function, SECURITY DEFINER and owned by setup's role, signs session_user,
 * the caller's current_user (only if session_user is a member of it: a
 * caller cannot name a role it cannot become), application_name and the
 * transaction with a key in <schema>.context_key, which no other role can
 * read. The worker (walrev's role) reads the key and checks the signature:
 * only this function's messages count as attested.
 */
#define CONTEXT_ATTESTED_SQL \
    "CREATE TABLE IF NOT EXISTS %1$s.context_key (ipad bytea NOT NULL, opad bytea NOT NULL);" \
    " REVOKE ALL ON %1$s.context_key FROM PUBLIC;" \
    " CREATE OR REPLACE FUNCTION %1$s.context_attested(ctx text, invoker name) RETURNS pg_lsn" \
    " LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog AS $walrev$" \
    " DECLARE k record; su text := session_user::text; cu text; app text; x text; m text; sig text;" \
    " BEGIN" \
    "   IF pg_has_role(session_user, invoker, 'MEMBER') THEN cu := invoker::text; END IF;" \
    "   app := coalesce(current_setting('application_name', true), '');" \
    "   x := (txid_current() %% 4294967296)::text;" \
    "   SELECT ck.ipad, ck.opad INTO k FROM %1$s.context_key ck LIMIT 1;" \
    "   m := octet_length(su) || ':' || su || octet_length(coalesce(cu, '')) || ':' || coalesce(cu, '')" \
    "        || octet_length(app) || ':' || app || octet_length(x) || ':' || x" \
    "        || octet_length(ctx) || ':' || ctx;" \
    "   sig := encode(sha256(k.opad || sha256(k.ipad || convert_to(m, 'UTF8'))), 'hex');" \
    "   RETURN pg_logical_emit_message(true, 'walrev', json_build_object('walrev_attest'," \
    "       json_build_object('session_user', su, 'current_user', cu, 'application_name', app, 'xid', x," \
    "                         'sig', sig), 'context', ctx)::text);" \
    " END $walrev$;" \
    " COMMENT ON FUNCTION %1$s.context_attested(text, name) IS 'walrev: context() signed with the server''s" \
    " view of who acts (docs/history-store.md)'"

/* One random key, stored as its HMAC pads; kept across setups (the worker reads it at start). */
static bool ensure_context_key(Setup *s, const char *schema)
{
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q, "SELECT count(*) FROM %s.context_key", schema);
    char *n = scalar(s, s->src, "reading the context key", q.data, 0, NULL);
    bool ok = n != NULL;
    if (ok && strcmp(n, "0") == 0) {
        uint8_t key[32], ipad[64], opad[64];
        if (RAND_bytes(key, sizeof(key)) != 1) {
            fprintf(stderr, "walrev: no random bytes from OpenSSL for the context key\n");
            abort();
        }
        memset(ipad, 0x36, sizeof(ipad));
        memset(opad, 0x5c, sizeof(opad));
        for (size_t i = 0; i < sizeof(key); i++) {
            ipad[i] ^= key[i];
            opad[i] ^= key[i];
        }
        char hi[129], ho[129];
        for (size_t i = 0; i < 64; i++) {
            snprintf(hi + 2 * i, 3, "%02x", ipad[i]);
            snprintf(ho + 2 * i, 3, "%02x", opad[i]);
        }
        strbuf_reset(&q);
        strbuf_appendf(&q, "INSERT INTO %s.context_key VALUES ('\\x%s', '\\x%s')", schema, hi, ho);
        ok = exec_simple(s, s->src, "storing the context key", q.data);
        OPENSSL_cleanse(key, sizeof(key));
        if (ok) {
            say("created", "context attestation key in %s.context_key (readable by this role only)", schema);
            s->changes++;
        }
    }
    free(n);
    strbuf_free(&q);
    return ok;
}

static bool ensure_context_functions(Setup *s)
{
    char *schema = ident(s->src, s->cfg->history_schema);
    const char *types[] = {"jsonb", "text"};

    bool ok = true;
    int created = 0;
    StrBuf sql;
    strbuf_init(&sql);

    strbuf_appendf(&sql, "CREATE SCHEMA IF NOT EXISTS %s; ", schema);
    strbuf_appendf(&sql, CONTEXT_ATTESTED_SQL, schema);
    ok = exec_simple(s, s->src, "creating the attested context function", sql.data) &&
         ensure_context_key(s, schema);
    for (int i = 0; i < 2 && ok; i++) {
        char body[256];
        if (i == 0)
            snprintf(body, sizeof(body), CONTEXT_BODY_JSONB, schema);
        else
            snprintf(body, sizeof(body), CONTEXT_BODY_TEXT, schema);
        strbuf_reset(&sql);
        strbuf_appendf(&sql, "%s.context(%s)", schema, types[i]);
        const char *p[] = {sql.data};
        char *src = scalar(s, s->src, "reading the context function",
                           "SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure($1)", 1, p);
        if (!src) {
            ok = false;
            break;
        }
        bool same = strcmp(src, body) == 0;
        free(src);
        if (same) continue;
        strbuf_reset(&sql);
        strbuf_appendf(&sql,
                       "CREATE SCHEMA IF NOT EXISTS %s;"
                       " CREATE OR REPLACE FUNCTION %s.context(ctx %s) RETURNS pg_lsn"
                       " LANGUAGE sql VOLATILE AS $walrev$%s$walrev$;"
                       " COMMENT ON FUNCTION %s.context(%s) IS 'walrev: set the actor context of"
                       " the changes after it in this transaction (docs/cli.md)'",
                       schema, schema, types[i], body, schema, types[i]);
        ok = exec_simple(s, s->src, "creating the walrev context function", sql.data);
        created++;
    }
    if (ok) {
        /* Applications call context() as themselves: they need to reach the
         * function, which USAGE on the schema gives without any table access. */
        const char *p[] = {s->cfg->history_schema};
        char *v = scalar(s, s->src, "checking USAGE on the schema",
                         "SELECT has_schema_privilege('public', $1, 'USAGE')", 1, p);
        if (!v) ok = false;
        if (ok && strcmp(v, "t") != 0) {
            strbuf_reset(&sql);
            strbuf_appendf(&sql, "GRANT USAGE ON SCHEMA %s TO PUBLIC", schema);
            ok = exec_simple(s, s->src, "granting USAGE on the schema", sql.data);
            created++;
        }
        free(v);
    }
    if (ok && created) {
        say("created", "functions %s.context(jsonb) and %s.context(text) on the source",
            s->cfg->history_schema, s->cfg->history_schema);
        s->changes++;
    } else if (ok) {
        say("ok", "functions %s.context(jsonb) and %s.context(text) exist",
            s->cfg->history_schema, s->cfg->history_schema);
    }
    strbuf_free(&sql);
    free(schema);
    return ok;
}

/* ---- DDL capture: exact renames, generated columns ---- */

/*
 * pgoutput's Relation message names columns but does not identify them, so
 * a RENAME COLUMN looks like DROP + ADD, and it never mentions STORED
 * generated columns. This event trigger writes, in the DDL's own transaction
 * (so in WAL order), each created or altered table's columns with their
 * attnums and its generated columns' expressions into <schema>.ddl_capture.
 * That table is walrev's: owned by the role running setup, no privilege for
 * anyone else, written only through this SECURITY DEFINER function; its rows
 * reach the worker through the slot like any change, and the worker takes
 * column identities from nowhere else (a logical message under walrev's
 * prefix, which any user can emit, is only ever a warning). The worker
 * reads the rows from the WAL, so deleting old rows is harmless.
 */
static const char ddl_capture_table_fmt[] =
    "CREATE TABLE IF NOT EXISTS @s@.ddl_capture ("
    " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " captured_at timestamptz NOT NULL DEFAULT now(),"
    " relid oid NOT NULL,"
    " info jsonb NOT NULL);"
    " REVOKE ALL ON @s@.ddl_capture FROM PUBLIC;"
    " COMMENT ON TABLE @s@.ddl_capture IS 'walrev: column identities after each CREATE/ALTER TABLE, written by"
    " the DDL capture event trigger and read by walrev run from the WAL (docs/history-store.md)'";

/* @s@: the quoted schema, @p@: the publication's name as a literal. Compared with prosrc on later runs. */
static const char *ddl_capture_body_fmt =
    " DECLARE r record; q text; fills jsonb; fa record; nd bigint; fv text; BEGIN"
    /* the tables the command names, and the partitions of a partitioned one
     * (an ALTER of a parent changes them too, and is reported for the parent only) */
    " FOR r IN SELECT x.objid, pg_catalog.bool_or(x.created) AS created FROM ("
    "   SELECT d.objid, d.command_tag = 'CREATE TABLE' AS created FROM pg_catalog.pg_event_trigger_ddl_commands() d"
    "   WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.object_type IN ('table', 'table column')"
    "   UNION ALL"
    "   SELECT t.relid::pg_catalog.oid, false FROM pg_catalog.pg_event_trigger_ddl_commands() d,"
    "     pg_catalog.pg_partition_tree(d.objid) t"
    "   WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.object_type IN ('table', 'table column')"
    "     AND t.relid::pg_catalog.oid <> d.objid) x"
    "   GROUP BY x.objid LOOP"
    /* a rewrite that filled in defaults (walrev_capture_rewrite marked it):
     * a domain's default is no column default and no missing value, so what
     * the rows that were there now hold is read back from the table: one
     * value in all of them is what each holds; differing ones (a volatile
     * default) are not knowable */
    "   fills := NULL;"
    "   IF pg_catalog.current_setting('walrev.filled_' || r.objid::pg_catalog.text, true) = 'y' THEN"
    "     PERFORM pg_catalog.set_config('walrev.filled_' || r.objid::pg_catalog.text, '', true);"
    "     FOR fa IN SELECT a.attnum, a.attname FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t"
    "       ON t.oid = a.atttypid AND t.typtype = 'd' WHERE a.attrelid = r.objid AND a.attnum > 0"
    "       AND NOT a.attisdropped AND NOT a.atthasmissing AND NOT a.atthasdef AND a.attidentity = ''"
    "       AND a.attgenerated = '' LOOP"
    "       EXECUTE pg_catalog.format('SELECT count(DISTINCT v) + max((v IS NULL)::int), min(v) FROM"
    " (SELECT pg_catalog.format(''%%s'', %I) AS v FROM ONLY %s) x', fa.attname, r.objid::pg_catalog.regclass)"
    "         INTO nd, fv;"
    "       fills := coalesce(fills, '{}') || pg_catalog.jsonb_build_object(fa.attnum::pg_catalog.text,"
    "         CASE WHEN nd > 1 THEN '{\"varying\": true}'::pg_catalog.jsonb"
    "         ELSE pg_catalog.jsonb_build_object('v', fv) END);"
    "     END LOOP;"
    "   END IF;"
    "   INSERT INTO @s@.ddl_capture (relid, info)"
    "   SELECT c.oid, pg_catalog.jsonb_build_object('relid', c.oid::pg_catalog.int8,"
    "     'nspname', n.nspname, 'relname', c.relname, 'persistence', c.relpersistence, 'kind', c.relkind,"
    "     'replident', c.relreplident,"
    "     'attrs', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(a.attnum, a.attname,"
    "        a.atttypid::pg_catalog.int8, a.atttypmod,"
    "        CASE WHEN a.atttypid >= 10000 THEN (SELECT CASE WHEN tn.nspname = 'pg_catalog' THEN t.typname::text"
    "          ELSE tn.nspname || '.' || t.typname END FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace tn"
    "          ON tn.oid = t.typnamespace WHERE t.oid = a.atttypid) END,"
    "        a.attnum = ANY (coalesce((SELECT i.indkey::pg_catalog.int2[] FROM pg_catalog.pg_index i"
    "          WHERE i.indrelid = c.oid AND CASE c.relreplident WHEN 'd' THEN i.indisprimary"
    "          WHEN 'i' THEN i.indisreplident ELSE false END LIMIT 1), '{}')),"
    "        a.attnum = ANY (coalesce((SELECT i.indkey::pg_catalog.int2[] FROM pg_catalog.pg_index i"
    "          WHERE i.indrelid = c.oid AND i.indisprimary), '{}')),"
    "        a.attgenerated <> '',"
    /* what rows that predate an ADD COLUMN read: the catalog's missing value (a
     * non-volatile default, never in the WAL), or whether the column has a
     * default or identity the rewrite filled in (volatile: not knowable) */
    "        CASE WHEN a.atthasmissing THEN (a.attmissingval::text::text[])[1]"
    "          ELSE fills -> a.attnum::pg_catalog.text ->> 'v' END,"
    "        (a.atthasmissing IS NOT TRUE AND (a.atthasdef OR a.attidentity <> ''))"
    "          OR fills -> a.attnum::pg_catalog.text ? 'varying') ORDER BY a.attnum), '[]')"
    " FROM pg_catalog.pg_attribute a"
    "        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),"
    "     'timezone', pg_catalog.current_setting('TimeZone'),"
    "     'created', r.created,"
    "     'logged_now', c.relpersistence = 'p' AND"
    "        pg_catalog.current_setting('walrev.logged_' || c.oid::pg_catalog.text, true) = 'y',"
    "     'using', pg_catalog.current_query() ~* '\\yusing\\y',"
    "     'published', EXISTS (SELECT 1 FROM pg_catalog.pg_publication_tables pt WHERE pt.pubname = @p@"
    "        AND pt.schemaname = n.nspname AND pt.tablename = c.relname),"
    "     'columns', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(a.attnum, a.attname)"
    "        ORDER BY a.attnum), '[]') FROM pg_catalog.pg_attribute a"
    "        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),"
    "     'generated', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(a.attnum, a.attname,"
    "        pg_catalog.format_type(a.atttypid, a.atttypmod), pg_catalog.pg_get_expr(d.adbin, d.adrelid))"
    "        ORDER BY a.attnum), '[]') FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_attrdef d"
    "        ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
    "        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = 's'))"
    "   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    "   WHERE c.oid = r.objid AND c.relpersistence <> 't';"
    /* SET LOGGED (walrev_capture_rewrite marked it): the rows it has now, which
     * logical decoding never saw, one row each, in WAL order after the shape,
     * each value in its output function's text (format %s; a cast to text
     * is not that for every type: true::text is 'true', its output 't'):
     * the table's history begins here with them (docs/history-store.md) */
    "   IF pg_catalog.current_setting('walrev.logged_' || r.objid::pg_catalog.text, true) = 'y' THEN"
    "     PERFORM pg_catalog.set_config('walrev.logged_' || r.objid::pg_catalog.text, '', true);"
    "     SELECT pg_catalog.format('INSERT INTO @s@.ddl_capture (relid, info) SELECT %s, pg_catalog.jsonb_build_object("
    "''relid'', %s::pg_catalog.int8, ''logged_row'', pg_catalog.jsonb_build_array(%s)) FROM ONLY %I.%I',"
    "       c.oid, c.oid, pg_catalog.string_agg(pg_catalog.format("
    "'CASE WHEN pg_catalog.num_nulls(%1$I) = 1 THEN NULL ELSE pg_catalog.format(''%%s'', %1$I) END', a.attname), ', '"
    "       ORDER BY a.attnum), n.nspname, c.relname) INTO q"
    "     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    "     JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
    "       AND a.attgenerated = ''"
    "     WHERE c.oid = r.objid AND c.relpersistence = 'p' AND EXISTS (SELECT 1 FROM"
    "       pg_catalog.pg_publication_tables pt WHERE pt.pubname = @p@ AND pt.schemaname = n.nspname"
    "       AND pt.tablename = c.relname)"
    "     GROUP BY c.oid, n.nspname, c.relname;"
    /* the rows reach the worker through the WAL; the table need not keep them */
    "     IF q IS NOT NULL THEN EXECUTE q;"
    "       DELETE FROM @s@.ddl_capture WHERE relid = r.objid AND info ? 'logged_row'; END IF;"
    "   END IF;"
    " END LOOP; END ";

/* table_rewrite: marks, for the transaction, a table whose persistence
 * changes (SET LOGGED/UNLOGGED, reason 1) or whose rewrite fills in
 * defaults (reason 2), for capture_ddl at the command's end. */
static const char *ddl_rewrite_body =
    " BEGIN"
    " IF pg_catalog.pg_event_trigger_table_rewrite_reason() & 1 = 1 THEN"
    "   PERFORM pg_catalog.set_config('walrev.logged_' || pg_catalog.pg_event_trigger_table_rewrite_oid()::pg_catalog.text,"
    "     'y', true);"
    " END IF;"
    " IF pg_catalog.pg_event_trigger_table_rewrite_reason() & 2 = 2 THEN"
    "   PERFORM pg_catalog.set_config('walrev.filled_' || pg_catalog.pg_event_trigger_table_rewrite_oid()::pg_catalog.text,"
    "     'y', true);"
    " END IF; END ";

/* tmpl with every @s@ replaced by schema, @p@ by pub and @h@ by hist (each already quoted). */
static void append_with_schema(StrBuf *b, const char *tmpl, const char *schema, const char *pub, const char *hist)
{
    for (const char *p = tmpl; *p;) {
        const char *at = strstr(p, "@");
        size_t n = at ? (size_t)(at - p) : strlen(p);
        strbuf_append(b, p, n);
        if (!at) break;
        const char *with = strncmp(at, "@s@", 3) == 0 ? schema
                           : strncmp(at, "@p@", 3) == 0 ? pub
                           : strncmp(at, "@h@", 3) == 0 ? hist
                                                        : NULL;
        if (with) {
            strbuf_append_str(b, with);
            p = at + 3;
        } else {
            strbuf_append_char(b, '@');
            p = at + 1;
        }
    }
}

/* One of setup's SECURITY DEFINER event triggers on ddl_command_end. */
typedef struct {
    const char *trigger;  /* its name: walrev_capture_ddl */
    const char *function; /* <schema>.function(): capture_ddl */
    const char *tags;     /* the WHEN TAG IN list, quoted; NULL: none */
    const char *event;    /* NULL: ddl_command_end */
    const char *reading;  /* for an error: "reading the DDL capture function" */
    const char *doing;    /* for an error: "installing the DDL capture event trigger" */
    /* A table the function writes: it must exist too (<schema>.table), and
     * table_sql (with @s@) creates it before the function. NULL: none. */
    const char *table;
    const char *table_sql;
} EventTrigger;

typedef enum { TRIGGER_FAILED, TRIGGER_CURRENT, TRIGGER_NO_SUPERUSER, TRIGGER_INSTALLED } TriggerOutcome;

/*
 * Install t with body (rendered) unless the function's source, the enabled
 * trigger and the table are already as wanted. Without superuser nothing is
 * changed (TRIGGER_NO_SUPERUSER: the caller says what is lost). Replaces an
 * older version in place.
 */
static TriggerOutcome ensure_event_trigger(Setup *s, const EventTrigger *t, const char *schema, const char *body)
{
    StrBuf sql;
    strbuf_init(&sql);
    strbuf_appendf(&sql, "%s.%s()", schema, t->function);
    const char *p[] = {sql.data, t->trigger, s->cfg->history_schema, t->table ? t->table : ""};
    char *src = scalar(s, s->src, t->reading,
                       "SELECT coalesce((SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure($1) AND prosecdef), '')"
                       " || '|' || (SELECT count(*) FROM pg_event_trigger WHERE evtname = $2 AND evtenabled <> 'D')"
                       " || '|' || ($4 = '' OR to_regclass(format('%I.%I', $3::text, $4::text)) IS NOT NULL)",
                       4, p);
    TriggerOutcome out = TRIGGER_FAILED;
    if (src) {
        StrBuf want;
        strbuf_init(&want);
        strbuf_appendf(&want, "%s|1|true", body);
        if (strcmp(src, want.data) == 0) {
            out = TRIGGER_CURRENT;
        } else if (!s->superuser) {
            out = TRIGGER_NO_SUPERUSER;
        } else {
            strbuf_reset(&sql);
            if (t->table_sql) {
                strbuf_appendf(&sql, "CREATE SCHEMA IF NOT EXISTS %s; ", schema);
                append_with_schema(&sql, t->table_sql, schema, "", "");
                strbuf_append_str(&sql, "; ");
            }
            strbuf_appendf(&sql,
                           "CREATE OR REPLACE FUNCTION %s.%s() RETURNS event_trigger"
                           " LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp"
                           " AS $walrev$%s$walrev$;"
                           " REVOKE ALL ON FUNCTION %s.%s() FROM PUBLIC;"
                           " DROP EVENT TRIGGER IF EXISTS %s;"
                           " CREATE EVENT TRIGGER %s ON %s%s%s%s EXECUTE FUNCTION %s.%s()",
                           schema, t->function, body, schema, t->function, t->trigger, t->trigger,
                           t->event ? t->event : "ddl_command_end", t->tags ? " WHEN TAG IN (" : "",
                           t->tags ? t->tags : "", t->tags ? ")" : "", schema, t->function);
            if (exec_simple(s, s->src, t->doing, sql.data)) {
                out = TRIGGER_INSTALLED;
                s->changes++;
            }
        }
        strbuf_free(&want);
    }
    free(src);
    strbuf_free(&sql);
    return out;
}

static bool ensure_ddl_trigger(Setup *s)
{
    static const EventTrigger t = {
        .trigger = "walrev_capture_ddl",
        .function = "capture_ddl",
        .tags = "'CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO'",
        .reading = "reading the DDL capture function",
        .doing = "installing the DDL capture event trigger",
        .table = "ddl_capture",
        .table_sql = ddl_capture_table_fmt,
    };
    char *schema = ident(s->src, s->cfg->history_schema);
    StrBuf body;
    strbuf_init(&body);
    char *pub = PQescapeLiteral(s->src, s->cfg->publication, strlen(s->cfg->publication));
    append_with_schema(&body, ddl_capture_body_fmt, schema, pub, "");
    PQfreemem(pub);
    /* Replaces an older capture (logical messages, which any user can forge) in place. */
    TriggerOutcome out = ensure_event_trigger(s, &t, schema, body.data);
    if (out == TRIGGER_CURRENT)
        say("ok", "DDL capture event trigger and %s.ddl_capture exist (renames keep their history)",
            s->cfg->history_schema);
    else if (out == TRIGGER_NO_SUPERUSER)
        warn(s, "cannot install the DDL capture event trigger without superuser: a RENAME COLUMN will be "
                "recorded as a drop and an add, and generated columns are missing from snapshots (run walrev "
                "setup once as a superuser to fix)");
    else if (out == TRIGGER_INSTALLED)
        say("created", "DDL capture event trigger walrev_capture_ddl writing %s.ddl_capture (renames keep "
                       "their history)",
            s->cfg->history_schema);
    /* SET LOGGED: marks the table for the capture above (docs/history-store.md#values-changed-outside-the-wal) */
    static const EventTrigger rw = {
        .trigger = "walrev_capture_rewrite",
        .function = "capture_rewrite",
        .event = "table_rewrite",
        .reading = "reading the table rewrite capture function",
        .doing = "installing the table rewrite capture event trigger",
    };
    TriggerOutcome out2 = out == TRIGGER_FAILED ? TRIGGER_FAILED : ensure_event_trigger(s, &rw, schema, ddl_rewrite_body);
    if (out2 == TRIGGER_NO_SUPERUSER && out != TRIGGER_NO_SUPERUSER)
        warn(s, "cannot install the table rewrite event trigger without superuser: a table made LOGGED starts its "
                "history only with its baseline (run walrev setup once as a superuser to fix)");
    else if (out2 == TRIGGER_INSTALLED)
        say("created", "table rewrite event trigger walrev_capture_rewrite (a table made LOGGED starts its history "
                       "at the DDL)");
    strbuf_free(&body);
    free(schema);
    return out != TRIGGER_FAILED && out2 != TRIGGER_FAILED;
}

/* ---- the table log: tables' existence and partition membership over time ---- */

/*
 * schema/sql/table_log.sql on the source: the table_log table and the event
 * triggers that write it (docs/history-store.md#the-table-log). Reinstalled
 * when the rendered SQL differs from what the table's comment records, then
 * seeded with the partition trees that exist now. Needs a superuser (event
 * triggers); without one, an existing installation is kept and a missing
 * one is a warning: replay then knows no partitioned table and no table
 * that was never written.
 */
static bool ensure_table_log(Setup *s)
{
    char *sql = store_sql_render_table_log(s->cfg->history_schema, s->cfg->publication);
    char *schema = ident(s->src, s->cfg->history_schema);
    StrBuf name;
    strbuf_init(&name);
    strbuf_appendf(&name, "%s.table_log", schema);
    const char *p[] = {name.data, sql};
    char *state = scalar(s, s->src, "reading the table log's state",
                         "SELECT CASE WHEN to_regclass($1) IS NULL THEN 'missing'"
                         " WHEN obj_description(to_regclass($1), 'pg_class') = 'walrev table log ' || md5($2)"
                         " THEN 'current' ELSE 'old' END",
                         2, p);
    bool ok = state != NULL;
    if (!ok) goto out;
    if (strcmp(state, "current") == 0) {
        say("ok", "table log %s and its event triggers exist (partitions, tables never written)", name.data);
    } else if (!s->superuser) {
        warn(s, "cannot %s the table log %s without superuser (event triggers): partitioned tables and tables "
                "never written are unknown to replay (run walrev setup once as a superuser to fix)",
             strcmp(state, "missing") == 0 ? "install" : "update", name.data);
        goto out;
    } else {
        ok = exec_simple(s, s->src, "installing the table log", sql);
        if (ok) {
            /* COMMENT takes no expression: hash first, then mark the installed version */
            const char *pp[] = {sql};
            char *md5 = scalar(s, s->src, "hashing the table log's SQL", "SELECT md5($1)", 1, pp);
            ok = md5 != NULL;
            if (ok) {
                StrBuf c;
                strbuf_init(&c);
                strbuf_appendf(&c, "COMMENT ON TABLE %s IS 'walrev table log %s'", name.data, md5);
                ok = exec_simple(s, s->src, "marking the table log", c.data);
                strbuf_free(&c);
            }
            free(md5);
        }
        if (!ok) goto out;
        say("created", "table log %s and event triggers walrev_log_tables, walrev_log_drops", name.data);
        s->changes++;
    }
out:
    free(state);
    strbuf_free(&name);
    free(schema);
    free(sql);
    return ok;
}

static bool ensure_log_published(Setup *s, const char *table, const char *what);

/* The publication must carry the table log and the erasure log unless it is
 * FOR ALL TABLES (which does already); a schema publication leaves the
 * history schema out. Then the partition trees that exist now are logged. */
static bool ensure_table_log_published(Setup *s)
{
    return ensure_log_published(s, "erasure_log", "the erasure log") &&
           ensure_log_published(s, "table_log", "the table log");
}

static bool ensure_log_published(Setup *s, const char *table, const char *what)
{
    char *schema = ident(s->src, s->cfg->history_schema);
    StrBuf name;
    strbuf_init(&name);
    strbuf_appendf(&name, "%s.%s", schema, table);
    bool table_log = strcmp(table, "table_log") == 0;
    const char *p[] = {name.data, s->cfg->publication};
    char check[96], adding[96];
    snprintf(check, sizeof(check), "checking that the publication carries %s", what);
    snprintf(adding, sizeof(adding), "adding %s to the publication", what);
    char *state = scalar(s, s->src, check,
                         "SELECT CASE WHEN to_regclass($1) IS NULL THEN 'missing'"
                         " WHEN EXISTS (SELECT 1 FROM pg_publication_tables t WHERE t.pubname = $2"
                         "  AND format('%I.%I', t.schemaname, t.tablename)::regclass = to_regclass($1))"
                         " THEN 'published' ELSE 'unpublished' END",
                         2, p);
    bool ok = state != NULL;
    if (ok && strcmp(state, "unpublished") == 0) {
        char *pub = ident(s->src, s->cfg->publication);
        StrBuf sql;
        strbuf_init(&sql);
        strbuf_appendf(&sql, "ALTER PUBLICATION %s ADD TABLE %s", pub, name.data);
        ok = exec_simple(s, s->src, adding, sql.data);
        if (ok) {
            say("changed", "publication %s: added %s %s", s->cfg->publication, what, name.data);
            s->changes++;
        }
        strbuf_free(&sql);
        free(pub);
    }
    /* Seeded once the publication exists: the triggers log only what it covers.
     * Before the slot, so a new slot's baseline holds these rows. */
    if (ok && table_log && s->superuser && strcmp(state, "missing") != 0) {
        StrBuf q;
        strbuf_init(&q);
        strbuf_appendf(&q, "SELECT %s.log_seed()", schema);
        ok = exec_simple(s, s->src, "logging the partition trees that exist now", q.data);
        strbuf_free(&q);
    }
    free(state);
    strbuf_free(&name);
    free(schema);
    return ok;
}

/*
 * Schemas created after setup (issue 13.6): with a publication FOR TABLES IN
 * SCHEMA (setup's choice when the history shares the source database), an
 * event trigger adds each new schema to it in the CREATE SCHEMA's own
 * transaction, so its tables are tracked from their first row with no one
 * running setup again. SECURITY DEFINER: the superuser who ran setup may
 * alter the publication, the role creating the schema need not. A session
 * that sets walrev.publish_new_schema = off (snapshot --into does) is left
 * alone. Publications of other kinds cannot grow this way: `walrev run`
 * names each table it sees created outside them.
 */
static const char *schema_trigger_body_fmt =
    " DECLARE r record; BEGIN"
    " IF pg_catalog.current_setting('walrev.publish_new_schema', true) = 'off' THEN RETURN; END IF;"
    " IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_namespace pn JOIN pg_catalog.pg_publication p"
    "   ON p.oid = pn.pnpubid WHERE p.pubname = @p@) THEN RETURN; END IF;"
    " FOR r IN SELECT n.nspname FROM pg_catalog.pg_event_trigger_ddl_commands() d"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = d.objid"
    "   WHERE d.object_type = 'schema' AND n.nspname <> @h@ AND n.nspname !~ '^pg_' LOOP"
    "   EXECUTE pg_catalog.format('ALTER PUBLICATION %I ADD TABLES IN SCHEMA %I', @p@, r.nspname);"
    " END LOOP; END ";

static bool ensure_schema_trigger(Setup *s)
{
    const char *p1[] = {s->cfg->publication};
    char *v = scalar(s, s->src, "reading the publication's kind",
                     "SELECT EXISTS (SELECT 1 FROM pg_publication_namespace pn JOIN pg_publication p"
                     " ON p.oid = pn.pnpubid WHERE p.pubname = $1)",
                     1, p1);
    if (!v) return false;
    bool schemas = strcmp(v, "t") == 0;
    free(v);
    if (!schemas) return true; /* FOR ALL TABLES grows by itself; FOR TABLE does not: run warns */
    static const EventTrigger t = {
        .trigger = "walrev_publish_schema",
        .function = "publish_new_schema",
        .tags = "'CREATE SCHEMA'",
        .reading = "reading the schema trigger's function",
        .doing = "installing the event trigger for new schemas",
    };
    char *schema = ident(s->src, s->cfg->history_schema);
    char *pub = PQescapeLiteral(s->src, s->cfg->publication, strlen(s->cfg->publication));
    char *hist = PQescapeLiteral(s->src, s->cfg->history_schema, strlen(s->cfg->history_schema));
    StrBuf body;
    strbuf_init(&body);
    append_with_schema(&body, schema_trigger_body_fmt, schema, pub, hist);
    TriggerOutcome out = ensure_event_trigger(s, &t, schema, body.data);
    if (out == TRIGGER_CURRENT)
        say("ok", "event trigger walrev_publish_schema adds new schemas to publication %s", s->cfg->publication);
    else if (out == TRIGGER_NO_SUPERUSER)
        warn(s, "cannot install the event trigger that adds new schemas to publication %s without superuser: "
                "a schema created later is not tracked until walrev setup runs again (walrev run names its "
                "tables)",
             s->cfg->publication);
    else if (out == TRIGGER_INSTALLED)
        say("created", "event trigger walrev_publish_schema: new schemas join publication %s", s->cfg->publication);
    strbuf_free(&body);
    PQfreemem(pub);
    PQfreemem(hist);
    free(schema);
    return out != TRIGGER_FAILED;
}

/*
 * Unlogged tables (issue 13.7): logical decoding never sees their changes,
 * so no publication carries them. Named here, so no one waits for a history
 * that cannot come; ALTER TABLE ... SET LOGGED later starts one (the worker
 * takes its baseline once the publication has it).
 */
static bool report_unlogged(Setup *s)
{
    const char *p[] = {s->cfg->history_schema};
    PGresult *res = run(s, s->src, "listing unlogged tables",
                        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE c.relpersistence = 'u' AND c.relkind IN ('r', 'p') AND n.nspname <> $1"
                        " AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' ORDER BY 1",
                        1, p);
    if (!res) return false;
    for (int i = 0; i < PQntuples(res); i++)
        warn(s, "table %s is UNLOGGED: logical decoding cannot capture it, so walrev cannot track it "
                "(ALTER TABLE %s SET LOGGED starts its history with a baseline)",
             PQgetvalue(res, i, 0), PQgetvalue(res, i, 0));
    PQclear(res);
    return true;
}

/*
 * The capture table's rows must reach the slot: a publication FOR ALL
 * TABLES has it already; one FOR TABLES IN SCHEMA (which leaves the history
 * schema out) or FOR TABLE gets it added by name.
 */
static bool ensure_capture_published(Setup *s)
{
    const char *p[] = {s->cfg->history_schema, s->cfg->publication};
    char *v = scalar(s, s->src, "checking the DDL capture table's publication",
                     "SELECT CASE WHEN to_regclass(format('%I.ddl_capture', $1::text)) IS NULL THEN 'absent'"
                     " WHEN EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = $2 AND schemaname = $1"
                     " AND tablename = 'ddl_capture') THEN 'yes' ELSE 'no' END",
                     2, p);
    if (!v) return false;
    bool ok = true;
    if (strcmp(v, "no") == 0) {
        char *pub = ident(s->src, s->cfg->publication), *schema = ident(s->src, s->cfg->history_schema);
        StrBuf sql;
        strbuf_init(&sql);
        strbuf_appendf(&sql, "ALTER PUBLICATION %s ADD TABLE %s.ddl_capture", pub, schema);
        ok = exec_simple(s, s->src, "adding the DDL capture table to the publication", sql.data);
        if (ok) {
            say("changed", "publication %s: added %s.ddl_capture (walrev's DDL capture)", s->cfg->publication,
                s->cfg->history_schema);
            s->changes++;
        }
        strbuf_free(&sql);
        free(pub);
        free(schema);
    }
    free(v);
    return ok;
}

/* ---- the slot ---- */

/*
 * Create the logical slot without a baseline. With one, the slot is created
 * by the create_slot hook (pipeline_create_slot), whose exported snapshot the
 * baseline reads. Both go through the replication protocol, where the wait
 * for the transactions open now is bounded (stream.h).
 */
static bool create_slot(Setup *s, Lsn *consistent_point)
{
    WrError err = {0};
    ReplStream *repl = NULL;
    bool exists = false;
    WrStatus st = repl_stream_connect(s->cfg->source_conninfo, &repl, &err);
    if (st == WR_OK)
        st = repl_stream_create_slot(repl, s->cfg->slot_name, false, consistent_point, NULL, 0, &exists, &err);
    repl_stream_destroy(repl);
    if (st == WR_OK && exists) wr_error_set(&err, st = WR_FATAL, "replication slot %s appeared meanwhile",
                                            s->cfg->slot_name);
    if (st == WR_OK) return true;
    s->problems++;
    fprintf(stderr, "error: creating the replication slot: %s\n", err.msg);
    return false;
}

/*
 * Without a baseline the tables published now are marked 'skipped' in the
 * history's backfill table, so the worker does not take their baselines
 * after all; a table added to the publication later still gets its own.
 */
static bool record_skipped_baselines(Setup *s)
{
    if (!s->cfg->history_enabled) return true;
    const char *p[] = {s->cfg->publication, s->cfg->history_schema};
    PGresult *res = run(s, s->src, "listing the published tables",
                        "SELECT c.oid::text, n.nspname, c.relname FROM pg_publication_tables pt"
                        " JOIN pg_namespace n ON n.nspname = pt.schemaname"
                        " JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename"
                        " WHERE pt.pubname = $1 AND NOT (pt.schemaname = $2 AND pt.tablename = 'ddl_capture')",
                        2, p);
    if (!res) return false;
    char *schema = ident(s->hist, s->cfg->history_schema);
    StrBuf sql;
    strbuf_init(&sql);
    strbuf_appendf(&sql,
                   "INSERT INTO %s.backfill (relid, nspname, relname, state, finished_at)"
                   " VALUES ($1, $2, $3, 'skipped', now()) ON CONFLICT (relid) DO NOTHING",
                   schema);
    bool ok = true;
    for (int i = 0; i < PQntuples(res) && ok; i++) {
        const char *v[] = {PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2)};
        PGresult *r = run(s, s->hist, "recording that the published tables have no baseline", sql.data, 3, v);
        ok = r != NULL;
        PQclear(r);
    }
    if (ok && PQntuples(res) > 0)
        say("info", "%d table(s) without a baseline (--no-baseline); tables added later get one", PQntuples(res));
    strbuf_free(&sql);
    free(schema);
    PQclear(res);
    return ok;
}

static bool ensure_slot(Setup *s)
{
    if (s->opts->create_slot && !s->opts->no_baseline) {
        /* Also when the slot exists: a slot without a stored baseline is the
         * mark of an interrupted one, which the pipeline takes again. */
        bool created = false;
        if (s->opts->create_slot(s->opts->create_slot_arg, true, &created) != 0) {
            s->problems++;
            fprintf(stderr, "error: creating the slot %s and its baseline failed (see the log above)\n",
                    s->cfg->slot_name);
            return false;
        }
        if (created) {
            say("created", "replication slot %s with a baseline of the existing rows", s->cfg->slot_name);
            s->changes++;
        }
        return true;
    }
    /* --no-baseline with a slot made beforehand (a fresh store on an old
     * slot): the tables published now still have no baseline to take. */
    if (s->slot_exists) return record_skipped_baselines(s);
    Lsn at = 0;
    if (!create_slot(s, &at)) return false;
    say("created", "replication slot %s (pgoutput) at " LSN_FMT, s->cfg->slot_name, LSN_ARGS(at));
    s->changes++;
    return record_skipped_baselines(s);
}

/* ---- replica identity report ---- */

static bool report_replica_identity(Setup *s)
{
    /* walrev's own table log and DDL capture are published too; they are no tables of the user's */
    const char *p[] = {s->cfg->publication, s->cfg->history_schema};
    PGresult *res = run(s, s->src, "reading the published tables' replica identity",
                        "SELECT format('%I.%I', n.nspname, c.relname), c.relreplident,"
                        " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND"
                        " i.indisprimary), pg_has_role(c.relowner, 'USAGE')"
                        " FROM pg_publication_tables t"
                        " JOIN pg_namespace n ON n.nspname = t.schemaname"
                        " JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename"
                        " WHERE t.pubname = $1 AND NOT (t.schemaname = $2 AND t.tablename IN ('table_log', 'ddl_capture', 'erasure_log'))"
                        " ORDER BY 1",
                        2, p);
    if (!res) return false;
    int not_full = 0, broken = 0, altered = 0;
    bool ok = true;
    for (int i = 0; i < PQntuples(res) && ok; i++) {
        const char *name = PQgetvalue(res, i, 0);
        char ri = PQgetvalue(res, i, 1)[0];
        bool has_pk = PQgetvalue(res, i, 2)[0] == 't';
        if (ri == 'f') continue;
        if (s->opts->replica_identity_full) {
            char sql[512];
            snprintf(sql, sizeof(sql), "ALTER TABLE %s REPLICA IDENTITY FULL", name);
            ok = exec_simple(s, s->src, "setting REPLICA IDENTITY FULL", sql);
            if (ok) {
                say("changed", "%s: REPLICA IDENTITY FULL", name);
                altered++;
            }
            continue;
        }
        not_full++;
        if (ri == 'n' || (ri == 'd' && !has_pk)) {
            warn(s,
                 "%s has %s and no primary key: UPDATE and DELETE on it fail on the source once "
                 "it is published; add a primary key or run ALTER TABLE %s REPLICA IDENTITY FULL "
                 "(or walrev setup --replica-identity-full)",
                 name, ri == 'n' ? "REPLICA IDENTITY NOTHING" : "REPLICA IDENTITY DEFAULT", name);
            broken++;
        }
    }
    if (altered) s->changes++;
    if (not_full > broken)
        say("info",
            "%d published table(s) use a key (primary key or replica identity index), not FULL; walrev does not "
            "need FULL (old values come from the history store)",
            not_full - broken);
    say("ok", "%d table(s) published", PQntuples(res));
    PQclear(res);
    return ok;
}

/* ---- the command ---- */

int setup_command(const SetupConfig *cfg, const SetupOptions *opts)
{
    Setup s = {.cfg = cfg, .opts = opts};
    int rc = 1;

    char *red = pgio_redact_conninfo(cfg->source_conninfo);
    say("source", "%s", red);
    free(red);
    if (cfg->history_enabled) {
        red = pgio_redact_conninfo(cfg->history_conninfo);
        say("history", "%s (schema %s)", red, cfg->history_schema);
        free(red);
    } else {
        say("history", "disabled");
    }

    s.src = connect_db(&s, "source", cfg->source_conninfo, false);
    if (!s.src) goto out;
    if (cfg->history_enabled) {
        if (strcmp(cfg->history_conninfo, cfg->source_conninfo) == 0)
            s.hist = s.src;
        else if (!(s.hist = connect_db(&s, "history", cfg->history_conninfo, false)))
            goto out;
    }

    check_server(&s);
    check_role(&s);
    if (s.problems == 0) {
        /* What walrev run will do: prove it works now rather than at first start. */
        PGconn *repl = connect_db(&s, "source", cfg->source_conninfo, true);
        if (repl) {
            PGresult *res = run(&s, repl, "IDENTIFY_SYSTEM on a replication connection",
                                "IDENTIFY_SYSTEM", 0, NULL);
            if (res) say("ok", "replication connection works");
            PQclear(res);
            PQfinish(repl);
        }
    }
    decide_same_db(&s);
    check_history(&s);
    check_publication(&s);

    if (s.problems > 0) {
        fprintf(stderr, "walrev setup: %d problem(s) found; nothing was changed\n", s.problems);
        goto out;
    }
    if (opts->check_only) {
        printf("checks passed; nothing was changed (--check)\n");
        rc = 0;
        goto out;
    }

    if (cfg->history_enabled && !ensure_history(&s)) goto failed;
    if (!ensure_context_functions(&s)) goto failed;
    if (!ensure_ddl_trigger(&s)) goto failed;
    if (!ensure_table_log(&s)) goto failed;
    /* The publication must exist before the slot: pgoutput looks publications
     * up as of each change's position, so one created later is not seen. */
    if (!ensure_publication(&s)) goto failed;
    if (!ensure_table_log_published(&s)) goto failed;
    if (!ensure_capture_published(&s)) goto failed;
    if (!ensure_schema_trigger(&s)) goto failed;
    if (!ensure_slot(&s)) goto failed;
    if (!report_replica_identity(&s)) goto failed;
    if (!report_unlogged(&s)) goto failed;

    if (s.changes == 0)
        printf("nothing to change: walrev is already set up (%d warning(s))\n", s.warnings);
    else
        printf("setup complete: %d change(s), %d warning(s)\n", s.changes, s.warnings);
    rc = 0;
    goto out;

failed:
    fprintf(stderr, "walrev setup: stopped after %d change(s); run it again once fixed\n",
            s.changes);
out:
    fflush(stdout);
    if (s.hist && s.hist != s.src) PQfinish(s.hist);
    if (s.src) PQfinish(s.src);
    return rc;
}
