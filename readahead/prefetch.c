/* prefetch.c — see prefetch.h. */
#include "readahead/readahead.h"

#include <stdlib.h>
#include <string.h>

#include "schema/rowcache.h"

/* Budget of the set of inserted keys: past it the oldest are forgotten, which
 * only costs a wasted key in a lookup. */
#define READ_AHEAD_KEYS_BYTES ((size_t)4 << 20)

/* The keys one table needs, as offsets into one buffer. */
typedef struct {
    const RelationVersion *rv;
    StrBuf keys; /* NUL-separated */
    size_t *off;
    int n, cap;
} TableKeys;

typedef struct {
    TableKeys *t;
    int n, cap;
} KeySets;

static TableKeys *table_of(KeySets *s, const RelationVersion *rv)
{
    for (int i = 0; i < s->n; i++)
        if (s->t[i].rv == rv) return &s->t[i];
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 4;
        s->t = xrealloc(s->t, (size_t)s->cap * sizeof(TableKeys));
    }
    TableKeys *t = &s->t[s->n++];
    memset(t, 0, sizeof(*t));
    t->rv = rv;
    strbuf_init(&t->keys);
    return t;
}

static void add_key(TableKeys *t, const char *key, size_t len)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->off = xrealloc(t->off, (size_t)t->cap * sizeof(size_t));
    }
    t->off[t->n++] = t->keys.len;
    strbuf_append(&t->keys, key, len);
    strbuf_append_char(&t->keys, '\0');
}

static int cmp_str(const void *x, const void *y) { return strcmp(*(const char *const *)x, *(const char *const *)y); }

typedef struct {
    Assembler *a;
    uint32_t relid;
} PutTarget;

static void put_image(void *arg, const char *key, const RowImage *image)
{
    PutTarget *t = arg;
    assembler_prefetch_put(t->a, image->relver, key, image);
}

static void put_absent(void *arg, const char *key)
{
    PutTarget *t = arg;
    assembler_prefetch_absent(t->a, t->relid, key);
}

/* One table's keys, deduplicated (a row changed twice in the run), in statements of at most PREFETCH_MAX_KEYS. */
static WrStatus fetch_table(TableKeys *t, Assembler *a, const HistoryLookup *history, size_t *fetched, WrError *err)
{
    const char **keys = xcalloc((size_t)t->n, sizeof(char *));
    for (int i = 0; i < t->n; i++) keys[i] = t->keys.data + t->off[i];
    qsort(keys, (size_t)t->n, sizeof(char *), cmp_str);
    int n = 0;
    for (int i = 0; i < t->n; i++)
        if (n == 0 || strcmp(keys[n - 1], keys[i]) != 0) keys[n++] = keys[i];
    WrStatus st = WR_OK;
    for (int i = 0; st == WR_OK && i < n; i += PREFETCH_MAX_KEYS) {
        int m = n - i < PREFETCH_MAX_KEYS ? n - i : PREFETCH_MAX_KEYS;
        PutTarget target = {a, t->rv->relid};
        st = history->prefetch(history->ctx, t->rv, keys + i, m, put_image, put_absent, &target, err);
        *fetched += (size_t)m;
    }
    free(keys);
    return st;
}

WrStatus prefetch_old_images(const ReadAhead *q, const PgoParser *parser, Assembler *a, size_t *fetched, WrError *err)
{
    *fetched = 0;
    const HistoryLookup *history = assembler_history(a);
    if (!history->prefetch) return WR_OK;
    PgoParser scratch = *parser;
    AssemblerScan scan = {0};
    KeySets sets = {0};
    /* Keys inserted earlier in the run: the row is cached when its INSERT is
     * handled, so a change after it needs no lookup. The row cache's table
     * serves as the set (budget far above what the run's keys take). */
    RowCache *inserts = rowcache_create(READ_AHEAD_KEYS_BYTES);
    StrBuf key;
    strbuf_init(&key);
    size_t count = readahead_count(q);
    for (size_t i = 0; i < count && !scan.stop; i++) {
        size_t len;
        const uint8_t *buf = readahead_peek(q, i, &len);
        PgoCopyData cd;
        PgoMessage msg;
        WrError ignored;
        if (pgo_parse_copydata(buf, len, &cd, &ignored) != WR_OK) break;
        if (cd.kind != PGO_COPY_XLOGDATA) continue;
        if (pgo_parse_message(&scratch, cd.payload, cd.payload_len, &msg, &ignored) != WR_OK) break;
        const RelationVersion *rv = NULL;
        bool inserted = false;
        strbuf_reset(&key);
        if (assembler_prefetch_scan(a, &scan, &msg, &rv, &key, &inserted)) {
            if (!rowcache_contains(inserts, rv->relid, key.data)) add_key(table_of(&sets, rv), key.data, key.len);
        } else if (inserted) {
            rowcache_put_absent(inserts, rv->relid, key.data);
        }
    }
    WrStatus st = WR_OK;
    for (int i = 0; i < sets.n; i++) {
        /* One change alone costs the same round trip either way. */
        if (st == WR_OK && sets.t[i].n > 1) st = fetch_table(&sets.t[i], a, history, fetched, err);
        strbuf_free(&sets.t[i].keys);
        free(sets.t[i].off);
    }
    free(sets.t);
    rowcache_destroy(inserts);
    strbuf_free(&key);
    return st;
}
