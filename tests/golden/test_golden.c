/*
 * test_golden.c — decodes every captured pgoutput stream in fixtures/NAME.bin
 * (recorded from a real PostgreSQL 15 by walrev-capture; see README.md) and
 * compares the formatted messages, with LSNs, times, xids and OIDs replaced by
 * stable placeholders, to fixtures/NAME.expected; then asserts per-fixture
 * facts exactly. `test_golden DIR --regenerate` rewrites the .expected files.
 */
#include "tests/support/testsupport.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "decoder/pgoutput.h"

static const char *golden_dir;

/* ---- fixtures ---- */

typedef struct {
    char name[64];
    int proto;
    bool streaming_parallel;
    uint8_t *bin; /* the whole .bin file; messages point into it */
    size_t bin_len;
    size_t n;        /* records */
    PgoCopyData *cd; /* per record */
    PgoMessage *msg; /* per record */
} Fixture;

/* Read "-- @capture key=value" lines of NAME.sql: the stream options the parser needs. */
static void read_capture_options(Fixture *fx)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/fixtures/%s.sql", golden_dir, fx->name);
    char *sql = ts_read_file(path, NULL);
    if (!sql) fail_msg("missing workload %s", path);
    fx->proto = 1;
    for (char *line = strtok(sql, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "-- @capture", 11) != 0) continue;
        const char *p = strstr(line, "proto=");
        if (p) fx->proto = atoi(p + 6);
        if (strstr(line, "streaming=parallel")) fx->streaming_parallel = true;
    }
    free(sql);
}

/* Load and parse NAME.bin: every record must be XLogData holding a valid message. */
static Fixture *fixture_load(const char *name)
{
    Fixture *fx = calloc(1, sizeof(*fx));
    snprintf(fx->name, sizeof(fx->name), "%s", name);
    read_capture_options(fx);
    char path[1024];
    snprintf(path, sizeof(path), "%s/fixtures/%s.bin", golden_dir, name);
    fx->bin = (uint8_t *)ts_read_file(path, &fx->bin_len);
    if (!fx->bin) fail_msg("missing fixture %s", path);
    size_t cap = 64;
    fx->cd = malloc(cap * sizeof(*fx->cd));
    fx->msg = malloc(cap * sizeof(*fx->msg));
    PgoParser parser;
    pgo_parser_init(&parser, fx->proto, fx->streaming_parallel);
    size_t off = 0;
    while (off < fx->bin_len) {
        if (fx->bin_len - off < 4) fail_msg("%s: truncated length at byte %zu", path, off);
        uint32_t len = wr_read_u32(fx->bin + off);
        off += 4;
        if (len > fx->bin_len - off) fail_msg("%s: record %zu overruns the file", path, fx->n);
        if (fx->n == cap) {
            cap *= 2;
            fx->cd = realloc(fx->cd, cap * sizeof(*fx->cd));
            fx->msg = realloc(fx->msg, cap * sizeof(*fx->msg));
        }
        WrError err = {0};
        if (pgo_parse_copydata(fx->bin + off, len, &fx->cd[fx->n], &err) != WR_OK)
            fail_msg("%s record %zu: %s", path, fx->n, err.msg);
        if (fx->cd[fx->n].kind != PGO_COPY_XLOGDATA) fail_msg("%s record %zu: not XLogData", path, fx->n);
        if (pgo_parse_message(&parser, fx->cd[fx->n].payload, fx->cd[fx->n].payload_len, &fx->msg[fx->n], &err) !=
            WR_OK)
            fail_msg("%s record %zu: %s", path, fx->n, err.msg);
        off += len;
        fx->n++;
    }
    return fx;
}

static void fixture_free(Fixture *fx)
{
    if (!fx) return;
    free(fx->bin);
    free(fx->cd);
    free(fx->msg);
    free(fx);
}

/* ---- normalisation: what changes between captures becomes a placeholder ---- */

typedef struct {
    uint32_t xids[256];
    size_t nxids;
    uint32_t rels[64];
    size_t nrels;
} Ordinals;

static size_t ordinal(uint32_t *seen, size_t *n, size_t cap, uint32_t v)
{
    for (size_t i = 0; i < *n; i++)
        if (seen[i] == v) return i + 1;
    if (*n == cap) fail_msg("too many distinct values to number");
    seen[(*n)++] = v;
    return *n;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Long quoted values (the TOAST fixture) are shortened to a prefix and their length. */
#define MAX_QUOTED 120

static void normalize_line(const char *in, Ordinals *ord, StrBuf *out)
{
    const char *p = in;
    while (*p) {
        if (*p == '\'') { /* quoted value: copy, shortening if long */
            const char *q = p + 1;
            while (*q && *q != '\'') q += (*q == '\\' && q[1]) ? 2 : 1;
            size_t inner = (size_t)(q - p - 1);
            if (inner > MAX_QUOTED) {
                strbuf_append(out, p, 41);
                strbuf_appendf(out, "'...(%zu chars)", inner);
            } else {
                strbuf_append(out, p, inner + 2 > strlen(p) ? strlen(p) : inner + 2);
            }
            p = *q ? q + 1 : q;
            continue;
        }
        /* key=value outside quotes */
        const char *k = p;
        while ((*k >= 'a' && *k <= 'z') || *k == '_') k++;
        if (k > p && *k == '=' && (p == in || p[-1] == ' ')) {
            size_t klen = (size_t)(k - p);
            const char *v = k + 1;
            const char *e = v;
            if (*e == '(') { /* a list: only rels=(...) is rewritten; tuples are scanned on */
                if (!(klen == 4 && memcmp(p, "rels", 4) == 0)) {
                    strbuf_append(out, p, klen + 1);
                    p = v;
                    continue;
                }
                while (*e && *e != ')') e++;
                if (*e) e++;
            } else {
                while (*e && *e != ' ' && *e != ',' && *e != ')') e++;
            }
            strbuf_append(out, p, klen + 1);
            size_t vlen = (size_t)(e - v);
            if (ends_with(p, klen, "lsn")) {
                if (vlen == 3 && memcmp(v, "0/0", 3) == 0)
                    strbuf_append_str(out, "0/0");
                else
                    strbuf_append_str(out, "<lsn>");
            } else if (ends_with(p, klen, "_time")) {
                strbuf_append_str(out, "<time>");
            } else if ((klen == 3 && memcmp(p, "xid", 3) == 0) || (klen == 6 && memcmp(p, "subxid", 6) == 0)) {
                uint32_t x = (uint32_t)strtoul(v, NULL, 10);
                strbuf_appendf(out, "<xid%zu>", ordinal(ord->xids, &ord->nxids, 256, x));
            } else if ((klen == 3 && memcmp(p, "rel", 3) == 0) || (klen == 3 && memcmp(p, "oid", 3) == 0)) {
                uint32_t r = (uint32_t)strtoul(v, NULL, 10);
                strbuf_appendf(out, "<rel%zu>", ordinal(ord->rels, &ord->nrels, 64, r));
            } else if (klen == 4 && memcmp(p, "rels", 4) == 0 && *v == '(') {
                strbuf_append_char(out, '(');
                const char *r = v + 1;
                while (r < e && *r != ')') {
                    char *next;
                    uint32_t id = (uint32_t)strtoul(r, &next, 10);
                    strbuf_appendf(out, "%s<rel%zu>", r == v + 1 ? "" : ",", ordinal(ord->rels, &ord->nrels, 64, id));
                    r = *next == ',' ? next + 1 : next;
                    if (next == r && *r != ')') break;
                }
                strbuf_append_char(out, ')');
            } else {
                strbuf_append(out, v, vlen);
            }
            p = e;
            continue;
        }
        strbuf_append_char(out, *p);
        p++;
    }
}

/* The normalised text of a whole fixture, one message per line. */
static void fixture_render(const Fixture *fx, StrBuf *out)
{
    Ordinals ord = {0};
    StrBuf line;
    strbuf_init(&line);
    for (size_t i = 0; i < fx->n; i++) {
        strbuf_reset(&line);
        pgo_format_message(&fx->msg[i], &line);
        normalize_line(line.data, &ord, out);
        strbuf_append_char(out, '\n');
    }
    strbuf_free(&line);
}

/* Names of all fixtures (NAME of fixtures/NAME.bin), sorted. */
static size_t list_fixtures(char names[][64], size_t cap)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/fixtures", golden_dir);
    DIR *d = opendir(path);
    if (!d) fail_msg("no fixtures directory %s", path);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".bin") != 0 || len - 4 >= 64 || n == cap) continue;
        memcpy(names[n], de->d_name, len - 4);
        names[n][len - 4] = '\0';
        n++;
    }
    closedir(d);
    qsort(names, n, 64, (int (*)(const void *, const void *))strcmp);
    return n;
}

/* ---- helpers for exact assertions ---- */

static size_t count_type(const Fixture *fx, PgoMessageType t)
{
    size_t n = 0;
    for (size_t i = 0; i < fx->n; i++) n += fx->msg[i].type == t;
    return n;
}

/* The message types in order as a string of wire bytes, e.g. "BRIC". */
static char *type_string(const Fixture *fx)
{
    char *s = malloc(fx->n + 1);
    for (size_t i = 0; i < fx->n; i++) s[i] = (char)fx->msg[i].type;
    s[fx->n] = '\0';
    return s;
}

/* Fixture name loaded; its messages' types in order must be types (type_string). */
static Fixture *fixture_with_types(const char *name, const char *types)
{
    Fixture *fx = fixture_load(name);
    char *got = type_string(fx);
    assert_string_equal(got, types);
    free(got);
    return fx;
}

static PgoValue column(const PgoTuple *t, int col)
{
    PgoTupleIter it;
    PgoValue v = {0};
    pgo_tuple_iter_init(&it, t);
    for (int i = 0; i <= col; i++)
        if (!pgo_tuple_next(&it, &v)) fail_msg("tuple has no column %d", col);
    return v;
}

static void assert_text(const PgoTuple *t, int col, const char *want)
{
    PgoValue v = column(t, col);
    if (v.kind != PGO_COL_TEXT) fail_msg("column %d: kind %c, want t", col, v.kind);
    if (v.len != strlen(want) || memcmp(v.data, want, v.len) != 0)
        fail_msg("column %d: '%.*s', want '%s'", col, (int)(v.len > 200 ? 200 : v.len), v.data, want);
}

static void assert_kind(const PgoTuple *t, int col, PgoColumnKind kind)
{
    PgoValue v = column(t, col);
    if (v.kind != kind) fail_msg("column %d: kind %c, want %c", col, v.kind, kind);
}

/* ---- tests ---- */

static void test_all_fixtures_match_expected(void **state)
{
    (void)state;
    char names[64][64];
    size_t n = list_fixtures(names, 64);
    assert_true(n >= 9);
    for (size_t i = 0; i < n; i++) {
        Fixture *fx = fixture_load(names[i]);
        assert_true(fx->n > 0);
        StrBuf got;
        strbuf_init(&got);
        fixture_render(fx, &got);
        char path[1024];
        snprintf(path, sizeof(path), "%s/fixtures/%s.expected", golden_dir, names[i]);
        size_t want_len = 0;
        char *want = ts_read_file(path, &want_len);
        if (!want) fail_msg("missing %s: run tests/golden/regenerate.sh --expected-only", path);
        if (want_len != got.len || memcmp(want, got.data, got.len) != 0) {
            /* Show the first differing line. */
            size_t line = 1, k = 0;
            while (k < want_len && k < got.len && want[k] == got.data[k]) line += want[k++] == '\n';
            while (k > 0 && want[k - 1] != '\n') k--;
            int gl = (int)(strcspn(got.data + k, "\n")), wl = (int)(strcspn(want + k, "\n"));
            fail_msg("%s differs from the decoder's output at line %zu:\n  got:  %.*s\n  want: %.*s", path, line,
                     gl > 300 ? 300 : gl, got.data + k, wl > 300 ? 300 : wl, want + k);
        }
        free(want);
        strbuf_free(&got);
        fixture_free(fx);
    }
}

/* Every message is self-delimiting: dropping its last byte must be a clean WR_PROTOCOL. */
static void test_truncated_messages_are_rejected(void **state)
{
    (void)state;
    char names[64][64];
    size_t n = list_fixtures(names, 64);
    for (size_t i = 0; i < n; i++) {
        Fixture *fx = fixture_load(names[i]);
        PgoParser parser;
        pgo_parser_init(&parser, fx->proto, fx->streaming_parallel);
        for (size_t r = 0; r < fx->n; r++) {
            PgoMessage m;
            WrError err = {0};
            PgoParser before = parser;
            uint8_t *copy = malloc(fx->cd[r].payload_len); /* exact size: ASan sees any overread */
            memcpy(copy, fx->cd[r].payload, fx->cd[r].payload_len);
            WrStatus st = pgo_parse_message(&parser, copy, fx->cd[r].payload_len - 1, &m, &err);
            if (st != WR_PROTOCOL)
                fail_msg("%s record %zu (%s) cut by one byte: %s", fx->name, r, pgo_message_type_name(fx->msg[r].type),
                         wr_status_name(st));
            /* state unchanged on error (fields, not bytes: padding is undefined) */
            assert_int_equal(before.proto_version, parser.proto_version);
            assert_int_equal(before.streaming_parallel, parser.streaming_parallel);
            assert_int_equal(before.in_stream, parser.in_stream);
            assert_true(strlen(err.msg) > 0);
            /* Advance the state with the full message. */
            assert_int_equal(pgo_parse_message(&parser, copy, fx->cd[r].payload_len, &m, &err), WR_OK);
            free(copy);
        }
        fixture_free(fx);
    }
}

static void test_dml_default(void **state)
{
    (void)state;
    Fixture *fx = fixture_with_types("dml_default", "BRICBIICBUCBUCBDCBUDIC");
    const PgoRelation *rel = &fx->msg[1].u.relation;
    assert_string_equal(rel->relname, "account");
    assert_int_equal(rel->replident, 'd');
    assert_int_equal(rel->ncols, 8);
    /* First insert: every type's text form. */
    const PgoTuple *t = &fx->msg[2].u.change.new_tuple;
    assert_text(t, 0, "1");
    assert_text(t, 2, "10.50");
    assert_text(t, 3, "t");
    assert_text(t, 4, "{a,b}");
    assert_text(t, 5, "{\"k\": 1}");
    assert_text(t, 6, "2024-01-02 03:04:05+00");
    assert_text(t, 7, "\\x00ff");
    assert_text(&fx->msg[5].u.change.new_tuple, 1, "bob 'the builder'");
    assert_kind(&fx->msg[5].u.change.new_tuple, 2, PGO_COL_NULL);
    assert_text(&fx->msg[6].u.change.new_tuple, 1, "tab\there\nnewline, ünïcode ☃");
    assert_text(&fx->msg[6].u.change.new_tuple, 6, "infinity");
    /* Non-key update: no old tuple. Key update: 'K' with the old key, non-key columns 'n'. */
    assert_int_equal(fx->msg[9].u.change.old_kind, 0);
    assert_text(&fx->msg[9].u.change.new_tuple, 2, "99.99");
    assert_int_equal(fx->msg[12].u.change.old_kind, 'K');
    assert_text(&fx->msg[12].u.change.old_tuple, 0, "2");
    assert_kind(&fx->msg[12].u.change.old_tuple, 1, PGO_COL_NULL);
    assert_text(&fx->msg[12].u.change.new_tuple, 0, "10");
    assert_int_equal(fx->msg[15].u.change.old_kind, 'K');
    assert_text(&fx->msg[15].u.change.old_tuple, 0, "3");
    /* Commit LSNs increase and each Commit's header carries its end_lsn. */
    Lsn last = 0;
    for (size_t i = 0; i < fx->n; i++) {
        if (fx->msg[i].type != PGO_MSG_COMMIT) continue;
        assert_true(fx->msg[i].u.commit.commit_lsn > last);
        assert_true(fx->msg[i].u.commit.end_lsn > fx->msg[i].u.commit.commit_lsn);
        assert_int_equal(fx->cd[i].wal_start, fx->msg[i].u.commit.end_lsn);
        last = fx->msg[i].u.commit.end_lsn;
    }
    /* Relation messages carry LSN 0 in their XLogData header. */
    assert_int_equal(fx->cd[1].wal_start, 0);
    fixture_free(fx);
}

static void test_dml_full(void **state)
{
    (void)state;
    Fixture *fx = fixture_with_types("dml_full", "BRIICBUCBUCBDCBRIICBUCBDDC");
    assert_int_equal(fx->msg[1].u.relation.replident, 'f');
    PgoRelColumnIter it;
    PgoRelColumn col;
    pgo_relation_iter_init(&it, &fx->msg[1].u.relation);
    while (pgo_relation_next_column(&it, &col)) assert_int_equal(col.flags & 1, 1); /* FULL: all key */
    const PgoChange *u = &fx->msg[6].u.change;
    assert_int_equal(u->old_kind, 'O');
    assert_text(&u->old_tuple, 1, "ann");
    assert_kind(&u->old_tuple, 2, PGO_COL_NULL);
    assert_text(&u->old_tuple, 3, "30");
    assert_text(&u->new_tuple, 2, "ann@example.com");
    assert_int_equal(fx->msg[9].u.change.old_kind, 'O');
    assert_text(&fx->msg[9].u.change.old_tuple, 0, "2");
    assert_text(&fx->msg[9].u.change.old_tuple, 2, "ben@example.com");
    assert_int_equal(fx->msg[12].u.change.old_kind, 'O');
    assert_text(&fx->msg[12].u.change.old_tuple, 0, "20");
    /* A table without any key under FULL: old rows identify duplicates by their values. */
    assert_string_equal(fx->msg[15].u.relation.relname, "nokey");
    assert_int_equal(fx->msg[20].u.change.old_kind, 'O');
    assert_text(&fx->msg[20].u.change.old_tuple, 1, "x");
    assert_text(&fx->msg[20].u.change.new_tuple, 1, "y");
    fixture_free(fx);
}

static void test_truncate(void **state)
{
    (void)state;
    Fixture *fx = fixture_load("truncate");
    assert_int_equal(count_type(fx, PGO_MSG_TRUNCATE), 3);
    const PgoTruncate *tr[3];
    size_t k = 0;
    for (size_t i = 0; i < fx->n; i++)
        if (fx->msg[i].type == PGO_MSG_TRUNCATE) tr[k++] = &fx->msg[i].u.truncate;
    assert_int_equal(tr[0]->nrelids, 2); /* parent and, by CASCADE, child */
    assert_int_equal(tr[0]->options, PGO_TRUNCATE_CASCADE);
    assert_int_equal(tr[1]->nrelids, 1);
    assert_int_equal(tr[1]->options, PGO_TRUNCATE_RESTART_IDENTITY);
    assert_int_equal(tr[2]->nrelids, 3);
    assert_int_equal(tr[2]->options, PGO_TRUNCATE_CASCADE | PGO_TRUNCATE_RESTART_IDENTITY);
    fixture_free(fx);
}

static void test_toast_unchanged(void **state)
{
    (void)state;
    Fixture *fx = fixture_with_types("toast", "BRICBUCMBUC");
    PgoValue big = column(&fx->msg[2].u.change.new_tuple, 2);
    assert_int_equal(big.kind, PGO_COL_TEXT);
    assert_int_equal(big.len, 300800);
    /* The unchanged big value is 'u', never NULL; the changed column is sent. */
    const PgoChange *u = &fx->msg[5].u.change;
    assert_int_equal(u->old_kind, 0);
    assert_text(&u->new_tuple, 1, "renamed");
    assert_kind(&u->new_tuple, 2, PGO_COL_UNCHANGED_TOAST);
    /* The server's md5 of the value, sent as a non-transactional message, matches the bytes. */
    const PgoLogicalMessage *m = &fx->msg[7].u.message;
    assert_false(m->transactional);
    assert_string_equal(m->prefix, "golden");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    assert_int_equal(EVP_Digest(big.data, big.len, md, &mdlen, EVP_md5(), NULL), 1);
    char want[64] = "";
    for (unsigned i = 0; i < mdlen; i++) snprintf(want + 2 * i, 3, "%02x", md[i]);
    strcat(want, " 300800");
    assert_int_equal(m->content_len, strlen(want));
    assert_memory_equal(m->content, want, m->content_len);
    assert_text(&fx->msg[9].u.change.new_tuple, 2, "small now");
    fixture_free(fx);
}

static void test_messages(void **state)
{
    (void)state;
    Fixture *fx = fixture_with_types("messages", "BMRICMBMCM");
    const PgoLogicalMessage *m = &fx->msg[1].u.message;
    assert_true(m->transactional);
    assert_string_equal(m->prefix, "walrev");
    const char *ctx = "{\"actor\":{\"type\":\"user\",\"id\":\"42\"},\"description\":\"approve invoice\"}";
    assert_int_equal(m->content_len, strlen(ctx));
    assert_memory_equal(m->content, ctx, m->content_len);
    assert_true(m->lsn < fx->msg[4].u.commit.commit_lsn);
    /* Non-transactional from the rolled-back transaction: present, outside any B..C. */
    m = &fx->msg[5].u.message;
    assert_false(m->transactional);
    assert_string_equal(m->prefix, "audit");
    assert_memory_equal(m->content, "sent even though rolled back", m->content_len);
    m = &fx->msg[7].u.message;
    assert_true(m->transactional);
    assert_memory_equal(m->content, "transactional message alone", m->content_len);
    m = &fx->msg[9].u.message;
    assert_false(m->transactional);
    assert_int_equal(m->content_len, 4);
    assert_memory_equal(m->content, "\x00\x01\x02\x03", 4);
    fixture_free(fx);
}

static void test_two_phase(void **state)
{
    (void)state;
    Fixture *fx = fixture_with_types("twophase", "bRIPKbIPrBIC");
    const PgoTwoPhase *bp = &fx->msg[0].u.two_phase, *p = &fx->msg[3].u.two_phase, *k = &fx->msg[4].u.two_phase;
    assert_string_equal(bp->gid, "golden-gid-1");
    assert_string_equal(p->gid, "golden-gid-1");
    assert_string_equal(k->gid, "golden-gid-1");
    assert_int_equal(bp->xid, p->xid);
    assert_int_equal(p->xid, k->xid);
    assert_int_equal(bp->lsn, p->lsn);
    assert_true(k->lsn >= p->end_lsn); /* COMMIT PREPARED is a later record */
    assert_true(k->end_lsn > k->lsn);
    assert_int_equal(fx->cd[4].wal_start, k->end_lsn);
    const PgoRollbackPrepared *r = &fx->msg[8].u.rollback_prepared;
    assert_string_equal(r->gid, "golden-gid-2");
    assert_int_equal(r->xid, fx->msg[5].u.two_phase.xid);
    assert_int_equal(r->prepare_end_lsn, fx->msg[7].u.two_phase.end_lsn);
    assert_text(&fx->msg[10].u.change.new_tuple, 0, "3");
    fixture_free(fx);
}

static void test_streaming(void **state)
{
    (void)state;
    Fixture *fx = fixture_load("streaming");
    size_t starts = count_type(fx, PGO_MSG_STREAM_START);
    assert_true(starts >= 2);
    assert_int_equal(count_type(fx, PGO_MSG_STREAM_STOP), starts);
    assert_int_equal(count_type(fx, PGO_MSG_STREAM_COMMIT), 1);
    assert_int_equal(count_type(fx, PGO_MSG_STREAM_ABORT), 1);
    assert_int_equal(fx->msg[0].type, PGO_MSG_STREAM_START);
    uint32_t top = fx->msg[0].u.stream_start.xid;
    assert_true(fx->msg[0].u.stream_start.first_segment);
    bool in_block = false;
    size_t kept = 0, rolled = 0, segments = 0;
    uint32_t subxid = 0;
    size_t i = 0;
    for (; i < fx->n; i++) {
        const PgoMessage *m = &fx->msg[i];
        if (m->type == PGO_MSG_STREAM_START) {
            assert_false(in_block);
            assert_int_equal(m->u.stream_start.xid, top);
            assert_int_equal(m->u.stream_start.first_segment, segments == 0);
            in_block = true;
            segments++;
        } else if (m->type == PGO_MSG_STREAM_STOP) {
            assert_true(in_block);
            in_block = false;
        } else if (m->type == PGO_MSG_INSERT) {
            assert_true(in_block);
            assert_true(m->u.change.has_xid);
            PgoValue v = column(&m->u.change.new_tuple, 1);
            if (v.len >= 4 && memcmp(v.data, "kept", 4) == 0) {
                assert_int_equal(m->u.change.xid, top);
                kept++;
            } else if (v.len >= 6 && memcmp(v.data, "rolled", 6) == 0) {
                assert_true(m->u.change.xid != top);
                if (subxid == 0) subxid = m->u.change.xid;
                assert_int_equal(m->u.change.xid, subxid);
                rolled++;
            }
        } else if (m->type == PGO_MSG_STREAM_ABORT) {
            assert_false(in_block);
            assert_int_equal(m->u.stream_abort.xid, top);
            assert_int_equal(m->u.stream_abort.subxid, subxid);
            assert_false(m->u.stream_abort.has_abort_info);
        } else if (m->type == PGO_MSG_STREAM_COMMIT) {
            assert_false(in_block);
            assert_int_equal(m->u.stream_commit.xid, top);
            assert_true(m->u.stream_commit.end_lsn > m->u.stream_commit.commit_lsn);
            break;
        }
    }
    assert_int_equal(kept, 800);
    assert_true(rolled >= 1 && rolled <= 800);
    assert_true(subxid != 0);
    /* After the streamed transaction: the small one as ordinary B I C without xids. */
    char *types = type_string(fx);
    assert_string_equal(types + i + 1, "BIC");
    free(types);
    assert_false(fx->msg[i + 2].u.change.has_xid);
    assert_text(&fx->msg[i + 2].u.change.new_tuple, 0, "10000");
    fixture_free(fx);
}

static void test_savepoint(void **state)
{
    (void)state;
    Fixture *fx = fixture_with_types("savepoint", "BRIIIC");
    assert_text(&fx->msg[2].u.change.new_tuple, 0, "1");
    assert_text(&fx->msg[3].u.change.new_tuple, 0, "3");
    assert_text(&fx->msg[4].u.change.new_tuple, 0, "4");
    fixture_free(fx);
}

static void test_binary(void **state)
{
    (void)state;
    Fixture *fx = fixture_with_types("binary", "BRICBUCBDC");
    const PgoTuple *t = &fx->msg[2].u.change.new_tuple;
    PgoValue v = column(t, 0);
    assert_int_equal(v.kind, PGO_COL_BINARY);
    assert_int_equal(v.len, 4);
    assert_int_equal(wr_read_u32(v.data), 42);
    v = column(t, 1);
    assert_int_equal(v.len, 8);
    assert_int_equal((int64_t)wr_read_u64(v.data), -2);
    v = column(t, 2);
    assert_int_equal(v.kind, PGO_COL_BINARY);
    assert_int_equal(v.len, 1);
    assert_int_equal(v.data[0], 1);
    v = column(t, 3);
    assert_int_equal(v.len, strlen("héllo"));
    assert_memory_equal(v.data, "héllo", v.len);
    v = column(t, 5); /* timestamptz: µs since 2000-01-01 */
    assert_int_equal(v.len, 8);
    assert_int_equal(wr_read_u64(v.data), 1000000);
    v = column(t, 6);
    assert_memory_equal(v.data, "\xde\xad\xbe\xef", 4);
    v = column(t, 8);
    assert_int_equal(v.len, 16);
    assert_memory_equal(v.data, "\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff", 16);
    assert_kind(&fx->msg[5].u.change.new_tuple, 3, PGO_COL_NULL);
    v = column(&fx->msg[5].u.change.new_tuple, 2);
    assert_int_equal(v.data[0], 0);
    assert_int_equal(fx->msg[8].u.change.old_kind, 'K');
    v = column(&fx->msg[8].u.change.old_tuple, 0);
    assert_int_equal(v.kind, PGO_COL_BINARY);
    assert_int_equal(wr_read_u32(v.data), 42);
    fixture_free(fx);
}

/* ---- --regenerate: write NAME.expected from the current decoder ---- */

static int regenerate(void)
{
    char names[64][64];
    size_t n = list_fixtures(names, 64);
    for (size_t i = 0; i < n; i++) {
        Fixture *fx = fixture_load(names[i]);
        StrBuf out;
        strbuf_init(&out);
        fixture_render(fx, &out);
        char path[1024];
        snprintf(path, sizeof(path), "%s/fixtures/%s.expected", golden_dir, names[i]);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(out.data, 1, out.len, f) != out.len || fclose(f) != 0) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
        printf("wrote %s (%zu messages)\n", path, fx->n);
        strbuf_free(&out);
        fixture_free(fx);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s GOLDEN_DIR [--regenerate]\n", argv[0]);
        return 2;
    }
    golden_dir = argv[1];
    if (argc > 2 && strcmp(argv[2], "--regenerate") == 0) return regenerate();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_fixtures_match_expected),
        cmocka_unit_test(test_truncated_messages_are_rejected),
        cmocka_unit_test(test_dml_default),
        cmocka_unit_test(test_dml_full),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_toast_unchanged),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_two_phase),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_savepoint),
        cmocka_unit_test(test_binary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
