/*
 * undo.c — `walrev restore`, `revert` and `rollback`: build a plan of plain
 * INSERT/UPDATE/DELETE statements against the live (source) tables from the
 * history, print it, and with --apply run it as one transaction that first
 * declares a walrev context, so the undo is itself a new revision. Values go
 * in as text literals cast to the live column's type. Any error rolls the
 * whole transaction back and names the constraint; history is never edited.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "replay/internal.h"

enum { K_INSERT = 0, K_UPDATE = 1, K_DELETE = 2 };
enum { OPT_APPLY = 1000, OPT_ACTOR, OPT_TABLE, OPT_KEY, OPT_AT, OPT_COLUMNS, OPT_FORCE, OPT_TO };

static const struct option UNDO_OPTS[] = {
    {"apply", no_argument, NULL, OPT_APPLY},         {"actor", required_argument, NULL, OPT_ACTOR},
    {"table", required_argument, NULL, OPT_TABLE},   {"key", required_argument, NULL, OPT_KEY},
    {"at", required_argument, NULL, OPT_AT},         {"columns", required_argument, NULL, OPT_COLUMNS},
    {"force", no_argument, NULL, OPT_FORCE},         {"to", required_argument, NULL, OPT_TO},
    {NULL, 0, NULL, 0}};

#define MAX_TABLES 256

typedef struct {
    bool apply, force;
    const char *actor, *key, *at, *columns, *to;
    const char *tables[MAX_TABLES];
    int ntables;
    char **pos;
    int npos;
} UndoArgs;

/* A live table on the source, named and typed as it is now. */
typedef struct {
    uint32_t relid;
    uint32_t src_oid;
    char *qname;
    RelVersion now;     /* newest relation version in the history: col_id -> current name, key */
    int nlive;
    char **live_names;  /* columns of the live table */
    char **live_types;  /* format_type() of each */
    int depth;          /* FK depth: parents before children */
} LiveTable;

typedef struct {
    int table;
    int kind;
    char *sql;
} Stmt;

typedef struct {
    ReplayCtx *ctx;
    PGconn *src;
    LiveTable *tables;
    int ntables;
    Stmt *stmts;
    int nstmts, cap;
    char *description;
} Undo;

static WrStatus parse_undo_args(ReplayCtx *ctx, int argc, char **argv, UndoArgs *a, WrError *err)
{
    memset(a, 0, sizeof(*a));
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", UNDO_OPTS, NULL)) != -1) {
        switch (c) {
        case OPT_APPLY: a->apply = true; break;
        case OPT_FORCE: a->force = true; break;
        case OPT_ACTOR: a->actor = optarg; break;
        case OPT_KEY: a->key = optarg; break;
        case OPT_AT: a->at = optarg; break;
        case OPT_COLUMNS: a->columns = optarg; break;
        case OPT_TO: a->to = optarg; break;
        case OPT_TABLE:
            if (a->ntables == MAX_TABLES) return wr_error_set(err, WR_INVALID, "too many --table options");
            a->tables[a->ntables++] = optarg;
            break;
        default: return rq_bad_option(ctx, argc, argv, err);
        }
    }
    a->pos = argv + optind;
    a->npos = argc - optind;
    if (a->actor) {
        const char *colon = strchr(a->actor, ':');
        if (!colon || colon == a->actor || colon[1] == '\0')
            return wr_error_set(err, WR_INVALID, "invalid --actor %s: expected TYPE:ID", a->actor);
    }
    return WR_OK;
}

static void undo_term(Undo *u)
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

static WrStatus undo_connect(Undo *u, WrError *err)
{
    const char *ci = u->ctx->source_conninfo ? u->ctx->source_conninfo : u->ctx->hist_conninfo;
    return rq_connect(ci, "the source database", &u->src, err);
}

/* The live table for relid, loaded on first use. Returns its index or -1 with err set. */
static int live_table(Undo *u, uint32_t relid, WrError *err)
{
    for (int i = 0; i < u->ntables; i++)
        if (u->tables[i].relid == relid) return i;
    LiveTable t = {0};
    t.relid = relid;
    bool found;
    if (rq_relation_at(u->ctx, relid, -1, &t.now, &found, err) != WR_OK) return -1;
    if (!found) {
        wr_error_set(err, WR_INVALID, "table %u has no relation version in the history", relid);
        return -1;
    }
    char *nsp = rq_quote_ident(u->src, t.now.nspname);
    char *rel = rq_quote_ident(u->src, t.now.relname);
    if (asprintf(&t.qname, "%s.%s", nsp, rel) < 0) abort();
    free(nsp);
    free(rel);
    const char *params[1] = {t.qname};
    PGresult *res = rq_exec(u->src,
                            err,
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
static int live_col(const LiveTable *t, int col_id)
{
    for (int i = 0; i < t->now.ncols; i++) {
        if (t->now.col_ids[i] != col_id) continue;
        for (int j = 0; j < t->nlive; j++)
            if (strcmp(t->live_names[j], t->now.col_names[i]) == 0) return j;
    }
    return -1;
}

static void append_literal(Undo *u, StrBuf *b, const char *val, const char *type)
{
    if (!val) {
        strbuf_append_str(b, "NULL");
        return;
    }
    char *lit = PQescapeLiteral(u->src, val, strlen(val));
    strbuf_appendf(b, "%s::%s", lit, type);
    PQfreemem(lit);
}

static void append_ident(Undo *u, StrBuf *b, const char *name)
{
    char *id = rq_quote_ident(u->src, name);
    strbuf_append_str(b, id);
    free(id);
}

/* WHERE clause for a stored key, with the key columns of the newest version. */
static WrStatus append_where_key(Undo *u, StrBuf *b, const LiveTable *t, const char *key, WrError *err)
{
    if (key && key[0] == '#')
        return wr_error_set(err, WR_INVALID,
                            "row %s of %s has no key (a table without a primary key is a multiset, "
                            "docs/history-store.md): restore and revert cannot name it on the live table",
                            key, t->qname);
    char **kv;
    int nk;
    if (rq_key_values(key, &kv, &nk, err) != WR_OK) return err->status;
    int k = 0;
    strbuf_append_str(b, " WHERE ");
    for (int i = 0; i < t->now.ncols; i++) {
        if (!t->now.is_key[i]) continue;
        int lc = live_col(t, t->now.col_ids[i]);
        if (lc < 0 || k >= nk) {
            rq_free_strv(kv, nk);
            return wr_error_set(err, WR_INVALID, "key column %s of %s is missing on the live table",
                                t->now.col_names[i], t->qname);
        }
        if (k) strbuf_append_str(b, " AND ");
        append_ident(u, b, t->live_names[lc]);
        if (kv[k]) {
            strbuf_append_str(b, " = ");
            append_literal(u, b, kv[k], t->live_types[lc]);
        } else {
            strbuf_append_str(b, " IS NULL");
        }
        k++;
    }
    rq_free_strv(kv, nk);
    if (k == 0) return wr_error_set(err, WR_INVALID, "table %s has no key columns in the history", t->qname);
    return WR_OK;
}

static void add_stmt(Undo *u, int table, int kind, char *sql)
{
    if (u->nstmts == u->cap) {
        u->cap = u->cap ? u->cap * 2 : 16;
        u->stmts = xrealloc(u->stmts, (size_t)u->cap * sizeof(Stmt));
    }
    u->stmts[u->nstmts++] = (Stmt){table, kind, sql};
}

/* INSERT of (col_ids[i], vals[i]); columns no longer on the live table are left out. */
static void plan_insert(Undo *u, int ti, const int *col_ids, const char *const *vals, int n)
{
    const LiveTable *t = &u->tables[ti];
    StrBuf b, v;
    strbuf_init(&b);
    strbuf_init(&v);
    strbuf_appendf(&b, "INSERT INTO %s (", t->qname);
    int k = 0;
    for (int i = 0; i < n; i++) {
        int lc = live_col(t, col_ids[i]);
        if (lc < 0) continue;
        if (k) {
            strbuf_append_str(&b, ", ");
            strbuf_append_str(&v, ", ");
        }
        append_ident(u, &b, t->live_names[lc]);
        append_literal(u, &v, vals[i], t->live_types[lc]);
        k++;
    }
    strbuf_appendf(&b, ") VALUES (%s)", v.data);
    strbuf_free(&v);
    add_stmt(u, ti, K_INSERT, b.data);
}

/* UPDATE setting (col_ids[i], vals[i]) on the row with key; nothing when no column maps. */
static WrStatus plan_update(Undo *u, int ti, const int *col_ids, const char *const *vals, int n, const char *key,
                            WrError *err)
{
    const LiveTable *t = &u->tables[ti];
    StrBuf b;
    strbuf_init(&b);
    strbuf_appendf(&b, "UPDATE %s SET ", t->qname);
    int k = 0;
    for (int i = 0; i < n; i++) {
        int lc = live_col(t, col_ids[i]);
        if (lc < 0) continue;
        if (k) strbuf_append_str(&b, ", ");
        append_ident(u, &b, t->live_names[lc]);
        strbuf_append_str(&b, " = ");
        append_literal(u, &b, vals[i], t->live_types[lc]);
        k++;
    }
    if (k == 0) {
        strbuf_free(&b);
        return WR_OK;
    }
    if (append_where_key(u, &b, t, key, err) != WR_OK) {
        strbuf_free(&b);
        return err->status;
    }
    add_stmt(u, ti, K_UPDATE, b.data);
    return WR_OK;
}

static WrStatus plan_delete(Undo *u, int ti, const char *key, WrError *err)
{
    StrBuf b;
    strbuf_init(&b);
    strbuf_appendf(&b, "DELETE FROM %s", u->tables[ti].qname);
    if (append_where_key(u, &b, &u->tables[ti], key, err) != WR_OK) {
        strbuf_free(&b);
        return err->status;
    }
    add_stmt(u, ti, K_DELETE, b.data);
    return WR_OK;
}

/* vals[col_id] array text -> the value of col_id (NULL beyond the array). Borrowed. */
static const char *val_of(char *const *arr, int n, int col_id)
{
    return col_id >= 1 && col_id <= n ? arr[col_id - 1] : NULL;
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

/* Parents before children: depth from the source's foreign keys among the planned tables. */
static WrStatus order_by_foreign_keys(Undo *u, WrError *err)
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

static int stmt_rank(const Undo *u, const Stmt *s, int maxdepth)
{
    int d = u->tables[s->table].depth;
    /* inserts parents-first, then updates parents-first, then deletes children-first */
    if (s->kind == K_DELETE) d = maxdepth - d;
    return s->kind * (maxdepth + 1) + d;
}

static void sort_plan(Undo *u)
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

static char *context_sql(Undo *u, const char *actor)
{
    char *type, *id;
    if (actor) {
        const char *colon = strchr(actor, ':');
        type = xstrndup(actor, (size_t)(colon - actor));
        id = xstrdup(colon + 1);
    } else {
        type = xstrdup("cli");
        const char *user = getenv("USER");
        id = xstrdup(user && *user ? user : "unknown");
    }
    json_t *j = json_pack("{s:{s:s,s:s},s:s}", "actor", "type", type, "id", id, "description", u->description);
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    char *lit = PQescapeLiteral(u->src, text, strlen(text));
    char *sql = NULL;
    if (asprintf(&sql, "SELECT %s.context(%s)", u->ctx->schema_q, lit) < 0) abort();
    PQfreemem(lit);
    free(text);
    free(type);
    free(id);
    return sql;
}

/* Print the plan; with apply, run it as one transaction or change nothing. */
static WrStatus run_plan(Undo *u, const char *actor, bool apply, WrError *err)
{
    FILE *out = u->ctx->out;
    if (u->nstmts == 0) {
        fprintf(out, "-- %s: nothing to change\n", u->description);
        if (apply) fprintf(u->ctx->err, "nothing to apply\n");
        return WR_OK;
    }
    char *ctx_sql = context_sql(u, actor);
    fprintf(out, "BEGIN;\n%s;\n", ctx_sql);
    for (int i = 0; i < u->nstmts; i++) fprintf(out, "%s;\n", u->stmts[i].sql);
    fprintf(out, "COMMIT;\n");
    fflush(out);
    if (!apply) {
        free(ctx_sql);
        fprintf(u->ctx->err, "plan only: run again with --apply to change the data\n");
        return WR_OK;
    }
    WrStatus st = WR_OK;
    PGresult *res = rq_exec(u->src, err, "BEGIN", 0, NULL);
    if (!res) {
        free(ctx_sql);
        return err->status;
    }
    PQclear(res);
    res = rq_exec(u->src, err, ctx_sql, 0, NULL);
    free(ctx_sql);
    if (!res) {
        st = wr_error_prefix(err, "nothing changed: the walrev context function failed");
        goto rollback;
    }
    PQclear(res);
    for (int i = 0; i < u->nstmts; i++) {
        res = PQexec(u->src, u->stmts[i].sql);
        ExecStatusType es = PQresultStatus(res);
        if (es != PGRES_COMMAND_OK) {
            const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
            const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
            const char *tab = PQresultErrorField(res, PG_DIAG_TABLE_NAME);
            if (cons)
                st = wr_error_set(err, WR_FATAL,
                                  "nothing changed: constraint \"%s\" on table %s rejected the undo: %s (in: %.200s)",
                                  cons, tab ? tab : "?", m ? m : "", u->stmts[i].sql);
            else
                st = wr_error_set(err, WR_FATAL, "nothing changed: %s (in: %.200s)",
                                  m ? m : PQerrorMessage(u->src), u->stmts[i].sql);
            PQclear(res);
            goto rollback;
        }
        if (strcmp(PQcmdTuples(res), "1") != 0 && u->stmts[i].kind != K_INSERT) {
            /* the live row is not where the history says: refuse rather than guess */
            st = wr_error_set(err, WR_FATAL,
                              "nothing changed: %s row(s) matched instead of 1; the live table differs from "
                              "the history (is the worker behind?) (in: %.200s)",
                              PQcmdTuples(res), u->stmts[i].sql);
            PQclear(res);
            goto rollback;
        }
        PQclear(res);
    }
    res = PQexec(u->src, "COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
        st = wr_error_set(err, WR_FATAL, "nothing changed: commit failed%s%s%s: %s", cons ? " on constraint \"" : "",
                          cons ? cons : "", cons ? "\"" : "", m ? m : PQerrorMessage(u->src));
        PQclear(res);
        return st;
    }
    PQclear(res);
    fprintf(u->ctx->err, "applied %d statement%s as one transaction\n", u->nstmts, u->nstmts == 1 ? "" : "s");
    return WR_OK;
rollback:
    res = PQexec(u->src, "ROLLBACK");
    PQclear(res);
    return st;
}

static char *join_args(const char *prefix, int argc, char **argv)
{
    StrBuf b;
    strbuf_init(&b);
    strbuf_append_str(&b, prefix);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--apply") == 0) continue;
        strbuf_appendf(&b, " %s", argv[i]);
    }
    return b.data;
}

/* ------------------------------------------------------------------ restore */

/*
 * Undo works on the tables that hold rows: a partitioned table's rows are
 * its partitions', which may have changed since (attach, detach, rows moved
 * between them), so an undo of the parent is refused by name rather than
 * planned as "nothing to change".
 */
static WrStatus refuse_partitioned(ReplayCtx *ctx, uint32_t relid, const char *name, WrError *err)
{
    bool parent = false;
    if (rq_is_partitioned(ctx, relid, &parent, err) != WR_OK) return err->status;
    if (!parent) return WR_OK;
    PGresult *res = rq_execf(ctx->hist, err,
                             "SELECT string_agg(t.nspname || '.' || t.relname, ', ' ORDER BY t.nspname, t.relname) "
                             "FROM %1$s.members_at(%2$u, (SELECT max(id) FROM %1$s.revision)) m "
                             "CROSS JOIN LATERAL %1$s.table_at(m, (SELECT max(id) FROM %1$s.revision)) t",
                             ctx->schema_q, relid);
    if (!res) return err->status;
    WrStatus st = wr_error_set(err, WR_INVALID,
                               "%s is a partitioned table: %s works on the tables that hold rows; name its "
                               "partitions (now: %s)",
                               name, ctx->cmd, PQgetisnull(res, 0, 0) ? "none" : PQgetvalue(res, 0, 0));
    PQclear(res);
    return st;
}

WrStatus cmd_restore(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    UndoArgs a;
    char *description = join_args("walrev restore", argc, argv); /* before getopt permutes argv */
    if (parse_undo_args(ctx, argc, argv, &a, err) != WR_OK) {
        free(description);
        return err->status;
    }
    if (a.ntables != 1 || !a.key || !a.at || a.npos)
        return free(description), wr_error_set(err, WR_INVALID, "usage: walrev restore --table T --key K --at POINT [--columns a,b] "
                                             "[--apply] [--actor TYPE:ID]");
    Undo u = {0};
    u.ctx = ctx;
    u.description = description;
    uint32_t relid;
    char *key = NULL;
    Point pt;
    RelVersion vat = {0};
    char **at_vals = NULL, **want = NULL;
    int n_at = 0, nwant = 0;
    PGresult *live = NULL;
    WrStatus st;
    bool found;
    if ((st = rq_resolve_table(ctx, a.tables[0], &relid, err)) != WR_OK) goto done;
    if ((st = refuse_partitioned(ctx, relid, a.tables[0], err)) != WR_OK) goto done;
    if ((st = rq_parse_key(a.key, &key, err)) != WR_OK) goto done;
    if ((st = rq_resolve_point(ctx, a.at, &pt, err)) != WR_OK) goto done;
    {
        char rel[16];
        rq_oid_text(relid, rel);
        const char *params[2] = {rel, key};
        char *sql = NULL;
        if (asprintf(&sql, "SELECT count(*) FROM (SELECT 1 FROM %s.object_delta WHERE relid = $1::oid AND key = $2 "
                           "LIMIT 1) x",
                     ctx->schema_q) < 0)
            abort();
        PGresult *res = rq_exec(ctx->hist, err, sql, 2, params);
        free(sql);
        if (!res) {
            st = err->status;
            goto done;
        }
        bool known = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
        PQclear(res);
        if (!known) {
            st = wr_error_set(err, WR_INVALID, "unknown key %s in table %s: no change recorded for it", key,
                              a.tables[0]);
            goto done;
        }
        char rev[24];
        snprintf(rev, sizeof(rev), "%lld", (long long)pt.rev);
        const char *p3[3] = {rel, key, rev};
        if (asprintf(&sql, "SELECT %s.row_at($1::oid, $2, $3::bigint)::text", ctx->schema_q) < 0) abort();
        res = rq_exec(ctx->hist, err, sql, 3, p3);
        free(sql);
        if (!res) {
            st = err->status;
            goto done;
        }
        if (!PQgetisnull(res, 0, 0) &&
            (st = rq_parse_text_array(PQgetvalue(res, 0, 0), &at_vals, &n_at, err)) != WR_OK) {
            PQclear(res);
            goto done;
        }
        if (PQgetisnull(res, 0, 0)) at_vals = NULL;
        PQclear(res);
    }
    if ((st = rq_relation_at(ctx, relid, pt.rev, &vat, &found, err)) != WR_OK) goto done;
    if ((st = undo_connect(&u, err)) != WR_OK) goto done;
    int ti = live_table(&u, relid, err);
    if (ti < 0) {
        st = err->status;
        goto done;
    }
    LiveTable *t = &u.tables[ti];
    if (a.columns) {
        StrBuf cb;
        strbuf_init(&cb);
        strbuf_appendf(&cb, "{%s}", a.columns);
        st = rq_parse_text_array(cb.data, &want, &nwant, err);
        strbuf_free(&cb);
        if (st != WR_OK) goto done;
    }
    {
        /* the live row, every column as text */
        StrBuf q;
        strbuf_init(&q);
        strbuf_append_str(&q, "SELECT ");
        for (int i = 0; i < t->nlive; i++) {
            if (i) strbuf_append_str(&q, ", ");
            append_ident(&u, &q, t->live_names[i]);
            strbuf_append_str(&q, "::text");
        }
        strbuf_appendf(&q, " FROM %s", t->qname);
        if ((st = append_where_key(&u, &q, t, key, err)) != WR_OK) {
            strbuf_free(&q);
            goto done;
        }
        live = rq_exec(u.src, err, q.data, 0, NULL);
        strbuf_free(&q);
        if (!live) {
            st = err->status;
            goto done;
        }
    }
    bool live_exists = PQntuples(live) > 0;
    int *ids = xcalloc((size_t)vat.ncols + 1, sizeof(int));
    const char **vals = xcalloc((size_t)vat.ncols + 1, sizeof(char *));
    int n = 0;
    for (int i = 0; found && i < vat.ncols; i++) {
        int cid = vat.col_ids[i];
        int lc = live_col(t, cid);
        if (nwant) {
            bool sel = false;
            for (int w = 0; w < nwant; w++)
                if (want[w] && (str_eq(want[w], vat.col_names[i]) || (lc >= 0 && str_eq(want[w], t->live_names[lc]))))
                    sel = true;
            if (!sel && live_exists) continue;
        }
        const char *v = at_vals ? val_of(at_vals, n_at, cid) : NULL;
        if (live_exists) {
            if (lc < 0) continue;
            const char *cur = PQgetisnull(live, 0, lc) ? NULL : PQgetvalue(live, 0, lc);
            if (str_eq(cur, v)) continue;
        }
        ids[n] = cid;
        vals[n] = v;
        n++;
    }
    for (int w = 0; w < nwant; w++) {
        bool ok = false;
        for (int i = 0; i < vat.ncols; i++)
            if (want[w] && str_eq(want[w], vat.col_names[i])) ok = true;
        for (int j = 0; j < t->nlive; j++)
            if (want[w] && str_eq(want[w], t->live_names[j])) ok = true;
        if (!ok) {
            st = wr_error_set(err, WR_INVALID, "unknown column %s in --columns for table %s", want[w] ? want[w] : "",
                              a.tables[0]);
            free(ids);
            free(vals);
            goto done;
        }
    }
    if (at_vals && !live_exists)
        plan_insert(&u, ti, ids, vals, n); /* undelete: every column of that time */
    else if (at_vals && live_exists)
        st = plan_update(&u, ti, ids, vals, n, key, err);
    else if (!at_vals && live_exists)
        st = plan_delete(&u, ti, key, err);
    free(ids);
    free(vals);
    if (st == WR_OK) st = run_plan(&u, a.actor, a.apply, err);
done:
    PQclear(live);
    rq_free_strv(at_vals, n_at);
    rq_free_strv(want, nwant);
    relversion_term(&vat);
    free(key);
    undo_term(&u);
    return st;
}

/* ------------------------------------------------------------------ revert */

static WrStatus print_conflicts(ReplayCtx *ctx, int64_t rev, bool force, int *nconf, WrError *err)
{
    PGresult *res = rq_execf(ctx->hist, err,
                             "SELECT v.nspname || '.' || v.relname AS \"table\", c.key, c.column_name AS \"column\", "
                             "c.revision AS later_revision, c.actor_type, c.actor_id "
                             "FROM %1$s.revert_conflicts(%2$lld) c "
                             "CROSS JOIN LATERAL (SELECT nspname, relname FROM %1$s.relation_version rv "
                             "  WHERE rv.relid = c.relid ORDER BY version DESC LIMIT 1) v "
                             "ORDER BY 1, 2, 4, 3",
                             ctx->schema_q, (long long)rev);
    if (!res) return err->status;
    *nconf = PQntuples(res);
    if (*nconf) {
        fprintf(ctx->err, "%d conflict%s: a later revision changed the same object and column%s\n", *nconf,
                *nconf == 1 ? "" : "s", force ? " (--force: reverting anyway)" : "");
        out_print_result(ctx->err, res, OUT_ALIGNED);
    }
    PQclear(res);
    return WR_OK;
}

WrStatus cmd_revert(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    UndoArgs a;
    char *description = join_args("walrev revert", argc, argv); /* before getopt permutes argv */
    if (parse_undo_args(ctx, argc, argv, &a, err) != WR_OK) {
        free(description);
        return err->status;
    }
    if (a.npos != 1 || a.ntables || a.key || a.at || a.to)
        return free(description), wr_error_set(err, WR_INVALID, "usage: walrev revert REV [--force] [--apply] [--actor TYPE:ID]");
    Undo u = {0};
    u.ctx = ctx;
    u.description = description;
    Point pt;
    PGresult *res = NULL;
    WrStatus st;
    int nconf = 0;
    if ((st = rq_resolve_point(ctx, a.pos[0], &pt, err)) != WR_OK) goto done;
    if ((st = print_conflicts(ctx, pt.rev, a.force, &nconf, err)) != WR_OK) goto done;
    if (nconf && !a.force) {
        st = wr_error_set(err, WR_INVALID,
                          "revision %lld has %d conflicting later change%s (listed above): nothing changed; "
                          "use --force to revert anyway",
                          (long long)pt.rev, nconf, nconf == 1 ? "" : "s");
        goto done;
    }
    res = rq_execf(ctx->hist, err,
                   "SELECT d.seq, d.relid, d.op, d.key, d.col_ids::text, d.old_values::text, "
                   "d.old_unknown OR EXISTS (SELECT 1 FROM unnest(d.attr_flags) f WHERE f & 3 <> 0) "
                   "FROM %s.object_delta_arrays d WHERE d.revision_id = %lld ORDER BY d.seq DESC",
                   ctx->schema_q, (long long)pt.rev);
    if (!res) {
        st = err->status;
        goto done;
    }
    if ((st = undo_connect(&u, err)) != WR_OK) goto done;
    for (int r = 0; r < PQntuples(res) && st == WR_OK; r++) {
        uint32_t relid = (uint32_t)strtoul(PQgetvalue(res, r, 1), NULL, 10);
        char op = PQgetvalue(res, r, 2)[0];
        const char *key = PQgetisnull(res, r, 3) ? NULL : PQgetvalue(res, r, 3);
        if (op == 'S') {
            st = wr_error_set(err, WR_INVALID, "revision %lld is a baseline snapshot: there is nothing to revert to",
                              (long long)pt.rev);
            break;
        }
        if (PQgetvalue(res, r, 6)[0] == 't' && (op == 'U' || op == 'D')) {
            st = wr_error_set(err, WR_INVALID,
                              "revision %lld change %s of key %s has old values the history does not know "
                              "(hidden or never seen): it cannot be reverted",
                              (long long)pt.rev, PQgetvalue(res, r, 0), key ? key : "");
            break;
        }
        int ti = live_table(&u, relid, err);
        if (ti < 0) {
            st = err->status;
            break;
        }
        if (op == 'I') {
            st = plan_delete(&u, ti, key, err);
            continue;
        }
        if (op == 'T') {
            /* the table's rows just before this revision come back */
            RelVersion vb;
            bool found;
            if ((st = rq_relation_at(ctx, relid, pt.rev - 1, &vb, &found, err)) != WR_OK) break;
            PGresult *rows = found ? rq_execf(ctx->hist, err, "SELECT vals::text FROM %s.snapshot_rows(%u, %lld)",
                                              ctx->schema_q, relid, (long long)pt.rev - 1)
                                   : NULL;
            if (found && !rows) {
                relversion_term(&vb);
                st = err->status;
                break;
            }
            for (int i = 0; rows && i < PQntuples(rows) && st == WR_OK; i++) {
                char **arr;
                int na;
                if ((st = rq_parse_text_array(PQgetvalue(rows, i, 0), &arr, &na, err)) != WR_OK) break;
                const char **vals = xcalloc((size_t)vb.ncols + 1, sizeof(char *));
                for (int c = 0; c < vb.ncols; c++) vals[c] = val_of(arr, na, vb.col_ids[c]);
                plan_insert(&u, ti, vb.col_ids, vals, vb.ncols);
                free(vals);
                rq_free_strv(arr, na);
            }
            PQclear(rows);
            relversion_term(&vb);
            continue;
        }
        char **sids, **olds;
        int nids, nolds;
        if ((st = rq_parse_text_array(PQgetvalue(res, r, 4), &sids, &nids, err)) != WR_OK) break;
        if ((st = rq_parse_text_array(PQgetvalue(res, r, 5), &olds, &nolds, err)) != WR_OK) {
            rq_free_strv(sids, nids);
            break;
        }
        int *ids = xcalloc((size_t)nids + 1, sizeof(int));
        for (int i = 0; i < nids; i++) ids[i] = sids[i] ? atoi(sids[i]) : 0;
        if (nolds != nids)
            st = wr_error_set(err, WR_PROTOCOL, "revision %lld change %s: col_ids and old_values differ in length",
                              (long long)pt.rev, PQgetvalue(res, r, 0));
        else if (op == 'D')
            plan_insert(&u, ti, ids, (const char *const *)olds, nids);
        else if (op == 'U')
            st = plan_update(&u, ti, ids, (const char *const *)olds, nids, key, err);
        free(ids);
        rq_free_strv(sids, nids);
        rq_free_strv(olds, nolds);
    }
    /* reverse seq order is already dependency-safe: no FK reordering for revert */
    if (st == WR_OK) st = run_plan(&u, a.actor, a.apply, err);
done:
    PQclear(res);
    undo_term(&u);
    return st;
}

/* ------------------------------------------------------------------ rollback */

/* Does the table (by its newest name in the history) still exist on the source? Says so on stderr if not. */
static bool source_has_table(Undo *u, uint32_t relid)
{
    RelVersion rv;
    bool found;
    WrError e = {0};
    if (rq_relation_at(u->ctx, relid, -1, &rv, &found, &e) != WR_OK || !found) return true; /* let the plan report it */
    char *name = NULL;
    if (asprintf(&name, "%s.%s", rv.nspname, rv.relname) < 0) abort();
    char *nsp = rq_quote_ident(u->src, rv.nspname), *rel = rq_quote_ident(u->src, rv.relname);
    char *qname = NULL;
    if (asprintf(&qname, "%s.%s", nsp, rel) < 0) abort();
    const char *params[1] = {qname};
    PGresult *res = rq_exec(u->src, &e, "SELECT to_regclass($1) IS NOT NULL", 1, params);
    bool exists = !res || PQgetvalue(res, 0, 0)[0] == 't';
    if (!exists) fprintf(u->ctx->err, "skipping %s: it no longer exists in the source database\n", name);
    PQclear(res);
    free(qname);
    free(nsp);
    free(rel);
    free(name);
    relversion_term(&rv);
    return exists;
}

static WrStatus plan_table_rollback(Undo *u, uint32_t relid, int64_t to, int64_t newest, WrError *err)
{
    ReplayCtx *ctx = u->ctx;
    /* count, not EXISTS: for EXISTS the planner may choose a sequential scan that
     * stops at the first truncate, and with none it reads the whole history */
    PGresult *res = rq_execf(ctx->hist, err,
                             "WITH tr AS (SELECT count(*) > 0 AS has_truncate FROM %1$s.object_delta d "
                             "    WHERE d.revision_id > %3$lld AND d.revision_id <= %4$lld AND d.relid = %2$u AND d.op = 'T'), "
                             "touched AS (SELECT DISTINCT d.key FROM %1$s.object_delta d WHERE d.revision_id > %3$lld "
                             "    AND d.revision_id <= %4$lld AND d.relid = %2$u AND d.key IS NOT NULL), "
                             "a AS (SELECT s.key, s.vals FROM %1$s.snapshot_rows(%2$u, %3$lld) s "
                             "    WHERE (SELECT has_truncate FROM tr) OR s.key IN (SELECT key FROM touched)), "
                             "b AS (SELECT s.key, s.vals FROM %1$s.snapshot_rows(%2$u, %4$lld) s "
                             "    WHERE (SELECT has_truncate FROM tr) OR s.key IN (SELECT key FROM touched)) "
                             "SELECT coalesce(a.key, b.key), a.vals::text, b.vals::text "
                             "FROM a FULL JOIN b ON a.key = b.key ORDER BY 1",
                             ctx->schema_q, relid, (long long)to, (long long)newest);
    if (!res) return err->status;
    WrStatus st = WR_OK;
    RelVersion vat = {0};
    bool found = false;
    int ti = -1;
    if (PQntuples(res) > 0) {
        if ((st = rq_relation_at(ctx, relid, to, &vat, &found, err)) != WR_OK) goto done;
        if ((ti = live_table(u, relid, err)) < 0) {
            st = err->status;
            goto done;
        }
    }
    for (int r = 0; r < PQntuples(res) && st == WR_OK; r++) {
        const char *key = PQgetvalue(res, r, 0);
        bool has_a = !PQgetisnull(res, r, 1), has_b = !PQgetisnull(res, r, 2);
        char **av = NULL, **bv = NULL;
        int na = 0, nb = 0;
        if (has_a && (st = rq_parse_text_array(PQgetvalue(res, r, 1), &av, &na, err)) != WR_OK) break;
        if (has_b && (st = rq_parse_text_array(PQgetvalue(res, r, 2), &bv, &nb, err)) != WR_OK) {
            rq_free_strv(av, na);
            break;
        }
        int *ids = xcalloc((size_t)vat.ncols + 1, sizeof(int));
        const char **vals = xcalloc((size_t)vat.ncols + 1, sizeof(char *));
        int n = 0;
        for (int i = 0; i < vat.ncols; i++) {
            const char *x = val_of(av, na, vat.col_ids[i]);
            if (has_b && str_eq(x, val_of(bv, nb, vat.col_ids[i]))) continue;
            ids[n] = vat.col_ids[i];
            vals[n++] = x;
        }
        if (has_a && !has_b)
            plan_insert(u, ti, ids, vals, n);
        else if (has_a && has_b)
            st = plan_update(u, ti, ids, vals, n, key, err);
        else if (!has_a && has_b)
            st = plan_delete(u, ti, key, err);
        free(ids);
        free(vals);
        rq_free_strv(av, na);
        rq_free_strv(bv, nb);
    }
done:
    relversion_term(&vat);
    PQclear(res);
    return st;
}

WrStatus cmd_rollback(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    UndoArgs a;
    char *description = join_args("walrev rollback", argc, argv); /* before getopt permutes argv */
    if (parse_undo_args(ctx, argc, argv, &a, err) != WR_OK) {
        free(description);
        return err->status;
    }
    if (!a.to || a.npos || a.key || a.at)
        return free(description), wr_error_set(err, WR_INVALID, "usage: walrev rollback --to POINT [--table T ...] [--apply] "
                                             "[--actor TYPE:ID]");
    Undo u = {0};
    u.ctx = ctx;
    u.description = description;
    Point to, newest;
    uint32_t *relids = NULL;
    int n = 0;
    WrStatus st;
    if ((st = rq_resolve_point(ctx, a.to, &to, err)) != WR_OK) goto done;
    if ((st = rq_newest(ctx, &newest, err)) != WR_OK) goto done;
    if (a.ntables) {
        relids = xcalloc((size_t)a.ntables, sizeof(uint32_t));
        for (int i = 0; i < a.ntables; i++, n++) {
            if ((st = rq_resolve_table(ctx, a.tables[i], &relids[i], err)) != WR_OK) goto done;
            if ((st = refuse_partitioned(ctx, relids[i], a.tables[i], err)) != WR_OK) goto done;
        }
    } else if ((st = rq_all_tables(ctx, &relids, &n, err)) != WR_OK) {
        goto done;
    }
    if ((st = undo_connect(&u, err)) != WR_OK) goto done;
    for (int i = 0; i < n && st == WR_OK; i++) {
        if (!a.ntables && !source_has_table(&u, relids[i])) continue; /* dropped since: nothing to put back into */
        st = plan_table_rollback(&u, relids[i], to.rev, newest.rev, err);
    }
    if (st == WR_OK) st = order_by_foreign_keys(&u, err);
    if (st == WR_OK) {
        sort_plan(&u);
        st = run_plan(&u, a.actor, a.apply, err);
    }
done:
    free(relids);
    undo_term(&u);
    return st;
}
