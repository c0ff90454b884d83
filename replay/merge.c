/*
 * merge.c — `walrev diff A..B`, `walrev merge NAME [--apply]` and `walrev
 * review NAME` over branches (branch.h). Every comparison is three row sets
 * of one table matched by primary key: base (the history as of the fork),
 * ours (main, live) and theirs (the branch, live). A merge is a plan of
 * plain statements on main, ordered by plan.c's foreign-key rules, tried in
 * a transaction that is rolled back unless --apply finds no conflict left;
 * --apply locks main's tables and computes the plan again inside the very
 * transaction that applies it, so main cannot move between plan and apply.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "pgio/pgio.h"
#include "replay/branch.h"
#include "replay/plan.h"

/* ------------------------------------------------------------------ results */

/* A PGresult built here, so output.c prints it as any query result. Text columns. */
typedef struct {
    PGresult *res;
    int nf, nt;
} Table;

static void table_init(Table *t, const char *const *names, int nf)
{
    t->res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    if (!t->res) {
        fprintf(stderr, "walrev: out of memory\n");
        abort();
    }
    PGresAttDesc *d = xcalloc((size_t)nf, sizeof(PGresAttDesc));
    for (int i = 0; i < nf; i++) {
        d[i].name = xstrdup(names[i]); /* libpq copies it; its parameter is not const */
        d[i].typid = 25;               /* text */
        d[i].typlen = -1;
        d[i].atttypmod = -1;
    }
    if (!PQsetResultAttrs(t->res, nf, d)) abort();
    for (int i = 0; i < nf; i++) free(d[i].name);
    free(d);
    t->nf = nf;
    t->nt = 0;
}

static void table_set(Table *t, int row, int col, const char *v)
{
    char *copy = v ? xstrdup(v) : NULL; /* libpq copies it; its parameter is not const */
    if (!PQsetvalue(t->res, row, col, copy, v ? (int)strlen(v) : -1)) abort();
    free(copy);
}

/* ------------------------------------------------------------------ sides */

/* One side of a comparison: main (b == NULL) or a branch. */
typedef struct {
    const char *label;
    BranchInfo b;
    bool is_branch;
} Side;

static WrStatus side_load(ReplayCtx *ctx, const char *name, Side *s, WrError *err)
{
    memset(s, 0, sizeof(*s));
    s->label = name;
    if (strcmp(name, "main") == 0) return WR_OK;
    s->is_branch = true;
    return branch_load(ctx, name, &s->b, err);
}

/* The side's live copy of table relid (quoted), or NULL when a branch does not have it. Caller frees. */
static char *side_qname(PGconn *src, const Side *s, const BTableShape *t)
{
    if (!s->is_branch) return xstrdup(t->qname);
    const BranchTable *bt = branch_table_for(&s->b, t->relid);
    return bt ? branch_qname(src, &s->b, bt) : NULL;
}

static bool vals_eq(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

static bool rows_same(const BRow *a, const BRow *b, int ncols)
{
    if (!a || !b) return !a && !b;
    for (int c = 0; c < ncols; c++)
        if (!vals_eq(a->vals[c], b->vals[c])) return false;
    return true;
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Every key of the sets, sorted and distinct. Caller frees the array (keys borrowed). */
static const char **union_keys(const BRowSet *const *sets, int nsets, int *n)
{
    int cap = 0;
    for (int i = 0; i < nsets; i++) cap += sets[i]->n;
    const char **k = xcalloc((size_t)cap + 1, sizeof(char *));
    int m = 0;
    for (int i = 0; i < nsets; i++)
        for (int r = 0; r < sets[i]->n; r++) k[m++] = sets[i]->rows[r].key;
    qsort(k, (size_t)m, sizeof(char *), str_cmp);
    int out = 0;
    for (int i = 0; i < m; i++)
        if (out == 0 || strcmp(k[out - 1], k[i]) != 0) k[out++] = k[i];
    *n = out;
    return k;
}

/* A row as a JSON object of its columns (NULL for no row). Caller frees. */
static char *row_json(const BTableShape *t, const BRow *r)
{
    if (!r) return NULL;
    json_t *o = json_object();
    for (int c = 0; c < t->ncols; c++)
        json_object_set_new(o, t->cols[c], r->vals[c] ? json_string(r->vals[c]) : json_null());
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

/* ------------------------------------------------------------------ diff */

static const char *const DIFF_COLS[] = {"table", "key", "change", "column", "old_value", "new_value"};

static void diff_add(Table *out, const char *table, const char *key, const char *change, const char *col,
                     const char *oldv, const char *newv)
{
    int r = out->nt++;
    table_set(out, r, 0, table);
    table_set(out, r, 1, key);
    table_set(out, r, 2, change);
    table_set(out, r, 3, col);
    table_set(out, r, 4, oldv);
    table_set(out, r, 5, newv);
}

/* What x changed against base, cell by cell, in `walrev diff`'s rows; counts per change kind. */
static void diff_table(Table *out, const BTableShape *t, const BRowSet *base, const BRowSet *x, int counts[3])
{
    const BRowSet *sets[2] = {base, x};
    int nk;
    const char **keys = union_keys(sets, 2, &nk);
    for (int i = 0; i < nk; i++) {
        const BRow *b = browset_find(base, keys[i]), *r = browset_find(x, keys[i]);
        if (rows_same(b, r, t->ncols)) continue;
        const char *change = !b ? "added" : !r ? "removed" : "changed";
        counts[!b ? 0 : !r ? 1 : 2]++;
        for (int c = 0; c < t->ncols; c++) {
            const char *ov = b ? b->vals[c] : NULL, *nv = r ? r->vals[c] : NULL;
            if (b && r && vals_eq(ov, nv)) continue;
            diff_add(out, t->display, keys[i], change, t->cols[c], ov, nv);
        }
    }
    free(keys);
}

/* The base revision of a comparison of a and b: the earlier fork (main with itself has none). */
static WrStatus base_of(const Side *a, const Side *b, int64_t *rev, WrError *err)
{
    if (!a->is_branch && !b->is_branch) return wr_error_set(err, WR_INVALID, "main..main: name a branch on one side");
    if (a->is_branch && b->is_branch)
        *rev = a->b.fork_rev < b->b.fork_rev ? a->b.fork_rev : b->b.fork_rev;
    else
        *rev = a->is_branch ? a->b.fork_rev : b->b.fork_rev;
    return WR_OK;
}

/* The tables a comparison covers: the branch side's (the later side's when both are branches). */
static const BranchInfo *tables_of(const Side *a, const Side *b) { return b->is_branch ? &b->b : &a->b; }

static bool table_selected(const char *display, const char *const *tables, int ntables)
{
    if (ntables == 0) return true;
    for (int i = 0; i < ntables; i++) {
        if (strcmp(tables[i], display) == 0) return true;
        const char *dot = strchr(display, '.');
        if (!strchr(tables[i], '.') && dot && strcmp(dot + 1, tables[i]) == 0 && strncmp(display, "public.", 7) == 0)
            return true;
    }
    return false;
}

WrStatus branch_check_range(ReplayCtx *ctx, const char *range, WrError *err)
{
    const char *dots = strstr(range, "..");
    char *left = xstrndup(range, (size_t)(dots - range));
    WrStatus st = WR_OK;
    if (strcmp(left, "main") != 0) st = branch_check_name(ctx, left, err);
    if (st == WR_OK && strcmp(dots + 2, "main") != 0) st = branch_check_name(ctx, dots + 2, err);
    free(left);
    return st;
}

WrStatus branch_diff(ReplayCtx *ctx, const char *range, const char *const *tables, int ntables, OutFormat fmt,
                     const char *null_text, WrError *err)
{
    const char *dots = strstr(range, "..");
    char *left = xstrndup(range, (size_t)(dots - range));
    const char *right = dots + 2;
    Side a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    PGconn *src = NULL;
    Table out = {0};
    WrStatus st = side_load(ctx, left, &a, err);
    if (st == WR_OK) st = side_load(ctx, right, &b, err);
    int64_t base_rev = 0;
    if (st == WR_OK && strcmp(left, right) == 0) st = wr_error_set(err, WR_INVALID, "%s: both sides are one", range);
    if (st == WR_OK) st = base_of(&a, &b, &base_rev, err);
    if (st == WR_OK) st = branch_connect_source(ctx, &src, err);
    /* one snapshot of every table */
    if (st == WR_OK) st = rq_run(src, err, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    if (st == WR_OK) table_init(&out, DIFF_COLS, 6);
    const BranchInfo *bi = st == WR_OK ? tables_of(&a, &b) : NULL;
    for (int i = 0; st == WR_OK && i < bi->ntables; i++) {
        BTableShape t;
        BRowSet base = {0}, x = {0};
        char *q = NULL;
        st = btable_shape_load(ctx, src, bi->tables[i].relid, &t, err);
        if (st == WR_OK && !table_selected(t.display, tables, ntables)) goto next;
        if (st == WR_OK) q = side_qname(src, &b, &t);
        if (st == WR_OK && !q) goto next;
        if (st == WR_OK) st = browset_load_base(ctx, &t, base_rev, &base, err);
        if (st == WR_OK) st = browset_load_live(src, &t, q, &x, err);
        if (st == WR_OK) {
            int counts[3] = {0};
            diff_table(&out, &t, &base, &x, counts);
        }
    next:
        free(q);
        browset_term(&base, t.ncols);
        browset_term(&x, t.ncols);
        btable_shape_term(&t);
    }
    if (st == WR_OK) out_print_result(ctx->out, out.res, fmt, null_text);
    if (out.res) PQclear(out.res);
    if (src) PQfinish(src);
    branch_info_term(&a.b);
    branch_info_term(&b.b);
    free(left);
    return st;
}

/* ------------------------------------------------------------------ merge */

enum { CF_CELL, CF_DELETE_UPDATE, CF_UPDATE_DELETE, CF_INSERT_INSERT, CF_CONSTRAINT };
static const char *const KIND_NAMES[] = {"cell", "delete/update", "update/delete", "insert/insert", "constraint"};

typedef struct {
    char *table, *key, *column, *base, *ours, *theirs, *resolution, *detail;
    int kind;
} Conflict;

/* What a statement of the plan is about, for a constraint it trips. */
typedef struct {
    const char *sql; /* the plan's statement (borrowed: the plan owns it) */
    char *table, *key, *base, *ours, *theirs;
} StmtInfo;

typedef struct {
    ReplayCtx *ctx;
    PGconn *src;
    json_t *resolve; /* --resolve FILE, or NULL */
    Conflict *c;
    int nc, cap, unresolved;
    UndoPlan plan;
    StmtInfo *si;
    int nsi;
    /* what the branch changes, per table: rows added, removed, changed (review) */
    Table changes;
    char **sum_tables;
    int (*sum_counts)[3];
    int nsum;
} Merge;

static void add_conflict(Merge *m, const char *table, const char *key, int kind, const char *column, const char *base,
                         const char *ours, const char *theirs, const char *resolution, const char *detail)
{
    if (m->nc == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->c = xrealloc(m->c, (size_t)m->cap * sizeof(Conflict));
    }
    Conflict *c = &m->c[m->nc++];
    c->table = xstrdup(table);
    c->key = xstrdup(key);
    c->kind = kind;
    c->column = column ? xstrdup(column) : NULL;
    c->base = base ? xstrdup(base) : NULL;
    c->ours = ours ? xstrdup(ours) : NULL;
    c->theirs = theirs ? xstrdup(theirs) : NULL;
    c->resolution = resolution ? xstrdup(resolution) : NULL;
    c->detail = detail ? xstrdup(detail) : NULL;
    if (!resolution) m->unresolved++;
}

static void merge_term(Merge *m)
{
    for (int i = 0; i < m->nc; i++) {
        Conflict *c = &m->c[i];
        free(c->table);
        free(c->key);
        free(c->column);
        free(c->base);
        free(c->ours);
        free(c->theirs);
        free(c->resolution);
        free(c->detail);
    }
    free(m->c);
    for (int i = 0; i < m->nsi; i++) {
        free(m->si[i].table);
        free(m->si[i].key);
        free(m->si[i].base);
        free(m->si[i].ours);
        free(m->si[i].theirs);
    }
    free(m->si);
    m->plan.src = NULL; /* ours, not the plan's */
    plan_term(&m->plan);
    if (m->changes.res) PQclear(m->changes.res);
    rq_free_strv(m->sum_tables, m->nsum);
    free(m->sum_counts);
}

/* A resolution: ours, theirs, or a value. */
enum { R_NONE, R_OURS, R_THEIRS, R_VALUE };

typedef struct {
    int how;
    char *value; /* R_VALUE: the text (NULL: SQL NULL); owned */
} Resolution;

/*
 * The resolution the --resolve file gives for (table, key, column): a cell's
 * own, else its row's, else its table's. column NULL asks for a row's (a
 * row conflict): a row given per cell does not settle a row conflict.
 */
static WrStatus resolution_for(Merge *m, const char *table, const char *key, const char *column, Resolution *r,
                               WrError *err)
{
    r->how = R_NONE;
    r->value = NULL;
    if (!m->resolve) return WR_OK;
    json_t *tj = json_object_get(m->resolve, table), *e = NULL;
    if (!tj) return WR_OK;
    if (json_is_string(tj)) {
        e = tj;
    } else if (json_is_object(tj)) {
        const char *k;
        json_t *v;
        json_object_foreach(tj, k, v)
        {
            char *norm = NULL;
            WrError e2 = {0};
            if (rq_parse_key(k, &norm, &e2) != WR_OK) {
                free(norm);
                return wr_error_set(err, WR_INVALID, "--resolve: table %s: %s", table, e2.msg);
            }
            bool match = strcmp(norm, key) == 0;
            free(norm);
            if (!match) continue;
            if (json_is_string(v))
                e = v;
            else if (json_is_object(v) && column)
                e = json_object_get(v, column);
            else if (!json_is_object(v))
                return wr_error_set(err, WR_INVALID,
                                    "--resolve: %s %s: expected \"ours\", \"theirs\" or an object of columns", table,
                                    k);
            break;
        }
    } else {
        return wr_error_set(err, WR_INVALID, "--resolve: %s: expected \"ours\", \"theirs\" or an object of rows",
                            table);
    }
    if (!e) return WR_OK;
    if (json_is_string(e) && strcmp(json_string_value(e), "ours") == 0) {
        r->how = R_OURS;
    } else if (json_is_string(e) && strcmp(json_string_value(e), "theirs") == 0) {
        r->how = R_THEIRS;
    } else if (json_is_object(e) && json_object_get(e, "value")) {
        json_t *v = json_object_get(e, "value");
        r->how = R_VALUE;
        if (json_is_string(v))
            r->value = xstrdup(json_string_value(v));
        else if (!json_is_null(v))
            r->value = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    } else {
        return wr_error_set(err, WR_INVALID, "--resolve: %s %s%s%s: expected \"ours\", \"theirs\" or {\"value\": V}",
                            table, key, column ? " " : "", column ? column : "");
    }
    return WR_OK;
}

static const char *resolution_name(const Resolution *r)
{
    return r->how == R_OURS ? "ours" : r->how == R_THEIRS ? "theirs" : r->how == R_VALUE ? "value" : NULL;
}

static void add_stmt(Merge *m, int ti, int kind, char *sql, const BTableShape *t, const char *key, const BRow *b,
                     const BRow *o, const BRow *th)
{
    UndoPlan *u = &m->plan;
    if (u->nstmts == u->cap) {
        u->cap = u->cap ? u->cap * 2 : 16;
        u->stmts = xrealloc(u->stmts, (size_t)u->cap * sizeof(Stmt));
    }
    u->stmts[u->nstmts++] = (Stmt){ti, kind, sql};
    m->si = xrealloc(m->si, (size_t)(m->nsi + 1) * sizeof(StmtInfo));
    m->si[m->nsi++] =
        (StmtInfo){sql, xstrdup(t->display), xstrdup(key), row_json(t, b), row_json(t, o), row_json(t, th)};
}

static void append_lit(PGconn *src, StrBuf *s, const char *v, const char *type)
{
    if (!v) {
        strbuf_append_str(s, "NULL");
        return;
    }
    char *lit = PQescapeLiteral(src, v, strlen(v));
    strbuf_appendf(s, "%s::%s", lit, type);
    PQfreemem(lit);
}

static void append_id(PGconn *src, StrBuf *s, const char *name)
{
    char *id = rq_quote_ident(src, name);
    strbuf_append_str(s, id);
    free(id);
}

static void append_where(PGconn *src, StrBuf *s, const BTableShape *t, const BRow *o)
{
    strbuf_append_str(s, " WHERE ");
    for (int c = 0, k = 0; c < t->ncols; c++) {
        if (!t->is_key[c]) continue;
        if (k++) strbuf_append_str(s, " AND ");
        append_id(src, s, t->cols[c]);
        strbuf_append_str(s, " = ");
        append_lit(src, s, o->vals[c], t->types[c]);
    }
}

/* The statement that makes main's row o into merged (either may be NULL). */
static void emit(Merge *m, int ti, const BTableShape *t, const char *key, const BRow *b, const BRow *o, const BRow *th,
                 const char *const *merged)
{
    PGconn *src = m->src;
    StrBuf s;
    strbuf_init(&s);
    if (!o && merged) {
        strbuf_appendf(&s, "INSERT INTO %s (", t->qname);
        for (int c = 0; c < t->ncols; c++) {
            if (c) strbuf_append_str(&s, ", ");
            append_id(src, &s, t->cols[c]);
        }
        /* an identity column GENERATED ALWAYS takes the branch's value too */
        strbuf_append_str(&s, ") OVERRIDING SYSTEM VALUE VALUES (");
        for (int c = 0; c < t->ncols; c++) {
            if (c) strbuf_append_str(&s, ", ");
            append_lit(src, &s, merged[c], t->types[c]);
        }
        strbuf_append_char(&s, ')');
        add_stmt(m, ti, K_INSERT, s.data, t, key, b, o, th);
    } else if (o && !merged) {
        strbuf_appendf(&s, "DELETE FROM %s", t->qname);
        append_where(src, &s, t, o);
        add_stmt(m, ti, K_DELETE, s.data, t, key, b, o, th);
    } else if (o && merged) {
        strbuf_appendf(&s, "UPDATE %s SET ", t->qname);
        int k = 0;
        for (int c = 0; c < t->ncols; c++) {
            if (vals_eq(o->vals[c], merged[c])) continue;
            if (k++) strbuf_append_str(&s, ", ");
            append_id(src, &s, t->cols[c]);
            strbuf_append_str(&s, " = ");
            append_lit(src, &s, merged[c], t->types[c]);
        }
        append_where(src, &s, t, o);
        if (k)
            add_stmt(m, ti, K_UPDATE, s.data, t, key, b, o, th);
        else
            strbuf_free(&s);
    } else {
        strbuf_free(&s);
    }
}

/*
 * The three-way merge of one table, key by key: a side that left a row as
 * the base had it takes the other side's; both sides alike need nothing;
 * otherwise cell by cell, and what both changed apart is a conflict,
 * settled by the --resolve file or left open.
 */
static WrStatus merge_table(Merge *m, int ti, const BTableShape *t, const BRowSet *B, const BRowSet *O,
                            const BRowSet *T, WrError *err)
{
    const BRowSet *sets[3] = {B, O, T};
    int nk;
    const char **keys = union_keys(sets, 3, &nk);
    const char **merged = xcalloc((size_t)t->ncols + 1, sizeof(char *));
    WrStatus st = WR_OK;
    for (int i = 0; i < nk && st == WR_OK; i++) {
        const char *key = keys[i];
        const BRow *b = browset_find(B, key), *o = browset_find(O, key), *th = browset_find(T, key);
        if (rows_same(th, b, t->ncols) || rows_same(o, th, t->ncols)) continue;
        if (rows_same(o, b, t->ncols)) {
            /* a row-level "ours" leaves even a change without conflict out (a
             * constraint conflict settles that way); a table-level one does not */
            if (json_is_object(json_object_get(m->resolve, t->display))) {
                Resolution rr;
                if ((st = resolution_for(m, t->display, key, NULL, &rr, err)) != WR_OK) break;
                free(rr.value);
                if (rr.how == R_OURS) continue;
            }
            if (th) memcpy(merged, th->vals, (size_t)t->ncols * sizeof(char *));
            emit(m, ti, t, key, b, o, th, th ? merged : NULL);
            continue;
        }
        Resolution r;
        if (b && (!o || !th)) {
            /* deleted on one side, changed on the other: the whole row is one conflict */
            if ((st = resolution_for(m, t->display, key, NULL, &r, err)) != WR_OK) break;
            char *bj = row_json(t, b), *oj = row_json(t, o), *tj = row_json(t, th);
            add_conflict(m, t->display, key, o ? CF_UPDATE_DELETE : CF_DELETE_UPDATE, NULL, bj, oj, tj,
                         r.how == R_OURS || r.how == R_THEIRS ? resolution_name(&r) : NULL, NULL);
            free(bj);
            free(oj);
            free(tj);
            if (r.how == R_THEIRS) {
                if (th) memcpy(merged, th->vals, (size_t)t->ncols * sizeof(char *));
                emit(m, ti, t, key, b, o, th, th ? merged : NULL);
            }
            free(r.value);
            continue;
        }
        /* changed on both sides (or inserted on both under one key): cell by cell */
        memcpy(merged, o->vals, (size_t)t->ncols * sizeof(char *));
        char **owned = xcalloc((size_t)t->ncols + 1, sizeof(char *));
        bool open = false;
        for (int c = 0; c < t->ncols && st == WR_OK; c++) {
            const char *bv = b ? b->vals[c] : NULL, *ov = o->vals[c], *tv = th->vals[c];
            if (vals_eq(ov, tv)) continue;
            if (b && vals_eq(tv, bv)) continue;
            if (b && vals_eq(ov, bv)) {
                merged[c] = tv;
                continue;
            }
            if ((st = resolution_for(m, t->display, key, t->cols[c], &r, err)) != WR_OK) break;
            if (r.how == R_NONE) open = true;
            if (r.how == R_THEIRS) merged[c] = tv;
            if (r.how == R_VALUE)
                merged[c] = owned[c] = r.value;
            else
                free(r.value);
            add_conflict(m, t->display, key, b ? CF_CELL : CF_INSERT_INSERT, t->cols[c], bv, ov, tv,
                         resolution_name(&r), NULL);
            if (r.how == R_VALUE && !r.value) { /* a NULL value */
                merged[c] = NULL;
            }
        }
        if (st == WR_OK && !open) emit(m, ti, t, key, b, o, th, merged);
        rq_free_strv(owned, t->ncols);
    }
    free((void *)merged);
    free(keys);
    return st;
}

static void count_summary(Merge *m, const char *table, const int counts[3])
{
    m->sum_tables = xrealloc(m->sum_tables, (size_t)(m->nsum + 1) * sizeof(char *));
    m->sum_counts = xrealloc(m->sum_counts, (size_t)(m->nsum + 1) * sizeof(*m->sum_counts));
    m->sum_tables[m->nsum] = xstrdup(table);
    memcpy(m->sum_counts[m->nsum], counts, sizeof(int) * 3);
    m->nsum++;
}

/*
 * Try the plan's statements in the open transaction, each under a
 * savepoint: one that breaks a key, unique or foreign-key constraint (all
 * checked at once) is a conflict naming the constraint. The caller commits
 * or rolls back.
 */
static WrStatus try_plan(Merge *m, WrError *err)
{
    WrStatus st = rq_run(m->src, err, "SET CONSTRAINTS ALL IMMEDIATE", 0, NULL);
    if (st != WR_OK) return st;
    for (int i = 0; i < m->plan.nstmts; i++) {
        const Stmt *s = &m->plan.stmts[i];
        const StmtInfo *info = NULL;
        for (int k = 0; k < m->nsi; k++)
            if (m->si[k].sql == s->sql) info = &m->si[k];
        pgio_run_unchecked(m->src, "SAVEPOINT walrev_merge");
        PGresult *res;
        bool ok = pgio_exec(m->src, s->sql, 0, NULL, &res) && PQresultStatus(res) == PGRES_COMMAND_OK &&
                  (s->kind == K_INSERT || strcmp(PQcmdTuples(res), "1") == 0);
        if (!ok) {
            char *detail;
            const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
            char msg[512];
            const char *sqlstate;
            pgio_error_text(m->src, res, msg, sizeof(msg), &sqlstate);
            if (PQresultStatus(res) == PGRES_COMMAND_OK)
                detail = xasprintf("%s row(s) matched instead of 1: main changed meanwhile", PQcmdTuples(res));
            else
                detail = xasprintf("%s%s%s%s", cons ? "constraint " : "", cons ? cons : "", cons ? ": " : "", msg);
            add_conflict(m, info ? info->table : "?", info ? info->key : "?", CF_CONSTRAINT, NULL,
                         info ? info->base : NULL, info ? info->ours : NULL, info ? info->theirs : NULL, NULL, detail);
            free(detail);
        }
        PQclear(res);
        st = rq_run(m->src, err, ok ? "RELEASE SAVEPOINT walrev_merge" : "ROLLBACK TO SAVEPOINT walrev_merge", 0, NULL);
        if (st != WR_OK) return st;
    }
    return WR_OK;
}

/* The branch's own revisions since its fork (the one that made it left out), oldest first. */
static PGresult *branch_revisions(ReplayCtx *ctx, const BranchInfo *b, WrError *err)
{
    char fork[32];
    snprintf(fork, sizeof(fork), "%lld", (long long)b->fork_rev);
    const char *params[2] = {b->name, fork};
    PGresult *res = rq_execp(
        ctx->hist, err, 2, params,
        "WITH br AS (SELECT DISTINCT v.relid FROM %1$s.branch b CROSS JOIN jsonb_array_elements(b.tables) t "
        "  JOIN %1$s.relation_version v ON v.nspname = b.schema_name AND v.relname = t->>'branch_table' "
        "  WHERE b.name = $1) "
        "SELECT r.id AS revision, to_char(r.commit_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS commit_time, "
        "  r.actor_type, r.actor_id, r.description, count(*) AS changes "
        "FROM %1$s.object_delta d JOIN %1$s.revision r ON r.id = d.revision_id "
        "WHERE d.relid IN (SELECT relid FROM br) AND d.revision_id > $2::bigint "
        "  AND coalesce(r.meta->>'branch_event', '') <> 'create' "
        "GROUP BY r.id ORDER BY r.id",
        ctx->schema_q);
    return res;
}

/*
 * The merge of branch b into main on m->src, in the transaction the caller
 * opened: reads ours and theirs there, base from the history, builds the
 * plan in foreign-key order; with try, runs it (constraint conflicts).
 */
static WrStatus merge_compute(Merge *m, const BranchInfo *b, bool try, WrError *err)
{
    WrStatus st = WR_OK;
    static const char *const CH[] = {"table", "key", "change", "column", "old_value", "new_value"};
    table_init(&m->changes, CH, 6);
    for (int i = 0; i < b->ntables && st == WR_OK; i++) {
        BTableShape t;
        BRowSet B = {0}, O = {0}, T = {0};
        char *bq = branch_qname(m->src, b, &b->tables[i]);
        st = btable_shape_load(m->ctx, m->src, b->tables[i].relid, &t, err);
        if (st == WR_OK) st = browset_load_base(m->ctx, &t, b->fork_rev, &B, err);
        if (st == WR_OK) st = browset_load_live(m->src, &t, t.qname, &O, err);
        if (st == WR_OK) st = browset_load_live(m->src, &t, bq, &T, err);
        if (st == WR_OK) {
            /* the plan's table: plan.c orders its statements by foreign keys */
            UndoPlan *u = &m->plan;
            u->tables = xrealloc(u->tables, (size_t)(u->ntables + 1) * sizeof(LiveTable));
            memset(&u->tables[u->ntables], 0, sizeof(LiveTable));
            u->tables[u->ntables].relid = t.relid;
            u->tables[u->ntables].src_oid = t.relid;
            u->tables[u->ntables].qname = xstrdup(t.qname);
            int ti = u->ntables++;
            st = merge_table(m, ti, &t, &B, &O, &T, err);
            int counts[3] = {0};
            diff_table(&m->changes, &t, &B, &T, counts);
            count_summary(m, t.display, counts);
        }
        free(bq);
        browset_term(&B, t.ncols);
        browset_term(&O, t.ncols);
        browset_term(&T, t.ncols);
        btable_shape_term(&t);
    }
    if (st != WR_OK) return st;
    m->plan.src = m->src;
    if ((st = plan_order_by_foreign_keys(&m->plan, err)) != WR_OK) return st;
    plan_sort(&m->plan);
    return try ? try_plan(m, err) : WR_OK;
}

static const char *const CONFLICT_COLS[] = {"table", "key",    "kind",       "column", "base",
                                            "ours",  "theirs", "resolution", "detail"};

static void print_conflicts(Merge *m, FILE *f, OutFormat fmt, const char *null_text)
{
    Table t;
    table_init(&t, CONFLICT_COLS, 9);
    for (int i = 0; i < m->nc; i++) {
        Conflict *c = &m->c[i];
        const char *v[9] = {c->table, c->key,    KIND_NAMES[c->kind], c->column, c->base,
                            c->ours,  c->theirs, c->resolution,       c->detail};
        for (int k = 0; k < 9; k++) table_set(&t, i, k, v[k]);
    }
    out_print_result(f, t.res, fmt, null_text);
    PQclear(t.res);
}

/* Approvals that count: recorded at or after the branch's newest revision (a later change dismisses them). */
static WrStatus count_approvals(ReplayCtx *ctx, const BranchInfo *b, int64_t head, int *n, WrError *err)
{
    *n = 0;
    bool have;
    if (rq_has_table(ctx, "branch_approval", &have, err) != WR_OK) return err->status;
    if (!have) return WR_OK;
    char h[32];
    snprintf(h, sizeof(h), "%lld", (long long)head);
    const char *params[2] = {b->name, h};
    char *sql = xasprintf("SELECT count(*) FROM %s.branch_approval WHERE branch = $1 AND head_revision >= $2::bigint",
                          ctx->schema_q);
    PGresult *res = rq_exec(ctx->hist, err, sql, 2, params);
    free(sql);
    if (!res) return err->status;
    *n = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return WR_OK;
}

/* The branch's newest revision (its fork when none). */
static int64_t branch_head(const BranchInfo *b, const PGresult *revs)
{
    int n = PQntuples(revs);
    return n ? strtoll(PQgetvalue(revs, n - 1, 0), NULL, 10) : b->fork_rev;
}

enum { OPT_RESOLVE = 1000, OPT_APPLY, OPT_ACTOR, OPT_FORMAT, OPT_APPROVE, OPT_COMMENT, OPT_NULL };
const struct option rq_merge_options[] = {
    {"resolve", required_argument, NULL, OPT_RESOLVE}, {"apply", no_argument, NULL, OPT_APPLY},
    {"actor", required_argument, NULL, OPT_ACTOR},     {"format", required_argument, NULL, OPT_FORMAT},
    {"null", required_argument, NULL, OPT_NULL},       {NULL, 0, NULL, 0}};

static WrStatus load_resolve(const char *path, json_t **out, WrError *err)
{
    json_error_t je;
    *out = json_load_file(path, 0, &je);
    if (!*out) return wr_error_set(err, WR_INVALID, "--resolve %s: line %d: %s", path, je.line, je.text);
    if (!json_is_object(*out))
        return wr_error_set(err, WR_INVALID, "--resolve %s: expected a JSON object of tables", path);
    return WR_OK;
}

WrStatus cmd_merge(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    const char *resolve_path = NULL, *actor = NULL, *null_text = NULL;
    bool apply = false;
    OutFormat fmt = OUT_ALIGNED;
    const CliField fields[] = {CLI_STRING(OPT_RESOLVE, &resolve_path), CLI_FLAG(OPT_APPLY, &apply),
                               CLI_STRING(OPT_ACTOR, &actor), CLI_STRING(OPT_NULL, &null_text)};
    cli_start();
    int c;
    while ((c = cli_next(argc, argv, rq_merge_options, fields, CLI_NFIELDS(fields))) != -1) {
        if (c != OPT_FORMAT) return rq_bad_option(ctx, argc, argv, err);
        if (rq_parse_format(optarg, &fmt, err) != WR_OK) return rq_usage(ctx, err, "%s", err->msg);
    }
    if (optind != argc - 1)
        return rq_usage(ctx, err, "usage: walrev merge NAME [--resolve FILE] [--apply --actor TYPE:ID]");
    if (rq_check_actor(ctx, actor, err) != WR_OK) return err->status;
    if (apply && !actor) return rq_usage(ctx, err, "merge --apply needs --actor TYPE:ID: the merge is attributed");
    const char *name = argv[optind];
    if (branch_check_name(ctx, name, err) != WR_OK || rq_open_history(ctx, err) != WR_OK) return err->status;
    Merge m = {0};
    m.ctx = ctx;
    BranchInfo b;
    PGresult *revs = NULL;
    WrStatus st = branch_load(ctx, name, &b, err);
    if (st == WR_OK && resolve_path) st = load_resolve(resolve_path, &m.resolve, err);
    if (st == WR_OK && !(revs = branch_revisions(ctx, &b, err))) st = err->status;
    int64_t head = revs ? branch_head(&b, revs) : 0;
    if (st == WR_OK && apply && ctx->opts->required_approvals > 0) {
        int have = 0;
        st = count_approvals(ctx, &b, head, &have, err);
        if (st == WR_OK && have < ctx->opts->required_approvals)
            st = wr_error_set(err, WR_INVALID,
                              "nothing changed: branch %s has %d approval(s) of its revision %lld, %d required "
                              "([branches] required_approvals); `walrev review %s --approve --actor TYPE:ID`",
                              name, have, (long long)head, ctx->opts->required_approvals, name);
    }
    if (st == WR_OK) st = branch_connect_source(ctx, &m.src, err);
    PGresult *res;
    if (st == WR_OK) st = rq_run(m.src, err, apply ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL);
    if (st == WR_OK && apply) {
        /* main's tables hold still from here to COMMIT (reads go on); the branch's too */
        for (int i = 0; i < b.ntables && st == WR_OK; i++) {
            char oid[16];
            rq_oid_text(b.tables[i].relid, oid);
            char *bq = branch_qname(m.src, &b, &b.tables[i]);
            char *sql = xasprintf("LOCK TABLE %s IN SHARE MODE", bq);
            res = rq_exec(m.src, err, sql, 0, NULL);
            free(sql);
            free(bq);
            if (res) {
                PQclear(res);
                const char *params[1] = {oid};
                res = rq_exec(m.src, err, "SELECT $1::oid::regclass::text", 1, params);
            }
            if (res) {
                sql = xasprintf("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", PQgetvalue(res, 0, 0));
                PQclear(res);
                res = rq_exec(m.src, err, sql, 0, NULL);
                free(sql);
            }
            if (!res) st = wr_error_prefix(err, "locking the tables");
            PQclear(res);
        }
    }
    char *ctx_sql = NULL;
    if (st == WR_OK) {
        json_t *ids = json_array();
        StrBuf d;
        strbuf_init(&d);
        strbuf_appendf(&d, "walrev merge %s: branch %s forked at revision %lld, its revisions ", name, name,
                       (long long)b.fork_rev);
        for (int i = 0; i < PQntuples(revs); i++) {
            json_array_append_new(ids, json_integer(strtoll(PQgetvalue(revs, i, 0), NULL, 10)));
            strbuf_appendf(&d, "%s%s", i ? ", " : "", PQgetvalue(revs, i, 0));
        }
        if (PQntuples(revs) == 0) strbuf_append_str(&d, "(none)");
        json_t *meta = json_pack("{s:{s:s,s:I,s:o}}", "merge", "branch", name, "fork_revision", (json_int_t)b.fork_rev,
                                 "revisions", ids);
        ctx_sql = rq_context_sql(ctx, m.src, actor, d.data, meta);
        json_decref(meta);
        strbuf_free(&d);
    }
    if (st == WR_OK) st = merge_compute(&m, &b, !apply, err);
    if (st == WR_OK && apply && m.unresolved == 0) {
        /* the context first: it names the revision the statements make */
        res = rq_exec(m.src, err, ctx_sql, 0, NULL);
        if (!res) st = wr_error_prefix(err, "nothing changed: the walrev context function failed");
        PQclear(res);
        if (st == WR_OK) st = try_plan(&m, err);
    }
    if (st == WR_OK && m.nc > 0) {
        fprintf(ctx->out, "-- %d conflict%s, %d unresolved\n", m.nc, m.nc == 1 ? "" : "s", m.unresolved);
        print_conflicts(&m, ctx->out, fmt, null_text);
    }
    if (st == WR_OK) {
        if (m.plan.nstmts == 0) {
            fprintf(ctx->out, "-- walrev merge %s: nothing to change on main\n", name);
        } else {
            fprintf(ctx->out, "BEGIN;\n%s;\n", ctx_sql);
            for (int i = 0; i < m.plan.nstmts; i++) fprintf(ctx->out, "%s;\n", m.plan.stmts[i].sql);
            fprintf(ctx->out, "COMMIT;\n");
        }
        fflush(ctx->out);
    }
    if (st == WR_OK && m.unresolved > 0)
        st = wr_error_set(err, WR_INVALID,
                          "%snothing changed: %d unresolved conflict%s; settle %s with --resolve FILE "
                          "(docs/branches.md)",
                          apply ? "merge refused, " : "", m.unresolved, m.unresolved == 1 ? "" : "s",
                          m.unresolved == 1 ? "it" : "them");
    if (m.src && PQtransactionStatus(m.src) != PQTRANS_IDLE) {
        bool commit = st == WR_OK && apply && m.plan.nstmts > 0;
        if (!pgio_exec(m.src, commit ? "COMMIT" : "ROLLBACK", 0, NULL, &res) && commit) {
            char msg[512];
            const char *sqlstate;
            pgio_error_text(m.src, res, msg, sizeof(msg), &sqlstate);
            st = wr_error_set(err, WR_FATAL, "nothing changed: commit failed: %s", msg);
        }
        PQclear(res);
        if (st == WR_OK && commit)
            fprintf(ctx->err, "merged branch %s into main: %d statement%s as one transaction\n", name, m.plan.nstmts,
                    m.plan.nstmts == 1 ? "" : "s");
        else if (st == WR_OK && !apply)
            fprintf(ctx->err, "plan only: run again with --apply --actor TYPE:ID to merge\n");
    }
    free(ctx_sql);
    if (revs) PQclear(revs);
    merge_term(&m);
    json_decref(m.resolve);
    if (m.src) PQfinish(m.src);
    branch_info_term(&b);
    return st;
}

/* ------------------------------------------------------------------ review */

const struct option rq_review_options[] = {{"format", required_argument, NULL, OPT_FORMAT},
                                           {"approve", no_argument, NULL, OPT_APPROVE},
                                           {"actor", required_argument, NULL, OPT_ACTOR},
                                           {"comment", required_argument, NULL, OPT_COMMENT},
                                           {NULL, 0, NULL, 0}};

/* A markdown table cell: | and newlines would break the row. */
static void md_cell(FILE *f, const char *v)
{
    fputs(" ", f);
    if (!v) {
        fputs("NULL", f);
    } else {
        for (const char *p = v; *p; p++) {
            if (*p == '|')
                fputs("\\|", f);
            else if (*p == '\n')
                fputs("<br>", f);
            else
                fputc(*p, f);
        }
    }
    fputs(" |", f);
}

static void md_table(FILE *f, const PGresult *res)
{
    int nf = PQnfields(res);
    fputs("|", f);
    for (int c = 0; c < nf; c++) md_cell(f, PQfname(res, c));
    fputs("\n|", f);
    for (int c = 0; c < nf; c++) fputs(" --- |", f);
    fputs("\n", f);
    for (int r = 0; r < PQntuples(res); r++) {
        fputs("|", f);
        for (int c = 0; c < nf; c++) md_cell(f, PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c));
        fputs("\n", f);
    }
}

static json_t *json_rows(const PGresult *res)
{
    json_t *a = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        json_t *o = json_object();
        for (int c = 0; c < PQnfields(res); c++)
            json_object_set_new(o, PQfname(res, c),
                                PQgetisnull(res, r, c) ? json_null() : json_string(PQgetvalue(res, r, c)));
        json_array_append_new(a, o);
    }
    return a;
}

static WrStatus review_approve(ReplayCtx *ctx, const BranchInfo *b, int64_t head, const char *actor,
                               const char *comment, WrError *err)
{
    PGconn *hw;
    if (branch_connect_history_rw(ctx, &hw, err) != WR_OK) return err->status;
    const char *colon = strchr(actor, ':');
    char *type = xstrndup(actor, (size_t)(colon - actor));
    char h[32];
    snprintf(h, sizeof(h), "%lld", (long long)head);
    const char *params[5] = {b->name, type, colon + 1, h, comment};
    PGresult *res =
        rq_execp(hw, err, 5, params,
                 "INSERT INTO %s.branch_approval (branch, actor_type, actor_id, head_revision, comment) "
                 "VALUES ($1, $2, $3, $4::bigint, $5) ON CONFLICT (branch, actor_type, actor_id) DO UPDATE "
                 "SET head_revision = excluded.head_revision, approved_at = now(), comment = excluded.comment",
                 ctx->schema_q);
    free(type);
    WrStatus st = res ? WR_OK : wr_error_prefix(err, "recording the approval");
    PQclear(res);
    PQfinish(hw);
    if (st == WR_OK)
        fprintf(ctx->out, "approved branch %s at its revision %lld by %s\n", b->name, (long long)head, actor);
    return st;
}

/* The branch's approvals, each current (given at head or later) or stale; an
 * empty table of the same columns in a store without branch_approval. */
static WrStatus review_load_approvals(ReplayCtx *ctx, const BranchInfo *b, int64_t head, PGresult **apps, WrError *err)
{
    bool have;
    if (rq_has_table(ctx, "branch_approval", &have, err) != WR_OK) return err->status;
    if (!have) {
        Table t;
        static const char *const AC[] = {"actor", "at_revision", "approved", "state", "comment"};
        table_init(&t, AC, 5);
        *apps = t.res;
        return WR_OK;
    }
    const char *params[1] = {b->name};
    char *sql = xasprintf("SELECT a.actor_type || ':' || a.actor_id AS actor, a.head_revision AS at_revision, "
                          "  to_char(a.approved_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS approved, "
                          "  CASE WHEN a.head_revision >= %lld THEN 'current' ELSE 'stale' END AS state, a.comment "
                          "FROM %s.branch_approval a WHERE a.branch = $1 ORDER BY a.approved_at",
                          (long long)head, ctx->schema_q);
    *apps = rq_exec(ctx->hist, err, sql, 1, params);
    free(sql);
    return *apps ? WR_OK : err->status;
}

WrStatus cmd_review(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    const char *actor = NULL, *comment = NULL, *format = "markdown";
    bool approve = false;
    const CliField fields[] = {CLI_STRING(OPT_FORMAT, &format), CLI_FLAG(OPT_APPROVE, &approve),
                               CLI_STRING(OPT_ACTOR, &actor), CLI_STRING(OPT_COMMENT, &comment)};
    cli_start();
    if (cli_next(argc, argv, rq_review_options, fields, CLI_NFIELDS(fields)) != -1)
        return rq_bad_option(ctx, argc, argv, err);
    if (optind != argc - 1)
        return rq_usage(ctx, err, "usage: walrev review NAME [--format markdown|json] [--approve --actor TYPE:ID]");
    if (strcmp(format, "markdown") != 0 && strcmp(format, "json") != 0)
        return rq_usage(ctx, err, "unknown --format %s: expected markdown or json", format);
    if (rq_check_actor(ctx, actor, err) != WR_OK) return err->status;
    if (approve && !actor) return rq_usage(ctx, err, "review --approve needs --actor TYPE:ID");
    if (comment && !approve) return rq_usage(ctx, err, "--comment is a note with an approval: it needs --approve");
    const char *name = argv[optind];
    if (branch_check_name(ctx, name, err) != WR_OK || rq_open_history(ctx, err) != WR_OK) return err->status;
    BranchInfo b;
    WrStatus st = branch_load(ctx, name, &b, err);
    PGresult *revs = NULL, *moved = NULL, *apps = NULL;
    Merge m = {0};
    m.ctx = ctx;
    if (st == WR_OK && !(revs = branch_revisions(ctx, &b, err))) st = err->status;
    int64_t head = revs ? branch_head(&b, revs) : 0;
    if (st == WR_OK && approve) {
        st = review_approve(ctx, &b, head, actor, comment, err);
        goto out;
    }
    if (st == WR_OK) {
        StrBuf ids;
        strbuf_init(&ids);
        strbuf_append_char(&ids, '{');
        for (int i = 0; i < b.ntables; i++) strbuf_appendf(&ids, "%s%u", i ? "," : "", b.tables[i].relid);
        strbuf_append_char(&ids, '}');
        moved = rq_execf(ctx->hist, err,
                         "SELECT count(DISTINCT revision_id) FROM %s.object_delta WHERE relid = ANY ('%s'::oid[]) "
                         "AND revision_id > %lld",
                         ctx->schema_q, ids.data, (long long)b.fork_rev);
        strbuf_free(&ids);
        if (!moved) st = err->status;
    }
    if (st == WR_OK) st = review_load_approvals(ctx, &b, head, &apps, err);
    if (st == WR_OK) st = branch_connect_source(ctx, &m.src, err);
    if (st == WR_OK) st = rq_run(m.src, err, "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL);
    if (st == WR_OK) st = merge_compute(&m, &b, true, err);
    if (m.src) pgio_run_unchecked(m.src, "ROLLBACK");
    if (st != WR_OK) goto out;
    int current = 0;
    for (int i = 0; i < PQntuples(apps); i++) current += strcmp(PQgetvalue(apps, i, 3), "current") == 0;
    int required = ctx->opts->required_approvals;
    const char *verdict = m.unresolved         ? "blocked: unresolved conflicts with main"
                          : current < required ? "blocked: needs approvals"
                          : m.plan.nstmts == 0 ? "nothing to merge"
                                               : "ready to merge";
    FILE *f = ctx->out;
    Table conf;
    table_init(&conf, CONFLICT_COLS, 9);
    for (int i = 0; i < m.nc; i++) {
        Conflict *k = &m.c[i];
        const char *v[9] = {k->table, k->key,    KIND_NAMES[k->kind], k->column, k->base,
                            k->ours,  k->theirs, k->resolution,       k->detail};
        for (int j = 0; j < 9; j++) table_set(&conf, i, j, v[j]);
    }
    if (strcmp(format, "json") == 0) {
        json_t *sum = json_array();
        for (int i = 0; i < m.nsum; i++)
            json_array_append_new(sum,
                                  json_pack("{s:s,s:i,s:i,s:i}", "table", m.sum_tables[i], "added", m.sum_counts[i][0],
                                            "removed", m.sum_counts[i][1], "changed", m.sum_counts[i][2]));
        json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:I,s:I,s:o,s:o,s:o,s:o,s:{s:i,s:i,s:o},s:s}", "branch", b.name,
                              "schema", b.schema, "fork_revision", (json_int_t)b.fork_rev, "fork_lsn", b.fork_lsn,
                              "created_at", b.created_at, "created_by", b.created_by, "head_revision", (json_int_t)head,
                              "main_revisions_since_fork", (json_int_t)strtoll(PQgetvalue(moved, 0, 0), NULL, 10),
                              "summary", sum, "changes", json_rows(m.changes.res), "revisions", json_rows(revs),
                              "conflicts", json_rows(conf.res), "approvals", "current", current, "required", required,
                              "list", json_rows(apps), "verdict", verdict);
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fprintf(f, "%s\n", s);
        free(s);
        json_decref(o);
    } else {
        fprintf(f, "# Branch %s\n\n", b.name);
        fprintf(f,
                "Forked from main at revision %lld (%s) on %s by %s, in schema `%s`. "
                "Main has %s revision(s) on these tables since.\n\n",
                (long long)b.fork_rev, b.fork_lsn, b.created_at, b.created_by, b.schema, PQgetvalue(moved, 0, 0));
        fprintf(
            f,
            "**%s**\n\n## Summary\n\n| table | rows added | rows removed | rows changed |\n| --- | --- | --- | --- |\n",
            verdict);
        for (int i = 0; i < m.nsum; i++)
            fprintf(f, "| %s | %d | %d | %d |\n", m.sum_tables[i], m.sum_counts[i][0], m.sum_counts[i][1],
                    m.sum_counts[i][2]);
        fprintf(f, "\n## Changes on the branch\n\n");
        if (PQntuples(m.changes.res))
            md_table(f, m.changes.res);
        else
            fprintf(f, "None.\n");
        fprintf(f, "\n## Revisions on the branch\n\n");
        if (PQntuples(revs))
            md_table(f, revs);
        else
            fprintf(f, "None.\n");
        fprintf(f, "\n## Conflicts with main\n\n");
        if (m.nc)
            md_table(f, conf.res);
        else
            fprintf(f, "None.\n");
        fprintf(f, "\n## Approvals\n\n%d current of %d required.\n\n", current, required);
        if (PQntuples(apps)) md_table(f, apps);
    }
    PQclear(conf.res);
out:
    if (revs) PQclear(revs);
    if (moved) PQclear(moved);
    if (apps) PQclear(apps);
    merge_term(&m);
    if (m.src) PQfinish(m.src);
    branch_info_term(&b);
    return st;
}
