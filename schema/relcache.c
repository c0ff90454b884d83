/*
 * relcache.c — an open-addressing table of per-relid entries, each holding
 * the current version and the highest col_id used. Old versions stay
 * allocated (deltas already emitted may point at them until the sinks are
 * done), which is bounded by the number of schema changes, not by data.
 */
#include "schema/relcache.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int n;
    char **names;
    int16_t *attnums;
    bool has_gen; /* the catalog said which columns are generated (possibly none) */
    uint16_t ngen;
    GenColumn *gen;
} AttnumHints;

typedef struct Entry {
    uint32_t relid;
    RelationVersion *current;
    int16_t max_col_id;
    bool excluded;
    RelKindKnown kind; /* asked of the catalog once: a relation's kind never changes */
    AttnumHints hints; /* from the catalog; consumed by the next new version */
} Entry;

typedef struct OldVersion {
    RelationVersion *rv;
    struct OldVersion *next;
} OldVersion;

typedef struct TypeName {
    uint32_t oid;
    char *name;
    struct TypeName *next;
} TypeName;

struct RelCache {
    const TrackingRules *rules;
    Entry *entries;
    size_t cap;
    size_t count;
    OldVersion *old;
    TypeName *types;
};

RelCache *relcache_create(const TrackingRules *rules)
{
    RelCache *c = xcalloc(1, sizeof(*c));
    c->rules = rules;
    c->cap = 64;
    c->entries = xcalloc(c->cap, sizeof(Entry));
    return c;
}

static void free_gen(uint16_t n, GenColumn *g)
{
    for (uint16_t i = 0; i < n; i++) {
        free(g[i].name);
        free(g[i].type_name);
        free(g[i].expr);
    }
    free(g);
}

static GenColumn *copy_gen(uint16_t n, const GenColumn *src)
{
    GenColumn *g = xcalloc((size_t)n + 1, sizeof(GenColumn));
    for (uint16_t i = 0; i < n; i++) {
        g[i].name = xstrdup(src[i].name);
        g[i].type_name = xstrdup(src[i].type_name);
        g[i].expr = xstrdup(src[i].expr);
        g[i].position = src[i].position;
    }
    return g;
}

static void free_version(RelationVersion *rv)
{
    if (!rv) return;
    relation_version_term(rv);
    free(rv);
}

static void free_hints(AttnumHints *h)
{
    for (int i = 0; i < h->n; i++) free(h->names[i]);
    free(h->names);
    free(h->attnums);
    free_gen(h->ngen, h->gen);
    memset(h, 0, sizeof(*h));
}

void relcache_destroy(RelCache *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->cap; i++) {
        free_version(c->entries[i].current);
        free_hints(&c->entries[i].hints);
    }
    while (c->old) {
        OldVersion *o = c->old;
        c->old = o->next;
        free_version(o->rv);
        free(o);
    }
    while (c->types) {
        TypeName *t = c->types;
        c->types = t->next;
        free(t->name);
        free(t);
    }
    free(c->entries);
    free(c);
}

static bool used(const Entry *e) { return e->current || e->hints.n > 0 || e->hints.has_gen || e->max_col_id > 0; }

static Entry *find_slot(Entry *entries, size_t cap, uint32_t relid)
{
    size_t i = (relid * 2654435761u) & (cap - 1);
    while (used(&entries[i]) && entries[i].relid != relid) i = (i + 1) & (cap - 1);
    return &entries[i];
}

static Entry *get_entry(RelCache *c, uint32_t relid, bool create)
{
    Entry *e = find_slot(c->entries, c->cap, relid);
    if (used(e) || !create) return used(e) ? e : NULL;
    if ((c->count + 1) * 2 > c->cap) {
        size_t ncap = c->cap * 2;
        Entry *ne = xcalloc(ncap, sizeof(Entry));
        for (size_t i = 0; i < c->cap; i++)
            if (used(&c->entries[i])) *find_slot(ne, ncap, c->entries[i].relid) = c->entries[i];
        free(c->entries);
        c->entries = ne;
        c->cap = ncap;
        e = find_slot(c->entries, c->cap, relid);
    }
    c->count++;
    e->relid = relid;
    return e;
}

static const char *type_name_for(const RelCache *c, uint32_t oid)
{
    for (const TypeName *t = c->types; t; t = t->next)
        if (t->oid == oid) return t->name;
    return NULL;
}

void relcache_set_type_name(RelCache *c, uint32_t type_oid, const char *nspname, const char *typname)
{
    StrBuf b;
    strbuf_init(&b);
    if (nspname && *nspname && strcmp(nspname, "pg_catalog") != 0) strbuf_appendf(&b, "%s.", nspname);
    strbuf_append_str(&b, typname);
    for (TypeName *t = c->types; t; t = t->next) {
        if (t->oid == type_oid) {
            free(t->name);
            t->name = b.data;
            return;
        }
    }
    TypeName *t = xcalloc(1, sizeof(*t));
    t->oid = type_oid;
    t->name = b.data;
    t->next = c->types;
    c->types = t;
}

static bool same_str(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static bool same_gen(const RelationVersion *cur, const AttnumHints *h)
{
    if (!h->has_gen) return true; /* nothing new known */
    if (cur->ngen != h->ngen) return false;
    for (uint16_t i = 0; i < h->ngen; i++)
        if (strcmp(cur->gen[i].name, h->gen[i].name) != 0 || strcmp(cur->gen[i].type_name, h->gen[i].type_name) != 0 ||
            strcmp(cur->gen[i].expr, h->gen[i].expr) != 0 || cur->gen[i].position != h->gen[i].position)
            return false;
    return true;
}

static bool same_as_current(const RelationVersion *cur, const char *nsp, const char *rel, char replident,
                            uint16_t ncols, const RelColumnIn *cols)
{
    if (!same_str(cur->nspname, nsp) || !same_str(cur->relname, rel) || cur->replident != replident ||
        cur->ncols != ncols)
        return false;
    for (uint16_t i = 0; i < ncols; i++) {
        const RelColumn *a = &cur->cols[i];
        if (!same_str(a->name, cols[i].name) || a->type_oid != cols[i].type_oid || a->typmod != cols[i].typmod ||
            a->is_key != cols[i].is_key)
            return false;
    }
    return true;
}

/* rv becomes e's version; the one before it is kept (on c->old) while
 * pointers handed out earlier may still read it. */
static void make_current(RelCache *c, Entry *e, RelationVersion *rv)
{
    if (e->current) {
        OldVersion *o = xcalloc(1, sizeof(*o));
        o->rv = e->current;
        o->next = c->old;
        c->old = o;
    }
    e->current = rv;
}

const RelationVersion *relcache_apply(RelCache *c, uint32_t relid, const char *nspname, const char *relname,
                                      char replident, uint16_t ncols, const RelColumnIn *cols, Lsn lsn,
                                      int64_t revision_id, bool *is_new)
{
    const char *nsp = (nspname && *nspname) ? nspname : "pg_catalog";
    Entry *e = get_entry(c, relid, true);
    if (e->current && same_as_current(e->current, nsp, relname, replident, ncols, cols) &&
        same_gen(e->current, &e->hints)) {
        *is_new = false;
        return e->current;
    }
    RelationVersion *rv = xcalloc(1, sizeof(*rv));
    rv->relid = relid;
    rv->version = e->current ? e->current->version + 1 : 1;
    rv->nspname = xstrdup(nsp);
    rv->relname = xstrdup(relname);
    rv->replident = replident;
    rv->valid_from = lsn;
    rv->revision_id = revision_id;
    rv->ncols = ncols;
    rv->cols = xcalloc(ncols ? ncols : 1, sizeof(RelColumn));
    /* Generated columns: as the catalog last said, else as before. */
    const GenColumn *gsrc = e->hints.has_gen ? e->hints.gen : e->current ? e->current->gen : NULL;
    rv->ngen = e->hints.has_gen ? e->hints.ngen : e->current ? e->current->ngen : 0;
    rv->gen = copy_gen(rv->ngen, gsrc);
    for (uint16_t i = 0; i < ncols; i++) {
        RelColumn *col = &rv->cols[i];
        col->name = xstrdup(cols[i].name);
        col->type_oid = cols[i].type_oid;
        col->typmod = cols[i].typmod;
        col->is_key = cols[i].is_key;
        const char *tn = type_name_for(c, cols[i].type_oid);
        col->type_name = tn ? xstrdup(tn) : NULL;
        col->track = c->rules ? tracking_column_mode(c->rules, nsp, relname, col->name) : TRACK_FULL;
        /* Identity, most exact first: the catalog's attnum reported by the
         * DDL event trigger in WAL order; the previous version's column of
         * that name; a fresh id. */
        col->col_id = 0;
        for (int h = 0; h < e->hints.n; h++)
            if (strcmp(e->hints.names[h], col->name) == 0) col->col_id = e->hints.attnums[h];
        if (col->col_id == 0 && e->current)
            for (uint16_t j = 0; j < e->current->ncols; j++)
                if (strcmp(e->current->cols[j].name, col->name) == 0) col->col_id = e->current->cols[j].col_id;
        if (col->col_id == 0) {
            col->col_id = (int16_t)(e->max_col_id + 1);
        }
        if (col->col_id > e->max_col_id) e->max_col_id = col->col_id;
    }
    /* Two columns must never share an id (a hint can be stale): fall back. */
    for (uint16_t i = 0; i < ncols; i++)
        for (uint16_t j = 0; j < i; j++)
            if (rv->cols[i].col_id == rv->cols[j].col_id) {
                rv->cols[i].col_id = ++e->max_col_id;
            }
    make_current(c, e, rv);
    e->excluded = c->rules && tracking_table_excluded(c->rules, nsp, relname);
    *is_new = true;
    return rv;
}

void relcache_set_generated(RelCache *c, uint32_t relid, uint16_t n, const GenColumn *gen)
{
    Entry *e = get_entry(c, relid, true);
    free_gen(e->hints.ngen, e->hints.gen);
    e->hints.has_gen = true;
    e->hints.ngen = n;
    e->hints.gen = copy_gen(n, gen);
}

void relcache_set_attnums(RelCache *c, uint32_t relid, int n, const char *const *names, const int16_t *attnums)
{
    Entry *e = get_entry(c, relid, true);
    for (int i = 0; i < e->hints.n; i++) free(e->hints.names[i]);
    free(e->hints.names);
    free(e->hints.attnums);
    e->hints.n = n;
    e->hints.names = xcalloc((size_t)n + 1, sizeof(char *));
    e->hints.attnums = xcalloc((size_t)n + 1, sizeof(int16_t));
    for (int i = 0; i < n; i++) {
        e->hints.names[i] = xstrdup(names[i]);
        e->hints.attnums[i] = attnums[i];
    }
}

const RelationVersion *relcache_lookup(const RelCache *c, uint32_t relid)
{
    Entry *e = find_slot(c->entries, c->cap, relid);
    return e->current;
}

bool relcache_is_excluded(const RelCache *c, const RelationVersion *rv)
{
    Entry *e = find_slot(c->entries, c->cap, rv->relid);
    return e->current ? e->excluded : false;
}

void relcache_set_kind(RelCache *c, uint32_t relid, RelKindKnown kind) { get_entry(c, relid, true)->kind = kind; }

RelKindKnown relcache_kind(const RelCache *c, uint32_t relid) { return find_slot(c->entries, c->cap, relid)->kind; }

void relcache_restore(RelCache *c, const RelationVersion *src, int16_t max_col_id)
{
    Entry *e = get_entry(c, src->relid, true);
    RelationVersion *rv = xcalloc(1, sizeof(*rv));
    *rv = *src;
    rv->nspname = xstrdup(src->nspname);
    rv->relname = xstrdup(src->relname);
    rv->cols = xcalloc(src->ncols ? src->ncols : 1, sizeof(RelColumn));
    for (uint16_t i = 0; i < src->ncols; i++) {
        rv->cols[i] = src->cols[i];
        rv->cols[i].name = xstrdup(src->cols[i].name);
        rv->cols[i].type_name = src->cols[i].type_name ? xstrdup(src->cols[i].type_name) : NULL;
        /* Tracking rules may have changed since: the current config decides. */
        rv->cols[i].track =
            c->rules ? tracking_column_mode(c->rules, rv->nspname, rv->relname, rv->cols[i].name) : TRACK_FULL;
    }
    rv->gen = copy_gen(src->ngen, src->gen);
    make_current(c, e, rv);
    if (max_col_id > e->max_col_id) e->max_col_id = max_col_id;
    e->excluded = c->rules && tracking_table_excluded(c->rules, rv->nspname, rv->relname);
}
