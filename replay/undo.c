/*
 * undo.c — `walrev restore`, `revert` and `rollback`: each reads what to
 * undo from the history and builds an undo plan (plan.h) of plain
 * INSERT/UPDATE/DELETE statements against the live (source) tables, which is
 * printed and, with --apply, run as one transaction that is itself a new
 * revision. History is never edited.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "replay/plan.h"

enum { OPT_APPLY = 1000, OPT_ACTOR, OPT_TABLE, OPT_KEY, OPT_AT, OPT_COLUMNS, OPT_FORCE, OPT_TO };

const struct option rq_undo_options[] = {{"apply", no_argument, NULL, OPT_APPLY},
                                         {"actor", required_argument, NULL, OPT_ACTOR},
                                         {"table", required_argument, NULL, OPT_TABLE},
                                         {"key", required_argument, NULL, OPT_KEY},
                                         {"at", required_argument, NULL, OPT_AT},
                                         {"columns", required_argument, NULL, OPT_COLUMNS},
                                         {"force", no_argument, NULL, OPT_FORCE},
                                         {"to", required_argument, NULL, OPT_TO},
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

static WrStatus parse_undo_args(ReplayCtx *ctx, int argc, char **argv, UndoArgs *a, WrError *err)
{
    memset(a, 0, sizeof(*a));
    const CliField fields[] = {CLI_FLAG(OPT_APPLY, &a->apply),   CLI_FLAG(OPT_FORCE, &a->force),
                               CLI_STRING(OPT_ACTOR, &a->actor), CLI_STRING(OPT_KEY, &a->key),
                               CLI_STRING(OPT_AT, &a->at),       CLI_STRING(OPT_COLUMNS, &a->columns),
                               CLI_STRING(OPT_TO, &a->to)};
    cli_start();
    int c;
    while ((c = cli_next(argc, argv, rq_undo_options, fields, CLI_NFIELDS(fields))) != -1) {
        if (c != OPT_TABLE) return rq_bad_option(ctx, argc, argv, err);
        if (a->ntables == MAX_TABLES) return rq_usage(ctx, err, "too many --table options");
        a->tables[a->ntables++] = optarg;
    }
    a->pos = argv + optind;
    a->npos = argc - optind;
    return rq_check_actor(ctx, a->actor, err);
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

/* An empty plan described by the command line, and the parsed options. */
static WrStatus start_undo(ReplayCtx *ctx, const char *cmd, int argc, char **argv, UndoPlan *u, UndoArgs *a,
                           WrError *err)
{
    plan_init(u, ctx, join_args(cmd, argc, argv)); /* before getopt permutes argv */
    return parse_undo_args(ctx, argc, argv, a, err);
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

/* What one object was at a point, from the history. */
typedef struct {
    uint32_t relid;
    char *key;
    Point pt;
    char **vals; /* its row at pt, by col_id; NULL when it did not exist then */
    int nvals;
    RelVersion rv; /* the table's version at pt */
    bool rv_found;
} RestoreTarget;

static void restore_target_term(RestoreTarget *t)
{
    free(t->key);
    rq_free_strv(t->vals, t->nvals);
    relversion_term(&t->rv);
}

static WrStatus read_restore_target(ReplayCtx *ctx, const UndoArgs *a, RestoreTarget *t, WrError *err)
{
    WrStatus st;
    if ((st = rq_resolve_table(ctx, a->tables[0], &t->relid, err)) != WR_OK) return st;
    if ((st = refuse_partitioned(ctx, t->relid, a->tables[0], err)) != WR_OK) return st;
    if ((st = rq_parse_key_arg(ctx, a->key, &t->key, err)) != WR_OK) return st;
    if ((st = rq_resolve_point(ctx, a->at, &t->pt, err)) != WR_OK) return st;
    char rel[16], rev[24];
    rq_oid_text(t->relid, rel);
    snprintf(rev, sizeof(rev), "%lld", (long long)t->pt.rev);
    const char *params[3] = {rel, t->key, rev};
    StrBuf sql;
    strbuf_init(&sql);
    strbuf_appendf(&sql,
                   "SELECT count(*) FROM (SELECT 1 FROM %s.object_delta WHERE relid = $1::oid AND key = $2 "
                   "LIMIT 1) x",
                   ctx->schema_q);
    PGresult *res = rq_exec(ctx->hist, err, sql.data, 2, params);
    if (res && strcmp(PQgetvalue(res, 0, 0), "0") == 0 && rq_untracked_now(ctx, a->tables[0], t->relid, err))
        st = err->status; /* unlogged or temporary: no change of any key */
    else if (res && strcmp(PQgetvalue(res, 0, 0), "0") == 0)
        st = wr_error_set(err, WR_INVALID, "unknown key %s in table %s: no change recorded for it", t->key,
                          a->tables[0]);
    PQclear(res);
    if (res && st == WR_OK) {
        strbuf_reset(&sql);
        strbuf_appendf(&sql, "SELECT %s.row_at($1::oid, $2, $3::bigint)::text", ctx->schema_q);
        res = rq_exec(ctx->hist, err, sql.data, 3, params);
        if (res && !PQgetisnull(res, 0, 0)) st = rq_parse_text_array(PQgetvalue(res, 0, 0), &t->vals, &t->nvals, err);
        PQclear(res);
    }
    strbuf_free(&sql);
    if (!res) return err->status;
    if (st != WR_OK) return st;
    if ((st = rq_relation_at(ctx, t->relid, t->pt.rev, &t->rv, &t->rv_found, err)) != WR_OK) return st;
    /* unlogged or out of the publication at POINT: the history does not know the row then */
    if (!t->rv_found && t->rv.unlogged_rev > 0)
        return rq_table_whole_rv(ctx, a->tables[0], t->relid, false, t->pt.rev, &t->rv, false, true, err);
    return WR_OK;
}

/* The live row of key, every column as text (no row: none there now). */
static WrStatus read_live_row(UndoPlan *u, const LiveTable *t, const char *key, PGresult **live, WrError *err)
{
    StrBuf q;
    strbuf_init(&q);
    strbuf_append_str(&q, "SELECT ");
    for (int i = 0; i < t->nlive; i++) {
        if (i) strbuf_append_str(&q, ", ");
        plan_append_ident(u, &q, t->live_names[i]);
        strbuf_append_str(&q, "::text");
    }
    strbuf_appendf(&q, " FROM %s", t->qname);
    bool gone = false;
    /* a row without a key: the one the history holds now (none: gone, the restore undeletes it) */
    WrStatus st = key[0] == '#' ? plan_append_where_multiset(u, &q, t, key, &gone, err)
                                : plan_append_where_key(u, &q, t, key, err);
    if (st == WR_OK && gone) strbuf_append_str(&q, " WHERE false");
    if (st == WR_OK && !(*live = rq_exec(u->src, err, q.data, 0, NULL))) st = err->status;
    if (st == WR_OK && key[0] == '#' && !gone && PQntuples(*live) == 0)
        st = wr_error_set(err, WR_FATAL,
                          "nothing changed: row %s of %s is not in the live table as the history holds it: the live "
                          "table differs from the history (is the worker behind?)",
                          key, t->qname);
    strbuf_free(&q);
    return st;
}

/* Every --columns name is a column of the table then or now. */
static WrStatus check_columns(const RestoreTarget *tg, const LiveTable *t, char **want, int nwant, const char *table,
                              WrError *err)
{
    for (int w = 0; w < nwant; w++) {
        bool ok = false;
        for (int i = 0; i < tg->rv.ncols; i++)
            if (want[w] && str_eq(want[w], tg->rv.col_names[i])) ok = true;
        for (int j = 0; j < t->nlive; j++)
            if (want[w] && str_eq(want[w], t->live_names[j])) ok = true;
        if (!ok)
            return wr_error_set(err, WR_INVALID, "unknown column %s in --columns for table %s", want[w] ? want[w] : "",
                                table);
    }
    return WR_OK;
}

/* Is column i of the target's version asked for by --columns (none: every column)? */
static bool column_wanted(const RestoreTarget *tg, const LiveTable *t, int i, char **want, int nwant)
{
    if (!nwant) return true;
    int lc = plan_live_col(t, tg->rv.col_ids[i]);
    for (int w = 0; w < nwant; w++)
        if (want[w] && (str_eq(want[w], tg->rv.col_names[i]) || (lc >= 0 && str_eq(want[w], t->live_names[lc]))))
            return true;
    return false;
}

/* The one statement that puts the live row back as the target says it was. */
static WrStatus plan_restore_row(UndoPlan *u, int ti, const RestoreTarget *tg, PGresult *live, char **want, int nwant,
                                 WrError *err)
{
    const LiveTable *t = &u->tables[ti];
    bool live_exists = PQntuples(live) > 0;
    int *ids = xcalloc((size_t)tg->rv.ncols + 1, sizeof(int));
    const char **vals = xcalloc((size_t)tg->rv.ncols + 1, sizeof(char *));
    int n = 0;
    for (int i = 0; tg->rv_found && i < tg->rv.ncols; i++) {
        int cid = tg->rv.col_ids[i];
        int lc = plan_live_col(t, cid);
        if (!column_wanted(tg, t, i, want, nwant) && live_exists) continue;
        const char *v = tg->vals ? val_of(tg->vals, tg->nvals, cid) : NULL;
        if (live_exists) {
            if (lc < 0) continue;
            const char *cur = PQgetisnull(live, 0, lc) ? NULL : PQgetvalue(live, 0, lc);
            if (str_eq(cur, v)) continue;
        }
        ids[n] = cid;
        vals[n++] = v;
    }
    WrStatus st = WR_OK;
    if (tg->vals && !live_exists)
        plan_insert(u, ti, ids, vals, n); /* undelete: every column of that time */
    else if (tg->vals && live_exists)
        st = plan_update(u, ti, ids, vals, n, tg->key, err);
    else if (!tg->vals && live_exists)
        st = plan_delete(u, ti, tg->key, err);
    free(ids);
    free(vals);
    return st;
}

static WrStatus plan_restore(UndoPlan *u, const UndoArgs *a, WrError *err)
{
    RestoreTarget tg = {0};
    PGresult *live = NULL;
    char **want = NULL;
    int nwant = 0;
    WrStatus st = read_restore_target(u->ctx, a, &tg, err);
    if (st == WR_OK) st = plan_connect(u, err);
    if (st != WR_OK) goto done;
    int ti = plan_live_table(u, tg.relid, err);
    if (ti < 0) {
        st = err->status;
        goto done;
    }
    if (a->columns) {
        StrBuf cb;
        strbuf_init(&cb);
        strbuf_appendf(&cb, "{%s}", a->columns);
        st = rq_parse_text_array(cb.data, &want, &nwant, err);
        strbuf_free(&cb);
    }
    if (st == WR_OK) st = read_live_row(u, &u->tables[ti], tg.key, &live, err);
    if (st == WR_OK) st = check_columns(&tg, &u->tables[ti], want, nwant, a->tables[0], err);
    if (st == WR_OK) st = plan_restore_row(u, ti, &tg, live, want, nwant, err);
done:
    PQclear(live);
    rq_free_strv(want, nwant);
    restore_target_term(&tg);
    return st;
}

WrStatus cmd_restore(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    UndoArgs a;
    UndoPlan u;
    WrStatus st = start_undo(ctx, "walrev restore", argc, argv, &u, &a, err);
    if (st == WR_OK && (a.ntables != 1 || !a.key || !a.at || a.npos || a.force || a.to))
        st = rq_usage(ctx, err,
                      "usage: walrev restore --table T --key K --at POINT [--columns a,b] "
                      "[--apply] [--actor TYPE:ID]");
    if (st == WR_OK && (rq_check_table_name(ctx, a.tables[0], err) != WR_OK || rq_check_key(ctx, a.key, err) != WR_OK ||
                        rq_check_point(ctx, "--at", a.at, err) != WR_OK || rq_open_history(ctx, err) != WR_OK))
        st = err->status;
    if (st == WR_OK) st = plan_restore(&u, &a, err);
    if (st == WR_OK) st = plan_finish(&u, a.actor, a.apply, err);
    plan_term(&u);
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
        out_print_result(ctx->err, res, OUT_ALIGNED, NULL);
    }
    PQclear(res);
    return WR_OK;
}

/* A truncate reverted: the table's rows just before revision rev come back. */
static WrStatus plan_untruncate(UndoPlan *u, int ti, uint32_t relid, int64_t rev, WrError *err)
{
    ReplayCtx *ctx = u->ctx;
    RelVersion vb;
    bool found;
    WrStatus st = rq_relation_at(ctx, relid, rev - 1, &vb, &found, err);
    if (st != WR_OK || !found) {
        relversion_term(&vb);
        return st;
    }
    PGresult *rows = rq_execf(ctx->hist, err, "SELECT vals::text FROM %s.snapshot_rows(%u, %lld)", ctx->schema_q, relid,
                              (long long)rev - 1);
    if (!rows) st = err->status;
    for (int i = 0; rows && i < PQntuples(rows) && st == WR_OK; i++) {
        char **arr;
        int na;
        if ((st = rq_parse_text_array(PQgetvalue(rows, i, 0), &arr, &na, err)) != WR_OK) break;
        const char **vals = xcalloc((size_t)vb.ncols + 1, sizeof(char *));
        for (int c = 0; c < vb.ncols; c++) vals[c] = val_of(arr, na, vb.col_ids[c]);
        plan_insert(u, ti, vb.col_ids, vals, vb.ncols);
        free(vals);
        rq_free_strv(arr, na);
    }
    PQclear(rows);
    relversion_term(&vb);
    return st;
}

/* An UPDATE or DELETE reverted from its old values (row r of the deltas). */
static WrStatus plan_old_values(UndoPlan *u, int ti, const PGresult *res, int r, char op, const char *key, int64_t rev,
                                WrError *err)
{
    char **sids, **olds;
    int nids, nolds;
    WrStatus st = rq_parse_text_array(PQgetvalue(res, r, 4), &sids, &nids, err);
    if (st != WR_OK) return st;
    if ((st = rq_parse_text_array(PQgetvalue(res, r, 5), &olds, &nolds, err)) != WR_OK) {
        rq_free_strv(sids, nids);
        return st;
    }
    int *ids = xcalloc((size_t)nids + 1, sizeof(int));
    for (int i = 0; i < nids; i++) ids[i] = sids[i] ? atoi(sids[i]) : 0;
    if (nolds != nids)
        st = wr_error_set(err, WR_PROTOCOL, "revision %lld change %s: col_ids and old_values differ in length",
                          (long long)rev, PQgetvalue(res, r, 0));
    else if (op == 'D')
        plan_insert(u, ti, ids, (const char *const *)olds, nids);
    else if (op == 'U')
        st = plan_update(u, ti, ids, (const char *const *)olds, nids, key, err);
    free(ids);
    rq_free_strv(sids, nids);
    rq_free_strv(olds, nolds);
    return st;
}

/* One change of the revision (row r of its deltas, newest first), undone. */
static WrStatus plan_revert_change(UndoPlan *u, const PGresult *res, int r, int64_t rev, WrError *err)
{
    uint32_t relid = (uint32_t)strtoul(PQgetvalue(res, r, 1), NULL, 10);
    char op = PQgetvalue(res, r, 2)[0];
    const char *key = PQgetisnull(res, r, 3) ? NULL : PQgetvalue(res, r, 3);
    if (op == 'S')
        return wr_error_set(err, WR_INVALID, "revision %lld is a baseline snapshot: there is nothing to revert to",
                            (long long)rev);
    if (PQgetvalue(res, r, 6)[0] == 't' && (op == 'U' || op == 'D'))
        return wr_error_set(err, WR_INVALID,
                            "revision %lld change %s of key %s has old values the history does not know "
                            "(hidden or never seen): it cannot be reverted",
                            (long long)rev, PQgetvalue(res, r, 0), key ? key : "");
    int ti = plan_live_table(u, relid, err);
    if (ti < 0) return err->status;
    if (op == 'I') return plan_delete(u, ti, key, err);
    if (op == 'T') return plan_untruncate(u, ti, relid, rev, err);
    return plan_old_values(u, ti, res, r, op, key, rev, err);
}

/*
 * A revision that dropped tables: a drop writes no row change, so reverting
 * the revision's changes would leave the tables dropped, silently. Refused
 * naming the first of them (with --force, each is named on stderr and the
 * rest is reverted).
 */
static WrStatus refuse_drops(ReplayCtx *ctx, int64_t rev, bool force, WrError *err)
{
    PGresult *res = rq_execf(ctx->hist, err,
                             "SELECT quote_ident(e.nspname) || '.' || quote_ident(e.relname) FROM %s.table_event e "
                             "WHERE e.revision_id = %lld AND e.event = 'drop' ORDER BY e.seq",
                             ctx->schema_q, (long long)rev);
    if (!res) return err->status;
    WrStatus st = WR_OK;
    if (PQntuples(res) > 0 && !force)
        st = wr_error_set(err, WR_INVALID,
                          "revision %lld dropped table %s%s: revert cannot create a dropped table again, so its "
                          "rows would stay gone; nothing changed (its rows before: walrev snapshot --at %lld "
                          "--table %s --into SCHEMA; --force reverts the revision's other changes)",
                          (long long)rev, PQgetvalue(res, 0, 0), PQntuples(res) > 1 ? " (and others)" : "",
                          (long long)rev - 1, PQgetvalue(res, 0, 0));
    for (int i = 0; st == WR_OK && i < PQntuples(res); i++)
        fprintf(ctx->err, "not reverted: the drop of table %s in revision %lld\n", PQgetvalue(res, i, 0),
                (long long)rev);
    PQclear(res);
    return st;
}

static WrStatus plan_revert(UndoPlan *u, const UndoArgs *a, WrError *err)
{
    ReplayCtx *ctx = u->ctx;
    Point pt;
    int nconf = 0;
    WrStatus st = rq_resolve_point(ctx, a->pos[0], &pt, err);
    if (st == WR_OK) st = refuse_drops(ctx, pt.rev, a->force, err);
    if (st == WR_OK) st = print_conflicts(ctx, pt.rev, a->force, &nconf, err);
    if (st != WR_OK) return st;
    if (nconf && !a->force)
        return wr_error_set(err, WR_INVALID,
                            "revision %lld has %d conflicting later change%s (listed above): nothing changed; "
                            "use --force to revert anyway",
                            (long long)pt.rev, nconf, nconf == 1 ? "" : "s");
    /* walrev's own table log and erasure log are history, not the application's rows: a revision with
     * DDL holds a table-log row, which a revert must not delete from the source */
    const char *params[1] = {ctx->opts->schema ? ctx->opts->schema : "walrev"};
    PGresult *res = rq_execp(ctx->hist, err, 1, params,
                             "SELECT d.seq, d.relid, d.op, d.key, d.col_ids::text, d.old_values::text, "
                             "d.old_unknown OR EXISTS (SELECT 1 FROM unnest(d.attr_flags) f WHERE f & 3 <> 0) "
                             "FROM %1$s.object_delta_arrays d WHERE d.revision_id = %2$lld "
                             "AND NOT EXISTS (SELECT 1 FROM %1$s.relation_version v WHERE v.relid = d.relid "
                             "AND v.nspname = $1 AND v.relname IN ('table_log', 'erasure_log')) ORDER BY d.seq DESC",
                             ctx->schema_q, (long long)pt.rev);
    if (!res) return err->status;
    st = plan_connect(u, err);
    for (int r = 0; r < PQntuples(res) && st == WR_OK; r++) st = plan_revert_change(u, res, r, pt.rev, err);
    PQclear(res);
    /* Newest change first undoes most revisions (rows a revision inserted
     * parents first go children first), but not a DELETE that cascaded to
     * child rows (the parent's delete comes first in the revision): rows
     * come back parents first, as rollback inserts them; the rest keeps its
     * place. */
    if (st == WR_OK) st = plan_order_by_foreign_keys(u, err);
    if (st == WR_OK) plan_order_inserts(u);
    return st;
}

WrStatus cmd_revert(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    UndoArgs a;
    UndoPlan u;
    WrStatus st = start_undo(ctx, "walrev revert", argc, argv, &u, &a, err);
    if (st == WR_OK && (a.npos != 1 || a.ntables || a.key || a.at || a.to || a.columns))
        st = rq_usage(ctx, err, "usage: walrev revert POINT [--force] [--apply] [--actor TYPE:ID]");
    if (st == WR_OK && (rq_check_point(ctx, "POINT", a.pos[0], err) != WR_OK || rq_open_history(ctx, err) != WR_OK))
        st = err->status;
    if (st == WR_OK) st = plan_revert(&u, &a, err);
    if (st == WR_OK) st = plan_finish(&u, a.actor, a.apply, err);
    plan_term(&u);
    return st;
}

/* ------------------------------------------------------------------ rollback */

/* Does the table (by its newest name in the history) still exist on the source? Says so on stderr if not. */
static bool source_has_table(UndoPlan *u, uint32_t relid)
{
    RelVersion rv;
    bool found;
    WrError e = {0};
    if (rq_relation_at(u->ctx, relid, -1, &rv, &found, &e) != WR_OK || !found) {
        relversion_term(&rv);
        return true; /* let the plan report it */
    }
    char *name = xasprintf("%s.%s", rv.nspname, rv.relname);
    char *nsp = rq_quote_ident(u->src, rv.nspname), *rel = rq_quote_ident(u->src, rv.relname);
    char *qname = xasprintf("%s.%s", nsp, rel);
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

static WrStatus plan_table_rollback(UndoPlan *u, uint32_t relid, int64_t to, int64_t newest, WrError *err)
{
    ReplayCtx *ctx = u->ctx;
    /* count, not EXISTS: for EXISTS the planner may choose a sequential scan that
     * stops at the first truncate, and with none it reads the whole history */
    PGresult *res =
        rq_execf(ctx->hist, err,
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
        if ((ti = plan_live_table(u, relid, err)) < 0) {
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
    UndoPlan u;
    Point to, newest;
    uint32_t *relids = NULL;
    int n = 0;
    WrStatus st = start_undo(ctx, "walrev rollback", argc, argv, &u, &a, err);
    if (st != WR_OK) goto done;
    if (!a.to || a.npos || a.key || a.at || a.force || a.columns) {
        st = rq_usage(ctx, err,
                      "usage: walrev rollback --to POINT [--table T ...] [--apply] "
                      "[--actor TYPE:ID]");
        goto done;
    }
    if ((st = rq_check_point(ctx, "--to", a.to, err)) != WR_OK ||
        (st = rq_check_table_names(ctx, a.tables, a.ntables, err)) != WR_OK ||
        (st = rq_open_history(ctx, err)) != WR_OK)
        goto done;
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
    if ((st = plan_connect(&u, err)) != WR_OK) goto done;
    for (int i = 0; i < n && st == WR_OK; i++) {
        if (!a.ntables && !source_has_table(&u, relids[i])) continue; /* dropped since: nothing to put back into */
        st = plan_table_rollback(&u, relids[i], to.rev, newest.rev, err);
    }
    if (st == WR_OK) st = plan_order_by_foreign_keys(&u, err);
    if (st == WR_OK) {
        plan_sort(&u);
        st = plan_finish(&u, a.actor, a.apply, err);
    }
done:
    free(relids);
    plan_term(&u);
    return st;
}
