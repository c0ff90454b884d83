/*
 * fold.c — the CLI's snapshot of a table at a revision: the keyframe's rows
 * and the deltas since, folded here by the rule of snapshot_rows()
 * (replay.sql) without its executor cost. The deltas arrive first, unsorted,
 * into a hash of the keys they touch; the keyframe then streams through it.
 * No sort: a server sort of keyframe rows and deltas by key cost more than
 * everything else together. The hash is bounded by the caller's limit; past
 * it the server sorts after all and one key's run is held at a time. Rows
 * never move between keys here: when an UPDATE changed a key (delta_old_key,
 * asked in the same scan), fold_open says so and snapshot_rows() runs.
 * A column that prints by the session's TimeZone (a timestamptz, or a type
 * holding one: rq_zoned_types, zone.c) is printed again through its type
 * by the history server, in batches: the values the deltas left in the hash
 * (rezone_hash) before the keyframe is read, the keyframe's between the
 * FETCHes of its rows (emit_keyframe_zoned), so its text is what
 * snapshot_rows() would give, without the SQL fold's cost.
 */
#include <stdlib.h>
#include <string.h>

#include "pgio/pgio.h"
#include "replay/internal.h"
#include "schema/copyread.h"
#include "schema/kfchunk.h"
#include "schema/rowfold.h"

/* A change's position in commit order; revision ids start at 1, so rev 0 is "none". */
typedef struct {
    int64_t rev;
    int32_t seq;
} Pos;

static int pos_cmp(Pos a, Pos b)
{
    if (a.rev != b.rev) return a.rev < b.rev ? -1 : 1;
    return (a.seq > b.seq) - (a.seq < b.seq);
}

/* A value seen through: len -1 is SQL NULL (as a keyframe chunk's decoder gives them). */
typedef KfVal Val;

/* The newest value a column was given (len bytes, not terminated), and where
 * (rev, seq); rev 0: never set. Not a Pos: its padding made a slot 32 bytes,
 * 24 this way, and a table's interval touches up to millions of keys. */
typedef struct {
    int64_t rev;
    char *val;
    int32_t seq;
    int32_t len;
} Slot;

/* One key touched by the deltas, in one allocation: the fields, then
 * cols[maxcol] (col_id c at cols[c - 1]), then the key's klen bytes. Packed
 * (no Pos, no pointers to the key or the columns): 32 bytes before the
 * columns where it was 64, so that a 1,000,000-row table's interval, every
 * key touched, fits the default --memory of 256 MiB. */
typedef struct {
    int64_t last_rev;  /* its newest delta */
    int64_t reset_rev; /* its newest insert, snapshot row or delete: nothing before it counts */
    int32_t last_seq;
    int32_t reset_seq;
    uint32_t klen;
    char last_op;
    bool seen; /* matched a keyframe row (already emitted) */
    Slot cols[];
} Entry;

#define ENTRY_LAST(e) ((Pos){(e)->last_rev, (e)->last_seq})
#define ENTRY_RESET(e) ((Pos){(e)->reset_rev, (e)->reset_seq})

/* A hash slot: the hash beside the pointer, so a probe rarely touches an entry it does not want. */
typedef struct {
    uint64_t hash;
    Entry *e;
} Bucket;

/* Where entries, keys and values live: freed all at once, so a million small allocations cost nothing. */
typedef struct Chunk {
    struct Chunk *next;
    size_t used, cap;
    int64_t data[];
} Chunk;

struct Fold {
    ReplayCtx *ctx;
    const RelVersion *rv;
    int64_t rev;
    int maxcol;
    bool has_kf;
    char kf_id[24];
    int64_t kf_rev;
    Pos trunc;      /* the last truncate in (kf_rev, rev]: the keyframe and everything before it are void */
    Pos key_change; /* the last UPDATE there that changed a key */
    Bucket *tab;    /* open addressing, cap a power of two */
    size_t cap, n;
    Chunk *arena;
    size_t bytes; /* the arena and the table (replaced values stay until the end) */
    size_t max_bytes;
    bool overflow;    /* the hash was given up: fold_emit sorts on the server */
    char **zone_type; /* [col_id]: the type to print a zoned column through (borrowed), NULL: as stored */
    int nzoned;       /* how many columns have one */
};

/* One binary array field, element by element. */
typedef struct {
    int32_t lbound;
    const unsigned char *elems; /* next element: int32 length, then the bytes */
    const unsigned char *end;
} BinArray;

/* false on a malformed array; a NULL field (len < 0) is an empty array */
static bool array_open(const unsigned char *p, int32_t len, BinArray *a)
{
    memset(a, 0, sizeof(*a));
    if (len < 0) return true;
    if (len < 12) return false;
    int32_t ndim = (int32_t)wr_read_u32(p);
    if (ndim == 0) return true;
    if (ndim != 1 || len < 20) return false;
    a->lbound = (int32_t)wr_read_u32(p + 16);
    a->elems = p + 20;
    a->end = p + len;
    return true;
}

/* The next element into v (len -1 for NULL); false at the end or on a malformed array. */
static bool array_next(BinArray *a, Val *v)
{
    if (!a->elems || a->elems + 4 > a->end) return false;
    v->len = (int32_t)wr_read_u32(a->elems);
    a->elems += 4;
    v->p = (const char *)a->elems;
    if (v->len > 0) {
        if (a->elems + v->len > a->end) return false;
        a->elems += v->len;
    }
    return true;
}

static bool int2_elem(const Val *v, int *out)
{
    if (v->len != 2) return false;
    *out = (int16_t)(((unsigned char)v->p[0] << 8) | (unsigned char)v->p[1]);
    return true;
}

/* ---------------------------------------------------------------- output lines */

/* PostgreSQL's CSV quoting: NULL empty and unquoted; "" and values with , " CR LF quoted. */
static void append_csv(StrBuf *b, const char *s, size_t len)
{
    bool quote = len == 0;
    for (size_t i = 0; i < len && !quote; i++) quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote) {
        strbuf_append(b, s, len);
        return;
    }
    strbuf_append_char(b, '"');
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '"') continue;
        strbuf_append(b, s + start, i + 1 - start);
        strbuf_append_char(b, '"');
        start = i + 1;
    }
    strbuf_append(b, s + start, len - start);
    strbuf_append_char(b, '"');
}

/* The line of a row whose vals[col_id] (1..maxcol) hold its values, in rv's column order. */
static void make_line(const RelVersion *rv, const Val *vals, int maxcol, bool csv, StrBuf *line)
{
    strbuf_reset(line);
    for (int i = 0; i < rv->ncols; i++) {
        if (i) strbuf_append_char(line, csv ? ',' : '\t');
        int c = rv->col_ids[i];
        const Val *v = c >= 1 && c <= maxcol ? &vals[c] : NULL;
        if (!v || v->len < 0) {
            if (!csv) strbuf_append(line, "\\N", 2);
        } else if (csv) {
            append_csv(line, v->p, (size_t)v->len);
        } else {
            strbuf_append_copy_text(line, v->p, (size_t)v->len);
        }
    }
    strbuf_append_char(line, '\n');
}

/* ---------------------------------------------------------------- the hash of touched keys */

static uint64_t key_hash(const unsigned char *k, size_t n)
{
    uint64_t h = UINT64_C(1469598103934665603); /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= k[i];
        h *= UINT64_C(1099511628211);
    }
    /* FNV's low bits barely differ between keys like ["123"] and ["124"]: mix before masking */
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h;
}

static const char *entry_key(const Fold *fo, const Entry *e) { return (const char *)&e->cols[fo->maxcol]; }

static Bucket *slot_of(Fold *fo, const unsigned char *key, size_t klen, uint64_t h)
{
    size_t mask = fo->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        Bucket *b = &fo->tab[i];
        if (!b->e || (b->hash == h && b->e->klen == klen && memcmp(entry_key(fo, b->e), key, klen) == 0)) return b;
    }
}

/* n bytes aligned for an Entry (align 8) or for a value's bytes (align 1: never read in place as more than chars) */
static void *arena_alloc(Fold *fo, size_t n, size_t align)
{
    size_t at = fo->arena ? (fo->arena->used + align - 1) / align * align : 0;
    if (!fo->arena || at + n > fo->arena->cap) {
        size_t cap = n > ((size_t)1 << 20) ? n : (size_t)1 << 20;
        Chunk *c = xmalloc(sizeof(Chunk) + cap);
        c->next = fo->arena;
        c->used = 0;
        c->cap = cap;
        fo->arena = c;
        fo->bytes += sizeof(Chunk) + cap;
        at = 0;
    }
    void *p = (char *)fo->arena->data + at;
    fo->arena->used = at + n;
    return p;
}

static void hash_free(Fold *fo)
{
    while (fo->arena) {
        Chunk *next = fo->arena->next;
        free(fo->arena);
        fo->arena = next;
    }
    free(fo->tab);
    fo->tab = NULL;
    fo->cap = fo->n = 0;
    fo->bytes = 0;
}

/* The entry of key (h: its key_hash), made when new. */
static Entry *hash_get(Fold *fo, const unsigned char *key, size_t klen, uint64_t h)
{
    if (fo->n + 1 > fo->cap / 10 * 7) {
        size_t ncap = fo->cap ? fo->cap * 2 : 1024;
        Bucket *old = fo->tab;
        size_t ocap = fo->cap;
        fo->tab = xcalloc(ncap, sizeof(Bucket));
        fo->cap = ncap;
        size_t mask = ncap - 1;
        for (size_t i = 0; i < ocap; i++) {
            if (!old[i].e) continue;
            size_t j = (size_t)old[i].hash & mask;
            while (fo->tab[j].e) j = (j + 1) & mask;
            fo->tab[j] = old[i];
        }
        free(old);
        fo->bytes += (ncap - ocap) * sizeof(Bucket);
    }
    Bucket *s = slot_of(fo, key, klen, h);
    if (!s->e) {
        size_t head = sizeof(Entry) + (size_t)fo->maxcol * sizeof(Slot);
        Entry *e = arena_alloc(fo, head + klen, 8);
        memset(e, 0, head);
        memcpy((char *)e + head, key, klen);
        e->klen = (uint32_t)klen;
        s->hash = h;
        s->e = e;
        fo->n++;
    }
    return s->e;
}

static Entry *hash_find(Fold *fo, const unsigned char *key, size_t klen, uint64_t h)
{
    if (!fo->cap) return NULL;
    return slot_of(fo, key, klen, h)->e;
}

/*
 * The hashes of a batch's keys (field kf of each tuple; NULL keys hash as
 * empty) into h, their hash slots and then the entries there asked of
 * memory before the first is looked up. A table's touched keys outgrow the
 * CPU's caches at a few thousand rows, and a lookup that waits for memory
 * twice (slot, entry) was most of the fold's CPU (perf at 300,000 rows:
 * keyframe_row_at 26% and fold_open 19% of the CLI, nearly all on the
 * slot's load); asked together, the waits overlap. (Asking for each entry
 * a few tuples ahead of its fold instead measured no better.) Only hints: a
 * lookup stays right when the table grows or a slot is not the key's.
 */
static void prefetch_slots(const Fold *fo, const uint64_t *h, int n)
{
    for (int k = 0; k < n && fo->cap; k++) __builtin_prefetch(&fo->tab[(size_t)h[k] & (fo->cap - 1)]);
    for (int k = 0; k < n && fo->cap; k++) {
        const Entry *e = fo->tab[(size_t)h[k] & (fo->cap - 1)].e;
        if (!e) continue;
        __builtin_prefetch(e);
        __builtin_prefetch(entry_key(fo, e));
    }
}

static void prefetch_keys(const Fold *fo, const CopyTuple *t, int n, int kf, uint64_t *h)
{
    for (int k = 0; k < n; k++) h[k] = key_hash(t[k].f[kf], t[k].fl[kf] > 0 ? (size_t)t[k].fl[kf] : 0);
    prefetch_slots(fo, h, n);
}

/* ---------------------------------------------------------------- reading the deltas */

/* Column col of e set to v at pos, unless a later change set it already. */
static void slot_set(Fold *fo, Entry *e, int col, Pos pos, const Val *v)
{
    if (col < 1 || col > fo->maxcol) return; /* a column the version at rev does not have */
    Slot *s = &e->cols[col - 1];
    if (pos_cmp(pos, (Pos){s->rev, s->seq}) <= 0) return;
    s->rev = pos.rev;
    s->seq = pos.seq;
    /* a newer value no longer than the one it replaces takes its place: a
     * column updated again and again keeps one allocation */
    if (v->len > 0 && !(s->val && s->len >= v->len)) s->val = arena_alloc(fo, (size_t)v->len, 1);
    if (v->len > 0) memcpy(s->val, v->p, (size_t)v->len);
    if (v->len <= 0) s->val = NULL;
    s->len = v->len;
}

/* Fold one delta into its key's entry: the array form (ids_p, vals_p), or,
 * when scalar_col > 0, the scalar form's one column and value. */
static void hash_apply(Fold *fo, const unsigned char *key, size_t klen, uint64_t h, Pos pos, char op,
                       const unsigned char *ids_p, int32_t ids_len, const unsigned char *vals_p, int32_t vals_len,
                       int scalar_col, const Val *scalar_val, bool *bad)
{
    Entry *e = hash_get(fo, key, klen, h);
    if (pos_cmp(pos, ENTRY_LAST(e)) > 0) {
        e->last_rev = pos.rev;
        e->last_seq = pos.seq;
        e->last_op = op;
    }
    if (op != 'U' && pos_cmp(pos, ENTRY_RESET(e)) > 0) {
        e->reset_rev = pos.rev;
        e->reset_seq = pos.seq;
    }
    if (op == 'D') return;
    if (scalar_col > 0) {
        slot_set(fo, e, scalar_col, pos, scalar_val);
        return;
    }
    BinArray ids, vals;
    if (!array_open(ids_p, ids_len, &ids) || !array_open(vals_p, vals_len, &vals)) {
        *bad = true;
        return;
    }
    Val id, v;
    while (array_next(&ids, &id)) {
        int col;
        if (!int2_elem(&id, &col)) {
            *bad = true;
            return;
        }
        if (!array_next(&vals, &v)) v.len = -1; /* new_values NULL: every value NULL */
        slot_set(fo, e, col, pos, &v);
    }
}

/* ---------------------------------------------------------------- printing zoned columns again */

/* The from of entry_row: where the entry's values start to count (its newest reset, or the truncate). */
static Pos entry_from(const Fold *fo, const Entry *e)
{
    return pos_cmp(ENTRY_RESET(e), fo->trunc) > 0 ? ENTRY_RESET(e) : fo->trunc;
}

/* Whether the entry's row is there at rev (entry_row's test): not deleted, not before the truncate. */
static bool entry_live(const Fold *fo, const Entry *e)
{
    return e->last_op != 'D' && pos_cmp(ENTRY_LAST(e), fo->trunc) > 0;
}

static int val_ptr_cmp(const void *a, const void *b)
{
    const Val *x = *(const Val *const *)a, *y = *(const Val *const *)b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->len > 0 ? memcmp(x->p, y->p, (size_t)x->len) : 0;
}

/* Values printed again per statement (and keyframe rows per FETCH): a text[] literal of a few hundred KiB. */
#define REZONE_BATCH 8192

/*
 * v[0..n) (n <= REZONE_BATCH, none NULL) replaced by the text the history
 * server prints for each through type in its session's TimeZone
 * (stored::type::text, as snapshot_select does); equal values are sent once.
 * The new v[i].p point into *res, which the caller clears when done with them.
 */
static WrStatus rezone_vals(Fold *fo, const char *type, Val *v, size_t n, PGresult **res, const char *what,
                            WrError *err)
{
    *res = NULL;
    if (n == 0) return WR_OK;
    Val **by = xcalloc(n, sizeof(Val *));
    size_t *first = xcalloc(n + 1, sizeof(size_t)); /* each distinct value's first place in by */
    for (size_t i = 0; i < n; i++) by[i] = &v[i];
    qsort(by, n, sizeof(Val *), val_ptr_cmp);
    StrBuf arr;
    strbuf_init(&arr);
    strbuf_append_char(&arr, '{');
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && val_ptr_cmp(&by[i], &by[i - 1]) == 0) continue;
        first[k++] = i;
        strbuf_append_str(&arr, k > 1 ? ",\"" : "\"");
        for (int32_t b = 0; b < by[i]->len; b++) {
            if (by[i]->p[b] == '"' || by[i]->p[b] == '\\') strbuf_append_char(&arr, '\\');
            strbuf_append_char(&arr, by[i]->p[b]);
        }
        strbuf_append_char(&arr, '"');
    }
    strbuf_append_char(&arr, '}');
    first[k] = n;
    /* An array of the type cast to text[], one binary value: the server's work is the casts alone
     * (unnest WITH ORDINALITY ... ORDER BY took 1.5-2x as long for 100,000 timestamptz). An array
     * type has no array type of its own (T[][] is T[]): its values come a row each, in order. */
    size_t tl = strlen(type);
    bool rows = tl > 2 && strcmp(type + tl - 2, "[]") == 0;
    char *q = rows ? xasprintf("SELECT (u.x::%s)::pg_catalog.text FROM pg_catalog.unnest($1::pg_catalog.text[]) "
                               "WITH ORDINALITY AS u(x, n) ORDER BY u.n",
                               type)
                   : xasprintf("SELECT ($1::%s[])::pg_catalog.text[]", type);
    const char *params[1] = {arr.data};
    bool ok = rows ? pgio_exec(fo->ctx->hist, q, 1, params, res) : pgio_exec_binary(fo->ctx->hist, q, 1, params, res);
    WrStatus st = WR_OK;
    size_t got = 0;
    if (!ok) {
        st = pgio_fail(fo->ctx->hist, *res, err, "%s: printing %s in this session's TimeZone", what, type);
    } else if (rows) {
        got = (size_t)PQntuples(*res);
        for (size_t d = 0; d < k && d < got; d++) {
            Val nv = {PQgetvalue(*res, (int)d, 0), PQgetisnull(*res, (int)d, 0) ? -1 : PQgetlength(*res, (int)d, 0)};
            for (size_t s = first[d]; s < first[d + 1]; s++) *by[s] = nv;
        }
    } else {
        BinArray a;
        Val nv;
        bool one = PQntuples(*res) == 1 &&
                   array_open((const unsigned char *)PQgetvalue(*res, 0, 0), PQgetlength(*res, 0, 0), &a);
        for (; one && array_next(&a, &nv); got++) {
            if (got >= k) continue; /* one too many: counted, refused below */
            for (size_t s = first[got]; s < first[got + 1]; s++) *by[s] = nv;
        }
    }
    if (st == WR_OK && got != k)
        st = wr_error_set(err, WR_PROTOCOL, "%s: %zu values printed again for %zu", what, got, k);
    free(q);
    strbuf_free(&arr);
    free(first);
    free(by);
    return st;
}

/*
 * The values of zoned columns the deltas left in the hash, each printed again
 * through its column's type in the history session's TimeZone. Only the
 * values a row will show (entry_row's rule), so a value superseded by a
 * retype is never cast (snapshot_rows() casts only what it returns).
 */
static WrStatus rezone_hash(Fold *fo, const char *what, WrError *err)
{
    Slot **slots = xcalloc(REZONE_BATCH, sizeof(Slot *));
    Val *v = xcalloc(REZONE_BATCH, sizeof(Val));
    WrStatus st = WR_OK;
    for (int c = 1; c <= fo->maxcol && st == WR_OK; c++) {
        if (!fo->zone_type[c]) continue;
        size_t i = 0, n;
        do {
            n = 0;
            for (; i < fo->cap && n < REZONE_BATCH; i++) {
                Entry *e = fo->tab[i].e;
                if (!e || !entry_live(fo, e)) continue;
                Slot *s = &e->cols[c - 1];
                if (s->rev == 0 || s->len < 0 || pos_cmp((Pos){s->rev, s->seq}, entry_from(fo, e)) < 0) continue;
                slots[n] = s;
                v[n++] = (Val){s->val ? s->val : "", s->len};
            }
            PGresult *res = NULL;
            st = rezone_vals(fo, fo->zone_type[c], v, n, &res, what, err);
            for (size_t k = 0; k < n && st == WR_OK; k++) {
                slots[k]->len = v[k].len;
                slots[k]->val = NULL;
                if (v[k].len > 0) {
                    slots[k]->val = arena_alloc(fo, (size_t)v[k].len, 1);
                    memcpy(slots[k]->val, v[k].p, (size_t)v[k].len);
                }
            }
            PQclear(res);
        } while (n > 0 && st == WR_OK);
    }
    free(v);
    free(slots);
    return st;
}

WrStatus fold_open(ReplayCtx *ctx, const RelVersion *rv, int64_t rev, size_t max_bytes, char *const *render, Fold **out,
                   bool *usable, WrError *err)
{
    *out = NULL;
    *usable = false;
    Fold *fo = xcalloc(1, sizeof(Fold));
    fo->ctx = ctx;
    fo->rv = rv;
    fo->rev = rev;
    fo->max_bytes = max_bytes;
    fo->overflow = max_bytes == 0;
    for (int i = 0; i < rv->ncols; i++)
        if (rv->col_ids[i] > fo->maxcol) fo->maxcol = rv->col_ids[i];
    fo->zone_type = xcalloc((size_t)fo->maxcol + 1, sizeof(char *));
    for (int i = 0; render && i < rv->ncols; i++)
        if (render[i] && rv->col_ids[i] >= 1) {
            fo->zone_type[rv->col_ids[i]] = render[i];
            fo->nzoned++;
        }
    StrBuf q;
    strbuf_init(&q);
    CopyReader r = {0};
    WrStatus st = WR_OK;
    char what[300];
    snprintf(what, sizeof(what), "snapshot of %s.%s", rv->nspname, rv->relname);

    PGresult *res = rq_execf(ctx->hist, err, "SELECT keyframe_id, revision_id FROM %s.keyframe_at(%u, %lld)",
                             ctx->schema_q, rv->relid, (long long)rev);
    if (!res) {
        st = err->status;
        goto done;
    }
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        fo->has_kf = true;
        snprintf(fo->kf_id, sizeof(fo->kf_id), "%s", PQgetvalue(res, 0, 0));
        fo->kf_rev = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
    /* key columns of any version, so that only an UPDATE touching one asks delta_old_key (the SQL's own test) */
    res =
        rq_execf(ctx->hist, err,
                 "SELECT coalesce(array_agg(DISTINCT k.id), '{}') FROM %s.key_columns(%u) kc, unnest(kc.key_ids) k(id)",
                 ctx->schema_q, rv->relid);
    if (!res) {
        st = err->status;
        goto done;
    }
    /* object_delta's own columns, not object_delta_arrays: the view's arrays for the
     * scalar form (one ARRAY[] per column per delta) were a third of the server's
     * work per delta; a scalar row is folded from col_id and new_value here. The
     * arrays are built only for an UPDATE of a key column, as the view builds them. */
    strbuf_appendf(
        &q,
        "COPY (SELECT od.key, od.revision_id, od.seq, od.op, od.col_ids, od.new_values, "
        "CASE WHEN od.op = 'U' AND (od.col_ids OPERATOR(pg_catalog.&&) '%2$s'::smallint[] OR od.col_id = ANY "
        "('%2$s'::smallint[])) "
        "THEN %1$s.delta_old_key(od.relid, od.relversion, od.key, "
        "CASE WHEN od.col_id IS NULL THEN od.col_ids ELSE ARRAY[od.col_id] END, "
        "CASE WHEN od.col_id IS NULL THEN od.old_values WHEN od.old_value IS NOT NULL THEN ARRAY[od.old_value] END, "
        "CASE WHEN od.col_id IS NULL THEN od.new_values WHEN od.new_value IS NOT NULL THEN ARRAY[od.new_value] END, "
        "od.attr_flags, od.old_unknown) <> od.key END, od.col_id, od.new_value "
        "FROM %1$s.object_delta od "
        "WHERE od.revision_id > %3$lld AND od.revision_id <= %4$lld AND od.relid%6$s = %5$u) "
        "TO STDOUT (FORMAT binary)",
        ctx->schema_q, PQgetvalue(res, 0, 0), (long long)fo->kf_rev, (long long)rev, rv->relid,
        /* After a keyframe only the BRIN may serve the range; before the first,
                    * the B-tree reads just this table where the range is the whole store. */
        fo->kf_rev > 0 ? "::bigint" : "");
    PQclear(res);
    if ((st = replay_copy_open(&r, ctx->hist, q.data, what, err)) != WR_OK) goto done;
    CopyTuple *batch = xmalloc(COPY_BATCH * sizeof(CopyTuple));
    uint64_t hs[COPY_BATCH];
    bool bad = false;
    int got = 0;
    while (!bad && (got = replay_copy_next(&r, 9, batch, COPY_BATCH, what, err)) > 0) {
        if (!fo->overflow) prefetch_keys(fo, batch, got, 0, hs);
        for (int k = 0; k < got; k++) {
            const unsigned char *const *f = batch[k].f;
            const int32_t *fl = batch[k].fl;
            if (fl[1] != 8 || fl[2] != 4 || fl[3] != 1 || (fl[7] >= 0 && fl[7] != 2)) {
                bad = true;
                break;
            }
            Pos pos = {(int64_t)(((uint64_t)wr_read_u32(f[1]) << 32) | wr_read_u32(f[1] + 4)),
                       (int32_t)wr_read_u32(f[2])};
            char op = (char)f[3][0];
            if (op == 'T') {
                if (pos_cmp(pos, fo->trunc) > 0) fo->trunc = pos;
                continue;
            }
            if (fl[0] < 0) continue; /* no key: nothing to place */
            if (fl[6] == 1 && f[6][0] && pos_cmp(pos, fo->key_change) > 0) fo->key_change = pos;
            if (fo->overflow || (op != 'I' && op != 'U' && op != 'D' && op != 'S')) continue;
            int scalar_col = 0;
            Val scalar_val = {(const char *)f[8], fl[8]};
            if (fl[7] == 2) {
                Val id = {(const char *)f[7], 2};
                if (!int2_elem(&id, &scalar_col) || scalar_col < 1) { /* col_id 0 would mean the array form */
                    bad = true;
                    break;
                }
            }
            hash_apply(fo, f[0], (size_t)fl[0], hs[k], pos, op, f[4], fl[4], f[5], fl[5], scalar_col, &scalar_val,
                       &bad);
            if (bad) break;
            if (fo->bytes > fo->max_bytes) {
                /* keep reading for truncates and key changes, hash no more */
                hash_free(fo);
                fo->overflow = true;
            }
        }
    }
    free(batch);
    if (bad)
        st = wr_error_set(err, WR_PROTOCOL, "%s: malformed delta in the COPY stream", what);
    else if (got < 0)
        st = err->status;
    st = replay_copy_close(&r, st, what, err);
    if (st != WR_OK) goto done;
    /* a key change before the last truncate moved a row the truncate then removed */
    *usable = pos_cmp(fo->key_change, fo->trunc) <= 0;
    /* the server-sorted fold (past max_bytes) prints what is stored: zoned columns then go through SQL */
    if (fo->nzoned > 0 && fo->overflow) *usable = false;
    if (*usable && fo->nzoned > 0 && (st = rezone_hash(fo, what, err)) != WR_OK) goto done;
    *out = fo;
    fo = NULL;
done:
    fold_destroy(fo);
    strbuf_free(&q);
    return st;
}

/* ---------------------------------------------------------------- emitting */

/* The entry's row as of rev on top of base (the keyframe row's vals[col_id], NULL: none); false: absent. */
static bool entry_row(const Fold *fo, const Entry *e, const Val *base, Val *vals)
{
    if (!entry_live(fo, e)) return false;
    Pos from = entry_from(fo, e);
    bool use_base = base && e->reset_rev == 0;
    for (int c = 1; c <= fo->maxcol; c++) {
        const Slot *s = &e->cols[c - 1];
        if (s->rev != 0 && pos_cmp((Pos){s->rev, s->seq}, from) >= 0)
            vals[c] = (Val){s->val ? s->val : "", s->len};
        else
            vals[c] = use_base ? base[c] : (Val){NULL, -1};
    }
    return true;
}

/* Where the server-sorted fold's rows go: lines in the columns of the version. */
typedef struct {
    Fold *fo;
    bool csv;
    StrBuf *line;
    Val *vals;
    FoldSink sink;
    void *sink_arg;
} SortedOut;

static WrStatus sorted_row(void *arg, const char *key, size_t key_len, const char *const *vals, const bool *known,
                           int maxcol, bool based, WrError *err)
{
    (void)key;
    (void)key_len;
    (void)known;
    (void)based;
    SortedOut *o = arg;
    for (int c = 1; c <= maxcol; c++) o->vals[c] = vals[c] ? (Val){vals[c], (int32_t)strlen(vals[c])} : (Val){NULL, -1};
    make_line(o->fo->rv, o->vals, maxcol, o->csv, o->line);
    return o->sink(o->sink_arg, o->line->data, o->line->len, err);
}

/*
 * The general path when the touched keys would not fit: keyframe rows and
 * deltas in one stream sorted by key, keyframe first, then commit order; each
 * key's run folded in turn (schema/rowfold.h, as the history sink's keyframes).
 */
static WrStatus emit_sorted(Fold *fo, bool csv, FoldSink sink, void *sink_arg, long long *rows, StrBuf *line, Val *vals,
                            const char *what, WrError *err)
{
    ReplayCtx *ctx = fo->ctx;
    bool truncated = fo->trunc.rev != 0;
    char from_rev[24], cut_rev[24], cut_seq[16];
    snprintf(from_rev, sizeof(from_rev), "%lld", (long long)(truncated ? fo->trunc.rev - 1 : fo->kf_rev));
    snprintf(cut_rev, sizeof(cut_rev), "%lld", (long long)fo->trunc.rev);
    snprintf(cut_seq, sizeof(cut_seq), "%d", (int)fo->trunc.seq);
    /* The server sorts the keyframe and the deltas by key: with the default
     * work_mem (4 MB) a 1M-row table's sort went to disk, 21 s where the hash
     * fold of the same interval took 8 s. In memory, as the keyframer's. */
    if (pgio_run(ctx->hist, "SET LOCAL work_mem = '256MB'", 0, NULL, NULL, err, what) != WR_OK) return err->status;
    StrBuf q;
    strbuf_init(&q);
    rowfold_query(&q, ctx->schema_q, fo->rv->relid, fo->has_kf && !truncated ? fo->kf_id : NULL, from_rev, fo->rev,
                  cut_rev, cut_seq, 0);
    PGresult *res;
    bool ok = pgio_exec(ctx->hist, q.data, 0, NULL, &res) && PQresultStatus(res) == PGRES_COPY_OUT;
    strbuf_free(&q);
    if (!ok) {
        pgio_fail(ctx->hist, res, err, "%s", what);
        PQclear(res);
        return err->status;
    }
    PQclear(res);
    SortedOut out = {fo, csv, line, vals, sink, sink_arg};
    RowFold *fold = rowfold_create(fo->maxcol, sorted_row, &out);
    WrStatus st = WR_OK;
    char *msg;
    int n;
    while ((n = PQgetCopyData(ctx->hist, &msg, 0)) > 0) {
        /* after an error, drain the stream so the connection stays usable */
        if (st == WR_OK) st = rowfold_feed(fold, msg, (size_t)n, err);
        PQfreemem(msg);
    }
    if (st == WR_OK) st = rowfold_finish(fold, err);
    *rows += rowfold_rows(fold);
    rowfold_destroy(fold);
    res = PQgetResult(ctx->hist);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && st == WR_OK) {
        st = pgio_fail(ctx->hist, res, err, "%s", what);
    }
    PQclear(res);
    while ((res = PQgetResult(ctx->hist)) != NULL) PQclear(res);
    if (st == WR_PROTOCOL) wr_error_prefix(err, "%s", what);
    return st;
}

/*
 * A keyframe row (key: its key, when the deltas touched any; base: its
 * values, filled by the caller) as of rev: *row is base or, when the deltas
 * touched its key, vals with theirs on top. 0: the row is gone (deleted or
 * replaced since), 1: *row is it, -1: a malformed row (a keyed read without
 * a key).
 */
static int keyframe_row_at(Fold *fo, const unsigned char *key, int32_t klen, uint64_t h, bool keyed, Val *base,
                           Val *vals, Val **row)
{
    if (keyed && klen < 0) return -1;
    Entry *e = keyed ? hash_find(fo, key, (size_t)klen, h) : NULL;
    *row = base;
    if (!e) return 1;
    e->seen = true;
    if (!entry_row(fo, e, base, vals)) return 0;
    *row = vals;
    return 1;
}

/* Where emit_keyframe's lines go. */
typedef struct {
    bool csv;
    FoldSink sink;
    void *sink_arg;
    long long *rows;
    StrBuf *line;
    Val *base, *vals;
} KfOut;

/*
 * One keyframe_chunk tuple t (keys when keyed, then rows: text[]s of as many
 * elements) as lines, COPY_BATCH rows at a time so that their keys are asked
 * of memory together (prefetch_slots). buf is the reader's buffer, which t
 * points into: the literals are unescaped there. 1, or -1 when malformed, or
 * 0 with *st set when the sink failed.
 */
static int emit_chunk(Fold *fo, char *buf, const CopyTuple *t, bool keyed, const KfOut *o, WrStatus *st, WrError *err)
{
    int nf = keyed ? 2 : 1;
    KfChunk ch;
    if (!kfchunk_open(&ch, keyed ? t->f[0] : NULL, t->fl[0], t->f[nf - 1], t->fl[nf - 1])) return -1;
    Val k[COPY_BATCH], r[COPY_BATCH];
    uint64_t hs[COPY_BATCH];
    int more = 1;
    while (more > 0) {
        int n = 0;
        while (n < COPY_BATCH && (more = kfchunk_next(&ch, &k[n], &r[n])) > 0) {
            if (keyed) hs[n] = key_hash((const unsigned char *)k[n].p, k[n].len > 0 ? (size_t)k[n].len : 0);
            n++;
        }
        if (more < 0) return -1;
        if (keyed) prefetch_slots(fo, hs, n);
        for (int i = 0; i < n; i++) {
            Val *row;
            if (!kfchunk_split_row(buf + (r[i].p - buf), r[i].len, o->base, fo->maxcol, NULL, NULL)) return -1;
            int at = keyed ? keyframe_row_at(fo, (const unsigned char *)k[i].p, k[i].len, hs[i], true, o->base,
                                             o->vals, &row)
                           : keyframe_row_at(fo, NULL, 0, 0, false, o->base, o->vals, &row);
            if (at <= 0) {
                if (at < 0) return -1;
                continue;
            }
            make_line(fo->rv, row, fo->maxcol, o->csv, o->line);
            if ((*st = o->sink(o->sink_arg, o->line->data, o->line->len, err)) != WR_OK) return 0;
            (*o->rows)++;
        }
    }
    return 1;
}

/*
 * The keyframe's rows as of rev: its chunks (format 7) in one binary COPY,
 * each chunk's keys and rows sent as the two arrays they are and split here.
 * Unnesting them in the server (the keyframe_row view) cost it 0.44 s of CPU
 * for a 1,000,000-row keyframe where sending the arrays costs 0.12 s
 * (bench/issue16-cost.md, s11-kf2).
 */
static WrStatus emit_keyframe(Fold *fo, bool csv, FoldSink sink, void *sink_arg, long long *rows, StrBuf *line,
                              Val *base, Val *vals, const char *what, WrError *err)
{
    ReplayCtx *ctx = fo->ctx;
    /* No delta since the keyframe (right after the baseline, or at the
     * keyframe's own revision): its rows are the answer and their keys
     * are not needed — sending them was a fifth of the server's work. */
    bool keyed = fo->n > 0;
    char q[512];
    snprintf(q, sizeof(q),
             "COPY (SELECT %s c.rows FROM %s.keyframe_chunk c WHERE c.keyframe_id = %s) TO STDOUT (FORMAT binary)",
             keyed ? "c.keys," : "", ctx->schema_q, fo->kf_id);
    CopyReader r;
    WrStatus st = replay_copy_open(&r, ctx->hist, q, what, err);
    if (st != WR_OK) return st;
    CopyTuple *batch = xmalloc(COPY_BATCH * sizeof(CopyTuple));
    KfOut o = {csv, sink, sink_arg, rows, line, base, vals};
    int got = 0, at = 1;
    while (at > 0 && (got = replay_copy_next(&r, keyed ? 2 : 1, batch, COPY_BATCH, what, err)) > 0)
        for (int k = 0; k < got && at > 0; k++) at = emit_chunk(fo, r.buf.data, &batch[k], keyed, &o, &st, err);
    free(batch);
    if (at < 0 && st == WR_OK)
        st = wr_error_set(err, WR_PROTOCOL, "%s: malformed keyframe chunk", what);
    else if (got < 0 && st == WR_OK)
        st = err->status;
    return replay_copy_close(&r, st, what, err);
}

/* A batch of keyframe rows of a table with zoned columns (emit_keyframe_zoned): each row's key and
 * its values as its chunk's literal gave them, pointing into the FETCHed chunks, which stay until the
 * batch is out; the values shown for the zoned columns and whether each is the keyframe's own text. */
typedef struct {
    int cap, nz;
    int *zcol;          /* [nz]: the zoned columns' col_ids */
    Val *key;           /* [cap] */
    uint64_t *h;        /* [cap] */
    Val *base;          /* [cap * (maxcol + 1)]: row i's vals[col_id] */
    signed char *shown; /* [cap]: keyframe_row_at's answer */
    Val *conv;          /* [cap * nz]: row i's column zcol[z] */
    bool *own;          /* [cap * nz]: conv[...] is the keyframe's text */
    Val *one;           /* [cap]: one zoned column's values of the batch to print again */
    int *from;          /* [cap]: ... and their rows */
    PGresult **printed; /* [nz] */
} ZonedBatch;

/*
 * The n rows of zb out, as of rev: those the deltas left show, their zoned
 * columns printed again (rezone_vals: a value a delta replaced is never cast,
 * as in snapshot_rows(); one the deltas set was printed by rezone_hash).
 */
static WrStatus zoned_flush(Fold *fo, ZonedBatch *zb, int n, bool keyed, const KfOut *o, const char *what,
                            WrError *err)
{
    int nz = zb->nz, w = fo->maxcol + 1;
    WrStatus st = WR_OK;
    for (int i = 0; i < n && st == WR_OK; i++) {
        Val *base = &zb->base[(size_t)i * (size_t)w], *row = base;
        zb->shown[i] = (signed char)keyframe_row_at(fo, (const unsigned char *)zb->key[i].p, zb->key[i].len,
                                                    zb->h[i], keyed, base, o->vals, &row);
        if (zb->shown[i] < 0) st = wr_error_set(err, WR_PROTOCOL, "%s: malformed keyframe row", what);
        for (int z = 0; z < nz && zb->shown[i] > 0; z++) {
            size_t at = (size_t)i * (size_t)nz + (size_t)z;
            zb->conv[at] = row[zb->zcol[z]];
            zb->own[at] = zb->conv[at].len >= 0 && zb->conv[at].p == base[zb->zcol[z]].p;
        }
    }
    for (int z = 0; z < nz && st == WR_OK; z++) {
        size_t k = 0;
        for (int i = 0; i < n; i++)
            if (zb->shown[i] > 0 && zb->own[(size_t)i * (size_t)nz + (size_t)z]) {
                zb->from[k] = i;
                zb->one[k++] = zb->conv[(size_t)i * (size_t)nz + (size_t)z];
            }
        st = rezone_vals(fo, fo->zone_type[zb->zcol[z]], zb->one, k, &zb->printed[z], what, err);
        for (size_t j = 0; j < k && st == WR_OK; j++) zb->conv[(size_t)zb->from[j] * (size_t)nz + (size_t)z] = zb->one[j];
    }
    for (int i = 0; i < n && st == WR_OK; i++) {
        Val *base = &zb->base[(size_t)i * (size_t)w], *row = base;
        if (zb->shown[i] <= 0) continue;
        (void)keyframe_row_at(fo, (const unsigned char *)zb->key[i].p, zb->key[i].len, zb->h[i], keyed, base, o->vals,
                              &row);
        for (int z = 0; z < nz; z++) row[zb->zcol[z]] = zb->conv[(size_t)i * (size_t)nz + (size_t)z];
        make_line(fo->rv, row, fo->maxcol, o->csv, o->line);
        if ((st = o->sink(o->sink_arg, o->line->data, o->line->len, err)) == WR_OK) (*o->rows)++;
    }
    for (int z = 0; z < nz; z++) {
        PQclear(zb->printed[z]);
        zb->printed[z] = NULL;
    }
    return st;
}

/*
 * The rows of the FETCHed chunks in res (keys when keyed, then rows), split
 * into zb and sent out a batch at a time; the literals are unescaped in
 * res's own memory, each once.
 */
static WrStatus zoned_chunks(Fold *fo, ZonedBatch *zb, PGresult *res, bool keyed, const KfOut *o, const char *what,
                             WrError *err)
{
    int nf = keyed ? 2 : 1, n = 0, w = fo->maxcol + 1;
    WrStatus st = WR_OK;
    for (int c = 0; c < PQntuples(res) && st == WR_OK; c++) {
        KfChunk ch;
        Val row;
        char *lits = PQgetvalue(res, c, nf - 1); /* res's memory: the literals are unescaped there */
        int more = kfchunk_open(&ch, keyed ? (const unsigned char *)PQgetvalue(res, c, 0) : NULL,
                                PQgetlength(res, c, 0), (const unsigned char *)lits, PQgetlength(res, c, nf - 1))
                       ? 1
                       : -1;
        while (more > 0 && st == WR_OK && (more = kfchunk_next(&ch, &zb->key[n], &row)) > 0) {
            if (!kfchunk_split_row(lits + (row.p - lits), row.len, &zb->base[(size_t)n * (size_t)w], fo->maxcol, NULL, NULL)) {
                more = -1;
                break;
            }
            if (!keyed) zb->key[n] = (Val){NULL, 0};
            zb->h[n] = keyed && zb->key[n].len >= 0 ? key_hash((const unsigned char *)zb->key[n].p, (size_t)zb->key[n].len)
                                                    : 0;
            if (++n == zb->cap) {
                st = zoned_flush(fo, zb, n, keyed, o, what, err);
                n = 0;
            }
        }
        if (more < 0 && st == WR_OK) st = wr_error_set(err, WR_PROTOCOL, "%s: malformed keyframe chunk", what);
    }
    if (n > 0 && st == WR_OK) st = zoned_flush(fo, zb, n, keyed, o, what, err);
    return st;
}

/*
 * emit_keyframe for a table with zoned columns: the keyframe's chunks
 * through a cursor, a few at a time, so that between two FETCHes the values
 * of its zoned columns that a batch of rows shows go to the server to be
 * printed again (zoned_flush). The chunks are split here, as emit_keyframe
 * splits them: not unnested by the keyframe_row view, which cost the server
 * more than the rest of the snapshot.
 */
static WrStatus emit_keyframe_zoned(Fold *fo, bool csv, FoldSink sink, void *sink_arg, long long *rows, StrBuf *line,
                                    Val *base, Val *vals, const char *what, WrError *err)
{
    (void)base;
    ReplayCtx *ctx = fo->ctx;
    bool keyed = fo->n > 0;
    PGresult *res = rq_execf(ctx->hist, err,
                             "DECLARE walrev_keyframe NO SCROLL CURSOR FOR SELECT %s c.rows FROM %s.keyframe_chunk c "
                             "WHERE c.keyframe_id = %s",
                             keyed ? "c.keys," : "", ctx->schema_q, fo->kf_id);
    if (!res) return wr_error_prefix(err, "%s", what);
    PQclear(res);
    /* A batch's values by col_id: about 64k of them, however wide the table. */
    int w = fo->maxcol + 1, nz = fo->nzoned;
    ZonedBatch zb = {.cap = 65536 / w > REZONE_BATCH ? REZONE_BATCH : (65536 / w > 64 ? 65536 / w : 64), .nz = nz};
    zb.zcol = xcalloc((size_t)nz, sizeof(int));
    for (int c = 1, z = 0; c <= fo->maxcol; c++)
        if (fo->zone_type[c]) zb.zcol[z++] = c;
    zb.key = xcalloc((size_t)zb.cap, sizeof(Val));
    zb.h = xcalloc((size_t)zb.cap, sizeof(uint64_t));
    zb.base = xcalloc((size_t)zb.cap * (size_t)w, sizeof(Val));
    zb.shown = xcalloc((size_t)zb.cap, 1);
    zb.conv = xcalloc((size_t)zb.cap * (size_t)nz, sizeof(Val));
    zb.own = xcalloc((size_t)zb.cap * (size_t)nz, sizeof(bool));
    zb.one = xcalloc((size_t)zb.cap, sizeof(Val));
    zb.from = xcalloc((size_t)zb.cap, sizeof(int));
    zb.printed = xcalloc((size_t)nz, sizeof(PGresult *));
    KfOut o = {csv, sink, sink_arg, rows, line, NULL, vals};
    char fetch[64]; /* chunks hold up to 64 rows, most of a keyframe's exactly 64 */
    snprintf(fetch, sizeof(fetch), "FETCH %d FROM walrev_keyframe", zb.cap / 64 > 1 ? zb.cap / 64 : 1);
    WrStatus st = WR_OK;
    int n = 0;
    do {
        if (!pgio_exec_binary(ctx->hist, fetch, 0, NULL, &res)) { /* binary, as COPY's fields */
            st = pgio_fail(ctx->hist, res, err, "%s", what);
            PQclear(res);
            break;
        }
        n = PQntuples(res);
        st = zoned_chunks(fo, &zb, res, keyed, &o, what, err);
        PQclear(res);
    } while (n > 0 && st == WR_OK);
    if (st == WR_OK) st = rq_run(ctx->hist, err, "CLOSE walrev_keyframe", 0, NULL);
    free(zb.printed);
    free(zb.from);
    free(zb.one);
    free(zb.own);
    free(zb.conv);
    free(zb.shown);
    free(zb.base);
    free(zb.h);
    free(zb.key);
    free(zb.zcol);
    return st;
}

WrStatus fold_emit(Fold *fo, bool csv, FoldSink sink, void *sink_arg, long long *rows, WrError *err)
{
    char what[300];
    snprintf(what, sizeof(what), "snapshot of %s.%s", fo->rv->nspname, fo->rv->relname);
    StrBuf line;
    strbuf_init(&line);
    Val *vals = xcalloc((size_t)fo->maxcol + 1, sizeof(Val));
    Val *base = xcalloc((size_t)fo->maxcol + 1, sizeof(Val));
    WrStatus st = WR_OK;
    if (fo->overflow) {
        st = emit_sorted(fo, csv, sink, sink_arg, rows, &line, vals, what, err);
        goto done;
    }
    /* a truncate in the range voids the keyframe */
    if (fo->has_kf && fo->trunc.rev == 0) {
        st = (fo->nzoned > 0 ? emit_keyframe_zoned : emit_keyframe)(fo, csv, sink, sink_arg, rows, &line, base, vals,
                                                                    what, err);
        if (st != WR_OK) goto done;
    }
    /* keys the keyframe did not have */
    for (size_t i = 0; i < fo->cap && st == WR_OK; i++) {
        Entry *e = fo->tab[i].e;
        if (!e || e->seen || !entry_row(fo, e, NULL, vals)) continue;
        make_line(fo->rv, vals, fo->maxcol, csv, &line);
        if ((st = sink(sink_arg, line.data, line.len, err)) == WR_OK) (*rows)++;
    }
done:
    free(vals);
    free(base);
    strbuf_free(&line);
    return st;
}

void fold_destroy(Fold *fo)
{
    if (!fo) return;
    hash_free(fo);
    free(fo->zone_type);
    free(fo);
}
