/*
 * erase.c — `walrev erase` (GDPR erasure that keeps the checksum chain,
 * docs/cli.md#walrev-erase). Without --apply it counts, on the history
 * store, the values it would erase and changes nothing. With --apply it
 * inserts the request into the source's <schema>.erasure_log (writable by
 * walrev's role only) in a transaction whose walrev.context() names the
 * actor and the reason; the worker records that row as the erase revision
 * and, in the same history transaction, erases the values from every delta
 * before it and every keyframe row (erase_apply in schema/sql/history.sql),
 * keeping each value's keyed chain hash. The command then waits for that.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cli.h"
#include "replay/internal.h"

enum { E_TABLE = 1, E_KEY, E_COLUMNS, E_REASON, E_ACTOR, E_APPLY, E_WAIT };

const struct option rq_erase_options[] = {
    {"table", required_argument, NULL, E_TABLE},     {"key", required_argument, NULL, E_KEY},
    {"columns", required_argument, NULL, E_COLUMNS}, {"reason", required_argument, NULL, E_REASON},
    {"actor", required_argument, NULL, E_ACTOR},     {"apply", no_argument, NULL, E_APPLY},
    {"wait", required_argument, NULL, E_WAIT},       {NULL, 0, NULL, 0}};

typedef struct {
    const char *table, *key, *columns, *reason, *actor;
    bool apply, wait_given;
    int wait_s;
} EraseArgs;

static WrStatus parse(ReplayCtx *ctx, int argc, char **argv, EraseArgs *a, WrError *err)
{
    memset(a, 0, sizeof(*a));
    a->wait_s = 60;
    const CliField fields[] = {CLI_STRING(E_TABLE, &a->table),     CLI_STRING(E_KEY, &a->key),
                               CLI_STRING(E_COLUMNS, &a->columns), CLI_STRING(E_REASON, &a->reason),
                               CLI_STRING(E_ACTOR, &a->actor),     CLI_FLAG(E_APPLY, &a->apply)};
    cli_start();
    int c;
    while ((c = cli_next(argc, argv, rq_erase_options, fields, CLI_NFIELDS(fields))) != -1) {
        if (c != E_WAIT) return rq_bad_option(ctx, argc, argv, err);
        char *end = NULL;
        long w = strtol(optarg, &end, 10);
        if (!end || *end || w < 0 || w > 86400)
            return rq_usage(ctx, err, "--wait takes seconds (0-86400), not %s", optarg);
        a->wait_s = (int)w;
        a->wait_given = true;
    }
    if (optind < argc) return rq_usage(ctx, err, "erase: unexpected argument %s", argv[optind]);
    if (!a->table || !a->key) return rq_usage(ctx, err, "erase needs --table T and --key K");
    if (!a->reason || !a->reason[0]) return rq_usage(ctx, err, "--reason is required (why: it is recorded)");
    /* as prune's --export: an option that only means something with --apply is not ignored */
    if (a->wait_given && !a->apply) return rq_usage(ctx, err, "--wait waits for the worker to erase: it needs --apply");
    if (rq_check_actor(ctx, a->actor, err) != WR_OK || rq_check_table_name(ctx, a->table, err) != WR_OK ||
        rq_check_key(ctx, a->key, err) != WR_OK)
        return err->status;
    return WR_OK;
}

/* The columns to erase: --columns by name (any version's), else every column that is not part of the key. */
static WrStatus resolve_columns(ReplayCtx *ctx, const char *rel, const char *table, const char *columns, char **ids_out,
                                char **names_out, WrError *err)
{
    const char *p[2] = {rel, columns};
    /* Each column's newest name and whether it is a key column in the newest version that has it. */
    PGresult *res = rq_execp(
        ctx->hist, err, 2, p,
        "WITH c AS (SELECT DISTINCT ON (u.id) u.id, u.name, u.is_key FROM %1$s.relation_version rv, "
        "  unnest(rv.col_ids, rv.col_names, rv.col_is_key) AS u(id, name, is_key) "
        "  WHERE rv.relid = $1::oid ORDER BY u.id, rv.version DESC), "
        "w AS (SELECT btrim(x) AS name, o FROM unnest(string_to_array($2, ',')) WITH ORDINALITY AS t(x, o)) "
        "SELECT w.name, (SELECT c.id FROM c WHERE c.name = w.name), (SELECT c.is_key FROM c WHERE c.name = w.name) "
        "FROM w WHERE $2 IS NOT NULL "
        "UNION ALL SELECT c.name, c.id, c.is_key FROM c WHERE $2 IS NULL AND NOT c.is_key "
        "ORDER BY 2",
        ctx->schema_q);
    if (!res) return err->status;
    StrBuf ids, names;
    strbuf_init(&ids);
    strbuf_init(&names);
    WrStatus st = WR_OK;
    for (int i = 0; i < PQntuples(res) && st == WR_OK; i++) {
        const char *name = PQgetvalue(res, i, 0);
        if (PQgetisnull(res, i, 1))
            st = wr_error_set(err, WR_INVALID, "table %s never had a column %s", table, name);
        else if (PQgetvalue(res, i, 2)[0] == 't')
            st = wr_error_set(err, WR_INVALID,
                              "%s is part of the key, which identifies the object; it cannot be erased", name);
        strbuf_appendf(&ids, "%s%s", i ? "," : "{", PQgetvalue(res, i, 1));
        strbuf_append_str(&names, i ? "," : "{");
        strbuf_append_char(&names, '"');
        for (const char *q = name; *q; q++) {
            if (*q == '"' || *q == '\\') strbuf_append_char(&names, '\\');
            strbuf_append_char(&names, *q);
        }
        strbuf_append_char(&names, '"');
    }
    if (st == WR_OK && PQntuples(res) == 0) st = wr_error_set(err, WR_INVALID, "no column to erase");
    PQclear(res);
    strbuf_append_char(&ids, '}');
    strbuf_append_char(&names, '}');
    if (st != WR_OK) {
        strbuf_free(&ids);
        strbuf_free(&names);
        return st;
    }
    *ids_out = ids.data;
    *names_out = names.data;
    return WR_OK;
}

/* Print erase_apply's counts (dry run, or what the worker erased). */
static void print_counts(ReplayCtx *ctx, const PGresult *res, const char *verb)
{
    long long total = 0, kf = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        total += atoll(PQgetvalue(res, i, 3));
        kf += atoll(PQgetvalue(res, i, 4));
    }
    fprintf(ctx->out, "%s %lld value(s) in deltas and %lld in keyframes:\n", verb, total, kf);
    for (int i = 0; i < PQntuples(res); i++)
        fprintf(ctx->out, "  %s.%s: %s value(s) in %s delta(s), %s in keyframes\n", PQgetvalue(res, i, 0),
                PQgetvalue(res, i, 1), PQgetvalue(res, i, 3), PQgetvalue(res, i, 2), PQgetvalue(res, i, 4));
}

/* Insert the request on the source: the worker records and applies it. Returns the erasure_log id. */
static WrStatus request(ReplayCtx *ctx, const EraseArgs *a, const char *rel, const char *nsp, const char *relname,
                        const char *key, const char *ids, const char *names, char **id_out, WrError *err)
{
    PGconn *src = NULL;
    /* the source: --source, else the history's database (libpq's defaults when neither is given) */
    const char *ci = ctx->source_conninfo ? ctx->source_conninfo : ctx->hist_conninfo;
    WrStatus st = rq_connect(ci, "source", &src, err);
    if (st != WR_OK) return st;
    const char *schema = ctx->opts->schema ? ctx->opts->schema : "walrev";
    char *qs = rq_quote_ident(src, schema);
    char *sql = NULL;
    char *regname = xasprintf("%s.erasure_log", qs);
    const char *rp[1] = {regname};
    PGresult *res = rq_exec(src, err, "SELECT to_regclass($1::text) IS NOT NULL", 1, rp);
    free(regname);
    if (!res) {
        st = err->status;
        goto out;
    }
    bool has = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!has) {
        st = wr_error_set(err, WR_FATAL,
                          "erase --apply: the source has no %s.erasure_log: run `walrev setup` (as a superuser) first",
                          qs);
        goto out;
    }
    st = rq_run(src, err, "BEGIN", 0, NULL);
    if (st != WR_OK) goto out;
    char *desc = xasprintf("erase: %s", a->reason);
    sql = rq_context_sql(ctx, src, a->actor, desc, NULL);
    free(desc);
    st = rq_run(src, err, sql, 0, NULL);
    free(sql);
    if (st != WR_OK) goto out;
    sql = xasprintf("INSERT INTO %s.erasure_log (relid, nspname, relname, key, col_ids, col_names, reason) "
                    "VALUES ($1::oid, $2, $3, $4, $5::smallint[], $6::text[], $7) RETURNING id",
                    qs);
    const char *ip[7] = {rel, nsp, relname, key, ids, names, a->reason};
    res = rq_exec(src, err, sql, 7, ip);
    free(sql);
    if (!res) {
        st = err->status;
        goto out;
    }
    *id_out = xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    st = rq_run(src, err, "COMMIT", 0, NULL);
out:
    free(qs);
    PQfinish(src);
    return st;
}

WrStatus cmd_erase(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    EraseArgs a;
    if (parse(ctx, argc, argv, &a, err) != WR_OK || rq_open_history(ctx, err) != WR_OK) return err->status;
    uint32_t relid;
    char *key = NULL, *ids = NULL, *names = NULL, *req = NULL, *nsp = NULL, *relname = NULL;
    PGresult *res = NULL;
    PGconn *poll = NULL;
    WrStatus st = rq_resolve_table(ctx, a.table, &relid, err);
    if (st == WR_OK) st = rq_parse_key_arg(ctx, a.key, &key, err);
    if (st != WR_OK) goto out;
    char rel[16];
    rq_oid_text(relid, rel);
    /* The table's newest name and the history's newest revision; the object must have a history. */
    const char *p2[2] = {rel, key};
    char *sql = xasprintf(
        "SELECT (SELECT nspname FROM %1$s.relation_version WHERE relid = $1::oid ORDER BY version DESC LIMIT 1), "
        "(SELECT relname FROM %1$s.relation_version WHERE relid = $1::oid ORDER BY version DESC LIMIT 1), "
        "(SELECT count(*) FROM %1$s.object_delta WHERE relid = $1::oid AND key = $2), "
        "(SELECT coalesce(max(id), 0) + 1 FROM %1$s.revision)",
        ctx->schema_q);
    res = rq_exec(ctx->hist, err, sql, 2, p2);
    free(sql);
    if (!res) {
        st = err->status;
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 2), "0") == 0) {
        st = wr_error_set(err, WR_INVALID, "the history has no object %s in table %s", key, a.table);
        goto out;
    }
    nsp = xstrdup(PQgetvalue(res, 0, 0));
    relname = xstrdup(PQgetvalue(res, 0, 1));
    char next[24];
    snprintf(next, sizeof(next), "%s", PQgetvalue(res, 0, 3));
    PQclear(res);
    res = NULL;
    st = resolve_columns(ctx, rel, a.table, a.columns, &ids, &names, err);
    if (st != WR_OK) goto out;
    /* What it would erase now: erase_apply counting only (nothing written but its temporary table). */
    sql = xasprintf("SELECT $5::text || '.' || $6::text, coalesce(n.name, e.col_id::text), e.deltas, e.delta_values, "
                    "e.keyframe_values "
                    "FROM %1$s.erase_apply($1::oid, $2, $3::smallint[], $4::bigint, false) e "
                    "LEFT JOIN LATERAL (SELECT u.name FROM %1$s.relation_version rv, "
                    "  unnest(rv.col_ids, rv.col_names) AS u(id, name) WHERE rv.relid = $1::oid AND u.id = e.col_id "
                    "  ORDER BY rv.version DESC LIMIT 1) n ON true ORDER BY e.col_id",
                    ctx->schema_q);
    const char *p6[6] = {rel, key, ids, next, nsp, relname};
    res = rq_exec(ctx->hist, err, sql, 6, p6);
    free(sql);
    if (!res) {
        st = err->status;
        goto out;
    }
    fprintf(ctx->out, "object %s of %s.%s, columns %s\n", key, nsp, relname, names);
    if (!a.apply) {
        print_counts(ctx, res, "would erase");
        fprintf(ctx->out, "nothing changed (dry run): add --apply to erase\n");
        goto out;
    }
    PQclear(res);
    res = NULL;
    st = request(ctx, &a, rel, nsp, relname, key, ids, names, &req, err);
    if (st != WR_OK) goto out;
    fprintf(ctx->out, "erasure requested: %s.erasure_log id %s on the source\n",
            ctx->opts->schema ? ctx->opts->schema : "walrev", req);
    /* Wait for the worker to record it (the erase revision) and erase, in one history transaction. */
    st = rq_connect(ctx->hist_conninfo, "history store", &poll, err);
    if (st != WR_OK) goto out;
    sql = xasprintf("SELECT e.revision_id, e.n_values, e.n_keyframe_values FROM %1$s.erasure e "
                    "WHERE e.relid = $1::oid AND e.key = $2 AND e.revision_id >= $3::bigint "
                    "ORDER BY e.revision_id LIMIT 1",
                    ctx->schema_q);
    const char *p3[3] = {rel, key, next};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        res = rq_exec(poll, err, sql, 3, p3);
        if (!res) {
            st = err->status;
            break;
        }
        if (PQntuples(res) == 1) {
            fprintf(ctx->out, "erased %s value(s) in deltas and %s in keyframes; erase revision %s\n",
                    PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 0));
            break;
        }
        PQclear(res);
        res = NULL;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= a.wait_s) {
            fprintf(ctx->out,
                    "the worker has not recorded it yet (waited %d s): the values are erased when `walrev run` "
                    "records the request\n",
                    a.wait_s);
            break;
        }
        struct timespec d = {0, 200 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    free(sql);
out:
    free(nsp);
    free(relname);
    PQclear(res);
    if (poll) PQfinish(poll);
    free(key);
    free(ids);
    free(names);
    free(req);
    return st;
}
