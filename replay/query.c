/*
 * query.c — the helpers every replay command shares (internal.h): running
 * statements on the history connection, point, table and key resolution,
 * relation versions, option parsing. Below the commands: it never calls one,
 * so dispatch (replay.c) -> commands -> helpers has no cycle. Fills WrError
 * and returns; never prints.
 */
#include <ctype.h>
#include <stdarg.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "pgio/pgio.h"
#include "replay/internal.h"

void relversion_term(RelVersion *rv)
{
    if (!rv) return;
    free(rv->nspname);
    free(rv->relname);
    free(rv->col_ids);
    rq_free_strv(rv->col_names, rv->ncols);
    free(rv->type_oids);
    free(rv->typmods);
    rq_free_strv(rv->type_names, rv->ncols);
    free(rv->is_key);
    rq_free_strv(rv->gen_names, rv->ngen);
    rq_free_strv(rv->gen_types, rv->ngen);
    rq_free_strv(rv->gen_exprs, rv->ngen);
    free(rv->gen_positions);
    free(rv->member_relids);
    free(rv->member_gens);
    rq_free_strv(rv->member_exprs, rv->nmember_exprs);
    memset(rv, 0, sizeof(*rv));
}

void rq_free_strv(char **v, int n)
{
    if (!v) return;
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

void rq_oid_text(uint32_t relid, char buf[16]) { snprintf(buf, 16, "%u", relid); }

/* The server's message alone (replay's messages name what they did around
 * it), classified by pgio's table. */
void rq_server_error(WrError *err, PGconn *conn, const PGresult *res)
{
    char msg[512];
    const char *sqlstate;
    pgio_error_text(conn, res, msg, sizeof(msg), &sqlstate);
    wr_error_set(err, pgio_status(conn, sqlstate), "%s", msg);
    if (err && sqlstate) snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", sqlstate);
}

PGresult *rq_exec(PGconn *conn, WrError *err, const char *sql, int nparams, const char *const *params)
{
    /* without parameters the simple protocol: several statements allowed */
    PGresult *res;
    if (pgio_exec(conn, sql, nparams, params, &res)) return res;
    rq_server_error(err, conn, res);
    PQclear(res);
    return NULL;
}

WrStatus rq_run(PGconn *conn, WrError *err, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = rq_exec(conn, err, sql, nparams, params);
    if (!res) return err->status;
    PQclear(res);
    return WR_OK;
}

WrStatus rq_connect(const char *conninfo, const char *what, PGconn **out, WrError *err)
{
    PgioConnect how = {.what = what, .app_name = "walrev"};
    return pgio_connect(conninfo, &how, out, err);
}

static PGresult *exec_va(PGconn *conn, WrError *err, int nparams, const char *const *params, const char *fmt,
                         va_list ap) WR_PRINTF(5, 0);
static PGresult *exec_va(PGconn *conn, WrError *err, int nparams, const char *const *params, const char *fmt,
                         va_list ap)
{
    char *sql = xvasprintf(fmt, ap);
    PGresult *res = rq_exec(conn, err, sql, nparams, params);
    free(sql);
    return res;
}

PGresult *rq_execf(PGconn *conn, WrError *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *res = exec_va(conn, err, 0, NULL, fmt, ap);
    va_end(ap);
    return res;
}

PGresult *rq_execp(PGconn *conn, WrError *err, int nparams, const char *const *params, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *res = exec_va(conn, err, nparams, params, fmt, ap);
    va_end(ap);
    return res;
}

/*
 * The session's copy of the table log (schema/sql/replay.sql's
 * table_event_rows reads it when walrev.table_event_copy names its store):
 * made before the transaction, which is read-only (a temporary table may be
 * written there, not made). Rows last to the transaction's end. False when
 * it cannot be made (no TEMP privilege, a standby): every read then
 * computes the log, as before.
 */
static bool make_table_log_copy(ReplayCtx *ctx)
{
    PGresult *res = NULL;
    bool ok = pgio_exec(ctx->hist,
                        "CREATE TEMP TABLE IF NOT EXISTS walrev_table_event (revision_id bigint, seq integer, "
                        "relid oid, event text, nspname text, relname text, relkind text, parent oid, "
                        "columns jsonb, inherits oid[]) ON COMMIT DELETE ROWS",
                        0, NULL, &res);
    PQclear(res);
    return ok;
}

WrStatus rq_open_history(ReplayCtx *ctx, WrError *err)
{
    WrStatus cst = rq_connect(ctx->hist_conninfo, "history store", &ctx->hist, err);
    if (cst != WR_OK) return cst;
    /*
     * jit off: the planner's cost estimates grow with the store, so on a long
     * history even a bounded range scan crosses jit_above_cost and pays tens
     * of milliseconds of compilation per query for nothing. One round trip
     * with the check that the replay functions are there: each costs a
     * scheduling wait on a busy server, the CLI's fixed cost.
     */
    char *ns = PQescapeLiteral(ctx->hist, ctx->opts->schema ? ctx->opts->schema : "walrev",
                               strlen(ctx->opts->schema ? ctx->opts->schema : "walrev"));
    bool copy = ctx->copy_table_log && make_table_log_copy(ctx);
    PGresult *res = rq_execf(ctx->hist, err,
                             "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL search_path = pg_catalog; "
                             "SET LOCAL jit = off; "
                             "SELECT to_regprocedure(quote_ident(%1$s) || '.snapshot_rows(oid,bigint)') IS NOT NULL, "
                             "to_regprocedure(quote_ident(%1$s) || '.table_event_computed()') IS NOT NULL",
                             ns);
    PQfreemem(ns);
    if (!res) return wr_error_prefix(err, "history store");
    bool ok = PQgetvalue(res, 0, 0)[0] == 't';
    copy = copy && PQgetvalue(res, 0, 1)[0] == 't'; /* a store of an older replay.sql would not read it */
    PQclear(res);
    if (!ok)
        return wr_error_set(err, WR_FATAL, "history schema %s has no replay functions: run `walrev setup` (replay.sql)",
                            ctx->schema_q);
    if (copy) {
        /* schema_q is store_quote_ident's, as replay.sql's @schema@ */
        char *lit = PQescapeLiteral(ctx->hist, ctx->schema_q, strlen(ctx->schema_q));
        res = rq_execf(ctx->hist, err,
                       "INSERT INTO pg_temp.walrev_table_event SELECT * FROM %s.table_event_computed(); "
                       "SELECT set_config('walrev.table_event_copy', %s, true)",
                       ctx->schema_q, lit);
        PQfreemem(lit);
        if (!res) return wr_error_prefix(err, "history store: copying the table log");
        PQclear(res);
    }
    return WR_OK;
}

WrStatus rq_boolf(PGconn *conn, bool *out, WrError *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *res = exec_va(conn, err, 0, NULL, fmt, ap);
    va_end(ap);
    *out = false;
    if (!res) return err->status;
    *out = PQntuples(res) > 0 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return WR_OK;
}

WrStatus rq_has_table(ReplayCtx *ctx, const char *name, bool *have, WrError *err)
{
    return rq_boolf(ctx->hist, have, err, "SELECT to_regclass('%s.%s') IS NOT NULL", ctx->schema_q, name);
}

/*
 * n points, each the revision row of one SQL expression (exprs[i]; $k in it
 * is params[k-1]), in one statement: one round trip however many points a
 * command names (since and until, diff's two). Each expression is an
 * initplan, run once: compared with r.id directly, a STABLE function
 * (resolve_point) ran once more at planning, to estimate the condition's
 * selectivity (half of `log --since/--until`'s time). The branches of the
 * UNION ALL run in order, so the first point that fails is the one its
 * error names, as when each had a statement of its own.
 */
static WrStatus points_from_revs(ReplayCtx *ctx, int n, const char *const *exprs, int nparams,
                                 const char *const *params, Point *pts, WrError *err)
{
    StrBuf sql;
    strbuf_init(&sql);
    for (int i = 0; i < n; i++)
        strbuf_appendf(&sql,
                       "%sSELECT %d, r.id, r.commit_lsn::text, r.commit_time::text FROM %s.revision r "
                       "WHERE r.id = (SELECT %s)",
                       i ? " UNION ALL " : "", i, ctx->schema_q, exprs[i]);
    PGresult *res = rq_exec(ctx->hist, err, sql.data, nparams, params);
    strbuf_free(&sql);
    if (!res) return err->status;
    WrStatus st = WR_OK;
    if (PQntuples(res) != n) st = wr_error_set(err, WR_INVALID, "the history is empty: no revision recorded yet");
    for (int r = 0; st == WR_OK && r < n; r++) {
        Point *pt = &pts[atoi(PQgetvalue(res, r, 0))];
        pt->rev = strtoll(PQgetvalue(res, r, 1), NULL, 10);
        snprintf(pt->commit_lsn, sizeof(pt->commit_lsn), "%s", PQgetvalue(res, r, 2));
        snprintf(pt->commit_time, sizeof(pt->commit_time), "%s", PQgetvalue(res, r, 3));
    }
    PQclear(res);
    return st;
}

/* fn: resolve_point (a state: a point inside a gap is refused) or resolve_bound (a range's end) */
static WrStatus resolve_with(ReplayCtx *ctx, const char *fn, int n, const char *const *texts, Point *pts,
                             WrError *err)
{
    if (n <= 0) return WR_OK;
    char **exprs = xcalloc((size_t)n, sizeof(*exprs));
    for (int i = 0; i < n; i++) exprs[i] = xasprintf("%s.%s($%d)", ctx->schema_q, fn, i + 1);
    WrStatus st = points_from_revs(ctx, n, (const char *const *)exprs, n, texts, pts, err);
    rq_free_strv(exprs, n);
    if (st != WR_OK) {
        /* a point of the wrong form (resolve_point's 22P02, or 22007 for a
         * timestamp that does not parse) is a usage error, exit 2 as
         * docs/cli.md says; one of the right form that names no revision
         * (beyond, before, pruned) a runtime one */
        if (strcmp(err->sqlstate, "22P02") == 0 || strcmp(err->sqlstate, "22007") == 0) ctx->usage = true;
        err->status = WR_INVALID;
        return WR_INVALID;
    }
    for (int i = 0; i < n; i++)
        fprintf(ctx->err, "resolved %s to revision %lld (commit %s at %s)\n", texts[i], (long long)pts[i].rev,
                pts[i].commit_lsn, pts[i].commit_time);
    return WR_OK;
}

WrStatus rq_resolve_points(ReplayCtx *ctx, int n, const char *const *texts, Point *pts, WrError *err)
{
    return resolve_with(ctx, "resolve_point", n, texts, pts, err);
}

WrStatus rq_resolve_bounds(ReplayCtx *ctx, int n, const char *const *texts, Point *pts, WrError *err)
{
    return resolve_with(ctx, "resolve_bound", n, texts, pts, err);
}

WrStatus rq_resolve_point(ReplayCtx *ctx, const char *text, Point *pt, WrError *err)
{
    return rq_resolve_points(ctx, 1, &text, pt, err);
}

WrStatus rq_newest(ReplayCtx *ctx, Point *pt, WrError *err)
{
    char *expr = xasprintf("(SELECT max(id) FROM %s.revision)", ctx->schema_q);
    WrStatus st = points_from_revs(ctx, 1, (const char *const *)&expr, 0, NULL, pt, err);
    free(expr);
    return st;
}

/* What a relation of another kind than a table is, and why it has no
 * history: NULL for kinds not named here. */
static const char *other_kind_reason(char relkind)
{
    switch (relkind) {
    case 'm': return "a materialized view: logical decoding cannot capture it (REFRESH fills it without row changes)";
    case 'v': return "a view: it has no rows of its own (the tables it reads have their own history)";
    case 'f': return "a foreign table: its rows live on another server, where logical decoding here cannot see them";
    case 'S': return "a sequence: logical decoding does not capture sequences";
    default: return NULL;
    }
}

/*
 * A partitioned table that the history does not know although the
 * publication covers it now (the table log's table_state says so): it
 * joined the publication after setup (ALTER PUBLICATION ... ADD TABLE, or
 * its schema), and the table log, which records which partitions made up a
 * partitioned table at each point, has no row of it, so replay cannot take
 * it as the union of its partitions (issue 13). Said by name with the
 * reason and what answers instead; false (err untouched) when it is not
 * that case or the source cannot tell (no table log installed there).
 */
static bool late_parent_reason(ReplayCtx *ctx, PGconn *c, const char *nsp, const char *rel, WrError *err)
{
    const char *p[2] = {nsp, rel};
    char *sql = xasprintf(
        "SELECT (SELECT quote_ident(ln.nspname) || '.' || quote_ident(lc.relname) "
        "        FROM pg_partition_tree(c.oid) t JOIN pg_class lc ON lc.oid = t.relid "
        "        JOIN pg_namespace ln ON ln.oid = lc.relnamespace WHERE t.isleaf ORDER BY t.relid LIMIT 1) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'p' AND c.relpersistence = 'p' "
        "AND (%1$s.table_state(c.oid)).relid IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM %1$s.table_log l WHERE l.relid = c.oid)",
        ctx->schema_q);
    PGresult *r;
    bool ok = pgio_exec(c, sql, 2, p, &r), told = false;
    free(sql);
    if (ok && PQntuples(r) == 1) {
        char example[300] = "";
        if (!PQgetisnull(r, 0, 0))
            snprintf(example, sizeof(example), ", e.g. walrev snapshot --table %s", PQgetvalue(r, 0, 0));
        wr_error_set(err, WR_INVALID,
                     "table %s.%s is partitioned and joined the publication after setup: the table log, which "
                     "records which partitions make up a partitioned table at each point, has no record of it, so "
                     "walrev cannot answer for it as the union of its partitions (each partition has a history of "
                     "its own%s; `walrev setup` run again records its partitions from then on)",
                     nsp, rel, example);
        told = true;
    }
    PQclear(r);
    return told;
}

/*
 * A table the history cannot have, said by name: unlogged and temporary
 * tables are invisible to logical decoding (issue 13.7), and so are
 * materialized views, views, foreign tables and sequences, which a user
 * listing relations meets among tables. Asks the source catalog when a
 * source conninfo is known; false (err untouched) when it cannot tell.
 */
static bool untracked_reason(ReplayCtx *ctx, const char *nsp, const char *rel, uint32_t relid, WrError *err)
{
    if (!ctx->source_conninfo) return false;
    PGconn *c;
    WrError cerr = {0}; /* a source that cannot be reached tells nothing: err stays as it was */
    bool told = false;
    if (rq_connect(ctx->source_conninfo, "source", &c, &cerr) == WR_OK) {
        char oid[16];
        snprintf(oid, sizeof(oid), "%" PRIu32, relid);
        const char *p[3] = {nsp, rel, oid};
        /* by name, or by the table's oid when the history knows it */
        PGresult *r;
        bool ok = pgio_exec(c,
                            "SELECT (SELECT c.relpersistence FROM pg_class c JOIN pg_namespace n ON n.oid = "
                            "c.relnamespace WHERE ((n.nspname = $1 AND c.relname = $2) OR c.oid = $3::oid) "
                            "AND c.relkind IN ('r', 'p') LIMIT 1), "
                            "EXISTS (SELECT 1 FROM pg_class WHERE relname = $2 AND relpersistence = 't'), "
                            "(SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind NOT IN ('r', 'p') LIMIT 1)",
                            3, p, &r);
        if (ok && PQntuples(r) == 1) {
            const char *persistence = PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0);
            const char *other = PQgetisnull(r, 0, 2) ? NULL : other_kind_reason(PQgetvalue(r, 0, 2)[0]);
            if (!*persistence && other) {
                wr_error_set(err, WR_INVALID, "%s.%s is %s, so walrev has no history of it", nsp, rel, other);
                told = true;
            } else if (strcmp(persistence, "u") == 0) {
                wr_error_set(err, WR_INVALID,
                             "table %s.%s is unlogged: logical decoding cannot capture it, so walrev has no history "
                             "of it (ALTER TABLE %s.%s SET LOGGED starts one, with a baseline)",
                             nsp, rel, nsp, rel);
                told = true;
            } else if (strcmp(persistence, "t") == 0 || (!*persistence && PQgetvalue(r, 0, 1)[0] == 't')) {
                wr_error_set(err, WR_INVALID,
                             "table %s is a temporary table: logical decoding cannot capture it, so walrev has no "
                             "history of it",
                             rel);
                told = true;
            } else if (strcmp(persistence, "p") == 0) {
                told = late_parent_reason(ctx, c, nsp, rel, err);
            }
        }
        PQclear(r);
    }
    PQfinish(c);
    return told;
}

/* A table name as in SQL ("My Schema"."Tab ""q""", bare names folded to
 * lower case) into *nsp (public when unqualified) and *rel; caller frees both. */
static WrStatus parse_table_name(ReplayCtx *ctx, const char *name, char **nsp, char **rel, WrError *err)
{
    *nsp = *rel = NULL;
    if (!ident_parse_qualified(name, nsp, rel))
        return rq_usage(ctx, err, "invalid table name %s: expected table or schema.table, quoted as in SQL", name);
    if (!*nsp) *nsp = xstrdup("public");
    return WR_OK;
}

/* resolve_table()'s answer in column 0 of res's first row into *relid, or
 * the error for a name no tracked table had (saying why when the source
 * knows the table as unlogged or temporary). */
static WrStatus found_table(ReplayCtx *ctx, const PGresult *res, const char *name, const char *nsp, const char *rel,
                            uint32_t *relid, WrError *err)
{
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
        *relid = (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
        return WR_OK;
    }
    if (untracked_reason(ctx, nsp, rel, 0, err)) return err->status;
    return wr_error_set(err, WR_INVALID, "unknown table \"%s\": no tracked table %s.%s in the history", name, nsp, rel);
}

WrStatus rq_resolve_table(ReplayCtx *ctx, const char *name, uint32_t *relid, WrError *err)
{
    char *nsp_u = NULL, *rel_u = NULL;
    if (parse_table_name(ctx, name, &nsp_u, &rel_u, err) != WR_OK) return err->status;
    /* relation versions, and the table log: partitioned tables and tables never written */
    char *sql = xasprintf("SELECT %s.resolve_table($1, $2)", ctx->schema_q);
    const char *params[2] = {nsp_u, rel_u};
    PGresult *res = rq_exec(ctx->hist, err, sql, 2, params);
    free(sql);
    WrStatus st = res ? found_table(ctx, res, name, nsp_u, rel_u, relid, err) : err->status;
    PQclear(res);
    free(nsp_u);
    free(rel_u);
    return st;
}

WrStatus rq_resolve_object(ReplayCtx *ctx, const char *name, const char *key, bool want_newest, ObjectRef *o,
                           WrError *err)
{
    memset(o, 0, sizeof(*o));
    char *nsp_u = NULL, *rel_u = NULL;
    if (parse_table_name(ctx, name, &nsp_u, &rel_u, err) != WR_OK) return err->status;
    /*
     * One statement where rq_newest, rq_resolve_table, rq_has_members and the
     * key check were four: each is a round trip, and on a busy server each
     * waits to be scheduled (issue 16, P5: the fixed cost of `walrev blame`
     * and `history`). table_event (a query planned anew at each call) is
     * read once for both member tests: EXISTS over (partitioned OR named
     * among INHERITS parents) is rq_has_members' EXISTS OR is_inherit_parent
     * (OFFSET 0 keeps it one subquery: pulled up, it ran once per reference).
     * The key check walks the object index in order: as an EXISTS the planner
     * drops the ORDER BY and, for a key holding most of the table's deltas,
     * reads the table sequentially to the object's first change (61 ms at
     * 10^6 versions of one object).
     */
    char *newest =
        want_newest ? xasprintf("(SELECT max(r.id) FROM %s.revision r)", ctx->schema_q) : xstrdup("NULL::bigint");
    char *sql = xasprintf(
        "SELECT t.relid, m.members, CASE WHEN NOT m.members THEN (SELECT true FROM %1$s.object_delta o "
        "  WHERE o.relid = t.relid AND o.key = $3 ORDER BY o.relid, o.key, o.revision_id, o.seq LIMIT 1) END, %2$s "
        "FROM (SELECT %1$s.resolve_table($1, $2) AS relid OFFSET 0) t "
        "CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM %1$s.table_event e "
        "  WHERE (e.relid = t.relid AND e.relkind = 'p') OR t.relid = ANY (e.inherits)) AS members OFFSET 0) m",
        ctx->schema_q, newest);
    free(newest);
    const char *params[3] = {nsp_u, rel_u, key};
    PGresult *res = rq_exec(ctx->hist, err, sql, 3, params);
    free(sql);
    WrStatus st = res ? WR_OK : err->status;
    /* in the order the separate statements failed: an empty history, then the table */
    if (st == WR_OK && want_newest && PQgetisnull(res, 0, 3))
        st = wr_error_set(err, WR_INVALID, "the history is empty: no revision recorded yet");
    if (st == WR_OK) st = found_table(ctx, res, name, nsp_u, rel_u, &o->relid, err);
    if (st == WR_OK) {
        o->members = PQgetvalue(res, 0, 1)[0] == 't';
        o->known = !PQgetisnull(res, 0, 2);
        if (want_newest) o->newest = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    }
    PQclear(res);
    free(nsp_u);
    free(rel_u);
    return st;
}

/* Whether relid existed at rev under the name nsp.rel (rq_relation_at finds
 * no table dropped by rev; the table log's last event is read as well, for
 * the unlogged table it names). A table the log has no event of by rev
 * (there at setup, never altered, not dropped by rev) held its name since
 * before setup and never passed it on
 * (a rename is logged), so another table logged under that name by rev
 * means it was gone by then. *rv and *found: what rq_relation_at(relid, rev)
 * gave, kept for the caller (who relversion_term's *rv, on error too). */
static WrStatus named_at(ReplayCtx *ctx, uint32_t relid, int64_t rev, const char *nsp, const char *rel,
                         RelVersion *rv, bool *found, bool *yes, WrError *err)
{
    WrStatus st = rq_relation_at(ctx, relid, rev, rv, found, err);
    /* an unlogged table has no relation version, only the names the log gave it */
    *yes = st == WR_OK && (*found || rv->unlogged_rev > 0) && rv->nspname && rv->relname &&
           strcmp(rv->nspname, nsp) == 0 && strcmp(rv->relname, rel) == 0;
    if (*yes) {
        PGresult *res = rq_execf(ctx->hist, err,
                                 "SELECT event = 'drop' FROM %s.table_event WHERE relid = %u AND revision_id <= %lld "
                                 "ORDER BY revision_id DESC, seq DESC LIMIT 1",
                                 ctx->schema_q, relid, (long long)rev);
        if (!res) return err->status;
        bool unknown_to_log = PQntuples(res) == 0;
        *yes = unknown_to_log || PQgetvalue(res, 0, 0)[0] != 't';
        PQclear(res);
        if (unknown_to_log) {
            const char *params[2] = {nsp, rel};
            char *sql = xasprintf("SELECT EXISTS (SELECT 1 FROM %s.table_event WHERE nspname = $1 AND relname = $2 "
                                  "AND relid <> %u AND event <> 'drop' AND revision_id <= %lld)",
                                  ctx->schema_q, relid, (long long)rev);
            res = rq_exec(ctx->hist, err, sql, 2, params);
            free(sql);
            if (!res) return err->status;
            *yes = PQgetvalue(res, 0, 0)[0] != 't';
            PQclear(res);
        }
    }
    return st;
}

WrStatus rq_resolve_table_rv(ReplayCtx *ctx, const char *name, int64_t rev, uint32_t *relid, RelVersion *rv,
                             bool *found, WrError *err)
{
    memset(rv, 0, sizeof(*rv));
    *found = false;
    WrStatus st = rq_resolve_table(ctx, name, relid, err);
    if (st != WR_OK) return st;
    char *nsp = NULL, *rel = NULL;
    if (!ident_parse_qualified(name, &nsp, &rel)) return rq_usage(ctx, err, "invalid table name %s", name);
    if (!nsp) nsp = xstrdup("public");
    bool yes = false;
    st = named_at(ctx, *relid, rev, nsp, rel, rv, found, &yes, err);
    PGresult *res = NULL;
    if (st == WR_OK && !yes) {
        /* a name dropped and created again, or renamed away and given to another table: the one that had it
         * then (none: the table the name has now, whose version rv already is) */
        const char *params[2] = {nsp, rel};
        char *sql = xasprintf("SELECT relid FROM %1$s.relation_version WHERE nspname = $1 AND relname = $2 UNION "
                              "SELECT relid FROM %1$s.table_event WHERE nspname = $1 AND relname = $2 ORDER BY 1",
                              ctx->schema_q);
        res = rq_exec(ctx->hist, err, sql, 2, params);
        free(sql);
        if (!res) st = err->status;
        for (int i = 0; st == WR_OK && res && i < PQntuples(res) && !yes; i++) {
            uint32_t other = (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10);
            if (other == *relid) continue;
            RelVersion orv;
            bool ofound;
            st = named_at(ctx, other, rev, nsp, rel, &orv, &ofound, &yes, err);
            if (st == WR_OK && yes) {
                relversion_term(rv);
                *rv = orv;
                *found = ofound;
                *relid = other;
            } else {
                relversion_term(&orv);
            }
        }
    }
    PQclear(res);
    free(nsp);
    free(rel);
    return st;
}

WrStatus rq_resolve_table_at(ReplayCtx *ctx, const char *name, int64_t rev, uint32_t *relid, WrError *err)
{
    RelVersion rv;
    bool found;
    WrStatus st = rq_resolve_table_rv(ctx, name, rev, relid, &rv, &found, err);
    relversion_term(&rv);
    return st;
}

bool rq_untracked_now(ReplayCtx *ctx, const char *name, uint32_t relid, WrError *err)
{
    const char *dot = strchr(name, '.');
    char *nsp = dot ? xstrndup(name, (size_t)(dot - name)) : xstrdup("public");
    bool told = untracked_reason(ctx, nsp, dot ? dot + 1 : name, relid, err);
    free(nsp);
    return told;
}

WrStatus rq_all_tables(ReplayCtx *ctx, uint32_t **relids, int *n, WrError *err)
{
    /* Tables with rows of their own: relation versions and tables the table log
     * shows created and never written; not partitioned tables (their rows are
     * their partitions'), not walrev's own table log. */
    const char *params[1] = {ctx->opts->schema ? ctx->opts->schema : "walrev"};
    PGresult *res =
        rq_execp(ctx->hist, err, 1, params,
                 "SELECT relid FROM (SELECT DISTINCT ON (relid) relid, nspname, relname FROM ("
                 "  SELECT relid, nspname, relname, 1 AS src, version::numeric AS o FROM %1$s.relation_version"
                 "  UNION ALL SELECT relid, nspname, relname, 0, %1$s.change_pos(revision_id, seq)"
                 "  FROM %1$s.table_event WHERE event <> 'drop' AND relkind = 'r') x"
                 " ORDER BY relid, src DESC, o DESC) v "
                 "WHERE NOT (v.nspname = $1 AND v.relname IN ('table_log', 'erasure_log')) "
                 "AND v.relid NOT IN (SELECT e.relid FROM %1$s.table_event e WHERE e.relkind = 'p') "
                 "ORDER BY nspname, relname, relid",
                 ctx->schema_q);
    if (!res) return err->status;
    *n = PQntuples(res);
    *relids = xcalloc((size_t)*n + 1, sizeof(uint32_t));
    for (int i = 0; i < *n; i++) (*relids)[i] = (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10);
    PQclear(res);
    return WR_OK;
}

WrStatus rq_parse_text_array(const char *text, char ***vals, int *n, WrError *err)
{
    /* One-dimensional text[] output: {a,"b c",NULL,"x\"y"}. */
    *vals = NULL;
    *n = 0;
    size_t len = strlen(text);
    if (len < 2 || text[0] != '{' || text[len - 1] != '}')
        return wr_error_set(err, WR_PROTOCOL, "malformed array from the history store: %.60s", text);
    int cap = 8;
    char **v = xcalloc((size_t)cap, sizeof(char *));
    const char *p = text + 1, *end = text + len - 1;
    StrBuf item;
    strbuf_init(&item);
    while (p < end) {
        strbuf_reset(&item);
        bool quoted = false;
        if (*p == '"') {
            quoted = true;
            p++;
            while (p < end && *p != '"') {
                if (*p == '\\' && p + 1 < end) p++;
                strbuf_append_char(&item, *p++);
            }
            p++; /* closing quote */
        } else {
            while (p < end && *p != ',') strbuf_append_char(&item, *p++);
        }
        if (*n == cap) {
            cap *= 2;
            v = xrealloc(v, (size_t)cap * sizeof(char *));
        }
        if (!quoted && strcmp(item.data, "NULL") == 0)
            v[(*n)++] = NULL;
        else
            v[(*n)++] = xstrdup(item.data);
        if (p < end && *p == ',') p++;
    }
    strbuf_free(&item);
    *vals = v;
    return WR_OK;
}

static WrStatus parse_int_array(const char *text, int **out, int n_expected, WrError *err)
{
    char **s;
    int n;
    WrStatus st = rq_parse_text_array(text, &s, &n, err);
    if (st != WR_OK) return st;
    if (n != n_expected) {
        rq_free_strv(s, n);
        return wr_error_set(err, WR_PROTOCOL, "relation_version arrays of different lengths");
    }
    *out = xcalloc((size_t)n + 1, sizeof(int));
    for (int i = 0; i < n; i++) (*out)[i] = s[i] ? (int)strtol(s[i], NULL, 10) : 0;
    rq_free_strv(s, n);
    return WR_OK;
}

WrStatus rq_relation_at(ReplayCtx *ctx, uint32_t relid, int64_t rev, RelVersion *rv, bool *found, WrError *err)
{
    memset(rv, 0, sizeof(*rv));
    *found = false;
    /* state, relkind, created_rev, then the columns of a relation version (table_at's shape) */
    const char *cols = "version, nspname, relname, col_ids::text, col_names::text, col_type_oids::text, "
                       "col_typmods::text, col_type_names::text, col_is_key::text";
    PGresult *res = NULL;
    if (rev < 0) {
        res = rq_execf(ctx->hist, err,
                       "SELECT 'ok', 'r', NULL, %s FROM %s.relation_version WHERE relid = %u "
                       "AND EXISTS (SELECT 1 FROM %s.tracked_table t WHERE t.relid = %u) "
                       "ORDER BY version DESC LIMIT 1",
                       cols, ctx->schema_q, relid, ctx->schema_q, relid);
        if (!res) return err->status;
        if (PQntuples(res) == 0) {
            /* no relation version, or no row of its own (a table created after setup has its
             * version from its CREATE TABLE): a partitioned table or one never written, as of
             * the newest revision (table_at says whether it was dropped) */
            PQclear(res);
            res = NULL;
        }
    }
    if (!res) {
        char newest[64];
        if (rev >= 0)
            snprintf(newest, sizeof(newest), "%lld", (long long)rev);
        else
            snprintf(newest, sizeof(newest), "(SELECT max(id) FROM %s.revision)", ctx->schema_q);
        res = rq_execf(ctx->hist, err, "SELECT state, relkind, created_rev, %s FROM %s.table_at(%u, %s)", cols,
                       ctx->schema_q, relid, newest);
    }
    if (!res) return err->status;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return WR_OK;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "ok") != 0) {
        /* the table log shows it created after rev, or dropped by then */
        if (strcmp(PQgetvalue(res, 0, 0), "dropped") == 0)
            rv->dropped_rev = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        else if (strcmp(PQgetvalue(res, 0, 0), "unlogged") == 0 || strcmp(PQgetvalue(res, 0, 0), "unpublished") == 0) {
            /* no history from there: unlogged, or out of the publication (every reader refuses it alike) */
            rv->unlogged_rev = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
            rv->unpublished = PQgetvalue(res, 0, 0)[2] == 'p';
            /* the name it had then (named_at: a name an unlogged table passed on) */
            rv->nspname = PQgetisnull(res, 0, 4) ? NULL : xstrdup(PQgetvalue(res, 0, 4));
            rv->relname = PQgetisnull(res, 0, 5) ? NULL : xstrdup(PQgetvalue(res, 0, 5));
        } else
            rv->created_rev = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        rv->untracked = strcmp(PQgetvalue(res, 0, 0), "untracked") == 0;
        PQclear(res);
        return WR_OK;
    }
    rv->relkind = PQgetvalue(res, 0, 1)[0] == 'p' ? 'p' : 'r';
    rv->relid = relid;
    rv->version = atoi(PQgetvalue(res, 0, 3));
    rv->nspname = xstrdup(PQgetvalue(res, 0, 4));
    rv->relname = xstrdup(PQgetvalue(res, 0, 5));
    WrStatus st = rq_parse_text_array(PQgetvalue(res, 0, 7), &rv->col_names, &rv->ncols, err);
    int *oids = NULL, *isk = NULL;
    int ntn = 0;
    if (st == WR_OK) st = parse_int_array(PQgetvalue(res, 0, 6), &rv->col_ids, rv->ncols, err);
    if (st == WR_OK) st = parse_int_array(PQgetvalue(res, 0, 8), &oids, rv->ncols, err);
    if (st == WR_OK) st = parse_int_array(PQgetvalue(res, 0, 9), &rv->typmods, rv->ncols, err);
    if (st == WR_OK) st = rq_parse_text_array(PQgetvalue(res, 0, 10), &rv->type_names, &ntn, err);
    if (st == WR_OK && ntn != rv->ncols)
        st = wr_error_set(err, WR_PROTOCOL, "relation_version arrays of different lengths");
    if (st == WR_OK) {
        char **b;
        int nb;
        st = rq_parse_text_array(PQgetvalue(res, 0, 11), &b, &nb, err);
        if (st == WR_OK) {
            rv->is_key = xcalloc((size_t)rv->ncols + 1, sizeof(bool));
            for (int i = 0; i < nb && i < rv->ncols; i++) rv->is_key[i] = b[i] && b[i][0] == 't';
            rq_free_strv(b, nb);
        }
    }
    if (st == WR_OK) {
        rv->type_oids = xcalloc((size_t)rv->ncols + 1, sizeof(uint32_t));
        for (int i = 0; i < rv->ncols; i++) rv->type_oids[i] = (uint32_t)oids[i];
    }
    free(oids);
    free(isk);
    PQclear(res);
    /* A relation version's STORED generated columns (a table known only from the table log has none here). */
    if (st == WR_OK && rv->version > 0) {
        res = rq_execf(ctx->hist, err,
                       "SELECT coalesce(gen_names, '{}')::text, coalesce(gen_type_names, '{}')::text, "
                       "coalesce(gen_positions, '{}')::text, coalesce(gen_exprs, '{}')::text "
                       "FROM %s.relation_version WHERE relid = %u AND version = %d",
                       ctx->schema_q, relid, rv->version);
        if (!res) st = err->status;
        if (st == WR_OK && PQntuples(res) == 1) {
            int nt = 0, ne = 0;
            st = rq_parse_text_array(PQgetvalue(res, 0, 0), &rv->gen_names, &rv->ngen, err);
            if (st == WR_OK) st = rq_parse_text_array(PQgetvalue(res, 0, 1), &rv->gen_types, &nt, err);
            if (st == WR_OK) st = rq_parse_text_array(PQgetvalue(res, 0, 3), &rv->gen_exprs, &ne, err);
            if (st == WR_OK) st = parse_int_array(PQgetvalue(res, 0, 2), &rv->gen_positions, rv->ngen, err);
            if (st == WR_OK && (nt != rv->ngen || ne != rv->ngen))
                st = wr_error_set(err, WR_PROTOCOL, "relation_version gen_* arrays of different lengths");
        }
        PQclear(res);
    }
    if (st != WR_OK) {
        relversion_term(rv);
        return st;
    }
    *found = true;
    return WR_OK;
}

WrStatus rq_is_partitioned(ReplayCtx *ctx, uint32_t relid, bool *partitioned, WrError *err)
{
    return rq_boolf(ctx->hist, partitioned, err,
                    "SELECT EXISTS (SELECT 1 FROM %s.table_event WHERE relid = %u AND relkind = 'p')", ctx->schema_q,
                    relid);
}

WrStatus rq_has_members(ReplayCtx *ctx, uint32_t relid, bool *members, WrError *err)
{
    return rq_boolf(ctx->hist, members, err,
                    "SELECT EXISTS (SELECT 1 FROM %1$s.table_event WHERE relid = %2$u AND relkind = 'p') "
                    "OR %1$s.is_inherit_parent(%2$u)",
                    ctx->schema_q, relid);
}

WrStatus rq_members_logged(ReplayCtx *ctx, uint32_t relid, int64_t from, int64_t to, WrError *err)
{
    PGresult *res = rq_execf(ctx->hist, err, "SELECT %s.members_logged(%u, %lld, %lld)", ctx->schema_q, relid,
                             (long long)from, (long long)to);
    if (!res) {
        /* 55000 is members_logged's own: a fact of the history, not a failure of the store */
        if (strcmp(err->sqlstate, "55000") == 0) err->status = WR_INVALID;
        return err->status;
    }
    PQclear(res);
    return WR_OK;
}

WrStatus rq_inherits_at(ReplayCtx *ctx, uint32_t relid, int64_t rev, bool *parent, WrError *err)
{
    /* the cheap test first: most tables never were a parent. A foreign child counts (members_at
     * leaves it out, having no rows here): the parent is one, and members_logged names the child. */
    return rq_boolf(ctx->hist, parent, err,
                    "SELECT CASE WHEN %1$s.is_inherit_parent(%2$u) THEN EXISTS (SELECT 1 FROM "
                    "%1$s.member_intervals(%2$u) m WHERE m.relid <> %2$u AND m.relkind IN ('r', 'f') "
                    "AND m.lo < %1$s.change_pos(%3$lld + 1, 0) AND m.hi >= %1$s.change_pos(%3$lld + 1, 0)) "
                    "ELSE false END",
                    ctx->schema_q, relid, (long long)rev);
}

static void append_key_element(StrBuf *b, const json_t *e)
{
    if (json_is_null(e))
        strbuf_append_str(b, "null");
    else if (json_is_string(e))
        strbuf_append_json_string(b, json_string_value(e), json_string_length(e));
    else {
        /* a number or boolean written without quotes: the key holds text values */
        char *t = json_dumps(e, JSON_ENCODE_ANY | JSON_COMPACT);
        strbuf_append_json_string(b, t, strlen(t));
        free(t);
    }
}

/* A row of a table without a key: "#<revision>.<seq>" (docs/history-store.md). */
static bool synthetic_key(const char *arg)
{
    if (arg[0] != '#' || !isdigit((unsigned char)arg[1])) return false;
    const char *p = arg + 1;
    while (isdigit((unsigned char)*p)) p++;
    if (*p++ != '.') return false;
    if (*p == 's') p++;
    if (!isdigit((unsigned char)*p)) return false;
    while (isdigit((unsigned char)*p)) p++;
    return *p == '\0';
}

WrStatus rq_parse_key(const char *arg, char **key, WrError *err)
{
    StrBuf b;
    strbuf_init(&b);
    if (synthetic_key(arg)) {
        /* taken as it is; a one-column key with this text is written ["#1.2"] */
        strbuf_append_str(&b, arg);
    } else if (arg[0] == '[') {
        json_error_t je;
        json_t *a = json_loads(arg, JSON_DECODE_ANY, &je);
        if (!a || !json_is_array(a) || json_array_size(a) == 0) {
            json_decref(a);
            strbuf_free(&b);
            return wr_error_set(err, WR_INVALID,
                                "invalid --key %s: expected a value or a non-empty JSON array such as [\"42\"]", arg);
        }
        strbuf_append_char(&b, '[');
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (i) strbuf_append_char(&b, ',');
            append_key_element(&b, json_array_get(a, i));
        }
        strbuf_append_char(&b, ']');
        json_decref(a);
    } else {
        strbuf_append_char(&b, '[');
        strbuf_append_json_string(&b, arg, strlen(arg));
        strbuf_append_char(&b, ']');
    }
    *key = b.data;
    return WR_OK;
}

WrStatus rq_key_values(const char *key, char ***vals, int *n, WrError *err)
{
    json_error_t je;
    json_t *a = json_loads(key, 0, &je);
    if (!a || !json_is_array(a)) {
        json_decref(a);
        return wr_error_set(err, WR_PROTOCOL, "malformed object key %s in the history store", key);
    }
    *n = (int)json_array_size(a);
    *vals = xcalloc((size_t)*n + 1, sizeof(char *));
    for (int i = 0; i < *n; i++) {
        json_t *e = json_array_get(a, (size_t)i);
        (*vals)[i] = json_is_string(e) ? xstrdup(json_string_value(e)) : NULL;
    }
    json_decref(a);
    return WR_OK;
}

void rq_quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

char *rq_quote_ident(PGconn *conn, const char *name)
{
    /* the server's quote_ident knows its keywords; bare names keep plans readable */
    const char *params[1] = {name};
    PGresult *res;
    char *out;
    if (pgio_exec(conn, "SELECT quote_ident($1)", 1, params, &res) && PQntuples(res) == 1) {
        out = xstrdup(PQgetvalue(res, 0, 0));
    } else {
        char *q = PQescapeIdentifier(conn, name, strlen(name));
        out = xstrdup(q ? q : "\"?\"");
        PQfreemem(q);
    }
    PQclear(res);
    return out;
}

WrStatus rq_parse_format(const char *arg, OutFormat *fmt, WrError *err)
{
    if (!out_parse_format(arg, fmt))
        return wr_error_set(err, WR_INVALID, "unknown --format %s: expected aligned, csv or json", arg);
    return WR_OK;
}

WrStatus rq_bad_option(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    const char *what = (optind > 0 && optind - 1 < argc) ? argv[optind - 1] : "?";
    return rq_usage(ctx, err, "bad option or missing value: %s (try walrev %s --help)", what, ctx->cmd);
}

WrStatus rq_check_actor(ReplayCtx *ctx, const char *actor, WrError *err)
{
    const char *colon = actor ? strchr(actor, ':') : NULL;
    if (actor && (!colon || colon == actor || !colon[1]))
        return rq_usage(ctx, err, "--actor %s: expected TYPE:ID", actor);
    if (actor && strncmp(actor, "walrev:", 7) == 0)
        return rq_usage(ctx, err, "--actor %s: the actor type walrev is reserved for walrev itself", actor);
    return WR_OK;
}

WrStatus rq_parse_key_arg(ReplayCtx *ctx, const char *arg, char **key, WrError *err)
{
    WrStatus st = rq_parse_key(arg, key, err);
    if (st != WR_OK) ctx->usage = true;
    return st;
}

WrStatus rq_usage(ReplayCtx *ctx, WrError *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    ctx->usage = true;
    wr_error_set(err, WR_INVALID, "%s", msg);
    free(msg);
    return WR_INVALID;
}

/* USER is unset under cron, systemd units, `docker exec` and `env -i`, where an
 * undo would otherwise be recorded as cli:unknown although the OS knows who ran
 * it: fall back to LOGNAME, then to the account of the real user id. */
const char *rq_cli_user(void)
{
    const char *user = getenv("USER");
    if (user && *user) return user;
    user = getenv("LOGNAME");
    if (user && *user) return user;
    const struct passwd *pw = getpwuid(getuid());
    if (pw && pw->pw_name && *pw->pw_name) return pw->pw_name;
    return "unknown";
}

char *rq_context_sql(ReplayCtx *ctx, PGconn *conn, const char *actor, const char *description, json_t *meta)
{
    char *type, *id;
    if (actor) {
        const char *colon = strchr(actor, ':');
        type = xstrndup(actor, (size_t)(colon - actor));
        id = xstrdup(colon + 1);
    } else {
        type = xstrdup("cli");
        id = xstrdup(rq_cli_user());
    }
    json_t *j = json_pack("{s:{s:s,s:s},s:s}", "actor", "type", type, "id", id, "description", description);
    if (meta) json_object_set(j, "meta", meta);
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    char *lit = PQescapeLiteral(conn, text, strlen(text));
    char *sql = xasprintf("SELECT %s.context(%s)", ctx->schema_q, lit);
    PQfreemem(lit);
    free(text);
    free(type);
    free(id);
    return sql;
}

WrStatus rq_named_or_all_tables(ReplayCtx *ctx, const char *const *tables, int ntables, uint32_t **relids, int *n,
                                WrError *err)
{
    if (ntables == 0) return rq_all_tables(ctx, relids, n, err);
    *relids = xcalloc((size_t)ntables, sizeof(uint32_t));
    for (*n = 0; *n < ntables; (*n)++) {
        WrStatus st = rq_resolve_table(ctx, tables[*n], &(*relids)[*n], err);
        if (st != WR_OK) return st;
    }
    return WR_OK;
}
