/* test_rowcache.c — the row cache's images and its "absent" entries (objects a
 * batched lookup found no row of). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "schema/rowcache.h"
#include "tests/support/unit_main.h"

static RelColumn g_cols[2] = {
    {.name = "id", .is_key = true, .col_id = 1, .track = TRACK_FULL},
    {.name = "v", .col_id = 2, .track = TRACK_FULL},
};
static RelationVersion g_rv = {.relid = 42, .version = 1, .ncols = 2, .cols = g_cols};

static void put_row(RowCache *c, const char *key, const char *v)
{
    Value vals[2] = {{key, strlen(key)}, {v, strlen(v)}};
    uint8_t unknown[2] = {0, 0};
    RowImage img = {&g_rv, vals, unknown};
    rowcache_put(c, &g_rv, key, &img);
}

static bool get_row(RowCache *c, const char *key, char *v, size_t size)
{
    Value vals[2];
    uint8_t unknown[2];
    RowImage img = {&g_rv, vals, unknown};
    if (!rowcache_get(c, &g_rv, key, &img)) return false;
    snprintf(v, size, "%.*s", (int)vals[1].len, vals[1].data);
    return true;
}

static void test_absent(void **state)
{
    (void)state;
    RowCache *c = rowcache_create(1 << 20);
    char v[32];
    assert_false(rowcache_contains(c, 42, "k1"));
    rowcache_put_absent(c, 42, "k1");
    /* absent: a miss for get, known to contains and is_absent */
    assert_true(rowcache_contains(c, 42, "k1"));
    assert_true(rowcache_is_absent(c, 42, "k1"));
    assert_false(get_row(c, "k1", v, sizeof(v)));
    assert_false(rowcache_is_absent(c, 43, "k1"));
    assert_false(rowcache_is_absent(c, 42, "k2"));
    /* a put replaces it */
    put_row(c, "k1", "one");
    assert_false(rowcache_is_absent(c, 42, "k1"));
    assert_true(get_row(c, "k1", v, sizeof(v)));
    assert_string_equal(v, "one");
    assert_int_equal(rowcache_count(c), 1);
    /* remove and remove_relation drop it */
    rowcache_put_absent(c, 42, "k2");
    rowcache_remove(c, 42, "k2");
    assert_false(rowcache_contains(c, 42, "k2"));
    rowcache_put_absent(c, 42, "k3");
    rowcache_remove_relation(c, 42);
    assert_false(rowcache_contains(c, 42, "k3"));
    assert_false(rowcache_contains(c, 42, "k1"));
    assert_int_equal(rowcache_count(c), 0);
    assert_int_equal(rowcache_bytes(c), 0);
    rowcache_destroy(c);
}

static void test_budget(void **state)
{
    (void)state;
    /* absent entries count against the budget and are evicted like images */
    RowCache *c = rowcache_create(4096);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        if (i % 2)
            rowcache_put_absent(c, 42, key);
        else
            put_row(c, key, "value");
        assert_true(rowcache_bytes(c) <= 4096);
    }
    assert_true(rowcache_contains(c, 42, "key-999"));
    assert_true(rowcache_is_absent(c, 42, "key-999"));
    assert_false(rowcache_contains(c, 42, "key-1"));
    rowcache_destroy(c);
}

TS_RUN_TESTS(cmocka_unit_test(test_absent), cmocka_unit_test(test_budget))
