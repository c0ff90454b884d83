/*
 * test_file_sink.c — the file sink on a real filesystem: a stream of
 * revisions written, flushed and checkpointed; a "crash" (destroy without
 * flush, after a committed-but-unsynced revision and a partial one) and a
 * reopen that cuts the file back to the checkpoint with the right position;
 * abort; stdout; refusals; and an independent Python decoder reading every
 * message exactly as the C decoder does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sink/msgpack_codec.h"
#include "tests/support/sample_relations.h"
#include "tests/support/testsupport.h"
#include "sink/sink.h"
#include "tests/support/unit_main.h"

/* ---- a synthetic stream: two tables, contexts, hidden values, NULL vs empty ---- */

/* public.items and sales.orders, revisions by id: tests/support/sample_relations.h */

/*
 * Revision id: context 1, an insert into items (hidden secret), an update of
 * items with NULL -> "", then context 2 and an insert into orders. With
 * commit=false it stops before the trailer (a revision in flight).
 */
static void write_rev(Sink *s, int64_t id, bool commit)
{
    WrError err = {0};
    Revision rev = ts_sample_revision(id);
    RevisionContext ctx1 = {.no = 1, .actor_type = "user", .actor_id = "42", .description = "edit"};
    RevisionContext ctx2 = {.no = 2, .actor_type = "system", .actor_id = "fixer"};
    char key[32];
    snprintf(key, sizeof key, "[\"%lld\"]", (long long)id);
    AttributeDelta ins[] = {{.col_id = 1, .new_value = {key + 2, strlen(key) - 4}},
                            {.col_id = 2, .new_value = {"tab\there", 8}},
                            {.col_id = 3, .flags = ATTR_HIDDEN, .new_value = {"pw", 2}}};
    AttributeDelta upd[] = {{.col_id = 2, .old_value = {NULL, 0}, .new_value = {"", 0}}};
    AttributeDelta ord[] = {{.col_id = 1, .new_value = {"9", 1}}, {.col_id = 2, .new_value = {"12.50", 5}}};
    ObjectDelta d1 = {
        .seq = 1, .relver = &ts_items, .op = DELTA_INSERT, .key = key, .context_no = 1, .nattrs = 3, .attrs = ins};
    ObjectDelta d2 = {
        .seq = 2, .relver = &ts_items, .op = DELTA_UPDATE, .key = key, .context_no = 1, .nattrs = 1, .attrs = upd};
    ObjectDelta d3 = {.seq = 3,
                      .relver = &ts_orders,
                      .op = DELTA_INSERT,
                      .key = "[\"9\",\"12.50\"]",
                      .context_no = 2,
                      .nattrs = 2,
                      .attrs = ord};
    assert_int_equal(s->ops->begin_revision(s, &rev, &err), WR_OK);
    assert_int_equal(s->ops->write_context(s, &rev, &ctx1, &err), WR_OK);
    rev.first_context = &ctx1;
    assert_int_equal(s->ops->write_relation(s, &ts_items, &err), WR_OK);
    assert_int_equal(s->ops->write_delta(s, &rev, &d1, &err), WR_OK);
    assert_int_equal(s->ops->write_delta(s, &rev, &d2, &err), WR_OK);
    assert_int_equal(s->ops->write_context(s, &rev, &ctx2, &err), WR_OK);
    /* no write_relation for ORDERS: the sink must put it in before the delta itself */
    assert_int_equal(s->ops->write_delta(s, &rev, &d3, &err), WR_OK);
    if (!commit) return;
    rev.n_insert = 2;
    rev.n_update = 1;
    assert_int_equal(s->ops->commit_revision(s, &rev, &err), WR_OK);
}

/* ---- helpers ---- */

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/walrev-file-sink-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static char *path_in_tmp(const char *name)
{
    static char buf[4][128];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 128, "%s/%s", tmpdir, name);
    return p;
}

static long file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

/* Decode a whole file with the C decoder into "type id" lines and JSON lines. */
static void decode_file(const char *path, StrBuf *summary, StrBuf *jsonl)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    StrBuf data;
    strbuf_init(&data);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) strbuf_append(&data, chunk, n);
    fclose(fp);
    size_t off = 0;
    while (off < data.len) {
        json_t *j = NULL;
        size_t used = 0;
        WrError err = {0};
        assert_int_equal(mpc_decode_json(data.data + off, data.len - off, &used, &j, &err), WR_OK);
        strbuf_appendf(summary, "%s %s\n", json_string_value(json_object_get(j, "type")),
                       json_string_value(json_object_get(j, "id")));
        if (jsonl) {
            char *s = json_dumps(j, JSON_COMPACT);
            strbuf_appendf(jsonl, "%s\n", s);
            free(s);
        }
        json_decref(j);
        off += used;
    }
    strbuf_free(&data);
}

static Sink *open_sink(const char *path, SinkPosition *pos, WrStatus expect, WrError *err)
{
    FileSinkConfig cfg = {.path = path, .fsync = true};
    Sink *s = sink_file_create(&cfg);
    assert_non_null(s);
    assert_int_equal(s->ops->open(s, pos, err), expect);
    return s;
}

/* A file sink opened (WR_OK) on a new file name of the test directory, its path in *path. */
static Sink *open_new_sink(const char *name, const char **path)
{
    *path = path_in_tmp(name);
    SinkPosition pos;
    WrError err = {0};
    return open_sink(*path, &pos, WR_OK, &err);
}

/* A flush of s succeeds and makes it durable through revision id. */
static void expect_flushed_through(Sink *s, int64_t id)
{
    WrError err = {0};
    assert_int_equal(s->ops->flush(s, true, &err), WR_OK);
    assert_int_equal(s->ops->durable_lsn(s), ts_sample_revision(id).end_lsn);
}

static void expect_summary(const char *path, const char *expected)
{
    StrBuf got;
    strbuf_init(&got);
    decode_file(path, &got, NULL);
    assert_string_equal(got.data ? got.data : "", expected);
    strbuf_free(&got);
}

/* The messages write_rev produces; first=true when the relations are new to this file session. */
static void append_rev_lines(StrBuf *b, bool first, int id)
{
    if (first) strbuf_append_str(b, "relation relation.16400.1\n");
    strbuf_appendf(b, "delta %d.1\ndelta %d.2\n", id, id);
    if (first) strbuf_append_str(b, "relation relation.16500.3\n");
    strbuf_appendf(b, "delta %d.3\nrevision %d\n", id, id);
}

/* The file at path holds the messages of the revisions revs names, in order,
 * e.g. "*1 2 *3": each as write_rev wrote it, '*' where the relations were
 * new to that file session (append_rev_lines). */
static void expect_revisions(const char *path, const char *revs)
{
    StrBuf want;
    strbuf_init(&want);
    for (const char *p = revs; *p;) {
        bool first = *p == '*';
        char *end;
        long id = strtol(p + first, &end, 10);
        assert_true(end > p + first);
        append_rev_lines(&want, first, (int)id);
        p = end + strspn(end, " ");
    }
    expect_summary(path, want.data);
    strbuf_free(&want);
}

/* Resend revision id whole, flush it durable, close s: the file at path then
 * holds exactly the revisions revs (expect_revisions). */
static void finish_and_expect(Sink *s, int64_t id, const char *path, const char *revs)
{
    write_rev(s, id, true);
    expect_flushed_through(s, id);
    sink_destroy(s);
    expect_revisions(path, revs);
}

static void test_crash_and_reopen(void **state)
{
    (void)state;
    const char *path = path_in_tmp("stream.msgpack");
    const char *ckpt = path_in_tmp("stream.msgpack.ckpt");
    SinkPosition pos;
    WrError err = {0};
    Sink *s = open_sink(path, &pos, WR_OK, &err);
    assert_true(pos.known);
    assert_int_equal(pos.durable_end_lsn, 0);
    assert_int_equal(pos.last_revision_id, 0);
    /* The first open marks the file as walrev's with an empty checkpoint. */
    char *text = ts_read_file(ckpt, NULL);
    assert_non_null(text);
    assert_string_equal(text, "walrev-file-checkpoint 1\noffset 0\nend_lsn 0/0\nrevision_id 0\nchecksum "
                              "0000000000000000000000000000000000000000000000000000000000000000\n");
    free(text);

    write_rev(s, 1, true);
    write_rev(s, 2, true);
    assert_int_equal(s->ops->durable_lsn(s), 0); /* nothing durable before flush */
    assert_int_equal(s->ops->flush(s, true, &err), WR_OK);
    Revision r2 = ts_sample_revision(2);
    assert_int_equal(s->ops->durable_lsn(s), r2.end_lsn);
    long synced = file_size(path);
    text = ts_read_file(ckpt, NULL);
    char expect[512];
    snprintf(expect, sizeof expect,
             "walrev-file-checkpoint 1\noffset %ld\nend_lsn 0/1000230\nrevision_id 2\nchecksum "
             "0202020202020202020202020202020202020202020202020202020202020202\n",
             synced);
    assert_string_equal(text, expect);
    free(text);

    /* Revision 3 committed but never flushed, revision 4 cut short: then the process "dies". */
    write_rev(s, 3, true);
    write_rev(s, 4, false);
    assert_false(s->ops->wants_flush(s, 1000000, true)); /* timer starts */
    assert_true(s->ops->wants_flush(s, 1000000 + 100000, true));
    assert_int_equal(s->ops->durable_lsn(s), r2.end_lsn);
    sink_destroy(s);
    assert_true(file_size(path) > synced);

    s = open_sink(path, &pos, WR_OK, &err);
    assert_true(pos.known);
    assert_int_equal(pos.durable_end_lsn, r2.end_lsn);
    assert_int_equal(pos.last_revision_id, 2);
    assert_memory_equal(pos.last_checksum, r2.checksum, WALREV_CHECKSUM_LEN);
    assert_int_equal(file_size(path), synced);
    assert_int_equal(s->ops->durable_lsn(s), r2.end_lsn);

    /* The worker resends from revision 3; the new session repeats the relations before use. */
    finish_and_expect(s, 3, path, "*1 2 *3");
}

/* The Python decoder, written from the format document, reads every message exactly as C does. */
static void test_python_decoder_agrees(void **state)
{
    (void)state;
    const char *path;
    Sink *s = open_new_sink("py.msgpack", &path);
    write_rev(s, 1, true);
    write_rev(s, 2, true);
    WrError err = {0};
    assert_int_equal(s->ops->flush(s, true, &err), WR_OK);
    sink_destroy(s);

    StrBuf summary, jsonl;
    strbuf_init(&summary);
    strbuf_init(&jsonl);
    decode_file(path, &summary, &jsonl);
    const char *src = getenv("WALREV_SOURCE_DIR");
    assert_non_null(src);
    char *out = NULL;
    int rc = ts_run(&out, "/usr/bin/python3 %s/tests/integration/kafka_decode.py %s", src, path);
    assert_int_equal(rc, 0);
    assert_string_equal(out, jsonl.data);
    /* every kind appears, the hidden value nowhere, NULL and "" distinct */
    assert_non_null(strstr(out, "\"type\":\"relation\""));
    assert_non_null(strstr(out, "\"type\":\"delta\""));
    assert_non_null(strstr(out, "\"type\":\"revision\""));
    assert_null(strstr(out, "pw"));
    assert_non_null(strstr(out, "{\"column\":\"name\",\"col_id\":2,\"flags\":0,\"old\":null,\"new\":\"\"}"));
    assert_non_null(
        strstr(out, "\"checksum\":\"\\\\x0101010101010101010101010101010101010101010101010101010101010101\""));
    free(out);

    /* `walrev tail --file` prints the same view, and a table */
    rc = ts_run(&out, "%s --source dbname=unused tail --file %s", ts_walrev_bin(), path);
    assert_int_equal(rc, 0);
    assert_string_equal(out, jsonl.data);
    free(out);
    rc =
        ts_run(&out, "%s --source dbname=unused tail --file %s --format table --max-messages 6", ts_walrev_bin(), path);
    assert_int_equal(rc, 0);
    assert_string_equal(
        out, "relation relation.16400.1 schema   public.items replident=d cols: id:23(key) name:25 secret:25\n"
             "delta    1.1            insert   public.items [\"1\"] actor=user:42 id=\"1\" name=\"tab\\there\" "
             "secret=(hidden)\n"
             "delta    1.2            update   public.items [\"1\"] actor=user:42 name=NULL->\"\"\n"
             "relation relation.16500.3 schema   sales.orders replident=f cols: no:20(key) total:1700\n"
             "delta    1.3            insert   sales.orders [\"9\",\"12.50\"] actor=system:fixer no=\"9\" "
             "total=\"12.50\"\n"
             "revision 1              commit   lsn=0/1000130 time=2022-03-07 20:26:40.000001+00 actor=user:42 "
             "description=\"edit\" ins=2 upd=1 del=0 trunc=0 snap=0 public.items:2 sales.orders:1\n");
    free(out);

    /* and it rejects a damaged file, naming the message */
    FILE *fp = fopen(path, "ab");
    fputc(0x93, fp); /* an array of 3 at top level */
    fputc(1, fp);
    fputc(2, fp);
    fputc(3, fp);
    fclose(fp);
    rc = ts_run(&out, "/usr/bin/python3 %s/tests/integration/kafka_decode.py %s 2>&1 >/dev/null", src, path);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "message 11: top level is not a map"));
    free(out);
    strbuf_free(&summary);
    strbuf_free(&jsonl);
}

static void test_abort_cuts_revision_in_flight(void **state)
{
    (void)state;
    const char *path;
    Sink *s = open_new_sink("abort.msgpack", &path);
    write_rev(s, 1, true);
    write_rev(s, 2, false);
    s->ops->abort(s);
    finish_and_expect(s, 2, path, "*1 2");
}

static void test_stdout(void **state)
{
    (void)state;
    const char *path = path_in_tmp("stdout.msgpack");
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_true(dup2(fileno(fp), STDOUT_FILENO) >= 0);
    fclose(fp);

    SinkPosition pos;
    WrError err = {0};
    Sink *s = open_sink("-", &pos, WR_OK, &err);
    assert_false(pos.known);
    write_rev(s, 5, true);
    assert_int_equal(s->ops->durable_lsn(s), 0);
    expect_flushed_through(s, 5);
    sink_destroy(s);
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    expect_revisions(path, "*5");
    assert_int_equal(access(path_in_tmp("-.ckpt"), F_OK), -1);
}

static void test_refusals(void **state)
{
    (void)state;
    SinkPosition pos;
    WrError err = {0};
    /* a file walrev did not write */
    const char *foreign = path_in_tmp("foreign.txt");
    FILE *fp = fopen(foreign, "w");
    fputs("precious data\n", fp);
    fclose(fp);
    Sink *s = open_sink(foreign, &pos, WR_FATAL, &err);
    assert_non_null(strstr(err.msg, "has 14 bytes but no checkpoint"));
    sink_destroy(s);
    assert_int_equal(file_size(foreign), 14);

    /* a damaged checkpoint names its file and line */
    const char *bad = path_in_tmp("bad.msgpack");
    char ckpt[160];
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", bad);
    fp = fopen(ckpt, "w");
    fputs("walrev-file-checkpoint 1\noffset banana\n", fp);
    fclose(fp);
    s = open_sink(bad, &pos, WR_FATAL, &err);
    snprintf(ckpt + strlen(ckpt), sizeof ckpt - strlen(ckpt), ":2: not a walrev checkpoint line");
    assert_non_null(strstr(err.msg, ckpt));
    sink_destroy(s);

    /* a file shorter than its checkpoint */
    const char *shorter = path_in_tmp("short.msgpack");
    s = open_sink(shorter, &pos, WR_OK, &err);
    write_rev(s, 1, true);
    assert_int_equal(s->ops->flush(s, true, &err), WR_OK);
    sink_destroy(s);
    assert_int_equal(truncate(shorter, 10), 0);
    s = open_sink(shorter, &pos, WR_FATAL, &err);
    assert_non_null(strstr(err.msg, "has 10 bytes, fewer than the"));
    sink_destroy(s);

    /* a delta naming a context that is not the one in force */
    s = open_sink(path_in_tmp("ctx.msgpack"), &pos, WR_OK, &err);
    Revision rev = ts_sample_revision(1);
    AttributeDelta a = {.col_id = 2, .new_value = {"x", 1}};
    ObjectDelta d = {
        .seq = 1, .relver = &ts_items, .op = DELTA_INSERT, .key = "[\"1\"]", .context_no = 2, .nattrs = 1, .attrs = &a};
    assert_int_equal(s->ops->begin_revision(s, &rev, &err), WR_OK);
    assert_int_equal(s->ops->write_delta(s, &rev, &d, &err), WR_PROTOCOL);
    assert_string_equal(err.msg, "file sink: delta 1.1 refers to context 2 but the context in force is 0");
    sink_destroy(s);
}

TS_RUN_TESTS(cmocka_unit_test_setup_teardown(test_crash_and_reopen, setup, teardown),
             cmocka_unit_test_setup_teardown(test_python_decoder_agrees, setup, teardown),
             cmocka_unit_test_setup_teardown(test_abort_cuts_revision_in_flight, setup, teardown),
             cmocka_unit_test_setup_teardown(test_stdout, setup, teardown),
             cmocka_unit_test_setup_teardown(test_refusals, setup, teardown))
