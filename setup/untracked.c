/*
 * untracked.c — what `walrev run` says about tables it cannot track
 * (setup.h): unlogged tables (logical decoding never sees their changes) and
 * tables outside a publication that cannot grow. Each is named in a warning
 * in the log, never silently skipped; nothing here stops the worker.
 */
#include "setup/setup.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "pgio/pgio.h"
#include "schema/store_sql.h"

const char untracked_unlogged_sql[] = "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
                                      "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                      "WHERE c.relpersistence = 'u' AND c.relkind IN ('r', 'p') AND n.nspname <> $1 "
                                      "AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' ORDER BY 1";

static void warn_unlogged(const char *qualified)
{
    log_warn("msg=\"table %s is unlogged: logical decoding cannot see its changes, so walrev cannot track it "
             "(ALTER TABLE %s SET LOGGED starts its history with a baseline)\" table=%s",
             qualified, qualified, qualified);
}

/* The partitioned tables and partitions a publication WITH
 * (publish_via_partition_root = true) publishes through their root: the table
 * log records them 'unpublished' (via_root), replay refuses them by name. */
static void warn_via_root(const char *publication, const char *what)
{
    char *qp = store_quote_ident(publication);
    log_warn("msg=\"%s: publication %s is WITH (publish_via_partition_root = true), so changes of partitions "
             "arrive under their partitioned root, which walrev does not record; replay refuses these tables by "
             "name (ALTER PUBLICATION %s SET (publish_via_partition_root = false) brings them back with their "
             "rows)\" publication=%s",
             what, publication, qp, publication);
    free(qp);
}

/* history_schema's revision_pN, revision_context_pN or object_delta_pN */
static bool is_store_partition(const char *history_schema, const char *nsp, const char *rel)
{
    static const char *const tables[] = {"revision_context_p", "revision_p", "object_delta_p"};
    if (!history_schema || strcmp(nsp, history_schema) != 0) return false;
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        size_t n = strlen(tables[i]);
        if (strncmp(rel, tables[i], n) == 0 && rel[n] != '\0' && strspn(rel + n, "0123456789") == strlen(rel + n))
            return true;
    }
    return false;
}

void untracked_report_captured(const char *publication, const char *history_schema, const char *info, size_t len)
{
    json_error_t jerr;
    json_t *o = json_loadb(info, len, 0, &jerr);
    const char *nsp = json_string_value(json_object_get(o, "nspname"));
    const char *rel = json_string_value(json_object_get(o, "relname"));
    const char *persistence = json_string_value(json_object_get(o, "persistence"));
    const char *kind = json_string_value(json_object_get(o, "kind"));
    json_t *published = json_object_get(o, "published");
    if (nsp && rel && persistence && kind && strcmp(kind, "r") == 0 && !is_store_partition(history_schema, nsp, rel)) {
        /* quoted as SQL, as the unlogged list's format('%I.%I'): the advice is
         * SQL to paste, and "My Schema".t unquoted is not */
        char *qn = store_quote_ident(nsp), *qr = store_quote_ident(rel), *qp = store_quote_ident(publication);
        char qualified[600];
        snprintf(qualified, sizeof(qualified), "%s.%s", qn, qr);
        if (strcmp(persistence, "u") == 0) {
            warn_unlogged(qualified);
        } else if (strcmp(persistence, "p") == 0 && json_is_false(published) &&
                   json_is_true(json_object_get(o, "via_root"))) { /* listed under its root only */
            char what[700];
            snprintf(what, sizeof(what), "partition %s is not tracked", qualified);
            warn_via_root(publication, what);
        } else if (strcmp(persistence, "p") == 0 && json_is_false(published) &&
                   !json_is_true(json_object_get(o, "into_schema"))) { /* --into's copies are not to be tracked */
            log_warn("msg=\"table %s is not in publication %s: walrev does not track it (add it with ALTER "
                     "PUBLICATION %s ADD TABLE %s, or list it in [source] tables and run walrev setup)\" table=%s",
                     qualified, publication, qp, qualified, qualified);
        }
        free(qn);
        free(qr);
        free(qp);
    }
    json_decref(o);
}

void untracked_report_source(const char *conninfo, const char *publication, const char *history_schema)
{
    PgioConnect how = {.what = "source (unlogged tables)", .app_name = "walrev", .bounded = true};
    PGconn *c;
    WrError err = {0};
    if (pgio_connect(conninfo, &how, &c, &err) != WR_OK) {
        log_warn("msg=\"cannot list unlogged tables\" error=\"%s\"", err.msg);
        return;
    }
    const char *p[1] = {history_schema};
    PGresult *r = NULL;
    if (pgio_run(c, untracked_unlogged_sql, 1, p, &r, &err, "listing unlogged tables") == WR_OK)
        for (int i = 0; i < PQntuples(r); i++) warn_unlogged(PQgetvalue(r, i, 0));
    else
        log_warn("msg=\"cannot list unlogged tables\" error=\"%s\"", err.msg);
    PQclear(r);
    r = NULL;
    const char *pp[1] = {publication};
    if (pgio_run(c, "SELECT pubviaroot FROM pg_catalog.pg_publication WHERE pubname = $1", 1, pp, &r, &err,
                 "reading the publication's publish_via_partition_root") == WR_OK) {
        if (PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't')
            warn_via_root(publication, "partitioned tables and their partitions are not tracked");
    } else {
        log_warn("msg=\"cannot read the publication\" error=\"%s\"", err.msg);
    }
    PQclear(r);
    PQfinish(c);
}
