/*
 * test_msgpack_codec.c — unit tests of the msgpack wire format: every message
 * kind encoded and decoded back to its exact JSON view (NULL vs empty string,
 * bytes that are not UTF-8, hidden values absent, keys per operation), the
 * documented example bytes, and the decoder's error paths (truncation at every
 * offset, wrong version, unknown type, missing or mistyped keys, garbage).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "sink/msgpack_codec.h"
#include "tests/support/unit_main.h"

/* ---- a small fixture: one table with 5 columns, one hidden ---- */

static RelColumn COLS[] = {
    {.name = "id", .type_oid = 23, .typmod = -1, .is_key = true, .col_id = 1},
    {.name = "name", .type_oid = 25, .typmod = -1, .col_id = 2},
    {.name = "note", .type_oid = 25, .typmod = -1, .col_id = 3},
    {.name = "secret", .type_oid = 25, .typmod = -1, .col_id = 5, .track = TRACK_HIDDEN},
    {.name = "blob", .type_oid = 25, .typmod = -1, .type_name = "mytext", .col_id = 6},
};
static RelationVersion RELVER = {.relid = 16384,
                                 .version = 2,
                                 .nspname = "public",
                                 .relname = "acct",
                                 .replident = 'd',
                                 .valid_from = 0x16B3748,
                                 .ncols = 5,
                                 .cols = COLS};

static Revision make_revision(void)
{
    Revision r;
    memset(&r, 0, sizeof r);
    r.id = 7;
    r.xid = 4242;
    r.commit_lsn = ((uint64_t)1 << 32) | 0x2000;
    r.end_lsn = ((uint64_t)1 << 32) | 0x2030;
    r.commit_time = 1000000; /* 2000-01-01 00:00:01 UTC */
    return r;
}

/* A fixture: a revision (make_revision) and an empty buffer, freed after the test. */
typedef struct {
    Revision rev;
    StrBuf b;
} CodecFix;

static int codec_setup(void **state)
{
    CodecFix *fx = calloc(1, sizeof(*fx));
    if (!fx) return -1;
    fx->rev = make_revision();
    strbuf_init(&fx->b);
    *state = fx;
    return 0;
}

static int codec_teardown(void **state)
{
    CodecFix *fx = *state;
    strbuf_free(&fx->b);
    free(fx);
    return 0;
}

static char *encode_to_json(const StrBuf *b)
{
    json_t *j = NULL;
    size_t used = 0;
    WrError err = {0};
    assert_int_equal(mpc_decode_json(b->data, b->len, &used, &j, &err), WR_OK);
    assert_int_equal(used, b->len);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return s;
}

static void test_delta_update_values(void **state)
{
    CodecFix *fx = *state;
    AttributeDelta attrs[] = {
        {.col_id = 2, .old_value = {"a", 1}, .new_value = {"b", 1}},
        {.col_id = 3, .old_value = {NULL, 0}, .new_value = {"", 0}},
        {.col_id = 5, .flags = ATTR_HIDDEN, .old_value = {"pw1", 3}, .new_value = {"pw2", 3}},
        {.col_id = 6,
         .old_value = {"\x00\xff"
                       "e",
                       3},
         .new_value = {"caf\xc3\xa9", 5}},
    };
    ObjectDelta d = {.seq = 3, .relver = &RELVER, .op = DELTA_UPDATE, .key = "[\"42\"]", .nattrs = 4, .attrs = attrs};
    mpc_encode_delta(&fx->b, &fx->rev, &d, NULL, 0);
    /* The hidden values must not even be in the bytes. */
    assert_null(memmem(fx->b.data, fx->b.len, "pw1", 3));
    assert_null(memmem(fx->b.data, fx->b.len, "pw2", 3));
    char *s = encode_to_json(&fx->b);
    assert_string_equal(
        s, "{\"v\":1,\"type\":\"delta\",\"id\":\"7.3\","
           "\"revision\":{\"id\":7,\"xid\":4242,\"commit_lsn\":\"1/2000\",\"commit_time\":946684801000000},"
           "\"seq\":3,\"table\":{\"schema\":\"public\",\"name\":\"acct\",\"relid\":16384,\"version\":2},"
           "\"op\":\"update\",\"key\":\"[\\\"42\\\"]\",\"old_unknown\":false,\"context\":null,"
           "\"changes\":["
           "{\"column\":\"name\",\"col_id\":2,\"flags\":0,\"old\":\"a\",\"new\":\"b\"},"
           "{\"column\":\"note\",\"col_id\":3,\"flags\":0,\"old\":null,\"new\":\"\"},"
           "{\"column\":\"secret\",\"col_id\":5,\"flags\":1},"
           "{\"column\":\"blob\",\"col_id\":6,\"flags\":0,\"old\":\"\\\\x00ff65\",\"new\":\"caf\xc3\xa9\"}]}");
    free(s);

    /* NULL is nil (0xc0) and the empty string a zero-length str (0xa0): distinct on the wire. */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, fx->b.data, fx->b.len, &off), MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *changes = &u.data.via.map.ptr[10].val;
    assert_int_equal(changes->type, MSGPACK_OBJECT_ARRAY);
    const msgpack_object *c1 = &changes->via.array.ptr[1];
    assert_int_equal(c1->via.map.ptr[3].val.type, MSGPACK_OBJECT_NIL);
    assert_int_equal(c1->via.map.ptr[4].val.type, MSGPACK_OBJECT_STR);
    assert_int_equal(c1->via.map.ptr[4].val.via.str.size, 0);
    const msgpack_object *c3 = &changes->via.array.ptr[3];
    assert_int_equal(c3->via.map.ptr[3].val.type, MSGPACK_OBJECT_BIN); /* not UTF-8: bin, exact bytes */
    assert_int_equal(c3->via.map.ptr[3].val.via.bin.size, 3);
    assert_memory_equal(c3->via.map.ptr[3].val.via.bin.ptr,
                        "\x00\xff"
                        "e",
                        3);
    assert_int_equal(c3->via.map.ptr[4].val.type, MSGPACK_OBJECT_STR);
    msgpack_unpacked_destroy(&u);
}

static void test_delta_ops_and_context(void **state)
{
    CodecFix *fx = *state;
    RevisionContext ctx = {.no = 1,
                           .actor_type = "user",
                           .actor_id = "42",
                           .actor_json = "{\"type\":\"user\",\"id\":\"42\",\"name\":\"Ann\"}",
                           .description = "approve invoice",
                           .meta_json = "{\"ticket\":9}",
                           .attested = true,
                           .session_user = "app",
                           .current_user = "app_team",
                           .application_name = "billing",
                           .strict_checked = true,
                           .verified = true,
                           .verified_by = "role:app"};
    StrBuf packed;
    strbuf_init(&packed);
    mpc_encode_context(&packed, &ctx);

    AttributeDelta ins[] = {{.col_id = 1, .new_value = {"42", 2}},
                            {.col_id = 5, .flags = ATTR_HIDDEN, .new_value = {"pw", 2}}};
    ObjectDelta d = {
        .seq = 1, .relver = &RELVER, .op = DELTA_INSERT, .key = "[\"42\"]", .context_no = 1, .nattrs = 2, .attrs = ins};
    mpc_encode_delta(&fx->b, &fx->rev, &d, packed.data, packed.len);
    char *s = encode_to_json(&fx->b);
    assert_non_null(strstr(s, "\"op\":\"insert\""));
    assert_non_null(strstr(s,
                           "\"context\":{\"no\":1,\"actor\":{\"type\":\"user\",\"id\":\"42\",\"actor_json\":"
                           "\"{\\\"type\\\":\\\"user\\\",\\\"id\\\":\\\"42\\\",\\\"name\\\":\\\"Ann\\\"}\"},"
                           "\"description\":\"approve invoice\",\"meta_json\":\"{\\\"ticket\\\":9}\","
                           "\"attested\":true,\"db_session_user\":\"app\",\"db_current_user\":\"app_team\","
                           "\"application_name\":\"billing\",\"actor_verified\":true,\"verified_by\":\"role:app\"}"));
    /* insert: only "new"; hidden: neither */
    assert_non_null(strstr(s, "\"changes\":[{\"column\":\"id\",\"col_id\":1,\"flags\":0,\"new\":\"42\"},"
                              "{\"column\":\"secret\",\"col_id\":5,\"flags\":1}]"));
    free(s);

    /* delete with unknown old values: only "old", nil, flag 2, old_unknown true */
    AttributeDelta del[] = {{.col_id = 2, .flags = ATTR_OLD_UNKNOWN}};
    ObjectDelta dd = {.seq = 2,
                      .relver = &RELVER,
                      .op = DELTA_DELETE,
                      .key = "[\"42\"]",
                      .nattrs = 1,
                      .attrs = del,
                      .old_unknown = true};
    strbuf_reset(&fx->b);
    mpc_encode_delta(&fx->b, &fx->rev, &dd, NULL, 0);
    s = encode_to_json(&fx->b);
    assert_non_null(strstr(s, "\"op\":\"delete\",\"key\":\"[\\\"42\\\"]\",\"old_unknown\":true,"
                              "\"context\":null,\"changes\":[{\"column\":\"name\",\"col_id\":2,\"flags\":2,"
                              "\"old\":null}]"));
    free(s);

    /* snapshot: only "new" */
    AttributeDelta snap[] = {{.col_id = 3, .new_value = {"x", 1}}};
    ObjectDelta ds = {.seq = 4, .relver = &RELVER, .op = DELTA_SNAPSHOT, .key = "[\"1\"]", .nattrs = 1, .attrs = snap};
    strbuf_reset(&fx->b);
    mpc_encode_delta(&fx->b, &fx->rev, &ds, NULL, 0);
    s = encode_to_json(&fx->b);
    assert_non_null(strstr(s, "\"op\":\"snapshot\""));
    assert_non_null(strstr(s, "\"changes\":[{\"column\":\"note\",\"col_id\":3,\"flags\":0,\"new\":\"x\"}]"));
    free(s);

    /* nil context encodes as nil */
    strbuf_reset(&packed);
    mpc_encode_context(&packed, NULL);
    assert_int_equal(packed.len, 1);
    assert_int_equal((unsigned char)packed.data[0], 0xc0);
    strbuf_free(&packed);
}

/* The truncate example of docs/kafka-format.md, byte for byte. */
static void test_truncate_exact_bytes(void **state)
{
    CodecFix *fx = *state;
    ObjectDelta d = {.seq = 1, .relver = &RELVER, .op = DELTA_TRUNCATE, .key = NULL};
    mpc_encode_delta(&fx->b, &fx->rev, &d, NULL, 0);
    StrBuf hex;
    strbuf_init(&hex);
    for (size_t i = 0; i < fx->b.len; i++) strbuf_appendf(&hex, "%02x", (unsigned char)fx->b.data[i]);
    assert_string_equal(hex.data, "8ba17601a474797065a564656c7461a26964a3372e31a87265766973696f6e84a26964"
                                  "07a3786964cd1092aa636f6d6d69745f6c736ea6312f32303030ab636f6d6d69745f74"
                                  "696d65cf00035d013b472240a3736571"
                                  "01a57461626c6584a6736368656d61a67075626c6963a46e616d65a461636374a572656c"
                                  "6964cd4000a776657273696f6e02a26f70a87472756e63617465a36b6579c0ab6f6c645f"
                                  "756e6b6e6f776ec2a7636f6e74657874c0a76368616e6765739"
                                  "0");
    char *s = encode_to_json(&fx->b);
    assert_non_null(strstr(s, "\"op\":\"truncate\",\"key\":null,"));
    assert_non_null(strstr(s, "\"changes\":[]"));
    free(s);
    strbuf_free(&hex);
}

static void test_revision_message(void **state)
{
    CodecFix *fx = *state;
    RevisionContext ctx = {.no = 1,
                           .actor_type = "service",
                           .actor_id = "billing",
                           .description = "nightly",
                           .strict_checked = true,
                           .verified = false,
                           .verified_by = "ignored when not verified"};
    fx->rev.first_context = &ctx;
    fx->rev.n_insert = 3;
    fx->rev.n_update = 2;
    fx->rev.n_delete = 1;
    fx->rev.n_truncate = 0;
    fx->rev.n_snapshot = 0;
    fx->rev.origin = "node_a";
    for (int i = 0; i < WALREV_CHECKSUM_LEN; i++) {
        fx->rev.checksum[i] = (uint8_t)(0xa0 + i);
        fx->rev.parent_checksum[i] = (uint8_t)i;
    }
    MpcTableCount tables[] = {{"public", "acct", 4}, {"sales", "order", 2}};
    mpc_encode_revision(&fx->b, &fx->rev, tables, 2);
    char *s = encode_to_json(&fx->b);
    assert_string_equal(
        s, "{\"v\":1,\"type\":\"revision\",\"id\":\"7\","
           "\"revision\":{\"id\":7,\"xid\":4242,\"commit_lsn\":\"1/2000\",\"end_lsn\":\"1/2030\","
           "\"commit_time\":946684801000000},"
           "\"origin\":\"node_a\",\"gid\":null,"
           "\"actor\":{\"type\":\"service\",\"id\":\"billing\",\"actor_json\":null},"
           "\"description\":\"nightly\","
           "\"counts\":{\"insert\":3,\"update\":2,\"delete\":1,\"truncate\":0,\"snapshot\":0,\"suppressed\":0},"
           "\"tables\":[{\"schema\":\"public\",\"name\":\"acct\",\"count\":4},"
           "{\"schema\":\"sales\",\"name\":\"order\",\"count\":2}],"
           "\"warnings\":null,"
           "\"checksum\":\"\\\\xa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\","
           "\"parent_checksum\":\"\\\\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\","
           "\"attested\":false,\"db_session_user\":null,\"db_current_user\":null,\"application_name\":null,"
           "\"actor_verified\":false,\"verified_by\":null}");
    free(s);

    /* no context: actor and description nil */
    fx->rev.first_context = NULL;
    strbuf_reset(&fx->b);
    mpc_encode_revision(&fx->b, &fx->rev, NULL, 0);
    s = encode_to_json(&fx->b);
    assert_non_null(strstr(s, "\"actor\":null,\"description\":null,"));
    assert_non_null(strstr(s, "\"tables\":[]"));
    assert_non_null(strstr(s, "\"attested\":false,\"db_session_user\":null,\"db_current_user\":null,"
                              "\"application_name\":null,\"actor_verified\":null,\"verified_by\":null}"));
    free(s);
}

static void test_relation_message(void **state)
{
    (void)state;
    StrBuf b;
    strbuf_init(&b);
    mpc_encode_relation(&b, &RELVER);
    char *s = encode_to_json(&b);
    assert_string_equal(
        s, "{\"v\":1,\"type\":\"relation\",\"id\":\"relation.16384.2\","
           "\"table\":{\"schema\":\"public\",\"name\":\"acct\",\"relid\":16384,\"version\":2},"
           "\"replident\":\"d\",\"valid_from\":\"0/16B3748\",\"columns\":["
           "{\"name\":\"id\",\"col_id\":1,\"type_oid\":23,\"typmod\":-1,\"type_name\":null,\"is_key\":true,"
           "\"track\":\"full\"},"
           "{\"name\":\"name\",\"col_id\":2,\"type_oid\":25,\"typmod\":-1,\"type_name\":null,\"is_key\":false,"
           "\"track\":\"full\"},"
           "{\"name\":\"note\",\"col_id\":3,\"type_oid\":25,\"typmod\":-1,\"type_name\":null,\"is_key\":false,"
           "\"track\":\"full\"},"
           "{\"name\":\"secret\",\"col_id\":5,\"type_oid\":25,\"typmod\":-1,\"type_name\":null,\"is_key\":false,"
           "\"track\":\"hidden\"},"
           "{\"name\":\"blob\",\"col_id\":6,\"type_oid\":25,\"typmod\":-1,\"type_name\":\"mytext\","
           "\"is_key\":false,\"track\":\"full\"}]}");
    free(s);
    strbuf_free(&b);
}

static void test_ids(void **state)
{
    (void)state;
    Revision rev = make_revision();
    rev.id = INT64_MAX;
    char id[MPC_ID_MAX];
    mpc_delta_id(&rev, INT32_MAX, id);
    assert_string_equal(id, "9223372036854775807.2147483647");
    mpc_revision_id(&rev, id);
    assert_string_equal(id, "9223372036854775807");
    assert_string_equal(mpc_op_name(DELTA_TRUNCATE), "truncate");
    assert_null(mpc_op_name((DeltaOp)'X'));
}

/* ---- decoder error paths ---- */

static int sb_write(void *data, const char *buf, size_t len)
{
    strbuf_append((StrBuf *)data, buf, len);
    return 0;
}
static void pk_s(msgpack_packer *pk, const char *s) { msgpack_pack_str_with_body(pk, s, strlen(s)); }

static WrStatus decode(const StrBuf *b, WrError *err, json_t **j)
{
    size_t used = 99;
    WrStatus st = mpc_decode_json(b->data, b->len, &used, j, err);
    if (st != WR_OK) {
        assert_int_equal(used, 0);
        assert_null(*j);
    }
    return st;
}

static void test_decode_truncated_every_offset(void **state)
{
    CodecFix *fx = *state;
    MpcTableCount t = {"public", "acct", 1};
    mpc_encode_revision(&fx->b, &fx->rev, &t, 1);
    size_t full = fx->b.len;
    for (size_t n = 0; n < full; n++) {
        json_t *j = NULL;
        size_t used = 5;
        WrError err = {0};
        assert_int_equal(mpc_decode_json(fx->b.data, n, &used, &j, &err), WR_AGAIN);
        assert_null(j);
        assert_int_equal(used, 0);
    }
    /* two messages back to back: the first is consumed alone */
    mpc_encode_relation(&fx->b, &RELVER);
    json_t *j = NULL;
    size_t used = 0;
    WrError err = {0};
    assert_int_equal(mpc_decode_json(fx->b.data, fx->b.len, &used, &j, &err), WR_OK);
    assert_int_equal(used, full);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "revision");
    json_decref(j);
    assert_int_equal(mpc_decode_json(fx->b.data + used, fx->b.len - used, &used, &j, &err), WR_OK);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "relation");
    json_decref(j);
}

/* The JSON value j packed as msgpack (objects in their keys' order). */
static void pack_json(msgpack_packer *pk, json_t *j)
{
    const char *key;
    json_t *v;
    size_t i;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        msgpack_pack_map(pk, json_object_size(j));
        json_object_foreach(j, key, v)
        {
            pk_s(pk, key);
            pack_json(pk, v);
        }
        break;
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(j));
        json_array_foreach(j, i, v) pack_json(pk, v);
        break;
    case JSON_STRING: pk_s(pk, json_string_value(j)); break;
    case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(j)); break;
    default: fail_msg("pack_json: no case for JSON type %d", (int)json_typeof(j));
    }
}

/* Messages the decoder must refuse, each with its exact error. A message is
 * given as JSON and packed (pack_json), or as raw bytes when it is not
 * msgpack at all. */
static const struct {
    const char *what;
    const char *json;
    const char *raw;
    const char *want;
} REJECTS[] = {
    {"garbage: 0xc1 is never used by msgpack", NULL, "\xc1", "walrev message: not valid msgpack"},
    {"not a map", "[]", NULL, "walrev message: top level is not a map"},
    {"a future format version", "{\"v\": 2, \"type\": \"delta\", \"id\": \"1.1\"}", NULL,
     "walrev message: format version 2 is not supported (1 is)"},
    {"unknown type", "{\"v\": 1, \"type\": \"heartbeat\", \"id\": \"x\"}", NULL,
     "walrev message: unknown type \"heartbeat\""},
    {"missing v", "{\"type\": \"delta\"}", NULL, "walrev message: key v (format version) missing"},
    {"a relation whose nested table map lacks relid",
     "{\"v\": 1, \"type\": \"relation\", \"id\": \"relation.1.1\","
     " \"table\": {\"schema\": \"s\", \"name\": \"t\", \"version\": 1},"
     " \"replident\": \"d\", \"valid_from\": \"0/0\", \"columns\": []}",
     NULL, "walrev message: required key table.relid is missing"},
};

static void test_decode_rejects(void **state)
{
    (void)state;
    StrBuf b;
    strbuf_init(&b);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, sb_write);
    for (size_t k = 0; k < sizeof REJECTS / sizeof REJECTS[0]; k++) {
        json_t *j = NULL;
        WrError err = {0};
        strbuf_reset(&b);
        if (REJECTS[k].raw) {
            strbuf_append(&b, REJECTS[k].raw, strlen(REJECTS[k].raw));
        } else {
            json_error_t jerr;
            json_t *msg = json_loads(REJECTS[k].json, 0, &jerr);
            if (!msg) fail_msg("case %s: %s", REJECTS[k].what, jerr.text);
            pack_json(&pk, msg);
            json_decref(msg);
        }
        print_message("case: %s\n", REJECTS[k].what);
        assert_int_equal(decode(&b, &err, &j), WR_PROTOCOL);
        assert_string_equal(err.msg, REJECTS[k].want);
    }
    strbuf_free(&b);
}

/* A mistyped key, and unknown keys (which consumers must accept and keep). */
/* Containers that claim more elements than any message could hold: rejected
 * or awaited, never allocated for (a 432-byte message once asked msgpack-c
 * for 256 GiB; fuzz_msgpack found it, tests/fuzz/seeds holds it). */
static void test_decode_huge_claims(void **state)
{
    (void)state;
    size_t used = 0;
    json_t *j = NULL;
    WrError err = {0};
    const uint8_t array32_max[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(mpc_decode_json(array32_max, sizeof(array32_max), &used, &j, &err), WR_PROTOCOL);
    assert_null(j);
    const uint8_t map32_inside[] = {0x81, 0xa1, 'v', 0xdf, 0x7f, 0xff, 0xff, 0xff};
    assert_int_equal(mpc_decode_json(map32_inside, sizeof(map32_inside), &used, &j, &err), WR_PROTOCOL);
    const uint8_t str32_huge[] = {0xdb, 0x7f, 0xff, 0xff, 0xff, 'x'};
    assert_int_equal(mpc_decode_json(str32_huge, sizeof(str32_huge), &used, &j, &err), WR_PROTOCOL);
    /* A plausible claim with its elements still to come is only incomplete. */
    const uint8_t array16_short[] = {0xdc, 0x01, 0x00, 0x01, 0x02};
    assert_int_equal(mpc_decode_json(array16_short, sizeof(array16_short), &used, &j, &err), WR_AGAIN);
    assert_int_equal(used, 0);
    const uint8_t reserved[] = {0xc1};
    assert_int_equal(mpc_decode_json(reserved, sizeof(reserved), &used, &j, &err), WR_PROTOCOL);

    char path[1024];
    const char *src = getenv("WALREV_SOURCE_DIR");
    if (!src) return;
    snprintf(path, sizeof(path), "%s/tests/fuzz/seeds/fuzz_msgpack/regress_huge_container.mp", src);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_int_equal(n, 432);
    WrStatus st = mpc_decode_json(buf, n, &used, &j, &err);
    assert_true(st == WR_PROTOCOL || st == WR_AGAIN);
    assert_null(j);
}

static void test_decode_key_types_and_unknown_keys(void **state)
{
    CodecFix *fx = *state;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &fx->b, sb_write);
    json_t *j = NULL;
    WrError err = {0};

    StrBuf enc;
    strbuf_init(&enc);
    mpc_encode_revision(&enc, &fx->rev, NULL, 0);
    /* Rebuild the same map with one extra key, as a newer walrev might send. */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, enc.data, enc.len, &off), MSGPACK_UNPACK_SUCCESS);
    msgpack_pack_map(&pk, u.data.via.map.size + 1);
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        msgpack_pack_object(&pk, u.data.via.map.ptr[i].key);
        msgpack_pack_object(&pk, u.data.via.map.ptr[i].val);
    }
    pk_s(&pk, "future_key");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_int(&pk, -5);
    assert_int_equal(decode(&fx->b, &err, &j), WR_OK);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "future_key"), 0)), -5);
    json_decref(j);

    /* checksum as str instead of bin */
    strbuf_reset(&fx->b);
    msgpack_pack_map(&pk, u.data.via.map.size);
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        msgpack_pack_object(&pk, u.data.via.map.ptr[i].key);
        if (u.data.via.map.ptr[i].key.via.str.size == 8 &&
            memcmp(u.data.via.map.ptr[i].key.via.str.ptr, "checksum", 8) == 0)
            pk_s(&pk, "abc");
        else
            msgpack_pack_object(&pk, u.data.via.map.ptr[i].val);
    }
    assert_int_equal(decode(&fx->b, &err, &j), WR_PROTOCOL);
    assert_string_equal(err.msg, "walrev message: key checksum has the wrong msgpack type");
    msgpack_unpacked_destroy(&u);
    strbuf_free(&enc);
}

#define CODEC_TEST(f) cmocka_unit_test_setup_teardown(f, codec_setup, codec_teardown)
TS_RUN_TESTS(CODEC_TEST(test_delta_update_values), CODEC_TEST(test_delta_ops_and_context),
             CODEC_TEST(test_truncate_exact_bytes), CODEC_TEST(test_revision_message),
             cmocka_unit_test(test_relation_message), cmocka_unit_test(test_ids),
             CODEC_TEST(test_decode_truncated_every_offset), cmocka_unit_test(test_decode_rejects),
             CODEC_TEST(test_decode_key_types_and_unknown_keys), cmocka_unit_test(test_decode_huge_claims))
