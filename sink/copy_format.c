/*
 * copy_format.c — see copy_format.h. The two escaping layers (array literal
 * inside a COPY field) are applied in one pass per byte, so a value is read
 * once however large it is.
 */
#include "sink/copy_format.h"

#include <inttypes.h>
#include <string.h>
#include <strings.h>

void copy_append_field(StrBuf *b, const char *data, size_t len)
{
    if (!data) {
        strbuf_append(b, "\\N", 2);
        return;
    }
    strbuf_append_copy_text(b, data, len);
}

void copy_append_int(StrBuf *b, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    /* Negated as unsigned: INT64_MIN has no positive int64. */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    strbuf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

static void append_hex32(StrBuf *b, uint32_t v)
{
    static const char hex[] = "0123456789ABCDEF";
    char tmp[8];
    char *p = tmp + sizeof(tmp);
    do {
        *--p = hex[v & 15];
        v >>= 4;
    } while (v);
    strbuf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void copy_append_lsn(StrBuf *b, Lsn lsn)
{
    append_hex32(b, (uint32_t)(lsn >> 32));
    strbuf_append_char(b, '/');
    append_hex32(b, (uint32_t)lsn);
}

void copy_append_int16_array(StrBuf *b, const int16_t *v, size_t n)
{
    strbuf_append_char(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) strbuf_append_char(b, ',');
        copy_append_int(b, v[i]);
    }
    strbuf_append_char(b, '}');
}

/* Escape one element's bytes: array layer always, COPY layer when copy is set. */
static void append_element(StrBuf *b, const char *s, size_t len, bool copy)
{
    strbuf_reserve(b, len + len / 8 + 4);
    strbuf_append_char(b, '"');
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        const char *esc;
        size_t esc_len;
        switch (s[i]) {
        case '"':
            esc = copy ? "\\\\\"" : "\\\"";
            esc_len = copy ? 3 : 2;
            break;
        case '\\':
            esc = copy ? "\\\\\\\\" : "\\\\";
            esc_len = copy ? 4 : 2;
            break;
        case '\n':
            if (!copy) continue;
            esc = "\\n";
            esc_len = 2;
            break;
        case '\t':
            if (!copy) continue;
            esc = "\\t";
            esc_len = 2;
            break;
        case '\r':
            if (!copy) continue;
            esc = "\\r";
            esc_len = 2;
            break;
        default: continue;
        }
        strbuf_append(b, s + start, i - start);
        strbuf_append(b, esc, esc_len);
        start = i + 1;
    }
    strbuf_append(b, s + start, len - start);
    strbuf_append_char(b, '"');
}

static void append_array(StrBuf *b, const Value *vals, size_t n, bool copy)
{
    strbuf_append_char(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) strbuf_append_char(b, ',');
        if (!vals[i].data)
            strbuf_append(b, "NULL", 4);
        else
            append_element(b, vals[i].data, vals[i].len, copy);
    }
    strbuf_append_char(b, '}');
}

void pgarray_append_text(StrBuf *b, const Value *vals, size_t n) { append_array(b, vals, n, false); }

/* Whether array_out quotes an element: empty, the word NULL in any case, or
 * holding a character array_in would read as syntax or trim (its
 * array_isspace: space, \t \n \r \v \f). */
static bool element_needs_quotes(const char *s, size_t len)
{
    if (len == 0 || (len == 4 && strncasecmp(s, "NULL", 4) == 0)) return true;
    for (size_t i = 0; i < len; i++)
        switch (s[i]) {
        case '"': case '\\': case '{': case '}': case ',':
        case ' ': case '\t': case '\n': case '\r': case '\v': case '\f': return true;
        default: break;
        }
    return false;
}

void pgarray_append_text_out(StrBuf *b, const Value *vals, size_t n)
{
    strbuf_append_char(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) strbuf_append_char(b, ',');
        if (!vals[i].data)
            strbuf_append(b, "NULL", 4);
        else if (element_needs_quotes(vals[i].data, vals[i].len))
            append_element(b, vals[i].data, vals[i].len, false);
        else
            strbuf_append(b, vals[i].data, vals[i].len);
    }
    strbuf_append_char(b, '}');
}

void copy_append_text_array(StrBuf *b, const Value *vals, size_t n) { append_array(b, vals, n, true); }

void copy_append_bytea(StrBuf *b, const uint8_t *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    strbuf_reserve(b, 3 + 2 * len);
    strbuf_append(b, "\\\\x", 3);
    for (size_t i = 0; i < len; i++) {
        strbuf_append_char(b, hex[data[i] >> 4]);
        strbuf_append_char(b, hex[data[i] & 15]);
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool bytea_hex_decode(const char *text, uint8_t *out, size_t want_len)
{
    if (!text || text[0] != '\\' || text[1] != 'x') return false;
    const char *p = text + 2;
    if (strlen(p) != 2 * want_len) return false;
    for (size_t i = 0; i < want_len; i++) {
        int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

bool pgbin_array_open(PgBinArray *a, const char *data, size_t len)
{
    memset(a, 0, sizeof(*a));
    const uint8_t *u = (const uint8_t *)data;
    if (len < 12) return false;
    int32_t ndim = (int32_t)wr_read_u32(u);
    a->elemtype = wr_read_u32(u + 8);
    if (ndim == 0) {
        a->lbound = 1;
        a->p = a->end = data + len;
        return len == 12;
    }
    if (ndim != 1 || len < 20) return false;
    a->nelems = (int32_t)wr_read_u32(u + 12);
    a->lbound = (int32_t)wr_read_u32(u + 16);
    if (a->nelems < 0) return false;
    a->p = data + 20;
    a->end = data + len;
    return true;
}

bool pgbin_array_next(PgBinArray *a, Value *v)
{
    if (a->next >= a->nelems || a->end - a->p < 4) return false;
    int32_t n = (int32_t)wr_read_u32((const uint8_t *)a->p);
    a->p += 4;
    if (n == -1) {
        v->data = NULL;
        v->len = 0;
    } else {
        if (n < 0 || a->end - a->p < n) return false;
        v->data = a->p;
        v->len = (size_t)n;
        a->p += n;
    }
    a->next++;
    return true;
}

bool pgbin_int(const char *data, size_t len, int64_t *out)
{
    const uint8_t *u = (const uint8_t *)data;
    switch (len) {
    case 1: *out = (int8_t)u[0]; return true;
    case 2: *out = (int16_t)wr_read_u16(u); return true;
    case 4: *out = (int32_t)wr_read_u32(u); return true;
    case 8: *out = (int64_t)wr_read_u64(u); return true;
    default: return false;
    }
}

/* ---------- binary COPY ---------- */

#define PG_OID_INT2 21
#define PG_OID_TEXT 25

static void put_be32(StrBuf *b, uint32_t v)
{
    unsigned char o[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    strbuf_append(b, o, 4);
}

static void put_be16(StrBuf *b, uint16_t v)
{
    unsigned char o[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    strbuf_append(b, o, 2);
}

void copybin_header(StrBuf *b)
{
    /* Signature, flags (no OIDs), no header extension. */
    strbuf_append(b, "PGCOPY\n\377\r\n\0", 11);
    put_be32(b, 0);
    put_be32(b, 0);
}

void copybin_trailer(StrBuf *b) { put_be16(b, 0xFFFF); }

void copybin_row(StrBuf *b, int16_t nfields) { put_be16(b, (uint16_t)nfields); }

void copybin_null(StrBuf *b) { put_be32(b, 0xFFFFFFFFu); }

void copybin_int8(StrBuf *b, int64_t v)
{
    put_be32(b, 8);
    put_be32(b, (uint32_t)((uint64_t)v >> 32));
    put_be32(b, (uint32_t)(uint64_t)v);
}

void copybin_int4(StrBuf *b, int32_t v)
{
    put_be32(b, 4);
    put_be32(b, (uint32_t)v);
}

void copybin_int2(StrBuf *b, int16_t v)
{
    put_be32(b, 2);
    put_be16(b, (uint16_t)v);
}

void copybin_byte(StrBuf *b, uint8_t v)
{
    put_be32(b, 1);
    strbuf_append_char(b, (char)v);
}

void copybin_text(StrBuf *b, const char *data, size_t len)
{
    if (!data) {
        copybin_null(b);
        return;
    }
    put_be32(b, (uint32_t)len);
    strbuf_append(b, data, len);
}

void copybin_jsonb(StrBuf *b, const char *json)
{
    if (!json) {
        copybin_null(b);
        return;
    }
    size_t n = strlen(json);
    put_be32(b, (uint32_t)(n + 1));
    strbuf_append_char(b, 1);
    strbuf_append(b, json, n);
}

/* The array header of array_recv: one dimension of n elements from 1. */
static void array_header(StrBuf *b, size_t body, bool hasnull, uint32_t elemtype, size_t n)
{
    put_be32(b, (uint32_t)(20 + body));
    put_be32(b, 1);
    put_be32(b, hasnull ? 1 : 0);
    put_be32(b, elemtype);
    put_be32(b, (uint32_t)n);
    put_be32(b, 1);
}

void copybin_int2_array(StrBuf *b, const int16_t *v, size_t n)
{
    array_header(b, n * 6, false, PG_OID_INT2, n);
    for (size_t i = 0; i < n; i++) {
        put_be32(b, 2);
        put_be16(b, (uint16_t)v[i]);
    }
}

void copybin_text_array(StrBuf *b, const Value *vals, size_t n)
{
    size_t body = 0;
    bool hasnull = false;
    for (size_t i = 0; i < n; i++) {
        body += 4 + (vals[i].data ? vals[i].len : 0);
        if (!vals[i].data) hasnull = true;
    }
    array_header(b, body, hasnull, PG_OID_TEXT, n);
    for (size_t i = 0; i < n; i++) copybin_text(b, vals[i].data, vals[i].len);
}
