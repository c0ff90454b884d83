/*
 * snapshot.c — `walrev snapshot`: tables as they were at a point, with the
 * columns of that time, streamed from the history store's snapshot_rows()
 * by COPY (text, CSV, or SQL with CREATE TABLE), as JSON lines or an aligned
 * table, or loaded into tables of a target schema (--into). Streams row by
 * row (all but aligned, which measures every row first): memory does not grow
 * with the table. Shows rows and rate on stderr when it is a terminal.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pgio/pgio.h"
#include "replay/internal.h"
#include "schema/store_sql.h"

enum { SNAP_TEXT, SNAP_CSV, SNAP_SQL, SNAP_JSON, SNAP_ALIGNED };
enum { OPT_AT = 1000, OPT_TABLE, OPT_FORMAT, OPT_INTO, OPT_TARGET, OPT_OUTDIR, OPT_MEMORY, OPT_NULL, OPT_ORDER };

/* Below PostgreSQL's FirstNormalObjectId a type is built in, so the history
 * server knows it by the same OID and --order key can sort by its value. */
#define FIRST_NORMAL_OID 16384

/* How rows are printed, beyond the format (borrowed from the command line). */
typedef struct {
    const char *null_text; /* --null: NULL in aligned output */
    bool order_key;        /* --order key: rows sorted by their key */
} SnapOutput;

/* --memory default, MiB: the keys a keyframe interval touches in a table of a few million rows */
#define SNAP_MEMORY_MIB 256

const struct option rq_snapshot_options[] = {
    {"at", required_argument, NULL, OPT_AT},         {"table", required_argument, NULL, OPT_TABLE},
    {"format", required_argument, NULL, OPT_FORMAT}, {"into", required_argument, NULL, OPT_INTO},
    {"target", required_argument, NULL, OPT_TARGET}, {"output-dir", required_argument, NULL, OPT_OUTDIR},
    {"memory", required_argument, NULL, OPT_MEMORY}, {"null", required_argument, NULL, OPT_NULL},
    {"order", required_argument, NULL, OPT_ORDER},   {NULL, 0, NULL, 0}};

typedef struct {
    bool enabled;
    const char *what;
    struct timespec start, last;
    long long rows;
} Progress;

static double secs_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void progress_tick(Progress *p, FILE *err, bool final)
{
    if (!p->enabled) return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!final && secs_between(&p->last, &now) < 0.25) return;
    p->last = now;
    double el = secs_between(&p->start, &now);
    fprintf(err, "\rsnapshot %s: %lld rows, %.0f rows/s%s", p->what, p->rows, el > 0 ? (double)p->rows / el : 0.0,
            final ? "\n" : "   ");
    fflush(err);
}

/* The SQL type of each of rv's columns on conn (rq_column_types; store as there). */
static char **column_types(PGconn *conn, const char *store, const RelVersion *rv, WrError *err)
{
    return rq_column_types(conn, store, rv, err);
}

/*
 * Says by name each column that a table made from types (column_types on
 * that server) gets as text although the history recorded another type: an
 * extension's type (hstore, citext, ...) the --into target or the history
 * server lacks, or a type dropped since. The values load as their text.
 */
static void warn_text_columns(FILE *err, const RelVersion *rv, char **types, const char *where)
{
    for (int i = 0; i < rv->ncols; i++) {
        const char *rec = rv->type_names[i];
        if (strcmp(types[i], "text") != 0 || rv->type_oids[i] == 25 /* text */) continue;
        if (rec)
            fprintf(err, "warning: %s.%s: column %s has type %s, which %s does not have: made as text\n",
                    rv->nspname, rv->relname, rv->col_names[i], rec, where);
        else /* a baseline's version made by an older walrev recorded a user type by its oid alone */
            fprintf(err, "warning: %s.%s: column %s has type oid %u, which %s does not have: made as text\n",
                    rv->nspname, rv->relname, rv->col_names[i], rv->type_oids[i], where);
    }
}

/* Regular column c's stored text: as recorded, or printed again through its type (rq_zoned_types). */
static void stored_value(StrBuf *b, const RelVersion *rv, char **render, int c)
{
    if (render && render[c])
        strbuf_appendf(b, "(s.vals[%d])::%s::pg_catalog.text", rv->col_ids[c], render[c]);
    else
        strbuf_appendf(b, "s.vals[%d]", rv->col_ids[c]);
}

static char *qualified_name(PGconn *conn, const char *nsp, const char *rel)
{
    char *a = rq_quote_ident(conn, nsp);
    char *b = rq_quote_ident(conn, rel);
    char *out = xasprintf("%s.%s", a, b);
    free(a);
    free(b);
    return out;
}

/*
 * The table's columns in order: regular ones (rv's, from history) with the
 * STORED generated ones at their places. Fills *out with ncols + ngen
 * entries: i >= 0 a regular column, -(g + 2) generated column g, -1 none.
 */
static int *all_columns(const RelVersion *rv, int *n)
{
    *n = rv->ncols + rv->ngen;
    int *out = xcalloc((size_t)*n + 1, sizeof(int));
    int next = 0;
    for (int pos = 0; pos < *n; pos++) {
        int g = -1;
        for (int k = 0; k < rv->ngen; k++)
            if (rv->gen_positions[k] == pos) g = k;
        /* a position past the regular columns left (a column list) still gets its column */
        out[pos] = g >= 0 ? -(g + 2) : next < rv->ncols ? next++ : -1;
    }
    /* Generated columns whose position was taken (never from walrev's own rows) go last. */
    for (int k = 0, pos = 0; k < rv->ngen; k++) {
        bool placed = false;
        for (int i = 0; i < *n; i++) placed = placed || out[i] == -(k + 2);
        while (!placed && pos < *n && out[pos] != -1) pos++;
        if (!placed && pos < *n) out[pos] = -(k + 2);
    }
    return out;
}

static const char *column_name(const RelVersion *rv, int c)
{
    return c >= 0 ? rv->col_names[c] : rv->gen_names[-c - 2];
}

/* The value of generated column g by expr over a row of s (see snapshot_select), tableoid its table's oid. */
static void generated_by(StrBuf *b, ReplayCtx *ctx, const RelVersion *rv, char **types, const char *type,
                         const char *expr, const char *tableoid)
{
    /* written out by the type's output function, as COPY does (format %s;
     * a cast to text is not that for every type: true::text is 'true') */
    strbuf_appendf(b,
                   "(SELECT CASE WHEN pg_catalog.num_nulls(g.v) = 1 THEN NULL ELSE pg_catalog.format('%%s', "
                   "g.v) END FROM (SELECT CAST((%s) AS %s) AS v FROM (SELECT ",
                   expr, type);
    for (int k = 0; k < rv->ncols; k++) {
        char *cid = PQescapeIdentifier(ctx->hist, rv->col_names[k], strlen(rv->col_names[k]));
        strbuf_appendf(b, "%ss.vals[%d]::%s AS %s", k ? ", " : "", rv->col_ids[k], types[k], cid);
        PQfreemem(cid);
    }
    /* the one system column an expression may use: the source table's oid */
    strbuf_appendf(b, "%s%s::pg_catalog.oid AS tableoid) r) g)", rv->ncols ? ", " : "", tableoid);
}

/* The source table's oid for an expression over a row of s: a parent read through its
 * members ('p', 'i': s.relid is the member that holds the row) gives each member's. */
static const char *row_tableoid(const RelVersion *rv, char own[16])
{
    rq_oid_text(rv->relid, own);
    return rv->relkind == 'p' || rv->relkind == 'i' ? "s.relid" : own;
}

/*
 * " WHEN s.relid IN (...) THEN <expr> ..." for the members that compute
 * column `which` (member_gens' code: g >= 0 generated column g, -(c + 1)
 * regular column c) by an expression of their own, one WHEN per distinct
 * expression; false when none does.
 */
static bool member_cases(StrBuf *b, ReplayCtx *ctx, const RelVersion *rv, char **types, int which, const char *type)
{
    char own[16];
    const char *tableoid = row_tableoid(rv, own);
    bool any = false;
    for (int k = 0; k < rv->nmember_exprs; k++) {
        bool first = rv->member_gens[k] == which;
        for (int j = 0; j < k && first; j++)
            if (rv->member_gens[j] == which && strcmp(rv->member_exprs[j], rv->member_exprs[k]) == 0) first = false;
        if (!first) continue;
        strbuf_append_str(b, any ? " WHEN s.relid IN (" : "CASE WHEN s.relid IN (");
        any = true;
        for (int j = k, n = 0; j < rv->nmember_exprs; j++)
            if (rv->member_gens[j] == which && strcmp(rv->member_exprs[j], rv->member_exprs[k]) == 0)
                strbuf_appendf(b, "%s%u", n++ ? ", " : "", rv->member_relids[j]);
        strbuf_append_str(b, ") THEN ");
        generated_by(b, ctx, rv, types, type, rv->member_exprs[k], tableoid);
    }
    return any;
}

/*
 * Generated column g of a row of s. A parent read through its members
 * ('p', 'i': s.relid is the member that holds the row) computes each
 * member's rows by that member's own expression, tableoid its oid.
 */
static void generated_value(StrBuf *b, ReplayCtx *ctx, const RelVersion *rv, char **types, int g)
{
    char own[16];
    bool any = member_cases(b, ctx, rv, types, g, rv->gen_types[g]);
    if (any) strbuf_append_str(b, " ELSE ");
    generated_by(b, ctx, rv, types, rv->gen_types[g], rv->gen_exprs[g], row_tableoid(rv, own));
    if (any) strbuf_append_str(b, " END");
}

/*
 * "SELECT s.vals[1] AS "id", ... FROM schema.snapshot_rows(relid, rev) s".
 * A generated column is computed by the history server from its expression
 * over the row's other columns, each cast to its type (types: the history
 * server's format_type of each regular column), and tableoid as the
 * source table's oid (PostgreSQL lets an expression use that system column
 * only); the regular columns are given as recorded, so their text is
 * exactly the source's.
 */
/*
 * erased: the table has erased values (walrev erase) and the output is for
 * reading (text, csv): a NULL whose value was erased prints as <erased>
 * (erased_at in schema/sql/replay.sql), never as NULL. Restores (--into,
 * --format sql) write NULL: the value is gone.
 */
static char *snapshot_select(ReplayCtx *ctx, const RelVersion *rv, int64_t rev, char **types, char **render,
                             bool erased)
{
    StrBuf b;
    strbuf_init(&b);
    strbuf_append_str(&b, "SELECT ");
    int n = 0;
    int *order = all_columns(rv, &n);
    for (int i = 0; i < n; i++) {
        int c = order[i];
        if (c == -1) continue;
        char *id = PQescapeIdentifier(ctx->hist, column_name(rv, c), strlen(column_name(rv, c)));
        if (c >= 0 && erased) {
            char *lit = PQescapeLiteral(ctx->hist, rv->col_names[c], strlen(rv->col_names[c]));
            strbuf_appendf(&b, "%scoalesce(", i ? ", " : "");
            stored_value(&b, rv, render, c);
            strbuf_appendf(&b, ", CASE WHEN %s.erased_at(%u, s.key, %s, %lld) THEN '<erased>' END) AS %s",
                           ctx->schema_q, rv->relid, lit, (long long)rev, id);
            PQfreemem(lit);
        } else if (c >= 0) {
            /* a parent's regular column that a member generates (CREATE ... INHERITS or ATTACH of a
             * table whose column is GENERATED where the parent's is not): pgoutput never sent the
             * member's values, so its rows are computed by its expression */
            strbuf_append_str(&b, i ? ", " : "");
            bool any = rv->nmember_exprs > 0 && member_cases(&b, ctx, rv, types, -(c + 1), types[c]);
            strbuf_append_str(&b, any ? " ELSE " : "");
            stored_value(&b, rv, render, c);
            strbuf_appendf(&b, "%s AS %s", any ? " END" : "", id);
        } else {
            strbuf_append_str(&b, i ? ", " : "");
            generated_value(&b, ctx, rv, types, -c - 2);
            strbuf_appendf(&b, " AS %s", id);
        }
        PQfreemem(id);
    }
    free(order);
    if (n == 0) strbuf_append_str(&b, "NULL LIMIT 0");
    /* a partitioned table: the union of its partitions then, vals in its own column order; an
     * INHERITS parent: its rows and its children's, vals indexed as its own */
    strbuf_appendf(&b, " FROM %s.%s(%u, %lld) s", ctx->schema_q,
                   rv->relkind == 'p'   ? "parent_rows"
                   : rv->relkind == 'i' ? "inherit_rows"
                                        : "snapshot_rows",
                   rv->relid, (long long)rev);
    return b.data;
}

static char *column_list(PGconn *conn, const RelVersion *rv)
{
    StrBuf b;
    strbuf_init(&b);
    int n = 0;
    int *order = all_columns(rv, &n);
    for (int i = 0, k = 0; i < n; i++) {
        if (order[i] == -1) continue;
        char *id = rq_quote_ident(conn, column_name(rv, order[i]));
        strbuf_appendf(&b, "%s%s", k++ ? ", " : "", id);
        free(id);
    }
    free(order);
    return b.data;
}

/* A generated column is a plain column of its type here: it holds the computed values. */
static char *create_table_sql(PGconn *conn, const char *qname, const RelVersion *rv, char **types)
{
    StrBuf b;
    strbuf_init(&b);
    strbuf_appendf(&b, "CREATE TABLE %s (", qname);
    int n = 0;
    int *order = all_columns(rv, &n);
    for (int i = 0, k = 0; i < n; i++) {
        int c = order[i];
        if (c == -1) continue;
        char *id = rq_quote_ident(conn, column_name(rv, c));
        strbuf_appendf(&b, "%s\n    %s %s", k++ ? "," : "", id, c >= 0 ? types[c] : rv->gen_types[-c - 2]);
        free(id);
    }
    free(order);
    strbuf_append_str(&b, "\n)");
    return b.data;
}

/* Stream COPY OUT of the history connection into a FILE or a target connection's COPY IN. */
static WrStatus stream_copy(ReplayCtx *ctx, const char *copy_sql, FILE *f, PGconn *target, Progress *pg, WrError *err)
{
    PGresult *res;
    if (!pgio_exec(ctx->hist, copy_sql, 0, NULL, &res) || PQresultStatus(res) != PGRES_COPY_OUT) {
        pgio_fail(ctx->hist, res, err, "reading the history");
        PQclear(res);
        return err->status;
    }
    PQclear(res);
    char *buf;
    int n;
    WrStatus st = WR_OK;
    while ((n = PQgetCopyData(ctx->hist, &buf, 0)) > 0) {
        if (st == WR_OK) {
            if (f) {
                if (fwrite(buf, 1, (size_t)n, f) != (size_t)n)
                    st = wr_error_set(err, WR_FATAL, "write failed while writing the snapshot");
            } else if (PQputCopyData(target, buf, n) != 1) {
                st = pgio_fail(target, NULL, err, "copy into target");
            }
        }
        PQfreemem(buf);
        pg->rows++;
        if ((pg->rows & 1023) == 0) progress_tick(pg, ctx->err, false);
    }
    res = PQgetResult(ctx->hist);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && st == WR_OK) {
        st = pgio_fail(ctx->hist, res, err, "reading the history");
    }
    PQclear(res);
    while ((res = PQgetResult(ctx->hist)) != NULL) PQclear(res);
    progress_tick(pg, ctx->err, true);
    return st;
}

/* Where folded lines go: a FILE or a target connection's COPY IN; counts rows for the progress line. */
typedef struct {
    FILE *f;
    PGconn *target;
    ReplayCtx *ctx;
    Progress *pg;
} LineSink;

static WrStatus line_to_sink(void *arg, const char *line, size_t len, WrError *err)
{
    LineSink *ls = arg;
    if (ls->f) {
        if (fwrite(line, 1, len, ls->f) != len)
            return wr_error_set(err, WR_FATAL, "write failed while writing the snapshot");
    } else if (PQputCopyData(ls->target, line, (int)len) != 1) {
        return pgio_fail(ls->target, NULL, err, "copy into target");
    }
    ls->pg->rows++;
    if ((ls->pg->rows & 1023) == 0) progress_tick(ls->pg, ls->ctx->err, false);
    return WR_OK;
}

/*
 * Rows of a revision, folded here from the keyframe and the deltas
 * (fold.c) unless an UPDATE changed a key in the range; then through
 * snapshot_rows(), which follows rows between keys. render: the zoned
 * columns, which the fold has the history server print again (rq_zoned_types).
 * *done=false: use copy_sql.
 */
static WrStatus snapshot_fold(ReplayCtx *ctx, const RelVersion *rv, int64_t rev, size_t memory, bool csv, FILE *f,
                              PGconn *target, Progress *pg, char *const *render, bool *done, WrError *err)
{
    *done = false;
    if (rv->relkind != 'r') return WR_OK; /* parent_rows() reads its partitions, inherit_rows() its children */
    if (rv->ngen > 0) return WR_OK;       /* generated columns are computed in SQL (snapshot_select) */
    Fold *fo = NULL;
    bool usable = false;
    WrStatus st = fold_open(ctx, rv, rev, memory, render, &fo, &usable, err);
    if (st != WR_OK || !usable) {
        fold_destroy(fo);
        return st;
    }
    if (csv && f) {
        /* the header COPY's CSV mode would print */
        StrBuf h;
        strbuf_init(&h);
        for (int i = 0; i < rv->ncols; i++) {
            const char *name = rv->col_names[i];
            if (i) strbuf_append_char(&h, ',');
            if (name[0] && !strpbrk(name, ",\"\r\n")) {
                strbuf_append_str(&h, name);
            } else {
                strbuf_append_char(&h, '"');
                for (const char *p = name; *p; p++) {
                    if (*p == '"') strbuf_append_char(&h, '"');
                    strbuf_append_char(&h, *p);
                }
                strbuf_append_char(&h, '"');
            }
        }
        strbuf_append_char(&h, '\n');
        fwrite(h.data, 1, h.len, f);
        strbuf_free(&h);
    }
    LineSink ls = {f, target, ctx, pg};
    long long rows = 0;
    st = fold_emit(fo, csv, line_to_sink, &ls, &rows, err);
    fold_destroy(fo);
    progress_tick(pg, ctx->err, true);
    *done = true;
    return st;
}

/*
 * " ORDER BY ..." for --order key: the key columns (every column of a keyless
 * table) in key order, by value for a built-in type (42 before 100; types:
 * the history server's names of the columns' types), else by their text in
 * byte order, which the history server can always compare.
 */
static char *order_by_key(const RelVersion *rv, char **types)
{
    StrBuf b;
    strbuf_init(&b);
    bool keyless = true;
    for (int i = 0; i < rv->ncols; i++) keyless = keyless && !rv->is_key[i];
    for (int i = 0, k = 0; i < rv->ncols; i++) {
        if (!keyless && !rv->is_key[i]) continue;
        strbuf_append_str(&b, k++ ? ", " : " ORDER BY ");
        if (rv->type_oids[i] < FIRST_NORMAL_OID)
            strbuf_appendf(&b, "s.vals[%d]::%s", rv->col_ids[i], types[i]);
        else
            strbuf_appendf(&b, "s.vals[%d] COLLATE \"C\"", rv->col_ids[i]);
    }
    return b.data;
}

/*
 * The rows of select to f as JSON lines (one object per row, the columns by
 * name, each value its text form or null; single-row mode, so memory stays
 * bounded) or as an aligned table (null_text for NULL; every row read first).
 */
static WrStatus print_query(ReplayCtx *ctx, const char *select, int format, const char *null_text, FILE *f,
                            Progress *pg, WrError *err)
{
    if (format == SNAP_ALIGNED) {
        PGresult *res = rq_exec(ctx->hist, err, select, 0, NULL);
        if (!res) return err->status;
        out_print_result(f, res, OUT_ALIGNED, null_text);
        pg->rows += PQntuples(res);
        PQclear(res);
        progress_tick(pg, ctx->err, true);
        return WR_OK;
    }
    if (!PQsendQuery(ctx->hist, select) || !PQsetSingleRowMode(ctx->hist))
        return pgio_fail(ctx->hist, NULL, err, "reading the history");
    WrStatus st = WR_OK;
    StrBuf line;
    strbuf_init(&line);
    PGresult *res;
    while ((res = pgio_next_row(ctx->hist, &st, "reading the history", err)) != NULL) {
        line.len = 0;
        out_json_row(&line, res, 0);
        strbuf_append_char(&line, '\n');
        if (fwrite(line.data, 1, line.len, f) != line.len)
            st = wr_error_set(err, WR_FATAL, "write failed while writing the snapshot");
        pg->rows++;
        if ((pg->rows & 1023) == 0) progress_tick(pg, ctx->err, false);
        PQclear(res);
    }
    strbuf_free(&line);
    progress_tick(pg, ctx->err, true);
    return st;
}

/* One table to f, or (target) into the table into.into_name there. */
static WrStatus snapshot_one(ReplayCtx *ctx, const RelVersion *rv, const Point *pt, int format, const SnapOutput *so,
                             size_t memory, FILE *f, PGconn *target, const char *into, const char *into_name,
                             WrError *err)
{
    char *select = NULL, *qname = NULL, *cols = NULL, *copy = NULL;
    char **types = NULL, **hist_types = NULL, **render = NULL;
    WrStatus st = WR_OK;
    /* every column's type is needed to know which print by TimeZone */
    hist_types = column_types(ctx->hist, ctx->schema_q, rv, err);
    if (!hist_types) return err->status;
    if (rq_zoned_types(ctx->hist, rv->ncols, hist_types, &render, err) != WR_OK) {
        rq_free_strv(hist_types, rv->ncols);
        return err->status;
    }
    /* Erased values of this table, shown as erased in what is read (not restored). */
    bool erased = false;
    if (!target && format != SNAP_SQL && rv->relkind != 'p') {
        PGresult *er = rq_execf(ctx->hist, err, "SELECT EXISTS (SELECT 1 FROM %s.erasure WHERE relid = %u)",
                                ctx->schema_q, rv->relid);
        if (!er) {
            st = err->status;
            goto done;
        }
        erased = PQgetvalue(er, 0, 0)[0] == 't';
        PQclear(er);
    }
    select = snapshot_select(ctx, rv, pt->rev, hist_types, render, erased);
    if (so->order_key) {
        /* sorted by the server: the fold's own order is its hash's */
        char *order = order_by_key(rv, hist_types);
        char *sorted = xasprintf("%s%s", select, order);
        free(order);
        free(select);
        select = sorted;
    }
    Progress pg = {0};
    pg.enabled = isatty(fileno(ctx->err));
    char what[300];
    snprintf(what, sizeof(what), "%s.%s", rv->nspname, rv->relname);
    pg.what = what;
    clock_gettime(CLOCK_MONOTONIC, &pg.start);
    pg.last = pg.start;

    if (target) {
        qname = qualified_name(target, into, into_name);
        types = column_types(target, NULL, rv, err);
        if (!types) {
            st = err->status;
            goto done;
        }
        warn_text_columns(ctx->err, rv, types, "the --into target");
        char *create = create_table_sql(target, qname, rv, types);
        PGresult *res = rq_exec(target, err, create, 0, NULL);
        free(create);
        if (!res) {
            st = wr_error_prefix(err, "create %s", qname);
            goto done;
        }
        PQclear(res);
        cols = column_list(target, rv);
        char *copy_in = xasprintf("COPY %s (%s) FROM STDIN", qname, cols);
        (void)pgio_exec(target, copy_in, 0, NULL, &res);
        free(copy_in);
        if (PQresultStatus(res) != PGRES_COPY_IN) {
            pgio_fail(target, res, err, "copy into %s", qname);
            PQclear(res);
            st = err->status;
            goto done;
        }
        PQclear(res);
        bool folded = false;
        if (!so->order_key) st = snapshot_fold(ctx, rv, pt->rev, memory, false, NULL, target, &pg, render, &folded, err);
        if (st == WR_OK && !folded) {
            copy = xasprintf("COPY (%s) TO STDOUT", select);
            st = stream_copy(ctx, copy, NULL, target, &pg, err);
        }
        if (PQputCopyEnd(target, st == WR_OK ? NULL : "snapshot failed") != 1 && st == WR_OK)
            st = pgio_fail(target, NULL, err, "copy into %s", qname);
        res = PQgetResult(target);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && st == WR_OK) {
            st = pgio_fail(target, res, err, "copy into %s", qname);
        }
        PQclear(res);
        while ((res = PQgetResult(target)) != NULL) PQclear(res);
        if (st == WR_OK) fprintf(ctx->err, "loaded %lld rows into %s\n", pg.rows, qname);
        goto done;
    }

    if (format == SNAP_SQL) {
        PGconn *tc = ctx->hist;
        qname = qualified_name(tc, rv->nspname, rv->relname);
        types = column_types(tc, ctx->schema_q, rv, err);
        if (!types) {
            st = err->status;
            goto done;
        }
        warn_text_columns(ctx->err, rv, types, "the history server");
        char *create = create_table_sql(tc, qname, rv, types);
        cols = column_list(tc, rv);
        fprintf(f, "-- %s as of revision %lld (commit %s at %s)\n%s;\nCOPY %s (%s) FROM stdin;\n", what,
                (long long)pt->rev, pt->commit_lsn, pt->commit_time, create, qname, cols);
        free(create);
    }
    if (format == SNAP_JSON || format == SNAP_ALIGNED) {
        st = print_query(ctx, select, format, so->null_text, f, &pg, err);
        goto done;
    }
    bool folded = false;
    /* the C fold knows no erasure: a table with erased values goes through SQL (rare) */
    if (!erased && !so->order_key)
        st = snapshot_fold(ctx, rv, pt->rev, memory, format == SNAP_CSV, f, NULL, &pg, render, &folded, err);
    if (st == WR_OK && !folded) {
        copy = xasprintf("COPY (%s) TO STDOUT%s", select, format == SNAP_CSV ? " WITH (FORMAT csv, HEADER)" : "");
        st = stream_copy(ctx, copy, f, NULL, &pg, err);
    }
    if (st == WR_OK && format == SNAP_SQL) fputs("\\.\n\n", f);
done:
    free(select);
    free(qname);
    free(cols);
    free(copy);
    if (types) rq_free_strv(types, rv->ncols);
    if (hist_types) rq_free_strv(hist_types, rv->ncols);
    if (render) rq_free_strv(render, rv->ncols);
    return st;
}

/*
 * --into: BEGIN on the target, and the schema, made if missing and then
 * marked (STORE_INTO_SCHEMA_COMMENT) so that neither `walrev setup` nor its
 * new-schema trigger ever publishes it. A schema that exists is used as it is.
 */
static WrStatus open_into_schema(PGconn *target, const char *into, WrError *err)
{
    const char *params[1] = {into};
    PGresult *res = rq_exec(target, err, "BEGIN", 0, NULL);
    if (!res) return err->status;
    PQclear(res);
    res = rq_exec(target, err, "SELECT NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", 1, params);
    if (!res) return err->status;
    bool missing = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!missing) return WR_OK;
    char *ns = rq_quote_ident(target, into);
    char *comment = PQescapeLiteral(target, STORE_INTO_SCHEMA_COMMENT, strlen(STORE_INTO_SCHEMA_COMMENT));
    StrBuf sql;
    strbuf_init(&sql);
    /* SET LOCAL: setup's new-schema trigger (walrev_publish_schema) leaves
     * this schema out of the publication, as setup itself does by the mark. */
    strbuf_appendf(&sql, "SET LOCAL walrev.publish_new_schema = off; CREATE SCHEMA %s; COMMENT ON SCHEMA %s IS %s", ns,
                   ns, comment);
    res = rq_exec(target, err, sql.data, 0, NULL);
    strbuf_free(&sql);
    PQfreemem(comment);
    free(ns);
    if (!res) return err->status;
    PQclear(res);
    return WR_OK;
}

/*
 * A table of a snapshot and its relation version at the point, each read
 * once per invocation: resolving a --table name reads the version of the
 * table it chooses, and --into's names need every version before the first
 * table is written (issue 13: each named table's name was resolved twice and
 * its version read two or three times, 26-57 ms a statement on a busy
 * store, which kept the regression suite's comparison from finishing).
 */
typedef struct {
    uint32_t relid;
    RelVersion rv; /* once read; owned, taken by the table's turn */
    bool found;
    bool read;
} SnapTable;

/* t's relation version at rev, read unless it was. */
static WrStatus snap_table_read(ReplayCtx *ctx, SnapTable *t, int64_t rev, WrError *err)
{
    if (t->read) return WR_OK;
    t->read = true;
    return rq_relation_at(ctx, t->relid, rev, &t->rv, &t->found, err);
}

/*
 * The name each table gets in the --into schema: its own, unless another of
 * the tables has that name in another schema; then "nspname.relname" for
 * each of them, so schemas stay apart. (*names)[i] NULL for a table not there
 * at rev. Caller frees with rq_free_strv(*names, n).
 */
static WrStatus into_table_names(ReplayCtx *ctx, SnapTable *tables, int n, int64_t rev, char ***names,
                                 WrError *err)
{
    char **nsp = xcalloc((size_t)n + 1, sizeof(char *));
    *names = xcalloc((size_t)n + 1, sizeof(char *));
    WrStatus st = WR_OK;
    for (int i = 0; i < n && st == WR_OK; i++) {
        st = snap_table_read(ctx, &tables[i], rev, err);
        if (st == WR_OK && tables[i].found) {
            nsp[i] = xstrdup(tables[i].rv.nspname);
            (*names)[i] = xstrdup(tables[i].rv.relname);
        }
    }
    /* decide for every table before renaming any: a renamed one no longer matches */
    bool *shared = xcalloc((size_t)n + 1, sizeof(bool));
    for (int i = 0; i < n && st == WR_OK; i++)
        for (int j = 0; j < n && (*names)[i]; j++)
            if (j != i && (*names)[j] && strcmp((*names)[i], (*names)[j]) == 0 && strcmp(nsp[i], nsp[j]) != 0)
                shared[i] = true;
    for (int i = 0; i < n; i++) {
        if (!shared[i]) continue;
        char *q = xasprintf("%s.%s", nsp[i], (*names)[i]);
        free((*names)[i]);
        (*names)[i] = q;
    }
    free(shared);
    rq_free_strv(nsp, n);
    return st;
}

/* The tables of a snapshot: each --table name as of pt (a name is the
 * table's that had it then), its version read while resolving it; without
 * --table every tracked table, its version read at its turn. */
static WrStatus snapshot_tables(ReplayCtx *ctx, const char *const *names, int nnames, int64_t rev,
                                SnapTable **tables, int *n, WrError *err)
{
    *n = 0;
    if (nnames) {
        *tables = xcalloc((size_t)nnames, sizeof(SnapTable));
        for (; *n < nnames; (*n)++) {
            SnapTable *t = &(*tables)[*n];
            t->read = true;
            if (rq_resolve_table_rv(ctx, names[*n], rev, &t->relid, &t->rv, &t->found, err) != WR_OK) {
                (*n)++; /* its version is freed with the others */
                return err->status;
            }
        }
        return WR_OK;
    }
    uint32_t *relids = NULL;
    *tables = NULL;
    if (rq_all_tables(ctx, &relids, n, err) != WR_OK) return err->status;
    *tables = xcalloc((size_t)*n + 1, sizeof(SnapTable));
    for (int i = 0; i < *n; i++) (*tables)[i].relid = relids[i];
    free(relids);
    return WR_OK;
}

/* --format's word as a SNAP_* value; -1 when unknown. */
static int snapshot_format(const char *word)
{
    if (strcmp(word, "text") == 0 || strcmp(word, "copy") == 0) return SNAP_TEXT;
    if (strcmp(word, "csv") == 0) return SNAP_CSV;
    if (strcmp(word, "sql") == 0) return SNAP_SQL;
    if (strcmp(word, "json") == 0) return SNAP_JSON;
    if (strcmp(word, "aligned") == 0) return SNAP_ALIGNED;
    return -1;
}

/*
 * A partitioned table's columns come from the table log, which keeps no
 * generation expression: its STORED generated columns (the log's last
 * element) leave the regular ones, to which parent_rows gives no value,
 * for rv's gen_* at the log's type and place; their expressions are the
 * members' (parent_generated).
 */
static WrStatus partitioned_generated(ReplayCtx *ctx, RelVersion *rv, int64_t rev, WrError *err)
{
    PGresult *res = rq_execf(ctx->hist, err,
                             "SELECT c.n, coalesce((c.c->>6)::boolean, false) FROM "
                             "jsonb_array_elements(%s.logged_columns(%u, %lld)) WITH ORDINALITY AS c(c, n) "
                             "ORDER BY c.n",
                             ctx->schema_q, rv->relid, (long long)rev);
    if (!res) return err->status;
    int n = PQntuples(res), kept = 0;
    rv->gen_names = xcalloc((size_t)n + 1, sizeof(char *));
    rv->gen_types = xcalloc((size_t)n + 1, sizeof(char *));
    rv->gen_exprs = xcalloc((size_t)n + 1, sizeof(char *));
    rv->gen_positions = xcalloc((size_t)n + 1, sizeof(int));
    for (int i = 0; i < rv->ncols; i++) {
        bool generated = false;
        for (int r = 0; r < n; r++)
            if (atoi(PQgetvalue(res, r, 0)) == rv->col_ids[i]) generated = PQgetvalue(res, r, 1)[0] == 't';
        if (generated) {
            /* col_ids are the log's ordinal positions (from 1): the place among all columns */
            rv->gen_names[rv->ngen] = rv->col_names[i];
            rv->gen_types[rv->ngen] = rv->type_names[i] ? rv->type_names[i] : xstrdup("text");
            rv->gen_exprs[rv->ngen] = xstrdup("NULL");
            rv->gen_positions[rv->ngen++] = rv->col_ids[i] - 1;
            continue;
        }
        rv->col_ids[kept] = rv->col_ids[i];
        rv->col_names[kept] = rv->col_names[i];
        rv->type_oids[kept] = rv->type_oids[i];
        rv->typmods[kept] = rv->typmods[i];
        rv->type_names[kept] = rv->type_names[i];
        rv->is_key[kept++] = rv->is_key[i];
    }
    rv->ncols = kept;
    PQclear(res);
    return WR_OK;
}

/*
 * A parent read through its members (relkind 'p' or 'i'): each member's
 * own generation expressions as of rev, from its relation version in force
 * (a partition or child may have its own: PARTITION OF p (c WITH OPTIONS
 * GENERATED ALWAYS AS (...) STORED)), so that each row is computed as its
 * table computed it. A partitioned table's default is its first member's.
 */
static WrStatus parent_generated(ReplayCtx *ctx, RelVersion *rv, int64_t rev, WrError *err)
{
    if (rv->relkind == 'p' && partitioned_generated(ctx, rv, rev, err) != WR_OK) return err->status;
    PGresult *res = rq_execf(ctx->hist, err,
                             "SELECT m.m, g.name, g.expr FROM %1$s.members_at(%2$u, %3$lld) AS m(m) "
                             "CROSS JOIN LATERAL %1$s.relation_at(m.m, %3$lld) v "
                             "CROSS JOIN LATERAL unnest(v.gen_names, v.gen_exprs) AS g(name, expr) "
                             "WHERE g.expr IS NOT NULL ORDER BY m.m, g.name",
                             ctx->schema_q, rv->relid, (long long)rev);
    if (!res) return err->status;
    int n = PQntuples(res);
    rv->member_relids = xcalloc((size_t)n + 1, sizeof(uint32_t));
    rv->member_gens = xcalloc((size_t)n + 1, sizeof(int));
    rv->member_exprs = xcalloc((size_t)n + 1, sizeof(char *));
    for (int r = 0; r < n; r++) {
        int g = -1;
        for (int k = 0; k < rv->ngen && g < 0; k++)
            if (strcmp(rv->gen_names[k], PQgetvalue(res, r, 1)) == 0) g = k;
        /* a column the parent has as a regular one (a member may generate it where the parent does not) */
        int c = -1;
        for (int k = 0; k < rv->ncols && g < 0 && c < 0; k++)
            if (strcmp(rv->col_names[k], PQgetvalue(res, r, 1)) == 0) c = k;
        if (g < 0 && c < 0) continue; /* the member's own column, not the parent's */
        int k = rv->nmember_exprs++;
        rv->member_relids[k] = (uint32_t)strtoul(PQgetvalue(res, r, 0), NULL, 10);
        rv->member_gens[k] = g >= 0 ? g : -(c + 1);
        rv->member_exprs[k] = xstrdup(PQgetvalue(res, r, 2));
        if (g >= 0 && rv->relkind == 'p' && strcmp(rv->gen_exprs[g], "NULL") == 0) {
            free(rv->gen_exprs[g]);
            rv->gen_exprs[g] = xstrdup(rv->member_exprs[k]);
        }
    }
    PQclear(res);
    return WR_OK;
}

/* The error for a table unlogged at pt. One made UNLOGGED after it was
 * logged has no history from the revision that made it so (the first
 * unlogged event since its last logged one: a rename while unlogged logs
 * another). One never logged up to pt has none before its history begins
 * (a later SET LOGGED) or, when it never began, none at all; the latter is
 * named as `setup` and `run` name it, schema-qualified. */
static WrStatus snapshot_unlogged_table(ReplayCtx *ctx, const char *table, uint32_t relid, const Point *pt,
                                        WrError *err)
{
    PGresult *res = rq_execf(ctx->hist, err,
                             "WITH ev AS (SELECT * FROM %1$s.table_event WHERE relid = %2$u), "
                             "logged AS (SELECT max(revision_id) AS rev FROM ev WHERE revision_id <= %3$lld "
                             "AND event NOT IN ('unlogged', 'drop')) "
                             "SELECT quote_ident(e.nspname) || '.' || quote_ident(e.relname), "
                             "(SELECT rev FROM logged) IS NOT NULL OR EXISTS (SELECT 1 FROM %1$s.relation_version v "
                             "WHERE v.relid = %2$u AND v.valid_from <= (SELECT end_lsn FROM %1$s.revision "
                             "WHERE id = %3$lld)), "
                             "(SELECT min(revision_id) FROM ev WHERE event = 'unlogged' AND revision_id <= %3$lld "
                             "AND revision_id >= coalesce((SELECT rev FROM logged), 0)), "
                             "(SELECT min(revision_id) FROM ev WHERE revision_id > %3$lld "
                             "AND event NOT IN ('unlogged', 'drop')), e.relkind "
                             "FROM ev e WHERE e.revision_id <= %3$lld ORDER BY e.revision_id DESC, e.seq DESC LIMIT 1",
                             ctx->schema_q, relid, (long long)pt->rev);
    if (!res) return err->status;
    bool one = PQntuples(res) == 1;
    const char *name = one ? PQgetvalue(res, 0, 0) : table;
    if (one && strcmp(PQgetvalue(res, 0, 4), "f") == 0)
        /* a foreign partition or INHERITS child (table_log.sql's catalog_state) */
        wr_error_set(err, WR_INVALID,
                     "table %s is a foreign table: its rows live on another server, where logical decoding here "
                     "cannot see them, so walrev has no history of it",
                     name);
    else if (one && PQgetvalue(res, 0, 1)[0] == 't')
        wr_error_set(err, WR_INVALID,
                     "table %s is unlogged at revision %lld: it was made UNLOGGED in revision %s, and logical "
                     "decoding cannot capture it since, so walrev has no history of it from there (ALTER TABLE "
                     "%s SET LOGGED starts one again, with a baseline)",
                     table, (long long)pt->rev, PQgetvalue(res, 0, 2), name);
    else if (one && !PQgetisnull(res, 0, 3))
        wr_error_set(err, WR_INVALID,
                     "table %s was not tracked yet at revision %lld: its history begins at revision %s; before, "
                     "logical decoding could not see it (it was unlogged, or outside the publication)",
                     table, (long long)pt->rev, PQgetvalue(res, 0, 3));
    else
        wr_error_set(err, WR_INVALID,
                     "table %s is unlogged: logical decoding cannot capture it, so walrev has no history of it "
                     "(ALTER TABLE %s SET LOGGED starts one, with a baseline)",
                     name, name);
    PQclear(res);
    return err->status;
}

/* The error for a table named by --table that has no version at pt: why
 * (unlogged, not tracked yet, dropped, not created yet, untracked now). */
static WrStatus snapshot_missing_table(ReplayCtx *ctx, const char *table, uint32_t relid, const RelVersion *rv,
                                       const Point *pt, WrError *err)
{
    if (rv->unlogged_rev > 0 && rv->unpublished)
        return wr_error_set(err, WR_INVALID,
                            "table %s is not published at revision %lld: it was removed from the publication in "
                            "revision %lld, and logical decoding sees none of its changes since, so walrev has no "
                            "history of it from there (adding it back to the publication starts one again, with its "
                            "rows then)",
                            table, (long long)pt->rev, (long long)rv->unlogged_rev);
    if (rv->unlogged_rev > 0) return snapshot_unlogged_table(ctx, table, relid, pt, err);
    if (rv->untracked)
        return wr_error_set(err, WR_INVALID,
                            "table %s was not tracked yet at revision %lld: its history begins at "
                            "revision %lld; before, logical decoding could not see it (it was unlogged, or "
                            "outside the publication)",
                            table, (long long)pt->rev, (long long)rv->created_rev);
    if (rv->dropped_rev > 0)
        return wr_error_set(err, WR_INVALID,
                            "table %s did not exist at revision %lld: it was dropped in "
                            "revision %lld",
                            table, (long long)pt->rev, (long long)rv->dropped_rev);
    if (rv->created_rev > 0)
        return wr_error_set(err, WR_INVALID,
                            "table %s did not exist yet at revision %lld: it was created in "
                            "revision %lld",
                            table, (long long)pt->rev, (long long)rv->created_rev);
    if (rq_untracked_now(ctx, table, relid, err)) return err->status;
    return wr_error_set(err, WR_INVALID, "table %s was not tracked yet at revision %lld", table, (long long)pt->rev);
}

/* A table that joined the publication after setup has its stream changes in
 * the history before its baseline adds the rows they did not touch: until
 * the baseline is done (backfill.whole_from), the history alone would answer
 * a fraction of the table. That is refused, for the table or, for a parent,
 * any of its members at the point. A partition that joined with its
 * partitioned parent (ALTER PUBLICATION: its first table-log row is that
 * join's 'alter', not a creation or setup's seed) and has no backfill row
 * yet is such a table whose baseline the worker has not requested yet.
 * Within its first revision a creation counts first: an application's
 * ddl_command_end trigger that alters each new table (REPLICA IDENTITY
 * FULL, say) fires before walrev_log_tables, so the partition's nested
 * 'alter' precedes its 'create' in the same transaction, and a table dropped
 * before the worker's baseline check saw it never gets a backfill row. */
static WrStatus snapshot_whole_table(ReplayCtx *ctx, const char *table, const RelVersion *rv, uint32_t relid,
                                     int64_t rev, WrError *err)
{
    bool parent = rv->relkind == 'p' || rv->relkind == 'i';
    PGresult *res = rq_execf(
        ctx->hist, err,
        "SELECT * FROM ("
        "SELECT quote_ident(b.nspname) || '.' || quote_ident(b.relname), b.state, coalesce(b.error, ''), w, "
        "b.relid <> %2$u AS member, b.relid FROM %1$s.backfill b, "
        "LATERAL (SELECT (to_jsonb(b) ->> 'whole_from')::bigint AS w) x "
        "WHERE (b.relid = %2$u OR (%4$s AND b.relid IN (SELECT m FROM %1$s.members_at(%2$u, %3$lld) m))) "
        "AND (w = -1 OR w > %3$lld) "
        "UNION ALL "
        "SELECT quote_ident(e.nspname) || '.' || quote_ident(e.relname), 'not requested yet', '', -1, "
        "e.relid <> %2$u, e.relid FROM (SELECT DISTINCT ON (f.relid) f.* FROM %1$s.table_event f "
        "  WHERE f.relid = %2$u OR (%4$s AND f.relid IN (SELECT m FROM %1$s.members_at(%2$u, %3$lld) m)) "
        "  ORDER BY f.relid, f.revision_id, f.event <> 'create', f.seq) e "
        "WHERE e.event = 'alter' AND e.relkind = 'r' AND e.parent IS NOT NULL AND e.revision_id <= %3$lld "
        "AND NOT EXISTS (SELECT 1 FROM %1$s.backfill b WHERE b.relid = e.relid)) y "
        "ORDER BY y.member, y.relid LIMIT 1",
        ctx->schema_q, relid, (long long)rev, parent ? "true" : "false");
    if (!res) return err->status;
    WrStatus st = WR_OK;
    if (PQntuples(res) == 1) {
        const char *name = PQgetvalue(res, 0, 0), *state = PQgetvalue(res, 0, 1), *why = PQgetvalue(res, 0, 2);
        const char *whole = PQgetvalue(res, 0, 3);
        char of[600] = "";
        if (PQgetvalue(res, 0, 4)[0] == 't') snprintf(of, sizeof(of), " (its member %s's)", name);
        if (strcmp(whole, "-1") == 0)
            st = wr_error_set(err, WR_INVALID,
                              "table %s is incomplete at revision %lld: it joined the publication after setup and "
                              "its baseline%s is %s%s%s, so the history holds only the rows its changes touched "
                              "(walrev status shows the baseline; walrev baseline --table %s requests it again)",
                              table, (long long)rev, of, state, why[0] ? ": " : "", why, name);
        else
            st = wr_error_set(err, WR_INVALID,
                              "table %s is incomplete at revision %lld: it joined the publication after setup and "
                              "its baseline%s completed in revision %s; before, the history holds only the rows its "
                              "changes touched",
                              table, (long long)rev, of, whole);
    }
    PQclear(res);
    return st;
}

WrStatus rq_table_whole_rv(ReplayCtx *ctx, const char *table, uint32_t relid, bool members, int64_t rev,
                           const RelVersion *rv, bool found, bool absent_ok, WrError *err)
{
    if (!found && (!absent_ok || rv->untracked || rv->unlogged_rev > 0)) {
        Point pt = {.rev = rev};
        return snapshot_missing_table(ctx, table, relid, rv, &pt, err);
    }
    if (!found) return WR_OK;
    RelVersion kind = *rv; /* shallow: only its relkind is read, and changed here */
    if (members && kind.relkind == 'r') kind.relkind = 'i'; /* an INHERITS parent: its children's rows too */
    return snapshot_whole_table(ctx, table, &kind, relid, rev, err);
}

static WrStatus table_whole_at(ReplayCtx *ctx, const char *table, uint32_t relid, bool members, int64_t rev,
                               bool absent_ok, WrError *err)
{
    RelVersion rv;
    bool found;
    if (rq_relation_at(ctx, relid, rev, &rv, &found, err) != WR_OK) return err->status;
    WrStatus st = rq_table_whole_rv(ctx, table, relid, members, rev, &rv, found, absent_ok, err);
    relversion_term(&rv);
    return st;
}

WrStatus rq_table_whole_at(ReplayCtx *ctx, const char *table, uint32_t relid, bool members, int64_t rev,
                           WrError *err)
{
    return table_whole_at(ctx, table, relid, members, rev, true, err);
}

WrStatus rq_table_there_at(ReplayCtx *ctx, const char *table, uint32_t relid, bool members, int64_t rev,
                           WrError *err)
{
    return table_whole_at(ctx, table, relid, members, rev, false, err);
}

/* --output-dir, before any table is read: a directory that is not there
 * fails at once, saying why. */
static WrStatus check_outdir(const char *outdir, WrError *err)
{
    struct stat sb;
    if (stat(outdir, &sb) != 0)
        return wr_error_set(err, WR_FATAL, "--output-dir %s: %s (the directory must exist)", outdir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return wr_error_set(err, WR_FATAL, "--output-dir %s: not a directory", outdir);
    return WR_OK;
}

/* One part of an --output-dir file name: '%', '/' and '.' written %25, %2F
 * and %2E, so that a name with a slash is a file in DIR (it was a path into
 * a directory that is not there, and the whole snapshot failed) and no two
 * tables share a file ("a.b"."c" and "a"."b.c" were both a.b.c.copy, the
 * second silently replacing the first). Other names are as they are. */
static void append_file_part(StrBuf *b, const char *name)
{
    for (const char *p = name; *p; p++) {
        if (*p == '%' || *p == '/' || *p == '.')
            strbuf_appendf(b, "%%%02X", (unsigned)(unsigned char)*p);
        else
            strbuf_append_char(b, *p);
    }
}

/* DIR/schema.table.EXT of a table; the caller frees it. */
static char *outdir_file(const char *outdir, const char *nsp, const char *rel, const char *ext)
{
    StrBuf b;
    strbuf_init(&b);
    strbuf_appendf(&b, "%s/", outdir);
    append_file_part(&b, nsp);
    strbuf_append_char(&b, '.');
    append_file_part(&b, rel);
    strbuf_appendf(&b, ".%s", ext);
    return b.data;
}

/* Close an --output-dir file; st, or the write error if st was WR_OK. A
 * write that failed earlier (a full disk) leaves only ferror's flag. */
static WrStatus close_outfile(FILE *f, const char *path, WrStatus st, WrError *err)
{
    bool bad = ferror(f) != 0;
    errno = 0;
    bool closed = fclose(f) == 0;
    if ((bad || !closed) && st == WR_OK)
        st = wr_error_set(err, WR_FATAL, "cannot write %s: %s", path,
                          errno ? strerror(errno) : "a write failed (disk full or an I/O error)");
    return st;
}

/* snapshot's arguments, every one checked before the history store is opened. */
typedef struct {
    const char *at, *into, *target_ci, *outdir;
    const char *tables[256];
    int ntables, format;
    SnapOutput so;
    size_t memory;
} SnapArgs;

static WrStatus parse_snapshot_args(ReplayCtx *ctx, int argc, char **argv, SnapArgs *a, WrError *err)
{
    memset(a, 0, sizeof(*a));
    a->format = SNAP_TEXT;
    a->memory = (size_t)SNAP_MEMORY_MIB << 20;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", rq_snapshot_options, NULL)) != -1) {
        switch (c) {
        case OPT_AT: a->at = optarg; break;
        case OPT_TABLE: {
            bool again = false; /* the same name twice is one table */
            for (int i = 0; i < a->ntables && !again; i++) again = strcmp(a->tables[i], optarg) == 0;
            if (again) break;
            if (a->ntables == 256) return rq_usage(ctx, err, "too many --table options");
            a->tables[a->ntables++] = optarg;
            break;
        }
        case OPT_FORMAT:
            if ((a->format = snapshot_format(optarg)) < 0)
                return rq_usage(ctx, err, "unknown --format %s: expected text, csv, json, aligned or sql", optarg);
            break;
        case OPT_NULL: a->so.null_text = optarg; break;
        case OPT_ORDER:
            if (strcmp(optarg, "key") != 0) return rq_usage(ctx, err, "unknown --order %s: expected key", optarg);
            a->so.order_key = true;
            break;
        case OPT_INTO: a->into = optarg; break;
        case OPT_TARGET: a->target_ci = optarg; break;
        case OPT_OUTDIR: a->outdir = optarg; break;
        case OPT_MEMORY: {
            char *end;
            long long mib = strtoll(optarg, &end, 10);
            if (end == optarg || *end || mib < 0 || mib > (1LL << 30))
                return rq_usage(ctx, err, "--memory %s: expected MiB, 0 or more", optarg);
            a->memory = (size_t)mib << 20;
            break;
        }
        default: return rq_bad_option(ctx, argc, argv, err);
        }
    }
    if (optind < argc) return rq_usage(ctx, err, "snapshot: unexpected argument %s", argv[optind]);
    if (a->into && a->outdir) return rq_usage(ctx, err, "--into and --output-dir exclude each other");
    if (a->target_ci && !a->into) return rq_usage(ctx, err, "--target is the database for --into: it needs --into");
    if (rq_check_table_names(ctx, a->tables, a->ntables, err) != WR_OK ||
        (a->at && rq_check_point(ctx, "--at", a->at, err) != WR_OK))
        return err->status;
    if (a->outdir) return check_outdir(a->outdir, err);
    return WR_OK;
}

WrStatus cmd_snapshot(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    SnapArgs a;
    ctx->copy_table_log = true; /* a dozen reads of it a table */
    if (parse_snapshot_args(ctx, argc, argv, &a, err) != WR_OK || rq_open_history(ctx, err) != WR_OK)
        return err->status;
    Point pt, last;
    WrStatus st = rq_newest(ctx, &last, err);
    if (st != WR_OK) return st;
    if (a.at) {
        if ((st = rq_resolve_point(ctx, a.at, &pt, err)) != WR_OK) return st;
    } else {
        pt = last;
    }

    SnapTable *tables = NULL;
    char **into_names = NULL; /* each table's name in the --into schema */
    int n = 0;
    if ((st = snapshot_tables(ctx, a.tables, a.ntables, pt.rev, &tables, &n, err)) != WR_OK) goto out;
    if (!a.into && !a.outdir && a.format != SNAP_SQL && n > 1) {
        st = wr_error_set(err, WR_INVALID,
                          "%d tables in one COPY stream would be ambiguous: name one --table, or use "
                          "--format sql, --into SCHEMA or --output-dir DIR",
                          n);
        goto out;
    }

    PGconn *target = NULL;
    if (a.into) {
        const char *ci = a.target_ci ? a.target_ci : (ctx->source_conninfo ? ctx->source_conninfo : ctx->hist_conninfo);
        st = rq_connect(ci, "the --into target", &target, err);
        if (st != WR_OK) goto out;
        st = open_into_schema(target, a.into, err);
        if (st == WR_OK) st = into_table_names(ctx, tables, n, pt.rev, &into_names, err);
        if (st != WR_OK) {
            PQfinish(target);
            goto out;
        }
    }
    for (int i = 0; i < n && st == WR_OK; i++) {
        if ((st = snap_table_read(ctx, &tables[i], pt.rev, err)) != WR_OK) break;
        RelVersion *rv = &tables[i].rv; /* freed at the end of its turn */
        uint32_t relid = tables[i].relid;
        if (!tables[i].found) {
            if (a.ntables) st = snapshot_missing_table(ctx, a.tables[i], relid, rv, &pt, err);
            relversion_term(rv); /* an unlogged table's names */
            continue;
        }
        /* An INHERITS parent read (text, csv, json, aligned) is what SELECT * FROM it shows: its
         * children's rows too. A restore (--into, --format sql) writes each table's own rows, as
         * pg_dump does: the children are tables of their own there. */
        if (rv->relkind == 'r' && !target && a.format != SNAP_SQL) {
            bool parent = false;
            if ((st = rq_inherits_at(ctx, relid, pt.rev, &parent, err)) != WR_OK) break;
            if (parent) rv->relkind = 'i';
        }
        /* a partition or child logical decoding cannot see: the parent's rows would lack its rows */
        if ((rv->relkind == 'p' || rv->relkind == 'i') &&
            ((st = rq_members_logged(ctx, relid, pt.rev, pt.rev, err)) != WR_OK ||
             (st = parent_generated(ctx, rv, pt.rev, err)) != WR_OK))
            break;
        char qualified[2 * 64 + 2];
        snprintf(qualified, sizeof(qualified), "%s.%s", rv->nspname, rv->relname);
        if ((st = snapshot_whole_table(ctx, a.ntables ? a.tables[i] : qualified, rv, relid, pt.rev, err)) != WR_OK)
            break;
        FILE *f = ctx->out;
        char *path = NULL;
        if (a.outdir) {
            path = outdir_file(a.outdir, rv->nspname, rv->relname,
                               a.format == SNAP_CSV       ? "csv"
                               : a.format == SNAP_SQL     ? "sql"
                               : a.format == SNAP_JSON    ? "jsonl"
                               : a.format == SNAP_ALIGNED ? "txt"
                                                          : "copy");
            f = fopen(path, "w");
            if (!f) st = wr_error_set(err, WR_FATAL, "cannot write %s: %s", path, strerror(errno));
        }
        if (st == WR_OK)
            st = snapshot_one(ctx, rv, &pt, a.format, &a.so, a.memory, f, target, a.into,
                              into_names ? into_names[i] : NULL, err);
        if (a.outdir && f) st = close_outfile(f, path, st, err);
        free(path);
        relversion_term(rv);
    }
    if (target) {
        PGresult *res = rq_exec(target, err, st == WR_OK ? "COMMIT" : "ROLLBACK", 0, NULL);
        if (!res && st == WR_OK) st = err->status;
        PQclear(res);
        PQfinish(target);
    }
out:
    rq_free_strv(into_names, n);
    for (int i = 0; i < n; i++) relversion_term(&tables[i].rv);
    free(tables);
    return st;
}
