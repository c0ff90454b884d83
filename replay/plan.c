/*
 * plan.c — undo plans (plan.h): the live tables they touch, their
 * statements, the order foreign keys ask for, printing and applying. Knows
 * nothing of which command built the plan.
 */
#include "replay/plan.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgio/pgio.h"

void plan_init(UndoPlan *u, ReplayCtx *ctx, char *description)
{
    memset(u, 0, sizeof(*u));
    u->ctx = ctx;
    u->description = description;
}

void plan_term(UndoPlan *u)
{
    for (int i = 0; i < u->ntables; i++) {
        LiveTable *t = &u->tables[i];
        free(t->qname);
        relversion_term(&t->now);
        rq_free_strv(t->live_names, t->nlive);
        rq_free_strv(t->live_types, t->nlive);
    }
    free(u->tables);
    for (int i = 0; i < u->nstmts; i++) free(u->stmts[i].sql);
    free(u->stmts);
    free(u->description);
    if (u->src) PQfinish(u->src);
}

WrStatus plan_connect(UndoPlan *u, WrError *err)
{
    const char *ci = u->ctx->source_conninfo ? u->ctx->source_conninfo : u->ctx->hist_conninfo;
    return rq_connect(ci, "the source database", &u->src, err);
}

/* The live table for relid, loaded on first use. Returns its index or -1 with err set. */
int plan_live_table(UndoPlan *u, uint32_t relid, WrError *err)
{
    for (int i = 0; i < u->ntables; i++)
        if (u->tables[i].relid == relid) return i;
    LiveTable t = {0};
    t.relid = relid;
    bool found;
    if (rq_relation_at(u->ctx, relid, -1, &t.now, &found, err) != WR_OK) return -1;
    if (!found) {
        relversion_term(&t.now);
        wr_error_set(err, WR_INVALID, "table %u has no relation version in the history", relid);
        return -1;
    }
    char *nsp = rq_quote_ident(u->src, t.now.nspname);
    char *rel = rq_quote_ident(u->src, t.now.relname);
    t.qname = xasprintf("%s.%s", nsp, rel);
    free(nsp);
    free(rel);
    const char *params[1] = {t.qname};
    PGresult *res = rq_exec(u->src, err,
                            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attrelid "
                            "FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 "
                            "AND NOT a.attisdropped ORDER BY a.attnum",
                            1, params);
    if (!res) {
        free(t.qname);
        relversion_term(&t.now);
        return -1;
    }
    if (PQntuples(res) == 0) {
        wr_error_set(err, WR_INVALID, "table %s does not exist in the source database", t.qname);
        PQclear(res);
        free(t.qname);
        relversion_term(&t.now);
        return -1;
    }
    t.nlive = PQntuples(res);
    t.live_names = xcalloc((size_t)t.nlive, sizeof(char *));
    t.live_types = xcalloc((size_t)t.nlive, sizeof(char *));
    for (int i = 0; i < t.nlive; i++) {
        t.live_names[i] = xstrdup(PQgetvalue(res, i, 0));
        t.live_types[i] = xstrdup(PQgetvalue(res, i, 1));
    }
    t.src_oid = (uint32_t)strtoul(PQgetvalue(res, 0, 2), NULL, 10);
    PQclear(res);
    u->tables = xrealloc(u->tables, (size_t)(u->ntables + 1) * sizeof(LiveTable));
    u->tables[u->ntables] = t;
    return u->ntables++;
}

/* The live column (index) a history column maps to: by col_id to its current name. -1 if gone. */
int plan_live_col(const LiveTable *t, int col_id)
{
    for (int i = 0; i < t->now.ncols; i++) {
        if (t->now.col_ids[i] != col_id) continue;
        for (int j = 0; j < t->nlive; j++)
            if (strcmp(t->live_names[j], t->now.col_names[i]) == 0) return j;
    }
    return -1;
}

void plan_append_literal(UndoPlan *u, StrBuf *b, const char *val, const char *type)
{
    if (!val) {
        strbuf_append_str(b, "NULL");
        return;
    }
    char *lit = PQescapeLiteral(u->src, val, strlen(val));
    strbuf_appendf(b, "%s::%s", lit, type);
    PQfreemem(lit);
}

void plan_append_ident(UndoPlan *u, StrBuf *b, const char *name)
{
    char *id = rq_quote_ident(u->src, name);
    strbuf_append_str(b, id);
    free(id);
}

/*
 * A row of a table without a key (#R.S) has no key on the live table: it is
 * one of the live rows whose values are the ones the history holds for it
 * now (equal rows are indistinguishable, so any one of them is the row), and
 * the statement takes exactly one: WHERE ctid = (SELECT ctid ... LIMIT 1).
 * Hidden and untracked columns are not compared (the history has no value
 * of theirs).
 */
WrStatus plan_append_where_multiset(UndoPlan *u, StrBuf *b, const LiveTable *t, const char *key, bool *gone,
                                    WrError *err)
{
    *gone = false;
    ReplayCtx *ctx = u->ctx;
    char rel[16];
    rq_oid_text(t->relid, rel);
    const char *params[2] = {rel, key};
    PGresult *res = rq_execp(ctx->hist, err, 2, params,
                             "SELECT %1$s.row_at($1::oid, $2, (SELECT max(id) FROM %1$s.revision))::text, "
                             "(SELECT array_to_string(x.col_track, '') FROM %1$s.relation_version x "
                             "WHERE x.relid = $1::oid ORDER BY x.version DESC LIMIT 1)",
                             ctx->schema_q);
    if (!res) return err->status;
    if (PQgetisnull(res, 0, 0)) {
        PQclear(res);
        *gone = true;
        return WR_OK;
    }
    char **vals = NULL;
    int nvals = 0;
    WrStatus st = rq_parse_text_array(PQgetvalue(res, 0, 0), &vals, &nvals, err);
    char *track = xstrdup(PQgetisnull(res, 0, 1) ? "" : PQgetvalue(res, 0, 1));
    PQclear(res);
    if (st != WR_OK) {
        free(track);
        return st;
    }
    StrBuf w;
    strbuf_init(&w);
    int k = 0;
    for (int i = 0; i < t->now.ncols; i++) {
        if (i < (int)strlen(track) && track[i] != 'f') continue;
        int lc = plan_live_col(t, t->now.col_ids[i]);
        if (lc < 0) continue;
        int id = t->now.col_ids[i];
        const char *v = id >= 1 && id <= nvals ? vals[id - 1] : NULL;
        strbuf_append_str(&w, k++ ? " AND " : "");
        plan_append_ident(u, &w, t->live_names[lc]);
        if (v) {
            /* as text, as the history holds it: every type has a text form, not every one an = */
            char *lit = PQescapeLiteral(u->src, v, strlen(v));
            strbuf_appendf(&w, "::text = %s", lit);
            PQfreemem(lit);
        } else {
            strbuf_append_str(&w, " IS NULL");
        }
    }
    strbuf_appendf(b, " WHERE ctid = (SELECT ctid FROM ONLY %s WHERE %s LIMIT 1)", t->qname, k ? w.data : "true");
    strbuf_free(&w);
    free(track);
    rq_free_strv(vals, nvals);
    return WR_OK;
}

/* WHERE clause for a stored key, with the key columns of the newest version. */
WrStatus plan_append_where_key(UndoPlan *u, StrBuf *b, const LiveTable *t, const char *key, WrError *err)
{
    if (key && key[0] == '#') {
        bool gone;
        WrStatus st = plan_append_where_multiset(u, b, t, key, &gone, err);
        if (st == WR_OK && gone)
            st = wr_error_set(err, WR_INVALID, "row %s of %s is not in the table now, as the history has it", key,
                              t->qname);
        return st;
    }
    char **kv;
    int nk;
    if (rq_key_values(key, &kv, &nk, err) != WR_OK) return err->status;
    int k = 0;
    strbuf_append_str(b, " WHERE ");
    for (int i = 0; i < t->now.ncols; i++) {
        if (!t->now.is_key[i]) continue;
        int lc = plan_live_col(t, t->now.col_ids[i]);
        if (lc < 0 || k >= nk) {
            rq_free_strv(kv, nk);
            return wr_error_set(err, WR_INVALID, "key column %s of %s is missing on the live table",
                                t->now.col_names[i], t->qname);
        }
        if (k) strbuf_append_str(b, " AND ");
        plan_append_ident(u, b, t->live_names[lc]);
        if (kv[k]) {
            strbuf_append_str(b, " = ");
            plan_append_literal(u, b, kv[k], t->live_types[lc]);
        } else {
            strbuf_append_str(b, " IS NULL");
        }
        k++;
    }
    rq_free_strv(kv, nk);
    if (k == 0) return wr_error_set(err, WR_INVALID, "table %s has no key columns in the history", t->qname);
    return WR_OK;
}

static void add_stmt(UndoPlan *u, int table, int kind, char *sql)
{
    if (u->nstmts == u->cap) {
        u->cap = u->cap ? u->cap * 2 : 16;
        u->stmts = xrealloc(u->stmts, (size_t)u->cap * sizeof(Stmt));
    }
    u->stmts[u->nstmts++] = (Stmt){table, kind, sql};
}

/*
 * The columns of (col_ids[i], vals[i]) still on the live table, comma
 * separated: names to names and literals to values (INSERT's two lists), or,
 * when values is NULL, "name = literal" to names (UPDATE's SET list).
 * Columns no longer on the live table are left out; returns how many were not.
 */
static int append_live_columns(UndoPlan *u, const LiveTable *t, const int *col_ids, const char *const *vals, int n,
                               StrBuf *names, StrBuf *values)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        int lc = plan_live_col(t, col_ids[i]);
        if (lc < 0) continue;
        if (k++) {
            strbuf_append_str(names, ", ");
            if (values) strbuf_append_str(values, ", ");
        }
        plan_append_ident(u, names, t->live_names[lc]);
        if (!values) strbuf_append_str(names, " = ");
        plan_append_literal(u, values ? values : names, vals[i], t->live_types[lc]);
    }
    return k;
}

/* INSERT of (col_ids[i], vals[i]); columns no longer on the live table are left out. */
void plan_insert(UndoPlan *u, int ti, const int *col_ids, const char *const *vals, int n)
{
    const LiveTable *t = &u->tables[ti];
    StrBuf b, v;
    strbuf_init(&b);
    strbuf_init(&v);
    strbuf_appendf(&b, "INSERT INTO %s (", t->qname);
    append_live_columns(u, t, col_ids, vals, n, &b, &v);
    strbuf_appendf(&b, ") VALUES (%s)", v.data);
    strbuf_free(&v);
    add_stmt(u, ti, K_INSERT, b.data);
}

/* UPDATE setting (col_ids[i], vals[i]) on the row with key; nothing when no column maps. */
WrStatus plan_update(UndoPlan *u, int ti, const int *col_ids, const char *const *vals, int n, const char *key,
                     WrError *err)
{
    const LiveTable *t = &u->tables[ti];
    StrBuf b;
    strbuf_init(&b);
    strbuf_appendf(&b, "UPDATE %s SET ", t->qname);
    if (append_live_columns(u, t, col_ids, vals, n, &b, NULL) == 0) {
        strbuf_free(&b);
        return WR_OK;
    }
    if (plan_append_where_key(u, &b, t, key, err) != WR_OK) {
        strbuf_free(&b);
        return err->status;
    }
    add_stmt(u, ti, K_UPDATE, b.data);
    return WR_OK;
}

WrStatus plan_delete(UndoPlan *u, int ti, const char *key, WrError *err)
{
    StrBuf b;
    strbuf_init(&b);
    strbuf_appendf(&b, "DELETE FROM %s", u->tables[ti].qname);
    if (plan_append_where_key(u, &b, &u->tables[ti], key, err) != WR_OK) {
        strbuf_free(&b);
        return err->status;
    }
    add_stmt(u, ti, K_DELETE, b.data);
    return WR_OK;
}

/* Parents before children: depth from the source's foreign keys among the planned tables. */
WrStatus plan_order_by_foreign_keys(UndoPlan *u, WrError *err)
{
    if (u->ntables < 2) return WR_OK;
    StrBuf ids;
    strbuf_init(&ids);
    strbuf_append_char(&ids, '{');
    for (int i = 0; i < u->ntables; i++) strbuf_appendf(&ids, "%s%u", i ? "," : "", u->tables[i].src_oid);
    strbuf_append_char(&ids, '}');
    const char *params[1] = {ids.data};
    PGresult *res = rq_exec(u->src, err,
                            "SELECT conrelid, confrelid FROM pg_constraint WHERE contype = 'f' "
                            "AND conrelid = ANY ($1::oid[]) AND confrelid = ANY ($1::oid[]) AND conrelid <> confrelid",
                            1, params);
    strbuf_free(&ids);
    if (!res) return err->status;
    /* relax depths; a cycle stops growing after ntables rounds */
    for (int round = 0; round < u->ntables; round++) {
        bool changed = false;
        for (int r = 0; r < PQntuples(res); r++) {
            uint32_t child = (uint32_t)strtoul(PQgetvalue(res, r, 0), NULL, 10);
            uint32_t parent = (uint32_t)strtoul(PQgetvalue(res, r, 1), NULL, 10);
            int ci = -1, pi = -1;
            for (int i = 0; i < u->ntables; i++) {
                if (u->tables[i].src_oid == child) ci = i;
                if (u->tables[i].src_oid == parent) pi = i;
            }
            if (ci >= 0 && pi >= 0 && u->tables[ci].depth < u->tables[pi].depth + 1) {
                u->tables[ci].depth = u->tables[pi].depth + 1;
                changed = true;
            }
        }
        if (!changed) break;
    }
    PQclear(res);
    return WR_OK;
}

static int stmt_rank(const UndoPlan *u, const Stmt *s, int maxdepth)
{
    int d = u->tables[s->table].depth;
    /* inserts parents-first, then updates parents-first, then deletes children-first */
    if (s->kind == K_DELETE) d = maxdepth - d;
    return s->kind * (maxdepth + 1) + d;
}

void plan_order_inserts(UndoPlan *u)
{
    /* the places inserts hold, and the inserts in them stably by depth */
    int *slot = xcalloc((size_t)u->nstmts + 1, sizeof(int));
    int n = 0;
    for (int i = 0; i < u->nstmts; i++)
        if (u->stmts[i].kind == K_INSERT) slot[n++] = i;
    for (int a = 1; a < n; a++) {
        Stmt s = u->stmts[slot[a]];
        int d = u->tables[s.table].depth, b = a - 1;
        while (b >= 0 && u->tables[u->stmts[slot[b]].table].depth > d) {
            u->stmts[slot[b + 1]] = u->stmts[slot[b]];
            b--;
        }
        u->stmts[slot[b + 1]] = s;
    }
    free(slot);
}

void plan_sort(UndoPlan *u)
{
    int maxdepth = 0;
    for (int i = 0; i < u->ntables; i++)
        if (u->tables[i].depth > maxdepth) maxdepth = u->tables[i].depth;
    /* stable insertion sort: the order within one rank is the order the plan was built in */
    for (int i = 1; i < u->nstmts; i++) {
        Stmt s = u->stmts[i];
        int r = stmt_rank(u, &s, maxdepth), j = i - 1;
        while (j >= 0 && stmt_rank(u, &u->stmts[j], maxdepth) > r) {
            u->stmts[j + 1] = u->stmts[j];
            j--;
        }
        u->stmts[j + 1] = s;
    }
}

/* The plan as the SQL --apply runs: one transaction that first declares the context. */
static void print_plan(const UndoPlan *u, const char *ctx_sql)
{
    FILE *out = u->ctx->out;
    fprintf(out, "BEGIN;\n%s;\n", ctx_sql);
    for (int i = 0; i < u->nstmts; i++) fprintf(out, "%s;\n", u->stmts[i].sql);
    fprintf(out, "COMMIT;\n");
    fflush(out);
}

/* A statement of the plan failed or matched another number of rows than 1: say which, and why. */
static WrStatus statement_failed(UndoPlan *u, const Stmt *s, PGresult *res, WrError *err)
{
    if (PQresultStatus(res) == PGRES_COMMAND_OK)
        /* the live row is not where the history says: refuse rather than guess */
        return wr_error_set(err, WR_FATAL,
                            "nothing changed: %s row(s) matched instead of 1; the live table differs from "
                            "the history (is the worker behind?) (in: %.200s)",
                            PQcmdTuples(res), s->sql);
    char m[512];
    const char *sqlstate;
    pgio_error_text(u->src, res, m, sizeof(m), &sqlstate);
    const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
    const char *tab = PQresultErrorField(res, PG_DIAG_TABLE_NAME);
    if (cons)
        return wr_error_set(err, WR_FATAL,
                            "nothing changed: constraint \"%s\" on table %s rejected the undo: %s (in: %.200s)", cons,
                            tab ? tab : "?", m, s->sql);
    return wr_error_set(err, WR_FATAL, "nothing changed: %s (in: %.200s)", m, s->sql);
}

/* Run the plan on the source as one transaction, or change nothing. */
static WrStatus apply_plan(UndoPlan *u, const char *ctx_sql, WrError *err)
{
    WrStatus st = rq_run(u->src, err, "BEGIN", 0, NULL);
    if (st != WR_OK) return st;
    PGresult *res = rq_exec(u->src, err, ctx_sql, 0, NULL);
    if (!res) {
        st = wr_error_prefix(err, "nothing changed: the walrev context function failed");
        goto rollback;
    }
    PQclear(res);
    for (int i = 0; i < u->nstmts; i++) {
        const Stmt *s = &u->stmts[i];
        bool ok = pgio_exec(u->src, s->sql, 0, NULL, &res) && PQresultStatus(res) == PGRES_COMMAND_OK &&
                  (s->kind == K_INSERT || strcmp(PQcmdTuples(res), "1") == 0);
        if (!ok) st = statement_failed(u, s, res, err);
        PQclear(res);
        if (!ok) goto rollback;
    }
    if (!pgio_exec(u->src, "COMMIT", 0, NULL, &res)) {
        char m[512];
        const char *sqlstate;
        pgio_error_text(u->src, res, m, sizeof(m), &sqlstate);
        const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
        st = wr_error_set(err, WR_FATAL, "nothing changed: commit failed%s%s%s: %s", cons ? " on constraint \"" : "",
                          cons ? cons : "", cons ? "\"" : "", m);
        PQclear(res);
        return st;
    }
    PQclear(res);
    fprintf(u->ctx->err, "applied %d statement%s as one transaction\n", u->nstmts, u->nstmts == 1 ? "" : "s");
    return WR_OK;
rollback:
    pgio_run_unchecked(u->src, "ROLLBACK");
    return st;
}

WrStatus plan_finish(UndoPlan *u, const char *actor, bool apply, WrError *err)
{
    if (u->nstmts == 0) {
        fprintf(u->ctx->out, "-- %s: nothing to change\n", u->description);
        if (apply) fprintf(u->ctx->err, "nothing to apply\n");
        return WR_OK;
    }
    char *ctx_sql = rq_context_sql(u->ctx, u->src, actor, u->description, NULL);
    print_plan(u, ctx_sql);
    WrStatus st = WR_OK;
    if (apply)
        st = apply_plan(u, ctx_sql, err);
    else
        fprintf(u->ctx->err, "plan only: run again with --apply to change the data\n");
    free(ctx_sql);
    return st;
}
