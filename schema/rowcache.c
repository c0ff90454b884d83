/*
 * rowcache.c — chained hash table + doubly linked LRU list. Each entry is one
 * allocation: header, per-column slots, key bytes, value bytes; so eviction
 * is one free() and the byte budget is exact. Slots are 8 bytes and values
 * lie in slot order (a value's offset is the sum of the lengths before it):
 * for a 12-column row of ~200 value bytes that is ~40% of the entry, and a
 * row that fits in the cache is an old image the history store is not asked
 * for.
 */
#include "schema/rowcache.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int16_t col_id;
    uint8_t state; /* 0 value, 1 NULL, 2 unknown */
    uint32_t len;
} Slot;

typedef struct CacheEntry {
    struct CacheEntry *hnext;
    struct CacheEntry *prev, *next; /* LRU: head = most recent */
    uint64_t hash;
    uint32_t relid;
    uint32_t keylen;
    size_t size;
    uint16_t nslots;
    bool absent; /* the history store holds no image of this object (rowcache_put_absent) */
} CacheEntry;

/* The parts after the header: slots, then the key (NUL-terminated), then the values. */
static Slot *entry_slots(CacheEntry *e) { return (Slot *)(e + 1); }
static char *entry_key(CacheEntry *e) { return (char *)(entry_slots(e) + e->nslots); }
static char *entry_vals(CacheEntry *e) { return entry_key(e) + e->keylen + 1; }

struct RowCache {
    size_t max_bytes;
    size_t bytes;
    size_t count;
    CacheEntry **buckets;
    size_t nbuckets;
    CacheEntry *head, *tail;
    uint64_t hits, misses;
};

uint64_t rowcache_key_hash(uint32_t relid, const char *key, size_t len)
{
    uint64_t h = wr_fnv1a(key, len, WR_FNV_BASIS ^ relid);
    return h ^ (h >> 29);
}

RowCache *rowcache_create(size_t max_bytes)
{
    RowCache *c = xcalloc(1, sizeof(*c));
    c->max_bytes = max_bytes;
    c->nbuckets = 1024;
    c->buckets = xcalloc(c->nbuckets, sizeof(CacheEntry *));
    return c;
}

void rowcache_destroy(RowCache *c)
{
    if (!c) return;
    CacheEntry *e = c->head;
    while (e) {
        CacheEntry *n = e->next;
        free(e);
        e = n;
    }
    free(c->buckets);
    free(c);
}

static void lru_unlink(RowCache *c, CacheEntry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(RowCache *c, CacheEntry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head) c->head->prev = e;
    c->head = e;
    if (!c->tail) c->tail = e;
}

static CacheEntry **find(RowCache *c, uint32_t relid, const char *key, size_t keylen, uint64_t h)
{
    CacheEntry **p = &c->buckets[h & (c->nbuckets - 1)];
    while (*p) {
        CacheEntry *e = *p;
        if (e->hash == h && e->relid == relid && e->keylen == keylen && memcmp(entry_key(e), key, keylen) == 0)
            return p;
        p = &e->hnext;
    }
    return p;
}

static void remove_entry(RowCache *c, CacheEntry **link)
{
    CacheEntry *e = *link;
    *link = e->hnext;
    lru_unlink(c, e);
    c->bytes -= e->size;
    c->count--;
    free(e);
}

static void grow(RowCache *c)
{
    size_t n = c->nbuckets * 2;
    CacheEntry **b = xcalloc(n, sizeof(CacheEntry *));
    for (size_t i = 0; i < c->nbuckets; i++) {
        CacheEntry *e = c->buckets[i];
        while (e) {
            CacheEntry *next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

bool rowcache_contains(RowCache *c, uint32_t relid, const char *key)
{
    size_t keylen = strlen(key);
    return *find(c, relid, key, keylen, rowcache_key_hash(relid, key, keylen)) != NULL;
}

bool rowcache_get(RowCache *c, const RelationVersion *rv, const char *key, RowImage *image)
{
    size_t keylen = strlen(key);
    uint64_t h = rowcache_key_hash(rv->relid, key, keylen);
    CacheEntry *e = *find(c, rv->relid, key, keylen, h);
    if (!e || e->absent) {
        c->misses++;
        return false;
    }
    c->hits++;
    lru_unlink(c, e);
    lru_push_front(c, e);
    image->relver = rv;
    for (uint16_t i = 0; i < rv->ncols; i++) {
        image->values[i].data = NULL;
        image->values[i].len = 0;
        image->unknown[i] = 1;
    }
    const Slot *slots = entry_slots(e);
    const char *v = entry_vals(e);
    for (uint16_t j = 0; j < e->nslots; v += slots[j].state == 0 ? slots[j].len : 0, j++) {
        /* the version cached is usually the one asked for: try the same position first */
        uint16_t i = j < rv->ncols && rv->cols[j].col_id == slots[j].col_id ? j : rv->ncols;
        if (i == rv->ncols)
            for (i = 0; i < rv->ncols && rv->cols[i].col_id != slots[j].col_id; i++) {
            }
        if (i == rv->ncols) continue;
        image->unknown[i] = slots[j].state == 2;
        if (slots[j].state == 0) {
            image->values[i].data = v;
            image->values[i].len = slots[j].len;
        }
    }
    return true;
}

/* File e (replacing the object's entry, if any), evicting from the LRU tail to stay within budget. */
static void link_entry(RowCache *c, CacheEntry *e)
{
    CacheEntry **link = find(c, e->relid, entry_key(e), e->keylen, e->hash);
    if (*link) remove_entry(c, link);
    while (c->tail && c->bytes + e->size > c->max_bytes) {
        CacheEntry *t = c->tail;
        remove_entry(c, find(c, t->relid, entry_key(t), t->keylen, t->hash));
    }
    if (c->count + 1 > c->nbuckets) grow(c);
    link = find(c, e->relid, entry_key(e), e->keylen, e->hash);
    e->hnext = NULL;
    *link = e;
    lru_push_front(c, e);
    c->bytes += e->size;
    c->count++;
}

void rowcache_put(RowCache *c, const RelationVersion *rv, const char *key, const RowImage *image)
{
    size_t keylen = strlen(key);
    uint64_t h = rowcache_key_hash(rv->relid, key, keylen);

    size_t vbytes = 0;
    for (uint16_t i = 0; i < rv->ncols; i++)
        if (image->values[i].data && !image->unknown[i]) vbytes += image->values[i].len;
    size_t size = sizeof(CacheEntry) + rv->ncols * sizeof(Slot) + keylen + 1 + vbytes;
    if (size > c->max_bytes / 4) {
        /* one huge row must not flush the whole cache; drop the stale image */
        CacheEntry **link = find(c, rv->relid, key, keylen, h);
        if (*link) remove_entry(c, link);
        return;
    }
    /* Copy first: the image's values may point into the entry being replaced
     * (unchanged TOAST values filled from the cache). */
    CacheEntry *e = xmalloc(size);
    memset(e, 0, sizeof(*e));
    e->hash = h;
    e->relid = rv->relid;
    e->size = size;
    e->keylen = (uint32_t)keylen;
    e->nslots = rv->ncols;
    memcpy(entry_key(e), key, keylen + 1);
    char *vals = entry_vals(e);
    size_t off = 0;
    for (uint16_t i = 0; i < rv->ncols; i++) {
        Slot *s = &entry_slots(e)[i];
        s->col_id = rv->cols[i].col_id;
        s->len = 0;
        if (image->unknown[i]) {
            s->state = 2;
        } else if (!image->values[i].data) {
            s->state = 1;
        } else {
            s->state = 0;
            s->len = (uint32_t)image->values[i].len;
            memcpy(vals + off, image->values[i].data, image->values[i].len);
            off += image->values[i].len;
        }
    }
    link_entry(c, e);
}

void rowcache_put_absent(RowCache *c, uint32_t relid, const char *key)
{
    size_t keylen = strlen(key);
    size_t size = sizeof(CacheEntry) + keylen + 1;
    CacheEntry *e = xmalloc(size);
    memset(e, 0, sizeof(*e));
    e->hash = rowcache_key_hash(relid, key, keylen);
    e->relid = relid;
    e->size = size;
    e->keylen = (uint32_t)keylen;
    e->absent = true;
    memcpy(entry_key(e), key, keylen + 1);
    link_entry(c, e);
}

bool rowcache_is_absent(RowCache *c, uint32_t relid, const char *key)
{
    size_t keylen = strlen(key);
    CacheEntry *e = *find(c, relid, key, keylen, rowcache_key_hash(relid, key, keylen));
    return e && e->absent;
}

void rowcache_remove(RowCache *c, uint32_t relid, const char *key)
{
    size_t keylen = strlen(key);
    CacheEntry **link = find(c, relid, key, keylen, rowcache_key_hash(relid, key, keylen));
    if (*link) remove_entry(c, link);
}

void rowcache_remove_relation(RowCache *c, uint32_t relid)
{
    for (size_t i = 0; i < c->nbuckets; i++) {
        CacheEntry **p = &c->buckets[i];
        while (*p) {
            if ((*p)->relid == relid)
                remove_entry(c, p);
            else
                p = &(*p)->hnext;
        }
    }
}

size_t rowcache_bytes(const RowCache *c) { return c->bytes; }
size_t rowcache_count(const RowCache *c) { return c->count; }
uint64_t rowcache_hits(const RowCache *c) { return c->hits; }
uint64_t rowcache_misses(const RowCache *c) { return c->misses; }
