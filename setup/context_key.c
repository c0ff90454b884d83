/*
 * context_key.c — what the worker reads at start of what setup made on the
 * source (setup.h): the key for walrev.context()'s signatures
 * (setup_read_context_key) and whether the DDL capture event trigger is on
 * (setup_read_ddl_capture_on). Reads only; logs nothing.
 */
#include "setup/setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pgio/pgio.h"
#include "schema/store_sql.h"

/* One value of a one-row query on a bounded connection; *out is "" for no row or NULL. Caller frees. */
static WrStatus query_value(const char *conninfo, const char *what, const char *sql, const char *param, char **out,
                            WrError *err)
{
    *out = NULL;
    PGconn *c;
    PgioConnect how = {.what = what, .app_name = "walrev", .bounded = true};
    WrStatus st = pgio_connect(conninfo, &how, &c, err);
    if (st != WR_OK) return st;
    PGresult *r;
    const char *params[1] = {param};
    st = pgio_run(c, sql, 1, params, &r, err, what);
    if (st == WR_OK) {
        *out = xstrdup(PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "");
        PQclear(r);
    }
    PQfinish(c);
    return st;
}

WrStatus setup_read_context_key(const char *conninfo, const char *history_schema, uint8_t pads[128], bool *found,
                                WrError *err)
{
    *found = false;
    char *schema = store_quote_ident(history_schema);
    StrBuf name, q;
    strbuf_init(&name);
    strbuf_init(&q);
    strbuf_appendf(&name, "%s.context_key", schema);
    strbuf_appendf(&q,
                   "SELECT CASE WHEN has_table_privilege(to_regclass($1), 'SELECT') THEN "
                   "(SELECT encode(ipad || opad, 'hex') FROM %s.context_key LIMIT 1) END",
                   schema);
    char *v = NULL;
    WrStatus st = query_value(conninfo, "source: reading the context attestation key",
                              "SELECT to_regclass($1) IS NOT NULL", name.data, &v, err);
    if (st == WR_OK && strcmp(v, "t") == 0) {
        free(v);
        v = NULL;
        st = query_value(conninfo, "source: reading the context attestation key", q.data, name.data, &v, err);
        if (st == WR_OK && strlen(v) == 2 * 128) {
            for (size_t i = 0; i < 128; i++) sscanf(v + 2 * i, "%2hhx", &pads[i]);
            *found = true;
        }
    }
    free(v);
    free(schema);
    strbuf_free(&name);
    strbuf_free(&q);
    return st;
}

WrStatus setup_read_ddl_capture_on(const char *conninfo, bool *on, bool *index_drops_on, WrError *err)
{
    *on = false;
    *index_drops_on = false;
    char *v = NULL;
    /* the drop capture reports a replica identity index's DROP INDEX since
     * its function names dropped indexes (an older setup's does not) */
    WrStatus st = query_value(conninfo, "source: looking for the DDL capture event trigger",
                              "SELECT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = $1 AND evtenabled <> 'D')"
                              " || '|' || EXISTS (SELECT 1 FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid"
                              " WHERE e.evtname = 'walrev_capture_drop' AND e.evtenabled <> 'D'"
                              " AND p.prosrc LIKE '%o.object_type = ''index''%')",
                              "walrev_capture_ddl", &v, err);
    if (st == WR_OK) {
        *on = strncmp(v, "true|", 5) == 0;
        *index_drops_on = *on && strcmp(v + strlen(v) - 5, "|true") == 0;
    }
    free(v);
    return st;
}
