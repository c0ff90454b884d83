/*
 * audit.c — `walrev log`, `show`, `history`, `blame` and `diff`: thin
 * queries over the SQL views and functions of replay.sql, so the CLI and a
 * psql user get the same answers. Read-only; every query runs inside the
 * command's one snapshot of the history store.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "replay/branch.h"
#include "replay/internal.h"

enum { OPT_FORMAT = 1000, OPT_ACTOR, OPT_TABLE, OPT_KEY, OPT_SINCE, OPT_UNTIL, OPT_LIMIT, OPT_AT, OPT_NULL };

const struct option rq_audit_options[] = {
    {"format", required_argument, NULL, OPT_FORMAT}, {"actor", required_argument, NULL, OPT_ACTOR},
    {"table", required_argument, NULL, OPT_TABLE},   {"key", required_argument, NULL, OPT_KEY},
    {"since", required_argument, NULL, OPT_SINCE},   {"until", required_argument, NULL, OPT_UNTIL},
    {"limit", required_argument, NULL, OPT_LIMIT},   {"at", required_argument, NULL, OPT_AT},
    {"null", required_argument, NULL, OPT_NULL},     {NULL, 0, NULL, 0}};

#define MAX_TABLES 256

typedef struct {
    OutFormat fmt;
    const char *null_text; /* --null: NULL in aligned output */
    const char *actor;
    const char *tables[MAX_TABLES];
    int ntables;
    const char *key;
    const char *since;
    const char *until;
    const char *limit;
    const char *at;
    int npos;
    char **pos;
} AuditArgs;

/* The options each command takes; one it does not take is an error rather
 * than silently ignored (`history --actor x` must not print everything). */
#define OPTBIT(o) (1u << ((o)-OPT_FORMAT))
#define OUT_OPTS (OPTBIT(OPT_FORMAT) | OPTBIT(OPT_NULL))
#define LOG_OPTS                                                                                                  \
    (OUT_OPTS | OPTBIT(OPT_ACTOR) | OPTBIT(OPT_TABLE) | OPTBIT(OPT_KEY) | OPTBIT(OPT_SINCE) | OPTBIT(OPT_UNTIL) | \
     OPTBIT(OPT_LIMIT))
#define SHOW_OPTS OUT_OPTS
#define HISTORY_OPTS \
    (OUT_OPTS | OPTBIT(OPT_TABLE) | OPTBIT(OPT_KEY) | OPTBIT(OPT_SINCE) | OPTBIT(OPT_UNTIL) | OPTBIT(OPT_LIMIT))
#define BLAME_OPTS (OUT_OPTS | OPTBIT(OPT_TABLE) | OPTBIT(OPT_KEY) | OPTBIT(OPT_AT))
#define DIFF_OPTS (OUT_OPTS | OPTBIT(OPT_TABLE))

/* --limit into digits in out[24] ("" without it). */
static WrStatus parse_limit(ReplayCtx *ctx, const AuditArgs *a, char out[24], WrError *err)
{
    out[0] = '\0';
    if (!a->limit) return WR_OK;
    char *end;
    errno = 0;
    long long n = strtoll(a->limit, &end, 10);
    if (!a->limit[0] || *end || n < 0 || errno)
        return rq_usage(ctx, err, "invalid --limit %s: expected a count", a->limit);
    snprintf(out, 24, "%lld", n);
    return WR_OK;
}

static WrStatus parse_args(ReplayCtx *ctx, int argc, char **argv, unsigned allowed, AuditArgs *a, WrError *err)
{
    memset(a, 0, sizeof(*a));
    optind = 0;
    opterr = 0;
    int c, idx = -1;
    while ((c = getopt_long(argc, argv, "", rq_audit_options, &idx)) != -1) {
        if (c >= OPT_FORMAT && c <= OPT_NULL && !(allowed & OPTBIT(c)))
            return rq_usage(ctx, err, "%s does not take --%s (try walrev %s --help)", ctx->cmd,
                            idx >= 0 ? rq_audit_options[idx].name : "?", ctx->cmd);
        idx = -1;
        switch (c) {
        case OPT_FORMAT:
            if (rq_parse_format(optarg, &a->fmt, err) != WR_OK) return rq_usage(ctx, err, "%s", err->msg);
            break;
        case OPT_NULL: a->null_text = optarg; break;
        case OPT_ACTOR: a->actor = optarg; break;
        case OPT_TABLE:
            if (a->ntables == MAX_TABLES) return rq_usage(ctx, err, "too many --table options");
            a->tables[a->ntables++] = optarg;
            break;
        case OPT_KEY: a->key = optarg; break;
        case OPT_SINCE: a->since = optarg; break;
        case OPT_UNTIL: a->until = optarg; break;
        case OPT_LIMIT: a->limit = optarg; break;
        case OPT_AT: a->at = optarg; break;
        default: return rq_bad_option(ctx, argc, argv, err);
        }
    }
    /* GNU getopt moves positionals after the options */
    a->pos = argv + optind;
    a->npos = argc - optind;
    /* the values' forms, before the store is opened (rq_open_history) */
    char limit[24];
    if (rq_check_table_names(ctx, a->tables, a->ntables, err) != WR_OK ||
        (a->key && rq_check_key(ctx, a->key, err) != WR_OK) || parse_limit(ctx, a, limit, err) != WR_OK ||
        rq_check_range(ctx, a->since, a->until, err) != WR_OK ||
        (a->at && rq_check_point(ctx, "--at", a->at, err) != WR_OK))
        return err->status;
    return WR_OK;
}

static WrStatus need_no_pos(ReplayCtx *ctx, const AuditArgs *a, const char *cmd, WrError *err)
{
    if (a->npos > 0) return rq_usage(ctx, err, "%s: unexpected argument %s", cmd, a->pos[0]);
    return WR_OK;
}

/* history and blame: one row, named by --table and --key, and no operand; then the store is opened. */
static WrStatus object_args(ReplayCtx *ctx, int argc, char **argv, unsigned allowed, AuditArgs *a, WrError *err)
{
    if (parse_args(ctx, argc, argv, allowed, a, err) != WR_OK || need_no_pos(ctx, a, ctx->cmd, err) != WR_OK)
        return err->status;
    if (a->ntables != 1 || !a->key) return rq_usage(ctx, err, "%s needs --table T and --key K", ctx->cmd);
    return rq_open_history(ctx, err);
}

/*
 * The leaf partitions of partitioned table $1 with the changes during which
 * they were below it (member_intervals), and the deltas among those changes
 * as "d" with the key condition cond; a FROM-list fragment. The history
 * schema is %1$s.
 */
#define PARENT_DELTAS(cond)                                                  \
    "(SELECT * FROM %1$s.member_intervals($1::oid) WHERE relkind = 'r') iv " \
    "JOIN %1$s.object_delta d ON d.relid = iv.relid AND " cond " "           \
    "AND %1$s.change_pos(d.revision_id, d.seq) >= iv.lo AND %1$s.change_pos(d.revision_id, d.seq) < iv.hi"

/*
 * The type of an object_history row h's column as its relation version
 * (d.relversion: object_delta's) recorded it: three trailing columns that
 * zone_history reads and drops.
 */
#define HISTORY_TYPES "ty.o, ty.m, ty.name "
#define HISTORY_TYPES_JOIN                                                                                       \
    "LEFT JOIN %1$s.relation_version hv ON hv.relid = h.relid AND hv.version = d.relversion "                  \
    "LEFT JOIN LATERAL (SELECT hv.col_type_oids[p.p], hv.col_typmods[p.p], hv.col_type_names[p.p] "            \
    "FROM (SELECT pg_catalog.array_position(hv.col_ids, h.col_id::smallint)) p(p)) ty(o, m, name) ON true "

/*
 * A parent's members (partitions, INHERITS children) that were unlogged
 * while below it in the states after revisions from..to (to < 0: the
 * newest) are an error naming them: the parent's history lacks their rows.
 */
static WrStatus members_logged(ReplayCtx *ctx, uint32_t relid, int64_t from, int64_t to, WrError *err)
{
    if (to < 0) {
        Point last;
        if (rq_newest(ctx, &last, err) != WR_OK) return err->status;
        to = last.rev;
    }
    return rq_members_logged(ctx, relid, from, to, err);
}

/*
 * --table and --key (object_args saw both) into relid and stored key; the key must have a recorded
 * change (for a partitioned table, *parent=true: in one of its partitions
 * while it was one, none of them unlogged then in the states after
 * revisions from..to, to < 0 the newest). newest non-NULL: the newest
 * revision is wanted too (blame without --at), and from..to are it.
 */
static WrStatus resolve_object(ReplayCtx *ctx, const AuditArgs *a, int64_t from, int64_t to, int64_t *newest,
                               uint32_t *relid, char **key, bool *parent, WrError *err)
{
    if (rq_parse_key_arg(ctx, a->key, key, err) != WR_OK) return err->status;
    ObjectRef o;
    if (rq_resolve_object(ctx, a->tables[0], *key, newest != NULL, &o, err) != WR_OK) return err->status;
    *relid = o.relid;
    *parent = o.members;
    if (newest) *newest = from = to = o.newest;
    bool found = o.known;
    if (*parent) {
        if (members_logged(ctx, *relid, from, to, err) != WR_OK) return err->status;
        char rel[16];
        rq_oid_text(*relid, rel);
        const char *params[2] = {rel, *key};
        char *sql = xasprintf("SELECT 1 FROM " PARENT_DELTAS("d.key = %1$s.leaf_key($1::oid, iv.relid, $2)") " LIMIT 1",
                              ctx->schema_q);
        PGresult *res = rq_exec(ctx->hist, err, sql, 2, params);
        free(sql);
        if (!res) return err->status;
        found = PQntuples(res) > 0;
        PQclear(res);
    }
    /* an unlogged or temporary table has no change of any key: say why */
    if (!found && rq_untracked_now(ctx, a->tables[0], *relid, err)) return err->status;
    if (!found)
        return wr_error_set(err, WR_INVALID, "unknown key %s in table %s: no change recorded for it", *key,
                            a->tables[0]);
    return WR_OK;
}

/*
 * The types of relid's columns at rev that print by the session's TimeZone
 * (rq_zoned_types): (*render)[i] for rv->col_names[i]; *render NULL when the
 * table has no version then. The caller ends rv (relversion_term) and frees
 * *render (rq_free_strv(*render, rv->ncols)).
 */
static WrStatus zoned_at(ReplayCtx *ctx, uint32_t relid, int64_t rev, RelVersion *rv, bool *found, char ***render,
                         WrError *err)
{
    *render = NULL;
    if (rq_relation_at(ctx, relid, rev, rv, found, err) != WR_OK) return err->status;
    if (!*found) return WR_OK;
    char **types = rq_column_types(ctx->hist, ctx->schema_q, rv, err);
    if (!types) return err->status;
    WrStatus st = rq_zoned_types(ctx->hist, rv->ncols, types, render, err);
    rq_free_strv(types, rv->ncols);
    return st;
}

/* The type column `name` of rv prints through again (zoned_at's render), NULL: as recorded. */
static const char *zoned_column(const RelVersion *rv, char **render, const char *name)
{
    for (int i = 0; render && i < rv->ncols; i++)
        if (strcmp(rv->col_names[i], name) == 0) return render[i];
    return NULL;
}

/* Cell (row r, field `field` of res) printed again through render (NULL: not at all), appended to cells. */
static void add_cell(ZoneCell *cells, int *n, const PGresult *res, int r, const char *field, const char *render)
{
    int c = PQfnumber(res, field);
    if (render && c >= 0) cells[(*n)++] = (ZoneCell){r, c, render};
}

/*
 * history's and show's values in the reader's TimeZone (docs/history-store.md):
 * res's last three columns are each row's column type as recorded (oid,
 * typmod, name of the row's relation version), dropped from *res.
 */
static WrStatus zone_history(ReplayCtx *ctx, PGresult **res, WrError *err)
{
    int nrows = PQntuples(*res), nf = PQnfields(*res), n = 0;
    /* the distinct recorded types, each named and judged once */
    uint32_t *oids = xcalloc((size_t)nrows + 1, sizeof(uint32_t));
    int *mods = xcalloc((size_t)nrows + 1, sizeof(int)), *which = xcalloc((size_t)nrows + 1, sizeof(int));
    char **names = xcalloc((size_t)nrows + 1, sizeof(char *));
    for (int r = 0; r < nrows; r++) {
        which[r] = -1;
        if (PQgetisnull(*res, r, nf - 3)) continue;
        uint32_t o = (uint32_t)strtoul(PQgetvalue(*res, r, nf - 3), NULL, 10);
        int m = atoi(PQgetvalue(*res, r, nf - 2));
        char *name = PQgetisnull(*res, r, nf - 1) ? NULL : PQgetvalue(*res, r, nf - 1);
        for (int k = 0; k < n && which[r] < 0; k++)
            if (oids[k] == o && mods[k] == m && (name ? names[k] && strcmp(names[k], name) == 0 : !names[k]))
                which[r] = k;
        if (which[r] >= 0) continue;
        oids[n] = o, mods[n] = m, names[n] = name;
        which[r] = n++;
    }
    /* the types as the columns of a table of no name: known by OID when the history is in the source's
     * database (rq_column_types), else by their recorded names */
    RelVersion rv = {.ncols = n, .nspname = "", .relname = "", .type_oids = oids, .typmods = mods, .type_names = names};
    char **types = rq_column_types(ctx->hist, ctx->schema_q, &rv, err), **render = NULL;
    WrStatus st = types ? rq_zoned_types(ctx->hist, n, types, &render, err) : err->status;
    if (st == WR_OK) {
        ZoneCell *cells = xcalloc((size_t)nrows * 2 + 1, sizeof(ZoneCell));
        int nc = 0;
        for (int r = 0; r < nrows; r++) {
            if (which[r] < 0) continue;
            add_cell(cells, &nc, *res, r, "old_value", render[which[r]]);
            add_cell(cells, &nc, *res, r, "new_value", render[which[r]]);
        }
        st = rq_rezone_cells(ctx->hist, res, cells, nc, 3, err);
        free(cells);
    }
    if (types) rq_free_strv(types, n);
    if (render) rq_free_strv(render, n);
    free(names);
    free(which);
    free(mods);
    free(oids);
    return st;
}

/* --since and --until into revision ids in since[24] and until[24] ("" when absent), in one round trip. */
static WrStatus resolve_range(ReplayCtx *ctx, const AuditArgs *a, char since[24], char until[24], WrError *err)
{
    const char *texts[2];
    char *outs[2];
    int n = 0;
    since[0] = until[0] = '\0';
    if (a->since) texts[n] = a->since, outs[n++] = since;
    if (a->until) texts[n] = a->until, outs[n++] = until;
    Point pts[2];
    if (rq_resolve_bounds(ctx, n, texts, pts, err) != WR_OK) return err->status;
    for (int i = 0; i < n; i++) snprintf(outs[i], 24, "%lld", (long long)pts[i].rev);
    /* an inverted range is a mistake, not an empty answer an auditor would take for "nothing changed" */
    if (n == 2 && pts[0].rev > pts[1].rev)
        return rq_usage(ctx, err, "--since %s (revision %lld) is after --until %s (revision %lld)", a->since,
                        (long long)pts[0].rev, a->until, (long long)pts[1].rev);
    return WR_OK;
}

/* The parameters of log's statement: a value given becomes the next $n, cast
 * to its type, in ph[24]; one not given is a typed NULL there. */
typedef struct {
    const char *values[8];
    int n;
} LogParams;

static void log_param(LogParams *lp, const char *value, const char *type, char ph[24])
{
    if (!value) {
        snprintf(ph, 24, "NULL::%s", type);
        return;
    }
    lp->values[lp->n++] = value;
    snprintf(ph, 24, "$%d::%s", lp->n, type);
}

WrStatus cmd_log(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    AuditArgs a;
    if (parse_args(ctx, argc, argv, LOG_OPTS, &a, err) != WR_OK || need_no_pos(ctx, &a, "log", err) != WR_OK)
        return err->status;
    const char *colon = a.actor ? strchr(a.actor, ':') : NULL;
    if (a.actor && (!colon || colon == a.actor))
        return rq_usage(ctx, err, "invalid --actor %s: expected TYPE:ID", a.actor);
    if (a.ntables > 1) return rq_usage(ctx, err, "log takes one --table");
    if (a.key && !a.ntables) return rq_usage(ctx, err, "--key needs --table");
    if (rq_open_history(ctx, err) != WR_OK) return err->status;
    char since[24] = "", until[24] = "", rel[16] = "", limit[24] = "";
    char *atype = NULL, *aid = NULL, *key = NULL;
    WrStatus st = WR_OK;
    if ((st = resolve_range(ctx, &a, since, until, err)) != WR_OK) goto done;
    if (a.actor) {
        atype = xstrndup(a.actor, (size_t)(colon - a.actor));
        aid = xstrdup(colon + 1);
    }
    bool parent = false;
    if (a.ntables == 1) {
        uint32_t relid;
        if ((st = rq_resolve_table(ctx, a.tables[0], &relid, err)) != WR_OK) goto done;
        if ((st = rq_has_members(ctx, relid, &parent, err)) != WR_OK) goto done;
        if (parent && (st = members_logged(ctx, relid, since[0] ? strtoll(since, NULL, 10) : 0,
                                           until[0] ? strtoll(until, NULL, 10) : -1, err)) != WR_OK)
            goto done;
        rq_oid_text(relid, rel);
    }
    if (a.key && (st = rq_parse_key_arg(ctx, a.key, &key, err)) != WR_OK) goto done;
    if ((st = parse_limit(ctx, &a, limit, err)) != WR_OK) goto done;
    {
        /* Only the conditions given are in the statement, each value its own
         * parameter: "($4 IS NULL OR revision IN (...))" kept the planner from
         * turning the IN into a join, so every revision of the range was read
         * and filtered (issue 16, Q: `log --actor` over a day). */
        LogParams lp = {.n = 0};
        char p_rel[24], p_key[24], p_since[24], p_until[24], p_type[24], p_id[24], p_limit[24];
        log_param(&lp, rel[0] ? rel : NULL, "oid", p_rel);
        log_param(&lp, key, "text", p_key);
        log_param(&lp, since[0] ? since : NULL, "bigint", p_since);
        log_param(&lp, until[0] ? until : NULL, "bigint", p_until);
        log_param(&lp, atype, "text", p_type);
        log_param(&lp, aid, "text", p_id);
        log_param(&lp, limit[0] ? limit : NULL, "bigint", p_limit);
        StrBuf where;
        strbuf_init(&where);
        if (since[0]) strbuf_appendf(&where, " AND l.revision > %s", p_since);
        if (until[0]) strbuf_appendf(&where, " AND l.revision <= %s", p_until);
        /* the actor's revisions from its index, each then found by id (as an IN,
         * the join read every revision of the range: 20 ms for 15,000) */
        if (atype)
            strbuf_appendf(&where,
                           " AND l.revision = ANY (ARRAY(SELECT c.revision_id FROM %s.revision_context c "
                           "WHERE c.actor_type = %s AND c.actor_id = %s))",
                           ctx->schema_q, p_type, p_id);
        if (parent) {
            /* A partitioned table: its partitions' changes while they were its own,
             * and (without --key) the revisions that attached, detached, dropped one
             * or changed the table itself. */
            strbuf_appendf(
                &where,
                " AND l.revision IN (SELECT d.revision_id FROM " PARENT_DELTAS(
                    "(%3$s IS NULL OR d.key = %1$s.leaf_key(%2$s, iv.relid, %3$s))") "  UNION SELECT floor(iv.lo "
                                                                                     "/ 4294967296)::bigint FROM "
                                                                                     "%1$s.member_intervals(%2$s) iv"
                                                                                     "   WHERE %3$s IS NULL"
                                                                                     "  UNION SELECT floor(iv.hi "
                                                                                     "/ 4294967296)::bigint FROM "
                                                                                     "%1$s.member_intervals(%2$s) iv"
                                                                                     "   WHERE %3$s IS NULL "
                                                                                     "AND iv.hi <> 'Infinity'"
                                                                                     "  UNION SELECT "
                                                                                     "e.revision_id FROM "
                                                                                     "%1$s.table_event e WHERE "
                                                                                     "e.relid = %2$s"
                                                                                     "   AND %3$s IS NULL)",
                ctx->schema_q, p_rel, p_key);
        } else if (rel[0]) {
            strbuf_appendf(&where, " AND l.revision IN (SELECT d.revision_id FROM %s.object_delta d WHERE d.relid = %s",
                           ctx->schema_q, p_rel);
            if (key) strbuf_appendf(&where, " AND d.key = %s", p_key);
            /* without --key, the revisions that created, altered or dropped the table
             * too, as for a parent: a drop writes no delta of the table */
            if (!key)
                strbuf_appendf(&where, " UNION SELECT e.revision_id FROM %s.table_event e WHERE e.relid = %s",
                               ctx->schema_q, p_rel);
            strbuf_append_char(&where, ')');
        }
        /* A quarantined revision (docs/history-store.md#quarantine) says so where its
         * description goes: looked up by id for each row printed (an EXISTS was
         * planned as a hash of every quarantined revision, a scan of all of them). */
        char *sql = xasprintf("SELECT l.revision, l.commit_time, l.actor_type, l.actor_id, "
                              "CASE WHEN (SELECT r.quarantined FROM %1$s.revision r WHERE r.id = l.revision) "
                              "THEN '[quarantined] ' || coalesce(l.description, '') ELSE l.description END AS "
                              "description, l.inserts, l.updates, l.deletes, l.truncates, l.verified, l.db_user "
                              "FROM %1$s.revision_log l WHERE true%2$s "
                              "ORDER BY l.revision DESC LIMIT %3$s",
                              ctx->schema_q, where.data ? where.data : "", p_limit);
        strbuf_free(&where);
        PGresult *res = rq_exec(ctx->hist, err, sql, lp.n, lp.values);
        free(sql);
        if (!res) {
            st = err->status;
            goto done;
        }
        out_print_result(ctx->out, res, a.fmt, a.null_text);
        PQclear(res);
    }
done:
    free(atype);
    free(aid);
    free(key);
    return st;
}

WrStatus cmd_show(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    AuditArgs a;
    if (parse_args(ctx, argc, argv, SHOW_OPTS, &a, err) != WR_OK) return err->status;
    if (a.npos != 1) return rq_usage(ctx, err, "usage: walrev show POINT [--format aligned|csv|json]");
    if (rq_check_point(ctx, "POINT", a.pos[0], err) != WR_OK || rq_open_history(ctx, err) != WR_OK) return err->status;
    Point pt;
    if (rq_resolve_bounds(ctx, 1, (const char *const *)&a.pos[0], &pt, err) != WR_OK) return err->status;
    PGresult *head =
        rq_execf(ctx->hist, err,
                 "SELECT revision, commit_time, commit_lsn, end_lsn, xid, actor_type, actor_id, "
                 "description, inserts, updates, deletes, truncates, snapshots, warnings, verified, db_user "
                 "FROM %s.revision_log WHERE revision = %lld",
                 ctx->schema_q, (long long)pt.rev);
    if (!head) return err->status;
    PGresult *res = rq_execf(ctx->hist, err,
                             "SELECT h.seq, h.table_name AS \"table\", h.op, h.key, h.actor_type, h.actor_id, "
                             "h.column_name AS \"column\", h.old_value, h.new_value, h.verified, h.db_user, "
                             HISTORY_TYPES "FROM %1$s.object_history h JOIN %1$s.object_delta d "
                             "ON d.revision_id = h.revision AND d.seq = h.seq " HISTORY_TYPES_JOIN
                             "WHERE h.revision = %2$lld ORDER BY h.seq, h.attr_no",
                             ctx->schema_q, (long long)pt.rev);
    if (res && zone_history(ctx, &res, err) != WR_OK) {
        PQclear(res);
        res = NULL;
    }
    if (!res) {
        PQclear(head);
        return err->status;
    }
    if (a.fmt == OUT_JSON) {
        StrBuf b;
        strbuf_init(&b);
        strbuf_append_str(&b, "{\"revision\":");
        out_json_row(&b, head, 0);
        strbuf_append_str(&b, ",\"changes\":[");
        for (int r = 0; r < PQntuples(res); r++) {
            strbuf_append_str(&b, r ? ",\n" : "\n");
            out_json_row(&b, res, r);
        }
        strbuf_append_str(&b, "]}\n");
        fwrite(b.data, 1, b.len, ctx->out);
        strbuf_free(&b);
    } else if (a.fmt == OUT_CSV) {
        out_print_result(ctx->out, res, OUT_CSV, NULL);
    } else {
        out_print_result(ctx->out, head, OUT_ALIGNED, a.null_text);
        fputc('\n', ctx->out);
        out_print_result(ctx->out, res, OUT_ALIGNED, a.null_text);
    }
    PQclear(head);
    PQclear(res);
    return WR_OK;
}

WrStatus cmd_history(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    AuditArgs a;
    if (object_args(ctx, argc, argv, HISTORY_OPTS, &a, err) != WR_OK) return err->status;
    uint32_t relid;
    char *key = NULL;
    bool parent = false;
    char since[24], until[24], limit[24];
    if (resolve_range(ctx, &a, since, until, err) != WR_OK ||
        resolve_object(ctx, &a, since[0] ? strtoll(since, NULL, 10) : 0, until[0] ? strtoll(until, NULL, 10) : -1, NULL,
                       &relid, &key, &parent, err) != WR_OK ||
        parse_limit(ctx, &a, limit, err) != WR_OK) {
        free(key);
        return err->status;
    }
    char rel[16];
    rq_oid_text(relid, rel);
    const char *params[5] = {rel, key, since[0] ? since : NULL, until[0] ? until : NULL, limit[0] ? limit : NULL};
    /* The changes are chosen newest first through the object index (backward,
     * stopping after --limit), so the newest N cost the same however long the
     * object's history is; they print oldest first. */
    char *sql = NULL;
    if (parent) {
        /* a partitioned table: the key's changes in its partitions while they were its own */
        sql = xasprintf(
            "WITH d AS MATERIALIZED (SELECT d.revision_id, d.seq, d.relid, d.key, d.relversion FROM " PARENT_DELTAS(
                "d.key = %1$s.leaf_key($1::oid, iv.relid, $2)") " "
                                                                "    AND ($3::bigint IS NULL OR d.revision_id > "
                                                                "$3::bigint) "
                                                                "    AND ($4::bigint IS NULL OR d.revision_id <= "
                                                                "$4::bigint) "
                                                                "  ORDER BY d.revision_id DESC, d.seq DESC LIMIT "
                                                                "$5::bigint) "
                                                                "SELECT h.revision, h.commit_time, h.op, h.actor_type, "
                                                                "h.actor_id, h.description, "
                                                                "h.column_name AS \"column\", h.old_value, "
                                                                "h.new_value, h.verified, h.db_user, " HISTORY_TYPES
                                                                "FROM d JOIN %1$s.object_history h ON h.revision = "
                                                                "d.revision_id AND h.seq = d.seq " HISTORY_TYPES_JOIN
                                                                "WHERE h.relid = d.relid AND h.key = d.key "
                                                                "ORDER BY h.revision, h.seq, h.attr_no",
            ctx->schema_q);
    } else {
        sql = xasprintf("WITH d AS MATERIALIZED (SELECT o.revision_id, o.seq, o.relversion FROM %1$s.object_delta o "
                        "  WHERE o.relid = $1::oid AND o.key = $2 "
                        "    AND ($3::bigint IS NULL OR o.revision_id > $3::bigint) "
                        "    AND ($4::bigint IS NULL OR o.revision_id <= $4::bigint) "
                        "  ORDER BY o.relid DESC, o.key DESC, o.revision_id DESC, o.seq DESC LIMIT $5::bigint) "
                        "SELECT h.revision, h.commit_time, h.op, h.actor_type, h.actor_id, h.description, "
                        "h.column_name AS \"column\", h.old_value, h.new_value, h.verified, h.db_user, " HISTORY_TYPES
                        "FROM d JOIN %1$s.object_history h ON h.revision = d.revision_id AND h.seq = d.seq "
                        HISTORY_TYPES_JOIN "WHERE h.relid = $1::oid AND h.key = $2 "
                        "ORDER BY h.revision, h.seq, h.attr_no",
                        ctx->schema_q);
    }
    PGresult *res = rq_exec(ctx->hist, err, sql, 5, params);
    free(sql);
    free(key);
    if (!res) return err->status;
    if (zone_history(ctx, &res, err) != WR_OK) {
        PQclear(res);
        return err->status;
    }
    out_print_result(ctx->out, res, a.fmt, a.null_text);
    PQclear(res);
    return WR_OK;
}

WrStatus cmd_blame(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    AuditArgs a;
    if (object_args(ctx, argc, argv, BLAME_OPTS, &a, err) != WR_OK) return err->status;
    uint32_t relid;
    char *key = NULL;
    bool parent = false;
    Point pt = {0};
    /* without --at the newest revision comes with the object, in one statement */
    WrStatus st = a.at ? rq_resolve_point(ctx, a.at, &pt, err) : WR_OK;
    if (st == WR_OK) st = resolve_object(ctx, &a, pt.rev, pt.rev, a.at ? NULL : &pt.rev, &relid, &key, &parent, err);
    if (st != WR_OK) {
        free(key);
        return st;
    }
    char rel[16], rev[24];
    rq_oid_text(relid, rel);
    /* a table unlogged, incomplete or (at an asked point) not there then has no true answer; without
     * --at a dropped table's row is blamed as it last was (its history stays). Checked after blame()
     * on the relation version its values are rendered by, so the common case adds one statement */
    bool absent_ok = !a.at;
    uint32_t table_relid = relid;
    snprintf(rev, sizeof(rev), "%lld", (long long)pt.rev);
    if (parent) {
        /* a partitioned table: blame the row in the partition that holds it then */
        const char *pp[3] = {rel, key, rev};
        char *q = xasprintf("SELECT m, %1$s.leaf_key($1::oid, m, $2) FROM %1$s.members_at($1::oid, $3::bigint) m "
                            "WHERE %1$s.row_at(m, %1$s.leaf_key($1::oid, m, $2), $3::bigint) IS NOT NULL LIMIT 1",
                            ctx->schema_q);
        PGresult *r = rq_exec(ctx->hist, err, q, 3, pp);
        free(q);
        if (!r) {
            free(key);
            return err->status;
        }
        bool held = PQntuples(r) > 0;
        if (held) {
            snprintf(rel, sizeof(rel), "%s", PQgetvalue(r, 0, 0));
            free(key);
            key = xstrdup(PQgetvalue(r, 0, 1)); /* the leaf's form of the key */
        }
        PQclear(r);
        if (!held) {
            st = wr_error_set(err, WR_INVALID,
                              "key %s of table %s does not exist at revision %lld (in none of its partitions then)",
                              key, a.tables[0], (long long)pt.rev);
            free(key);
            return st;
        }
    }
    /* verified, db_user: the context of the change that set the value, as the server knew it.
     * The change is found by (revision, seq) through the BRIN of object_delta, one probe per
     * column (a plain join read all of object_delta: 2.3 s at 10^6 versions of the object). */
    char *sql = xasprintf(
        "SELECT b.column_name AS \"column\", b.value, b.revision, b.op, b.commit_time, b.actor_type, "
        "b.actor_id, b.description, coalesce(c.actor_verified, c.attested) AS verified, c.db_session_user AS db_user "
        "FROM %1$s.blame($1::oid, $2, $3::bigint) WITH ORDINALITY AS b(column_name, value, revision, seq, "
        "op, commit_time, actor_type, actor_id, description, n) "
        "LEFT JOIN LATERAL (SELECT od.context_no FROM %1$s.object_delta od "
        "WHERE od.revision_id = b.revision AND od.seq = b.seq LIMIT 1) od ON true "
        "LEFT JOIN %1$s.revision_context c ON c.revision_id = b.revision "
        "AND c.context_no = od.context_no ORDER BY b.n",
        ctx->schema_q);
    const char *params[3] = {rel, key, rev};
    PGresult *res = rq_exec(ctx->hist, err, sql, 3, params);
    free(sql);
    /* blame() raises 22023 when the row does not exist at that point: say it was deleted */
    if (!res && strcmp(err->sqlstate, "22023") == 0 && strstr(err->msg, "no row with key")) {
        st = wr_error_set(err, WR_INVALID, "key %s of table %s does not exist at revision %lld (deleted)", key,
                          a.tables[0], (long long)pt.rev);
        err->sqlstate[0] = '\0';
        free(key);
        return st;
    }
    free(key);
    if (!res) return err->status;
    /* the values in the reader's TimeZone, by the types the row's columns have then */
    RelVersion rv;
    char **render = NULL;
    bool found = false;
    uint32_t blamed = (uint32_t)strtoul(rel, NULL, 10); /* the partition that holds the row, for a parent */
    st = zoned_at(ctx, blamed, pt.rev, &rv, &found, &render, err);
    if (st == WR_OK && table_relid == blamed)
        st = rq_table_whole_rv(ctx, a.tables[0], table_relid, parent, pt.rev, &rv, found, absent_ok, err);
    else if (st == WR_OK)
        st = absent_ok ? rq_table_whole_at(ctx, a.tables[0], table_relid, parent, pt.rev, err)
                       : rq_table_there_at(ctx, a.tables[0], table_relid, parent, pt.rev, err);
    if (st == WR_OK) {
        int nrows = PQntuples(res), nc = 0, cc = PQfnumber(res, "column");
        ZoneCell *cells = xcalloc((size_t)nrows + 1, sizeof(ZoneCell));
        for (int r = 0; r < nrows && cc >= 0; r++)
            add_cell(cells, &nc, res, r, "value", zoned_column(&rv, render, PQgetvalue(res, r, cc)));
        st = rq_rezone_cells(ctx->hist, &res, cells, nc, 0, err);
        free(cells);
    }
    if (render) rq_free_strv(render, rv.ncols);
    relversion_term(&rv);
    if (st == WR_OK) out_print_result(ctx->out, res, a.fmt, a.null_text);
    PQclear(res);
    return st;
}

/* One table's column types at a point (zoned_at), for zone_diff. */
typedef struct {
    RelVersion rv;
    char **render;
} ZonedTable;

/*
 * diff's values in the reader's TimeZone: old values by the types of p1,
 * new ones by those of p2. res's last column is each row's table (relid),
 * dropped from *res; rows come table by table.
 */
static WrStatus zone_diff(ReplayCtx *ctx, PGresult **res, int64_t rev1, int64_t rev2, WrError *err)
{
    int nrows = PQntuples(*res), nf = PQnfields(*res), nc = 0, nt = 0, cc = PQfnumber(*res, "column");
    ZoneCell *cells = xcalloc((size_t)nrows * 2 + 1, sizeof(ZoneCell));
    ZonedTable *zt = xcalloc((size_t)nrows * 2 + 2, sizeof(ZonedTable)); /* at p1 and p2 per table */
    WrStatus st = WR_OK;
    for (int r = 0; r < nrows && st == WR_OK && cc >= 0; r++) {
        if (r == 0 || strcmp(PQgetvalue(*res, r, nf - 1), PQgetvalue(*res, r - 1, nf - 1)) != 0) {
            uint32_t relid = (uint32_t)strtoul(PQgetvalue(*res, r, nf - 1), NULL, 10);
            bool found;
            st = zoned_at(ctx, relid, rev1, &zt[nt].rv, &found, &zt[nt].render, err);
            nt++;
            if (st == WR_OK) st = zoned_at(ctx, relid, rev2, &zt[nt].rv, &found, &zt[nt].render, err);
            nt++;
            if (st != WR_OK) break;
        }
        const char *col = PQgetvalue(*res, r, cc);
        add_cell(cells, &nc, *res, r, "old_value", zoned_column(&zt[nt - 2].rv, zt[nt - 2].render, col));
        add_cell(cells, &nc, *res, r, "new_value", zoned_column(&zt[nt - 1].rv, zt[nt - 1].render, col));
    }
    if (st == WR_OK) st = rq_rezone_cells(ctx->hist, res, cells, nc, 1, err);
    for (int k = 0; k < nt; k++) {
        if (zt[k].render) rq_free_strv(zt[k].render, zt[k].rv.ncols);
        relversion_term(&zt[k].rv);
    }
    free(zt);
    free(cells);
    return st;
}

/*
 * diff --table name: the table(s) the name meant at the two points, appended
 * to ids (an oid[] literal being built, '{' first): one table, or, when the
 * name passed from a dropped or renamed table to another in between, both
 * (the one before shows its rows removed, the one after its rows added, as
 * SELECT * FROM name at each point would). Each is checked at both points:
 * a history that holds all of it (as snapshot checks), or none (dropped,
 * not created yet); a point where it was not tracked or incomplete would
 * net out wrong rows.
 */
static WrStatus diff_named_table(ReplayCtx *ctx, const char *name, int64_t rev1, int64_t rev2, StrBuf *ids,
                                 WrError *err)
{
    uint32_t at[2];
    if (rq_resolve_table_at(ctx, name, rev1, &at[0], err) != WR_OK ||
        rq_resolve_table_at(ctx, name, rev2, &at[1], err) != WR_OK)
        return err->status;
    for (int k = 0; k < (at[0] == at[1] ? 1 : 2); k++) {
        bool parent = false;
        if (rq_has_members(ctx, at[k], &parent, err) != WR_OK ||
            (parent && (rq_members_logged(ctx, at[k], rev1, rev1, err) != WR_OK ||
                        rq_members_logged(ctx, at[k], rev2, rev2, err) != WR_OK)) ||
            rq_table_whole_at(ctx, name, at[k], parent, rev1, err) != WR_OK ||
            rq_table_whole_at(ctx, name, at[k], parent, rev2, err) != WR_OK)
            return err->status;
        strbuf_appendf(ids, "%s%u", ids->len > 1 ? "," : "", at[k]);
    }
    return WR_OK;
}

/*
 * A diff of every table (ids: their relids as an oid[] literal) checks, as
 * diff --table does for each table, that the history holds all of each at
 * both points: the tables that joined the publication after setup and
 * whose baseline completed after the earlier point (backfill.whole_from),
 * and those unlogged at some point by the later one (logical decoding saw
 * none of their changes then: their rows there would be the ones before),
 * are the only candidates, each checked by rq_table_whole_at.
 */
static WrStatus diff_whole(ReplayCtx *ctx, const char *ids, int64_t rev1, int64_t rev2, WrError *err)
{
    PGresult *res = rq_execf(ctx->hist, err,
                             "SELECT b.relid, quote_ident(b.nspname) || '.' || quote_ident(b.relname) "
                             "FROM %1$s.backfill b, LATERAL (SELECT (to_jsonb(b) ->> 'whole_from')::bigint AS w) x "
                             "WHERE b.relid = ANY ('%2$s'::oid[]) AND (x.w = -1 OR x.w > %3$lld) "
                             "UNION SELECT e.relid, quote_ident(e.nspname) || '.' || quote_ident(e.relname) "
                             "FROM %1$s.table_event e WHERE e.relid = ANY ('%2$s'::oid[]) "
                             "AND e.event IN ('unlogged', 'unpublished') "
                             "AND e.revision_id <= %4$lld ORDER BY 2",
                             ctx->schema_q, ids, (long long)(rev1 < rev2 ? rev1 : rev2),
                             (long long)(rev1 < rev2 ? rev2 : rev1));
    if (!res) return err->status;
    WrStatus st = WR_OK;
    for (int i = 0; i < PQntuples(res) && st == WR_OK; i++) {
        uint32_t relid = (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10);
        /* unlogged at both points: the history has nothing of it at either, and it is left out, as a
         * snapshot of every table leaves it out */
        RelVersion rv[2] = {0};
        bool found[2] = {false, false};
        for (int k = 0; k < 2 && st == WR_OK; k++)
            st = rq_relation_at(ctx, relid, k ? rev2 : rev1, &rv[k], &found[k], err);
        bool both_unlogged = !found[0] && rv[0].unlogged_rev > 0 && !found[1] && rv[1].unlogged_rev > 0;
        /* each point checked on the relation version just read */
        for (int k = 0; k < 2 && st == WR_OK && !both_unlogged; k++)
            st = rq_table_whole_rv(ctx, PQgetvalue(res, i, 1), relid, false, k ? rev2 : rev1, &rv[k], found[k], true,
                                   err);
        relversion_term(&rv[0]);
        relversion_term(&rv[1]);
    }
    PQclear(res);
    return st;
}

WrStatus cmd_diff(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    AuditArgs a;
    if (parse_args(ctx, argc, argv, DIFF_OPTS, &a, err) != WR_OK) return err->status;
    if (a.npos == 1 && strstr(a.pos[0], "..")) /* main..NAME: a branch (merge.c) */
        return branch_check_range(ctx, a.pos[0], err) == WR_OK && rq_open_history(ctx, err) == WR_OK
                   ? branch_diff(ctx, a.pos[0], a.tables, a.ntables, a.fmt, a.null_text, err)
                   : err->status;
    if (a.npos != 2) return rq_usage(ctx, err, "usage: walrev diff POINT1 POINT2 [--table T ...] [--format F]");
    if (rq_check_point(ctx, "POINT1", a.pos[0], err) != WR_OK ||
        rq_check_point(ctx, "POINT2", a.pos[1], err) != WR_OK || rq_open_history(ctx, err) != WR_OK)
        return err->status;
    Point pts[2];
    if (rq_resolve_points(ctx, 2, (const char *const *)a.pos, pts, err) != WR_OK) return err->status;
    const Point p1 = pts[0], p2 = pts[1];
    StrBuf ids;
    strbuf_init(&ids);
    strbuf_append_char(&ids, '{');
    if (a.ntables) {
        for (int i = 0; i < a.ntables; i++) {
            if (diff_named_table(ctx, a.tables[i], p1.rev, p2.rev, &ids, err) != WR_OK) {
                strbuf_free(&ids);
                return err->status;
            }
        }
    } else {
        uint32_t *relids;
        int n;
        if (rq_all_tables(ctx, &relids, &n, err) != WR_OK) {
            strbuf_free(&ids);
            return err->status;
        }
        for (int i = 0; i < n; i++) strbuf_appendf(&ids, "%s%u", i ? "," : "", relids[i]);
        free(relids);
    }
    strbuf_append_char(&ids, '}');
    if (!a.ntables && diff_whole(ctx, ids.data, p1.rev, p2.rev, err) != WR_OK) {
        strbuf_free(&ids);
        return err->status;
    }
    /* a partitioned table (the table log says so) through parent_diff: the union of its partitions */
    PGresult *res =
        rq_execf(ctx->hist, err,
                 "SELECT v.nspname || '.' || v.relname AS \"table\", d.key, d.change, "
                 "d.column_name AS \"column\", "
                 /* an erased value (walrev erase) reads as <erased>, not as NULL */
                 "CASE WHEN d.old_value IS NULL AND d.change <> 'added' AND %2$s.erased_at(t.relid, "
                 "d.key, d.column_name, %3$lld) THEN '<erased>' ELSE d.old_value END AS old_value, "
                 "CASE WHEN d.new_value IS NULL AND d.change <> 'removed' AND %2$s.erased_at(t.relid, "
                 "d.key, d.column_name, %4$lld) THEN '<erased>' ELSE d.new_value END AS new_value, t.relid "
                 "FROM (SELECT u.relid, u.n, EXISTS (SELECT 1 FROM %2$s.table_event e "
                 "      WHERE e.relid = u.relid AND e.relkind = 'p') OR %2$s.is_inherit_parent(u.relid) AS part "
                 "      FROM unnest('%1$s'::oid[]) WITH ORDINALITY AS u(relid, n)) t "
                 "CROSS JOIN LATERAL (SELECT x.nspname, x.relname FROM ("
                 "  (SELECT nspname, relname, 1 AS src, version::numeric AS o FROM %2$s.relation_version rv "
                 "   WHERE rv.relid = t.relid) UNION ALL "
                 "  (SELECT nspname, relname, 0, %2$s.change_pos(revision_id, seq) FROM %2$s.table_event e "
                 "   WHERE e.relid = t.relid AND e.event <> 'drop')) x "
                 "  ORDER BY x.src DESC, x.o DESC LIMIT 1) v "
                 "CROSS JOIN LATERAL ("
                 "  SELECT * FROM %2$s.diff(%3$lld, %4$lld, t.relid) WITH ORDINALITY "
                 "    AS d1(key, change, column_name, old_value, new_value, n) WHERE NOT t.part "
                 "  UNION ALL SELECT * FROM %2$s.parent_diff(%3$lld, %4$lld, t.relid) WITH ORDINALITY "
                 "    AS d2(key, change, column_name, old_value, new_value, n) WHERE t.part) "
                 "  AS d(key, change, column_name, old_value, new_value, n) "
                 "ORDER BY t.n, d.n",
                 ids.data, ctx->schema_q, (long long)p1.rev, (long long)p2.rev);
    strbuf_free(&ids);
    if (!res) return err->status;
    if (zone_diff(ctx, &res, p1.rev, p2.rev, err) != WR_OK) {
        PQclear(res);
        return err->status;
    }
    out_print_result(ctx->out, res, a.fmt, a.null_text);
    PQclear(res);
    return WR_OK;
}
