/*
 * replay.c — command dispatch for `walrev <replay command>`: opens the
 * history connection (one REPEATABLE READ, READ ONLY transaction, so a
 * command sees one consistent state of the store) and hands it to the
 * command. The helpers the commands share are query.c's; they never call
 * back here. Never touches a slot; the only writes are undo plans run with
 * --apply, on their own connection (undo.c).
 */
#include "replay/replay.h"

#include <getopt.h>
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "pgio/pgio.h"
#include "replay/internal.h"

#include "replay/branch.h"
#include "replay/verify.h"

static const char *const COMMANDS[] = {"verify", "snapshot", "log",    "show",   "history", "blame", "diff",
                                       "restore", "revert",  "rollback", "branch", "merge",  "review"};

bool replay_is_command(const char *cmd)
{
    for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
        if (cmd && strcmp(cmd, COMMANDS[i]) == 0) return true;
    return false;
}

static WrStatus open_history(ReplayCtx *ctx, WrError *err)
{
    WrStatus cst = rq_connect(ctx->hist_conninfo, "history store", &ctx->hist, err);
    if (cst != WR_OK) return cst;
    /*
     * jit off: the planner's cost estimates grow with the store, so on a long
     * history even a bounded range scan crosses jit_above_cost and pays tens
     * of milliseconds of compilation per query for nothing.
     */
    PGresult *res = rq_exec(ctx->hist, err,
                            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL search_path = pg_catalog; "
                            "SET LOCAL jit = off",
                            0, NULL);
    if (!res) return wr_error_prefix(err, "history store");
    PQclear(res);
    char *ns = PQescapeLiteral(ctx->hist, ctx->opts->schema ? ctx->opts->schema : "walrev",
                               strlen(ctx->opts->schema ? ctx->opts->schema : "walrev"));
    res = rq_execf(ctx->hist, err,
                   "SELECT to_regprocedure(quote_ident(%s) || '.snapshot_rows(oid,bigint)') IS NOT NULL", ns);
    PQfreemem(ns);
    if (!res) return err->status;
    bool ok = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!ok)
        return wr_error_set(err, WR_FATAL,
                            "history schema %s has no replay functions: run `walrev setup` (replay.sql)",
                            ctx->schema_q);
    return WR_OK;
}

/*
 * Gap revisions (docs/history-store.md#gaps): transactions the history never
 * saw, reconciled with the tables. Reported, not failed: the chain over them
 * holds and the history is complete again after each.
 */
static WrStatus report_gaps(ReplayCtx *ctx, PGconn *conn, WrError *err)
{
    PGresult *res = rq_execf(conn, err,
                             "SELECT id, coalesce(meta->'gap'->>'from_lsn', '?'), coalesce(meta->'gap'->>'to_lsn', "
                             "commit_lsn::text), coalesce(meta->'gap'->>'kind', '?'), n_insert, n_update, n_delete, "
                             "n_truncate FROM %s.revision WHERE actor_type = 'walrev' AND actor_id = 'gap' ORDER BY id",
                             ctx->schema_q);
    if (!res) return wr_error_prefix(err, "reading the gap revisions");
    for (int i = 0; i < PQntuples(res); i++)
        fprintf(ctx->out,
                "gap: revision %s: changes between %s and %s were not seen (%s); reconciled with the tables: "
                "%s insert(s), %s update(s), %s delete(s), %s truncate(s)\n",
                PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                PQgetvalue(res, i, 4), PQgetvalue(res, i, 5), PQgetvalue(res, i, 6), PQgetvalue(res, i, 7));
    PQclear(res);
    return WR_OK;
}

/* `walrev verify`: history_verify (verify.c) on its own idle connection. */
static WrStatus cmd_verify(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    if (argc > 1) return wr_error_set(err, WR_INVALID, "verify: unexpected argument %s", argv[1]);
    PGconn *conn;
    WrStatus cst = rq_connect(ctx->hist_conninfo, "history store", &conn, err);
    if (cst != WR_OK) return cst;
    int64_t checked = 0, first_bad = 0;
    char why[512] = "";
    WrStatus st = history_verify(conn, ctx->opts->schema ? ctx->opts->schema : "walrev", &checked, &first_bad, why,
                                 sizeof(why), err);
    if (st == WR_OK) st = report_gaps(ctx, conn, err);
    PQfinish(conn);
    if (st != WR_OK) return st;
    if (first_bad != 0)
        return wr_error_set(err, WR_FATAL, "history does not verify at revision %lld: %s (%lld revisions verified before it)",
                            (long long)first_bad, why, (long long)checked);
    fprintf(ctx->out, "verified %lld revisions: the checksum chain holds, and the contexts, actors, keyframes and baseline records agree with it\n", (long long)checked);
    return WR_OK;
}

int replay_run(const char *cmd, int argc, char **argv, const ReplayOptions *opts, FILE *out, FILE *err_f)
{
    ReplayCtx ctx = {0};
    WrError err = {0};
    ctx.opts = opts;
    ctx.cmd = cmd;
    ctx.out = out;
    ctx.err = err_f;
    ctx.source_conninfo = opts->source_conninfo;
    ctx.hist_conninfo = opts->history_conninfo ? opts->history_conninfo : opts->source_conninfo;
    const char *schema = opts->schema ? opts->schema : "walrev";
    WrStatus st = WR_OK;

    if (!replay_is_command(cmd)) {
        fprintf(err_f, "walrev: unknown command %s\n", cmd ? cmd : "(none)");
        return 1;
    }
    if (!ctx.hist_conninfo) {
        fprintf(err_f, "walrev %s: no history database: give --history or --source\n", cmd);
        return 1;
    }
    {
        /* quote the schema like quote_ident, without a connection */
        bool plain = schema[0] != '\0' && !(schema[0] >= '0' && schema[0] <= '9');
        for (const char *p = schema; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) plain = false;
        StrBuf q;
        strbuf_init(&q);
        if (!plain) strbuf_append_char(&q, '"');
        for (const char *p = schema; *p; p++) {
            if (*p == '"') strbuf_append_char(&q, '"');
            strbuf_append_char(&q, *p);
        }
        if (!plain) strbuf_append_char(&q, '"');
        ctx.schema_q = q.data;
    }
    if (strcmp(cmd, "verify") == 0)
        st = cmd_verify(&ctx, argc, argv, &err); /* needs an idle connection of its own */
    else
        st = open_history(&ctx, &err);
    if (st == WR_OK && strcmp(cmd, "verify") != 0) {
        if (strcmp(cmd, "snapshot") == 0) st = cmd_snapshot(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "log") == 0) st = cmd_log(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "show") == 0) st = cmd_show(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "history") == 0) st = cmd_history(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "blame") == 0) st = cmd_blame(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "diff") == 0) st = cmd_diff(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "restore") == 0) st = cmd_restore(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "revert") == 0) st = cmd_revert(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "rollback") == 0) st = cmd_rollback(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "branch") == 0) st = cmd_branch(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "merge") == 0) st = cmd_merge(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "review") == 0) st = cmd_review(&ctx, argc, argv, &err);
    }
    fflush(out);
    if (st != WR_OK) fprintf(err_f, "walrev %s: error: %s\n", cmd, err.msg);
    if (ctx.hist) PQfinish(ctx.hist);
    free(ctx.schema_q);
    return st == WR_OK ? 0 : 1;
}

int replay_command(const char *cmd, int argc, char **argv, const ReplayOptions *opts)
{
    return replay_run(cmd, argc, argv, opts, stdout, stderr);
}
