/* test_digest.c — keyed digests (schema/digest.h): a row's identity digest
 * depends on its tracked visible values and the key, not on NULL columns,
 * hidden or untracked ones, or column order of equal names; a value digest
 * tells NULL from the empty string and is not the plain SHA-256. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "schema/digest.h"
#include "tests/support/unit_main.h"

static RelColumn g_cols[4] = {
    {.name = "a", .col_id = 1, .track = TRACK_FULL},
    {.name = "b", .col_id = 2, .track = TRACK_FULL},
    {.name = "secret", .col_id = 3, .track = TRACK_HIDDEN},
    {.name = "seen", .col_id = 4, .track = TRACK_UNTRACKED},
};
static RelationVersion g_rv = {.relid = 7, .version = 1, .ncols = 4, .cols = g_cols};

static Value v(const char *s) { return (Value){s, s ? strlen(s) : 0}; }

static void row(const DigestKey *k, const RelationVersion *rv, const char *a, const char *b, const char *secret,
                const char *seen, uint8_t out[DIGEST_LEN])
{
    Value vals[4] = {v(a), v(b), v(secret), v(seen)};
    digest_row(k, rv, vals, NULL, out);
}

static void test_row_digest(void **state)
{
    (void)state;
    DigestKey k1, k2;
    memset(k1.key, 1, sizeof(k1.key));
    memset(k2.key, 2, sizeof(k2.key));
    uint8_t x[DIGEST_LEN], y[DIGEST_LEN];
    row(&k1, &g_rv, "1", "x", "p1", "5", x);
    row(&k1, &g_rv, "1", "x", "p2", "6", y);
    assert_memory_equal(x, y, DIGEST_LEN); /* hidden and untracked columns are not in it */
    row(&k1, &g_rv, "1", "y", "p1", "5", y);
    assert_memory_not_equal(x, y, DIGEST_LEN);
    row(&k2, &g_rv, "1", "x", "p1", "5", y);
    assert_memory_not_equal(x, y, DIGEST_LEN); /* keyed */
    /* NULL contributes nothing: a nullable column added later changes no digest */
    RelColumn more[5];
    memcpy(more, g_cols, sizeof(g_cols));
    more[4] = (RelColumn){.name = "c", .col_id = 5, .track = TRACK_FULL};
    RelationVersion rv2 = {.relid = 7, .version = 2, .ncols = 5, .cols = more};
    Value vals[5] = {v("1"), v("x"), v("p1"), v("5"), v(NULL)};
    digest_row(&k1, &rv2, vals, NULL, y);
    assert_memory_equal(x, y, DIGEST_LEN);
    /* ... but a value in it does; and so does an unknown one not */
    vals[4] = v("9");
    digest_row(&k1, &rv2, vals, NULL, y);
    assert_memory_not_equal(x, y, DIGEST_LEN);
    uint8_t unknown[5] = {0, 0, 0, 0, 1};
    digest_row(&k1, &rv2, vals, unknown, y);
    assert_memory_equal(x, y, DIGEST_LEN);
    /* a value moved to another column is another row: (1, NULL) vs (NULL, 1) */
    row(&k1, &g_rv, "1", NULL, NULL, NULL, x);
    row(&k1, &g_rv, NULL, "1", NULL, NULL, y);
    assert_memory_not_equal(x, y, DIGEST_LEN);
    /* lengths are part of it: ("ab", "c") vs ("a", "bc") */
    row(&k1, &g_rv, "ab", "c", NULL, NULL, x);
    row(&k1, &g_rv, "a", "bc", NULL, NULL, y);
    assert_memory_not_equal(x, y, DIGEST_LEN);
}

static void test_value_digest(void **state)
{
    (void)state;
    DigestKey k;
    digest_key_random(&k);
    uint8_t n[DIGEST_LEN], e[DIGEST_LEN], p[DIGEST_LEN], plain[SHA256_DIGEST_LENGTH];
    Value null = v(NULL), empty = v(""), pin = v("1234");
    digest_value(&k, &null, n);
    digest_value(&k, &empty, e);
    digest_value(&k, &pin, p);
    assert_memory_not_equal(n, e, DIGEST_LEN);
    SHA256((const unsigned char *)"1234", 4, plain);
    assert_memory_not_equal(p, plain, DIGEST_LEN);
    uint8_t again[DIGEST_LEN];
    digest_value(&k, &pin, again);
    assert_memory_equal(p, again, DIGEST_LEN);
    DigestKey other;
    digest_key_random(&other);
    assert_memory_not_equal(k.key, other.key, DIGEST_KEY_LEN);
    digest_value(&other, &pin, again);
    assert_memory_not_equal(p, again, DIGEST_LEN);
}

static void test_has_key(void **state)
{
    (void)state;
    assert_false(digest_rel_has_key(&g_rv));
    RelColumn keyed[2] = {{.name = "id", .is_key = true, .col_id = 1}, {.name = "v", .col_id = 2}};
    RelationVersion rv = {.relid = 1, .version = 1, .ncols = 2, .cols = keyed};
    assert_true(digest_rel_has_key(&rv));
}

/* Known answers, computed with the one-shot OpenSSL HMAC() and EVP digests
 * this module used before (row_digest holds such digests: they never change). */
static void hex_of(const uint8_t *d, char out[2 * DIGEST_LEN + 1])
{
    for (int i = 0; i < DIGEST_LEN; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_known_answers(void **state)
{
    (void)state;
    DigestKey k;
    for (int i = 0; i < DIGEST_KEY_LEN; i++) k.key[i] = (uint8_t)(i * 7 + 3);
    RelColumn cols[3] = {{.name = "a", .col_id = 1, .track = TRACK_FULL},
                         {.name = "b", .col_id = 2, .track = TRACK_FULL},
                         {.name = "secret", .col_id = 3, .track = TRACK_HIDDEN}};
    RelationVersion rv = {.relid = 7, .version = 1, .ncols = 3, .cols = cols};
    Value vals[3] = {{"42", 2}, {"x\ty", 3}, {"p", 1}};
    uint8_t d[DIGEST_LEN];
    char hex[2 * DIGEST_LEN + 1];
    digest_row(&k, &rv, vals, NULL, d);
    hex_of(d, hex);
    assert_string_equal(hex, "39cc5dbb0245443fd33e6f9f5ba402bf969aa4b2649ff99ad948c93afc71eca5");
    digest_value(&k, &(Value){NULL, 0}, d);
    hex_of(d, hex);
    assert_string_equal(hex, "f870a56cffcbf1965e563620258b60532fcf53695419075eccc69f905b2c798b");
    digest_value(&k, &(Value){"", 0}, d);
    hex_of(d, hex);
    assert_string_equal(hex, "70cad903887c5a2982ab96f5cb0d5e7831f29b6703753571328510afde64f969");
    digest_value(&k, &(Value){"hello", 5}, d);
    hex_of(d, hex);
    assert_string_equal(hex, "dea8b8717d440111f8bf42d3a432a62efc05916a75bb70e966954bf3350a0acc");
}

TS_RUN_TESTS(cmocka_unit_test(test_row_digest), cmocka_unit_test(test_value_digest), cmocka_unit_test(test_has_key),
             cmocka_unit_test(test_known_answers))
