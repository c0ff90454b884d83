/*
 * decoder_bench.c — throughput of the pgoutput parser alone. Decodes captured
 * fixture files (records of uint32 big-endian length + raw CopyData bytes)
 * given as arguments, or a synthetic in-memory stream, over and over for about
 * --seconds, touching every tuple value, and prints the median MB/s and
 * messages/s of 5 runs. No server, no sink: only pgo_parse_copydata/_message.
 *
 * usage: decoder_bench [--seconds S] [--proto N] [--parallel] [fixture.bin ...]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decoder/pgoutput.h"

#define RUNS 5

typedef struct {
    uint8_t *data; /* records: uint32 BE length + CopyData */
    size_t len;
    size_t nrecords;
} Stream;

static void stream_append(Stream *s, const void *p, size_t n, size_t *cap)
{
    if (s->len + n > *cap) {
        while (s->len + n > *cap) *cap = *cap ? *cap * 2 : 65536;
        s->data = xrealloc(s->data, *cap);
    }
    memcpy(s->data + s->len, p, n);
    s->len += n;
}

/* ---- synthetic stream: begin, 20 inserts of 12 columns, 5 updates with 'K', 5 deletes, commit ---- */

typedef struct {
    uint8_t b[4096];
    size_t n;
} Msg;

static void m_u8(Msg *m, uint8_t v) { m->b[m->n++] = v; }
static void m_u16(Msg *m, uint16_t v)
{
    m_u8(m, (uint8_t)(v >> 8));
    m_u8(m, (uint8_t)v);
}
static void m_u32(Msg *m, uint32_t v)
{
    wr_write_u32(m->b + m->n, v);
    m->n += 4;
}
static void m_u64(Msg *m, uint64_t v)
{
    wr_write_u64(m->b + m->n, v);
    m->n += 8;
}
static void m_text(Msg *m, const char *s)
{
    size_t n = strlen(s);
    m_u8(m, 't');
    m_u32(m, (uint32_t)n);
    memcpy(m->b + m->n, s, n);
    m->n += n;
}

static void row12(Msg *m, unsigned id, unsigned variant)
{
    char buf[128];
    m_u16(m, 12);
    snprintf(buf, sizeof(buf), "%u", id);
    m_text(m, buf);
    snprintf(buf, sizeof(buf), "customer-%u@example.com", id * 7 + variant);
    m_text(m, buf);
    m_text(m, variant % 2 ? "active" : "pending");
    snprintf(buf, sizeof(buf), "%u.%02u", id % 1000, variant % 100);
    m_text(m, buf);
    m_text(m, "2024-05-01 12:34:56.789012+00");
    m_u8(m, 'n');
    m_text(m, "t");
    snprintf(buf, sizeof(buf), "{\"k\":%u,\"tags\":[\"a\",\"b\"],\"note\":\"synthetic row %u\"}", id, variant);
    m_text(m, buf);
    m_u8(m, 'u');
    snprintf(buf, sizeof(buf), "%u", id * 31u);
    m_text(m, buf);
    m_text(m, "Lorem ipsum dolor sit amet, consectetur adipiscing elit");
    m_u8(m, 'b');
    m_u32(m, 8);
    m_u64(m, (uint64_t)id * 0x9E3779B97F4A7C15u);
}

/* An UPDATE ('U') or DELETE ('D') of relation 16385 up to its old key
 * tuple ('K': the id, the other 11 columns NULL); an UPDATE's new tuple follows. */
static void keyed_change(Msg *m, uint8_t kind, unsigned id)
{
    char buf[16];
    m->n = 0;
    m_u8(m, kind);
    m_u32(m, 16385);
    m_u8(m, 'K');
    m_u16(m, 12);
    snprintf(buf, sizeof(buf), "%u", id);
    m_text(m, buf);
    for (int c = 1; c < 12; c++) m_u8(m, 'n');
}

static void emit(Stream *s, size_t *cap, Lsn lsn, const Msg *m)
{
    uint8_t hdr[4 + 25];
    wr_write_u32(hdr, (uint32_t)(25 + m->n));
    hdr[4] = 'w';
    wr_write_u64(hdr + 5, lsn);
    wr_write_u64(hdr + 13, lsn);
    wr_write_u64(hdr + 21, 0);
    stream_append(s, hdr, sizeof(hdr), cap);
    stream_append(s, m->b, m->n, cap);
    s->nrecords++;
}

static void make_synthetic(Stream *s)
{
    size_t cap = 0;
    Lsn lsn = 0x1000000;
    unsigned id = 1;
    for (unsigned tx = 0; tx < 2000; tx++) {
        Msg m = {.n = 0};
        m_u8(&m, 'B');
        m_u64(&m, lsn + 100000);
        m_u64(&m, (uint64_t)757382400000000 + tx);
        m_u32(&m, 1000 + tx);
        emit(s, &cap, lsn, &m);
        for (unsigned i = 0; i < 20; i++) {
            m.n = 0;
            m_u8(&m, 'I');
            m_u32(&m, 16385);
            m_u8(&m, 'N');
            row12(&m, id++, i);
            emit(s, &cap, lsn += 200, &m);
        }
        for (unsigned i = 0; i < 5; i++) {
            keyed_change(&m, 'U', id - 1 - i);
            m_u8(&m, 'N');
            row12(&m, id - 1 - i, i + 50);
            emit(s, &cap, lsn += 200, &m);
        }
        for (unsigned i = 0; i < 5; i++) {
            keyed_change(&m, 'D', id - 10 - i);
            emit(s, &cap, lsn += 200, &m);
        }
        m.n = 0;
        m_u8(&m, 'C');
        m_u8(&m, 0);
        m_u64(&m, lsn);
        m_u64(&m, lsn + 48);
        m_u64(&m, (uint64_t)757382400000000 + tx);
        emit(s, &cap, lsn + 48, &m);
        lsn += 1000;
    }
}

static int load_fixture(Stream *s, size_t *cap, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "decoder_bench: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t lenbuf[4];
    uint8_t *rec = NULL;
    size_t reccap = 0;
    int rc = 0;
    while (fread(lenbuf, 1, 4, f) == 4) {
        uint32_t n = wr_read_u32(lenbuf);
        if (n > reccap) {
            reccap = n;
            rec = xrealloc(rec, reccap);
        }
        if (fread(rec, 1, n, f) != n) {
            fprintf(stderr, "decoder_bench: %s: truncated record\n", path);
            rc = -1;
            break;
        }
        stream_append(s, lenbuf, 4, cap);
        stream_append(s, rec, n, cap);
        s->nrecords++;
    }
    free(rec);
    fclose(f);
    return rc;
}

/* ---- one pass ---- */

typedef struct {
    size_t messages;
    size_t bytes;
    size_t errors;
    uint64_t checksum;
} PassStats;

static void decode_pass(const Stream *s, int proto, bool parallel, PassStats *st)
{
    PgoParser p;
    pgo_parser_init(&p, proto, parallel);
    size_t off = 0;
    while (off + 4 <= s->len) {
        uint32_t n = wr_read_u32(s->data + off);
        const uint8_t *rec = s->data + off + 4;
        off += 4 + (size_t)n;
        st->bytes += n;
        PgoCopyData c;
        WrError err;
        if (pgo_parse_copydata(rec, n, &c, &err) != WR_OK) {
            st->errors++;
            continue;
        }
        if (c.kind != PGO_COPY_XLOGDATA) continue;
        PgoMessage m;
        if (pgo_parse_message(&p, c.payload, c.payload_len, &m, &err) != WR_OK) {
            st->errors++;
            continue;
        }
        st->messages++;
        if (m.type == PGO_MSG_INSERT || m.type == PGO_MSG_UPDATE || m.type == PGO_MSG_DELETE) {
            const PgoTuple *tuples[2] = {&m.u.change.old_tuple, &m.u.change.new_tuple};
            for (int t = 0; t < 2; t++) {
                PgoTupleIter it;
                PgoValue v;
                pgo_tuple_iter_init(&it, tuples[t]);
                while (pgo_tuple_next(&it, &v)) {
                    st->checksum += (uint64_t)v.kind + v.len;
                    if (v.len) st->checksum += v.data[0] ^ v.data[v.len - 1];
                }
            }
        }
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    double seconds = 2.0;
    int proto = 4;
    bool parallel = false;
    Stream s = {0};
    size_t cap = 0;
    int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--proto") == 0 && i + 1 < argc) {
            proto = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--parallel") == 0) {
            parallel = true;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: %s [--seconds S] [--proto N] [--parallel] [fixture.bin ...]\n", argv[0]);
            return 2;
        } else {
            if (load_fixture(&s, &cap, argv[i]) != 0) return 1;
            nfiles++;
        }
    }
    if (nfiles == 0) make_synthetic(&s);
    if (s.nrecords == 0) {
        fprintf(stderr, "decoder_bench: no records\n");
        return 1;
    }

    /* Warm-up pass, also the per-pass totals. */
    PassStats once = {0};
    decode_pass(&s, proto, parallel, &once);
    printf("input: %s, %zu records, %.2f MB, %zu messages/pass, %zu errors/pass\n", nfiles ? "fixtures" : "synthetic",
           s.nrecords, (double)once.bytes / 1e6, once.messages, once.errors);

    double mbps[RUNS], mps[RUNS];
    uint64_t checksum = 0;
    for (int r = 0; r < RUNS; r++) {
        PassStats st = {0};
        double t0 = now_s(), t1;
        do {
            decode_pass(&s, proto, parallel, &st);
            t1 = now_s();
        } while (t1 - t0 < seconds / RUNS);
        mbps[r] = (double)st.bytes / 1e6 / (t1 - t0);
        mps[r] = (double)st.messages / (t1 - t0);
        checksum += st.checksum;
    }
    qsort(mbps, RUNS, sizeof(double), cmp_double);
    qsort(mps, RUNS, sizeof(double), cmp_double);
    printf("decoder: %.1f MB/s, %.0f messages/s (median of %d runs, min %.1f max %.1f MB/s) checksum=%llu\n",
           mbps[RUNS / 2], mps[RUNS / 2], RUNS, mbps[0], mbps[RUNS - 1], (unsigned long long)(checksum & 0xFFFF));
    free(s.data);
    return once.errors ? 1 : 0;
}
