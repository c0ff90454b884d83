/*
 * branch.c — `walrev branch create|list|drop` and what diff, merge and
 * review share (branch.h): the history store's `branch` record, the shape of
 * a live main table, and its rows three ways (as of the fork from the
 * history, live on main, live on a branch). A branch's copy is loaded from
 * the same history rows that later serve as the merge base, so the two agree
 * by construction. The copy is made in a published schema: every change on
 * it is captured as a revision like any other. Never touches a slot.
 */
#include "replay/branch.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "pgio/pgio.h"

/* ------------------------------------------------------------------ records */

void branch_info_term(BranchInfo *b)
{
    if (!b) return;
    free(b->name);
    free(b->schema);
    free(b->fork_lsn);
    free(b->created_at);
    free(b->created_by);
    for (int i = 0; i < b->ntables; i++) {
        free(b->tables[i].main_name);
        free(b->tables[i].branch_table);
    }
    free(b->tables);
    memset(b, 0, sizeof(*b));
}

const BranchTable *branch_table_for(const BranchInfo *b, uint32_t relid)
{
    for (int i = 0; i < b->ntables; i++)
        if (b->tables[i].relid == relid) return &b->tables[i];
    return NULL;
}

static WrStatus info_from_row(const PGresult *res, int r, BranchInfo *b, WrError *err)
{
    memset(b, 0, sizeof(*b));
    b->name = xstrdup(PQgetvalue(res, r, 0));
    b->schema = xstrdup(PQgetvalue(res, r, 1));
    b->fork_rev = strtoll(PQgetvalue(res, r, 2), NULL, 10);
    b->fork_lsn = xstrdup(PQgetvalue(res, r, 3));
    b->created_at = xstrdup(PQgetvalue(res, r, 4));
    b->created_by = xstrdup(PQgetvalue(res, r, 5));
    json_error_t je;
    json_t *a = json_loads(PQgetvalue(res, r, 6), 0, &je);
    if (!a || !json_is_array(a)) {
        json_decref(a);
        return wr_error_set(err, WR_FATAL, "branch %s: its tables are not a JSON array", b->name);
    }
    b->ntables = (int)json_array_size(a);
    b->tables = xcalloc((size_t)b->ntables + 1, sizeof(BranchTable));
    for (int i = 0; i < b->ntables; i++) {
        json_t *t = json_array_get(a, (size_t)i);
        b->tables[i].relid = (uint32_t)json_integer_value(json_object_get(t, "relid"));
        b->tables[i].main_name =
            xstrdup(json_is_string(json_object_get(t, "table")) ? json_string_value(json_object_get(t, "table")) : "?");
        b->tables[i].branch_table = xstrdup(json_is_string(json_object_get(t, "branch_table"))
                                                ? json_string_value(json_object_get(t, "branch_table"))
                                                : "?");
    }
    json_decref(a);
    return WR_OK;
}

#define BRANCH_COLUMNS "name, schema_name, fork_revision, fork_lsn, created_at, created_by, tables"

WrStatus branch_load(ReplayCtx *ctx, const char *name, BranchInfo *b, WrError *err)
{
    memset(b, 0, sizeof(*b));
    bool have = false;
    if (rq_has_table(ctx, "branch", &have, err) != WR_OK) return err->status;
    if (!have) return wr_error_set(err, WR_INVALID, "no branch %s: no branch was ever created here", name);
    char *sql = xasprintf("SELECT " BRANCH_COLUMNS " FROM %s.branch WHERE name = $1", ctx->schema_q);
    const char *params[1] = {name};
    PGresult *res = rq_exec(ctx->hist, err, sql, 1, params);
    free(sql);
    if (!res) return err->status;
    WrStatus st = PQntuples(res) == 1 ? info_from_row(res, 0, b, err)
                                      : wr_error_set(err, WR_INVALID, "no branch %s (see `walrev branch list`)", name);
    PQclear(res);
    return st;
}

WrStatus branch_connect_source(ReplayCtx *ctx, PGconn **src, WrError *err)
{
    const char *ci = ctx->source_conninfo ? ctx->source_conninfo : ctx->hist_conninfo;
    return rq_connect(ci, "the source database", src, err);
}

WrStatus branch_connect_history_rw(ReplayCtx *ctx, PGconn **conn, WrError *err)
{
    WrStatus st = rq_connect(ctx->hist_conninfo, "history store", conn, err);
    if (st != WR_OK) return st;
    /* IF NOT EXISTS: a store set up before branches existed gets them on first use */
    PGresult *res = rq_execf(*conn, err,
                             "SET search_path = pg_catalog; "
                             "CREATE TABLE IF NOT EXISTS %1$s.branch ("
                             " name text PRIMARY KEY, schema_name text NOT NULL UNIQUE,"
                             " fork_revision bigint NOT NULL, fork_lsn pg_lsn NOT NULL,"
                             " created_at timestamptz NOT NULL DEFAULT now(), created_by text NOT NULL,"
                             " tables jsonb NOT NULL); "
                             "CREATE TABLE IF NOT EXISTS %1$s.branch_approval ("
                             " branch text NOT NULL REFERENCES %1$s.branch (name) ON DELETE CASCADE,"
                             " actor_type text NOT NULL, actor_id text NOT NULL,"
                             " head_revision bigint NOT NULL, approved_at timestamptz NOT NULL DEFAULT now(),"
                             " comment text, PRIMARY KEY (branch, actor_type, actor_id))",
                             ctx->schema_q);
    if (!res) {
        PQfinish(*conn);
        *conn = NULL;
        return wr_error_prefix(err, "history store: creating the branch tables");
    }
    PQclear(res);
    return WR_OK;
}

char *branch_qname(PGconn *conn, const BranchInfo *b, const BranchTable *bt)
{
    char *s = rq_quote_ident(conn, b->schema);
    char *t = rq_quote_ident(conn, bt->branch_table);
    char *q = xasprintf("%s.%s", s, t);
    free(s);
    free(t);
    return q;
}

/* ------------------------------------------------------------------ rows */

void browset_term(BRowSet *s, int ncols)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        free(s->rows[i].key);
        rq_free_strv(s->rows[i].vals, ncols);
    }
    free(s->rows);
    memset(s, 0, sizeof(*s));
}

static int row_cmp(const void *a, const void *b) { return strcmp(((const BRow *)a)->key, ((const BRow *)b)->key); }

const BRow *browset_find(const BRowSet *s, const char *key)
{
    /* a binary search by hand: bsearch's probe would need a non-const key */
    int lo = 0, hi = s->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(s->rows[mid].key, key);
        if (c == 0) return &s->rows[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

void btable_shape_term(BTableShape *t)
{
    if (!t) return;
    free(t->display);
    free(t->qname);
    rq_free_strv(t->cols, t->ncols);
    rq_free_strv(t->types, t->ncols);
    free(t->is_key);
    memset(t, 0, sizeof(*t));
}

WrStatus btable_shape_load(ReplayCtx *ctx, PGconn *src, uint32_t relid, BTableShape *t, WrError *err)
{
    memset(t, 0, sizeof(*t));
    t->relid = relid;
    char oid[16];
    rq_oid_text(relid, oid);
    const char *params[1] = {oid};
    PGresult *res =
        rq_exec(src, err,
                "SELECT n.nspname || '.' || c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname) "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.oid = $1::oid AND c.relkind = 'r'",
                1, params);
    if (!res) return err->status;
    if (PQntuples(res) != 1) {
        PQclear(res);
        (void)ctx;
        return wr_error_set(err, WR_INVALID, "tracked table %u is not a table of the source database now", relid);
    }
    t->display = xstrdup(PQgetvalue(res, 0, 0));
    t->qname = xstrdup(PQgetvalue(res, 0, 1));
    PQclear(res);
    res = rq_exec(src, err,
                  "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
                  "  coalesce(a.attnum = ANY (i.indkey), false) "
                  "FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
                  "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' "
                  "ORDER BY a.attnum",
                  1, params);
    if (!res) return err->status;
    t->ncols = PQntuples(res);
    t->cols = xcalloc((size_t)t->ncols + 1, sizeof(char *));
    t->types = xcalloc((size_t)t->ncols + 1, sizeof(char *));
    t->is_key = xcalloc((size_t)t->ncols + 1, sizeof(bool));
    for (int i = 0; i < t->ncols; i++) {
        t->cols[i] = xstrdup(PQgetvalue(res, i, 0));
        t->types[i] = xstrdup(PQgetvalue(res, i, 1));
        t->is_key[i] = PQgetvalue(res, i, 2)[0] == 't';
        if (t->is_key[i]) t->nkey++;
    }
    PQclear(res);
    if (t->nkey == 0)
        return wr_error_set(err, WR_INVALID,
                            "table %s has no primary key: a branch matches rows by their primary key, so it "
                            "cannot branch or merge this table (leave it out with --table, or add a key)",
                            t->display);
    return WR_OK;
}

/* The key of a row: its key columns' text as a JSON array, as the history writes keys. */
static char *row_key(const BTableShape *t, char *const *vals)
{
    StrBuf b;
    strbuf_init(&b);
    strbuf_append_char(&b, '[');
    for (int i = 0, k = 0; i < t->ncols; i++) {
        if (!t->is_key[i]) continue;
        if (k++) strbuf_append_char(&b, ',');
        if (vals[i])
            strbuf_append_json_string(&b, vals[i], strlen(vals[i]));
        else
            strbuf_append_str(&b, "null");
    }
    strbuf_append_char(&b, ']');
    return b.data;
}

static void rows_from_result(const BTableShape *t, const PGresult *res, BRowSet *s)
{
    s->n = PQntuples(res);
    s->rows = xcalloc((size_t)s->n + 1, sizeof(BRow));
    for (int r = 0; r < s->n; r++) {
        char **vals = xcalloc((size_t)t->ncols + 1, sizeof(char *));
        for (int c = 0; c < t->ncols; c++) vals[c] = PQgetisnull(res, r, c) ? NULL : xstrdup(PQgetvalue(res, r, c));
        s->rows[r].vals = vals;
        s->rows[r].key = row_key(t, vals);
    }
    qsort(s->rows, (size_t)s->n, sizeof(BRow), row_cmp);
}

WrStatus browset_load_live(PGconn *src, const BTableShape *t, const char *qname, BRowSet *s, WrError *err)
{
    memset(s, 0, sizeof(*s));
    StrBuf b;
    strbuf_init(&b);
    strbuf_append_str(&b, "SELECT ");
    for (int i = 0; i < t->ncols; i++) {
        char *id = rq_quote_ident(src, t->cols[i]);
        strbuf_appendf(&b, "%s%s", i ? ", " : "", id);
        free(id);
    }
    if (t->ncols == 0) strbuf_append_str(&b, "NULL");
    strbuf_appendf(&b, " FROM %s", qname);
    PGresult *res = rq_exec(src, err, b.data, 0, NULL);
    strbuf_free(&b);
    if (!res) return wr_error_prefix(err, "reading %s", qname);
    rows_from_result(t, res, s);
    PQclear(res);
    return WR_OK;
}

WrStatus browset_load_base(ReplayCtx *ctx, const BTableShape *t, int64_t rev, BRowSet *s, WrError *err)
{
    memset(s, 0, sizeof(*s));
    RelVersion rv;
    bool found;
    if (rq_relation_at(ctx, t->relid, rev, &rv, &found, err) != WR_OK) return err->status;
    if (!found) {
        relversion_term(&rv);
        return WR_OK; /* not there yet at rev: no rows */
    }
    StrBuf b;
    strbuf_init(&b);
    strbuf_append_str(&b, "SELECT ");
    for (int i = 0; i < t->ncols; i++) {
        int id = -1;
        for (int k = 0; k < rv.ncols; k++)
            if (strcmp(rv.col_names[k], t->cols[i]) == 0) id = rv.col_ids[k];
        if (id >= 0)
            strbuf_appendf(&b, "%ss.vals[%d]", i ? ", " : "", id);
        else
            strbuf_appendf(&b, "%sNULL::text", i ? ", " : "");
    }
    if (t->ncols == 0) strbuf_append_str(&b, "NULL");
    strbuf_appendf(&b, " FROM %s.snapshot_rows(%u, %lld) s", ctx->schema_q, t->relid, (long long)rev);
    relversion_term(&rv);
    PGresult *res = rq_exec(ctx->hist, err, b.data, 0, NULL);
    strbuf_free(&b);
    if (!res) return wr_error_prefix(err, "reading %s as of revision %lld", t->display, (long long)rev);
    rows_from_result(t, res, s);
    PQclear(res);
    return WR_OK;
}

/* ------------------------------------------------------------------ create */

enum { OPT_AT = 1000, OPT_TABLE, OPT_ACTOR, OPT_FORMAT, OPT_NULL };
const struct option rq_branch_options[] = {{"at", required_argument, NULL, OPT_AT},
                                           {"table", required_argument, NULL, OPT_TABLE},
                                           {"actor", required_argument, NULL, OPT_ACTOR},
                                           {"format", required_argument, NULL, OPT_FORMAT}, /* branch list */
                                           {"null", required_argument, NULL, OPT_NULL},     /* branch list */
                                           {NULL, 0, NULL, 0}};

WrStatus branch_check_name(ReplayCtx *ctx, const char *name, WrError *err)
{
    size_t n = strlen(name);
    bool ok = n > 0 && n <= 48 && strcmp(name, "main") != 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) ok = false;
    if (!ok)
        return rq_usage(ctx, err, "invalid branch name %s: 1 to 48 lower-case letters, digits or _, and not \"main\"",
                        name);
    return WR_OK;
}

/* Schemas of the branches there are (their tables are never branched again). */
static WrStatus branch_schemas(ReplayCtx *ctx, char ***out, int *n, WrError *err)
{
    *out = NULL;
    *n = 0;
    bool have = false;
    if (rq_has_table(ctx, "branch", &have, err) != WR_OK) return err->status;
    if (!have) return WR_OK;
    PGresult *res = rq_execf(ctx->hist, err, "SELECT schema_name FROM %s.branch", ctx->schema_q);
    if (!res) return err->status;
    *n = PQntuples(res);
    *out = xcalloc((size_t)*n + 1, sizeof(char *));
    for (int i = 0; i < *n; i++) (*out)[i] = xstrdup(PQgetvalue(res, i, 0));
    PQclear(res);
    return WR_OK;
}

/* Run sql on conn, or fail with what (the server's message). */
static WrStatus run(PGconn *conn, const char *sql, WrError *err, const char *what)
{
    PGresult *res = rq_exec(conn, err, sql, 0, NULL);
    if (!res) return wr_error_prefix(err, "%s", what);
    PQclear(res);
    return WR_OK;
}

/* COPY rows into qname (t's columns) on src. */
static WrStatus copy_rows(PGconn *src, const BTableShape *t, const char *qname, const BRowSet *rows, WrError *err)
{
    StrBuf b;
    strbuf_init(&b);
    strbuf_appendf(&b, "COPY %s (", qname);
    for (int i = 0; i < t->ncols; i++) {
        char *id = rq_quote_ident(src, t->cols[i]);
        strbuf_appendf(&b, "%s%s", i ? ", " : "", id);
        free(id);
    }
    strbuf_append_str(&b, ") FROM STDIN");
    PGresult *res = NULL;
    (void)pgio_exec(src, b.data, 0, NULL, &res);
    strbuf_free(&b);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        pgio_fail(src, res, err, "copy into %s", qname);
        PQclear(res);
        return err->status;
    }
    PQclear(res);
    WrStatus st = WR_OK;
    StrBuf line;
    strbuf_init(&line);
    for (int r = 0; r < rows->n && st == WR_OK; r++) {
        strbuf_reset(&line);
        for (int c = 0; c < t->ncols; c++) {
            if (c) strbuf_append_char(&line, '\t');
            const char *v = rows->rows[r].vals[c];
            if (v)
                strbuf_append_copy_text(&line, v, strlen(v));
            else
                strbuf_append_str(&line, "\\N");
        }
        strbuf_append_char(&line, '\n');
        if (PQputCopyData(src, line.data, (int)line.len) != 1) st = pgio_fail(src, NULL, err, "copy into %s", qname);
    }
    strbuf_free(&line);
    if (PQputCopyEnd(src, st == WR_OK ? NULL : "branch create failed") != 1 && st == WR_OK)
        st = pgio_fail(src, NULL, err, "copy into %s", qname);
    res = PQgetResult(src);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && st == WR_OK) st = pgio_fail(src, res, err, "copy into %s", qname);
    PQclear(res);
    while ((res = PQgetResult(src)) != NULL) PQclear(res);
    return st;
}

/*
 * Foreign keys of the main tables among each other, made again between
 * their copies (a key to a table left out of the branch keeps pointing at
 * main's). Built from pg_constraint's parts, not its text, so no name has to
 * be found and replaced in a definition.
 */
static WrStatus copy_foreign_keys(PGconn *src, const char *schema_q, const BTableShape *shapes, char **names, int n,
                                  WrError *err)
{
    StrBuf ids;
    strbuf_init(&ids);
    strbuf_append_char(&ids, '{');
    for (int i = 0; i < n; i++) strbuf_appendf(&ids, "%s%u", i ? "," : "", shapes[i].relid);
    strbuf_append_char(&ids, '}');
    const char *params[1] = {ids.data};
    PGresult *res =
        rq_exec(src, err,
                "SELECT c.conrelid, c.confrelid, quote_ident(c.conname), "
                "  (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.n) FROM unnest(c.conkey) "
                "     WITH ORDINALITY k(att, n) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.att), "
                "  (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.n) FROM unnest(c.confkey) "
                "     WITH ORDINALITY k(att, n) JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.att), "
                "  c.confupdtype, c.confdeltype, c.confmatchtype, c.condeferrable, c.condeferred, "
                "  c.confrelid::regclass::text "
                "FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid = ANY ($1::oid[]) ORDER BY c.conname",
                1, params);
    strbuf_free(&ids);
    if (!res) return wr_error_prefix(err, "reading the foreign keys");
    WrStatus st = WR_OK;
    for (int r = 0; r < PQntuples(res) && st == WR_OK; r++) {
        uint32_t child = (uint32_t)strtoul(PQgetvalue(res, r, 0), NULL, 10);
        uint32_t parent = (uint32_t)strtoul(PQgetvalue(res, r, 1), NULL, 10);
        int ci = -1, pi = -1;
        for (int i = 0; i < n; i++) {
            if (shapes[i].relid == child) ci = i;
            if (shapes[i].relid == parent) pi = i;
        }
        if (ci < 0) continue;
        char *cq = rq_quote_ident(src, names[ci]);
        char *parent_q;
        if (pi >= 0) {
            char *pq = rq_quote_ident(src, names[pi]);
            parent_q = xasprintf("%s.%s", schema_q, pq);
            free(pq);
        } else {
            parent_q = xstrdup(PQgetvalue(res, r, 10));
        }
        static const char *const ACTIONS = "arcnd";
        static const char *const ACTION_SQL[] = {"NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"};
        const char *upd = strchr(ACTIONS, PQgetvalue(res, r, 5)[0]);
        const char *del = strchr(ACTIONS, PQgetvalue(res, r, 6)[0]);
        char *sql =
            xasprintf("ALTER TABLE %s.%s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)%s "
                      "ON UPDATE %s ON DELETE %s%s%s",
                      schema_q, cq, PQgetvalue(res, r, 2), PQgetvalue(res, r, 3), parent_q, PQgetvalue(res, r, 4),
                      PQgetvalue(res, r, 7)[0] == 'f' ? " MATCH FULL" : "", ACTION_SQL[upd ? upd - ACTIONS : 0],
                      ACTION_SQL[del ? del - ACTIONS : 0], PQgetvalue(res, r, 8)[0] == 't' ? " DEFERRABLE" : "",
                      PQgetvalue(res, r, 9)[0] == 't' ? " INITIALLY DEFERRED" : "");
        st = run(src, sql, err, "copying a foreign key");
        free(sql);
        free(cq);
        free(parent_q);
    }
    PQclear(res);
    return st;
}

/*
 * Every branch table must be published, or its changes would go unrecorded:
 * setup's new-schema trigger publishes the schema (FOR TABLES IN SCHEMA); a
 * FOR TABLE publication that has the main table gets the copy added here.
 */
static WrStatus publish_copies(PGconn *src, const char *schema, const BTableShape *shapes, char **names, int n,
                               WrError *err)
{
    for (int i = 0; i < n; i++) {
        char oid[16];
        rq_oid_text(shapes[i].relid, oid);
        const char *params[3] = {oid, schema, names[i]};
        PGresult *res =
            rq_exec(src, err,
                    "SELECT p.pubname, EXISTS (SELECT 1 FROM pg_publication_tables t WHERE t.pubname = p.pubname "
                    "  AND t.schemaname = $2 AND t.tablename = $3) "
                    "FROM pg_publication p WHERE EXISTS (SELECT 1 FROM pg_publication_tables t "
                    "  WHERE t.pubname = p.pubname AND format('%I.%I', t.schemaname, t.tablename)::regclass = $1::oid)",
                    3, params);
        if (!res) return wr_error_prefix(err, "reading the publications");
        WrStatus st = WR_OK;
        for (int r = 0; r < PQntuples(res) && st == WR_OK; r++) {
            if (PQgetvalue(res, r, 1)[0] == 't') continue;
            char *pub = rq_quote_ident(src, PQgetvalue(res, r, 0));
            char *s = rq_quote_ident(src, schema), *t = rq_quote_ident(src, names[i]);
            char *sql = xasprintf("ALTER PUBLICATION %s ADD TABLE %s.%s", pub, s, t);
            st = run(src, sql, err, "publishing the branch's tables (the role must own the publication)");
            free(sql);
            free(pub);
            free(s);
            free(t);
        }
        PQclear(res);
        if (st != WR_OK) return st;
    }
    return WR_OK;
}

/*
 * Shared sequences: a column whose default draws from a sequence (serial,
 * identity) draws from main's sequence on the branch too, so rows inserted
 * on either side never take one key (an insert/insert conflict for nothing).
 */
static WrStatus share_sequences(PGconn *src, const char *schema_q, const BTableShape *t, const char *name, WrError *err)
{
    char oid[16];
    rq_oid_text(t->relid, oid);
    const char *params[1] = {oid};
    PGresult *res = rq_exec(src, err,
                            "SELECT quote_ident(a.attname), pg_get_serial_sequence($1::oid::regclass::text, a.attname) "
                            "FROM pg_attribute a WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped "
                            "AND pg_get_serial_sequence($1::oid::regclass::text, a.attname) IS NOT NULL",
                            1, params);
    if (!res) return wr_error_prefix(err, "reading the sequences of %s", t->display);
    WrStatus st = WR_OK;
    char *tq = rq_quote_ident(src, name);
    for (int r = 0; r < PQntuples(res) && st == WR_OK; r++) {
        char *lit = PQescapeLiteral(src, PQgetvalue(res, r, 1), strlen(PQgetvalue(res, r, 1)));
        char *sql = xasprintf("ALTER TABLE %s.%s ALTER COLUMN %s SET DEFAULT nextval(%s::regclass)", schema_q, tq,
                              PQgetvalue(res, r, 0), lit);
        st = run(src, sql, err, "sharing a sequence with main");
        free(sql);
        PQfreemem(lit);
    }
    free(tq);
    PQclear(res);
    return st;
}

/* The shapes of the tables to branch at pt: the named ones (each must exist
 * then and not be a branch's own), or every tracked table that still exists.
 * Connects *src to the source once the tables are resolved. *shapes and *src
 * are the caller's (btable_shape_term each of *nshapes, PQfinish). */
static WrStatus branch_load_shapes(ReplayCtx *ctx, PGconn **src, const char *const *tables, int ntables,
                                   const Point *pt, BTableShape **shapes, int *nshapes, WrError *err)
{
    char **bschemas = NULL;
    int nbschemas = 0;
    uint32_t *relids = NULL;
    int n = 0;
    WrStatus st;
    if ((st = branch_schemas(ctx, &bschemas, &nbschemas, err)) != WR_OK) goto out;
    if ((st = rq_named_or_all_tables(ctx, tables, ntables, &relids, &n, err)) != WR_OK) goto out;
    if ((st = branch_connect_source(ctx, src, err)) != WR_OK) goto out;
    *shapes = xcalloc((size_t)n + 1, sizeof(BTableShape));
    for (int i = 0; i < n; i++) {
        RelVersion rv;
        bool found;
        if ((st = rq_relation_at(ctx, relids[i], pt->rev, &rv, &found, err)) != WR_OK) goto out;
        bool in_branch = false;
        for (int k = 0; found && k < nbschemas; k++) in_branch = in_branch || strcmp(rv.nspname, bschemas[k]) == 0;
        relversion_term(&rv);
        if (!found || in_branch) {
            if (ntables) {
                st =
                    wr_error_set(err, WR_INVALID,
                                 found ? "table %s is a branch's own table" : "table %s did not exist at revision %lld",
                                 tables[i], (long long)pt->rev);
                goto out;
            }
            continue;
        }
        BTableShape t;
        if ((st = btable_shape_load(ctx, *src, relids[i], &t, err)) != WR_OK) {
            btable_shape_term(&t);
            /* a table dropped since was tracked once: not branched unless named */
            if (!ntables && strstr(err->msg, "is not a table of the source database now")) {
                memset(err, 0, sizeof(*err));
                st = WR_OK;
                continue;
            }
            goto out;
        }
        (*shapes)[(*nshapes)++] = t;
    }
    if (*nshapes == 0)
        st = wr_error_set(err, WR_INVALID, "no tracked table to branch at revision %lld", (long long)pt->rev);
out:
    rq_free_strv(bschemas, nbschemas);
    free(relids);
    return st;
}

/* Names in the branch: the table's own, "nsp.rel" when two schemas share one.
 * Returns an array of nshapes strings (rq_free_strv). */
static char **branch_table_names(const BTableShape *shapes, int nshapes)
{
    char **names = xcalloc((size_t)nshapes + 1, sizeof(char *));
    for (int i = 0; i < nshapes; i++) {
        const char *rel = strchr(shapes[i].display, '.') + 1;
        bool shared = false;
        for (int j = 0; j < nshapes; j++)
            if (j != i && strcmp(strchr(shapes[j].display, '.') + 1, rel) == 0) shared = true;
        names[i] = xstrdup(shared ? shapes[i].display : rel);
    }
    return names;
}

/* BEGIN the branch's transaction on src (context set) and create its schema. */
static WrStatus branch_begin_schema(ReplayCtx *ctx, PGconn *src, const char *name, const char *actor,
                                    const char *schema_q, const Point *pt, WrError *err)
{
    json_t *meta =
        json_pack("{s:s,s:s,s:I}", "branch", name, "branch_event", "create", "fork_revision", (json_int_t)pt->rev);
    char *desc = xasprintf("walrev branch create %s", name);
    char *ctx_sql = rq_context_sql(ctx, src, actor, desc, meta);
    json_decref(meta);
    free(desc);
    char *comment = xasprintf("walrev branch %s: the tracked tables as of revision %lld, writable; "
                              "`walrev merge %s` brings its changes to main",
                              name, (long long)pt->rev, name);
    char *clit = PQescapeLiteral(src, comment, strlen(comment));
    char *sql = xasprintf("BEGIN; %s; CREATE SCHEMA %s; COMMENT ON SCHEMA %s IS %s", ctx_sql, schema_q, schema_q, clit);
    WrStatus st = run(src, sql, err, "creating the branch schema");
    free(sql);
    PQfreemem(clit);
    free(comment);
    free(ctx_sql);
    return st;
}

/* Create each branch table like its source and fill it with the rows as of pt,
 * inside the branch's open transaction on src. */
static WrStatus branch_fill_tables(ReplayCtx *ctx, PGconn *src, const char *name, const char *schema_q,
                                   BTableShape *shapes, char **names, int nshapes, const Point *pt, WrError *err)
{
    WrStatus st = WR_OK;
    for (int i = 0; i < nshapes && st == WR_OK; i++) {
        char *tq = rq_quote_ident(src, names[i]);
        char *qname = xasprintf("%s.%s", schema_q, tq);
        free(tq);
        char *sql = xasprintf("CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS "
                              "INCLUDING INDEXES INCLUDING COMMENTS)",
                              qname, shapes[i].qname);
        st = run(src, sql, err, "creating a branch table");
        free(sql);
        if (st == WR_OK) st = share_sequences(src, schema_q, &shapes[i], names[i], err);
        BRowSet rows = {0};
        if (st == WR_OK) st = browset_load_base(ctx, &shapes[i], pt->rev, &rows, err);
        if (st == WR_OK) st = copy_rows(src, &shapes[i], qname, &rows, err);
        if (st == WR_OK)
            fprintf(ctx->err, "branch %s: %s: %d rows as of revision %lld\n", name, shapes[i].display, rows.n,
                    (long long)pt->rev);
        browset_term(&rows, shapes[i].ncols);
        free(qname);
    }
    return st;
}

/* Record the branch in <schema>.branch on hw (autocommit). */
static WrStatus branch_record(ReplayCtx *ctx, PGconn *hw, const char *name, const char *schema, const char *actor,
                              const BTableShape *shapes, char **names, int nshapes, const Point *pt, WrError *err)
{
    json_t *tj = json_array();
    for (int i = 0; i < nshapes; i++)
        json_array_append_new(tj, json_pack("{s:I,s:s,s:s}", "relid", (json_int_t)shapes[i].relid, "table",
                                            shapes[i].display, "branch_table", names[i]));
    char *tjs = json_dumps(tj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(tj);
    char rev[32];
    snprintf(rev, sizeof(rev), "%lld", (long long)pt->rev);
    const char *by = actor ? actor : NULL;
    char *byd = NULL;
    if (!by) {
        by = byd = xasprintf("cli:%s", rq_cli_user());
    }
    const char *params[6] = {name, schema, rev, pt->commit_lsn, by, tjs};
    PGresult *res = rq_execp(hw, err, 6, params,
                             "INSERT INTO %s.branch (name, schema_name, fork_revision, fork_lsn, created_by, tables) "
                             "VALUES ($1, $2, $3::bigint, $4::pg_lsn, $5, $6::jsonb)",
                             ctx->schema_q);
    free(tjs);
    free(byd);
    if (!res) return wr_error_prefix(err, "recording the branch");
    PQclear(res);
    return WR_OK;
}

static WrStatus branch_create(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    const char *at = NULL, *actor = NULL;
    const char *tables[256];
    int ntables = 0;
    const CliField fields[] = {CLI_STRING(OPT_AT, &at), CLI_STRING(OPT_ACTOR, &actor)};
    cli_start();
    int c;
    while ((c = cli_next(argc, argv, rq_branch_options, fields, CLI_NFIELDS(fields))) != -1) {
        if (c != OPT_TABLE) return rq_bad_option(ctx, argc, argv, err);
        if (ntables == 256) return rq_usage(ctx, err, "too many --table options");
        tables[ntables++] = optarg;
    }
    if (optind != argc - 1)
        return rq_usage(ctx, err, "usage: walrev branch create NAME [--at POINT] [--table T]... [--actor TYPE:ID]");
    const char *name = argv[optind];
    if (branch_check_name(ctx, name, err) != WR_OK || rq_check_actor(ctx, actor, err) != WR_OK ||
        rq_check_table_names(ctx, tables, ntables, err) != WR_OK ||
        (at && rq_check_point(ctx, "--at", at, err) != WR_OK) || rq_open_history(ctx, err) != WR_OK)
        return err->status;

    WrStatus st;
    Point pt;
    if ((st = at ? rq_resolve_point(ctx, at, &pt, err) : rq_newest(ctx, &pt, err)) != WR_OK) return st;

    BTableShape *shapes = NULL;
    char **names = NULL;
    PGconn *src = NULL, *hw = NULL;
    char *schema = xasprintf(BRANCH_SCHEMA_PREFIX "%s", name);
    char *schema_q = NULL;
    int nshapes = 0;
    {
        BranchInfo old;
        WrError e2 = {0};
        if (branch_load(ctx, name, &old, &e2) == WR_OK) {
            branch_info_term(&old);
            st = wr_error_set(err, WR_INVALID, "branch %s exists already (walrev branch drop %s)", name, name);
            goto out;
        }
        branch_info_term(&old);
    }
    if ((st = branch_load_shapes(ctx, &src, tables, ntables, &pt, &shapes, &nshapes, err)) != WR_OK) goto out;
    names = branch_table_names(shapes, nshapes);

    schema_q = rq_quote_ident(src, schema);
    if ((st = branch_begin_schema(ctx, src, name, actor, schema_q, &pt, err)) != WR_OK) goto out;
    st = branch_fill_tables(ctx, src, name, schema_q, shapes, names, nshapes, &pt, err);
    if (st == WR_OK) st = copy_foreign_keys(src, schema_q, shapes, names, nshapes, err);
    if (st == WR_OK) st = publish_copies(src, schema, shapes, names, nshapes, err);
    /* the record first, the tables second: a branch recorded without its
     * schema is dropped by `branch drop`; tables without a record would be orphans */
    if (st == WR_OK) st = branch_connect_history_rw(ctx, &hw, err);
    if (st == WR_OK) st = branch_record(ctx, hw, name, schema, actor, shapes, names, nshapes, &pt, err);
    if (st != WR_OK) {
        pgio_run_unchecked(src, "ROLLBACK");
        goto out;
    }
    if ((st = run(src, "COMMIT", err, "committing the branch")) != WR_OK) {
        char *sql = xasprintf("DELETE FROM %s.branch WHERE name = $1", ctx->schema_q);
        const char *params[1] = {name};
        PQclear(rq_exec(hw, err, sql, 1, params));
        free(sql);
        goto out;
    }
    fprintf(ctx->out, "created branch %s in schema %s: %d table%s as of revision %lld (%s)\n", name, schema, nshapes,
            nshapes == 1 ? "" : "s", (long long)pt.rev, pt.commit_lsn);
out:
    if (shapes)
        for (int i = 0; i < nshapes; i++) btable_shape_term(&shapes[i]);
    free(shapes);
    rq_free_strv(names, nshapes);
    free(schema);
    free(schema_q);
    if (src) PQfinish(src);
    if (hw) PQfinish(hw);
    return st;
}

/* ------------------------------------------------------------------ list, drop */

static WrStatus branch_list(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    OutFormat fmt = OUT_ALIGNED;
    const char *null_text = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            if (rq_parse_format(argv[++i], &fmt, err) != WR_OK) return rq_usage(ctx, err, "%s", err->msg);
        } else if (strncmp(argv[i], "--format=", 9) == 0) {
            if (rq_parse_format(argv[i] + 9, &fmt, err) != WR_OK) return rq_usage(ctx, err, "%s", err->msg);
        } else if (strcmp(argv[i], "--null") == 0 && i + 1 < argc) {
            null_text = argv[++i];
        } else if (strncmp(argv[i], "--null=", 7) == 0) {
            null_text = argv[i] + 7;
        } else {
            return rq_usage(ctx, err, "branch list: unexpected argument %s", argv[i]);
        }
    }
    if (rq_open_history(ctx, err) != WR_OK) return err->status;
    bool have = false;
    if (rq_has_table(ctx, "branch", &have, err) != WR_OK) return err->status;
    if (!have) {
        fprintf(ctx->err, "no branches\n");
        return WR_OK;
    }
    /* revisions on the branch: those touching its tables' relids (looked up
     * by name on the history: the copies are tracked like any table) */
    PGresult *res = rq_execf(
        ctx->hist, err,
        "WITH b AS (SELECT b.*, ARRAY(SELECT DISTINCT v.relid FROM jsonb_array_elements(b.tables) t "
        "  JOIN %1$s.relation_version v ON v.nspname = b.schema_name AND v.relname = t->>'branch_table') AS brel, "
        "  ARRAY(SELECT (t->>'relid')::oid FROM jsonb_array_elements(b.tables) t) AS mrel FROM %1$s.branch b) "
        "SELECT b.name AS branch, b.schema_name AS schema, b.fork_revision, b.fork_lsn::text AS fork_lsn, "
        "  to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS created, b.created_by, "
        "  jsonb_array_length(b.tables) AS tables, "
        "  (SELECT count(DISTINCT d.revision_id) FROM %1$s.object_delta d JOIN %1$s.revision r ON r.id = d.revision_id "
        "     WHERE d.relid = ANY (b.brel) AND d.revision_id > b.fork_revision "
        "     AND coalesce(r.meta->>'branch_event', '') <> 'create') AS branch_revisions, "
        "  (SELECT count(DISTINCT d.revision_id) FROM %1$s.object_delta d WHERE d.relid = ANY (b.mrel) "
        "     AND d.revision_id > b.fork_revision) AS main_revisions_since, "
        "  (SELECT count(*) FROM %1$s.branch_approval a WHERE a.branch = b.name) AS approvals "
        "FROM b ORDER BY b.name",
        ctx->schema_q);
    if (!res) return err->status;
    out_print_result(ctx->out, res, fmt, null_text);
    PQclear(res);
    return WR_OK;
}

static WrStatus branch_drop(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    const char *actor = NULL, *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--actor") == 0 && i + 1 < argc)
            actor = argv[++i];
        else if (argv[i][0] != '-' && !name)
            name = argv[i];
        else
            return rq_usage(ctx, err, "usage: walrev branch drop NAME [--actor TYPE:ID]");
    }
    if (!name) return rq_usage(ctx, err, "usage: walrev branch drop NAME [--actor TYPE:ID]");
    if (branch_check_name(ctx, name, err) != WR_OK || rq_check_actor(ctx, actor, err) != WR_OK ||
        rq_open_history(ctx, err) != WR_OK)
        return err->status;
    BranchInfo b;
    if (branch_load(ctx, name, &b, err) != WR_OK) {
        branch_info_term(&b);
        return err->status;
    }
    PGconn *src = NULL, *hw = NULL;
    WrStatus st = branch_connect_source(ctx, &src, err);
    if (st == WR_OK) st = branch_connect_history_rw(ctx, &hw, err);
    if (st == WR_OK) {
        char *sq = rq_quote_ident(src, b.schema);
        char *desc = xasprintf("walrev branch drop %s", name);
        json_t *meta = json_pack("{s:s,s:s}", "branch", name, "branch_event", "drop");
        char *ctx_sql = rq_context_sql(ctx, src, actor, desc, meta);
        json_decref(meta);
        char *sql = xasprintf("BEGIN; %s; DROP SCHEMA IF EXISTS %s CASCADE", ctx_sql, sq);
        st = run(src, sql, err, "dropping the branch schema");
        free(sql);
        free(ctx_sql);
        free(desc);
        free(sq);
    }
    if (st == WR_OK) {
        char *sql = xasprintf("DELETE FROM %s.branch WHERE name = $1", ctx->schema_q);
        const char *params[1] = {name};
        PGresult *res = rq_exec(hw, err, sql, 1, params);
        free(sql);
        if (!res) st = wr_error_prefix(err, "deleting the branch record");
        PQclear(res);
    }
    if (st == WR_OK)
        st = run(src, "COMMIT", err, "committing the drop");
    else if (src)
        pgio_run_unchecked(src, "ROLLBACK");
    if (st == WR_OK)
        fprintf(ctx->out, "dropped branch %s (schema %s); its revisions stay in the history\n", name, b.schema);
    if (src) PQfinish(src);
    if (hw) PQfinish(hw);
    branch_info_term(&b);
    return st;
}

WrStatus cmd_branch(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    if (argc < 2) return rq_usage(ctx, err, "usage: walrev branch create|list|drop ... (see docs/branches.md)");
    const char *sub = argv[1];
    if (strcmp(sub, "create") == 0) return branch_create(ctx, argc - 1, argv + 1, err);
    if (strcmp(sub, "list") == 0) return branch_list(ctx, argc - 1, argv + 1, err);
    if (strcmp(sub, "drop") == 0) return branch_drop(ctx, argc - 1, argv + 1, err);
    return rq_usage(ctx, err, "branch: unknown subcommand %s: expected create, list or drop", sub);
}
