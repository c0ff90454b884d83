/*
 * fold.c — the CLI's fast snapshot of an older revision: the server streams
 * the keyframe's rows and the deltas since, merged and sorted by key (binary
 * COPY), and this folds each key's run into its row as of the revision — the
 * same rule as snapshot_rows() (replay.sql) without its per-row executor
 * cost. Memory holds one key's run at a time. Used only when no UPDATE in the
 * range changed a key (snapshot_plan says so); otherwise snapshot_rows runs.
 */
#include <stdlib.h>
#include <string.h>

#include "replay/internal.h"

/* The binary COPY stream, reassembled across CopyData messages. */
typedef struct {
    StrBuf buf;
    size_t pos;
    bool header_done;
} CopyStream;

/* One folded row: vals[col_id], col_id from 1, NULL = SQL NULL. Values point into owned copies. */
typedef struct {
    int maxcol;
    char **vals;
    bool present;
    char *key;
} Row;

static uint32_t rd32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void row_clear(Row *r)
{
    for (int i = 1; i <= r->maxcol; i++) {
        free(r->vals[i]);
        r->vals[i] = NULL;
    }
}

static void row_set(Row *r, int col, const unsigned char *v, int32_t len)
{
    if (col < 1 || col > r->maxcol) return; /* a column id no version has: nothing shows it */
    free(r->vals[col]);
    r->vals[col] = len < 0 ? NULL : xstrndup((const char *)v, (size_t)len);
}

/* One binary array field: call fn for each element with its 1-based index. */
typedef struct {
    int32_t ndim;
    int32_t lbound;
    int32_t n;
    const unsigned char *elems; /* next element: int32 length, then the bytes */
    const unsigned char *end;
} BinArray;

static bool array_open(const unsigned char *p, int32_t len, BinArray *a)
{
    memset(a, 0, sizeof(*a));
    if (len < 12) return false;
    a->ndim = (int32_t)rd32(p);
    if (a->ndim == 0) {
        a->elems = a->end = p + len;
        return true;
    }
    if (a->ndim != 1 || len < 20) return false;
    a->n = (int32_t)rd32(p + 12);
    a->lbound = (int32_t)rd32(p + 16);
    a->elems = p + 20;
    a->end = p + len;
    return true;
}

/* Next element into v and vlen (vlen -1 for NULL); false at the end or on a malformed array. */
static bool array_next(BinArray *a, const unsigned char **v, int32_t *vlen)
{
    if (a->elems + 4 > a->end) return false;
    *vlen = (int32_t)rd32(a->elems);
    a->elems += 4;
    *v = a->elems;
    if (*vlen > 0) {
        if (a->elems + *vlen > a->end) return false;
        a->elems += *vlen;
    }
    return true;
}

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

static void emit_row(const Row *r, const RelVersion *rv, bool csv, StrBuf *line)
{
    strbuf_reset(line);
    for (int i = 0; i < rv->ncols; i++) {
        if (i) strbuf_append_char(line, csv ? ',' : '\t');
        int c = rv->col_ids[i];
        const char *v = c >= 1 && c <= r->maxcol ? r->vals[c] : NULL;
        if (csv)
            append_csv(line, v);
        else if (!v)
            strbuf_append(line, "\\N", 2);
        else
            append_copy_text(line, v);
    }
    strbuf_append_char(line, '\n');
}

WrStatus fold_snapshot(ReplayCtx *ctx, const RelVersion *rv, int64_t rev, const char *kf_id, const char *from_rev,
                       const char *cut_rev, const char *cut_seq, bool csv, FoldSink sink, void *sink_arg,
                       long long *rows, WrError *err)
{
    /*
     * src 0: the keyframe row (vals indexed by col_id); src 1: a delta
     * (op, col_ids, new_values) at (revision, seq). One sort: by key in "C"
     * order (only equality matters here), keyframe first, then commit order.
     */
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "COPY (SELECT kr.key COLLATE \"C\" AS key, 0 AS src, 0::bigint AS rev, 0 AS seq, ' '::\"char\" AS op, "
                   "NULL::smallint[] AS ids, kr.vals "
                   "FROM %1$s.keyframe_row kr WHERE kr.keyframe_id = %2$s "
                   "UNION ALL "
                   "SELECT od.key COLLATE \"C\", 1, od.revision_id, od.seq, od.op, "
                   "od.col_ids, od.new_values FROM %1$s.object_delta od "
                   "WHERE od.revision_id > %3$s AND od.revision_id <= %4$lld AND od.relid = %5$u "
                   "AND od.op <> 'T' AND od.key IS NOT NULL AND NOT (od.revision_id = %6$s AND od.seq <= %7$s) "
                   "ORDER BY 1, 2, 3, 4) TO STDOUT (FORMAT binary)",
                   ctx->schema_q, kf_id ? kf_id : "NULL", from_rev, (long long)rev, rv->relid, cut_rev, cut_seq);
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
    Row row = {0};
    row.maxcol = maxcol;
    row.vals = xcalloc((size_t)maxcol + 1, sizeof(char *));
    CopyStream cs = {0};
    strbuf_init(&cs.buf);
    StrBuf line;
    strbuf_init(&line);
    WrStatus st = WR_OK;
    bool have_key = false, done = false;
    char *msg;
    int n;
    while ((n = PQgetCopyData(ctx->hist, &msg, 0)) > 0) {
        if (st == WR_OK && !done) {
            strbuf_append(&cs.buf, msg, (size_t)n);
            const unsigned char *b = (const unsigned char *)cs.buf.data;
            for (;;) {
                size_t avail = cs.buf.len - cs.pos;
                const unsigned char *p = b + cs.pos;
                if (!cs.header_done) {
                    if (avail < 19) break;
                    if (memcmp(p, "PGCOPY\n\377\r\n\0", 11) != 0) {
                        st = wr_error_set(err, WR_PROTOCOL, "snapshot: not a binary COPY stream");
                        break;
                    }
                    uint32_t ext = rd32(p + 15);
                    if (avail < 19 + (size_t)ext) break;
                    cs.pos += 19 + ext;
                    cs.header_done = true;
                    continue;
                }
                if (avail < 2) break;
                int16_t nf = (int16_t)((p[0] << 8) | p[1]);
                if (nf == -1) {
                    done = true;
                    break;
                }
                if (nf != 7) {
                    st = wr_error_set(err, WR_PROTOCOL, "snapshot: %d fields in a COPY row, expected 7", nf);
                    break;
                }
                /* is the whole tuple here? */
                size_t off = 2;
                const unsigned char *f[7];
                int32_t fl[7];
                bool whole = true;
                for (int i = 0; i < 7; i++) {
                    if (avail < off + 4) {
                        whole = false;
                        break;
                    }
                    fl[i] = (int32_t)rd32(p + off);
                    off += 4;
                    f[i] = p + off;
                    if (fl[i] > 0) {
                        if (avail < off + (size_t)fl[i]) {
                            whole = false;
                            break;
                        }
                        off += (size_t)fl[i];
                    }
                }
                if (!whole) break;
                cs.pos += off;
                /* a new key ends the previous run */
                if (!have_key || (size_t)fl[0] != strlen(row.key) || memcmp(f[0], row.key, (size_t)fl[0]) != 0) {
                    if (have_key && row.present) {
                        emit_row(&row, rv, csv, &line);
                        if ((st = sink(sink_arg, line.data, line.len, err)) != WR_OK) break;
                        (*rows)++;
                    }
                    row_clear(&row);
                    free(row.key);
                    row.key = xstrndup((const char *)f[0], fl[0] > 0 ? (size_t)fl[0] : 0);
                    row.present = false;
                    have_key = true;
                }
                int32_t src = fl[1] == 4 ? (int32_t)rd32(f[1]) : -1;
                char op = fl[4] == 1 ? (char)f[4][0] : '?';
                BinArray ids, vals;
                const unsigned char *v;
                int32_t vlen;
                if (src == 0) {
                    if (!array_open(f[6], fl[6], &vals)) goto malformed;
                    int32_t idx = vals.lbound;
                    while (array_next(&vals, &v, &vlen)) row_set(&row, idx++, v, vlen);
                    row.present = true;
                } else if (op == 'D') {
                    row_clear(&row);
                    row.present = false;
                } else if (op == 'I' || op == 'U' || op == 'S') {
                    if (op != 'U') row_clear(&row); /* an insert is the whole row */
                    row.present = true;
                    if (fl[5] < 0) continue; /* no attributes */
                    if (!array_open(f[5], fl[5], &ids)) goto malformed;
                    bool have_vals = fl[6] >= 0 && array_open(f[6], fl[6], &vals);
                    const unsigned char *iv;
                    int32_t ilen;
                    while (array_next(&ids, &iv, &ilen)) {
                        if (ilen != 2) goto malformed;
                        int col = (int16_t)((iv[0] << 8) | iv[1]);
                        if (have_vals && array_next(&vals, &v, &vlen))
                            row_set(&row, col, v, vlen);
                        else
                            row_set(&row, col, NULL, -1); /* new_values NULL: every value NULL */
                    }
                }
                continue;
            malformed:
                st = wr_error_set(err, WR_PROTOCOL, "snapshot: malformed array in the COPY stream of %s.%s",
                                  rv->nspname, rv->relname);
                break;
            }
            /* drop what was consumed */
            if (cs.pos > 0) {
                memmove(cs.buf.data, cs.buf.data + cs.pos, cs.buf.len - cs.pos);
                cs.buf.len -= cs.pos;
                cs.buf.data[cs.buf.len] = '\0';
                cs.pos = 0;
            }
        }
        PQfreemem(msg);
    }
    if (st == WR_OK && have_key && row.present) {
        emit_row(&row, rv, csv, &line);
        if ((st = sink(sink_arg, line.data, line.len, err)) == WR_OK) (*rows)++;
    }
    res = PQgetResult(ctx->hist);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && st == WR_OK) {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        st = wr_error_set(err, WR_FATAL, "snapshot of %s.%s: %s", rv->nspname, rv->relname,
                          m ? m : PQerrorMessage(ctx->hist));
    }
    PQclear(res);
    while ((res = PQgetResult(ctx->hist)) != NULL) PQclear(res);
    if (st == WR_OK && !done)
        st = wr_error_set(err, WR_PROTOCOL, "snapshot of %s.%s: the COPY stream ended early", rv->nspname, rv->relname);
    row_clear(&row);
    free(row.vals);
    free(row.key);
    strbuf_free(&cs.buf);
    strbuf_free(&line);
    return st;
}
