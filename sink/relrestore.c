/*
 * relrestore.c — history_reader_load_relations (history_reader.h): at
 * start-up, the relation versions the history store holds are handed to the
 * assembler, so the server's re-sent Relation messages are recognised as
 * unchanged and column identities (renames, drops) carry on exactly across
 * every restart. The rows come back as one JSON object
 * each; every number that PostgreSQL's JSON would render as a string (oid,
 * oid[]) is cast to bigint in the query first, and every field is checked
 * for its JSON type, because a relid read as 0 once reloaded every table's
 * columns under the wrong identities (issue 13.1).
 */
#include "sink/history_reader.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "pgio/pgio.h"
#include "schema/relcache.h"
#include "schema/store_sql.h"

typedef struct {
    json_t *o;
    const char *bad; /* the first field that did not read back */
} Row;

static json_int_t get_int(Row *r, json_t *v, const char *field, json_int_t min, json_int_t max)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        if (!r->bad) r->bad = field;
        return 0;
    }
    return json_integer_value(v);
}

/* A string, or NULL when JSON null and nullable. Borrowed from the row. */
static const char *get_str(Row *r, json_t *v, const char *field, bool nullable)
{
    if (json_is_string(v)) return json_string_value(v);
    if (!(nullable && json_is_null(v)) && !r->bad) r->bad = field;
    return NULL;
}

static json_t *get_array(Row *r, const char *field, size_t n)
{
    json_t *a = json_object_get(r->o, field);
    if (!json_is_array(a) || json_array_size(a) != n) {
        if (!r->bad) r->bad = field;
        return NULL;
    }
    return a;
}

static char *dup_or_empty(const char *s) { return xstrdup(s ? s : ""); }

/* The array field name whose length counts the columns (or generated columns) into *out;
 * the count, 0 with r->bad when it is no array or longer than a uint16_t. */
static uint16_t count_array(Row *r, const char *name, json_t **out)
{
    json_t *a = json_object_get(r->o, name);
    size_t n = json_is_array(a) ? json_array_size(a) : 0;
    if (!json_is_array(a) || n > UINT16_MAX) r->bad = r->bad ? r->bad : name;
    *out = a;
    return (uint16_t)(n > UINT16_MAX ? 0 : n);
}

/* One row into rv (which the caller frees with free_version); r->bad names a field that did not read back. */
static void read_version(Row *r, RelationVersion *rv, int16_t *max_col_id)
{
    json_t *o = r->o;
    rv->relid = (uint32_t)get_int(r, json_object_get(o, "relid"), "relid", 1, UINT32_MAX);
    rv->version = (int32_t)get_int(r, json_object_get(o, "version"), "version", 1, INT32_MAX);
    rv->nspname = dup_or_empty(get_str(r, json_object_get(o, "nspname"), "nspname", false));
    rv->relname = dup_or_empty(get_str(r, json_object_get(o, "relname"), "relname", false));
    const char *ri = get_str(r, json_object_get(o, "replident"), "replident", false);
    if (ri && strlen(ri) == 1 && strchr("dnfi", ri[0]))
        rv->replident = ri[0];
    else if (!r->bad)
        r->bad = "replident";
    const char *vf = get_str(r, json_object_get(o, "valid_from"), "valid_from", false);
    if (vf && !lsn_parse(vf, &rv->valid_from) && !r->bad) r->bad = "valid_from";
    rv->revision_id = (int64_t)get_int(r, json_object_get(o, "revision_id"), "revision_id", 0, INT64_MAX);
    *max_col_id = (int16_t)get_int(r, json_object_get(o, "max_col_id"), "max_col_id", 1, INT16_MAX);

    json_t *ids;
    rv->ncols = count_array(r, "col_ids", &ids);
    rv->cols = xcalloc((size_t)rv->ncols + 1, sizeof(RelColumn));
    json_t *names = get_array(r, "col_names", rv->ncols), *oids = get_array(r, "col_type_oids", rv->ncols),
           *typmods = get_array(r, "col_typmods", rv->ncols), *tnames = get_array(r, "col_type_names", rv->ncols),
           *keys = get_array(r, "col_is_key", rv->ncols), *track = get_array(r, "col_track", rv->ncols);
    for (uint16_t i = 0; i < rv->ncols && !r->bad; i++) {
        RelColumn *c = &rv->cols[i];
        c->col_id = (int16_t)get_int(r, json_array_get(ids, i), "col_ids", 1, INT16_MAX);
        c->name = dup_or_empty(get_str(r, json_array_get(names, i), "col_names", false));
        c->type_oid = (uint32_t)get_int(r, json_array_get(oids, i), "col_type_oids", 1, UINT32_MAX);
        c->typmod = (int32_t)get_int(r, json_array_get(typmods, i), "col_typmods", INT32_MIN, INT32_MAX);
        const char *tn = get_str(r, json_array_get(tnames, i), "col_type_names", true);
        c->type_name = tn && *tn ? xstrdup(tn) : NULL;
        json_t *k = json_array_get(keys, i);
        if (!json_is_boolean(k) && !r->bad) r->bad = "col_is_key";
        c->is_key = json_is_true(k);
        const char *t = get_str(r, json_array_get(track, i), "col_track", false);
        c->track = t && t[0] == 'h' ? TRACK_HIDDEN : t && t[0] == 'u' ? TRACK_UNTRACKED : TRACK_FULL;
        if (t && (strlen(t) != 1 || !strchr("fhu", t[0])) && !r->bad) r->bad = "col_track";
    }

    json_t *gnames;
    rv->ngen = count_array(r, "gen_names", &gnames);
    rv->gen = xcalloc((size_t)rv->ngen + 1, sizeof(GenColumn));
    json_t *gtypes = get_array(r, "gen_type_names", rv->ngen), *gpos = get_array(r, "gen_positions", rv->ngen),
           *gexprs = get_array(r, "gen_exprs", rv->ngen);
    for (uint16_t i = 0; i < rv->ngen && !r->bad; i++) {
        GenColumn *g = &rv->gen[i];
        g->name = dup_or_empty(get_str(r, json_array_get(gnames, i), "gen_names", false));
        g->type_name = dup_or_empty(get_str(r, json_array_get(gtypes, i), "gen_type_names", false));
        g->position = (int16_t)get_int(r, json_array_get(gpos, i), "gen_positions", 0, INT16_MAX);
        g->expr = dup_or_empty(get_str(r, json_array_get(gexprs, i), "gen_exprs", false));
    }
}

WrStatus history_reader_load_relations(const char *conninfo, const char *schema,
                                       void (*restore)(void *arg, const RelationVersion *rv, int16_t max_col_id),
                                       void *arg, WrError *err)
{
    PGconn *conn = NULL;
    PGresult *res = NULL;
    StrBuf sql;
    strbuf_init(&sql);
    PgioConnect how = {.what = "history store", .app_name = "walrev-history", .bounded = true};
    WrStatus st = pgio_connect(conninfo, &how, &conn, err);
    if (st != WR_OK) goto done;
    char *qs = store_quote_ident(schema);
    /* oid and oid[] are cast to bigint: json_build_object renders oids as strings. */
    strbuf_appendf(&sql,
                   "SELECT rv.relid, rv.version, json_build_object('relid', rv.relid::bigint, 'version', rv.version, "
                   "'nspname', rv.nspname, 'relname', rv.relname, 'replident', rv.replident::text, "
                   "'valid_from', rv.valid_from::text, 'revision_id', coalesce(rv.covered_by, 0), "
                   "'col_ids', rv.col_ids, 'col_names', rv.col_names, 'col_type_oids', rv.col_type_oids::bigint[], "
                   "'col_typmods', rv.col_typmods, 'col_type_names', rv.col_type_names, 'col_is_key', rv.col_is_key, "
                   "'col_track', rv.col_track::text[], 'gen_names', coalesce(rv.gen_names, '{}'), "
                   "'gen_type_names', coalesce(rv.gen_type_names, '{}'), "
                   "'gen_positions', coalesce(rv.gen_positions, '{}'), 'gen_exprs', coalesce(rv.gen_exprs, '{}'), "
                   "'max_col_id', (SELECT coalesce(max(x), 1) FROM %s.relation_version r2, unnest(r2.col_ids) x "
                   "WHERE r2.relid = rv.relid))::text "
                   "FROM (SELECT DISTINCT ON (relid) * FROM %s.relation_version ORDER BY relid, version DESC) rv",
                   qs, qs);
    free(qs);
    st = pgio_run(conn, sql.data, 0, NULL, &res, err, "history store: reading relation versions");
    if (st != WR_OK) goto done;
    for (int i = 0; i < PQntuples(res) && st == WR_OK; i++) {
        json_error_t jerr;
        Row r = {json_loads(PQgetvalue(res, i, 2), 0, &jerr), NULL};
        RelationVersion rv;
        memset(&rv, 0, sizeof(rv));
        int16_t max_col_id = 0;
        if (!r.o)
            r.bad = "the row";
        else
            read_version(&r, &rv, &max_col_id);
        if (r.bad)
            st = wr_error_set(err, WR_FATAL,
                              "history store: relation version %s of relid %s does not read back (%s); "
                              "refusing to guess a table's columns",
                              PQgetvalue(res, i, 1), PQgetvalue(res, i, 0), r.bad);
        else
            restore(arg, &rv, max_col_id);
        relation_version_term(&rv);
        json_decref(r.o);
    }
done:
    strbuf_free(&sql);
    PQclear(res);
    PQfinish(conn);
    return st;
}
