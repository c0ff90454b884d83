/*
 * source_cast.c — values the source casts for the worker (baseline.h,
 * baseline_cast_values): the text of a column's values after an ALTER
 * COLUMN ... TYPE, as the source's own casts and output functions make it.
 * Reads only; every transaction it opens is rolled back.
 */
#include "baseline/baseline.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "pgio/pgio.h"

/* in as a text[] literal: every element quoted, NULL for SQL NULL. */
static void append_text_array(StrBuf *b, size_t n, const Value *in)
{
    strbuf_append_char(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) strbuf_append_char(b, ',');
        if (!in[i].data) {
            strbuf_append_str(b, "NULL");
            continue;
        }
        strbuf_append_char(b, '"');
        for (size_t j = 0; j < in[i].len; j++) {
            char ch = in[i].data[j];
            if (ch == '"' || ch == '\\') strbuf_append_char(b, '\\');
            strbuf_append_char(b, ch);
        }
        strbuf_append_char(b, '"');
    }
    strbuf_append_char(b, '}');
}

/* One read-only transaction on the catalog connection, rolled back (see baseline.h). */
WrStatus baseline_cast_values(PGconn *c, uint32_t from_oid, int32_t from_typmod, uint32_t to_oid, int32_t to_typmod,
                              const char *timezone, size_t n, const Value *in, char **out, WrError *err)
{
    WrStatus st;
    char fo[16], ft[16], to[16], tt[16];
    snprintf(fo, sizeof(fo), "%u", from_oid);
    snprintf(ft, sizeof(ft), "%d", from_typmod);
    snprintf(to, sizeof(to), "%u", to_oid);
    snprintf(tt, sizeof(tt), "%d", to_typmod);
    PGresult *r = NULL;
    StrBuf q, arr;
    strbuf_init(&q);
    strbuf_init(&arr);
    st = pgio_run(c, "BEGIN READ ONLY", 0, NULL, NULL, err, "source catalog: converting retyped values");
    if (st != WR_OK) goto out;
    const char *tp[4] = {fo, ft, to, tt};
    st = pgio_run(c,
                  "SELECT format_type($1::oid, $2::int), format_type($3::oid, $4::int), "
                  "format_type($3::oid, NULL)",
                  4, tp, &r, err, "source catalog: naming retyped types");
    if (st != WR_OK) goto rollback;
    strbuf_appendf(&q, "SELECT array_agg((x::%s)::%s ORDER BY o) FROM unnest($1::text[]) WITH ORDINALITY u(x, o)",
                   PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
    char *to_base = xstrdup(PQgetvalue(r, 0, 2));
    PQclear(r);
    r = NULL;
    if (timezone) {
        const char *zp[1] = {timezone};
        st = pgio_run(c, "SELECT set_config('TimeZone', $1, true)", 1, zp, NULL, err,
                      "source catalog: taking the DDL's time zone");
    }
    append_text_array(&arr, n, in);
    const char *ap[1] = {arr.data};
    if (st == WR_OK)
        st = pgio_exec_binary(c, q.data, 1, ap, &r) ? WR_OK
                                                    : pgio_fail(c, r, err, "source catalog: casting retyped values");
    if (st == WR_OK) st = pgio_run(c, "SET LOCAL TimeZone TO DEFAULT", 0, NULL, NULL, err, "source catalog: time zone");
    if (st == WR_OK && (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)))
        st = wr_error_set(err, WR_FATAL, "source catalog: casting retyped values returned no array");
    if (st == WR_OK) {
        /* the binary array back as each element's text, under the session's settings */
        strbuf_reset(&q);
        /* format %s: the type's output function (a cast to text is not that for every type: bool) */
        strbuf_appendf(&q,
                       "SELECT CASE WHEN num_nulls(x) = 1 THEN NULL ELSE format('%%s', x) END "
                       "FROM unnest($1::%s[]) WITH ORDINALITY u(x, o) ORDER BY o",
                       to_base);
        const char *bv[1] = {PQgetvalue(r, 0, 0)};
        int bl[1] = {PQgetlength(r, 0, 0)}, bf[1] = {1};
        PGresult *t;
        if (!pgio_exec_params(c, q.data, 1, bv, bl, bf, &t)) {
            st = pgio_fail(c, t, err, "source catalog: writing retyped values");
        } else if ((size_t)PQntuples(t) != n) {
            st = wr_error_set(err, WR_FATAL, "source catalog: %d retyped values for %zu", PQntuples(t), n);
        } else {
            for (size_t i = 0; i < n; i++)
                out[i] = PQgetisnull(t, (int)i, 0) ? NULL : xstrdup(PQgetvalue(t, (int)i, 0));
        }
        PQclear(t);
    }
    free(to_base);
rollback:
    PQclear(r);
    r = NULL;
    {
        WrError ignored;
        if (pgio_run(c, "ROLLBACK", 0, NULL, NULL, &ignored, "source catalog: rollback") != WR_OK && st == WR_OK)
            st = wr_error_set(err, WR_RETRY, "%s", ignored.msg);
    }
    /* the caller makes a lost connection again */
    if (PQstatus(c) != CONNECTION_OK && st != WR_OK) err->status = st = WR_RETRY;
out:
    strbuf_free(&q);
    strbuf_free(&arr);
    return st;
}
