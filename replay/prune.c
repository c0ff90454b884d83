/*
 * prune.c — `walrev prune` (retention, docs/cli.md#walrev-prune): drop the
 * history before a point by whole partitions of the store (format 6). The
 * plan (which partitions, revisions, rows, bytes) is read in the command's
 * read-only transaction; --apply then, on a connection of its own under a
 * lock timeout, optionally writes the range to files (--export DIR), and
 * calls prune_apply() (schema/sql/history.sql), which first writes a
 * keyframe of every table at the cut and the chain anchor, then drops the
 * partitions — all in one transaction. --import DIR loads an export back.
 * It must never drop a revision at or after the point asked for.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "common/cli.h"
#include "pgio/pgio.h"
#include "replay/internal.h"
#include "schema/store_sql.h"

enum { P_BEFORE = 1, P_APPLY, P_EXPORT, P_IMPORT };

const struct option rq_prune_options[] = {{"before", required_argument, NULL, P_BEFORE},
                                          {"apply", no_argument, NULL, P_APPLY},
                                          {"export", required_argument, NULL, P_EXPORT},
                                          {"import", required_argument, NULL, P_IMPORT},
                                          {NULL, 0, NULL, 0}};

#define EXPORT_FORMAT 1
#define MANIFEST "manifest.json"
#define PRUNE_LOCK_TIMEOUT "SET LOCAL lock_timeout = '10s'"

typedef struct {
    const char *before, *export_dir, *import_dir;
    bool apply;
} PruneArgs;

static WrStatus parse(ReplayCtx *ctx, int argc, char **argv, PruneArgs *a, WrError *err)
{
    memset(a, 0, sizeof(*a));
    const CliField fields[] = {CLI_STRING(P_BEFORE, &a->before), CLI_FLAG(P_APPLY, &a->apply),
                               CLI_STRING(P_EXPORT, &a->export_dir), CLI_STRING(P_IMPORT, &a->import_dir)};
    cli_start();
    if (cli_next(argc, argv, rq_prune_options, fields, CLI_NFIELDS(fields)) != -1)
        return rq_bad_option(ctx, argc, argv, err);
    if (optind < argc) return rq_usage(ctx, err, "prune: unexpected argument %s", argv[optind]);
    if (a->import_dir && (a->before || a->apply || a->export_dir))
        return rq_usage(ctx, err, "prune --import DIR takes no other option");
    if (!a->import_dir && !a->before) return rq_usage(ctx, err, "prune needs --before POINT (or --import DIR)");
    if (a->export_dir && !a->apply)
        return rq_usage(ctx, err, "--export writes the range as it is dropped: it needs --apply");
    if ((a->export_dir && !a->export_dir[0]) || (a->import_dir && !a->import_dir[0]))
        return rq_usage(ctx, err, "--export and --import take a directory");
    if (a->before) return rq_check_point(ctx, "--before", a->before, err);
    return WR_OK;
}

/* ---- files: SHA-256 while writing or reading ---- */

static void hex_of(const unsigned char *d, unsigned n, char *out)
{
    for (unsigned i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static WrStatus file_sha256(const char *path, char out[65], WrError *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return wr_error_set(err, WR_FATAL, "cannot read %s: %s", path, strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    unsigned char buf[65536], d[32];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) EVP_DigestUpdate(md, buf, n);
    unsigned dl = 0;
    EVP_DigestFinal_ex(md, d, &dl);
    EVP_MD_CTX_free(md);
    bool bad = ferror(f);
    fclose(f);
    if (bad) return wr_error_set(err, WR_FATAL, "cannot read %s", path);
    hex_of(d, 32, out);
    return WR_OK;
}

/* The parent table's columns, quoted, in order (what an export file holds). Caller frees. */
static char *table_columns(PGconn *c, const char *qs, const char *table, WrError *err)
{
    char *rel = xasprintf("%s.%s", qs, table);
    const char *p[1] = {rel};
    PGresult *res =
        rq_exec(c, err,
                "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_catalog.pg_attribute "
                "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
                1, p);
    free(rel);
    if (!res) return NULL;
    char *cols = xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return cols;
}

/* Send a COPY statement (sql, freed here); WR_OK when the server entered mode (COPY OUT or IN). */
static WrStatus copy_start(PGconn *c, char *sql, ExecStatusType mode, WrError *err)
{
    PGresult *res;
    bool ok = pgio_exec(c, sql, 0, NULL, &res) && PQresultStatus(res) == mode;
    free(sql);
    WrStatus st = WR_OK;
    if (!ok) {
        rq_server_error(err, c, res);
        st = err->status;
    }
    PQclear(res);
    return st;
}

/* Read a COPY's results to the end; the first failure becomes st (unless st already failed);
 * *rows (NULL: not wanted) the command's row count. */
static WrStatus copy_finish(PGconn *c, WrStatus st, long long *rows, WrError *err)
{
    PGresult *res;
    while ((res = PQgetResult(c)) != NULL) {
        if (st == WR_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
            rq_server_error(err, c, res);
            st = err->status;
        } else if (rows && PQresultStatus(res) == PGRES_COMMAND_OK) {
            *rows = atoll(PQcmdTuples(res));
        }
        PQclear(res);
    }
    return st;
}

/* COPY (select) TO a file in CSV; *rows its row count. */
static WrStatus copy_out(PGconn *c, const char *select, const char *path, long long *rows, WrError *err)
{
    FILE *f = fopen(path, "wb");
    if (!f) return wr_error_set(err, WR_FATAL, "cannot create %s: %s", path, strerror(errno));
    WrStatus st = copy_start(c, xasprintf("COPY (%s) TO STDOUT (FORMAT csv)", select), PGRES_COPY_OUT, err);
    char *buf = NULL;
    int n;
    while (st == WR_OK && (n = PQgetCopyData(c, &buf, 0)) > 0) {
        if (fwrite(buf, 1, (size_t)n, f) != (size_t)n) st = wr_error_set(err, WR_FATAL, "cannot write %s", path);
        PQfreemem(buf);
    }
    st = copy_finish(c, st, rows, err);
    if (fclose(f) != 0 && st == WR_OK) st = wr_error_set(err, WR_FATAL, "cannot write %s", path);
    return st;
}

/* COPY a file into table (columns) in CSV. */
static WrStatus copy_in(PGconn *c, const char *table, const char *cols, const char *path, WrError *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return wr_error_set(err, WR_FATAL, "cannot read %s: %s", path, strerror(errno));
    WrStatus st = copy_start(c, xasprintf("COPY %s (%s) FROM STDIN (FORMAT csv)", table, cols), PGRES_COPY_IN, err);
    if (st == WR_OK) {
        char buf[65536];
        size_t n;
        bool ok = true;
        while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0) ok = PQputCopyData(c, buf, (int)n) == 1;
        PQputCopyEnd(c, ok ? NULL : "walrev prune --import: reading the file failed");
        st = copy_finish(c, st, NULL, err);
    }
    fclose(f);
    return st == WR_OK ? WR_OK : wr_error_prefix(err, "loading %s into %s", path, table);
}

/* ---- the plan ---- */

typedef struct {
    int64_t rev;    /* the point asked for */
    int64_t cut;    /* revisions below it go; 0: nothing to prune */
    int64_t step;   /* partition_revisions */
    int64_t oldest; /* the oldest revision kept now */
    int64_t newest;
    PGresult *parts; /* prune_plan(cut): tbl, part, lo, hi, n_rows, bytes */
} Plan;

static WrStatus read_plan(ReplayCtx *ctx, int64_t rev, Plan *p, WrError *err)
{
    memset(p, 0, sizeof(*p));
    p->rev = rev;
    PGresult *res = rq_execf(ctx->hist, err,
                             "SELECT coalesce(%1$s.prune_cut(%2$" PRId64 "), 0), "
                             "(SELECT value FROM %1$s.store_info WHERE key = 'partition_revisions'), "
                             "(SELECT min(id) FROM %1$s.revision), (SELECT max(id) FROM %1$s.revision)",
                             ctx->schema_q, rev);
    if (!res) return wr_error_prefix(err, "planning the prune (is the store format 6? run `walrev setup`)");
    p->cut = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    p->step = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    p->oldest = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    p->newest = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    PQclear(res);
    if (p->cut == 0) return WR_OK;
    p->parts = rq_execf(ctx->hist, err,
                        "SELECT tbl, part::text, lo, hi, n_rows, bytes FROM %s.prune_plan(%" PRId64 ") "
                        "ORDER BY lo, tbl",
                        ctx->schema_q, p->cut);
    return p->parts ? WR_OK : wr_error_prefix(err, "reading the partitions to drop");
}

static void print_plan(ReplayCtx *ctx, const Plan *p)
{
    FILE *o = ctx->out;
    if (p->cut != p->rev)
        fprintf(o,
                "prune before revision %" PRId64 ": rounded down to revision %" PRId64
                ", the partition boundary at or before it (partitions hold %" PRId64 " revisions)\n",
                p->rev, p->cut, p->step);
    else
        fprintf(o, "prune before revision %" PRId64 " (a partition boundary)\n", p->cut);
    long long revs = 0, ctxs = 0, deltas = 0, bytes = 0;
    fprintf(o, "%-18s %-28s %-24s %12s %14s\n", "table", "partition", "revisions", "rows", "bytes");
    for (int i = 0; i < PQntuples(p->parts); i++) {
        const char *tbl = PQgetvalue(p->parts, i, 0);
        long long rows = atoll(PQgetvalue(p->parts, i, 4)), b = atoll(PQgetvalue(p->parts, i, 5));
        char range[48];
        snprintf(range, sizeof(range), "%s-%lld", PQgetvalue(p->parts, i, 2), atoll(PQgetvalue(p->parts, i, 3)) - 1);
        fprintf(o, "%-18s %-28s %-24s %12lld %14lld\n", tbl, PQgetvalue(p->parts, i, 1), range, rows, b);
        if (strcmp(tbl, "revision") == 0) revs += rows;
        if (strcmp(tbl, "revision_context") == 0) ctxs += rows;
        if (strcmp(tbl, "object_delta") == 0) deltas += rows;
        bytes += b;
    }
    fprintf(o,
            "drops revisions %" PRId64 " to %" PRId64 ": %lld revisions, %lld contexts, %lld deltas, %lld bytes in %d "
            "partitions\n",
            p->oldest, p->cut - 1, revs, ctxs, deltas, bytes, PQntuples(p->parts));
    fprintf(o,
            "keeps revisions %" PRId64 " to %" PRId64 "; first writes a keyframe of every table as of revision %" PRId64
            " and the anchor (its checksum), so verify proves every revision kept\n",
            p->cut, p->newest, p->cut - 1);
}

/* ---- export ---- */

static WrStatus make_export_dir(const char *dir, WrError *err)
{
    if (mkdir(dir, 0700) == 0) return WR_OK;
    if (errno != EEXIST)
        return wr_error_set(err, WR_FATAL, "cannot create --export directory %s: %s", dir, strerror(errno));
    DIR *d = opendir(dir);
    if (!d) return wr_error_set(err, WR_FATAL, "--export %s: %s", dir, strerror(errno));
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = false;
    closedir(d);
    return empty ? WR_OK : wr_error_set(err, WR_INVALID, "--export directory %s is not empty: nothing was pruned", dir);
}

/* One file of the export: select written to DIR/name, its entry added to files. */
static WrStatus export_one(PGconn *c, const char *dir, const char *name, const char *table, const char *cols,
                           const char *select, int64_t lo, int64_t hi, json_t *files, WrError *err)
{
    char *path = xasprintf("%s/%s", dir, name);
    long long rows = 0;
    char sum[65];
    WrStatus st = copy_out(c, select, path, &rows, err);
    if (st == WR_OK) st = file_sha256(path, sum, err);
    free(path);
    if (st != WR_OK) return st;
    json_t *f = json_pack("{s:s, s:s, s:s, s:I, s:s}", "file", name, "table", table, "columns", cols, "rows",
                          (json_int_t)rows, "sha256", sum);
    if (hi > 0) {
        json_object_set_new(f, "lo", json_integer(lo));
        json_object_set_new(f, "hi", json_integer(hi));
    }
    json_array_append_new(files, f);
    return WR_OK;
}

/* What prune_apply deletes besides the partitions: its rows below the cut. */
static const char *const EXTRA[] = {"erased_value", "erasure", "quarantine", "keyframe", "keyframe_chunk"};

/* The rows of table EXTRA[i] that prune_apply deletes for a cut. */
static void append_extra_where(StrBuf *b, size_t i, const char *qs, int64_t cut)
{
    if (i < 3)
        strbuf_appendf(b, "revision_id < %" PRId64, cut);
    else if (i == 3)
        strbuf_appendf(b, "revision_id < %" PRId64, cut - 1);
    else
        strbuf_appendf(b, "keyframe_id IN (SELECT id FROM %s.keyframe WHERE revision_id < %" PRId64 ")", qs, cut - 1);
}

static WrStatus export_range(ReplayCtx *ctx, PGconn *c, const Plan *p, const char *dir, WrError *err)
{
    WrStatus st = make_export_dir(dir, err);
    json_t *files = json_array();
    for (int i = 0; st == WR_OK && i < PQntuples(p->parts); i++) {
        const char *tbl = PQgetvalue(p->parts, i, 0), *part = PQgetvalue(p->parts, i, 1);
        char *cols = table_columns(c, ctx->schema_q, tbl, err);
        if (!cols) {
            st = err->status;
            break;
        }
        char *name = xasprintf("%s_p%s.csv", tbl, PQgetvalue(p->parts, i, 2));
        char *sel = xasprintf("SELECT %s FROM ONLY %s", cols, part);
        st = export_one(c, dir, name, tbl, cols, sel, strtoll(PQgetvalue(p->parts, i, 2), NULL, 10),
                        strtoll(PQgetvalue(p->parts, i, 3), NULL, 10), files, err);
        free(sel);
        free(name);
        free(cols);
    }
    for (size_t i = 0; st == WR_OK && i < sizeof(EXTRA) / sizeof(EXTRA[0]); i++) {
        char *cols = table_columns(c, ctx->schema_q, EXTRA[i], err);
        if (!cols) {
            st = err->status;
            break;
        }
        StrBuf sel;
        strbuf_init(&sel);
        strbuf_appendf(&sel, "SELECT %s FROM %s.%s WHERE ", cols, ctx->schema_q, EXTRA[i]);
        append_extra_where(&sel, i, ctx->schema_q, p->cut);
        char *name = xasprintf("%s.csv", EXTRA[i]);
        st = export_one(c, dir, name, EXTRA[i], cols, sel.data, 0, 0, files, err);
        free(name);
        strbuf_free(&sel);
        free(cols);
    }
    if (st == WR_OK) {
        PGresult *res = rq_execf(c, err, "SELECT encode(checksum, 'hex') FROM %s.revision WHERE id = %" PRId64,
                                 ctx->schema_q, p->cut - 1);
        if (!res) st = err->status;
        json_t *m = json_pack("{s:i, s:s, s:I, s:I, s:s, s:o}", "walrev_prune_export", EXPORT_FORMAT, "store_format",
                              "7", "from_revision", (json_int_t)p->oldest, "before_revision", (json_int_t)p->cut,
                              "anchor", res && PQntuples(res) ? PQgetvalue(res, 0, 0) : "", "files", files);
        files = NULL;
        PQclear(res);
        char *path = xasprintf("%s/%s", dir, MANIFEST);
        if (st == WR_OK && json_dump_file(m, path, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
            st = wr_error_set(err, WR_FATAL, "cannot write %s", path);
        free(path);
        json_decref(m);
    }
    json_decref(files);
    return st;
}

/* ---- apply ---- */

static WrStatus apply_plan(ReplayCtx *ctx, const Plan *p, const char *export_dir, WrError *err)
{
    /* The plan's read-only transaction holds locks the drop must wait for: end it. */
    pgio_run_unchecked(ctx->hist, "ROLLBACK");
    PGconn *c = NULL;
    WrStatus st = rq_connect(ctx->hist_conninfo, "history store", &c, err);
    if (st != WR_OK) return st;
    st = rq_run(c, err, "BEGIN ISOLATION LEVEL REPEATABLE READ; " PRUNE_LOCK_TIMEOUT "; SET LOCAL jit = off", 0, NULL);
    if (st == WR_OK && export_dir) st = export_range(ctx, c, p, export_dir, err);
    PGresult *res = NULL;
    if (st == WR_OK) {
        char cut[24];
        snprintf(cut, sizeof(cut), "%" PRId64, p->cut);
        const char *params[2] = {cut, export_dir};
        /* (the prune row is read by a statement of its own: the one that writes it does not see it) */
        PGresult *n = rq_execp(c, err, 2, params, "SELECT count(*) FROM %s.prune_apply($1::bigint, $2)", ctx->schema_q);
        if (!n) st = err->status;
        if (st == WR_OK) {
            const char *kp[2] = {cut, PQgetvalue(n, 0, 0)};
            res = rq_execp(c, err, 2, kp, "SELECT $2::bigint, keyframes FROM %s.prune WHERE before_id = $1::bigint",
                           ctx->schema_q);
            if (!res) st = err->status;
        }
        PQclear(n);
    }
    if (st == WR_OK) st = rq_run(c, err, "COMMIT", 0, NULL);
    if (st == WR_OK)
        fprintf(ctx->out,
                "pruned: %s partitions dropped; history before revision %" PRId64
                " is gone, %s keyframes as of revision "
                "%" PRId64 " and the anchor written%s%s\n",
                PQgetvalue(res, 0, 0), p->cut, PQgetvalue(res, 0, 1), p->cut - 1, export_dir ? "; exported to " : "",
                export_dir ? export_dir : "");
    PQclear(res);
    PQfinish(c);
    return st == WR_OK ? WR_OK : wr_error_prefix(err, "prune: nothing was pruned");
}

/* ---- import ---- */

static WrStatus check_files(const char *dir, json_t *files, WrError *err)
{
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "file"));
        const char *want = json_string_value(json_object_get(f, "sha256"));
        if (!name || !want || strchr(name, '/'))
            return wr_error_set(err, WR_INVALID, "%s/%s: file %zu has no name or sha256", dir, MANIFEST, i);
        char *path = xasprintf("%s/%s", dir, name);
        char sum[65];
        WrStatus st = file_sha256(path, sum, err);
        free(path);
        if (st != WR_OK) return st;
        if (strcmp(sum, want) != 0)
            return wr_error_set(err, WR_INVALID, "%s/%s: SHA-256 %s, the manifest says %s: nothing was imported", dir,
                                name, sum, want);
    }
    return WR_OK;
}

/* Partitions first (in the manifest's order: by range), then the other tables. */
/* An export from a format 6 store holds its keyframes a row per line
 * (keyframe_row.csv): they go through a scratch table of the view's columns
 * into keyframe_pack, which packs them into chunks as the store's upgrade
 * from format 6 does (one pass, not a chunk rewritten per row as writes
 * through the view are). */
static WrStatus load_keyframe_rows(ReplayCtx *ctx, PGconn *c, const char *cols, const char *path, WrError *err)
{
    char *sql = xasprintf("CREATE TEMP TABLE walrev_import_keyframe_row ON COMMIT DROP AS "
                          "SELECT keyframe_id, key, relversion, vals FROM %s.keyframe_row WITH NO DATA",
                          ctx->schema_q);
    WrStatus st = rq_run(c, err, sql, 0, NULL);
    free(sql);
    if (st == WR_OK) st = copy_in(c, "pg_temp.walrev_import_keyframe_row", cols, path, err);
    if (st == WR_OK) {
        sql = xasprintf("SELECT %s.keyframe_pack('SELECT keyframe_id, key, relversion, vals FROM "
                        "pg_temp.walrev_import_keyframe_row', NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
                        ctx->schema_q);
        st = rq_run(c, err, sql, 0, NULL);
        free(sql);
    }
    return st == WR_OK ? WR_OK : wr_error_prefix(err, "packing the format 6 keyframe rows of %s", path);
}

static WrStatus load_files(ReplayCtx *ctx, PGconn *c, const char *dir, json_t *files, WrError *err)
{
    size_t i;
    json_t *f;
    WrStatus st = WR_OK;
    json_array_foreach(files, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "file"));
        const char *table = json_string_value(json_object_get(f, "table"));
        const char *cols = json_string_value(json_object_get(f, "columns"));
        char *qt = table ? store_quote_ident(table) : NULL;
        if (!table || !cols || strcmp(qt, table) != 0) {
            free(qt);
            return wr_error_set(err, WR_INVALID, "%s/%s: entry %zu has no valid table or columns", dir, MANIFEST, i);
        }
        free(qt);
        if (json_object_get(f, "hi")) {
            json_int_t lo = json_integer_value(json_object_get(f, "lo")),
                       hi = json_integer_value(json_object_get(f, "hi"));
            char from[32];
            if (lo <= 1)
                snprintf(from, sizeof(from), "MINVALUE");
            else
                snprintf(from, sizeof(from), "%lld", (long long)lo);
            char *sql =
                xasprintf("CREATE TABLE %1$s.%2$s_p%3$lld PARTITION OF %1$s.%2$s FOR VALUES FROM (%4$s) TO (%5$lld)",
                          ctx->schema_q, table, (long long)(lo < 1 ? 1 : lo), from, (long long)hi);
            st = rq_run(c, err, sql, 0, NULL);
            free(sql);
            if (st != WR_OK)
                return wr_error_prefix(err, "re-creating the partition of %s from revision %lld", table, (long long)lo);
        }
        char *path = xasprintf("%s/%s", dir, name);
        if (strcmp(table, "keyframe_row") == 0) {
            st = load_keyframe_rows(ctx, c, cols, path, err);
        } else {
            char *qtable = xasprintf("%s.%s", ctx->schema_q, table);
            st = copy_in(c, qtable, cols, path, err);
            free(qtable);
        }
        free(path);
        if (st != WR_OK) return st;
    }
    return WR_OK;
}

static WrStatus import_dir(ReplayCtx *ctx, const char *dir, WrError *err)
{
    char *path = xasprintf("%s/%s", dir, MANIFEST);
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    free(path);
    if (!m) return wr_error_set(err, WR_INVALID, "%s/%s: %s (line %d)", dir, MANIFEST, je.text, je.line);
    WrStatus st = WR_OK;
    json_t *files = json_object_get(m, "files");
    json_int_t before = json_integer_value(json_object_get(m, "before_revision"));
    json_int_t from = json_integer_value(json_object_get(m, "from_revision"));
    if (json_integer_value(json_object_get(m, "walrev_prune_export")) != EXPORT_FORMAT || !json_is_array(files) ||
        before < 2)
        st = wr_error_set(err, WR_INVALID, "%s/%s is not a walrev prune export (format %d)", dir, MANIFEST,
                          EXPORT_FORMAT);
    else if (!json_string_value(json_object_get(m, "store_format")) ||
             (strcmp(json_string_value(json_object_get(m, "store_format")), "7") != 0 &&
              strcmp(json_string_value(json_object_get(m, "store_format")), "6") != 0))
        st = wr_error_set(err, WR_INVALID, "%s/%s: not exported from a format 6 or 7 store; this walrev loads those",
                          dir, MANIFEST);
    if (st == WR_OK) st = check_files(dir, files, err);
    PGresult *res = NULL;
    if (st == WR_OK) {
        res = rq_execf(ctx->hist, err, "SELECT coalesce(max(before_id), 0) FROM %s.prune", ctx->schema_q);
        if (!res)
            st = err->status;
        else if (strtoll(PQgetvalue(res, 0, 0), NULL, 10) != before)
            st = wr_error_set(
                err, WR_INVALID, "this export holds revisions %lld to %lld, but the store %s: nothing was imported",
                (long long)from, (long long)before - 1,
                atoll(PQgetvalue(res, 0, 0)) == 0       ? "was not pruned"
                : atoll(PQgetvalue(res, 0, 0)) > before ? "was pruned further since (import the newer export first)"
                                                        : "does not start where it ends");
        PQclear(res);
    }
    if (st == WR_OK) {
        pgio_run_unchecked(ctx->hist, "ROLLBACK");
        PGconn *c = NULL;
        st = rq_connect(ctx->hist_conninfo, "history store", &c, err);
        if (st == WR_OK) st = rq_run(c, err, "BEGIN; " PRUNE_LOCK_TIMEOUT, 0, NULL);
        if (st == WR_OK) st = load_files(ctx, c, dir, files, err);
        if (st == WR_OK) {
            char *sql = xasprintf("DELETE FROM %s.prune WHERE before_id = %lld", ctx->schema_q, (long long)before);
            st = rq_run(c, err, sql, 0, NULL);
            free(sql);
        }
        if (st == WR_OK) st = rq_run(c, err, "COMMIT", 0, NULL);
        PQfinish(c);
        if (st == WR_OK)
            fprintf(
                ctx->out,
                "imported revisions %lld to %lld from %s (%zu files); the history is whole again from revision %lld "
                "(walrev verify proves it)\n",
                (long long)from, (long long)before - 1, dir, json_array_size(files), (long long)from);
    }
    json_decref(m);
    return st;
}

WrStatus cmd_prune(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    PruneArgs a;
    WrStatus st = parse(ctx, argc, argv, &a, err);
    if (st == WR_OK) st = rq_open_history(ctx, err);
    if (st != WR_OK) return st;
    if (a.import_dir) return import_dir(ctx, a.import_dir, err);
    Point pt;
    st = rq_resolve_bounds(ctx, 1, &a.before, &pt, err);
    if (st != WR_OK) return st;
    Plan p;
    st = read_plan(ctx, pt.rev, &p, err);
    if (st == WR_OK && p.cut == 0) {
        fprintf(ctx->out,
                "nothing to prune before revision %" PRId64 ": no whole partition of the history ends at or before it "
                "(partitions hold %" PRId64 " revisions; the oldest revision kept is %" PRId64 ")\n",
                pt.rev, p.step, p.oldest);
    } else if (st == WR_OK) {
        print_plan(ctx, &p);
        if (!a.apply)
            fprintf(ctx->out, "dry run: nothing changed (--apply prunes)\n");
        else
            st = apply_plan(ctx, &p, a.export_dir, err);
    }
    PQclear(p.parts);
    return st;
}
