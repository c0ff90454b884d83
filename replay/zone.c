/*
 * zone.c — values that print by the session's TimeZone (a timestamptz, and
 * an array, range, multirange, domain or composite holding one): which
 * recorded types they are, and their stored text printed again by the
 * history server in its session's zone, as a COPY or SELECT in the reader's
 * environment prints them (issue 13). The walsender printed them in the
 * worker's zone. Reads the catalog and casts; never writes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay/internal.h"

/* A text[] literal of items[0..n-1] (NULL items as dflt; dflt NULL: as NULL), appended to b. */
static void append_text_array(StrBuf *b, char *const *items, int n, const char *dflt)
{
    strbuf_append_char(b, '{');
    for (int i = 0; i < n; i++) {
        const char *item = items[i] ? items[i] : dflt;
        strbuf_append_str(b, i ? "," : "");
        if (!item) {
            strbuf_append_str(b, "NULL");
            continue;
        }
        strbuf_append_quoted(b, item, '"');
    }
    strbuf_append_char(b, '}');
}

char **rq_column_types(PGconn *conn, const char *store, const RelVersion *rv, WrError *err)
{
    char **types = xcalloc((size_t)rv->ncols + 1, sizeof(char *));
    if (rv->ncols == 0) return types;
    /* one round trip for the table: oids, typmods and recorded names as arrays */
    StrBuf oids, mods, names;
    strbuf_init(&oids);
    strbuf_init(&mods);
    strbuf_init(&names);
    strbuf_append_char(&oids, '{');
    strbuf_append_char(&mods, '{');
    for (int i = 0; i < rv->ncols; i++) {
        strbuf_appendf(&oids, "%s%u", i ? "," : "", rv->type_oids[i]);
        strbuf_appendf(&mods, "%s%d", i ? "," : "", (int)rv->typmods[i]);
    }
    strbuf_append_char(&oids, '}');
    strbuf_append_char(&mods, '}');
    append_text_array(&names, rv->type_names, rv->ncols, "text");
    char relid[16];
    snprintf(relid, sizeof(relid), "%u", rv->relid);
    const char *params[6] = {oids.data, mods.data, names.data, relid, rv->nspname, rv->relname};
    /* the source's database: a table under the relid the history knows it by */
    char *store_here =
        store ? xasprintf(" OR EXISTS (SELECT 1 FROM %s.relation_version v JOIN pg_class r ON r.oid = v.relid"
                          " JOIN pg_namespace s ON s.oid = r.relnamespace"
                          " WHERE r.relname = v.relname AND s.nspname = v.nspname)",
                          store)
              : xstrdup("");
    char *sql = xasprintf(
        "SELECT CASE WHEN (c.o < 10000 OR h.here) AND coalesce(format_type(c.o, c.m), '-') NOT LIKE '?\?\?%%' AND"
        " coalesce(format_type(c.o, c.m), '-') <> '-' THEN format_type(c.o, c.m)"
        " WHEN to_regtype(c.name) IS NOT NULL THEN format_type(to_regtype(c.name), c.m) ELSE 'text' END"
        " FROM unnest($1::oid[], $2::int[], $3::text[]) WITH ORDINALITY AS c(o, m, name, n),"
        " (SELECT EXISTS (SELECT 1 FROM pg_class r JOIN pg_namespace s ON s.oid = r.relnamespace"
        " WHERE r.oid = $4::oid AND r.relname = $6 AND s.nspname = $5)%s AS here) h ORDER BY c.n",
        store_here);
    PGresult *res = rq_exec(conn, err, sql, 6, params);
    free(sql);
    free(store_here);
    strbuf_free(&oids);
    strbuf_free(&mods);
    strbuf_free(&names);
    if (!res) {
        rq_free_strv(types, rv->ncols);
        return NULL;
    }
    for (int i = 0; i < rv->ncols; i++)
        types[i] = xstrdup(i >= PQntuples(res) || PQgetisnull(res, i, 0) ? "text" : PQgetvalue(res, i, 0));
    PQclear(res);
    return types;
}

WrStatus rq_zoned_types(PGconn *conn, int n, char *const *types, char ***render, WrError *err)
{
    *render = xcalloc((size_t)n + 1, sizeof(char *));
    if (n == 0) return WR_OK;
    /* one round trip for them all: the types as a text[] literal */
    StrBuf arr;
    strbuf_init(&arr);
    append_text_array(&arr, types, n, "text");
    const char *params[1] = {arr.data};
    PGresult *res =
        rq_exec(conn, err,
                "SELECT (WITH RECURSIVE t(oid) AS (SELECT pg_catalog.to_regtype(c.name)::pg_catalog.oid"
                " UNION SELECT x.oid FROM t JOIN pg_catalog.pg_type ty ON ty.oid = t.oid"
                " LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = ty.oid"
                " LEFT JOIN pg_catalog.pg_range m ON m.rngmultitypid = ty.oid"
                " CROSS JOIN LATERAL pg_catalog.unnest(ARRAY[ty.typelem, ty.typbasetype, r.rngsubtype, m.rngtypid]"
                " || ARRAY(SELECT a.atttypid FROM pg_catalog.pg_attribute a WHERE a.attrelid = ty.typrelid"
                " AND a.attnum > 0 AND NOT a.attisdropped)) AS x(oid) WHERE x.oid IS NOT NULL AND x.oid <> 0),"
                " b(oid, typtype, base) AS (SELECT ty.oid, ty.typtype, ty.typbasetype FROM pg_catalog.pg_type ty"
                " WHERE ty.oid = pg_catalog.to_regtype(c.name)"
                " UNION ALL SELECT ty.oid, ty.typtype, ty.typbasetype FROM b JOIN pg_catalog.pg_type ty"
                " ON ty.oid = b.base WHERE b.typtype = 'd')"
                " SELECT CASE WHEN EXISTS (SELECT 1 FROM t WHERE t.oid = 'pg_catalog.timestamptz'::pg_catalog.regtype)"
                " THEN (SELECT pg_catalog.format_type(coalesce(e.typarray, b.oid), NULL) FROM b"
                " JOIN pg_catalog.pg_type bt ON bt.oid = b.oid"
                /* an array's element through its base type too (stamp[] as timestamptz[]) */
                " LEFT JOIN LATERAL (WITH RECURSIVE eb(oid, typtype, base) AS (SELECT ty.oid, ty.typtype,"
                " ty.typbasetype FROM pg_catalog.pg_type ty WHERE ty.oid = bt.typelem"
                " UNION ALL SELECT ty.oid, ty.typtype, ty.typbasetype FROM eb JOIN pg_catalog.pg_type ty"
                " ON ty.oid = eb.base WHERE eb.typtype = 'd')"
                " SELECT et.typarray FROM eb JOIN pg_catalog.pg_type et ON et.oid = eb.oid WHERE eb.typtype <> 'd'"
                " AND et.typarray <> 0 AND et.typsubscript <> 'pg_catalog.array_subscript_handler'::pg_catalog.regproc)"
                " e ON bt.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc"
                " WHERE b.typtype <> 'd') END)"
                " FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS c(name, n) ORDER BY c.n",
                1, params);
    strbuf_free(&arr);
    if (!res) {
        rq_free_strv(*render, n);
        *render = NULL;
        return err->status;
    }
    /* a domain's typmod is its base's: the stored text already has its precision */
    for (int i = 0; i < n && i < PQntuples(res); i++)
        if (!PQgetisnull(res, i, 0)) (*render)[i] = xstrdup(PQgetvalue(res, i, 0));
    PQclear(res);
    return WR_OK;
}

/*
 * vals[0..n) printed through the type of query q (one statement, under a
 * savepoint) into out[i]. *refused: the type refused one of them (rolled
 * back to the savepoint; out untouched); only a lost connection is an error.
 */
static WrStatus try_print(PGconn *conn, const char *q, char *const *vals, int n, char **out, bool *refused,
                          WrError *err)
{
    *refused = false;
    if (rq_run(conn, err, "SAVEPOINT walrev_zone", 0, NULL) != WR_OK) return err->status;
    StrBuf arr;
    strbuf_init(&arr);
    append_text_array(&arr, vals, n, NULL);
    const char *params[1] = {arr.data};
    WrError refusal;
    PGresult *res = rq_exec(conn, &refusal, q, 1, params);
    strbuf_free(&arr);
    if (!res || PQntuples(res) != n) {
        PQclear(res);
        *refused = true;
        return rq_run(conn, err, "ROLLBACK TO SAVEPOINT walrev_zone", 0, NULL);
    }
    for (int i = 0; i < n; i++) out[i] = PQgetisnull(res, i, 0) ? NULL : xstrdup(PQgetvalue(res, i, 0));
    PQclear(res);
    return rq_run(conn, err, "RELEASE SAVEPOINT walrev_zone", 0, NULL);
}

/* The values of cells[0..n) (one render type) printed again into out[i]; NULL: left as recorded. */
static WrStatus print_again(PGconn *conn, const PGresult *in, const ZoneCell *cells, int n, char **out, WrError *err)
{
    char *q = xasprintf("SELECT (u.x::%s)::pg_catalog.text FROM pg_catalog.unnest($1::pg_catalog.text[]) "
                        "WITH ORDINALITY AS u(x, n) ORDER BY u.n",
                        cells[0].render);
    char **vals = xcalloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++) vals[i] = PQgetvalue(in, cells[i].row, cells[i].col);
    bool refused = false;
    WrStatus st = try_print(conn, q, vals, n, out, &refused, err);
    /* a value the type refuses (an old value a retype restated, text of the type before) keeps its
     * recorded text; the others are printed again, each alone */
    for (int i = 0; i < n && st == WR_OK && refused && n > 1; i++) {
        bool one = false;
        st = try_print(conn, q, vals + i, 1, out + i, &one, err);
    }
    free(vals);
    free(q);
    return st;
}

static int cell_cmp(const void *a, const void *b)
{
    const ZoneCell *x = a, *y = b;
    int c = strcmp(x->render, y->render);
    if (c) return c;
    return x->row != y->row ? (x->row < y->row ? -1 : 1) : (x->col > y->col) - (x->col < y->col);
}

/* libpq's result builders return false or NULL when out of memory: abort with a message, as x* do */
static void result_oom(void)
{
    fprintf(stderr, "walrev: out of memory building a result\n");
    abort();
}

/* A copy of in without its last `hidden` columns, with the values of cellv[row * nf + col] where set. */
static PGresult *result_with(const PGresult *in, int hidden, char *const *cellv)
{
    int nrows = PQntuples(in), nf = PQnfields(in) - hidden;
    PGresult *out = PQcopyResult(in, 0);
    if (!out) result_oom();
    PGresAttDesc *attrs = xcalloc((size_t)nf + 1, sizeof(PGresAttDesc));
    for (int c = 0; c < nf; c++) {
        attrs[c].name = PQfname(in, c);
        attrs[c].tableid = PQftable(in, c);
        attrs[c].columnid = PQftablecol(in, c);
        attrs[c].format = PQfformat(in, c);
        attrs[c].typid = PQftype(in, c);
        attrs[c].typlen = PQfsize(in, c);
        attrs[c].atttypmod = PQfmod(in, c);
    }
    if (!PQsetResultAttrs(out, nf, attrs)) result_oom();
    free(attrs);
    for (int r = 0; r < nrows; r++)
        for (int c = 0; c < nf; c++) {
            char *v = cellv[(size_t)r * (size_t)nf + (size_t)c];
            bool null = !v && PQgetisnull(in, r, c);
            if (!v && !null) v = PQgetvalue(in, r, c);
            if (!PQsetvalue(out, r, c, null ? NULL : v, null ? -1 : (int)strlen(v))) result_oom();
        }
    return out;
}

WrStatus rq_rezone_cells(PGconn *conn, PGresult **res, ZoneCell *cells, int ncells, int hidden, WrError *err)
{
    PGresult *in = *res;
    int nrows = PQntuples(in), nf = PQnfields(in) - hidden, n = 0;
    /* NULL and an erased value's <erased> (never a value of these types) stay */
    for (int i = 0; i < ncells; i++)
        if (!PQgetisnull(in, cells[i].row, cells[i].col) && strcmp(PQgetvalue(in, cells[i].row, cells[i].col),
                                                                   "<erased>") != 0)
            cells[n++] = cells[i];
    qsort(cells, (size_t)n, sizeof(ZoneCell), cell_cmp);
    char **text = xcalloc((size_t)n + 1, sizeof(char *));
    WrStatus st = WR_OK;
    for (int i = 0, j; i < n && st == WR_OK; i = j) {
        for (j = i; j < n && strcmp(cells[j].render, cells[i].render) == 0; j++) {}
        st = print_again(conn, in, cells + i, j - i, text + i, err);
    }
    if (st == WR_OK) {
        char **cellv = xcalloc((size_t)nrows * (size_t)nf + 1, sizeof(char *));
        for (int i = 0; i < n; i++) cellv[(size_t)cells[i].row * (size_t)nf + (size_t)cells[i].col] = text[i];
        *res = result_with(in, hidden, cellv);
        PQclear(in);
        free(cellv);
    }
    rq_free_strv(text, n);
    return st;
}
