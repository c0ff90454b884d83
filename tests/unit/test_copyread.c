/*
 * test_copyread.c — reading binary COPY framing: the header is taken only
 * whole and refused with another signature; a tuple is split into its fields
 * (NULL as length -1, empty as 0) only once every byte of it is there; the
 * field count reads -1 at the trailer.
 */
#include "tests/support/testsupport.h"

#include "schema/copyread.h"

#include <string.h>
#include "tests/support/unit_main.h"

static const unsigned char header[] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0, /* signature */
                                       0,   0,   0,   0,                                        /* flags */
                                       0,   0,   0,   3,                                        /* extension length */
                                       'x', 'y', 'z'};

static void test_header(void **state)
{
    (void)state;
    size_t len = 0;
    for (size_t avail = 0; avail < sizeof(header); avail++) assert_int_equal(copyread_header(header, avail, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(copyread_header(header, sizeof(header), &len), 1);
    assert_int_equal(len, 22);
    unsigned char bad[sizeof(header)];
    memcpy(bad, header, sizeof(header));
    bad[0] = 'Q';
    assert_int_equal(copyread_header(bad, 18, &len), 0); /* not judged before the fixed part is there */
    assert_int_equal(copyread_header(bad, 19, &len), -1);
}

static void test_tuple(void **state)
{
    (void)state;
    /* 3 fields: "ab", NULL, "" */
    static const unsigned char t[] = {0, 3, 0, 0, 0, 2, 'a', 'b', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff};
    const size_t whole = sizeof(t) - 2; /* the trailer follows */
    assert_int_equal(copyread_field_count(t), 3);
    assert_int_equal(copyread_field_count(t + whole), -1);
    const unsigned char *f[3];
    int32_t fl[3];
    for (size_t avail = 0; avail < whole; avail++) assert_int_equal(copyread_tuple(t, avail, 3, f, fl), 0);
    assert_int_equal(copyread_tuple(t, whole, 3, f, fl), whole);
    assert_int_equal(fl[0], 2);
    assert_memory_equal(f[0], "ab", 2);
    assert_int_equal(fl[1], -1);
    assert_int_equal(fl[2], 0);
    assert_ptr_equal(f[2], t + whole);
    /* fewer fields asked for: the tuple ends sooner */
    assert_int_equal(copyread_tuple(t, sizeof(t), 1, f, fl), 8);
}

TS_RUN_TESTS(cmocka_unit_test(test_header), cmocka_unit_test(test_tuple))
