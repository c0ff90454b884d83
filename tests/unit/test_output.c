/*
 * test_output.c — unit tests of pgio/output.c, table-driven with exact
 * expected text: aligned tables (NULL as --null's text or empty, numbers
 * right-aligned, columns measured in terminal cells: wide CJK two, combining
 * marks none), CSV (NULL empty and unquoted, "" quoted) and JSON (null,
 * numbers), and the display width of single strings. Results are built
 * client-side (PQmakeEmptyPGresult), no server is involved.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pgio/output.h"
#include "tests/support/unit_main.h"

#define OID_INT4 23
#define OID_TEXT 25
#define MAXCOLS 4

typedef struct {
    const char *name;
    int ncols;
    const char *cols[MAXCOLS];
    unsigned types[MAXCOLS];
    int nrows;
    const char *rows[4][MAXCOLS]; /* NULL: SQL NULL */
    OutFormat fmt;
    const char *null_text;
    const char *want;
} OutCase;

static const OutCase CASES[] = {
    {"aligned, NULL as --null text, empty string empty",
     2,
     {"id", "name"},
     {OID_INT4, OID_TEXT},
     3,
     {{"1", "a"}, {"2", NULL}, {"10", ""}},
     OUT_ALIGNED,
     "(null)",
     " id |  name\n"
     "----+-------\n"
     "  1 | a\n"
     "  2 | (null)\n"
     " 10 | \n"
     "(3 rows)\n"},
    {"aligned, NULL empty without --null (psql's default)",
     2,
     {"id", "name"},
     {OID_INT4, OID_TEXT},
     3,
     {{"1", "a"}, {"2", NULL}, {"10", ""}},
     OUT_ALIGNED,
     NULL,
     " id | name\n"
     "----+-----\n"
     "  1 | a\n"
     "  2 | \n"
     " 10 | \n"
     "(3 rows)\n"},
    {"aligned, wide and combining characters measured in cells",
     2,
     {"v", "n"},
     {OID_TEXT, OID_INT4},
     3,
     {{"\xe6\x97\xa5\xe6\x9c\xac", "1"}, {"e\xcc\x81", "2"}, {"ab", "3"}},
     OUT_ALIGNED,
     NULL,
     "  v   | n\n"
     "------+--\n"
     " \xe6\x97\xa5\xe6\x9c\xac | 1\n"
     " e\xcc\x81    | 2\n"
     " ab   | 3\n"
     "(3 rows)\n"},
    {"aligned, a newline shown as \\n and counted as two cells",
     1,
     {"t"},
     {OID_TEXT},
     2,
     {{"a\nb"}, {"x"}},
     OUT_ALIGNED,
     "-",
     "  t\n"
     "-----\n"
     " a\\nb\n"
     " x\n"
     "(2 rows)\n"},
    {"aligned, one row, no rows",
     1,
     {"id"},
     {OID_INT4},
     1,
     {{"7"}},
     OUT_ALIGNED,
     NULL,
     " id\n"
     "---\n"
     "  7\n"
     "(1 row)\n"},
    {"csv, NULL empty and unquoted, empty string quoted",
     2,
     {"id", "name"},
     {OID_INT4, OID_TEXT},
     3,
     {{"1", "a,b"}, {"2", NULL}, {"10", ""}},
     OUT_CSV,
     "(null)",
     "id,name\n"
     "1,\"a,b\"\n"
     "2,\n"
     "10,\"\"\n"},
    {"json, null and numbers",
     2,
     {"id", "name"},
     {OID_INT4, OID_TEXT},
     3,
     {{"1", "a"}, {"2", NULL}, {"10", ""}},
     OUT_JSON,
     "(null)",
     "[\n"
     "{\"id\":1,\"name\":\"a\"},\n"
     "{\"id\":2,\"name\":null},\n"
     "{\"id\":10,\"name\":\"\"}\n"
     "]\n"},
    {"json, no rows", 1, {"id"}, {OID_INT4}, 0, {{NULL}}, OUT_JSON, NULL, "[]\n"},
};

static PGresult *make_result(const OutCase *c)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    assert_non_null(res);
    PGresAttDesc atts[MAXCOLS];
    char names[MAXCOLS][32]; /* libpq takes char *, copies them */
    memset(atts, 0, sizeof atts);
    for (int i = 0; i < c->ncols; i++) {
        snprintf(names[i], sizeof names[i], "%s", c->cols[i]);
        atts[i].name = names[i];
        atts[i].typid = c->types[i];
        atts[i].typlen = c->types[i] == OID_INT4 ? 4 : -1;
        atts[i].atttypmod = -1;
    }
    assert_int_equal(PQsetResultAttrs(res, c->ncols, atts), 1);
    for (int r = 0; r < c->nrows; r++)
        for (int i = 0; i < c->ncols; i++) {
            char *v = c->rows[r][i] ? strdup(c->rows[r][i]) : NULL; /* libpq copies it */
            assert_int_equal(PQsetvalue(res, r, i, v, v ? (int)strlen(v) : -1), 1);
            free(v);
        }
    return res;
}

static void test_print_cases(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++) {
        const OutCase *c = &CASES[k];
        PGresult *res = make_result(c);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        assert_non_null(f);
        out_print_result(f, res, c->fmt, c->null_text);
        fclose(f);
        if (strcmp(buf, c->want) != 0) print_error("case \"%s\":\n--- want\n%s--- got\n%s", c->name, c->want, buf);
        assert_string_equal(buf, c->want);
        free(buf);
        PQclear(res);
    }
}

static void test_display_width(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t cells;
    } W[] = {
        {"", 0},
        {"abc", 3},
        {"\xe6\x97\xa5\xe6\x9c\xac", 4}, /* 日本: East Asian wide */
        {"e\xcc\x81", 1},                /* e + COMBINING ACUTE ACCENT */
        {"\xc3\xa9", 1},                 /* é precomposed */
        {"\xef\xbc\xa1", 2},             /* FULLWIDTH LATIN CAPITAL A */
        {"\xed\x95\x9c", 2},             /* 한: Hangul syllable */
        {"a\xe2\x80\x8b"
         "b",
         2},         /* ZERO WIDTH SPACE */
        {"a\nb", 4}, /* printed as a\nb */
        {"\xff", 1}, /* a malformed byte: one cell */
    };
    for (size_t i = 0; i < sizeof W / sizeof W[0]; i++) {
        size_t got = out_display_width(W[i].text);
        if (got != W[i].cells) print_error("width of case %zu: want %zu, got %zu\n", i, W[i].cells, got);
        assert_int_equal(got, W[i].cells);
    }
}

TS_RUN_TESTS(cmocka_unit_test(test_print_cases), cmocka_unit_test(test_display_width))
