/*
 * fuzz_pgoutput.c — libFuzzer target for the pgoutput parser. Each input is
 * parsed as a CopyData envelope (and its XLogData payload) and as a bare
 * pgoutput message under every parser mode (protocol 1–4, streaming=parallel
 * on/off, inside/outside a streaming block); every accepted message is fully
 * iterated and formatted. ASan/UBSan report any out-of-bounds read.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decoder/pgoutput.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void consume(const PgoMessage *m, StrBuf *out)
{
    PgoTupleIter it;
    PgoValue v;
    volatile size_t sink = 0;
    switch (m->type) {
    case PGO_MSG_INSERT:
    case PGO_MSG_UPDATE:
    case PGO_MSG_DELETE: {
        const PgoTuple *tuples[2] = {&m->u.change.old_tuple, &m->u.change.new_tuple};
        for (int t = 0; t < 2; t++) {
            uint16_t n = 0;
            pgo_tuple_iter_init(&it, tuples[t]);
            while (pgo_tuple_next(&it, &v)) {
                for (uint32_t i = 0; i < v.len; i++) sink += v.data[i];
                n++;
            }
            /* Validation at parse time means iteration always yields ncols values. */
            if (n != tuples[t]->ncols) abort();
        }
        break;
    }
    case PGO_MSG_RELATION: {
        PgoRelColumnIter ci;
        PgoRelColumn c;
        uint16_t n = 0;
        pgo_relation_iter_init(&ci, &m->u.relation);
        while (pgo_relation_next_column(&ci, &c)) {
            sink += strlen(c.name) + c.type_oid;
            n++;
        }
        if (n != m->u.relation.ncols) abort();
        break;
    }
    case PGO_MSG_TRUNCATE:
        for (uint32_t i = 0; i < m->u.truncate.nrelids; i++) sink += pgo_truncate_relid(&m->u.truncate, i);
        break;
    case PGO_MSG_MESSAGE:
        for (uint32_t i = 0; i < m->u.message.content_len; i++) sink += m->u.message.content[i];
        break;
    default: break;
    }
    (void)sink;
    strbuf_reset(out);
    pgo_format_message(m, out);
    if (strlen(out->data) != out->len) abort(); /* the format never emits a raw NUL */
}

static void parse_all_modes(const uint8_t *data, size_t size, StrBuf *out)
{
    for (int proto = 1; proto <= 4; proto++) {
        for (int mode = 0; mode < 4; mode++) {
            PgoParser p;
            pgo_parser_init(&p, proto, (mode & 1) != 0);
            p.in_stream = (mode & 2) != 0;
            PgoParser before = p;
            PgoMessage m;
            WrError err;
            if (pgo_parse_message(&p, data, size, &m, &err) == WR_OK) {
                consume(&m, out);
            } else {
                /* state unchanged on error */
                if (before.in_stream != p.in_stream || before.proto_version != p.proto_version ||
                    before.streaming_parallel != p.streaming_parallel)
                    abort();
                if (err.status != WR_PROTOCOL || strlen(err.msg) == 0) abort();
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exactly-sized heap copy so any over-read past size is caught by ASan. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    StrBuf out;
    strbuf_init(&out);

    PgoCopyData c;
    WrError err;
    if (pgo_parse_copydata(buf, size, &c, &err) == WR_OK && c.kind == PGO_COPY_XLOGDATA)
        parse_all_modes(c.payload, c.payload_len, &out);
    parse_all_modes(buf, size, &out);

    strbuf_free(&out);
    free(buf);
    return 0;
}
