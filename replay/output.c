/*
 * output.c — prints a query result for people (aligned like psql, with
 * "(N rows)") or for scripts (CSV with a header, a JSON array of objects).
 * Values are printed exactly as the server's text form; in JSON, integers
 * and booleans become JSON numbers/booleans, json/jsonb are embedded.
 */
#include <stdlib.h>
#include <string.h>

#include "replay/internal.h"

#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_OID 26
#define OID_JSON 114
#define OID_JSONB 3802

/* Display width in code points (UTF-8), newlines shown as \n. */
static size_t disp_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            w += 2;
        else if ((*p & 0xC0) != 0x80)
            w++;
    }
    return w;
}

static void put_cell(FILE *f, const char *s, size_t width, bool right, bool last)
{
    size_t w = disp_width(s);
    if (right)
        for (size_t i = w; i < width; i++) fputc(' ', f);
    for (const char *p = s; *p; p++) {
        if (*p == '\n')
            fputs("\\n", f);
        else
            fputc(*p, f);
    }
    if (!right && !last)
        for (size_t i = w; i < width; i++) fputc(' ', f);
}

static bool is_numeric_type(Oid t)
{
    return t == OID_INT2 || t == OID_INT4 || t == OID_INT8 || t == OID_OID || t == 1700;
}

static void print_aligned(FILE *f, const PGresult *res)
{
    int nf = PQnfields(res), nt = PQntuples(res);
    size_t *w = xcalloc((size_t)nf + 1, sizeof(size_t));
    for (int c = 0; c < nf; c++) {
        w[c] = disp_width(PQfname(res, c));
        for (int r = 0; r < nt; r++) {
            size_t x = disp_width(PQgetvalue(res, r, c));
            if (x > w[c]) w[c] = x;
        }
    }
    for (int c = 0; c < nf; c++) {
        /* headers centred, as psql does */
        size_t hw = disp_width(PQfname(res, c));
        size_t left = (w[c] - hw) / 2;
        fputs(c ? " | " : " ", f);
        for (size_t i = 0; i < left; i++) fputc(' ', f);
        put_cell(f, PQfname(res, c), w[c] - left, false, c == nf - 1);
    }
    fputc('\n', f);
    for (int c = 0; c < nf; c++) {
        fputs(c ? "-+-" : "-", f);
        for (size_t i = 0; i < w[c]; i++) fputc('-', f);
    }
    fputc('\n', f);
    for (int r = 0; r < nt; r++) {
        for (int c = 0; c < nf; c++) {
            fputs(c ? " | " : " ", f);
            put_cell(f, PQgetvalue(res, r, c), w[c], is_numeric_type(PQftype(res, c)), c == nf - 1);
        }
        fputc('\n', f);
    }
    fprintf(f, "(%d row%s)\n", nt, nt == 1 ? "" : "s");
    free(w);
}

static void csv_field(FILE *f, const char *s, bool is_null)
{
    if (is_null) return; /* NULL is an empty unquoted field, "" an empty string */
    bool quote = s[0] == '\0' || strpbrk(s, ",\"\r\n") != NULL;
    if (!quote) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (const char *p = s; *p; p++) {
        if (*p == '"') fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

static void print_csv(FILE *f, const PGresult *res)
{
    int nf = PQnfields(res), nt = PQntuples(res);
    for (int c = 0; c < nf; c++) {
        if (c) fputc(',', f);
        csv_field(f, PQfname(res, c), false);
    }
    fputc('\n', f);
    for (int r = 0; r < nt; r++) {
        for (int c = 0; c < nf; c++) {
            if (c) fputc(',', f);
            csv_field(f, PQgetvalue(res, r, c), PQgetisnull(res, r, c));
        }
        fputc('\n', f);
    }
}

void out_json_row(StrBuf *b, const PGresult *res, int row)
{
    int nf = PQnfields(res);
    strbuf_append_char(b, '{');
    for (int c = 0; c < nf; c++) {
        if (c) strbuf_append_char(b, ',');
        const char *name = PQfname(res, c);
        strbuf_append_json_string(b, name, strlen(name));
        strbuf_append_char(b, ':');
        if (PQgetisnull(res, row, c)) {
            strbuf_append_str(b, "null");
            continue;
        }
        const char *v = PQgetvalue(res, row, c);
        Oid t = PQftype(res, c);
        if (t == OID_INT2 || t == OID_INT4 || t == OID_INT8 || t == OID_OID)
            strbuf_append_str(b, v);
        else if (t == OID_BOOL)
            strbuf_append_str(b, v[0] == 't' ? "true" : "false");
        else if (t == OID_JSON || t == OID_JSONB)
            strbuf_append_str(b, v);
        else
            strbuf_append_json_string(b, v, strlen(v));
    }
    strbuf_append_char(b, '}');
}

static void print_json(FILE *f, const PGresult *res)
{
    StrBuf b;
    strbuf_init(&b);
    int nt = PQntuples(res);
    strbuf_append_char(&b, '[');
    for (int r = 0; r < nt; r++) {
        strbuf_append_str(&b, r ? ",\n" : "\n");
        out_json_row(&b, res, r);
    }
    strbuf_append_str(&b, nt ? "\n]\n" : "]\n");
    fwrite(b.data, 1, b.len, f);
    strbuf_free(&b);
}

void out_print_result(FILE *f, const PGresult *res, OutFormat fmt)
{
    switch (fmt) {
    case OUT_ALIGNED: print_aligned(f, res); break;
    case OUT_CSV: print_csv(f, res); break;
    case OUT_JSON: print_json(f, res); break;
    }
}
