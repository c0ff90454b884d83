/*
 * test_ident.c — table names as SQL writes them (common/common.h
 * ident_parse_qualified, and ident_is_qualified, the check before a lookup): quoted parts with doubled quotes, bare parts folded
 * to lower case, and every malformed form refused.
 */
#include "tests/support/testsupport.h"

#include "common/common.h"

#include <stdlib.h>
#include <string.h>
#include "tests/support/unit_main.h"

static void expect_name(const char *text, const char *schema, const char *name)
{
    char *s = NULL, *n = NULL;
    assert_true(ident_is_qualified(text));
    assert_true(ident_parse_qualified(text, &s, &n));
    if (schema)
        assert_string_equal(s, schema);
    else
        assert_null(s);
    assert_string_equal(n, name);
    free(s);
    free(n);
}

static void expect_invalid(const char *text)
{
    char *s = (char *)"x", *n = (char *)"x";
    assert_false(ident_is_qualified(text));
    assert_false(ident_parse_qualified(text, &s, &n));
    assert_null(s);
    assert_null(n);
}

static void test_parse(void **state)
{
    (void)state;
    expect_name("orders", NULL, "orders");
    expect_name("Orders", NULL, "orders");
    expect_name("public.Orders", "public", "orders");
    expect_name("\"My Schema\".\"Tab \"\"q\"\"\"", "My Schema", "Tab \"q\"");
    expect_name("\"a.b\".c", "a.b", "c");
    expect_name("s.\"Mixed\"", "s", "Mixed");
    expect_name("\"\"\"\"", NULL, "\"");
    expect_name("tëst", NULL, "tëst");
    expect_invalid("");
    expect_invalid(".t");
    expect_invalid("s.");
    expect_invalid("a.b.c");
    expect_invalid("\"unterminated");
    expect_invalid("\"\"");
    expect_invalid("ab\"c\"");
    expect_invalid("\"a\"b");
    expect_invalid("\"a\".\"b\"x");
}

TS_RUN_TESTS(cmocka_unit_test(test_parse))
