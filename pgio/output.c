/*
 * output.c — prints a query result for people (aligned like psql, with
 * "(N rows)") or for scripts (CSV with a header, a JSON array of objects);
 * one printer for every command that prints rows (replay/, walrev baseline).
 * Values are printed exactly as the server's text form; in JSON, integers
 * and booleans become JSON numbers/booleans, json/jsonb are embedded.
 * Aligned columns are measured in terminal cells (wcwidth under C.UTF-8:
 * East Asian wide characters take two, combining marks none), and NULL is
 * shown as the caller's --null text, so it can differ from an empty string.
 */
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "pgio/output.h"

#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_OID 26
#define OID_JSON 114
#define OID_JSONB 3802

/* C.UTF-8 for wcwidth, whatever the process's locale (walrev never calls
 * setlocale); (locale_t)0 when the C library has none: then a code point is one cell. */
static locale_t utf8_locale(void)
{
    static locale_t loc;
    static bool tried;
    if (!tried) {
        tried = true;
        loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    }
    return loc;
}

/* The next code point of UTF-8 text at *p (advanced); a malformed byte is itself, one cell. */
static uint32_t next_code_point(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t c = s[0];
    int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    if (n <= 0) {
        *p = s + 1;
        return c;
    }
    c &= 0x3Fu >> n;
    for (int i = 1; i <= n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *p = s + 1;
            return s[0];
        }
        c = (c << 6) | (s[i] & 0x3F);
    }
    *p = s + n + 1;
    return c;
}

size_t out_display_width(const char *text)
{
    locale_t loc = utf8_locale();
    locale_t old = loc ? uselocale(loc) : (locale_t)0;
    size_t w = 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        uint32_t c = next_code_point(&p);
        if (c == '\n') {
            w += 2; /* printed as \n */
            continue;
        }
        int cw = loc ? wcwidth((wchar_t)c) : 1;
        w += cw < 0 ? 1 : (size_t)cw; /* a control character: one cell, as the terminal steps over it */
    }
    if (loc) uselocale(old);
    return w;
}

/* How a cell of an aligned table reads: NULL as null_text ("" when NULL). */
static const char *cell_text(const PGresult *res, int r, int c, const char *null_text)
{
    if (PQgetisnull(res, r, c)) return null_text ? null_text : "";
    return PQgetvalue(res, r, c);
}

static void put_cell(FILE *f, const char *s, size_t width, bool right, bool last)
{
    size_t w = out_display_width(s);
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

static void print_aligned(FILE *f, const PGresult *res, const char *null_text)
{
    int nf = PQnfields(res), nt = PQntuples(res);
    size_t *w = xcalloc((size_t)nf + 1, sizeof(size_t));
    for (int c = 0; c < nf; c++) {
        w[c] = out_display_width(PQfname(res, c));
        for (int r = 0; r < nt; r++) {
            size_t x = out_display_width(cell_text(res, r, c, null_text));
            if (x > w[c]) w[c] = x;
        }
    }
    for (int c = 0; c < nf; c++) {
        /* headers centred, as psql does */
        size_t hw = out_display_width(PQfname(res, c));
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
            put_cell(f, cell_text(res, r, c, null_text), w[c], is_numeric_type(PQftype(res, c)), c == nf - 1);
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

bool out_parse_format(const char *name, OutFormat *fmt)
{
    if (strcmp(name, "aligned") == 0)
        *fmt = OUT_ALIGNED;
    else if (strcmp(name, "csv") == 0)
        *fmt = OUT_CSV;
    else if (strcmp(name, "json") == 0)
        *fmt = OUT_JSON;
    else
        return false;
    return true;
}

void out_print_result(FILE *f, const PGresult *res, OutFormat fmt, const char *null_text)
{
    switch (fmt) {
    case OUT_ALIGNED: print_aligned(f, res, null_text); break;
    case OUT_CSV: print_csv(f, res); break;
    case OUT_JSON: print_json(f, res); break;
    }
}
