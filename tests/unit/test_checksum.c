/*
 * test_checksum.c — the chain's encoding: every metadata field, context and
 * delta value changes the checksum (including when origin, gid and warnings
 * are set, which once reset the digest), and a value's hash can stand in for
 * the value (erasure).
 */
#include "tests/support/testsupport.h"

#include "schema/checksum.h"

#include <string.h>

static RelColumn cols[2] = {{.name = (char *)"id", .col_id = 1, .is_key = true}, {.name = (char *)"v", .col_id = 2}};
static RelationVersion rv = {.relid = 16384, .version = 1, .ncols = 2, .cols = cols};

static void compute(Revision *rev, const char *value, const uint8_t *const *hashes, uint8_t out[32])
{
    RevisionHasher *h = revhash_create();
    revhash_begin(h);
    RevisionContext ctx = {.no = 1, .raw = "{\"actor\":{\"type\":\"u\",\"id\":\"1\"}}", .raw_len = 31};
    revhash_add_context(h, &ctx);
    AttributeDelta attrs[1] = {{.col_id = 2, .new_value = {value, value ? strlen(value) : 0}}};
    ObjectDelta d = {.seq = 1, .relver = &rv, .op = DELTA_INSERT, .key = "[\"1\"]", .context_no = 1, .nattrs = 1, .attrs = attrs};
    revhash_add_delta(h, &d, hashes);
    revhash_finish(h, rev);
    memcpy(out, rev->checksum, 32);
    revhash_destroy(h);
}

static Revision base(void)
{
    Revision r;
    memset(&r, 0, sizeof(r));
    r.id = 7;
    r.xid = 900;
    r.commit_lsn = 0x100;
    r.end_lsn = 0x108;
    r.commit_time = 12345;
    r.origin = "upstream";
    r.gid = "g1";
    r.warnings = "context: unknown field";
    r.n_insert = 1;
    memset(r.parent_checksum, 0x11, 32);
    return r;
}

static void test_every_field_counts(void **state)
{
    uint8_t ref[32], other[32];
    Revision r = base();
    compute(&r, "hello", NULL, ref);
    Revision again = base();
    compute(&again, "hello", NULL, other);
    assert_memory_equal(ref, other, 32); /* deterministic */

#define CHANGED(stmt)                                                                              \
    do {                                                                                           \
        Revision m = base();                                                                       \
        stmt;                                                                                      \
        compute(&m, "hello", NULL, other);                                                         \
        assert_memory_not_equal(ref, other, 32);                                                   \
    } while (0)
    CHANGED(m.id = 8);
    CHANGED(m.xid = 901);
    CHANGED(m.commit_lsn = 0x101);
    CHANGED(m.end_lsn = 0x109);
    CHANGED(m.commit_time = 12346);
    CHANGED(m.origin = NULL);
    CHANGED(m.gid = "g2");
    CHANGED(m.warnings = NULL);
    CHANGED(m.n_insert = 2);
    CHANGED(m.n_delete = 1);
    CHANGED(m.n_suppressed = 1);
    CHANGED(m.parent_checksum[31] ^= 1);
    Revision m = base();
    compute(&m, "hellO", NULL, other);
    assert_memory_not_equal(ref, other, 32);
    compute(&m, NULL, NULL, other); /* NULL differs from any value */
    assert_memory_not_equal(ref, other, 32);
    compute(&m, "", NULL, other);   /* and from the empty string */
    assert_memory_not_equal(ref, other, 32);
}

static void test_erased_value_hash_stands_in(void **state)
{
    uint8_t ref[32], other[32], vh[32];
    Revision r = base();
    compute(&r, "secret", NULL, ref);
    Value v = {"secret", 6};
    revhash_value(&v, vh);
    const uint8_t *hashes[2] = {NULL, vh};
    Revision e = base();
    compute(&e, NULL, hashes, other);
    assert_memory_equal(ref, other, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_field_counts),
        cmocka_unit_test(test_erased_value_hash_stands_in),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
