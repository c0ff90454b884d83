/*
 * publication.c — setup's checks of the server and the role, where the
 * history lives, and the publication: what it selects (FOR ALL TABLES, FOR
 * TABLES IN SCHEMA, FOR TABLE), checked against the configuration, then
 * created or extended; never narrowed or dropped.
 */
#include "setup/steps.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/store_sql.h"

/* ---- checks ---- */

static int setting_int(Setup *s, const char *name)
{
    const char *p[] = {name};
    char *v =
        setup_scalar(s, s->src, "reading a server setting", "SELECT setting FROM pg_settings WHERE name = $1", 1, p);
    int out = v ? atoi(v) : -1;
    free(v);
    return out;
}

void setup_check_server(Setup *s)
{
    int version = PQserverVersion(s->src);
    if (version < 150000)
        setup_problem(s, "upgrade the source to PostgreSQL 15 or later",
                      "the source runs PostgreSQL %d.%d; walrev needs 15 or later", version / 10000, version % 10000);

    char *wal_level = setup_scalar(s, s->src, "reading wal_level", "SHOW wal_level", 0, NULL);
    if (wal_level && strcmp(wal_level, "logical") != 0)
        setup_problem(s,
                      "set wal_level = logical in postgresql.conf (or ALTER SYSTEM SET wal_level = "
                      "logical) and restart PostgreSQL",
                      "wal_level is '%s' on the source; walrev reads the WAL by logical decoding, which "
                      "needs wal_level = logical",
                      wal_level);
    else if (wal_level)
        setup_say("ok", "wal_level = logical");
    free(wal_level);

    int senders = setting_int(s, "max_wal_senders");
    if (senders == 0)
        setup_problem(s, "set max_wal_senders = 10 (or more) in postgresql.conf and restart PostgreSQL",
                      "max_wal_senders is 0 on the source; walrev run needs one WAL sender");
    else if (senders > 0)
        setup_say("ok", "max_wal_senders = %d", senders);

    const char *p[] = {s->cfg->slot_name};
    PGresult *res = setup_run(s, s->src, "reading replication slots",
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
            setup_problem(s, "choose another slot name ([source] slot, --slot) or drop the slot",
                          "replication slot %s exists but is a %s slot with plugin '%s'; walrev needs a "
                          "logical slot with plugin pgoutput",
                          s->cfg->slot_name, type, plugin);
        else if (strcmp(db, cur) != 0)
            setup_problem(s, "choose another slot name ([source] slot, --slot)",
                          "replication slot %s exists but belongs to database %s, not %s", s->cfg->slot_name, db, cur);
        else if (strcmp(walst, "lost") == 0)
            setup_problem(s,
                          "drop it with SELECT pg_drop_replication_slot('<slot>') and run walrev setup "
                          "again; the history will have a gap from the slot's last position, and raising "
                          "max_slot_wal_keep_size prevents a repeat",
                          "replication slot %s was invalidated (wal_status = lost): the WAL it needed is "
                          "gone",
                          s->cfg->slot_name);
        else
            setup_say("ok", "replication slot %s exists (pgoutput, database %s)", s->cfg->slot_name, db);
    } else if (max == 0) {
        setup_problem(s, "set max_replication_slots = 10 (or more) in postgresql.conf and restart",
                      "max_replication_slots is 0 on the source; walrev needs one logical slot");
    } else if (used >= max) {
        setup_problem(s,
                      "raise max_replication_slots in postgresql.conf and restart PostgreSQL, or drop an "
                      "unused slot with SELECT pg_drop_replication_slot(name)",
                      "all %d replication slots of the source are in use (max_replication_slots = %d)", used, max);
    } else {
        setup_say("ok", "replication slots: %d of %d in use", used, max);
    }
    PQclear(res);
}

void setup_check_role(Setup *s)
{
    PGresult *res = setup_run(s, s->src, "reading the role",
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
        char *q = setup_ident(s->src, user);
        snprintf(fix, sizeof(fix), "as a superuser: ALTER ROLE %s REPLICATION;", q);
        free(q);
        setup_problem(s, fix,
                      "role %s has neither REPLICATION nor SUPERUSER; reading a replication slot needs "
                      "REPLICATION",
                      user);
    } else {
        setup_say("ok", "role %s may replicate (%s)", user, s->superuser ? "superuser" : "REPLICATION");
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
void setup_decide_same_db(Setup *s)
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
    char *a = setup_scalar(s, s->src, "identifying the source database", sql, 0, NULL);
    char *b = setup_scalar(s, s->hist, "identifying the history database", sql, 0, NULL);
    s->same_db = a && b && strcmp(a, b) == 0;
    free(a);
    free(b);
}

void setup_check_history(Setup *s)
{
    if (!s->cfg->history_enabled) return;
    const char *p[] = {s->cfg->history_schema};
    PGresult *res = setup_run(s, s->hist, "checking the history database",
                              "SELECT to_regnamespace($1) IS NOT NULL,"
                              " has_database_privilege(current_database(), 'CREATE'), current_database()",
                              1, p);
    if (!res) return;
    const char *db = PQgetvalue(res, 0, 2);
    if (PQgetvalue(res, 0, 0)[0] != 't' && PQgetvalue(res, 0, 1)[0] != 't') {
        char fix[300];
        char *q = setup_ident(s->hist, db);
        snprintf(fix, sizeof(fix), "GRANT CREATE ON DATABASE %s TO <this role>; or run setup as the database owner", q);
        free(q);
        setup_problem(s, fix, "creating the history schema %s needs CREATE on database %s", s->cfg->history_schema, db);
    } else {
        setup_say("ok", "history database %s%s", db, s->same_db ? " (the source database)" : "");
    }
    PQclear(res);
}

static void check_tables(Setup *s)
{
    for (int i = 0; i < s->cfg->ntables; i++) {
        const char *p[] = {s->cfg->tables[i], s->cfg->history_schema};
        PGresult *res = setup_run(s, s->src, "looking up a table of [source] tables",
                                  "SELECT n.nspname, c.relname, c.relkind,"
                                  " pg_has_role(c.relowner, 'USAGE'), n.nspname = $2"
                                  " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                                  " WHERE c.oid = to_regclass($1)",
                                  2, p);
        if (!res) continue;
        if (PQntuples(res) == 0) {
            setup_problem(s,
                          "create it or correct [source] tables (names follow SQL: unquoted names are "
                          "folded to lower case)",
                          "table %s listed in [source] tables does not exist in the source database",
                          s->cfg->tables[i]);
        } else if (strchr("rp", PQgetvalue(res, 0, 2)[0]) == NULL) {
            setup_problem(s, "list only ordinary or partitioned tables",
                          "%s.%s listed in [source] tables is not a table", PQgetvalue(res, 0, 0),
                          PQgetvalue(res, 0, 1));
        } else if (PQgetvalue(res, 0, 4)[0] == 't' && s->same_db) {
            setup_problem(s, "remove it from [source] tables",
                          "%s.%s is one of walrev's own history tables; tracking it would record "
                          "walrev's own writes forever",
                          PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
        } else if (!s->pub_exists && !s->superuser && PQgetvalue(res, 0, 3)[0] != 't') {
            setup_problem(s, "run walrev setup as the table's owner or a superuser",
                          "adding %s.%s to a publication needs ownership of the table", PQgetvalue(res, 0, 0),
                          PQgetvalue(res, 0, 1));
        }
        PQclear(res);
    }
}

/* A row filter or a column list sends part of a table's changes: a history
 * built from them would answer rows the table does not have. Each such table
 * is a problem, named (replay refuses a table that gets one later: the table
 * log records it 'unpublished'). */
static void check_partial_tables(Setup *s)
{
    const char *p[] = {s->cfg->publication};
    PGresult *res = setup_run(s, s->src, "reading the publication's row filters and column lists",
                              "SELECT format('%I.%I', n.nspname, c.relname), pr.prqual IS NOT NULL"
                              " FROM pg_publication_rel pr JOIN pg_publication pb ON pb.oid = pr.prpubid"
                              " JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
                              " WHERE pb.pubname = $1 AND (pr.prqual IS NOT NULL OR pr.prattrs IS NOT NULL)"
                              " ORDER BY 1",
                              1, p);
    if (!res) return;
    for (int i = 0; i < PQntuples(res); i++) {
        bool filter = PQgetvalue(res, i, 1)[0] == 't';
        char fix[400];
        snprintf(fix, sizeof(fix), "ALTER PUBLICATION %s SET TABLE ... listing %s without %s", s->cfg->publication,
                 PQgetvalue(res, i, 0), filter ? "its WHERE clause" : "a column list");
        setup_problem(s, fix, "%s is published with a %s: walrev would see part of its changes", PQgetvalue(res, i, 0),
                      filter ? "row filter" : "column list");
    }
    PQclear(res);
}

void setup_check_publication(Setup *s)
{
    s->mode = s->cfg->ntables > 0 ? PUB_TABLES : s->same_db ? PUB_SCHEMAS : PUB_ALL_TABLES;
    const char *p[] = {s->cfg->publication, s->cfg->history_schema};
    PGresult *res =
        setup_run(s, s->src, "reading the publication",
                  "SELECT p.puballtables, p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate,"
                  " EXISTS (SELECT 1 FROM pg_publication_namespace pn JOIN pg_namespace n"
                  "         ON n.oid = pn.pnnspid WHERE pn.pnpubid = p.oid AND n.nspname = $2)"
                  " OR EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_class c"
                  "         ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
                  "         WHERE pr.prpubid = p.oid AND n.nspname = $2 AND c.relname NOT IN " SETUP_OWN_TABLES_SQL ")"
                  ", p.pubviaroot"
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
            setup_problem(s, fix,
                          "publication %s publishes walrev's own history tables (schema %s, same "
                          "database): walrev would record its own writes forever",
                          s->cfg->publication, s->cfg->history_schema);
        } else {
            setup_say("ok", "publication %s exists%s", s->cfg->publication, all ? " (FOR ALL TABLES)" : "");
        }
        /* With publish_via_partition_root a partition's changes arrive under
         * its root's relid, which walrev does not take apart: every partition
         * would be recorded empty, silently. The option is the user's to
         * change, not walrev's. */
        if (PQgetvalue(res, 0, 6)[0] == 't') {
            char fix[300];
            char *pub = setup_ident(s->src, s->cfg->publication);
            snprintf(fix, sizeof(fix), "ALTER PUBLICATION %s SET (publish_via_partition_root = false); then run walrev setup again",
                     pub);
            free(pub);
            setup_problem(s, fix,
                          "publication %s is WITH (publish_via_partition_root = true): changes of partitions would "
                          "arrive under their partitioned root, which walrev does not record",
                          s->cfg->publication);
        }
        static const char *ops[] = {"insert", "update", "delete", "truncate"};
        char fix[300];
        snprintf(fix, sizeof(fix), "ALTER PUBLICATION %s SET (publish = 'insert, update, delete, truncate')",
                 s->cfg->publication);
        for (int i = 0; i < 4; i++)
            if (PQgetvalue(res, 0, 1 + i)[0] != 't')
                setup_problem(s, fix,
                              "publication %s does not publish %s: the history would miss them and answer rows "
                              "the tables do not have",
                              s->cfg->publication, ops[i]);
        check_partial_tables(s);
    } else {
        PGresult *priv = setup_run(s, s->src, "checking CREATE on the source database",
                                   "SELECT has_database_privilege(current_database(), 'CREATE')", 0, NULL);
        if (priv && PQgetvalue(priv, 0, 0)[0] != 't') {
            char fix[300];
            char *db = setup_ident(s->src, PQdb(s->src));
            snprintf(fix, sizeof(fix),
                     "GRANT CREATE ON DATABASE %s TO <this role>; or run setup "
                     "as the database owner",
                     db);
            free(db);
            setup_problem(s, fix, "creating publication %s needs CREATE on database %s", s->cfg->publication,
                          PQdb(s->src));
        }
        PQclear(priv);
        if (s->mode != PUB_TABLES && !s->superuser)
            setup_problem(s,
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
static const char *user_schemas_sql = "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('information_schema', $1)"
                                      " AND nspname !~ '^pg_'" NOT_INTO_SCHEMA " ORDER BY nspname";

static void append_schema_list(Setup *s, PGresult *res, StrBuf *sql)
{
    for (int i = 0; i < PQntuples(res); i++) {
        char *q = setup_ident(s->src, PQgetvalue(res, i, 0));
        strbuf_appendf(sql, "%s%s", i ? ", " : "", q);
        free(q);
    }
}

bool setup_ensure_publication(Setup *s)
{
    char *pub = setup_ident(s->src, s->cfg->publication);
    StrBuf sql;
    strbuf_init(&sql);
    bool ok = true;
    PGresult *res = NULL;

    if (!s->pub_exists) {
        /* setup adds walrev's own tables itself, each named (add_own_tables
         * leaves a CREATE PUBLICATION in this transaction alone) */
        strbuf_append_str(&sql, "SELECT pg_catalog.set_config('walrev.setup_publication', 'on', true); ");
        strbuf_appendf(&sql, "CREATE PUBLICATION %s ", pub);
        if (s->mode == PUB_ALL_TABLES) {
            strbuf_append_str(&sql, "FOR ALL TABLES");
        } else if (s->mode == PUB_SCHEMAS) {
            const char *p[] = {s->cfg->history_schema};
            res = setup_run(s, s->src, "listing schemas", user_schemas_sql, 1, p);
            if (!res) goto fail;
            if (PQntuples(res) == 0) {
                setup_problem(s, "create a schema with the tables to track",
                              "the source database has no schema to publish besides %s", s->cfg->history_schema);
                goto fail;
            }
            strbuf_append_str(&sql, "FOR TABLES IN SCHEMA ");
            append_schema_list(s, res, &sql);
        } else {
            strbuf_append_str(&sql, "FOR TABLE ");
            for (int i = 0; i < s->cfg->ntables; i++) {
                const char *p[] = {s->cfg->tables[i]};
                PQclear(res);
                res = setup_run(s, s->src, "resolving a table", "SELECT to_regclass($1)::oid::regclass::text", 1, p);
                if (!res) goto fail;
                strbuf_appendf(&sql, "%s%s", i ? ", " : "", PQgetvalue(res, 0, 0));
            }
        }
        PQclear(res);
        res = setup_run(s, s->src, "creating the publication", sql.data, 0, NULL);
        if (!res) goto fail;
        setup_say("created", "publication %s %s", s->cfg->publication, mode_text(s->mode));
        s->changes++;
        goto done;
    }

    /* The publication exists: add what the configuration names and it lacks. */
    if (s->mode == PUB_SCHEMAS) {
        const char *p[] = {s->cfg->history_schema, s->cfg->publication};
        res = setup_run(s, s->src, "listing schemas missing from the publication",
                        "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('information_schema', $1)"
                        " AND nspname !~ '^pg_'" NOT_INTO_SCHEMA
                        " AND NOT EXISTS (SELECT 1 FROM pg_publication_namespace pn"
                        "  JOIN pg_publication pb ON pb.oid = pn.pnpubid"
                        "  WHERE pb.pubname = $2 AND pn.pnnspid = pg_namespace.oid)"
                        " AND EXISTS (SELECT 1 FROM pg_publication_namespace pn"
                        "  JOIN pg_publication pb ON pb.oid = pn.pnpubid WHERE pb.pubname = $2)"
                        " ORDER BY nspname",
                        2, p);
        if (!res) goto fail;
        if (PQntuples(res) > 0) {
            if (!s->superuser) {
                setup_problem(s, "run walrev setup as a superuser to add them",
                              "publication %s lacks %d new schema(s); adding a schema needs a superuser",
                              s->cfg->publication, PQntuples(res));
                goto fail;
            }
            strbuf_appendf(&sql, "ALTER PUBLICATION %s ADD TABLES IN SCHEMA ", pub);
            append_schema_list(s, res, &sql);
            PQclear(res);
            res = setup_run(s, s->src, "adding schemas to the publication", sql.data, 0, NULL);
            if (!res) goto fail;
            setup_say("changed", "publication %s: added new schema(s)", s->cfg->publication);
            s->changes++;
        }
    } else if (s->mode == PUB_TABLES && !s->pub_all) {
        for (int i = 0; i < s->cfg->ntables; i++) {
            const char *p[] = {s->cfg->tables[i], s->cfg->publication};
            PQclear(res);
            res = setup_run(s, s->src, "checking the publication's tables",
                            "SELECT to_regclass($1)::regclass::text, EXISTS (SELECT 1 FROM"
                            " pg_publication_tables t WHERE t.pubname = $2 AND"
                            " format('%I.%I', t.schemaname, t.tablename)::regclass = to_regclass($1))",
                            2, p);
            if (!res) goto fail;
            if (PQgetvalue(res, 0, 1)[0] == 't') continue;
            strbuf_reset(&sql);
            strbuf_appendf(&sql, "ALTER PUBLICATION %s ADD TABLE %s", pub, PQgetvalue(res, 0, 0));
            PGresult *r2 = setup_run(s, s->src, "adding a table to the publication", sql.data, 0, NULL);
            if (!r2) goto fail;
            PQclear(r2);
            setup_say("changed", "publication %s: added table %s", s->cfg->publication, PQgetvalue(res, 0, 0));
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
