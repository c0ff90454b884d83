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
#include "replay/verify_reads.h"
#include "schema/store_sql.h"

static const char *const COMMANDS[] = {"verify", "snapshot", "log",    "show",  "history", "blame", "diff",  "restore",
                                       "revert", "rollback", "branch", "merge", "review",  "erase", "prune", "compact"};

bool replay_is_command(const char *cmd)
{
    for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
        if (cmd && strcmp(cmd, COMMANDS[i]) == 0) return true;
    return false;
}

/* verify's own options; --against-source and the two after it are read by
 * baseline/reconcile.c, which the CLI calls instead of this module. */
static const struct option VERIFY_OPTS[] = {{"against-source", no_argument, NULL, 'a'},
                                            {"table", required_argument, NULL, 't'},
                                            {"wait", required_argument, NULL, 'w'},
                                            {NULL, 0, NULL, 0}};

static const struct option NO_OPTS[] = {{NULL, 0, NULL, 0}};

const struct option *replay_command_options(const char *cmd)
{
    if (!replay_is_command(cmd)) return NULL;
    if (strcmp(cmd, "verify") == 0) return VERIFY_OPTS;
    if (strcmp(cmd, "snapshot") == 0) return rq_snapshot_options;
    if (strcmp(cmd, "restore") == 0 || strcmp(cmd, "revert") == 0 || strcmp(cmd, "rollback") == 0)
        return rq_undo_options;
    if (strcmp(cmd, "branch") == 0) return rq_branch_options;
    if (strcmp(cmd, "merge") == 0) return rq_merge_options;
    if (strcmp(cmd, "review") == 0) return rq_review_options;
    if (strcmp(cmd, "erase") == 0) return rq_erase_options;
    if (strcmp(cmd, "prune") == 0) return rq_prune_options;
    if (strcmp(cmd, "compact") == 0) return NO_OPTS;
    return rq_audit_options;
}

#define POINT_HELP                                                                    \
    "A POINT is a revision id (41), an LSN (0/1A2B3C8), a timestamp with time zone\n" \
    "('2026-11-23 10:00:00+00') or xid:N (the revision of transaction N).\n"
#define FORMAT_HELP                                         \
    "  --format F         aligned (default), csv or json\n" \
    "  --null TEXT        how aligned output shows NULL (default: empty, as psql)\n"

/* The text of `walrev CMD --help`; docs/cli.md holds each verbatim (test_cli_help.sh). */
static const char *const HELP[][2] = {
    {"verify", "usage: walrev [global options] verify\n"
               "       walrev [global options] verify --against-source [--table T]... [--wait SECONDS]\n\n"
               "Recompute the checksum chain and check contexts, actors and keyframes against it;\n"
               "name the first revision that does not match.\n\n"
               "  --against-source   compare the history with the live tables at one point, by chunked\n"
               "                     hashes; name every differing key (exit 1 when any differs)\n"
               "  --table T          with --against-source: only table T (repeatable)\n"
               "  --wait SECONDS     with --against-source: how long to wait for the worker to pass\n"
               "                     the comparison point (default 60)\n"},
    {"snapshot",
     "usage: walrev [global options] snapshot [--at POINT] [--table T]... [--format F] [--order key]\n"
     "                [--null TEXT] [--into SCHEMA [--target CONNINFO]] [--output-dir DIR] [--memory MIB]\n\n"
     "Tables as they were at POINT (default: the newest revision).\n\n"
     "  --at POINT         the point in history\n"
     "  --table T          a table (repeatable; default every tracked table)\n"
     "  --format F         text (COPY text, default), csv (with a header), json (one\n"
     "                     object per line), aligned (a table, as log prints) or sql\n"
     "  --order key        rows sorted by their key (a keyless table's: by every column)\n"
     "  --null TEXT        how aligned output shows NULL (default: empty, as psql)\n"
     "  --into SCHEMA      create SCHEMA.<table> on --target and load the rows there\n"
     "  --target CONNINFO  the database for --into (default: the source)\n"
     "  --output-dir DIR   one file per table in DIR\n"
     "  --memory MIB       memory for rows changed since the keyframe (default 256)\n\n" POINT_HELP},
    {"log", "usage: walrev [global options] log [--actor TYPE:ID] [--table T [--key K]] [--since POINT]\n"
            "                [--until POINT] [--limit N] [--format F]\n\n"
            "Revisions, newest first.\n\n"
            "  --actor TYPE:ID    only revisions with this actor\n"
            "  --table T          only revisions that changed table T (its rows, or the table\n"
            "                     itself: created, altered, dropped)\n"
            "  --key K            with --table: only revisions that changed row K\n"
            "  --since POINT      revisions after POINT\n"
            "  --until POINT      revisions up to and including POINT\n"
            "  --limit N          at most N revisions\n" FORMAT_HELP "\n" POINT_HELP},
    {"show", "usage: walrev [global options] show POINT [--format F]\n\n"
             "One revision: its header and every attribute change.\n\n" FORMAT_HELP "\n" POINT_HELP},
    {"history", "usage: walrev [global options] history --table T --key K [--since POINT] [--until POINT]\n"
                "                [--limit N] [--format F]\n\n"
                "The changes of one row, oldest first.\n\n"
                "  --table T          the table\n"
                "  --key K            the row's key: a value, a JSON array, or #REV.SEQ for a keyless row\n"
                "  --since POINT      changes after POINT\n"
                "  --until POINT      changes up to and including POINT\n"
                "  --limit N          at most N changes\n" FORMAT_HELP "\n" POINT_HELP},
    {"blame", "usage: walrev [global options] blame --table T --key K [--at POINT] [--format F]\n\n"
              "Who last changed each column of a row.\n\n"
              "  --table T          the table\n"
              "  --key K            the row's key\n"
              "  --at POINT         as of POINT (default: the newest revision)\n" FORMAT_HELP "\n" POINT_HELP},
    {"diff", "usage: walrev [global options] diff POINT1 POINT2 [--table T]... [--format F]\n\n"
             "What changed between two points, netted per row.\n\n"
             "  --table T          only table T (repeatable)\n" FORMAT_HELP "\n" POINT_HELP},
    {"restore", "usage: walrev [global options] restore --table T --key K --at POINT [--columns a,b]\n"
                "                [--apply] [--actor TYPE:ID]\n\n"
                "Put a row back as it was at POINT. Prints the plan; --apply runs it.\n\n"
                "  --table T          the table\n"
                "  --key K            the row's key\n"
                "  --at POINT         the state to restore\n"
                "  --columns a,b      only these columns\n"
                "  --apply            run the plan in one transaction on the source\n"
                "  --actor TYPE:ID    the actor of the undo (default cli:$USER)\n\n" POINT_HELP},
    {"revert", "usage: walrev [global options] revert POINT [--force] [--apply] [--actor TYPE:ID]\n\n"
               "Undo one revision. Prints the plan; --apply runs it.\n\n"
               "  --force            undo even rows changed again since\n"
               "  --apply            run the plan in one transaction on the source\n"
               "  --actor TYPE:ID    the actor of the undo (default cli:$USER)\n\n" POINT_HELP},
    {"rollback", "usage: walrev [global options] rollback --to POINT [--table T]... [--apply] [--actor TYPE:ID]\n\n"
                 "Undo every revision after POINT. Prints the plan; --apply runs it.\n\n"
                 "  --to POINT         the state to return to\n"
                 "  --table T          only table T (repeatable)\n"
                 "  --apply            run the plan in one transaction on the source\n"
                 "  --actor TYPE:ID    the actor of the undo (default cli:$USER)\n\n" POINT_HELP},
    {"branch", "usage: walrev [global options] branch create NAME [--at POINT] [--table T]... [--actor TYPE:ID]\n"
               "       walrev [global options] branch list [--format F] [--null TEXT]\n"
               "       walrev [global options] branch drop NAME [--actor TYPE:ID]\n\n"
               "A writable copy of the tracked tables as of POINT in schema branch_NAME, captured\n"
               "like any table; its diff and merge are `walrev diff main..NAME` and `walrev merge`.\n\n"
               "  --at POINT         fork point (default: the newest revision)\n"
               "  --table T          only table T (repeatable; default every tracked table)\n"
               "  --actor TYPE:ID    who creates or drops it (recorded on its revision)\n" FORMAT_HELP "\n" POINT_HELP},
    {"merge", "usage: walrev [global options] merge NAME [--resolve FILE] [--format F] [--apply --actor TYPE:ID]\n\n"
              "Three-way merge of branch NAME into main (base: the history at the fork point).\n"
              "Prints the conflicts and the plan as SQL; --apply runs it as one revision.\n\n"
              "  --resolve FILE     JSON: per table, row or cell ours, theirs or {\"value\": V}\n"
              "  --apply            apply the plan in one transaction on the source\n"
              "  --actor TYPE:ID    the merger (needed with --apply)\n" FORMAT_HELP},
    {"review", "usage: walrev [global options] review NAME [--format markdown|json]\n"
               "       walrev [global options] review NAME --approve --actor TYPE:ID [--comment TEXT]\n\n"
               "Branch NAME as a change request: what it changes, who changed what, conflicts,\n"
               "approvals; --approve records an approval ([branches] required_approvals).\n\n"
               "  --format F         markdown (default) or json\n"
               "  --approve          record an approval of the branch's newest revision\n"
               "  --actor TYPE:ID    the approver\n"
               "  --comment TEXT     a note with the approval\n"},
    {"erase", "usage: walrev [global options] erase --table T --key K --reason TEXT [--columns a,b]\n"
              "                [--actor TYPE:ID] [--apply [--wait SECONDS]]\n\n"
              "Erase one row's values from the history (GDPR), keeping the checksum chain.\n"
              "Prints what it would erase; --apply asks the worker to erase it.\n\n"
              "  --table T          the table\n"
              "  --key K            the row's key: a value, a JSON array, or #REV.SEQ for a keyless row\n"
              "  --reason TEXT      why (required; recorded in the erase revision)\n"
              "  --columns a,b      only these columns (default every column not in the key)\n"
              "  --actor TYPE:ID    who asks (default cli:$USER)\n"
              "  --apply            write the request to the source's erasure_log\n"
              "  --wait SECONDS     with --apply: how long to wait for the worker (default 60; 0: no wait)\n"},
    {"prune", "usage: walrev [global options] prune --before POINT [--apply [--export DIR]]\n"
              "       walrev [global options] prune --import DIR\n\n"
              "Drop the history before POINT by whole partitions of the store (retention). The cut\n"
              "is rounded down to a partition boundary ([history] partition_revisions). Prints\n"
              "what it would drop; --apply first writes a keyframe of every table at the cut and\n"
              "the chain anchor, then drops the partitions. Points before the cut are refused after.\n\n"
              "  --before POINT     drop revisions before POINT (POINT itself is kept)\n"
              "  --apply            drop them (without: print the plan, change nothing)\n"
              "  --export DIR       with --apply: first write the dropped range to DIR (CSV per table\n"
              "                     and partition, manifest.json with SHA-256 of each file)\n"
              "  --import DIR       load an export back (the store must be pruned where it ends)\n\n" POINT_HELP},
    {"compact", "usage: walrev [global options] compact\n\n"
                "Rebuild the B-tree indexes of the history partitions no longer written (every\n"
                "revision of their range is in the store) at fillfactor 100, one at a time, with\n"
                "REINDEX CONCURRENTLY: what they hold is the same, in fewer bytes. An index rebuilt\n"
                "once is not rebuilt again. [history] compact_interval does it from walrev run.\n"},
};

void replay_print_help(const char *cmd, FILE *out)
{
    for (size_t i = 0; i < sizeof(HELP) / sizeof(HELP[0]); i++)
        if (cmd && strcmp(cmd, HELP[i][0]) == 0) fputs(HELP[i][1], out);
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

/*
 * Quarantined revisions (docs/history-store.md#quarantine): stored whole as
 * raw msgpack because the store refused them twice. Reported, not failed:
 * nothing is lost and the chain links through them, but replay does not see
 * their changes until an operator restores them.
 */
static WrStatus report_quarantine(ReplayCtx *ctx, PGconn *conn, WrError *err)
{
    char *ns = PQescapeLiteral(conn, ctx->opts->schema ? ctx->opts->schema : "walrev",
                               strlen(ctx->opts->schema ? ctx->opts->schema : "walrev"));
    PGresult *res = rq_execf(conn, err, "SELECT to_regclass(quote_ident(%s) || '.quarantine') IS NOT NULL", ns);
    PQfreemem(ns);
    if (!res) return wr_error_prefix(err, "reading the quarantined revisions");
    bool has = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!has) return WR_OK;
    res = rq_execf(conn, err,
                   "SELECT q.revision_id, q.xid, q.commit_lsn, octet_length(q.raw), coalesce(q.sqlstate, '?'), "
                   "replace(q.error, E'\\n', ' ') FROM %s.quarantine q ORDER BY q.revision_id",
                   ctx->schema_q);
    if (!res) return wr_error_prefix(err, "reading the quarantined revisions");
    for (int i = 0; i < PQntuples(res); i++)
        fprintf(ctx->out,
                "quarantined: revision %s (xid %s, commit %s): the history store refused it twice (SQLSTATE %s: %s); "
                "kept whole as %s bytes of msgpack in %s.quarantine, its changes not in the tables\n",
                PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 4),
                PQgetvalue(res, i, 5), PQgetvalue(res, i, 3), ctx->schema_q);
    PQclear(res);
    return WR_OK;
}

/*
 * A pruned history (walrev prune, docs/history-store.md#retention): the
 * chain is proven from the cut on, starting from the anchor.
 */
static WrStatus report_prune_anchor(ReplayCtx *ctx, PGconn *conn, WrError *err)
{
    int64_t before = 0;
    uint8_t anchor[32];
    char on[16];
    WrStatus st = verify_prune_anchor(conn, ctx->schema_q, &before, anchor, on, sizeof(on), err);
    if (st != WR_OK || before == 0) return st;
    fprintf(ctx->out,
            "anchor: history before revision %lld was pruned on %s; the chain is verified from revision %lld on, "
            "starting from the anchor %02x%02x%02x%02x%02x%02x%02x%02x… (the checksum of revision %lld)\n",
            (long long)before, on, (long long)before, anchor[0], anchor[1], anchor[2], anchor[3], anchor[4], anchor[5],
            anchor[6], anchor[7], (long long)before - 1);
    return WR_OK;
}

/*
 * Row digests of keyless identities ('#R.S') the history has deleted
 * (docs/history-store.md#rows-without-a-key): a store written before
 * dbe94a5 kept them when a rekey deleted the identities under a keyed
 * version, and a table keyless again then matched a change's old row to the
 * dead identity (the snapshot kept a deleted row). The chain does not cover
 * row_digest, so only this finds them: each table named with how many and
 * the first, *stale their number. An identity is never used again once
 * deleted, so any digest left for one whose delete the store holds is stale.
 */
static WrStatus report_stale_digests(ReplayCtx *ctx, PGconn *conn, int64_t *stale, WrError *err)
{
    *stale = 0;
    PGresult *res = rq_execf(
        conn, err,
        "SELECT coalesce((SELECT format('%%I.%%I', v.nspname, v.relname) FROM %1$s.relation_version v "
        "WHERE v.relid = g.relid ORDER BY v.version DESC LIMIT 1), g.relid::text), count(DISTINCT g.key), min(g.key) "
        "FROM %1$s.row_digest g WHERE g.key LIKE '#%%' AND EXISTS (SELECT 1 FROM %1$s.object_delta d "
        "WHERE d.relid = g.relid AND d.key = g.key AND d.op = 'D') GROUP BY g.relid ORDER BY 1",
        ctx->schema_q);
    if (!res) return wr_error_prefix(err, "reading the row digests of deleted keyless identities");
    for (int i = 0; i < PQntuples(res); i++) {
        fprintf(ctx->out,
                "stale digests: table %s: %s deleted keyless identities (first %s) keep a row digest in "
                "%s.row_digest: a later UPDATE or DELETE of a row without a key can be matched to a deleted row\n",
                PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), ctx->schema_q);
        *stale += strtoll(PQgetvalue(res, i, 1), NULL, 10);
    }
    PQclear(res);
    return WR_OK;
}

/* `walrev verify`: history_verify (verify.c) on its own idle connection. */
static WrStatus cmd_verify(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    if (argc > 1) return rq_usage(ctx, err, "verify: unexpected argument %s", argv[1]);
    PGconn *conn;
    WrStatus cst = rq_connect(ctx->hist_conninfo, "history store", &conn, err);
    if (cst != WR_OK) return cst;
    int64_t checked = 0, first_bad = 0, stale = 0;
    char why[512] = "";
    WrStatus st = history_verify(conn, ctx->opts->schema ? ctx->opts->schema : "walrev", &checked, &first_bad, why,
                                 sizeof(why), err);
    if (st == WR_OK) st = report_gaps(ctx, conn, err);
    if (st == WR_OK) st = report_quarantine(ctx, conn, err);
    if (st == WR_OK) st = report_prune_anchor(ctx, conn, err);
    if (st == WR_OK) st = report_stale_digests(ctx, conn, &stale, err);
    PQfinish(conn);
    if (st != WR_OK) return st;
    if (first_bad != 0)
        return wr_error_set(err, WR_FATAL,
                            "history does not verify at revision %lld: %s (%lld revisions verified before it)",
                            (long long)first_bad, why, (long long)checked);
    if (stale != 0)
        return wr_error_set(err, WR_FATAL,
                            "history does not verify: %lld row digest(s) of deleted keyless identities are left "
                            "(a store written before dbe94a5); `walrev setup` removes them (%lld revisions verified)",
                            (long long)stale, (long long)checked);
    fprintf(ctx->out,
            "verified %lld revisions: the checksum chain holds, and the contexts, actors, keyframes and baseline "
            "records agree with it\n",
            (long long)checked);
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
        return 2;
    }
    if (!ctx.hist_conninfo) ctx.hist_conninfo = ""; /* libpq's defaults: PGHOST, PGSERVICE, ... */
    ctx.schema_q = store_quote_ident(schema);       /* the one quoter: keywords too (--schema order) */
    /* each command checks its arguments, then opens the history (rq_open_history):
     * a usage error is exit 2 with the store down too */
    if (strcmp(cmd, "verify") == 0)
        st = cmd_verify(&ctx, argc, argv, &err); /* needs an idle connection of its own */
    else {
        if (strcmp(cmd, "snapshot") == 0)
            st = cmd_snapshot(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "log") == 0)
            st = cmd_log(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "show") == 0)
            st = cmd_show(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "history") == 0)
            st = cmd_history(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "blame") == 0)
            st = cmd_blame(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "diff") == 0)
            st = cmd_diff(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "restore") == 0)
            st = cmd_restore(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "revert") == 0)
            st = cmd_revert(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "rollback") == 0)
            st = cmd_rollback(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "branch") == 0)
            st = cmd_branch(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "merge") == 0)
            st = cmd_merge(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "review") == 0)
            st = cmd_review(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "erase") == 0)
            st = cmd_erase(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "prune") == 0)
            st = cmd_prune(&ctx, argc, argv, &err);
        else if (strcmp(cmd, "compact") == 0)
            st = cmd_compact(&ctx, argc, argv, &err); /* REINDEX CONCURRENTLY: an idle connection of its own */
    }
    fflush(out);
    if (st != WR_OK) fprintf(err_f, "walrev %s: error: %s\n", cmd, err.msg);
    if (ctx.hist) PQfinish(ctx.hist);
    free(ctx.schema_q);
    return st == WR_OK ? 0 : ctx.usage ? 2 : 1;
}

int replay_command(const char *cmd, int argc, char **argv, const ReplayOptions *opts)
{
    return replay_run(cmd, argc, argv, opts, stdout, stderr);
}
