/*
 * test_checksum.c — the chain's encoding: every metadata field, context and
 * delta value changes the checksum (including when origin, gid and warnings
 * are set, which once reset the digest), and a value's hash can stand in for
 * the value (erasure).
 */
#include "tests/support/testsupport.h"

#include "schema/checksum.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "tests/support/unit_main.h"

static RelColumn cols[2] = {{.name = (char *)"id", .col_id = 1, .is_key = true}, {.name = (char *)"v", .col_id = 2}};
static RelationVersion rv = {.relid = 16384, .version = 1, .ncols = 2, .cols = cols};

#define KNOWN_BARE "53d51b88b26125a66c21b9aea0622888685141652d6dee2397318ad1e929610c"
#define KNOWN_KEYED "4c31da94dbcf1bd1ce4905abcfd5611ec7e92b4c8821d7e72e7338a420007bb2"

static const uint8_t *g_key; /* the value key compute() hashes under; NULL: bare SHA-256 */

static void compute(Revision *rev, const char *value, const uint8_t *const *hashes, uint8_t out[32])
{
    RevisionHasher *h = revhash_create();
    revhash_set_value_key(h, g_key);
    revhash_begin(h);
    RevisionContext ctx = {.no = 1, .raw = "{\"actor\":{\"type\":\"u\",\"id\":\"1\"}}", .raw_len = 31};
    revhash_add_context(h, &ctx);
    AttributeDelta attrs[1] = {{.col_id = 2, .new_value = {value, value ? strlen(value) : 0}}};
    ObjectDelta d = {
        .seq = 1, .relver = &rv, .op = DELTA_INSERT, .key = "[\"1\"]", .context_no = 1, .nattrs = 1, .attrs = attrs};
    revhash_add_delta(h, &d, hashes);
    revhash_finish(h, rev);
    memcpy(out, rev->checksum, 32);
    revhash_destroy(h);
}

static Revision base(void)
{
    Revision r = {.id = 7,
                  .xid = 900,
                  .commit_lsn = 0x100,
                  .end_lsn = 0x108,
                  .commit_time = 12345,
                  .origin = "upstream",
                  .gid = "g1",
                  .warnings = "context: unknown field",
                  .n_insert = 1};
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

#define CHANGED(stmt)                            \
    do {                                         \
        Revision m = base();                     \
        stmt;                                    \
        compute(&m, "hello", NULL, other);       \
        assert_memory_not_equal(ref, other, 32); \
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
    compute(&m, "", NULL, other); /* and from the empty string */
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

/* Format 5: values enter keyed; the keyed hash stands in for an erased value, the bare SHA-256 does not,
 * and it matches HMAC-SHA-256 of RFC 4231 test case 2 style (key "Jefe" padded to 32 bytes by hand). */
static void test_keyed_value_hash(void **state)
{
    (void)state;
    uint8_t key[32], other_key[32], bare[32], keyed[32], other[32], vh[32], sha[32];
    for (int i = 0; i < 32; i++) {
        key[i] = (uint8_t)i;
        other_key[i] = (uint8_t)(i + 1);
    }
    Revision r = base();
    g_key = NULL;
    compute(&r, "alice@example.com", NULL, bare);
    g_key = key;
    compute(&r, "alice@example.com", NULL, keyed);
    assert_memory_not_equal(bare, keyed, 32);
    g_key = other_key;
    compute(&r, "alice@example.com", NULL, other);
    assert_memory_not_equal(keyed, other, 32);

    RevisionHasher *h = revhash_create();
    Value v = {"alice@example.com", 17};
    revhash_set_value_key(h, key);
    revhash_attr_value(h, &v, vh);
    revhash_set_value_key(h, NULL);
    revhash_attr_value(h, &v, sha);
    revhash_destroy(h);
    revhash_value(&v, bare);
    assert_memory_equal(sha, bare, 32); /* without a key: the bare SHA-256, as before format 5 */
    assert_memory_not_equal(vh, sha, 32);
    const uint8_t *hk[2] = {NULL, vh}, *hs[2] = {NULL, sha};
    g_key = key;
    compute(&r, NULL, hk, other);
    assert_memory_equal(keyed, other, 32);
    compute(&r, NULL, hs, other);
    assert_memory_not_equal(keyed, other, 32);
    g_key = NULL;

    /* RFC 4231 test case 2 ("Jefe", "what do ya want for nothing?"): HMAC pads a short key with zeros,
     * so the same key zero-padded to 32 bytes gives the RFC's digest. */
    uint8_t jefe[32] = {'J', 'e', 'f', 'e'};
    static const uint8_t want[32] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24,
                                     0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27,
                                     0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
    h = revhash_create();
    revhash_set_value_key(h, jefe);
    revhash_attr_value(h, &(Value){"what do ya want for nothing?", 28}, vh);
    revhash_destroy(h);
    assert_memory_equal(vh, want, 32);
}

/* Known answers: a value's hash is SHA-256 (FIPS 180-2's "abc" and the empty
 * string), keyed it is HMAC-SHA-256 exactly as OpenSSL's HMAC() computes it
 * (values of 0, 1, 55, 56, 64 and 1000 bytes: every padding case), and a
 * whole revision's checksum is a fixed digest, whichever SHA-256 interface
 * the hasher uses. */
static void test_known_answers(void **state)
{
    (void)state;
    uint8_t out[32];
    char hex[65];
    revhash_value(&(Value){"abc", 3}, out);
    checksum_to_hex(out, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    revhash_value(&(Value){"", 0}, out);
    checksum_to_hex(out, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    uint8_t key[32];
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)(7 * i + 1);
    static char big[1000];
    memset(big, 'x', sizeof(big));
    RevisionHasher *h = revhash_create();
    revhash_set_value_key(h, key);
    static const size_t lens[] = {0, 1, 55, 56, 64, 1000};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t want[32];
        unsigned int n = 0;
        assert_non_null(HMAC(EVP_sha256(), key, 32, (const unsigned char *)big, lens[i], want, &n));
        revhash_attr_value(h, &(Value){big, lens[i]}, out);
        assert_memory_equal(out, want, 32);
    }
    revhash_set_value_key(h, NULL);
    revhash_attr_value(h, &(Value){"abc", 3}, out);
    checksum_to_hex(out, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    revhash_destroy(h);
    /* One revision, bare and keyed: digests fixed by the format (docs/checksums.md). */
    Revision r = {.id = 42, .xid = 777, .commit_lsn = 0x1000, .end_lsn = 0x1028, .n_insert = 1};
    g_key = NULL;
    compute(&r, "v", NULL, out);
    checksum_to_hex(out, hex);
    assert_string_equal(hex, KNOWN_BARE);
    g_key = key;
    compute(&r, "v", NULL, out);
    g_key = NULL;
    checksum_to_hex(out, hex);
    assert_string_equal(hex, KNOWN_KEYED);
}

TS_RUN_TESTS(cmocka_unit_test(test_every_field_counts), cmocka_unit_test(test_erased_value_hash_stands_in),
             cmocka_unit_test(test_keyed_value_hash), cmocka_unit_test(test_known_answers))
