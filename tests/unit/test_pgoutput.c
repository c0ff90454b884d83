/*
 * test_pgoutput.c — unit tests of the pure pgoutput parser: CopyData
 * envelopes, the status update encoder, every message type of protocol 1–4,
 * every tuple kind, streaming xids, and malformed input (truncation at every
 * offset of every sample, bad lengths, bad markers, trailing bytes). Messages
 * are built byte by byte (tests/support/wire.h); no server is involved.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "decoder/pgoutput.h"
#include "tests/support/pgo_expect.h"
#include "tests/support/wire.h"

/* ---- sample messages: one builder per wire layout ---- */

#define LSN1 UINT64_C(0x16B3748)
#define LSN2 UINT64_C(0x100000016B3790)
#define TS1 INT64_C(757382400000000)

static void mk_begin(TsWire *w)
{
    tw_u8(w, 'B');
    tw_u64(w, LSN2);
    tw_u64(w, (uint64_t)TS1);
    tw_u32(w, 735);
}
static void mk_commit(TsWire *w)
{
    tw_u8(w, 'C');
    tw_u8(w, 0);
    tw_u64(w, LSN1);
    tw_u64(w, LSN2);
    tw_u64(w, (uint64_t)TS1);
}
static void mk_origin(TsWire *w)
{
    tw_u8(w, 'O');
    tw_u64(w, LSN1);
    tw_str(w, "node'a");
}
static void mk_relation(TsWire *w)
{
    tw_relation(w, 16385, "public", "items", 'd', 3);
    tw_column(w, 1, "id", 23, -1);
    tw_column(w, 0, "name", 1043, 68);
    tw_column(w, 3, "mood", 16390, -1);
}
static void mk_relation_stream(TsWire *w)
{
    tw_u8(w, 'R');
    tw_u32(w, 900);
    tw_u32(w, 16386);
    tw_str(w, "");
    tw_str(w, "empty");
    tw_u8(w, 'n');
    tw_u16(w, 0);
}
static void mk_type(TsWire *w)
{
    tw_u8(w, 'Y');
    tw_u32(w, 16390);
    tw_str(w, "public");
    tw_str(w, "mood");
}
static void mk_type_stream(TsWire *w)
{
    tw_u8(w, 'Y');
    tw_u32(w, 901);
    tw_u32(w, 16390);
    tw_str(w, "");
    tw_str(w, "int4");
}
/* Insert with every tuple kind: t, n, u, b, and an empty text value. */
static void mk_insert(TsWire *w)
{
    tw_u8(w, 'I');
    tw_u32(w, 16385);
    tw_u8(w, 'N');
    tw_u16(w, 5);
    tw_text(w, "1");
    tw_u8(w, 'n');
    tw_u8(w, 'u');
    tw_u8(w, 'b');
    tw_u32(w, 2);
    tw_u8(w, 0x0a);
    tw_u8(w, 0x0b);
    tw_text(w, "");
}
static void mk_insert_stream(TsWire *w)
{
    tw_u8(w, 'I');
    tw_u32(w, 902);
    tw_u32(w, 16385);
    tw_u8(w, 'N');
    tw_u16(w, 1);
    tw_text(w, "a'b\\c\n\xff");
}
static void mk_update_plain(TsWire *w)
{
    tw_u8(w, 'U');
    tw_u32(w, 16385);
    tw_u8(w, 'N');
    tw_u16(w, 2);
    tw_text(w, "1");
    tw_u8(w, 'u');
}
static void mk_update_key(TsWire *w)
{
    tw_u8(w, 'U');
    tw_u32(w, 16385);
    tw_u8(w, 'K');
    tw_u16(w, 2);
    tw_text(w, "1");
    tw_u8(w, 'n');
    tw_u8(w, 'N');
    tw_u16(w, 2);
    tw_text(w, "2");
    tw_text(w, "x");
}
static void mk_update_old_stream(TsWire *w)
{
    tw_u8(w, 'U');
    tw_u32(w, 903);
    tw_u32(w, 16385);
    tw_u8(w, 'O');
    tw_u16(w, 2);
    tw_text(w, "1");
    tw_text(w, "old");
    tw_u8(w, 'N');
    tw_u16(w, 2);
    tw_text(w, "1");
    tw_text(w, "new");
}
static void mk_delete_key(TsWire *w)
{
    tw_u8(w, 'D');
    tw_u32(w, 16385);
    tw_u8(w, 'K');
    tw_u16(w, 2);
    tw_text(w, "7");
    tw_u8(w, 'n');
}
static void mk_delete_old(TsWire *w)
{
    tw_u8(w, 'D');
    tw_u32(w, 16385);
    tw_u8(w, 'O');
    tw_u16(w, 1);
    tw_u8(w, 'b');
    tw_u32(w, 0);
}
static void mk_truncate(TsWire *w)
{
    tw_u8(w, 'T');
    tw_u32(w, 2);
    tw_u8(w, 3);
    tw_u32(w, 16385);
    tw_u32(w, 16390);
}
static void mk_truncate_stream(TsWire *w)
{
    tw_u8(w, 'T');
    tw_u32(w, 904);
    tw_u32(w, 1);
    tw_u8(w, 0);
    tw_u32(w, 16385);
}
static void mk_message(TsWire *w)
{
    tw_u8(w, 'M');
    tw_u8(w, 1);
    tw_u64(w, LSN1);
    tw_str(w, "walrev.ctx");
    tw_u32(w, 9);
    tw_bytes(w, "{\"a\":\"b\"}", 9);
}
static void mk_message_stream(TsWire *w)
{
    tw_u8(w, 'M');
    tw_u32(w, 905);
    tw_u8(w, 0);
    tw_u64(w, LSN2);
    tw_str(w, "p");
    tw_u32(w, 0);
}
static void mk_stream_start(TsWire *w)
{
    tw_u8(w, 'S');
    tw_u32(w, 900);
    tw_u8(w, 1);
}
static void mk_stream_stop(TsWire *w) { tw_u8(w, 'E'); }
static void mk_stream_commit(TsWire *w)
{
    tw_u8(w, 'c');
    tw_u32(w, 900);
    tw_u8(w, 0);
    tw_u64(w, LSN1);
    tw_u64(w, LSN2);
    tw_u64(w, (uint64_t)TS1);
}
static void mk_stream_abort(TsWire *w)
{
    tw_u8(w, 'A');
    tw_u32(w, 900);
    tw_u32(w, 906);
}
static void mk_stream_abort_v4(TsWire *w)
{
    mk_stream_abort(w);
    tw_u64(w, LSN2);
    tw_u64(w, (uint64_t)TS1);
}
static void mk_begin_prepare(TsWire *w)
{
    tw_u8(w, 'b');
    tw_u64(w, LSN1);
    tw_u64(w, LSN2);
    tw_u64(w, (uint64_t)TS1);
    tw_u32(w, 735);
    tw_str(w, "gid-1");
}
static void mk_prepare_like(TsWire *w, uint8_t type)
{
    tw_u8(w, type);
    tw_u8(w, 0);
    tw_u64(w, LSN1);
    tw_u64(w, LSN2);
    tw_u64(w, (uint64_t)TS1);
    tw_u32(w, 735);
    tw_str(w, "gid-1");
}
static void mk_prepare(TsWire *w) { mk_prepare_like(w, 'P'); }
static void mk_stream_prepare(TsWire *w) { mk_prepare_like(w, 'p'); }
static void mk_commit_prepared(TsWire *w) { mk_prepare_like(w, 'K'); }
static void mk_rollback_prepared(TsWire *w)
{
    tw_u8(w, 'r');
    tw_u8(w, 0);
    tw_u64(w, LSN1);
    tw_u64(w, LSN2);
    tw_u64(w, (uint64_t)TS1);
    tw_u64(w, (uint64_t)(TS1 + 1));
    tw_u32(w, 735);
    tw_str(w, "gid-1");
}

typedef struct {
    void (*build)(TsWire *w);
    int proto;
    bool parallel;
    bool in_stream;
    PgoMessageType type;
    const char *expect;
} Sample;

static const Sample samples[] = {
    {mk_begin, 1, false, false, PGO_MSG_BEGIN, "begin final_lsn=100000/16B3790 commit_time=757382400000000 xid=735"},
    {mk_commit, 1, false, false, PGO_MSG_COMMIT,
     "commit flags=0 commit_lsn=0/16B3748 end_lsn=100000/16B3790 commit_time=757382400000000"},
    {mk_origin, 1, false, false, PGO_MSG_ORIGIN, "origin origin_lsn=0/16B3748 name='node\\'a'"},
    {mk_relation, 1, false, false, PGO_MSG_RELATION,
     "relation rel=16385 nsp='public' name='items' replident=d "
     "cols=('id':23:-1:key,'name':1043:68,'mood':16390:-1:key:flags=3)"},
    {mk_relation_stream, 2, false, true, PGO_MSG_RELATION,
     "relation xid=900 rel=16386 nsp='' name='empty' replident=n cols=()"},
    {mk_type, 1, false, false, PGO_MSG_TYPE, "type oid=16390 nsp='public' name='mood'"},
    {mk_type_stream, 2, false, true, PGO_MSG_TYPE, "type xid=901 oid=16390 nsp='' name='int4'"},
    {mk_insert, 1, false, false, PGO_MSG_INSERT, "insert rel=16385 new=(t:'1',n,u,b:\\x0a0b,t:'')"},
    {mk_insert_stream, 2, false, true, PGO_MSG_INSERT, "insert xid=902 rel=16385 new=(t:'a\\'b\\\\c\\x0a\\xff')"},
    {mk_update_plain, 1, false, false, PGO_MSG_UPDATE, "update rel=16385 new=(t:'1',u)"},
    {mk_update_key, 1, false, false, PGO_MSG_UPDATE, "update rel=16385 key=(t:'1',n) new=(t:'2',t:'x')"},
    {mk_update_old_stream, 4, true, true, PGO_MSG_UPDATE,
     "update xid=903 rel=16385 old=(t:'1',t:'old') new=(t:'1',t:'new')"},
    {mk_delete_key, 1, false, false, PGO_MSG_DELETE, "delete rel=16385 key=(t:'7',n)"},
    {mk_delete_old, 1, false, false, PGO_MSG_DELETE, "delete rel=16385 old=(b:\\x)"},
    {mk_truncate, 1, false, false, PGO_MSG_TRUNCATE, "truncate rels=(16385,16390) options=cascade,restart_identity"},
    {mk_truncate_stream, 2, false, true, PGO_MSG_TRUNCATE, "truncate xid=904 rels=(16385) options=none"},
    {mk_message, 1, false, false, PGO_MSG_MESSAGE,
     "message transactional=true lsn=0/16B3748 prefix='walrev.ctx' content='{\"a\":\"b\"}'"},
    {mk_message_stream, 2, false, true, PGO_MSG_MESSAGE,
     "message xid=905 transactional=false lsn=100000/16B3790 prefix='p' content=''"},
    {mk_stream_start, 2, false, false, PGO_MSG_STREAM_START, "stream start xid=900 first_segment=true"},
    {mk_stream_stop, 2, false, true, PGO_MSG_STREAM_STOP, "stream stop"},
    {mk_stream_commit, 2, false, false, PGO_MSG_STREAM_COMMIT,
     "stream commit xid=900 flags=0 commit_lsn=0/16B3748 end_lsn=100000/16B3790 "
     "commit_time=757382400000000"},
    {mk_stream_abort, 2, false, false, PGO_MSG_STREAM_ABORT, "stream abort xid=900 subxid=906"},
    {mk_stream_abort, 4, false, false, PGO_MSG_STREAM_ABORT, "stream abort xid=900 subxid=906"},
    {mk_stream_abort_v4, 4, true, false, PGO_MSG_STREAM_ABORT,
     "stream abort xid=900 subxid=906 abort_lsn=100000/16B3790 abort_time=757382400000000"},
    {mk_begin_prepare, 3, false, false, PGO_MSG_BEGIN_PREPARE,
     "begin prepare prepare_lsn=0/16B3748 end_lsn=100000/16B3790 prepare_time=757382400000000 "
     "xid=735 gid='gid-1'"},
    {mk_prepare, 3, false, false, PGO_MSG_PREPARE,
     "prepare flags=0 prepare_lsn=0/16B3748 end_lsn=100000/16B3790 prepare_time=757382400000000 "
     "xid=735 gid='gid-1'"},
    {mk_stream_prepare, 3, false, false, PGO_MSG_STREAM_PREPARE,
     "stream prepare flags=0 prepare_lsn=0/16B3748 end_lsn=100000/16B3790 "
     "prepare_time=757382400000000 xid=735 gid='gid-1'"},
    {mk_commit_prepared, 3, false, false, PGO_MSG_COMMIT_PREPARED,
     "commit prepared flags=0 commit_lsn=0/16B3748 end_lsn=100000/16B3790 "
     "commit_time=757382400000000 xid=735 gid='gid-1'"},
    {mk_rollback_prepared, 3, false, false, PGO_MSG_ROLLBACK_PREPARED,
     "rollback prepared flags=0 prepare_end_lsn=0/16B3748 rollback_end_lsn=100000/16B3790 "
     "prepare_time=757382400000000 rollback_time=757382400000001 xid=735 gid='gid-1'"},
};
#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

static PgoParser sample_parser(const Sample *s)
{
    PgoParser p;
    pgo_parser_init(&p, s->proto, s->parallel);
    p.in_stream = s->in_stream;
    return p;
}

static WrStatus parse(PgoParser *p, const TsWire *w, PgoMessage *m, WrError *err)
{
    return pgo_parse_message(p, w->b, w->n, m, err);
}

/* Field by field: struct padding is not part of the state. */
static void assert_parser_equal(const PgoParser *a, const PgoParser *b)
{
    assert_int_equal(a->proto_version, b->proto_version);
    assert_int_equal(a->streaming_parallel, b->streaming_parallel);
    assert_int_equal(a->in_stream, b->in_stream);
}

/* Parse w expecting WR_PROTOCOL with exactly the given message; parser state unchanged. */
static void expect_error(PgoParser *p, const TsWire *w, const char *msg)
{
    PgoParser before = *p;
    PgoMessage m;
    memset(&m, 0xA5, sizeof(m));
    PgoMessage sentinel = m;
    WrError err = {0};
    assert_int_equal(parse(p, w, &m, &err), WR_PROTOCOL);
    assert_int_equal(err.status, WR_PROTOCOL);
    assert_string_equal(err.msg, msg);
    assert_parser_equal(&before, p);
    assert_memory_equal(&sentinel, &m, sizeof(m));
}

/* ---- every sample parses and formats exactly ---- */

static void test_samples_format(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSAMPLES; i++) {
        const Sample *s = &samples[i];
        TsWire w = {0};
        s->build(&w);
        PgoParser p = sample_parser(s);
        PgoMessage m;
        WrError err = {0};
        WrStatus st = parse(&p, &w, &m, &err);
        if (st != WR_OK) fail_msg("sample %zu (%s): %s", i, s->expect, err.msg);
        assert_int_equal(m.type, s->type);
        StrBuf b;
        strbuf_init(&b);
        pgo_format_message(&m, &b);
        assert_string_equal(b.data, s->expect);
        strbuf_free(&b);
    }
}

/* Every proper prefix of every sample is rejected, with state and output untouched. */
static void test_samples_truncated_everywhere(void **state)
{
    (void)state;
    size_t checked = 0;
    for (size_t i = 0; i < NSAMPLES; i++) {
        const Sample *s = &samples[i];
        TsWire w = {0};
        s->build(&w);
        for (size_t n = 0; n < w.n; n++) {
            PgoParser p = sample_parser(s);
            PgoParser before = p;
            PgoMessage m;
            memset(&m, 0x5A, sizeof(m));
            PgoMessage sentinel = m;
            WrError err = {0};
            /* A copy of exactly n bytes so ASan/valgrind see any over-read. */
            uint8_t copy[sizeof(w.b)];
            memcpy(copy, w.b, n);
            WrStatus st = pgo_parse_message(&p, n ? copy : NULL, n, &m, &err);
            if (st != WR_PROTOCOL) fail_msg("sample %zu prefix %zu: status %d", i, n, st);
            assert_parser_equal(&before, &p);
            assert_memory_equal(&sentinel, &m, sizeof(m));
            assert_non_null(strstr(err.msg, "offset"));
            if (n > 0) {
                char want[64];
                snprintf(want, sizeof(want), "pgoutput %s: ", pgo_message_type_name(s->type));
                assert_true(strncmp(err.msg, want, strlen(want)) == 0);
            }
            checked++;
        }
    }
    assert_int_equal(checked, 692); /* the sum of the sample lengths: every prefix was tried */
}

/* Trailing garbage after every complete sample is rejected. */
static void test_samples_trailing(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSAMPLES; i++) {
        const Sample *s = &samples[i];
        TsWire w = {0};
        s->build(&w);
        size_t n = w.n;
        tw_u8(&w, 0);
        PgoParser p = sample_parser(s);
        char want[128];
        snprintf(want, sizeof(want), "pgoutput %s: 1 trailing bytes at offset %zu", pgo_message_type_name(s->type), n);
        expect_error(&p, &w, want);
    }
}

/* ---- field-level checks per message ---- */

static void parse_ok(PgoParser *p, void (*build)(TsWire *), PgoMessage *m, TsWire *w)
{
    memset(w, 0, sizeof(*w));
    build(w);
    WrError err = {0};
    WrStatus st = parse(p, w, m, &err);
    if (st != WR_OK) fail_msg("%s", err.msg);
}

static void test_begin_commit_origin(void **state)
{
    (void)state;
    PgoParser p;
    pgo_parser_init(&p, 1, false);
    PgoMessage m;
    TsWire w;
    parse_ok(&p, mk_begin, &m, &w);
    assert_int_equal(m.type, PGO_MSG_BEGIN);
    assert_true(m.u.begin.final_lsn == LSN2);
    assert_true(m.u.begin.commit_time == TS1);
    assert_int_equal(m.u.begin.xid, 735);

    parse_ok(&p, mk_commit, &m, &w);
    assert_int_equal(m.u.commit.flags, 0);
    assert_true(m.u.commit.commit_lsn == LSN1);
    assert_true(m.u.commit.end_lsn == LSN2);
    assert_true(m.u.commit.commit_time == TS1);

    parse_ok(&p, mk_origin, &m, &w);
    assert_true(m.u.origin.origin_lsn == LSN1);
    assert_string_equal(m.u.origin.name, "node'a");
    /* The name points into the buffer. */
    assert_ptr_equal(m.u.origin.name, (const char *)w.b + 9);
    assert_false(p.in_stream);
}

static void test_relation_columns(void **state)
{
    (void)state;
    PgoParser p;
    pgo_parser_init(&p, 1, false);
    PgoMessage m;
    TsWire w;
    parse_ok(&p, mk_relation, &m, &w);
    const PgoRelation *rel = &m.u.relation;
    assert_false(rel->has_xid);
    assert_int_equal(rel->relid, 16385);
    assert_string_equal(rel->nspname, "public");
    assert_string_equal(rel->relname, "items");
    assert_int_equal(rel->replident, 'd');
    assert_int_equal(rel->ncols, 3);
    PgoRelColumnIter it;
    pgo_relation_iter_init(&it, rel);
    PgoRelColumn c = ts_expect_column(&it, "id", 23);
    assert_int_equal(c.flags, 1);
    assert_int_equal(c.typmod, -1);
    c = ts_expect_column(&it, "name", 1043);
    assert_int_equal(c.flags, 0);
    assert_int_equal(c.typmod, 68);
    ts_expect_column(&it, "mood", 16390);
    assert_false(pgo_relation_next_column(&it, &c));
    assert_false(pgo_relation_next_column(&it, &c));

    parse_ok(&p, mk_type, &m, &w);
    assert_false(m.u.type.has_xid);
    assert_int_equal(m.u.type.type_oid, 16390);
    assert_string_equal(m.u.type.nspname, "public");
    assert_string_equal(m.u.type.typname, "mood");
}

static void check_value(PgoTupleIter *it, PgoColumnKind kind, const void *data, uint32_t len)
{
    PgoValue v;
    assert_true(pgo_tuple_next(it, &v));
    assert_int_equal(v.kind, kind);
    assert_int_equal(v.len, len);
    if (data) {
        assert_non_null(v.data);
        assert_memory_equal(v.data, data, len);
    } else {
        assert_null(v.data);
    }
}

static void test_insert_all_kinds(void **state)
{
    (void)state;
    PgoParser p;
    pgo_parser_init(&p, 1, false);
    PgoMessage m;
    TsWire w;
    parse_ok(&p, mk_insert, &m, &w);
    const PgoChange *c = &m.u.change;
    assert_false(c->has_xid);
    assert_int_equal(c->relid, 16385);
    assert_int_equal(c->old_kind, 0);
    assert_int_equal(c->new_tuple.ncols, 5);
    PgoTupleIter it;
    pgo_tuple_iter_init(&it, &c->new_tuple);
    check_value(&it, PGO_COL_TEXT, "1", 1);
    check_value(&it, PGO_COL_NULL, NULL, 0);
    check_value(&it, PGO_COL_UNCHANGED_TOAST, NULL, 0);
    check_value(&it, PGO_COL_BINARY, "\x0a\x0b", 2);
    check_value(&it, PGO_COL_TEXT, "", 0);
    PgoValue v;
    assert_false(pgo_tuple_next(&it, &v));
    assert_int_equal(it.index, 5);
}

static void test_update_delete_variants(void **state)
{
    (void)state;
    PgoParser p;
    pgo_parser_init(&p, 1, false);
    PgoMessage m;
    TsWire w;
    PgoTupleIter it;
    PgoValue v;

    parse_ok(&p, mk_update_plain, &m, &w);
    assert_int_equal(m.u.change.old_kind, 0);
    assert_int_equal(m.u.change.old_tuple.ncols, 0);
    pgo_tuple_iter_init(&it, &m.u.change.new_tuple);
    check_value(&it, PGO_COL_TEXT, "1", 1);
    check_value(&it, PGO_COL_UNCHANGED_TOAST, NULL, 0);
    assert_false(pgo_tuple_next(&it, &v));

    parse_ok(&p, mk_update_key, &m, &w);
    assert_int_equal(m.u.change.old_kind, 'K');
    pgo_tuple_iter_init(&it, &m.u.change.old_tuple);
    check_value(&it, PGO_COL_TEXT, "1", 1);
    check_value(&it, PGO_COL_NULL, NULL, 0);
    assert_false(pgo_tuple_next(&it, &v));
    pgo_tuple_iter_init(&it, &m.u.change.new_tuple);
    check_value(&it, PGO_COL_TEXT, "2", 1);
    check_value(&it, PGO_COL_TEXT, "x", 1);
    assert_false(pgo_tuple_next(&it, &v));

    parse_ok(&p, mk_delete_key, &m, &w);
    assert_int_equal(m.type, PGO_MSG_DELETE);
    assert_int_equal(m.u.change.old_kind, 'K');
    assert_int_equal(m.u.change.new_tuple.ncols, 0);
    pgo_tuple_iter_init(&it, &m.u.change.old_tuple);
    check_value(&it, PGO_COL_TEXT, "7", 1);
    check_value(&it, PGO_COL_NULL, NULL, 0);
    assert_false(pgo_tuple_next(&it, &v));

    parse_ok(&p, mk_delete_old, &m, &w);
    assert_int_equal(m.u.change.old_kind, 'O');
    pgo_tuple_iter_init(&it, &m.u.change.old_tuple);
    check_value(&it, PGO_COL_BINARY, "", 0);
    assert_false(pgo_tuple_next(&it, &v));
}

static void test_truncate_and_message(void **state)
{
    (void)state;
    PgoParser p;
    pgo_parser_init(&p, 2, false);
    PgoMessage m;
    TsWire w;
    parse_ok(&p, mk_truncate, &m, &w);
    assert_int_equal(m.u.truncate.nrelids, 2);
    assert_int_equal(m.u.truncate.options, PGO_TRUNCATE_CASCADE | PGO_TRUNCATE_RESTART_IDENTITY);
    assert_int_equal(pgo_truncate_relid(&m.u.truncate, 0), 16385);
    assert_int_equal(pgo_truncate_relid(&m.u.truncate, 1), 16390);
    assert_int_equal(pgo_truncate_relid(&m.u.truncate, 2), 0);

    parse_ok(&p, mk_message, &m, &w);
    assert_false(m.u.message.has_xid);
    assert_true(m.u.message.transactional);
    assert_true(m.u.message.lsn == LSN1);
    assert_string_equal(m.u.message.prefix, "walrev.ctx");
    assert_int_equal(m.u.message.content_len, 9);
    assert_memory_equal(m.u.message.content, "{\"a\":\"b\"}", 9);
}

/* Stream Start sets in_stream, changes then carry an xid, Stream Stop clears it. */
static void test_streaming_xid(void **state)
{
    (void)state;
    PgoParser p;
    pgo_parser_init(&p, 2, false);
    PgoMessage m;
    TsWire w;
    WrError err = {0};

    /* Outside a block, the stream-form insert (with xid) is misparsed: 902 as relid, then 0x00 marker. */
    memset(&w, 0, sizeof(w));
    mk_insert_stream(&w);
    expect_error(&p, &w, "pgoutput insert: expected 'N' at offset 5, got 0x00");

    parse_ok(&p, mk_stream_start, &m, &w);
    assert_int_equal(m.u.stream_start.xid, 900);
    assert_true(m.u.stream_start.first_segment);
    assert_true(p.in_stream);

    parse_ok(&p, mk_insert_stream, &m, &w);
    assert_true(m.u.change.has_xid);
    assert_int_equal(m.u.change.xid, 902);
    assert_int_equal(m.u.change.relid, 16385);

    parse_ok(&p, mk_relation_stream, &m, &w);
    assert_true(m.u.relation.has_xid);
    assert_int_equal(m.u.relation.xid, 900);
    assert_int_equal(m.u.relation.ncols, 0);

    parse_ok(&p, mk_truncate_stream, &m, &w);
    assert_int_equal(m.u.truncate.xid, 904);
    assert_int_equal(pgo_truncate_relid(&m.u.truncate, 0), 16385);

    parse_ok(&p, mk_message_stream, &m, &w);
    assert_int_equal(m.u.message.xid, 905);
    assert_false(m.u.message.transactional);
    assert_int_equal(m.u.message.content_len, 0);

    /* A second Stream Start inside a block is rejected; state stays in_stream. */
    memset(&w, 0, sizeof(w));
    mk_stream_start(&w);
    expect_error(&p, &w, "pgoutput stream start: unexpected inside a streaming block, at offset 0");
    assert_true(p.in_stream);

    parse_ok(&p, mk_stream_stop, &m, &w);
    assert_int_equal(m.type, PGO_MSG_STREAM_STOP);
    assert_false(p.in_stream);

    memset(&w, 0, sizeof(w));
    mk_stream_stop(&w);
    expect_error(&p, &w, "pgoutput stream stop: unexpected outside a streaming block, at offset 0");
    assert_false(p.in_stream);

    /* Outside the block, the plain insert carries no xid. */
    parse_ok(&p, mk_insert, &m, &w);
    assert_false(m.u.change.has_xid);
    assert_int_equal(m.u.change.xid, 0);

    parse_ok(&p, mk_stream_commit, &m, &w);
    assert_int_equal(m.u.stream_commit.xid, 900);
    assert_true(m.u.stream_commit.commit_lsn == LSN1);
    assert_true(m.u.stream_commit.end_lsn == LSN2);
    assert_true(m.u.stream_commit.commit_time == TS1);
    (void)err;
}

static void test_stream_abort_versions(void **state)
{
    (void)state;
    PgoMessage m;
    TsWire w;
    PgoParser p;

    /* v2 and v4 without parallel: xid + subxid only; the v4 form has trailing bytes. */
    pgo_parser_init(&p, 2, true);
    parse_ok(&p, mk_stream_abort, &m, &w);
    assert_int_equal(m.u.stream_abort.xid, 900);
    assert_int_equal(m.u.stream_abort.subxid, 906);
    assert_false(m.u.stream_abort.has_abort_info);
    memset(&w, 0, sizeof(w));
    mk_stream_abort_v4(&w);
    expect_error(&p, &w, "pgoutput stream abort: 16 trailing bytes at offset 9");

    pgo_parser_init(&p, 4, false);
    expect_error(&p, &w, "pgoutput stream abort: 16 trailing bytes at offset 9");

    /* v4 with streaming=parallel: abort_lsn and abort_time are required. */
    pgo_parser_init(&p, 4, true);
    parse_ok(&p, mk_stream_abort_v4, &m, &w);
    assert_true(m.u.stream_abort.has_abort_info);
    assert_true(m.u.stream_abort.abort_lsn == LSN2);
    assert_true(m.u.stream_abort.abort_time == TS1);
    memset(&w, 0, sizeof(w));
    mk_stream_abort(&w);
    expect_error(&p, &w, "pgoutput stream abort: truncated at offset 9: need 8 bytes for abort_lsn, 0 remain");
}

static void test_two_phase(void **state)
{
    (void)state;
    PgoParser p;
    pgo_parser_init(&p, 3, false);
    PgoMessage m;
    TsWire w;
    parse_ok(&p, mk_begin_prepare, &m, &w);
    assert_int_equal(m.u.two_phase.flags, 0);
    assert_true(m.u.two_phase.lsn == LSN1);
    assert_true(m.u.two_phase.end_lsn == LSN2);
    assert_true(m.u.two_phase.time == TS1);
    assert_int_equal(m.u.two_phase.xid, 735);
    assert_string_equal(m.u.two_phase.gid, "gid-1");

    void (*builders[])(TsWire *) = {mk_prepare, mk_stream_prepare, mk_commit_prepared};
    PgoMessageType types[] = {PGO_MSG_PREPARE, PGO_MSG_STREAM_PREPARE, PGO_MSG_COMMIT_PREPARED};
    for (size_t i = 0; i < 3; i++) {
        parse_ok(&p, builders[i], &m, &w);
        assert_int_equal(m.type, types[i]);
        assert_true(m.u.two_phase.lsn == LSN1);
        assert_true(m.u.two_phase.end_lsn == LSN2);
        assert_true(m.u.two_phase.time == TS1);
        assert_int_equal(m.u.two_phase.xid, 735);
        assert_string_equal(m.u.two_phase.gid, "gid-1");
    }

    parse_ok(&p, mk_rollback_prepared, &m, &w);
    assert_true(m.u.rollback_prepared.prepare_end_lsn == LSN1);
    assert_true(m.u.rollback_prepared.rollback_end_lsn == LSN2);
    assert_true(m.u.rollback_prepared.prepare_time == TS1);
    assert_true(m.u.rollback_prepared.rollback_time == TS1 + 1);
    assert_int_equal(m.u.rollback_prepared.xid, 735);
    assert_string_equal(m.u.rollback_prepared.gid, "gid-1");
}

/* Flags no protocol version defines are rejected, as PostgreSQL's proto.c does. */
static void test_unknown_flags(void **state)
{
    (void)state;
    PgoParser p;
    pgo_parser_init(&p, 3, false);
    TsWire w;
    memset(&w, 0, sizeof(w));
    mk_commit(&w);
    w.b[1] = 1;
    expect_error(&p, &w, "pgoutput commit: unrecognized flags 1 at offset 1");
    memset(&w, 0, sizeof(w));
    mk_prepare(&w);
    w.b[1] = 0x80;
    expect_error(&p, &w, "pgoutput prepare: unrecognized flags 128 at offset 1");
    memset(&w, 0, sizeof(w));
    mk_rollback_prepared(&w);
    w.b[1] = 2;
    expect_error(&p, &w, "pgoutput rollback prepared: unrecognized flags 2 at offset 1");
}

/* Iterators stay in bounds even over hand-made (unvalidated) views. */
static void test_iterators_defensive(void **state)
{
    (void)state;
    const uint8_t bytes[] = {'t', 0, 0, 0, 9, 'a'};
    PgoTuple t = {.ncols = 3, .data = bytes, .len = sizeof(bytes)};
    PgoTupleIter it;
    PgoValue v;
    pgo_tuple_iter_init(&it, &t);
    assert_false(pgo_tuple_next(&it, &v));
    t.len = 0;
    pgo_tuple_iter_init(&it, &t);
    assert_false(pgo_tuple_next(&it, &v));

    const uint8_t cols[] = {1, 'i', 'd', 0, 0, 0, 0, 23};
    PgoRelation rel = {.ncols = 1, .columns = cols, .columns_len = sizeof(cols)};
    PgoRelColumnIter ci;
    PgoRelColumn c;
    pgo_relation_iter_init(&ci, &rel);
    assert_false(pgo_relation_next_column(&ci, &c));
    const uint8_t noname[] = {1, 'i', 'd'};
    rel.columns = noname;
    rel.columns_len = sizeof(noname);
    pgo_relation_iter_init(&ci, &rel);
    assert_false(pgo_relation_next_column(&ci, &c));
}

/* ---- malformed input classes, with exact messages ---- */

/* One malformed message: its bytes as a C string (fields as separate literals,
 * so that an octal escape never runs into the next field), and the exact error. */
typedef struct {
    const char *bytes;
    size_t len;
    const char *msg;
} ErrCase;
#define ERR_BYTES(s) (s), sizeof(s) - 1

/* Each case in order through the one parser p (expect_error checks its state stays as it was). */
static void expect_errors(PgoParser *p, const ErrCase *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        TsWire w = {0};
        tw_bytes(&w, cases[i].bytes, cases[i].len);
        expect_error(p, &w, cases[i].msg);
    }
}

static void test_errors_exact(void **state)
{
    (void)state;
    PgoParser p;
    pgo_parser_init(&p, 2, false);
    static const ErrCase cases[] = {
        /* Empty and unknown types. */
        {ERR_BYTES(""), "pgoutput: empty message at offset 0"},
        {ERR_BYTES("Z"), "pgoutput: unknown message type 'Z' (0x5a) at offset 0"},
        {ERR_BYTES("\0"), "pgoutput: unknown message type 0x00 at offset 0"},
        /* Truncated relation id, as in the documented example. */
        {ERR_BYTES("I"
                   "\0\1"),
         "pgoutput insert: truncated at offset 1: need 4 bytes for relation id, 2 remain"},
        /* Unknown tuple kind: relid 1, 'N', 2 columns, 'n', 'x'. */
        {ERR_BYTES("I"
                   "\0\0\0\1"
                   "N"
                   "\0\2"
                   "n"
                   "x"),
         "pgoutput insert: unknown column kind 0x78 at offset 9 (new tuple, column 1)"},
        /* Negative value length: 't' with length 0xFFFFFFFE. */
        {ERR_BYTES("I"
                   "\0\0\0\1"
                   "N"
                   "\0\1"
                   "t"
                   "\377\377\377\376"),
         "pgoutput insert: negative value length -2 at offset 9 (new tuple, column 0)"},
        /* Length beyond the buffer: 'b' with length 1000, 3 bytes follow. */
        {ERR_BYTES("I"
                   "\0\0\0\1"
                   "N"
                   "\0\1"
                   "b"
                   "\0\0\3\350"
                   "abc"),
         "pgoutput insert: truncated at offset 13: need 1000 bytes for value, 3 remain "
         "(new tuple, column 0)"},
        /* ncols (65535) larger than what follows. */
        {ERR_BYTES("I"
                   "\0\0\0\1"
                   "N"
                   "\377\377"
                   "n"),
         "pgoutput insert: truncated at offset 9: need 1 bytes for column kind, 0 remain "
         "(new tuple, column 1)"},
    };
    expect_errors(&p, cases, sizeof cases / sizeof cases[0]);
}

/* Markers, strings, counts and trailing bytes, with exact messages. */
static void test_errors_exact_markers(void **state)
{
    (void)state;
    PgoParser p;
    pgo_parser_init(&p, 2, false);
    static const ErrCase cases[] = {
        /* Bad markers. */
        {ERR_BYTES("U"
                   "\0\0\0\1"
                   "X"),
         "pgoutput update: expected 'K', 'O' or 'N' at offset 5, got 0x58"},
        {ERR_BYTES("U"
                   "\0\0\0\1"
                   "K"
                   "\0\1"
                   "n"
                   "K"
                   "\0\0"),
         "pgoutput update: expected 'N' at offset 9, got 0x4b"},
        {ERR_BYTES("D"
                   "\0\0\0\1"
                   "N"
                   "\0\0"),
         "pgoutput delete: expected 'K' or 'O' at offset 5, got 0x4e"},
        {ERR_BYTES("I"
                   "\0\0\0\1"
                   "O"
                   "\0\0"),
         "pgoutput insert: expected 'N' at offset 5, got 0x4f"},
        /* Missing NUL in a string: an origin (lsn 1), a relation's column name. */
        {ERR_BYTES("O"
                   "\0\0\0\0\0\0\0\1"
                   "abc"),
         "pgoutput origin: unterminated string for origin name at offset 9: no NUL in the 3 "
         "remaining bytes"},
        {ERR_BYTES("R"
                   "\0\0\0\1"
                   "s\0"
                   "t\0"
                   "d"
                   "\0\1"
                   "\0"
                   "colname"),
         "pgoutput relation: unterminated string for column name at offset 13: no NUL in the "
         "7 remaining bytes (relation columns, column 0)"},
        /* Negative and oversized counts. */
        {ERR_BYTES("T"
                   "\200\0\0\0"
                   "\0"),
         "pgoutput truncate: negative relation count -2147483648 at offset 1"},
        {ERR_BYTES("T"
                   "\177\377\377\377"
                   "\0"
                   "\0\0\100\1"),
         "pgoutput truncate: truncated at offset 6: need 8589934588 bytes for relation ids, 4 "
         "remain"},
        {ERR_BYTES("M"
                   "\1"
                   "\0\0\0\0\0\0\0\1"
                   "p\0"
                   "\377\377\377\377"),
         "pgoutput message: negative content length -1 at offset 12"},
        {ERR_BYTES("M"
                   "\1"
                   "\0\0\0\0\0\0\0\1"
                   "p\0"
                   "\0\0\0\5"
                   "abcd"),
         "pgoutput message: truncated at offset 16: need 5 bytes for content, 4 remain"},
    };
    expect_errors(&p, cases, sizeof cases / sizeof cases[0]);

    /* Trailing garbage after a stream stop. */
    p.in_stream = true;
    TsWire w = {0};
    tw_u8(&w, 'E');
    tw_u8(&w, 'E');
    expect_error(&p, &w, "pgoutput stream stop: 1 trailing bytes at offset 1");
    assert_true(p.in_stream);

    /* A NULL err is allowed. */
    PgoMessage m;
    assert_int_equal(pgo_parse_message(&p, w.b, w.n, &m, NULL), WR_PROTOCOL);
}

/* ---- CopyData envelope and status update ---- */

static void test_copydata_xlogdata(void **state)
{
    (void)state;
    TsWire w = {0};
    tw_u8(&w, 'w');
    tw_u64(&w, LSN1);
    tw_u64(&w, LSN2);
    tw_u64(&w, (uint64_t)TS1);
    mk_begin(&w);
    PgoCopyData c;
    WrError err = {0};
    assert_int_equal(pgo_parse_copydata(w.b, w.n, &c, &err), WR_OK);
    assert_int_equal(c.kind, PGO_COPY_XLOGDATA);
    assert_int_equal(c.raw_kind, 'w');
    assert_true(c.wal_start == LSN1);
    assert_true(c.wal_end == LSN2);
    assert_true(c.send_time == TS1);
    assert_false(c.reply_requested);
    assert_ptr_equal(c.payload, w.b + 25);
    assert_int_equal(c.payload_len, 21);
    PgoParser p;
    pgo_parser_init(&p, 1, false);
    PgoMessage m;
    assert_int_equal(pgo_parse_message(&p, c.payload, c.payload_len, &m, &err), WR_OK);
    assert_int_equal(m.u.begin.xid, 735);

    /* Header only: an empty payload is a valid envelope. */
    assert_int_equal(pgo_parse_copydata(w.b, 25, &c, &err), WR_OK);
    assert_int_equal(c.payload_len, 0);

    /* Every shorter prefix fails and leaves out untouched. */
    for (size_t n = 0; n < 25; n++) {
        uint8_t copy[25];
        memcpy(copy, w.b, n);
        PgoCopyData o;
        memset(&o, 0x77, sizeof(o));
        PgoCopyData sentinel = o;
        assert_int_equal(pgo_parse_copydata(n ? copy : NULL, n, &o, &err), WR_PROTOCOL);
        assert_memory_equal(&o, &sentinel, sizeof(o));
    }
    assert_int_equal(pgo_parse_copydata(w.b, 0, &c, &err), WR_PROTOCOL);
    assert_string_equal(err.msg, "copydata: empty message at offset 0");
    assert_int_equal(pgo_parse_copydata(w.b, 12, &c, &err), WR_PROTOCOL);
    assert_string_equal(err.msg, "copydata xlogdata: truncated at offset 9: need 8 bytes for walEnd, 3 remain");
}

static void test_copydata_keepalive(void **state)
{
    (void)state;
    TsWire w = {0};
    tw_u8(&w, 'k');
    tw_u64(&w, LSN2);
    tw_u64(&w, (uint64_t)TS1);
    tw_u8(&w, 1);
    PgoCopyData c;
    WrError err = {0};
    assert_int_equal(pgo_parse_copydata(w.b, w.n, &c, &err), WR_OK);
    assert_int_equal(c.kind, PGO_COPY_KEEPALIVE);
    assert_int_equal(c.raw_kind, 'k');
    assert_true(c.wal_start == 0);
    assert_true(c.wal_end == LSN2);
    assert_true(c.send_time == TS1);
    assert_true(c.reply_requested);
    assert_null(c.payload);
    assert_int_equal(c.payload_len, 0);

    w.b[17] = 0;
    assert_int_equal(pgo_parse_copydata(w.b, w.n, &c, &err), WR_OK);
    assert_false(c.reply_requested);

    for (size_t n = 1; n < 18; n++) {
        uint8_t copy[18];
        memcpy(copy, w.b, n);
        assert_int_equal(pgo_parse_copydata(copy, n, &c, &err), WR_PROTOCOL);
    }
    assert_int_equal(pgo_parse_copydata(w.b, 17, &c, &err), WR_PROTOCOL);
    assert_string_equal(err.msg, "copydata keepalive: truncated at offset 17: need 1 bytes for replyRequested, "
                                 "0 remain");
}

static void test_copydata_unknown(void **state)
{
    (void)state;
    const uint8_t buf[] = {'p', 1, 2, 3};
    PgoCopyData c;
    WrError err = {0};
    assert_int_equal(pgo_parse_copydata(buf, sizeof(buf), &c, &err), WR_OK);
    assert_int_equal(c.kind, PGO_COPY_UNKNOWN);
    assert_int_equal(c.raw_kind, 'p');
    assert_null(c.payload);
    assert_int_equal(pgo_parse_copydata(buf, 1, &c, &err), WR_OK);
    assert_int_equal(c.kind, PGO_COPY_UNKNOWN);
}

static void test_status_update(void **state)
{
    (void)state;
    uint8_t out[PGO_STATUS_UPDATE_SIZE];
    memset(out, 0xEE, sizeof(out));
    size_t n = pgo_encode_status_update(out, UINT64_C(0x0102030405060708), LSN1, LSN2, INT64_C(-2), true);
    assert_int_equal(n, 34);
    const uint8_t want[34] = {'r',  0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x00, 0x00, 0x00,
                              0x00, 0x01, 0x6B, 0x37, 0x48, 0x00, 0x10, 0x00, 0x00, 0x01, 0x6B, 0x37,
                              0x90, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0x01};
    assert_memory_equal(out, want, 34);
    n = pgo_encode_status_update(out, 0, 0, 0, 0, false);
    assert_int_equal(n, 34);
    assert_int_equal(out[0], 'r');
    for (size_t i = 1; i < 34; i++) assert_int_equal(out[i], 0);
}

/* ---- names and formatting details ---- */

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(pgo_message_type_name(PGO_MSG_BEGIN), "begin");
    assert_string_equal(pgo_message_type_name(PGO_MSG_STREAM_COMMIT), "stream commit");
    assert_string_equal(pgo_message_type_name(PGO_MSG_ROLLBACK_PREPARED), "rollback prepared");
    assert_string_equal(pgo_message_type_name((PgoMessageType)'Z'), "unknown");
}

static void test_format_escapes(void **state)
{
    (void)state;
    TsWire w = {0};
    tw_u8(&w, 'I');
    tw_u32(&w, 7);
    tw_u8(&w, 'N');
    tw_u16(&w, 3);
    tw_u8(&w, 't');
    tw_u32(&w, 6);
    tw_bytes(&w, "\x00\x1f\x7f '\\", 6);
    tw_u8(&w, 'b');
    tw_u32(&w, 3);
    tw_bytes(&w, "\x00\xff\x10", 3);
    tw_text(&w, "\xc3\xa9");
    PgoParser p;
    pgo_parser_init(&p, 1, false);
    PgoMessage m;
    WrError err = {0};
    assert_int_equal(parse(&p, &w, &m, &err), WR_OK);
    StrBuf b;
    strbuf_init(&b);
    strbuf_append_str(&b, "> ");
    pgo_format_message(&m, &b); /* appends */
    assert_string_equal(b.data, "> insert rel=7 new=(t:'\\x00\\x1f\\x7f \\'\\\\',b:\\x00ff10,t:'\\xc3\\xa9')");
    strbuf_free(&b);

    /* Unknown truncate option bits and odd replica identity print as hex. */
    memset(&w, 0, sizeof(w));
    tw_u8(&w, 'T');
    tw_u32(&w, 0);
    tw_u8(&w, 0x81);
    assert_int_equal(parse(&p, &w, &m, &err), WR_OK);
    strbuf_init(&b);
    pgo_format_message(&m, &b);
    assert_string_equal(b.data, "truncate rels=() options=cascade,0x80");
    strbuf_free(&b);

    memset(&w, 0, sizeof(w));
    tw_relation(&w, 1, "s", "t\x01", 0, 0);
    assert_int_equal(parse(&p, &w, &m, &err), WR_OK);
    strbuf_init(&b);
    pgo_format_message(&m, &b);
    assert_string_equal(b.data, "relation rel=1 nsp='s' name='t\\x01' replident=\\x00 cols=()");
    strbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples_format),
        cmocka_unit_test(test_samples_truncated_everywhere),
        cmocka_unit_test(test_samples_trailing),
        cmocka_unit_test(test_begin_commit_origin),
        cmocka_unit_test(test_relation_columns),
        cmocka_unit_test(test_insert_all_kinds),
        cmocka_unit_test(test_update_delete_variants),
        cmocka_unit_test(test_truncate_and_message),
        cmocka_unit_test(test_streaming_xid),
        cmocka_unit_test(test_stream_abort_versions),
        cmocka_unit_test(test_two_phase),
        cmocka_unit_test(test_iterators_defensive),
        cmocka_unit_test(test_errors_exact),
        cmocka_unit_test(test_errors_exact_markers),
        cmocka_unit_test(test_copydata_xlogdata),
        cmocka_unit_test(test_copydata_keepalive),
        cmocka_unit_test(test_copydata_unknown),
        cmocka_unit_test(test_status_update),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_format_escapes),
        cmocka_unit_test(test_unknown_flags),
    };
    return cmocka_run_group_tests_name("pgoutput", tests, NULL, NULL);
}
