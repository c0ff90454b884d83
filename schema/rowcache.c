/*
 * rowcache.c — chained hash table + doubly linked LRU list. Each entry is one
 * allocation: header, key bytes, per-column slots, value bytes; so eviction
 * is one free() and the byte budget is exact.
 */
#include "schema/rowcache.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int16_t col_id;
    uint8_t state; /* 0 value, 1 NULL, 2 unknown */
    uint32_t len;
    size_t offset; /* into the entry's value bytes */
} Slot;

typedef struct CacheEntry {
    struct CacheEntry *hnext;
    struct CacheEntry *prev, *next; /* LRU: head = most recent */
    uint64_t hash;
    uint32_t relid;
    size_t size;
    size_t keylen;
    uint16_t nslots;
    Slot *slots;
    char *key;
    char *vals;
} CacheEntry;

struct RowCache {
    size_t max_bytes;
    size_t bytes;
    size_t count;
    CacheEntry **buckets;
    size_t nbuckets;
    CacheEntry *head, *tail;
    uint64_t hits, misses;
};

static uint64_t hash_key(uint32_t relid, const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL ^ relid;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
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
    if (e->prev) e->prev->next = e->next; else c->head = e->next;
    if (e->next) e->next->prev = e->prev; else c->tail = e->prev;
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
        if (e->hash == h && e->relid == relid && e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
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

bool rowcache_get(RowCache *c, const RelationVersion *rv, const char *key, RowImage *image)
{
    size_t keylen = strlen(key);
    uint64_t h = hash_key(rv->relid, key, keylen);
    CacheEntry *e = *find(c, rv->relid, key, keylen, h);
    if (!e) {
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
        for (uint16_t j = 0; j < e->nslots; j++) {
            if (e->slots[j].col_id != rv->cols[i].col_id) continue;
            image->unknown[i] = e->slots[j].state == 2;
            if (e->slots[j].state == 0) {
                image->values[i].data = e->vals + e->slots[j].offset;
                image->values[i].len = e->slots[j].len;
            }
            break;
        }
    }
    return true;
}

void rowcache_put(RowCache *c, const RelationVersion *rv, const char *key, const RowImage *image)
{
    size_t keylen = strlen(key);
    uint64_t h = hash_key(rv->relid, key, keylen);

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
    e->keylen = keylen;
    e->nslots = rv->ncols;
    e->slots = (Slot *)(e + 1);
    e->key = (char *)(e->slots + rv->ncols);
    memcpy(e->key, key, keylen + 1);
    e->vals = e->key + keylen + 1;
    size_t off = 0;
    for (uint16_t i = 0; i < rv->ncols; i++) {
        Slot *s = &e->slots[i];
        s->col_id = rv->cols[i].col_id;
        if (image->unknown[i]) {
            s->state = 2;
        } else if (!image->values[i].data) {
            s->state = 1;
        } else {
            s->state = 0;
            s->len = (uint32_t)image->values[i].len;
            s->offset = off;
            memcpy(e->vals + off, image->values[i].data, image->values[i].len);
            off += image->values[i].len;
        }
    }
    CacheEntry **link = find(c, rv->relid, key, keylen, h);
    if (*link) remove_entry(c, link);
    while (c->tail && c->bytes + size > c->max_bytes) {
        CacheEntry *t = c->tail;
        remove_entry(c, find(c, t->relid, t->key, t->keylen, t->hash));
    }
    if (c->count + 1 > c->nbuckets) grow(c);
    link = find(c, rv->relid, key, keylen, h);
    e->hnext = NULL;
    *link = e;
    lru_push_front(c, e);
    c->bytes += size;
    c->count++;
}

void rowcache_remove(RowCache *c, uint32_t relid, const char *key)
{
    size_t keylen = strlen(key);
    CacheEntry **link = find(c, relid, key, keylen, hash_key(relid, key, keylen));
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
