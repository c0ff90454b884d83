/*
 * test_assembler.c — the assembler on hand-built pgoutput bytes: revisions,
 * actors, exact old values from the cache, unknown old values, unchanged
 * TOAST, hidden/untracked columns, suppression, key changes, truncate,
 * skipping of durable transactions and the checksum chain.
 */
#include "tests/support/testsupport.h"

#include "decoder/assembler.h"
#include "tests/support/wire.h"
#include "schema/checksum.h"

#include <stdlib.h>
#include <string.h>
#include "tests/support/unit_main.h"

/* cols: "t:text", "n", "u"; NULL-terminated */
static void wtuple(TsWire *w, const char *const *cols)
{
    uint16_t n = 0;
    while (cols[n]) n++;
    tw_u16(w, n);
    for (uint16_t i = 0; i < n; i++) {
        if (cols[i][0] == 't') {
            tw_text(w, cols[i] + 2);
        } else {
            tw_u8(w, (uint8_t)cols[i][0]);
        }
    }
}

/* ---- recording output ---- */
typedef struct {
    int relations, begins, contexts, deltas, commits;
    int64_t last_rel_covered_by; /* revision_id of the last relation version given out */
    char log[16384];
    Revision last;
    char last_actor[64];
    char last_warnings[512];
} Rec;

static void logf_(Rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(Rec *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = strlen(r->log);
    vsnprintf(r->log + n, sizeof(r->log) - n, fmt, ap);
    va_end(ap);
}

static void vprint(Rec *r, const Value *v)
{
    if (!v->data)
        logf_(r, "NULL");
    else
        logf_(r, "'%.*s'", (int)v->len, v->data);
}

static WrStatus o_rel(void *c, const RelationVersion *rv, WrError *e)
{
    ((Rec *)c)->relations++;
    ((Rec *)c)->last_rel_covered_by = rv->revision_id;
    return WR_OK;
}
static WrStatus o_begin(void *c, const Revision *rev, WrError *e)
{
    ((Rec *)c)->begins++;
    return WR_OK;
}
static WrStatus o_ctx(void *c, const Revision *rev, const RevisionContext *x, WrError *e)
{
    Rec *r = c;
    r->contexts++;
    logf_(r, "ctx%d %s:%s;", x->no, x->actor_type ? x->actor_type : "-", x->actor_id ? x->actor_id : "-");
    return WR_OK;
}
static WrStatus o_delta(void *c, const Revision *rev, const ObjectDelta *d, WrError *e)
{
    Rec *r = c;
    r->deltas++;
    logf_(r, "%c %s ctx%d%s [", d->op, d->key ? d->key : "-", d->context_no, d->old_unknown ? " old?" : "");
    for (int i = 0; i < d->nattrs; i++) {
        const AttributeDelta *a = &d->attrs[i];
        logf_(r, "%s%d:", i ? " " : "", a->col_id);
        vprint(r, &a->old_value);
        logf_(r, "->");
        vprint(r, &a->new_value);
        if (a->flags) logf_(r, "/f%d", a->flags);
    }
    logf_(r, "];");
    return WR_OK;
}
static WrStatus o_commit(void *c, const Revision *rev, WrError *e)
{
    Rec *r = c;
    r->commits++;
    r->last = *rev;
    snprintf(r->last_actor, sizeof(r->last_actor), "%s:%s",
             rev->first_context && rev->first_context->actor_type ? rev->first_context->actor_type : "-",
             rev->first_context && rev->first_context->actor_id ? rev->first_context->actor_id : "-");
    snprintf(r->last_warnings, sizeof(r->last_warnings), "%s", rev->warnings ? rev->warnings : "");
    logf_(r, "commit %lld;", (long long)rev->id);
    return WR_OK;
}

typedef struct {
    Rec rec;
    Assembler *a;
    PgoParser parser;
    TrackingRules *rules;
} Fix;

static void feed(Fix *f, TsWire *w)
{
    PgoMessage m;
    WrError err = {0};
    assert_int_equal(pgo_parse_message(&f->parser, w->b, w->n, &m, &err), WR_OK);
    WrStatus st = assembler_handle(f->a, &m, &err);
    if (st != WR_OK) fail_msg("assembler: %s", err.msg);
}

static void begin(Fix *f, uint64_t lsn, uint32_t xid)
{
    TsWire w = {.n = 0};
    tw_u8(&w, 'B');
    tw_u64(&w, lsn);
    tw_u64(&w, 1000);
    tw_u32(&w, xid);
    feed(f, &w);
}
static void commit(Fix *f, uint64_t lsn)
{
    TsWire w = {.n = 0};
    tw_u8(&w, 'C');
    tw_u8(&w, 0);
    tw_u64(&w, lsn);
    tw_u64(&w, lsn + 8);
    tw_u64(&w, 1000);
    feed(f, &w);
}
/* users(id key int, name text, secret text, seen text, doc text) */
static void relation(Fix *f, const char *extra_col)
{
    TsWire w = {.n = 0};
    tw_relation(&w, 16400, "public", "users", 'd', extra_col ? 6 : 5);
    const char *names[] = {"id", "name", "secret", "seen", "doc", extra_col};
    for (int i = 0; i < (extra_col ? 6 : 5); i++) tw_column(&w, i == 0 ? 1 : 0, names[i], i == 0 ? 23 : 25, -1);
    feed(f, &w);
}
/* How most cases start: the state's fixture inside a first transaction (lsn 0x100,
 * xid 700) that has announced the users relation. */
static Fix *first_tx(void **state)
{
    Fix *f = *state;
    begin(f, 0x100, 700);
    relation(f, NULL);
    return f;
}
static void change_of(Fix *f, uint32_t relid, char type, const char *const *newc)
{
    TsWire w = {.n = 0};
    tw_u8(&w, (uint8_t)type);
    tw_u32(&w, relid);
    tw_u8(&w, 'N');
    wtuple(&w, newc);
    feed(f, &w);
}
static void change(Fix *f, char type, char oldkind, const char *const *oldc, const char *const *newc)
{
    TsWire w = {.n = 0};
    tw_u8(&w, (uint8_t)type);
    tw_u32(&w, 16400);
    if (oldkind) {
        tw_u8(&w, (uint8_t)oldkind);
        wtuple(&w, oldc);
    }
    if (newc) {
        tw_u8(&w, 'N');
        wtuple(&w, newc);
    }
    feed(f, &w);
}
/* A transactional logical message (pg_logical_emit_message) at lsn. */
static void logical_message(Fix *f, uint64_t lsn, const char *prefix, const char *json)
{
    TsWire w = {.n = 0};
    tw_u8(&w, 'M');
    tw_u8(&w, 1);
    tw_u64(&w, lsn);
    tw_str(&w, prefix);
    tw_u32(&w, (uint32_t)strlen(json));
    tw_bytes(&w, json, strlen(json));
    feed(f, &w);
}
static void context(Fix *f, const char *json) { logical_message(f, 77, "walrev", json); }

/* (Re)make f's assembler: the fixture's rules, recording outputs and the hooks
 * a case adds in extra (known_revision, ddl_captured), with history or none. */
static void make_assembler(Fix *f, AssemblerOutput extra, const HistoryLookup *history)
{
    AssemblerOutput out = extra;
    out.ctx = &f->rec;
    out.relation = o_rel;
    out.begin = o_begin;
    out.context = o_ctx;
    out.delta = o_delta;
    out.commit = o_commit;
    AssemblerConfig cfg = {
        .rules = f->rules, .row_cache_bytes = 1 << 20, .control_schema = "walrev", .history = history};
    assembler_destroy(f->a);
    f->a = assembler_create(&cfg, &out);
}

static int setup(void **state)
{
    Fix *f = calloc(1, sizeof(Fix));
    f->rules = tracking_create();
    WrError err;
    assert_int_equal(tracking_add(f->rules, RULE_HIDDEN, "public.users.secret", &err), WR_OK);
    assert_int_equal(tracking_add(f->rules, RULE_UNTRACKED, "public.users.seen", &err), WR_OK);
    assert_int_equal(tracking_add(f->rules, RULE_EXCLUDE, "public.skip", &err), WR_OK);
    make_assembler(f, (AssemblerOutput){0}, NULL);
    pgo_parser_init(&f->parser, 1, false);
    *state = f;
    return 0;
}
static int teardown(void **state)
{
    Fix *f = *state;
    assembler_destroy(f->a);
    tracking_destroy(f->rules);
    free(f);
    return 0;
}

static void test_insert_update_delete_exact(void **state)
{
    Fix *f = first_tx(state);
    context(f, "{\"actor\":{\"type\":\"user\",\"id\":\"42\"},\"description\":\"edit\"}");
    change(f, 'I', 0, NULL, (const char *[]){"t:1", "t:ann", "t:pw1", "t:mon", "t:bigdoc", NULL});
    context(f, "{\"actor\":{\"type\":\"system\",\"id\":\"fixer\"}}");
    change(f, 'U', 0, NULL, (const char *[]){"t:1", "t:anne", "t:pw1", "t:tue", "u", NULL});
    commit(f, 0x200);
    assert_string_equal(f->rec.log,
                        "ctx1 user:42;I [\"1\"] ctx1 [1:NULL->'1' 2:NULL->'ann' 3:NULL->NULL/f1 5:NULL->'bigdoc'];"
                        "ctx2 system:fixer;U [\"1\"] ctx2 [2:'ann'->'anne'];commit 1;");
    assert_string_equal(f->rec.last_actor, "user:42");
    assert_int_equal(f->rec.last.n_insert, 1);
    assert_int_equal(f->rec.last.n_update, 1);
    f->rec.log[0] = 0;

    /* Only the untracked column changes: no delta. Hidden change: flagged, no values. */
    begin(f, 0x300, 701);
    change(f, 'U', 0, NULL, (const char *[]){"t:1", "t:anne", "t:pw1", "t:wed", "u", NULL});
    change(f, 'U', 0, NULL, (const char *[]){"t:1", "t:anne", "t:pw2", "t:wed", "u", NULL});
    change(f, 'D', 'K', (const char *[]){"t:1", "n", "n", "n", "n", NULL}, NULL);
    commit(f, 0x400);
    assert_string_equal(f->rec.log,
                        "U [\"1\"] ctx0 [3:NULL->NULL/f1];"
                        "D [\"1\"] ctx0 [1:'1'->NULL 2:'anne'->NULL 3:NULL->NULL/f1 5:'bigdoc'->NULL];commit 2;");
    assert_string_equal(f->rec.last_actor, "-:-");
    /* the chain links */
    uint8_t zero[32] = {0};
    assert_memory_not_equal(f->rec.last.parent_checksum, zero, 32);
}

static void test_unknown_row_and_key_change(void **state)
{
    Fix *f = first_tx(state);
    /* never seen: every sent column with old unknown; unchanged TOAST unknown too;
     * the hidden column hidden and old unknown (whether it changed is not known) */
    change(f, 'U', 0, NULL, (const char *[]){"t:9", "t:zed", "t:s", "t:x", "u", NULL});
    /* key change 9 -> 10: old object ends, a new one begins */
    change(f, 'U', 'K', (const char *[]){"t:9", "n", "n", "n", "n", NULL},
           (const char *[]){"t:10", "t:zed", "t:s", "t:x", "t:d", NULL});
    commit(f, 0x200);
    assert_string_equal(f->rec.log,
                        "U [\"9\"] ctx0 old? [1:NULL->'9'/f2 2:NULL->'zed'/f2 3:NULL->NULL/f3];"
                        "D [\"9\"] ctx0 [1:'9'->NULL 2:'zed'->NULL 3:NULL->NULL/f1 5:NULL->NULL/f2];"
                        "I [\"10\"] ctx0 [1:NULL->'10' 2:NULL->'zed' 3:NULL->NULL/f1 5:NULL->'d'];commit 1;");
}

static void test_contexts_warnings_and_suppression(void **state)
{
    Fix *f = first_tx(state);
    context(f, "{not json");
    change(f, 'I', 0, NULL, (const char *[]){"t:1", "t:a", "n", "n", "n", NULL});
    context(f, "{\"actor\":{\"type\":\"job\",\"id\":7},\"suppress\":true,\"colour\":\"red\"}");
    change(f, 'I', 0, NULL, (const char *[]){"t:2", "t:b", "n", "n", "n", NULL});
    commit(f, 0x200);
    /* suppression not allowed: still recorded, with a warning */
    assert_int_equal(f->rec.deltas, 2);
    assert_non_null(strstr(f->rec.last_warnings, "invalid JSON"));
    assert_non_null(strstr(f->rec.last_warnings, "unknown field \"colour\""));
    assert_non_null(strstr(f->rec.last_warnings, "does not allow"));
    assert_string_equal(f->rec.last_actor, "-:-");

    tracking_set_allow_suppress(f->rules, true);
    begin(f, 0x300, 701);
    context(f, "{\"actor\":{\"type\":\"job\",\"id\":\"7\"},\"suppress\":true}");
    change(f, 'I', 0, NULL, (const char *[]){"t:3", "t:c", "n", "n", "n", NULL});
    change(f, 'I', 0, NULL, (const char *[]){"t:4", "t:d", "n", "n", "n", NULL});
    commit(f, 0x400);
    assert_int_equal(f->rec.deltas, 2);
    assert_int_equal(f->rec.last.n_suppressed, 2);
    assert_non_null(strstr(f->rec.last_warnings, "2 changes not recorded"));
    assert_string_equal(f->rec.last_actor, "job:7");
}

static void test_skip_durable_and_empty(void **state)
{
    Fix *f = *state;
    uint8_t sum[32];
    memset(sum, 0xab, sizeof(sum));
    assembler_set_position(f->a, 41, sum, 0x1000);
    begin(f, 0x800, 700); /* commit below the durable LSN: already stored */
    relation(f, NULL);
    change(f, 'I', 0, NULL, (const char *[]){"t:1", "t:a", "n", "n", "n", NULL});
    commit(f, 0x800);
    assert_int_equal(f->rec.commits, 0);
    begin(f, 0x2000, 701); /* nothing tracked happens: no revision, no id */
    commit(f, 0x2000);
    assert_int_equal(f->rec.commits, 0);
    begin(f, 0x3000, 702);
    change(f, 'I', 0, NULL, (const char *[]){"t:2", "t:b", "n", "n", "n", NULL});
    commit(f, 0x3000);
    assert_int_equal(f->rec.commits, 1);
    assert_int_equal(f->rec.last.id, 42);
    assert_memory_equal(f->rec.last.parent_checksum, sum, 32);
    assert_int_equal(assembler_last_end_lsn(f->a), 0x3008);
}

/* known_revision: the store's id for (xid, commit LSN) 0x3000/702 is 57 with
 * its own parent and checksum; everything else is numbered as usual. */
static WrStatus o_known(void *c, uint32_t xid, Lsn commit_lsn, int64_t *id, uint8_t parent[32], uint8_t checksum[32],
                        bool *found, WrError *e)
{
    (void)c;
    (void)e;
    *found = xid == 702 && commit_lsn == 0x3000;
    if (*found) {
        *id = 57;
        memset(parent, 0x56, 32);
        memset(checksum, 0x57, 32);
    }
    return WR_OK;
}

static void test_known_revision_keeps_store_ids(void **state)
{
    Fix *f = *state;
    make_assembler(f, (AssemblerOutput){.known_revision = o_known}, NULL);
    uint8_t sum[32];
    memset(sum, 0xab, sizeof(sum));
    assembler_set_position(f->a, 41, sum, 0x1000);
    relation(f, NULL);
    begin(f, 0x2000, 701); /* not in the store: last id + 1 */
    change(f, 'I', 0, NULL, (const char *[]){"t:1", "t:a", "n", "n", "n", NULL});
    commit(f, 0x2000);
    assert_int_equal(f->rec.last.id, 42);
    assert_memory_equal(f->rec.last.parent_checksum, sum, 32);
    begin(f, 0x3000, 702); /* in the store as 57: its id, parent and checksum */
    change(f, 'I', 0, NULL, (const char *[]){"t:2", "t:b", "n", "n", "n", NULL});
    commit(f, 0x3000);
    uint8_t p56[32], c57[32];
    memset(p56, 0x56, 32);
    memset(c57, 0x57, 32);
    assert_int_equal(f->rec.last.id, 57);
    assert_memory_equal(f->rec.last.parent_checksum, p56, 32);
    assert_memory_equal(f->rec.last.checksum, c57, 32);
    begin(f, 0x4000, 703); /* after it: 58, chained on the store's checksum */
    change(f, 'I', 0, NULL, (const char *[]){"t:3", "t:c", "n", "n", "n", NULL});
    commit(f, 0x4000);
    assert_int_equal(f->rec.last.id, 58);
    assert_memory_equal(f->rec.last.parent_checksum, c57, 32);
    AssemblerStats st;
    assembler_stats(f->a, &st);
    assert_int_equal(st.renumbered, 1);
    assert_int_equal(st.rechecksummed, 1);
}

static void test_protocol_errors(void **state)
{
    Fix *f = *state;
    TsWire w = {.n = 0};
    tw_u8(&w, 'I');
    tw_u32(&w, 16400);
    tw_u8(&w, 'N');
    wtuple(&w, (const char *[]){"t:1", NULL});
    PgoMessage m;
    WrError err = {0};
    assert_int_equal(pgo_parse_message(&f->parser, w.b, w.n, &m, &err), WR_OK);
    assert_int_equal(assembler_handle(f->a, &m, &err), WR_PROTOCOL);
    assert_non_null(strstr(err.msg, "outside a transaction"));
    begin(f, 0x100, 700);
    assert_int_equal(assembler_handle(f->a, &m, &err), WR_PROTOCOL);
    assert_non_null(strstr(err.msg, "before its relation message"));
    relation(f, NULL);
    assert_int_equal(assembler_handle(f->a, &m, &err), WR_PROTOCOL);
    assert_non_null(strstr(err.msg, "has 1 columns"));
}

static void test_relation_versions_keep_col_ids(void **state)
{
    Fix *f = first_tx(state);
    relation(f, NULL); /* identical: no new version */
    assert_int_equal(f->rec.relations, 1);
    relation(f, "extra");
    assert_int_equal(f->rec.relations, 2);
    const RelationVersion *rv = relcache_lookup(assembler_relcache(f->a), 16400);
    assert_int_equal(rv->version, 2);
    assert_int_equal(rv->cols[5].col_id, 6);
    assert_int_equal(rv->cols[1].col_id, 2);
    assert_int_equal(rv->cols[2].track, TRACK_HIDDEN);
    assert_int_equal(rv->cols[3].track, TRACK_UNTRACKED);
    commit(f, 0x200);
}

static void message(Fix *f, const char *prefix, const char *json) { logical_message(f, 78, prefix, json); }

/* The DDL capture event trigger's row in walrev.ddl_capture(id, relid, info). */
static void ddl(Fix *f, const char *json)
{
    TsWire w = {.n = 0};
    tw_relation(&w, 16500, "walrev", "ddl_capture", 'd', 3);
    const char *names[] = {"id", "relid", "info"};
    const uint32_t types[] = {20, 26, 3802};
    for (int i = 0; i < 3; i++) tw_column(&w, i == 0, names[i], types[i], -1);
    feed(f, &w);
    char info[4096];
    snprintf(info, sizeof(info), "t:%s", json);
    change_of(f, 16500, 'I', (const char *[]){"t:1", "t:16400", info, NULL});
}

/* users with columns renamed: name -> full_name keeps col_id 2; doc dropped
 * and re-added gets a new id; no revision for the DDL itself. */
static void test_rename_keeps_identity(void **state)
{
    Fix *f = *state;
    begin(f, 0x50, 699); /* CREATE TABLE: the capture alone makes no revision */
    ddl(f, "{\"relid\":16400,\"columns\":[[1,\"id\"],[2,\"name\"],[3,\"secret\"],[4,\"seen\"],[6,\"doc\"]]}");
    commit(f, 0x60);
    assert_int_equal(f->rec.commits, 0);
    assert_int_equal(f->rec.relations, 0); /* the control table is not history */
    begin(f, 0x100, 700);
    relation(f, NULL);
    const RelationVersion *rv = relcache_lookup(assembler_relcache(f->a), 16400);
    assert_int_equal(rv->cols[4].col_id, 6); /* attnum, not position */
    change(f, 'I', 0, NULL, (const char *[]){"t:1", "t:ann", "n", "n", "t:d", NULL});
    commit(f, 0x200);
    /* ALTER TABLE users RENAME name TO full_name; (DDL alone: no revision) */
    begin(f, 0x300, 701);
    ddl(f, "{\"relid\":16400,\"columns\":[[1,\"id\"],[2,\"full_name\"],[3,\"secret\"],[4,\"seen\"],[6,\"doc\"]]}");
    commit(f, 0x400);
    assert_int_equal(f->rec.commits, 1);
    begin(f, 0x500, 702);
    TsWire w = {.n = 0};
    tw_relation(&w, 16400, "public", "users", 'd', 5);
    const char *names[] = {"id", "full_name", "secret", "seen", "doc"};
    for (int i = 0; i < 5; i++) tw_column(&w, i == 0, names[i], 25, -1);
    feed(f, &w);
    change(f, 'U', 0, NULL, (const char *[]){"t:1", "t:Ann", "n", "n", "t:d", NULL});
    commit(f, 0x600);
    rv = relcache_lookup(assembler_relcache(f->a), 16400);
    assert_int_equal(rv->version, 2);
    assert_int_equal(rv->cols[1].col_id, 2);
    assert_non_null(strstr(f->rec.log, "U [\"1\"] ctx0 [2:'ann'->'Ann'];"));
}

/* Messages under walrev's prefixes from anyone but walrev: a forged DDL
 * message re-maps nothing, a forged baseline chunk is no context; both are
 * warnings on the revision. */
static void test_forged_control_messages(void **state)
{
    Fix *f = first_tx(state);
    change(f, 'I', 0, NULL, (const char *[]){"t:1", "t:ann", "n", "n", "t:d", NULL});
    commit(f, 0x200);
    begin(f, 0x300, 701);
    message(f, "walrev.ddl", "{\"relid\":16400,\"columns\":[[1,\"id\"],[3,\"name\"],[2,\"secret\"]]}");
    message(f, "walrev.backfill", "{\"actor\":{\"type\":\"walrev\",\"id\":\"baseline\"}}");
    commit(f, 0x400);
    assert_int_equal(f->rec.commits, 2);
    assert_int_equal(f->rec.contexts, 0);
    assert_string_equal(f->rec.last_actor, "-:-");
    assert_string_equal(f->rec.last_warnings,
                        "ignored a logical message with prefix \"walrev.ddl\" at 0/4E: not emitted by walrev "
                        "(control messages are only taken from walrev's own tables and watermarks)\n"
                        "ignored a logical message with prefix \"walrev.backfill\" at 0/4E: not emitted by walrev "
                        "(control messages are only taken from walrev's own tables and watermarks)");
    /* A new version after the forged message still keeps identities by name. */
    begin(f, 0x500, 702);
    relation(f, "extra");
    change(f, 'U', 0, NULL, (const char *[]){"t:1", "t:Ann", "n", "n", "t:d", "t:x", NULL});
    commit(f, 0x600);
    const RelationVersion *rv = relcache_lookup(assembler_relcache(f->a), 16400);
    assert_int_equal(rv->version, 2);
    assert_int_equal(rv->cols[1].col_id, 2);
    assert_int_equal(rv->cols[2].col_id, 3);
    if (!strstr(f->rec.log, "U [\"1\"] ctx0 [2:'ann'->'Ann' 6:NULL->'x'/f2];")) fail_msg("%s", f->rec.log);
}

/* A new relation version enters the checksum of the next revision written,
 * even when its own transaction records nothing (a change of an excluded
 * table only): that revision's checksum is the one with SHA-256(relations)
 * (docs/checksums.md), not the one without. */
static void test_relation_version_covered_by_next_revision(void **state)
{
    Fix *f = first_tx(state);
    change(f, 'I', 0, NULL, (const char *[]){"t:1", "t:ann", "n", "n", "t:d", NULL});
    commit(f, 0x200);
    assert_int_equal(f->rec.last_rel_covered_by, 1);
    uint8_t first[WALREV_CHECKSUM_LEN];
    memcpy(first, f->rec.last.checksum, sizeof(first));
    /* public.skip's first version appears in a transaction that records nothing */
    begin(f, 0x300, 701);
    TsWire w = {.n = 0};
    tw_relation(&w, 16401, "public", "skip", 'd', 1);
    tw_column(&w, 1, "k", 23, -1);
    feed(f, &w);
    change_of(f, 16401, 'I', (const char *[]){"t:5", NULL});
    commit(f, 0x400);
    assert_int_equal(f->rec.commits, 1);
    assert_int_equal(f->rec.relations, 2);
    assert_int_equal(f->rec.last_rel_covered_by, 2);
    begin(f, 0x500, 702);
    change(f, 'U', 0, NULL, (const char *[]){"t:1", "t:Ann", "n", "n", "t:d", NULL});
    commit(f, 0x600);
    assert_int_equal(f->rec.commits, 2);
    assert_int_equal(f->rec.last.id, 2);
    /* Recompute revision 2 with and without the version: only "with" matches. */
    const RelationVersion *users = relcache_lookup(assembler_relcache(f->a), 16400);
    const RelationVersion *skip = relcache_lookup(assembler_relcache(f->a), 16401);
    assert_int_equal(skip->revision_id, 2);
    AttributeDelta ad = {.col_id = 2, .old_value = {"ann", 3}, .new_value = {"Ann", 3}};
    ObjectDelta d = {.seq = 1, .relver = users, .op = DELTA_UPDATE, .key = "[\"1\"]", .nattrs = 1, .attrs = &ad};
    Revision r = f->rec.last;
    memcpy(r.parent_checksum, first, sizeof(first));
    RevisionHasher *h = revhash_create();
    uint8_t digest[WALREV_CHECKSUM_LEN];
    revhash_relation_digest(skip, digest);
    for (int with = 0; with < 2; with++) {
        revhash_begin(h);
        revhash_add_delta(h, &d, NULL);
        if (with) revhash_add_relation(h, skip->relid, skip->version, digest);
        revhash_finish(h, &r);
        assert_int_equal(memcmp(r.checksum, f->rec.last.checksum, WALREV_CHECKSUM_LEN) == 0, with);
    }
    revhash_destroy(h);
}

/* A recording history reader's scan_rows: the rekey of a key change asks for the table's rows. */
static int scans;
static WrStatus o_scan(void *c, const RelationVersion *rv,
                       WrStatus (*row)(void *arg, const char *key, const RowImage *image, WrError *err), void *arg,
                       WrError *e)
{
    scans++;
    return WR_OK;
}
static char captured[8192];
static WrStatus o_ddl_captured(void *c, const char *info, size_t len, WrError *err)
{
    (void)err;
    snprintf(captured, sizeof(captured), "%.*s", (int)len, info);
    return WR_OK;
}

/*
 * A primary key added by DDL to a table wider than any row seen so far: the
 * rekey widens the assembler's scratch values while the DDL capture row that
 * asked for it is still being read. The capture row's text must not be read
 * from the freed scratch afterwards (it was, and under difftest's restarts
 * the worker died by SIGSEGV in json_loadb); ASan and valgrind see it here.
 */
static void test_key_added_by_ddl_to_wide_table(void **state)
{
    Fix *f = *state;
    HistoryLookup history = {.ctx = &f->rec, .scan_rows = o_scan};
    make_assembler(f, (AssemblerOutput){.ddl_captured = o_ddl_captured}, &history);
    scans = 0;
    captured[0] = 0;
    enum { NCOLS = 40 };
    begin(f, 0x100, 700);
    TsWire w = {.n = 0};
    tw_relation(&w, 16600, "public", "wide", 'd', NCOLS);
    for (int i = 0; i < NCOLS; i++) {
        char name[8];
        snprintf(name, sizeof(name), "c%d", i);
        tw_column(&w, i == 0, name, 23, -1);
    }
    feed(f, &w);
    commit(f, 0x200);
    /* ALTER TABLE wide DROP CONSTRAINT ..., ADD PRIMARY KEY (c0, c1) */
    char json[4096];
    size_t n = (size_t)snprintf(json, sizeof(json), "{\"relid\":16600,\"columns\":[");
    for (int i = 0; i < NCOLS; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n, "%s[%d,\"c%d\"]", i ? "," : "", i + 1, i);
    n += (size_t)snprintf(json + n, sizeof(json) - n, "],\"attrs\":[");
    for (int i = 0; i < NCOLS; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n, "%s[%d,\"c%d\",23,-1,null,%s,%s,false]", i ? "," : "", i + 1,
                              i, i < 2 ? "true" : "false", i < 2 ? "true" : "false");
    snprintf(json + n, sizeof(json) - n,
             "],\"replident\":\"d\",\"nspname\":\"public\",\"relname\":\"wide\",\"persistence\":\"p\","
             "\"published\":true}");
    begin(f, 0x300, 701);
    ddl(f, json);
    commit(f, 0x400);
    assert_int_equal(scans, 1);
    assert_string_equal(captured, json); /* what the worker is told is the row's text */
    assert_int_equal(f->rec.commits, 1);
    const RelationVersion *rv = relcache_lookup(assembler_relcache(f->a), 16600);
    assert_int_equal(rv->version, 2);
    assert_true(rv->cols[0].is_key && rv->cols[1].is_key && !rv->cols[2].is_key);
}

/*
 * A key change whose new row leaves a TOAST value unchanged: the value comes
 * from the cached old image, which the DELETE of the old key frees before
 * the INSERT under the new key reads it (valgrind: invalid read in the
 * checksum of the insert; the worker then wrote freed bytes into COPY).
 */
static void test_key_change_keeps_unchanged_toast(void **state)
{
    Fix *f = first_tx(state);
    change(f, 'I', 0, NULL, (const char *[]){"t:1", "t:ann", "n", "n", "t:a long document", NULL});
    commit(f, 0x200);
    f->rec.log[0] = 0;
    begin(f, 0x300, 701);
    change(f, 'U', 'K', (const char *[]){"t:1", "n", "n", "n", "n", NULL},
           (const char *[]){"t:2", "t:ann", "n", "n", "u", NULL});
    commit(f, 0x400);
    assert_string_equal(
        f->rec.log, "D [\"1\"] ctx0 [1:'1'->NULL 2:'ann'->NULL 3:NULL->NULL/f1 5:'a long document'->NULL];"
                    "I [\"2\"] ctx0 [1:NULL->'2' 2:NULL->'ann' 3:NULL->NULL/f1 5:NULL->'a long document'];commit 2;");
}

TS_RUN_TESTS(cmocka_unit_test_setup_teardown(test_insert_update_delete_exact, setup, teardown),
             cmocka_unit_test_setup_teardown(test_unknown_row_and_key_change, setup, teardown),
             cmocka_unit_test_setup_teardown(test_contexts_warnings_and_suppression, setup, teardown),
             cmocka_unit_test_setup_teardown(test_skip_durable_and_empty, setup, teardown),
             cmocka_unit_test_setup_teardown(test_known_revision_keeps_store_ids, setup, teardown),
             cmocka_unit_test_setup_teardown(test_protocol_errors, setup, teardown),
             cmocka_unit_test_setup_teardown(test_relation_versions_keep_col_ids, setup, teardown),
             cmocka_unit_test_setup_teardown(test_rename_keeps_identity, setup, teardown),
             cmocka_unit_test_setup_teardown(test_forged_control_messages, setup, teardown),
             cmocka_unit_test_setup_teardown(test_relation_version_covered_by_next_revision, setup, teardown),
             cmocka_unit_test_setup_teardown(test_key_added_by_ddl_to_wide_table, setup, teardown),
             cmocka_unit_test_setup_teardown(test_key_change_keeps_unchanged_toast, setup, teardown))
