/*
 * pgo_expect.c — the checks of pgo_expect.h.
 */
#include "tests/support/pgo_expect.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

PgoRelColumn ts_expect_column(PgoRelColumnIter *it, const char *name, uint32_t type_oid)
{
    PgoRelColumn c;
    assert_true(pgo_relation_next_column(it, &c));
    assert_string_equal(c.name, name);
    assert_int_equal(c.type_oid, type_oid);
    return c;
}
