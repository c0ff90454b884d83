/*
 * test_history_sink.c — the history sink and `walrev verify` against the
 * shared throwaway PostgreSQL: synthetic revisions (checksummed with
 * schema/checksum.h) are driven straight into the sink, and the exact rows of
 * revision, revision_context, object_delta, keyframe and
 * checkpoint are asserted, including error paths (missing schema, id gap,
 * killed connection, bad JSON) and chain tampering. Each test uses its own
 * schema in one database. Also prints rows/s and bytes per update.
 */
#include "tests/support/testsupport.h"
#include "tests/support/unit_main.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "replay/replay.h"
#include "replay/verify.h"
#include "schema/checksum.h"
#include "schema/store_sql.h"
#include "sink/history_reader.h"
#include "sink/keyframer.h"
#include "sink/history_sink.h"
#include "sink/sink.h"

#define DB "walrev_history_sink"
#define NCOLS 12
#define RELID 16400u
#define RELID2 16401u

static const char *g_conninfo;
static char g_conninfo_buf[512];
static PGconn *g_admin;

/* ---------- fixtures ---------- */

static RelColumn g_cols[NCOLS];
static RelationVersion g_rv, g_rv2;

static void init_relations(void)
{
    static char names[NCOLS][8];
    for (int i = 0; i < NCOLS; i++) {
        snprintf(names[i], sizeof(names[i]), "c%d", i + 1);
        g_cols[i] = (RelColumn){.name = names[i],
                                .type_oid = 25,
                                .typmod = -1,
                                .type_name = NULL,
                                .is_key = i == 0,
                                .col_id = (int16_t)(i + 1),
                                .track = TRACK_FULL};
    }
    g_rv = (RelationVersion){.relid = RELID,
                             .version = 1,
                             .nspname = "public",
                             .relname = "t12",
                             .replident = 'd',
                             .valid_from = 0x1000,
                             .ncols = NCOLS,
                             .cols = g_cols};
    g_rv2 = g_rv;
    g_rv2.relid = RELID2;
    g_rv2.relname = "other";
}

static void setup_schema(const char *schema)
{
    char *q = store_quote_ident(schema);
    ts_exec(g_admin, "DROP SCHEMA IF EXISTS %s CASCADE", q);
    char *ddl = store_sql_render(schema);
    ts_exec(g_admin, "%s", ddl);
    free(ddl);
    /* the sink reads old images and takes keyframes through the replay functions */
    ddl = replay_sql_render(schema);
    ts_exec(g_admin, "%s", ddl);
    free(ddl);
    free(q);
}

static char *qv(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *qv(const char *fmt, ...)
{
    char *sql = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&sql, fmt, ap) < 0) fail_msg("oom");
    va_end(ap);
    char *v = ts_query_value(g_admin, "%s", sql);
    free(sql);
    return v;
}

/* Assert a query's single value equals want (NULL = SQL NULL). */
#define assert_q(want, ...)                                        \
    do {                                                           \
        char *got_ = qv(__VA_ARGS__);                              \
        const char *want_ = (want);                                \
        if (!want_) {                                              \
            if (got_) fail_msg("expected NULL, got '%s'", got_);   \
        } else {                                                   \
            if (!got_) fail_msg("expected '%s', got NULL", want_); \
            assert_string_equal(got_, want_);                      \
        }                                                          \
        free(got_);                                                \
    } while (0)

/* ---------- a test writer: builds checksummed revisions and drives the sink ---------- */

typedef struct {
    Sink *sink;
    RevisionHasher *hh;
    Revision rev;
    RevisionContext ctx[4];
    int nctx;
    uint8_t last[WALREV_CHECKSUM_LEN];
    bool has_key;
    uint8_t vkey[32];
    int64_t next_id;
    Lsn lsn;
    int32_t seq;
    WrError err;
} TW;

static int64_t g_keyed_from = 1; /* store_info.keyed_values_from of the chains built */

/* Synchronous commits: a flush makes the batch durable at once, which most
 * tests here assert; test_async_commit covers the default (off). */
static HistorySinkConfig cfg_for(const char *schema)
{
    return (HistorySinkConfig){.conninfo = g_conninfo,
                               .schema = schema,
                               .slot_name = "slot_a",
                               .batch_max_revisions = 0,
                               .batch_max_ms = 0,
                               .buffer_bytes = 0,
                               .commit = HISTORY_COMMIT_ON};
}

static WrStatus tw_open_cfg(TW *tw, const HistorySinkConfig *cfg, SinkPosition *pos)
{
    memset(tw, 0, sizeof(*tw));
    tw->hh = revhash_create();
    tw->sink = sink_history_create(cfg);
    SinkPosition p;
    WrStatus st = tw->sink->ops->open(tw->sink, &p, &tw->err);
    if (st == WR_OK) {
        memcpy(tw->last, p.last_checksum, WALREV_CHECKSUM_LEN);
        /* Format 5: values enter the chain keyed by the store's secret, as the worker hashes them
         * (from revision g_keyed_from: v_mixed has bare SHA-256 revisions before it). */
        tw->has_key = p.has_digest_key;
        memcpy(tw->vkey, p.digest_key, sizeof(tw->vkey));
        tw->next_id = p.last_revision_id + 1;
        tw->lsn = p.durable_end_lsn ? p.durable_end_lsn + 0x100 : 0x2000000;
        if (pos) *pos = p;
    }
    return st;
}

/* tw_open_cfg, which must succeed: else the test fails with WHAT and the error. */
static void tw_open_ok(TW *tw, const HistorySinkConfig *cfg, SinkPosition *pos, const char *what)
{
    if (tw_open_cfg(tw, cfg, pos) != WR_OK) fail_msg("%s: %s", what, tw->err.msg);
}

static void tw_open(TW *tw, const char *schema)
{
    HistorySinkConfig cfg = cfg_for(schema);
    tw_open_ok(tw, &cfg, NULL, "open");
}

/* A new, empty store in SCHEMA (setup_schema) and the sink configuration for
 * it (cfg_for), which the test adjusts before it opens the sink. */
static HistorySinkConfig fresh_store(const char *schema)
{
    setup_schema(schema);
    return cfg_for(schema);
}

static void tw_close(TW *tw)
{
    sink_destroy(tw->sink);
    revhash_destroy(tw->hh);
    tw->sink = NULL;
    tw->hh = NULL;
}

/* history_verify of schema returns WR_OK, having checked want_checked
 * revisions, the first bad one want_bad (0: none); its reason in why. */
static void verify_counts(const char *schema, int64_t want_checked, int64_t want_bad, char *why, size_t whysize)
{
    int64_t checked = -1, bad = -1;
    WrError err;
    WrStatus st = history_verify(g_admin, schema, &checked, &bad, why, whysize, &err);
    if (st != WR_OK) fail_msg("verify of %s: %s", schema, err.msg);
    assert_int_equal(checked, want_checked);
    assert_int_equal(bad, want_bad);
}

/* schema's whole chain verifies: n revisions checked, none bad. */
static void expect_verified(const char *schema, int64_t n)
{
    char why[256];
    verify_counts(schema, n, 0, why, sizeof(why));
}

#define OK(call)                                                                             \
    do {                                                                                     \
        WrStatus st_ = (call);                                                               \
        if (st_ != WR_OK) fail_msg("%s -> %s: %s", #call, wr_status_name(st_), tw->err.msg); \
    } while (0)

/* A fresh store in schema, a sink open on it, the relation g_rv written. */
static void tw_start(TW *tw, const char *schema)
{
    setup_schema(schema);
    tw_open(tw, schema);
    OK(tw->sink->ops->write_relation(tw->sink, &g_rv, &tw->err));
}

static void tw_begin(TW *tw)
{
    memset(&tw->rev, 0, sizeof(tw->rev));
    tw->rev.id = tw->next_id;
    tw->rev.xid = (uint32_t)(1000 + tw->next_id);
    tw->rev.commit_lsn = tw->lsn;
    tw->rev.commit_time = INT64_C(800000000000000) + tw->next_id * 1000;
    memcpy(tw->rev.parent_checksum, tw->last, WALREV_CHECKSUM_LEN);
    tw->nctx = 0;
    tw->seq = 0;
    revhash_set_value_key(tw->hh, tw->has_key && tw->rev.id >= g_keyed_from ? tw->vkey : NULL);
    revhash_begin(tw->hh);
    OK(tw->sink->ops->begin_revision(tw->sink, &tw->rev, &tw->err));
}

static void tw_context(TW *tw, const char *actor_type, const char *actor_id, const char *actor_json,
                       const char *description, const char *raw)
{
    RevisionContext *c = &tw->ctx[tw->nctx++];
    *c = (RevisionContext){.no = (int16_t)tw->nctx,
                           .actor_type = actor_type,
                           .actor_id = actor_id,
                           .actor_json = actor_json,
                           .description = description,
                           .meta_json = NULL,
                           .raw = raw,
                           .raw_len = strlen(raw),
                           .lsn = tw->lsn - 0x50 + (Lsn)tw->nctx};
    if (c->no == 1) tw->rev.first_context = c;
    revhash_add_context(tw->hh, c);
    OK(tw->sink->ops->write_context(tw->sink, &tw->rev, c, &tw->err));
}

static void tw_delta(TW *tw, const RelationVersion *rv, DeltaOp op, const char *key, uint16_t nattrs,
                     const AttributeDelta *attrs, const RowImage *after)
{
    ObjectDelta d = {.seq = ++tw->seq,
                     .relver = rv,
                     .op = op,
                     .key = key,
                     .context_no = (int16_t)tw->nctx,
                     .nattrs = nattrs,
                     .attrs = attrs,
                     .old_unknown = false,
                     .after = after};
    revhash_add_delta(tw->hh, &d, NULL);
    revision_count_delta(&tw->rev, op);
    OK(tw->sink->ops->write_delta(tw->sink, &tw->rev, &d, &tw->err));
}

static void tw_commit(TW *tw)
{
    tw->rev.end_lsn = tw->rev.commit_lsn + 0x28;
    revhash_finish(tw->hh, &tw->rev);
    OK(tw->sink->ops->commit_revision(tw->sink, &tw->rev, &tw->err));
    memcpy(tw->last, tw->rev.checksum, WALREV_CHECKSUM_LEN);
    tw->next_id++;
    tw->lsn += 0x100;
}

/* A batch commit, then the keyframes it made due (taken in the background) are waited for. */
static void tw_flush(TW *tw)
{
    OK(tw->sink->ops->flush(tw->sink, true, &tw->err));
    sink_history_wait_keyframes(tw->sink);
}

/* A batch commit only: keyframes it made due may still be in progress. */
static void tw_flush_nowait(TW *tw) { OK(tw->sink->ops->flush(tw->sink, true, &tw->err)); }

/* A row: 12 values; vals[0] is the key column. */
typedef struct {
    Value v[NCOLS];
    uint8_t unknown[NCOLS];
    RowImage img;
    char key[64];
} Row;

static Value val(const char *s) { return (Value){s, s ? strlen(s) : 0}; }

static void row_set(Row *r, const RelationVersion *rv, const char *const vals[NCOLS])
{
    for (int i = 0; i < NCOLS; i++) r->v[i] = val(vals[i]);
    memset(r->unknown, 0, sizeof(r->unknown));
    r->img = (RowImage){.relver = rv, .values = r->v, .unknown = r->unknown};
    snprintf(r->key, sizeof(r->key), "[\"%s\"]", vals[0]);
}

static void tw_insert(TW *tw, const RelationVersion *rv, Row *r)
{
    AttributeDelta a[NCOLS];
    for (int i = 0; i < NCOLS; i++)
        a[i] = (AttributeDelta){.col_id = (int16_t)(i + 1), .flags = 0, .old_value = {NULL, 0}, .new_value = r->v[i]};
    tw_delta(tw, rv, DELTA_INSERT, r->key, NCOLS, a, &r->img);
}

static void tw_update1(TW *tw, const RelationVersion *rv, Row *r, int col, const char *newv)
{
    AttributeDelta a = {.col_id = (int16_t)(col + 1), .flags = 0, .old_value = r->v[col], .new_value = val(newv)};
    r->v[col] = val(newv);
    if (col == 0) snprintf(r->key, sizeof(r->key), "[\"%s\"]", newv);
    tw_delta(tw, rv, DELTA_UPDATE, r->key, 1, &a, &r->img);
}

static void tw_delete(TW *tw, const RelationVersion *rv, Row *r)
{
    AttributeDelta a[NCOLS];
    for (int i = 0; i < NCOLS; i++)
        a[i] = (AttributeDelta){.col_id = (int16_t)(i + 1), .flags = 0, .old_value = r->v[i], .new_value = {NULL, 0}};
    tw_delta(tw, rv, DELTA_DELETE, r->key, NCOLS, a, NULL);
}

static void tw_truncate(TW *tw, const RelationVersion *rv) { tw_delta(tw, rv, DELTA_TRUNCATE, NULL, 0, NULL, NULL); }

static void simple_row(Row *r, const RelationVersion *rv, const char *key, const char *tag)
{
    char buf[NCOLS][32];
    const char *vals[NCOLS];
    for (int i = 0; i < NCOLS; i++) {
        snprintf(buf[i], sizeof(buf[i]), "%s-%d", tag, i + 1);
        vals[i] = buf[i];
    }
    vals[0] = key;
    /* row_set keeps pointers: copy into stable storage. */
    static char store[64][NCOLS][32];
    static int next;
    int slot = next++ % 64;
    for (int i = 0; i < NCOLS; i++) {
        snprintf(store[slot][i], sizeof(store[slot][i]), "%s", vals[i]);
        vals[i] = store[slot][i];
    }
    row_set(r, rv, vals);
}

/* A store in schema holding one committed revision (id 1) that inserts key "1"
 * of g_rv with its values tagged tag (r is that row, for later updates). */
static void tw_start_one_row(TW *tw, const char *schema, Row *r, const char *tag)
{
    tw_start(tw, schema);
    simple_row(r, &g_rv, "1", tag);
    tw_begin(tw);
    tw_insert(tw, &g_rv, r);
    tw_commit(tw);
}

/* Three revisions, each setting column 3 of r: "v1", then "v2", then "v3". */
static void tw_update_three(TW *tw, Row *r)
{
    for (int i = 0; i < 3; i++) {
        tw_begin(tw);
        tw_update1(tw, &g_rv, r, 3, i == 0 ? "v1" : i == 1 ? "v2" : "v3");
        tw_commit(tw);
    }
}

/* ---------- tests ---------- */

/* Opening the store in schema is refused as fatal with exactly want. */
static void expect_open_fatal(const char *schema, const char *want)
{
    TW t, *tw = &t;
    HistorySinkConfig cfg = cfg_for(schema);
    assert_int_equal(tw_open_cfg(tw, &cfg, NULL), WR_FATAL);
    assert_string_equal(tw->err.msg, want);
    tw_close(tw);
}

static void test_missing_schema(void **state)
{
    (void)state;
    ts_exec(g_admin, "DROP SCHEMA IF EXISTS nope CASCADE");
    expect_open_fatal("nope", "history store: schema nope does not exist in the history database: run "
                              "`walrev setup` to create it");
    ts_exec(g_admin, "DROP SCHEMA IF EXISTS half CASCADE; CREATE SCHEMA half");
    expect_open_fatal("half", "history store: schema half has no store_info table in the history "
                              "database: run `walrev setup` to create it");
    setup_schema("old fmt");
    ts_exec(g_admin, "UPDATE \"old fmt\".store_info SET value = '2' WHERE key = 'format_version'");
    expect_open_fatal("old fmt", "history store: schema \"old fmt\" has format_version 2, this walrev "
                                 "needs 7: run `walrev setup`");

    TW t, *tw = &t;
    /* Unreachable server: retry, and the message never carries the password. */
    HistorySinkConfig cfg = cfg_for("walrev");
    cfg.conninfo = "host=127.0.0.1 port=1 user=postgres password=s3cret dbname=x connect_timeout=2";
    assert_int_equal(tw_open_cfg(tw, &cfg, NULL), WR_RETRY);
    assert_non_null(strstr(tw->err.msg, "history store: could not connect: "));
    assert_null(strstr(tw->err.msg, "s3cret"));
    tw_close(tw);
}

/* Values that stress both escaping layers (array literal inside COPY text). */
static char *g_big;

/* A row of values COPY's text and binary formats each escape differently:
 * NULL, the empty string, the four letters NULL, quotes, backslashes, line
 * breaks, tabs, UTF-8, an array literal's braces and a 2 MiB value (g_big),
 * under the given key. The strings are borrowed (literals and g_big). */
static void odd_values(const char *vals[NCOLS], const char *key)
{
    const char *odd[NCOLS] = {key,
                              NULL,
                              "",
                              "say \"hi\"",
                              "back\\slash \\N",
                              "line\nbreak\r\n",
                              "tab\there",
                              "caf\xc3\xa9 \xe2\x9c\x93",
                              "NULL",
                              "{a,b}",
                              " spaced ",
                              g_big};
    memcpy(vals, odd, sizeof odd);
}

static void test_values_roundtrip(void **state)
{
    (void)state;
    setup_schema("h_values");
    TW t, *tw = &t;
    tw_open(tw, "h_values");
    assert_int_equal(tw->next_id, 1);
    const char *vals[NCOLS];
    odd_values(vals, "k1");
    Row r;
    row_set(&r, &g_rv, vals);
    OK(tw->sink->ops->write_relation(tw->sink, &g_rv, &tw->err));
    tw_begin(tw);
    tw_context(tw, "user", "42", "{\"type\": \"user\", \"id\": \"42\"}", "approve\tinvoice",
               "{\"actor\":{\"type\":\"user\",\"id\":\"42\"},\"description\":\"approve\\tinvoice\"}");
    tw_insert(tw, &g_rv, &r);
    tw_context(tw, "job", "nightly", "{\"type\":\"job\",\"id\":\"nightly\"}", NULL,
               "{\"actor\":{\"type\":\"job\",\"id\":\"nightly\"}}");
    /* An update with a hidden column (values withheld) and an old-unknown flag. */
    AttributeDelta ua[2] = {
        {.col_id = 3, .flags = 0, .old_value = val(""), .new_value = val("now \"set\"")},
        {.col_id = 12, .flags = ATTR_HIDDEN | ATTR_OLD_UNKNOWN, .old_value = {NULL, 0}, .new_value = {NULL, 0}}};
    r.v[2] = val("now \"set\"");
    r.v[11] = (Value){NULL, 0};
    tw_delta(tw, &g_rv, DELTA_UPDATE, r.key, 2, ua, &r.img);
    tw_commit(tw);
    tw_flush(tw);
    assert_int_equal(tw->sink->ops->durable_lsn(tw->sink), tw->rev.end_lsn);

    /* revision */
    char hex[65];
    checksum_to_hex(tw->rev.checksum, hex);
    char want[1024];
    snprintf(want, sizeof(want),
             "1|1001|0/2000000|0/2000028|t|user|42|{\"id\": \"42\", \"type\": \"user\"}|approve\tinvoice|"
             "1|1|0|0|0|0|%s",
             hex);
    assert_q(want, "SELECT concat_ws('|', id, xid, commit_lsn, end_lsn, "
                   "commit_time = '2000-01-01 00:00:00+00'::timestamptz + interval '800000000.001 seconds', "
                   "actor_type, actor_id, actor, description, n_insert, n_update, n_delete, n_truncate, "
                   "n_snapshot, n_suppressed, encode(checksum, 'hex')) "
                   "FROM h_values.revision");
    assert_q(NULL, "SELECT coalesce(origin, gid, meta::text, warnings) FROM h_values.revision");
    /* revision_context */
    assert_q("2", "SELECT count(*) FROM h_values.revision_context");
    assert_q("1|0/1FFFFB1|user|42|approve\tinvoice|{\"actor\":{\"type\":\"user\",\"id\":\"42\"},"
             "\"description\":\"approve\\tinvoice\"}",
             "SELECT concat_ws('|', context_no, lsn, actor_type, actor_id, description, raw) "
             "FROM h_values.revision_context WHERE context_no = 1");
    assert_q("2|job|nightly|f", "SELECT concat_ws('|', context_no, actor_type, actor_id, actor IS NULL) "
                                "FROM h_values.revision_context WHERE context_no = 2");
    /* object_delta: insert */
    assert_q("I|[\"k1\"]|1|{1,2,3,4,5,6,7,8,9,10,11,12}|t|t|f|16400|1",
             "SELECT concat_ws('|', op, key, context_no, col_ids, old_values IS NULL, attr_flags IS NULL, "
             "old_unknown, relid, relversion) FROM h_values.object_delta WHERE seq = 1");
    for (int i = 0; i < NCOLS - 1; i++) {
        char *got = qv("SELECT new_values[%d] FROM h_values.object_delta WHERE revision_id = 1 AND seq = 1", i + 1);
        if (!vals[i])
            assert_null(got);
        else
            assert_string_equal(got, vals[i]);
        free(got);
        got = qv("SELECT vals[%d] FROM h_values.current_rows(16400) WHERE key = '[\"k1\"]'", i + 1);
        const char *expect = i == 2 ? "now \"set\"" : vals[i];
        if (!expect)
            assert_null(got);
        else
            assert_string_equal(got, expect);
        free(got);
    }
    assert_q("2097152|t", "SELECT concat_ws('|', length(new_values[12]), md5(new_values[12]) = md5(repeat('x', "
                          "1048576) || repeat('y', 1048576))) FROM h_values.object_delta WHERE seq = 1");
    /* object_delta: update with flags, context 2 */
    assert_q("U|2|{3,12}|{0,3}|{\"\",NULL}|{\"now \\\"set\\\"\",NULL}",
             "SELECT concat_ws('|', op, context_no, col_ids, attr_flags, old_values, new_values) "
             "FROM h_values.object_delta WHERE seq = 2");
    assert_q("1", "SELECT count(*) FROM h_values.current_rows(16400)");
    assert_q("12|t",
             "SELECT concat_ws('|', array_length(vals, 1), vals[12] IS NULL) FROM h_values.current_rows(16400)");
    /* the attribute_delta view unnests the arrays */
    assert_q("14", "SELECT count(*) FROM h_values.attribute_delta");
    assert_q("c12|3", "SELECT concat_ws('|', column_name, flags) FROM h_values.attribute_delta WHERE seq = 2 AND "
                      "col_id = 12");
    /* relation_version */
    assert_q("public|t12|d|0/1000|{1,2,3,4,5,6,7,8,9,10,11,12}|{t,f,f,f,f,f,f,f,f,f,f,f}|c12|f",
             "SELECT concat_ws('|', nspname, relname, replident, valid_from, col_ids, col_is_key, "
             "col_names[12], col_track[1]) FROM h_values.relation_version");
    /* checkpoint */
    snprintf(want, sizeof(want), "slot_a|0/2000028|1|%s", hex);
    assert_q(want, "SELECT concat_ws('|', slot_name, end_lsn, revision_id, encode(checksum, 'hex')) "
                   "FROM h_values.checkpoint");
    /* the chain verifies */
    expect_verified("h_values", 1);
    tw_close(tw);
}

static void lookup(TW *tw, const char *key, bool want_found, const char *c1, const char *c5)
{
    RowImage img;
    StrBuf storage;
    strbuf_init(&storage);
    bool found = true;
    OK(history_reader_lookup_row(history_reader_of(tw->sink), &g_rv, key, &img, &storage, &found, &tw->err));
    assert_int_equal(found, want_found);
    if (found) {
        assert_ptr_equal(img.relver, &g_rv);
        assert_int_equal(img.values[0].len, strlen(c1));
        assert_memory_equal(img.values[0].data, c1, strlen(c1));
        assert_int_equal(img.values[4].len, strlen(c5));
        assert_memory_equal(img.values[4].data, c5, strlen(c5));
        for (int i = 0; i < NCOLS; i++) assert_int_equal(img.unknown[i], 0);
    }
    strbuf_free(&storage);
}

static void test_current_rows(void **state)
{
    (void)state;
    TW t, *tw = &t;
    HistorySinkConfig cfg = fresh_store("h_rows");
    cfg.buffer_bytes = 300; /* force COPY sends in the middle of a batch */
    tw_open_ok(tw, &cfg, NULL, "open");
    OK(tw->sink->ops->write_relation(tw->sink, &g_rv, &tw->err));
    OK(tw->sink->ops->write_relation(tw->sink, &g_rv2, &tw->err));
    Row k1, k2, k3, o1;
    simple_row(&k1, &g_rv, "1", "a");
    simple_row(&k2, &g_rv, "2", "b");
    simple_row(&k3, &g_rv, "3", "c");
    simple_row(&o1, &g_rv2, "1", "o");

    /* Batch 1: insert 1, update 1, insert 2 | delete 2, insert 3 — lookups see the open batch. */
    lookup(tw, "[\"1\"]", false, NULL, NULL);
    tw_begin(tw);
    tw_insert(tw, &g_rv, &k1);
    tw_insert(tw, &g_rv2, &o1);
    tw_update1(tw, &g_rv, &k1, 4, "a-5 updated");
    tw_insert(tw, &g_rv, &k2);
    tw_commit(tw);
    lookup(tw, "[\"1\"]", true, "1", "a-5 updated");
    lookup(tw, "[\"2\"]", true, "2", "b-5");
    tw_begin(tw);
    tw_delete(tw, &g_rv, &k2);
    tw_insert(tw, &g_rv, &k3);
    tw_commit(tw);
    lookup(tw, "[\"2\"]", false, NULL, NULL);
    lookup(tw, "[\"3\"]", true, "3", "c-5");
    /* Nothing is visible to others before the batch commits. */
    assert_q("0", "SELECT count(*) FROM h_rows.object_delta");
    assert_q("0", "SELECT count(*) FROM h_rows.revision");
    tw_flush(tw);
    assert_q("16400|[\"1\"]|a-5 updated;16400|[\"3\"]|c-5;16401|[\"1\"]|o-5",
             "SELECT string_agg(concat_ws('|', relid, key, vals[5]), ';' ORDER BY relid, key) "
             "FROM h_rows.tracked_table t, h_rows.current_rows(t.relid)");
    assert_q("16400|2|5;16401|1|1", "SELECT string_agg(concat_ws('|', relid, live_rows, deltas_since_keyframe), "
                                    "';' ORDER BY relid) FROM h_rows.tracked_table");
    assert_q("6|2", "SELECT concat_ws('|', count(*), count(DISTINCT revision_id)) FROM h_rows.object_delta");

    /* Batch 2: a key change moves the row; delete 1 back and forth across revisions. */
    tw_begin(tw);
    tw_update1(tw, &g_rv, &k3, 0, "33");
    tw_delete(tw, &g_rv, &k1);
    tw_commit(tw);
    tw_begin(tw);
    simple_row(&k1, &g_rv, "1", "z");
    tw_insert(tw, &g_rv, &k1);
    tw_commit(tw);
    /* 33's own deltas hold only the changed key column: its image comes through the move from 3. (The
     * sink never asks for 3 again unless the source re-inserts it, which a later delta then shows.) */
    lookup(tw, "[\"33\"]", true, "33", "c-5");
    tw_flush(tw);
    assert_q("[\"1\"]|z-5;[\"33\"]|c-5",
             "SELECT string_agg(concat_ws('|', key, vals[5]), ';' ORDER BY key) FROM h_rows.current_rows(16400)");
    assert_q("2|8", "SELECT concat_ws('|', live_rows, deltas_since_keyframe) FROM h_rows.tracked_table "
                    "WHERE relid = 16400");

    /* Batch 3: insert 4, TRUNCATE, insert 5 in one revision: only 5 survives; the other table is untouched. */
    Row k4, k5;
    simple_row(&k4, &g_rv, "4", "d");
    simple_row(&k5, &g_rv, "5", "e");
    tw_begin(tw);
    tw_insert(tw, &g_rv, &k4);
    tw_truncate(tw, &g_rv);
    tw_insert(tw, &g_rv, &k5);
    tw_commit(tw);
    lookup(tw, "[\"4\"]", false, NULL, NULL);
    lookup(tw, "[\"33\"]", false, NULL, NULL);
    lookup(tw, "[\"5\"]", true, "5", "e-5");
    tw_flush(tw);
    assert_q("16400|[\"5\"];16401|[\"1\"]", "SELECT string_agg(concat_ws('|', relid, key), ';' ORDER BY relid, key) "
                                            "FROM h_rows.tracked_table t, h_rows.current_rows(t.relid)");
    assert_q("16400|1|11;16401|1|1", "SELECT string_agg(concat_ws('|', relid, live_rows, deltas_since_keyframe), "
                                     "';' ORDER BY relid) FROM h_rows.tracked_table");
    assert_q("T|t|t|t", "SELECT concat_ws('|', op, key IS NULL, col_ids IS NULL, new_values IS NULL) "
                        "FROM h_rows.object_delta WHERE revision_id = 5 AND seq = 2");
    assert_q("0", "SELECT count(*) FROM h_rows.keyframe");

    /* A lookup of a column id beyond the stored image reports it unknown. */
    RelColumn cols13[NCOLS + 1];
    memcpy(cols13, g_cols, sizeof(g_cols));
    cols13[NCOLS] = g_cols[1];
    cols13[NCOLS].col_id = 13;
    cols13[NCOLS].name = "c13";
    RelationVersion rv13 = g_rv;
    rv13.version = 2;
    rv13.ncols = NCOLS + 1;
    rv13.cols = cols13;
    RowImage img;
    StrBuf storage;
    strbuf_init(&storage);
    strbuf_append_str(&storage, "prefix"); /* appended to, not reset */
    bool found = false;
    OK(history_reader_lookup_row(history_reader_of(tw->sink), &rv13, "[\"5\"]", &img, &storage, &found, &tw->err));
    assert_true(found);
    assert_memory_equal(storage.data, "prefix", 6);
    assert_int_equal(img.unknown[NCOLS], 1);
    assert_null(img.values[NCOLS].data);
    assert_int_equal(img.unknown[11], 0);
    assert_int_equal(img.values[11].len, 4);
    assert_memory_equal(img.values[11].data, "e-12", 4);
    strbuf_free(&storage);

    expect_verified("h_rows", 5);
    tw_close(tw);
}

/*
 * A table's buffers go into one COPY, chunk after chunk, until another
 * statement needs the connection: a batch of deltas many buffers long is
 * one COPY into object_delta (and one into revision), not one per buffer —
 * each COPY costs the server its set-up (slots, indexes, partition routing)
 * and cost the worker a wait for the chunk before. A lookup in the middle
 * (between revisions, as the worker's are) ends the COPY — its rows must be
 * visible to it — and the next chunk opens another; every row arrives once.
 */
/* One revision inserting keys from..to of g_rv, each row tagged "s". */
static void tw_insert_range(TW *tw, int from, int to)
{
    Row r;
    char key[16];
    tw_begin(tw);
    for (int i = from; i <= to; i++) {
        snprintf(key, sizeof(key), "%d", i);
        simple_row(&r, &g_rv, key, "s");
        tw_insert(tw, &g_rv, &r);
    }
    tw_commit(tw);
}

static void test_streamed_copy(void **state)
{
    (void)state;
    TW t, *tw = &t;
    HistorySinkConfig cfg = fresh_store("h_stream");
    cfg.buffer_bytes = 300; /* a few deltas per buffer */
    tw_open_ok(tw, &cfg, NULL, "open");
    OK(tw->sink->ops->write_relation(tw->sink, &g_rv, &tw->err));
    int64_t statements0, chunks0, statements, chunks;
    sink_history_copy_counts(tw->sink, &statements0, &chunks0);
    Row r;
    char key[16];
    tw_begin(tw);
    for (int i = 1; i <= 60; i++) {
        snprintf(key, sizeof(key), "%d", i);
        simple_row(&r, &g_rv, key, "s");
        tw_insert(tw, &g_rv, &r);
    }
    sink_history_copy_counts(tw->sink, &statements, &chunks);
    assert_true(chunks - chunks0 >= 10);           /* the deltas went out buffer by buffer */
    assert_int_equal(statements - statements0, 1); /* into one COPY, still open */
    tw_commit(tw);
    tw_flush(tw);
    sink_history_copy_counts(tw->sink, &statements, &chunks);
    assert_int_equal(statements - statements0, 2); /* and the revision's row into another */
    assert_q("60|60|1", "SELECT concat_ws('|', count(*), count(DISTINCT key), count(DISTINCT revision_id)) "
                        "FROM h_stream.object_delta");

    /* A lookup of a key in the open COPY ends it and sees the row. */
    tw_insert_range(tw, 61, 90);
    lookup(tw, "[\"70\"]", true, "70", "s-5");
    tw_insert_range(tw, 91, 120);
    tw_flush(tw);
    sink_history_copy_counts(tw->sink, &statements0, &chunks);
    assert_int_equal(statements0 - statements, 3); /* object_delta before and after the lookup, revision */
    assert_q("120|120|3", "SELECT concat_ws('|', count(*), count(DISTINCT key), count(DISTINCT revision_id)) "
                          "FROM h_stream.object_delta");
    expect_verified("h_stream", 3);
    tw_close(tw);
}

static void test_checkpoint_and_batching(void **state)
{
    (void)state;
    TW t, *tw = &t;
    HistorySinkConfig cfg = fresh_store("h_ckpt");
    cfg.batch_max_revisions = 3;
    cfg.batch_max_ms = 1000;
    SinkPosition pos;
    tw_open_ok(tw, &cfg, &pos, "open");
    assert_true(pos.known);
    assert_int_equal(pos.durable_end_lsn, 0);
    assert_int_equal(pos.last_revision_id, 0);
    uint8_t zero[WALREV_CHECKSUM_LEN] = {0};
    assert_memory_equal(pos.last_checksum, zero, WALREV_CHECKSUM_LEN);
    const SinkOps *ops = tw->sink->ops;
    int64_t now = pg_now_us();
    assert_false(ops->wants_flush(tw->sink, now + 10 * 1000000, true)); /* nothing open */
    OK(ops->write_relation(tw->sink, &g_rv, &tw->err));
    Row r;
    Lsn ends[4];
    for (int i = 0; i < 3; i++) {
        simple_row(&r, &g_rv, i == 0 ? "1" : i == 1 ? "2" : "3", "x");
        tw_begin(tw);
        tw_insert(tw, &g_rv, &r);
        tw_commit(tw);
        ends[i] = tw->rev.end_lsn;
        assert_int_equal(ops->durable_lsn(tw->sink), 0);
        assert_int_equal(ops->wants_flush(tw->sink, pg_now_us(), true), i == 2);
    }
    /* The timer also asks for a flush. */
    assert_true(ops->wants_flush(tw->sink, pg_now_us() + 1001 * 1000, true));
    tw_flush(tw);
    assert_int_equal(ops->durable_lsn(tw->sink), ends[2]);
    assert_false(ops->wants_flush(tw->sink, pg_now_us() + 10 * 1000000, true));
    tw_flush(tw); /* nothing open: a no-op */
    simple_row(&r, &g_rv, "4", "x");
    tw_begin(tw);
    tw_insert(tw, &g_rv, &r);
    tw_commit(tw);
    ends[3] = tw->rev.end_lsn;
    /* The timer runs on the caller's clock, whatever its epoch (the worker's is
     * CLOCK_MONOTONIC, far from PostgreSQL's): it used to never fire there. */
    assert_false(ops->wants_flush(tw->sink, 7000, true));
    assert_false(ops->wants_flush(tw->sink, 7000 + 999 * 1000, true));
    /* While the stream is busy the window is ten times longer. */
    assert_false(ops->wants_flush(tw->sink, 7000 + 1001 * 1000, false));
    assert_true(ops->wants_flush(tw->sink, 7000 + 10001 * 1000, false));
    assert_true(ops->wants_flush(tw->sink, 7000 + 1001 * 1000, true));
    assert_int_equal(ops->durable_lsn(tw->sink), ends[2]);
    tw_flush(tw);
    assert_int_equal(ops->durable_lsn(tw->sink), ends[3]);
    uint8_t last[WALREV_CHECKSUM_LEN];
    memcpy(last, tw->last, sizeof(last));
    char want[160], hex[65];
    checksum_to_hex(last, hex);
    snprintf(want, sizeof(want), "slot_a|%X/%X|4|%s", (unsigned)(ends[3] >> 32), (unsigned)ends[3], hex);
    assert_q(want, "SELECT concat_ws('|', slot_name, end_lsn, revision_id, encode(checksum, 'hex')) "
                   "FROM h_ckpt.checkpoint");
    tw_close(tw);

    /* Reopen: the position comes back; another slot has its own. */
    tw_open_ok(tw, &cfg, &pos, "reopen");
    assert_true(pos.known);
    assert_int_equal(pos.durable_end_lsn, ends[3]);
    assert_int_equal(pos.last_revision_id, 4);
    assert_memory_equal(pos.last_checksum, last, WALREV_CHECKSUM_LEN);
    assert_int_equal(tw->sink->ops->durable_lsn(tw->sink), ends[3]);
    tw_close(tw);
    cfg.slot_name = "slot_b";
    tw_open_ok(tw, &cfg, &pos, "reopen b");
    assert_int_equal(pos.last_revision_id, 0);
    tw_close(tw);
}

/*
 * At idle a batch falls due by the pace (IDLE_PACE_FACTOR times the last
 * batch commit's duration after that commit was asked for) long before its
 * window: what keeps commit-to-durable short while the stream is never idle
 * for a whole window (issue 16, P3). The first batch has no commit to pace
 * by and waits its window; a busy stream keeps the long window.
 */
static void test_idle_pace(void **state)
{
    (void)state;
    TW t, *tw = &t;
    HistorySinkConfig cfg = fresh_store("h_pace");
    cfg.batch_max_ms = 10000;
    SinkPosition pos;
    tw_open_ok(tw, &cfg, &pos, "open");
    const SinkOps *ops = tw->sink->ops;
    OK(ops->write_relation(tw->sink, &g_rv, &tw->err));
    Row r;
    const int64_t t0 = 1000000000, s = 1000000;
    simple_row(&r, &g_rv, "1", "x");
    tw_begin(tw);
    tw_insert(tw, &g_rv, &r);
    tw_commit(tw);
    Lsn first = tw->rev.end_lsn;
    /* No commit yet: only the window. */
    assert_false(ops->wants_flush(tw->sink, t0, true));
    assert_int_equal(ops->idle_wake_in_us(tw->sink, t0), 10 * s);
    assert_false(ops->wants_flush(tw->sink, t0 + 5 * s, true));
    assert_true(ops->wants_flush(tw->sink, t0 + 10 * s, true));
    tw_flush(tw);
    assert_int_equal(ops->durable_lsn(tw->sink), first);

    simple_row(&r, &g_rv, "2", "x");
    tw_begin(tw);
    tw_insert(tw, &g_rv, &r);
    tw_commit(tw);
    /* Asked at t0 + 10 s, the commit took some ms (well under a second even
     * under ASan): due at idle four of those later, not 10 s later. */
    assert_false(ops->wants_flush(tw->sink, t0 + 10 * s, true));
    int64_t wake = ops->idle_wake_in_us(tw->sink, t0 + 10 * s);
    assert_true(wake > 0 && wake < 5 * s);
    assert_false(ops->wants_flush(tw->sink, t0 + 15 * s, false)); /* busy: the window, ten times longer */
    assert_true(ops->wants_flush(tw->sink, t0 + 15 * s, true));
    tw_flush(tw);
    assert_int_equal(ops->durable_lsn(tw->sink), tw->rev.end_lsn);
    expect_verified("h_pace", 2);
    tw_close(tw);
}

/* Lines of the server's log after offset from that contain both needles. */
static int log_lines_with(const char *log, size_t from, const char *a, const char *b)
{
    int n = 0;
    for (const char *line = log + from; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *l = strndup(line, len);
        if (strstr(l, a) && strstr(l, b)) n++;
        free(l);
        line += len + (end ? 1 : 0);
    }
    return n;
}

static size_t server_log_size(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/server.log", getenv("WALREV_TEST_PGDIR"));
    size_t len = 0;
    free(ts_read_file(path, &len));
    return len;
}

/*
 * A batch's closing statements (row digests, tracked_table, the checkpoint,
 * the WAL position read) run as statements prepared when the sink opened:
 * parsed and planned once per connection, not once per batch (issue 16,
 * P2/P3). Counted from the server's log (log_statement = all on the sink's
 * session): each batch executes them by name, none as an unnamed statement;
 * and the batches are what they were (the checkpoint row, verify).
 */
static void test_batch_tail_prepared(void **state)
{
    (void)state;
    char conninfo[768];
    snprintf(conninfo, sizeof(conninfo), "%s options='-c log_statement=all'", g_conninfo);
    HistorySinkConfig cfg = fresh_store("h_prep");
    cfg.conninfo = conninfo;
    cfg.commit = HISTORY_COMMIT_OFF; /* the WAL position is read after each COMMIT */
    size_t from = server_log_size();
    TW t, *tw = &t;
    tw_open_ok(tw, &cfg, NULL, "open");
    OK(tw->sink->ops->write_relation(tw->sink, &g_rv, &tw->err));
    Row r;
    for (int i = 0; i < 3; i++) {
        char key[8];
        snprintf(key, sizeof(key), "%d", i + 1);
        simple_row(&r, &g_rv, key, "x");
        tw_begin(tw);
        tw_insert(tw, &g_rv, &r);
        if (i == 1) tw_delta(tw, &g_rv, DELTA_TRUNCATE, NULL, 0, NULL, NULL); /* queues a row digest change */
        tw_commit(tw);
        OK(tw->sink->ops->flush(tw->sink, true, &tw->err));
    }
    sink_history_wait_keyframes(tw->sink);
    char path[1024];
    snprintf(path, sizeof(path), "%s/server.log", getenv("WALREV_TEST_PGDIR"));
    size_t len = 0;
    char *log = ts_read_file(path, &len);
    assert_true(len >= from);
    assert_int_equal(log_lines_with(log, from, "execute walrev_tracked_tables:", "INSERT INTO h_prep.tracked_table"), 3);
    assert_int_equal(log_lines_with(log, from, "execute walrev_checkpoint:", "INSERT INTO h_prep.checkpoint"), 3);
    assert_int_equal(log_lines_with(log, from, "execute walrev_row_digests:", "h_prep.row_digest_apply("), 1);
    assert_int_equal(log_lines_with(log, from, "execute walrev_wal_positions:", "pg_current_wal_insert_lsn()"), 3);
    const char *tails[] = {"INSERT INTO h_prep.tracked_table AS t (relid, deltas_since_keyframe",
                           "INSERT INTO h_prep.checkpoint", "h_prep.row_digest_apply(", "pg_current_wal_insert_lsn()"};
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++)
        if (log_lines_with(log, from, "execute <unnamed>:", tails[i]) != 0)
            fail_msg("a batch ran '%s' as an unnamed statement (parsed and planned per batch)", tails[i]);
    free(log);
    tw_close(tw);
    char want[64];
    snprintf(want, sizeof(want), "slot_a|3");
    assert_q(want, "SELECT concat_ws('|', slot_name, revision_id) FROM h_prep.checkpoint");
    assert_q("1", "SELECT count(*) FROM h_prep.object_delta WHERE op = 'T'");
    expect_verified("h_prep", 3);
}

static void test_id_gap_refused(void **state)
{
    (void)state;
    TW t, *tw = &t;
    Row r;
    tw_start_one_row(tw, "h_gap", &r, "g");
    /* Skipping id 2. */
    Revision rev = tw->rev;
    rev.id = 3;
    assert_int_equal(tw->sink->ops->begin_revision(tw->sink, &rev, &tw->err), WR_FATAL);
    assert_string_equal(tw->err.msg, "history store: revision id 3 is not the next one (expected 2); refusing "
                                     "to write a gap or a duplicate");
    /* Repeating id 1. */
    rev.id = 1;
    assert_int_equal(tw->sink->ops->begin_revision(tw->sink, &rev, &tw->err), WR_FATAL);
    /* A commit whose id does not follow. */
    tw_begin(tw);
    rev = tw->rev;
    rev.id = 5;
    assert_int_equal(tw->sink->ops->commit_revision(tw->sink, &rev, &tw->err), WR_FATAL);
    assert_string_equal(tw->err.msg, "history store: commit of revision id 5 but the next one is 2; refusing to "
                                     "write a gap or a duplicate");
    tw_commit(tw);
    tw_flush(tw);
    assert_q("1,2", "SELECT string_agg(id::text, ',' ORDER BY id) FROM h_gap.revision");
    tw_close(tw);
}

static void wait_backend_gone(const char *pid)
{
    for (int i = 0; i < 100; i++) {
        char *n = qv("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", pid);
        bool gone = strcmp(n, "0") == 0;
        free(n);
        if (gone) return;
        usleep(20000);
    }
    fail_msg("backend %s did not exit", pid);
}

static void test_killed_connection(void **state)
{
    (void)state;
    TW t, *tw = &t;
    Row r;
    tw_start_one_row(tw, "h_kill", &r, "k");
    tw_flush(tw);
    Lsn durable = tw->sink->ops->durable_lsn(tw->sink);
    uint8_t ck1[WALREV_CHECKSUM_LEN];
    memcpy(ck1, tw->last, sizeof(ck1));

    /* Batch 2 is in flight (rows already sent by COPY) when the backend is killed. */
    tw_update_three(tw, &r);
    RowImage img;
    StrBuf storage;
    strbuf_init(&storage);
    bool found = false;
    OK(history_reader_lookup_row(history_reader_of(tw->sink), &g_rv, "[\"1\"]", &img, &storage, &found, &tw->err));
    strbuf_free(&storage);
    char *pid = qv("SELECT pid FROM pg_stat_activity WHERE application_name = 'walrev-history' "
                   "AND datname = '" DB "' AND state = 'idle in transaction'");
    assert_non_null(pid);
    assert_q("t", "SELECT pg_terminate_backend(%s)", pid);
    wait_backend_gone(pid);
    free(pid);
    assert_int_equal(tw->sink->ops->flush(tw->sink, true, &tw->err), WR_RETRY);
    assert_non_null(strstr(tw->err.msg, "history store: connection lost during "));
    assert_int_equal(tw->sink->ops->durable_lsn(tw->sink), durable);
    /* Every later call says retry: the sink must be recreated. */
    {
        Revision rev = tw->rev;
        rev.id = tw->next_id;
        assert_int_equal(tw->sink->ops->begin_revision(tw->sink, &rev, &tw->err), WR_RETRY);
    }
    tw->sink->ops->abort(tw->sink);
    /* Nothing of batch 2 was committed. */
    assert_q("1|1|1|k-4", "SELECT concat_ws('|', (SELECT count(*) FROM h_kill.revision), "
                          "(SELECT count(*) FROM h_kill.object_delta), (SELECT max(revision_id) FROM "
                          "h_kill.checkpoint), (SELECT vals[4] FROM h_kill.current_rows(16400)))");
    tw_close(tw);

    /* Recreate and resend from the checkpoint. */
    SinkPosition pos;
    HistorySinkConfig cfg = cfg_for("h_kill");
    tw_open_ok(tw, &cfg, &pos, "reopen");
    assert_int_equal(pos.last_revision_id, 1);
    assert_int_equal(pos.durable_end_lsn, durable);
    assert_memory_equal(pos.last_checksum, ck1, WALREV_CHECKSUM_LEN);
    OK(tw->sink->ops->write_relation(tw->sink, &g_rv, &tw->err));
    simple_row(&r, &g_rv, "1", "k");
    tw_update_three(tw, &r);
    tw_flush(tw);
    assert_q("4|4|4|v3", "SELECT concat_ws('|', (SELECT count(*) FROM h_kill.revision), "
                         "(SELECT count(*) FROM h_kill.object_delta), (SELECT max(revision_id) FROM "
                         "h_kill.checkpoint), (SELECT vals[4] FROM h_kill.current_rows(16400)))");
    expect_verified("h_kill", 4);
    tw_close(tw);
}

static void test_sql_error_then_abort(void **state)
{
    (void)state;
    TW t, *tw = &t;
    tw_start(tw, "h_err");
    Row r;
    simple_row(&r, &g_rv, "1", "e");
    tw_begin(tw);
    tw_context(tw, "user", "1", "{not json", NULL, "{not json");
    tw_insert(tw, &g_rv, &r);
    tw_commit(tw);
    assert_int_equal(tw->sink->ops->flush(tw->sink, true, &tw->err), WR_FATAL);
    assert_non_null(strstr(tw->err.msg, "history store: COPY into h_err.revision_context failed: SQLSTATE 22P02: "
                                        "invalid input syntax for type json"));
    /* Until abort, the sink refuses work; after abort it resumes from what is durable. */
    Revision rev = tw->rev;
    rev.id = 1;
    assert_int_equal(tw->sink->ops->begin_revision(tw->sink, &rev, &tw->err), WR_FATAL);
    tw->sink->ops->abort(tw->sink);
    assert_q("0|0|0", "SELECT concat_ws('|', (SELECT count(*) FROM h_err.revision), (SELECT count(*) FROM "
                      "h_err.relation_version), (SELECT count(*) FROM h_err.checkpoint))");
    memset(tw->last, 0, sizeof(tw->last));
    tw->next_id = 1;
    /* The relation version rolled back with the batch, so it is written again. */
    OK(tw->sink->ops->write_relation(tw->sink, &g_rv, &tw->err));
    tw_begin(tw);
    tw_context(tw, "user", "1", "{\"id\": \"1\"}", NULL, "{}");
    tw_insert(tw, &g_rv, &r);
    tw_commit(tw);
    tw_flush(tw);
    assert_q("1|1|1|1", "SELECT concat_ws('|', (SELECT count(*) FROM h_err.revision), (SELECT count(*) FROM "
                        "h_err.relation_version), (SELECT count(*) FROM h_err.checkpoint), "
                        "(SELECT count(*) FROM h_err.current_rows(16400)))");
    tw_close(tw);
}

/*
 * The newest keyframe of relid in schema, folded in C by the sink, equals
 * snapshot_rows (the SQL fold) at its revision computed without it; returns
 * its row count.
 */
static long long check_keyframe(const char *schema, uint32_t relid)
{
    char *q = store_quote_ident(schema);
    ts_exec(g_admin,
            "DROP TABLE IF EXISTS kf_save, kfr_save, kf_fold; "
            "CREATE TEMP TABLE kf_save AS SELECT * FROM %1$s.keyframe WHERE relid = %2$u ORDER BY revision_id DESC "
            "LIMIT 1; "
            "CREATE TEMP TABLE kfr_save AS SELECT r.* FROM %1$s.keyframe_row r JOIN kf_save k ON k.id = r.keyframe_id; "
            "DELETE FROM %1$s.keyframe_row r USING kf_save k WHERE k.id = r.keyframe_id; "
            "DELETE FROM %1$s.keyframe k USING kf_save s WHERE k.id = s.id; "
            "CREATE TEMP TABLE kf_fold AS SELECT * FROM %1$s.snapshot_rows(%2$u, (SELECT revision_id FROM kf_save)); "
            "INSERT INTO %1$s.keyframe SELECT * FROM kf_save; INSERT INTO %1$s.keyframe_row SELECT * FROM kfr_save",
            q, relid);
    free(q);
    assert_q("0",
             "SELECT count(*) FROM kfr_save k FULL JOIN kf_fold f USING (key) WHERE k.vals IS DISTINCT FROM f.vals");
    assert_q("t", "SELECT n_rows = (SELECT count(*) FROM kfr_save) FROM kf_save");
    char *n = qv("SELECT count(*) FROM kfr_save");
    long long rows = atoll(n);
    free(n);
    return rows;
}

/* The commit record of the transaction that wrote revision id lies in the
 * server's flushed WAL (pg_walinspect reads only flushed WAL, from `from` on). */
static void assert_commit_flushed(const char *schema, int64_t id, const char *from)
{
    assert_q("t",
             "SELECT max(r.end_lsn) <= pg_current_wal_flush_lsn() "
             "FROM pg_get_wal_records_info('%s', pg_current_wal_flush_lsn()) r "
             "WHERE r.resource_manager = 'Transaction' AND r.record_type LIKE 'COMMIT%%' "
             "AND r.xid = (SELECT xmin FROM %s.revision WHERE id = %lld)",
             from, schema, (long long)id);
}

/*
 * synchronous_commit = off: a flushed batch is committed and
 * visible at once, but reported durable only as far as the server's WAL
 * flush covers its commit; never past the batch's end. sync() flushes and
 * then reports everything; poll() catches up with the WAL writer; reopened,
 * the checkpoint is where the last batch ended.
 */
static void test_async_commit(void **state)
{
    (void)state;
    TW t, *tw = &t;
    HistorySinkConfig cfg = fresh_store("h_async");
    cfg.commit = HISTORY_COMMIT_OFF;
    tw_open_ok(tw, &cfg, NULL, "open");
    const SinkOps *ops = tw->sink->ops;
    assert_non_null(ops->sync);
    ts_exec(g_admin, "CREATE EXTENSION IF NOT EXISTS pg_walinspect");
    char *from = qv("SELECT pg_current_wal_insert_lsn()");
    OK(ops->write_relation(tw->sink, &g_rv, &tw->err));
    Row r;
    Lsn end = 0;
    for (int b = 0; b < 3; b++) {
        for (int i = 0; i < 2; i++) {
            char key[8];
            snprintf(key, sizeof(key), "%d", 10 * b + i);
            simple_row(&r, &g_rv, key, "a");
            tw_begin(tw);
            tw_insert(tw, &g_rv, &r);
            tw_commit(tw);
            end = tw->rev.end_lsn;
        }
        Lsn before = ops->durable_lsn(tw->sink);
        tw_flush_nowait(tw);
        Lsn after = ops->durable_lsn(tw->sink);
        /* Never past what was given, never back. */
        assert_true(after >= before);
        assert_true(after <= end);
    }
    assert_q("6", "SELECT count(*) FROM h_async.revision"); /* visible before durable */
    /* Off: the worker never flushes for the server, however long a commit waits. */
    usleep(25 * 1000);
    OK(ops->poll(tw->sink, &tw->err));
    assert_false(ops->wants_flush(tw->sink, mono_now_us(), true));
    /* poll catches up with the server's flush (the WAL writer's, within its delay). */
    for (int i = 0; i < 100 && ops->durable_lsn(tw->sink) < end; i++) {
        usleep(50 * 1000);
        OK(ops->poll(tw->sink, &tw->err));
    }
    assert_int_equal(ops->durable_lsn(tw->sink), end);
    /* One more batch, then sync: durable at once. */
    simple_row(&r, &g_rv, "99", "b");
    tw_begin(tw);
    tw_insert(tw, &g_rv, &r);
    tw_commit(tw);
    end = tw->rev.end_lsn;
    tw_flush_nowait(tw);
    OK(ops->sync(tw->sink, &tw->err));
    assert_int_equal(ops->durable_lsn(tw->sink), end);
    /* Really flushed: its commit record is in the server's flushed WAL (a
     * sync that only took a transaction id committed asynchronously too). */
    assert_commit_flushed("h_async", tw->rev.id, from);
    free(from);
    OK(ops->sync(tw->sink, &tw->err)); /* nothing waiting: a no-op */
    tw_close(tw);
    SinkPosition pos;
    tw_open_ok(tw, &cfg, &pos, "reopen");
    assert_int_equal(pos.durable_end_lsn, end);
    assert_int_equal(pos.last_revision_id, 7);
    assert_int_equal(tw->sink->ops->durable_lsn(tw->sink), end);
    tw_close(tw);
}

/* One revision of one inserted row, into the open batch; returns its end LSN. */
static Lsn tw_insert_one(TW *tw, const char *key)
{
    Row r;
    simple_row(&r, &g_rv, key, "auto");
    tw_begin(tw);
    tw_insert(tw, &g_rv, &r);
    tw_commit(tw);
    return tw->rev.end_lsn;
}

/*
 * synchronous_commit = auto (the default): batches commit asynchronously,
 * visible at once and reported durable only once the server's flush covers
 * them. A commit that a poll one flush interval (20 ms) later still finds
 * unflushed — the server flushes nothing by itself — is flushed by the
 * worker when it is caught up: wants_flush asks for it at idle (never while
 * the stream is busy), flush makes it durable, and its commit record is then
 * in the server's flushed WAL. When the server flushed it first (another
 * session's commit), it is reported durable without.
 */
static void test_auto_commit(void **state)
{
    (void)state;
    ts_exec(g_admin, "CREATE EXTENSION IF NOT EXISTS pg_walinspect");
    TW t, *tw = &t;
    HistorySinkConfig cfg = fresh_store("h_auto");
    cfg.commit = HISTORY_COMMIT_AUTO;
    tw_open_ok(tw, &cfg, NULL, "open");
    const SinkOps *ops = tw->sink->ops;
    OK(ops->write_relation(tw->sink, &g_rv, &tw->err));
    char *from = qv("SELECT pg_current_wal_insert_lsn()");
    for (int round = 0; round < 3; round++) {
        char key[8];
        snprintf(key, sizeof(key), "%d", round);
        Lsn end = tw_insert_one(tw, key);
        int64_t id = tw->rev.id;
        Lsn before = ops->durable_lsn(tw->sink);
        OK(ops->flush(tw->sink, true, &tw->err));
        assert_true(ops->durable_lsn(tw->sink) >= before);
        assert_true(ops->durable_lsn(tw->sink) <= end);
        char want[8];
        snprintf(want, sizeof(want), "%d", round + 1);
        assert_q(want, "SELECT count(*) FROM h_auto.revision"); /* visible at once */
        /* One poll a flush interval later. */
        usleep(25 * 1000);
        OK(ops->poll(tw->sink, &tw->err));
        if (ops->durable_lsn(tw->sink) < end) {
            /* Not flushed by the server: asked for at idle only, then flushed. */
            assert_false(ops->wants_flush(tw->sink, mono_now_us(), false));
            assert_true(ops->wants_flush(tw->sink, mono_now_us(), true));
            assert_int_equal(ops->idle_wake_in_us(tw->sink, mono_now_us()), 0);
            OK(ops->flush(tw->sink, true, &tw->err));
        }
        assert_int_equal(ops->durable_lsn(tw->sink), end);
        assert_commit_flushed("h_auto", id, from);
        assert_false(ops->wants_flush(tw->sink, mono_now_us(), true)); /* nothing waits any more */
    }
    free(from);
    tw_close(tw);
}

static void test_keyframe(void **state)
{
    (void)state;
    TW t, *tw = &t;
    tw_start(tw, "h_kf");
    Row rows[10];
    char keys[10][8];
    tw_begin(tw);
    for (int i = 0; i < 10; i++) {
        snprintf(keys[i], sizeof(keys[i]), "%d", i + 1);
        simple_row(&rows[i], &g_rv, keys[i], "kf");
        tw_insert(tw, &g_rv, &rows[i]);
    }
    tw_commit(tw);
    /* 10 inserts + 990 updates = 1000 deltas: not above 4 * max(10, 250). */
    static char vbuf[4000][12];
    int n = 0;
    for (int rv = 0; rv < 10; rv++) {
        tw_begin(tw);
        for (int j = 0; j < (rv < 9 ? 100 : 90); j++, n++) {
            snprintf(vbuf[n], sizeof(vbuf[n]), "u%d", n);
            tw_update1(tw, &g_rv, &rows[n % 10], 6, vbuf[n]);
        }
        tw_commit(tw);
    }
    assert_int_equal(n, 990);
    tw_flush(tw);
    assert_q("0|10|1000", "SELECT concat_ws('|', (SELECT count(*) FROM h_kf.keyframe), live_rows, "
                          "deltas_since_keyframe) FROM h_kf.tracked_table");
    /* One more delta crosses the threshold: a keyframe of the batch's last revision. */
    tw_begin(tw);
    tw_update1(tw, &g_rv, &rows[0], 6, "last");
    tw_commit(tw);
    tw_begin(tw);
    tw_update1(tw, &g_rv, &rows[1], 7, "last2");
    tw_commit(tw);
    tw_flush_nowait(tw);
    int64_t kf_rev = tw->rev.id;
    /* The stream goes on while the keyframe is taken: deltas counted after its
     * revision stay counted whichever of the two commits first. */
    static char after[5][12];
    tw_begin(tw);
    for (int j = 0; j < 5; j++) {
        snprintf(after[j], sizeof(after[j]), "after%d", j);
        tw_update1(tw, &g_rv, &rows[5 + j], 8, after[j]);
    }
    tw_commit(tw);
    tw_flush(tw);
    /* Had the thread not begun kf_rev's keyframe when the next batch, still
     * over the threshold, asked again, the queued request moved on to that
     * batch's revision (keyframer_request): then nothing is counted since. */
    char want[128], want_later[128];
    snprintf(want, sizeof(want), "16400|%" PRId64 "|10|10|5|t", kf_rev);
    snprintf(want_later, sizeof(want_later), "16400|%" PRId64 "|10|10|0|t", kf_rev + 1);
    char *got = qv("SELECT concat_ws('|', k.relid, k.revision_id, k.n_rows, "
                   "(SELECT count(*) FROM h_kf.keyframe_row r WHERE r.keyframe_id = k.id), "
                   "t.deltas_since_keyframe, t.last_keyframe_id = k.id) "
                   "FROM h_kf.keyframe k JOIN h_kf.tracked_table t USING (relid)");
    if (!got || (strcmp(got, want) != 0 && strcmp(got, want_later) != 0))
        fail_msg("keyframe: got '%s', want '%s' or '%s'", got ? got : "NULL", want, want_later);
    free(got);
    /* The keyframe, folded in C, equals the SQL fold of the whole history without it. */
    assert_int_equal(check_keyframe("h_kf", 16400), 10);
    assert_q("last|last2", "SELECT concat_ws('|', (SELECT vals[7] FROM h_kf.keyframe_row WHERE key = '[\"1\"]'), "
                           "(SELECT vals[8] FROM h_kf.keyframe_row WHERE key = '[\"2\"]'))");

    /* The next keyframe of this small table is read key by key (snapshot_plan_by_key),
     * across new keys, a delete, a truncate and rows inserted after it. */
    Row more[3];
    char mkeys[3][8];
    static char wbuf[4200][12];
    int m = 0;
    tw_begin(tw);
    for (int i = 0; i < 3; i++) {
        snprintf(mkeys[i], sizeof(mkeys[i]), "%d", 11 + i);
        simple_row(&more[i], &g_rv, mkeys[i], "kf2");
        tw_insert(tw, &g_rv, &more[i]);
    }
    tw_delete(tw, &g_rv, &rows[2]);
    tw_commit(tw);
    for (int rv = 0; rv < 5; rv++) {
        tw_begin(tw);
        for (int j = 0; j < 100; j++, m++) {
            snprintf(wbuf[m], sizeof(wbuf[m]), "w%d", m);
            tw_update1(tw, &g_rv, rv % 2 ? &more[j % 3] : &rows[3 + j % 7], 6, wbuf[m]);
        }
        tw_commit(tw);
    }
    tw_flush(tw);
    snprintf(want, sizeof(want), "t|f|13");
    char q[256];
    snprintf(q, sizeof(q),
             "SELECT concat_ws('|', (SELECT by_key FROM h_kf.snapshot_plan_by_key(16400, %" PRId64 ", 4000)), "
             "(SELECT by_key FROM h_kf.snapshot_plan_by_key(16400, %" PRId64 ", 5)), "
             "(SELECT count(*) FROM h_kf.table_keys(16400, 4000)))",
             tw->rev.id, tw->rev.id);
    assert_q(want, "%s", q);
    tw_begin(tw);
    tw_truncate(tw, &g_rv);
    tw_commit(tw);
    for (int rv = 0; rv < 6; rv++) {
        tw_begin(tw);
        for (int j = 0; j < 100; j++, m++) {
            if (rv == 0 && j < 3) {
                tw_insert(tw, &g_rv, &more[j]);
                continue;
            }
            snprintf(wbuf[m], sizeof(wbuf[m]), "x%d", m);
            tw_update1(tw, &g_rv, &more[j % 3], 7, wbuf[m]);
        }
        tw_commit(tw);
    }
    tw_flush(tw);
    assert_q("2", "SELECT count(*) FROM h_kf.keyframe");
    assert_int_equal(check_keyframe("h_kf", 16400), 3);
    tw_close(tw);
}

/*
 * A keyframe keeps every value as the deltas hold it (the keyframe thread
 * writes keyframe_row in COPY's binary format): NULL, the empty string, the
 * four letters NULL, quotes, backslashes, line breaks, tabs, UTF-8, an array
 * literal's braces and a 2 MiB value, and a key with a tab, a quote and a
 * backslash.
 */
static void test_keyframe_values(void **state)
{
    (void)state;
    TW t, *tw = &t;
    tw_start(tw, "h_kfv");
    const char *vals[NCOLS];
    odd_values(vals, "k\\1\t\"q\"");
    Row odd, plain;
    row_set(&odd, &g_rv, vals);
    simple_row(&plain, &g_rv, "2", "kfv");
    tw_begin(tw);
    tw_insert(tw, &g_rv, &odd);
    tw_insert(tw, &g_rv, &plain);
    tw_commit(tw);
    /* 2 inserts + 1,000 updates: past the 1,000 deltas that make a keyframe due. */
    static char ubuf[1000][12];
    for (int rv = 0; rv < 10; rv++) {
        tw_begin(tw);
        for (int j = 0; j < 100; j++) {
            int n = rv * 100 + j;
            snprintf(ubuf[n], sizeof(ubuf[n]), "u%d", n);
            tw_update1(tw, &g_rv, &plain, 6, ubuf[n]);
        }
        tw_commit(tw);
    }
    tw_flush(tw);
    assert_q("1", "SELECT count(*) FROM h_kfv.keyframe");
    assert_int_equal(check_keyframe("h_kfv", 16400), 2);
    /* The odd row's keyframe image is its insert's values, element by element. */
    assert_q("t|t|t|t|t|2097152",
             "SELECT concat_ws('|', kr.vals IS NOT DISTINCT FROM od.new_values, kr.vals[2] IS NULL, kr.vals[3] = '', "
             "kr.vals[9] = 'NULL', kr.vals[6] = E'line\\nbreak\\r\\n', length(kr.vals[12])) "
             "FROM h_kfv.keyframe_row kr JOIN h_kfv.object_delta_arrays od ON od.key = kr.key AND od.op = 'I' "
             "WHERE kr.key = E'[\"k\\\\1\\t\\\"q\\\"\"]'");
    tw_close(tw);
}

/* nrev revisions of 100 one-column updates of rows[0..9], each its own batch
 * (so each asks for the keyframes it made due); values in buf from *n on. */
static void updates_in_batches(TW *tw, Row *rows, int nrev, char (*buf)[12], int *n)
{
    for (int rv = 0; rv < nrev; rv++) {
        tw_begin(tw);
        for (int j = 0; j < 100; j++, (*n)++) {
            snprintf(buf[*n], sizeof(buf[*n]), "d%d", *n);
            tw_update1(tw, &g_rv, &rows[*n % 10], 6, buf[*n]);
        }
        tw_commit(tw);
        tw_flush_nowait(tw);
    }
}

/* Poll until the query's value is want (the keyframe thread works on its own), 10 s at most. */
static void wait_q(const char *want, const char *sql)
{
    for (int i = 0; i < 200; i++) {
        char *v = qv("%s", sql);
        bool done = v && strcmp(v, want) == 0;
        free(v);
        if (done) return;
        usleep(50 * 1000);
    }
    assert_q(want, "%s", sql);
}

/*
 * While the worker is behind, keyframes wait (sink_history_hold_keyframes);
 * once it has caught up, the table gets the keyframes it would have had, at
 * the revisions where each fell due, not one at the newest. A table that
 * owes KEYFRAME_DEFER_MAX thresholds of deltas gets them even while behind.
 */
static void test_keyframe_deferred(void **state)
{
    (void)state;
    TW t, *tw = &t;
    tw_start(tw, "h_kfd");
    /* 300 rows: more than the 250 of a small table (those take no chain) */
    enum { NROWS = 300 };
    static Row rows[NROWS];
    static char vstore[NROWS][NCOLS][16];
    tw_begin(tw);
    for (int i = 0; i < NROWS; i++) {
        const char *vals[NCOLS];
        for (int c = 0; c < NCOLS; c++) {
            snprintf(vstore[i][c], sizeof(vstore[i][c]), c ? "kfd-%d" : "%d", c ? c : i + 1);
            vals[c] = vstore[i][c];
        }
        row_set(&rows[i], &g_rv, vals);
        tw_insert(tw, &g_rv, &rows[i]);
    }
    tw_commit(tw);
    int64_t r0 = tw->rev.id;
    sink_history_hold_keyframes(tw->sink, true);
    /* 300 rows: a keyframe falls due past each 1,000 deltas. 300 inserts +
     * 2,500 updates, revisions r0+1 .. r0+25 of 100 each: due at r0+8 (1,100)
     * and r0+19 (1,100 more), 600 deltas after. Behind: none is taken. */
    static char buf[11000][12];
    int n = 0;
    updates_in_batches(tw, rows, 25, buf, &n);
    usleep(300 * 1000);
    assert_q("0|2800", "SELECT concat_ws('|', (SELECT count(*) FROM h_kfd.keyframe), deltas_since_keyframe) "
                       "FROM h_kfd.tracked_table");
    /* Caught up: both, each as of its own revision. */
    sink_history_hold_keyframes(tw->sink, false);
    sink_history_wait_keyframes(tw->sink);
    char want[256];
    snprintf(want, sizeof(want), "%" PRId64 ",%" PRId64 "|300,300|600|300|t", r0 + 8, r0 + 19);
    const char *kf_sql = "SELECT concat_ws('|', (SELECT string_agg(revision_id::text, ',' ORDER BY revision_id) "
                         "FROM h_kfd.keyframe), (SELECT string_agg(n_rows::text, ',' ORDER BY revision_id) "
                         "FROM h_kfd.keyframe), t.deltas_since_keyframe, t.live_rows, t.last_keyframe_id = "
                         "(SELECT max(id) FROM h_kfd.keyframe)) FROM h_kfd.tracked_table t";
    assert_q(want, "%s", kf_sql);
    assert_int_equal(check_keyframe("h_kfd", 16400), NROWS);

    /* Behind again, for 78 revisions (r0+26 .. r0+103): once the table owes
     * more than KEYFRAME_DEFER_MAX (8) thresholds (r0+100: 600 + 7,500
     * deltas) its chain is taken while still behind: r0+30, +41, ..., +96;
     * the 700 deltas after wait for the next. */
    assert_int_equal(KEYFRAME_DEFER_MAX, 8);
    sink_history_hold_keyframes(tw->sink, true);
    updates_in_batches(tw, rows, 78, buf, &n);
    wait_q("9", "SELECT count(*) FROM h_kfd.keyframe");
    StrBuf w;
    strbuf_init(&w);
    for (int i = 0; i < 9; i++) strbuf_appendf(&w, "%s%" PRId64, i ? "," : "", r0 + 8 + 11 * i);
    strbuf_appendf(&w, "|300,300,300,300,300,300,300,300,300|700|300|t");
    wait_q(w.data, kf_sql);
    strbuf_free(&w);
    assert_int_equal(check_keyframe("h_kfd", 16400), NROWS);
    tw_close(tw);
}

/* Build a 5-revision chain in schema, with contexts, NULLs, updates, a delete and a truncate. */
static void build_chain(const char *schema)
{
    TW t, *tw = &t;
    tw_start(tw, schema);
    Row a, b;
    simple_row(&a, &g_rv, "1", "va");
    simple_row(&b, &g_rv, "2", "vb");
    a.v[3] = (Value){NULL, 0};
    tw_begin(tw);
    /* contexts as the worker parses them: verify derives the columns from raw again */
    tw_context(tw, "user", "7", "{\"type\": \"user\", \"id\": \"7\"}", "first",
               "{\"actor\":{\"type\":\"user\",\"id\":\"7\"},\"description\":\"first\"}");
    tw_insert(tw, &g_rv, &a);
    tw_insert(tw, &g_rv, &b);
    tw_commit(tw);
    tw_begin(tw);
    tw_update1(tw, &g_rv, &a, 2, "");
    tw_commit(tw);
    tw_begin(tw);
    tw_context(tw, "user", "8", "{\"type\":\"user\",\"id\":\"8\"}", NULL,
               "{\"actor\":{\"type\":\"user\",\"id\":\"8\"}}");
    tw_context(tw, "user", "9", "{\"type\":\"user\",\"id\":\"9\"}", NULL,
               "{\"actor\":{\"type\":\"user\",\"id\":\"9\"}}");
    tw_update1(tw, &g_rv, &b, 1, "secret value");
    tw_update1(tw, &g_rv, &a, 1, "tab\tand \"q\"");
    tw_commit(tw);
    tw_begin(tw);
    tw_delete(tw, &g_rv, &a);
    tw->rev.origin = "origin_x";
    tw->rev.warnings = "bad context";
    tw_commit(tw);
    tw_begin(tw);
    tw_truncate(tw, &g_rv);
    tw_commit(tw);
    tw_flush(tw);
    tw_close(tw);
}

static void expect_verify(const char *schema, int64_t want_checked, int64_t want_bad, const char *why_prefix)
{
    char why[256];
    verify_counts(schema, want_checked, want_bad, why, sizeof(why));
    if (!why_prefix)
        assert_string_equal(why, "");
    else if (strncmp(why, why_prefix, strlen(why_prefix)) != 0)
        fail_msg("why = '%s', expected to start with '%s'", why, why_prefix);
}

static void test_verify(void **state)
{
    (void)state;
    build_chain("v_ok");
    expect_verify("v_ok", 5, 0, NULL);
    /* Single-column changes are in the scalar form, the others in arrays. */
    assert_q("1|1|-|-|-|-|t;1|2|-|-|-|-|t;2|1|3|va-3||true|f;3|1|2|vb-2|secret value|true|f;"
             "3|2|2|va-2|tab\tand \"q\"|true|f;4|1|-|-|-|-|t;5|1|-|-|-|-|f",
             "SELECT string_agg(concat_ws('|', revision_id, seq, coalesce(col_id::text, '-'), "
             "CASE WHEN col_id IS NULL THEN '-' ELSE coalesce(old_value, '<null>') END, "
             "CASE WHEN col_id IS NULL THEN '-' ELSE coalesce(new_value, '<null>') END, "
             "CASE WHEN col_id IS NULL THEN '-' ELSE (col_ids IS NULL AND old_values IS NULL AND new_values IS "
             "NULL)::text END, "
             "col_ids IS NOT NULL), ';' ORDER BY revision_id, seq) FROM v_ok.object_delta");
    /* The same deltas in the array form verify the same. */
    ts_exec(g_admin, "UPDATE v_ok.object_delta SET col_ids = ARRAY[col_id], "
                     "old_values = CASE WHEN old_value IS NOT NULL THEN ARRAY[old_value] END, "
                     "new_values = CASE WHEN new_value IS NOT NULL THEN ARRAY[new_value] END, "
                     "col_id = NULL, old_value = NULL, new_value = NULL WHERE col_id IS NOT NULL");
    assert_q("0", "SELECT count(*) FROM v_ok.object_delta WHERE col_id IS NOT NULL");
    expect_verify("v_ok", 5, 0, NULL);

    /* Each tampering of a fresh chain: the damage, then what verify counts and says. */
    static const struct {
        const char *schema;
        const char *damage;
        int64_t checked, bad;
        const char *why;
    } tampered[] = {
        {"v_value", "UPDATE v_value.object_delta SET new_value = 'secret valuE' WHERE revision_id = 3 AND seq = 1", 2,
         3, "revision 3: stored checksum "},
        {"v_array", "UPDATE v_array.object_delta SET new_values[2] = 'vA' WHERE revision_id = 1 AND seq = 1", 0, 1,
         "revision 1: stored checksum "},
        {"v_sum", "UPDATE v_sum.revision SET checksum = set_byte(checksum, 0, get_byte(checksum, 0) # 1) WHERE id = 4",
         3, 4, "revision 4: stored checksum "},
        /* The parent is the previous row's checksum, zeros for the first. */
        {"v_first", "DELETE FROM v_first.revision WHERE id = 1", 0, 1,
         "revision 1 is missing (the next stored revision is 2)"},
        /* revision 3 taken out and the later ids closed up */
        {"v_shift",
         "DELETE FROM v_shift.revision WHERE id = 3; DELETE FROM v_shift.object_delta WHERE revision_id = 3; "
         "DELETE FROM v_shift.revision_context WHERE revision_id = 3; "
         "UPDATE v_shift.revision SET id = -id WHERE id > 3; UPDATE v_shift.revision SET id = -id - 1 WHERE id < 0; "
         "UPDATE v_shift.object_delta SET revision_id = revision_id - 1 WHERE revision_id > 3; "
         "UPDATE v_shift.revision_context SET revision_id = revision_id - 1 WHERE revision_id > 3",
         2, 3, "revision 3: stored checksum "},
        {"v_del", "DELETE FROM v_del.revision WHERE id = 2", 1, 2,
         "revision 2 is missing (the next stored revision is 3)"},
        {"v_ctx", "UPDATE v_ctx.revision_context SET raw = raw || ' ' WHERE revision_id = 3 AND context_no = 2", 2, 3,
         "revision 3: stored checksum "},
        {"v_meta", "UPDATE v_meta.revision SET n_update = 3 WHERE id = 3", 2, 3, "revision 3: stored checksum "},
    };
    for (size_t i = 0; i < sizeof tampered / sizeof tampered[0]; i++) {
        build_chain(tampered[i].schema);
        ts_exec(g_admin, "%s", tampered[i].damage);
        expect_verify(tampered[i].schema, tampered[i].checked, tampered[i].bad, tampered[i].why);
    }

    /* GDPR erasure: the value is replaced by NULL + flag 0x08 (new) / 0x10 (old) and its keyed hash
     * (HMAC under digest_key, format 5) kept aside. */
    build_chain("v_erase");
    char *newv = ts_query_value(g_admin, "SELECT new_value FROM v_erase.object_delta_arrays d, "
                                         "unnest(d.new_values) AS new_value WHERE revision_id = 3 AND seq = 1");
    char *oldv = ts_query_value(g_admin, "SELECT old_value FROM v_erase.object_delta_arrays d, "
                                         "unnest(d.old_values) AS old_value WHERE revision_id = 3 AND seq = 1");
    char *keyhex = ts_query_value(g_admin, "SELECT encode(key, 'hex') FROM v_erase.digest_key");
    uint8_t vkey[32];
    for (int i = 0; i < 32; i++) {
        unsigned b = 0;
        sscanf(keyhex + 2 * i, "%2x", &b);
        vkey[i] = (uint8_t)b;
    }
    RevisionHasher *vh = revhash_create();
    uint8_t hn[32], ho[32];
    char hnx[65], hox[65];
    revhash_set_value_key(vh, vkey);
    revhash_attr_value(vh, &(Value){newv, strlen(newv)}, hn);
    revhash_attr_value(vh, &(Value){oldv, strlen(oldv)}, ho);
    checksum_to_hex(hn, hnx);
    checksum_to_hex(ho, hox);
    revhash_destroy(vh);
    /* The bare SHA-256 of the value (what format 4 chained) no longer stands in for it (erased_value is
     * made by setup since format 5). */
    ts_exec(g_admin,
            "INSERT INTO v_erase.erased_value SELECT 3, 1, 2, 'n', sha256(convert_to('%s', 'UTF8'));"
            "UPDATE v_erase.object_delta SET new_value = NULL, attr_flags = '{8}' "
            "WHERE revision_id = 3 AND seq = 1",
            newv);
    expect_verify("v_erase", 2, 3, "revision 3: stored checksum ");
    ts_exec(g_admin, "UPDATE v_erase.erased_value SET value_hash = '\\x%s' WHERE which = 'n'", hnx);
    expect_verify("v_erase", 5, 0, NULL);
    /* The old value of the same change erased too, and hashed correctly. */
    ts_exec(g_admin,
            "INSERT INTO v_erase.erased_value VALUES (3, 1, 2, 'o', '\\x%s');"
            "UPDATE v_erase.object_delta SET old_value = NULL, attr_flags = '{24}' WHERE revision_id = 3 AND seq = 1",
            hox);
    expect_verify("v_erase", 5, 0, NULL);
    free(newv);
    free(oldv);
    free(keyhex);
    /* A wrong hash breaks the chain at that revision. */
    ts_exec(g_admin, "UPDATE v_erase.erased_value SET value_hash = sha256('x') WHERE which = 'n'");
    expect_verify("v_erase", 2, 3, "revision 3: stored checksum ");
    /* Erased without a recorded hash. */
    ts_exec(g_admin, "DELETE FROM v_erase.erased_value");
    expect_verify("v_erase", 2, 3, "revision 3 seq 1 col_id 2: erased value has no hash in erased_value");

    /* A store upgraded to format 5 after revision 2: revisions 1-2 hashed their values bare,
     * 3-5 keyed; verify follows store_info.keyed_values_from, and either scheme alone fails. */
    g_keyed_from = 3;
    build_chain("v_mixed");
    g_keyed_from = 1;
    ts_exec(g_admin, "UPDATE v_mixed.store_info SET value = '3' WHERE key = 'keyed_values_from'");
    expect_verify("v_mixed", 5, 0, NULL);
    ts_exec(g_admin, "UPDATE v_mixed.store_info SET value = '1' WHERE key = 'keyed_values_from'");
    expect_verify("v_mixed", 0, 1, "revision 1: stored checksum ");
    ts_exec(g_admin, "DELETE FROM v_mixed.store_info WHERE key = 'keyed_values_from'");
    expect_verify("v_mixed", 2, 3, "revision 3: stored checksum ");
    /* A role that cannot read the store's secret is told so. */
    ts_exec(g_admin,
            "INSERT INTO v_mixed.store_info VALUES ('keyed_values_from', '3');"
            "DROP ROLE IF EXISTS v_nokey; CREATE ROLE v_nokey;"
            "GRANT USAGE ON SCHEMA v_mixed TO v_nokey; GRANT SELECT ON ALL TABLES IN SCHEMA v_mixed TO v_nokey;"
            "REVOKE ALL ON v_mixed.digest_key FROM v_nokey; SET ROLE v_nokey");
    {
        int64_t checked = 0, bad = 0;
        char why[256];
        WrError err;
        assert_int_equal(history_verify(g_admin, "v_mixed", &checked, &bad, why, sizeof(why), &err), WR_FATAL);
        ts_exec(g_admin, "RESET ROLE");
        assert_non_null(strstr(err.msg, "revisions from 3 hash their values with the store's secret "
                                        "(v_mixed.digest_key), which this role cannot read"));
    }

    /* An empty store verifies trivially; a missing schema is an error. */
    setup_schema("v_empty");
    expect_verify("v_empty", 0, 0, NULL);
    int64_t checked, bad;
    char why[64];
    WrError err;
    assert_int_equal(history_verify(g_admin, "v_none", &checked, &bad, why, sizeof(why), &err), WR_FATAL);
    assert_non_null(strstr(err.msg, "SQLSTATE 42P01"));
    assert_non_null(strstr(err.msg, "v_none.revision"));
}

/* ---------- throughput and size ---------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#define HISTORY_SIZE_SQL                                                                                       \
    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace " \
    "WHERE n.nspname = '%s' AND c.relkind = 'r'"

static void maybe_flush(TW *tw)
{
    if (tw->sink->ops->wants_flush(tw->sink, pg_now_us(), true)) tw_flush(tw);
}

/* 12-column inserts, then 100k single-column updates with `per_rev` updates per revision. */
static void run_perf(const char *schema, int nrows, int nupdates, int per_rev)
{
    TW t, *tw = &t;
    tw_start(tw, schema);
    Row *rows = calloc((size_t)nrows, sizeof(Row));
    char(*keys)[12] = calloc((size_t)nrows, 12);
    double t0 = now_s();
    for (int i = 0; i < nrows; i += 100) {
        tw_begin(tw);
        for (int j = i; j < i + 100 && j < nrows; j++) {
            snprintf(keys[j], 12, "%d", j + 1);
            simple_row(&rows[j], &g_rv, keys[j], "value");
            /* simple_row's storage is a ring of 64: give each row its own copies. */
            for (int c = 1; c < NCOLS; c++) rows[j].v[c] = val("some-value-1");
            rows[j].v[0] = val(keys[j]);
            tw_insert(tw, &g_rv, &rows[j]);
        }
        tw_commit(tw);
        maybe_flush(tw);
    }
    tw_flush(tw);
    double t_ins = now_s() - t0;
    ts_exec(g_admin, "CHECKPOINT");
    char *before = qv(HISTORY_SIZE_SQL, schema);
    static const char *const newvals[4] = {"some-value-2", "some-value-3", "some-value-4", "some-value-5"};
    t0 = now_s();
    for (int i = 0; i < nupdates; i += per_rev) {
        tw_begin(tw);
        for (int j = i; j < i + per_rev && j < nupdates; j++) {
            Row *r = &rows[(j * 7919) % nrows];
            tw_update1(tw, &g_rv, r, 1 + j % 11, newvals[j % 4]);
        }
        tw_commit(tw);
        maybe_flush(tw);
    }
    tw_flush(tw);
    double t_upd = now_s() - t0;
    char *after = qv(HISTORY_SIZE_SQL, schema);
    long long grow = atoll(after) - atoll(before);
    char *od = qv("SELECT pg_total_relation_size('%s.object_delta') + 0", schema);
    char *rv = qv("SELECT pg_total_relation_size('%s.revision') + 0", schema);
    char *rs = qv("SELECT pg_total_relation_size('%s.keyframe_chunk') + 0", schema);
    print_message("perf[%s]: %d 12-column inserts in %.2fs = %.0f rows/s; %d single-column updates "
                  "(%d per revision) in %.2fs = %.0f rows/s\n",
                  schema, nrows, t_ins, nrows / t_ins, nupdates, per_rev, t_upd, nupdates / t_upd);
    print_message("size[%s]: history grew %lld bytes for %d updates = %.1f bytes/update "
                  "(object_delta %s, revision %s, keyframe_chunk %s bytes total)\n",
                  schema, grow, nupdates, (double)grow / nupdates, od, rv, rs);
    assert_q("t", "SELECT count(*) = %d FROM %s.object_delta", nrows + nupdates, schema);
    /* keyframes of 10,000 rows (several MiB) went through the sink's spill file */
    if (nrows >= 10000) assert_int_equal(check_keyframe(schema, 16400), nrows);
    free(before);
    free(after);
    free(od);
    free(rv);
    free(rs);
    free(rows);
    free(keys);
    tw_close(tw);
}

static void test_throughput_and_size(void **state)
{
    (void)state;
    run_perf("p_batched", 10000, 100000, 10);
    run_perf("p_single", 1000, 100000, 1);
}

static int group_setup(void **state)
{
    (void)state;
    init_relations();
    snprintf(g_conninfo_buf, sizeof(g_conninfo_buf), "%s", ts_fresh_database(DB));
    g_conninfo = g_conninfo_buf;
    g_admin = ts_connect(g_conninfo);
    size_t half = 1 << 20;
    g_big = malloc(2 * half + 1);
    memset(g_big, 'x', half);
    memset(g_big + half, 'y', half);
    g_big[2 * half] = '\0';
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    PQfinish(g_admin);
    free(g_big);
    return 0;
}

TS_RUN_GROUP(group_setup, group_teardown, cmocka_unit_test(test_missing_schema),
             cmocka_unit_test(test_values_roundtrip), cmocka_unit_test(test_current_rows),
             cmocka_unit_test(test_streamed_copy),
             cmocka_unit_test(test_checkpoint_and_batching), cmocka_unit_test(test_idle_pace),
             cmocka_unit_test(test_batch_tail_prepared),
             cmocka_unit_test(test_id_gap_refused),
             cmocka_unit_test(test_killed_connection), cmocka_unit_test(test_sql_error_then_abort),
             cmocka_unit_test(test_async_commit), cmocka_unit_test(test_auto_commit), cmocka_unit_test(test_keyframe),
             cmocka_unit_test(test_keyframe_values), cmocka_unit_test(test_keyframe_deferred),
             cmocka_unit_test(test_verify), cmocka_unit_test(test_throughput_and_size))
