/*
 * fold.c — the CLI's fast snapshot: the server streams the keyframe's rows
 * and the deltas since, merged and sorted by key (binary COPY), and the row
 * fold (schema/rowfold.h) turns each key's run into its row as of the
 * revision, printed here as COPY text or CSV in the columns of that time.
 * Used only when no UPDATE in the range changed a key (snapshot_plan says
 * so); otherwise snapshot_rows runs.
 */
#include <stdlib.h>
#include <string.h>

#include "replay/internal.h"
#include "schema/rowfold.h"

/* PostgreSQL's COPY text escaping (CopyAttributeOutText), byte for byte. */
static void append_copy_text(StrBuf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        const char *esc = NULL;
        switch (*p) {
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\v': esc = "\\v"; break;
        default: break;
        }
        if (esc)
            strbuf_append(b, esc, 2);
        else
            strbuf_append_char(b, *p);
    }
}

/* PostgreSQL's CSV quoting: NULL empty and unquoted; "" and values with , " CR LF quoted. */
static void append_csv(StrBuf *b, const char *s)
{
    if (!s) return;
    if (s[0] != '\0' && !strpbrk(s, ",\"\r\n")) {
        strbuf_append_str(b, s);
        return;
    }
    strbuf_append_char(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"') strbuf_append_char(b, '"');
        strbuf_append_char(b, *p);
    }
    strbuf_append_char(b, '"');
}

typedef struct {
    const RelVersion *rv;
    bool csv;
    StrBuf line;
    FoldSink sink;
    void *sink_arg;
} FoldOut;

static WrStatus emit_row(void *arg, const char *key, size_t key_len, const char *const *vals, const bool *known,
                         int maxcol, bool based, WrError *err)
{
    (void)key;
    (void)key_len;
    (void)known;
    (void)based;
    FoldOut *o = arg;
    StrBuf *line = &o->line;
    strbuf_reset(line);
    for (int i = 0; i < o->rv->ncols; i++) {
        if (i) strbuf_append_char(line, o->csv ? ',' : '\t');
        int c = o->rv->col_ids[i];
        const char *v = c >= 1 && c <= maxcol ? vals[c] : NULL;
        if (o->csv)
            append_csv(line, v);
        else if (!v)
            strbuf_append(line, "\\N", 2);
        else
            append_copy_text(line, v);
    }
    strbuf_append_char(line, '\n');
    return o->sink(o->sink_arg, line->data, line->len, err);
}

WrStatus fold_snapshot(ReplayCtx *ctx, const RelVersion *rv, int64_t rev, const char *kf_id, const char *from_rev,
                       const char *cut_rev, const char *cut_seq, bool csv, FoldSink sink, void *sink_arg,
                       long long *rows, WrError *err)
{
    StrBuf q;
    strbuf_init(&q);
    rowfold_query(&q, ctx->schema_q, rv->relid, kf_id, from_rev, rev, cut_rev, cut_seq);
    PGresult *res = PQexec(ctx->hist, q.data);
    strbuf_free(&q);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        wr_error_set(err, WR_FATAL, "snapshot of %s.%s: %s", rv->nspname, rv->relname, m ? m : PQerrorMessage(ctx->hist));
        PQclear(res);
        return err->status;
    }
    PQclear(res);

    int maxcol = 0;
    for (int i = 0; i < rv->ncols; i++)
        if (rv->col_ids[i] > maxcol) maxcol = rv->col_ids[i];
    FoldOut out = {rv, csv, {0}, sink, sink_arg};
    strbuf_init(&out.line);
    RowFold *fold = rowfold_create(maxcol, emit_row, &out);
    WrStatus st = WR_OK;
    char *msg;
    int n;
    while ((n = PQgetCopyData(ctx->hist, &msg, 0)) > 0) {
        /* after an error, drain the stream so the connection stays usable */
        if (st == WR_OK) st = rowfold_feed(fold, msg, (size_t)n, err);
        PQfreemem(msg);
    }
    if (st == WR_OK) st = rowfold_finish(fold, err);
    *rows = rowfold_rows(fold);
    res = PQgetResult(ctx->hist);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && st == WR_OK) {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        st = wr_error_set(err, WR_FATAL, "snapshot of %s.%s: %s", rv->nspname, rv->relname,
                          m ? m : PQerrorMessage(ctx->hist));
    }
    PQclear(res);
    while ((res = PQgetResult(ctx->hist)) != NULL) PQclear(res);
    if (st == WR_PROTOCOL) wr_error_prefix(err, "snapshot of %s.%s", rv->nspname, rv->relname);
    rowfold_destroy(fold);
    strbuf_free(&out.line);
    return st;
}
