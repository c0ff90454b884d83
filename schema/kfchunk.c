/*
 * kfchunk.c — see kfchunk.h. Lengths are checked against what remains before
 * every read: a chunk is data anyone who can write the store can forge.
 */
#include "schema/kfchunk.h"

#include <string.h>
#include <strings.h>

#include "common/common.h"

/* A one-dimensional binary array's first element and end; false when it is not one. */
static bool array_elems(const unsigned char *p, int32_t len, const unsigned char **first, const unsigned char **end)
{
    if (!p || len < 12) return false;
    int32_t ndim = (int32_t)wr_read_u32(p); /* int32 ndim, int32 has_null, uint32 element type */
    *end = p + len;
    if (ndim == 0) {
        *first = *end;
        return true;
    }
    if (ndim != 1 || len < 20) return false; /* then int32 dim, int32 lower bound */
    *first = p + 20;
    return true;
}

bool kfchunk_open(KfChunk *c, const unsigned char *keys, int32_t keys_len, const unsigned char *rows,
                  int32_t rows_len)
{
    memset(c, 0, sizeof(*c));
    if (!array_elems(rows, rows_len, &c->r, &c->rend)) return false;
    return !keys || array_elems(keys, keys_len, &c->k, &c->kend);
}

/* The element at *at (int32 length, -1 for NULL, then the bytes); 0 at end, -1 past it. */
static int elem_next(const unsigned char **at, const unsigned char *end, KfVal *v)
{
    if (*at == end) return 0;
    if (end - *at < 4) return -1;
    v->len = (int32_t)wr_read_u32(*at);
    *at += 4;
    v->p = (const char *)*at;
    if (v->len > 0) {
        if (end - *at < v->len) return -1;
        *at += v->len;
    }
    return 1;
}

int kfchunk_next(KfChunk *c, KfVal *key, KfVal *row)
{
    int r = elem_next(&c->r, c->rend, row);
    if (!c->k) return r;
    int k = elem_next(&c->k, c->kend, key);
    return r == k ? r : -1;
}

bool kfchunk_split_row(char *p, int32_t len, KfVal *vals, int maxcol, long *lo, long *hi)
{
    for (int c = 0; c <= maxcol; c++) vals[c] = (KfVal){NULL, -1};
    long first = 1, idx = 1;
    if (lo) *lo = 1;
    if (hi) *hi = 0;
    if (!p || len < 2) return false;
    char *s = p, *end = p + len;
    if (*s == '[') { /* another lower bound: [lo:hi]= */
        bool neg = ++s < end && *s == '-';
        if (neg) s++;
        for (idx = 0; s < end && *s >= '0' && *s <= '9' && idx < 1000000000; s++) idx = idx * 10 + (*s - '0');
        if (neg) idx = -idx;
        if (s >= end || *s != ':' || !(s = memchr(s, '=', (size_t)(end - s)))) return false;
        s++;
        first = idx;
    }
    if (lo) *lo = first;
    if (hi) *hi = first - 1;
    if (s >= end || *s++ != '{') return false;
    if (s < end && *s == '}') return s + 1 == end;
    for (;; idx++) {
        KfVal v;
        if (s < end && *s == '"') {
            char *w = ++s;
            v.p = s;
            for (; s < end && *s != '"'; s++) {
                if (*s == '\\' && ++s >= end) return false;
                *w++ = *s;
            }
            if (s++ >= end) return false;
            v.len = (int32_t)(w - v.p);
        } else {
            v.p = s;
            while (s < end && *s != ',' && *s != '}') s++;
            v.len = (int32_t)(s - v.p);
            if (v.len == 4 && strncasecmp(v.p, "NULL", 4) == 0) v = (KfVal){NULL, -1};
        }
        if (idx >= 1 && idx <= maxcol) vals[idx] = v;
        if (hi) *hi = idx;
        if (s >= end) return false;
        if (*s == '}') return s + 1 == end;
        if (*s++ != ',') return false;
    }
}
