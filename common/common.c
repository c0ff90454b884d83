/*
 * common.c — errors, LSN text, time, allocation and StrBuf. Pure helpers:
 * no logging, no global state.
 */
#include "common/common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

WrStatus wr_error_set(WrError *err, WrStatus st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        err->status = st;
        err->sqlstate[0] = '\0';
    }
    return st;
}

WrStatus wr_error_prefix(WrError *err, const char *fmt, ...)
{
    char prefix[256];
    char old[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    /* Keep as much of both as fits; truncation of a long message is intended. */
    size_t plen = strnlen(prefix, sizeof(prefix));
    if (plen > sizeof(err->msg) - 3) plen = sizeof(err->msg) - 3;
    memcpy(err->msg, prefix, plen);
    memcpy(err->msg + plen, ": ", 2);
    size_t room = sizeof(err->msg) - plen - 3;
    size_t olen = strnlen(old, room);
    memcpy(err->msg + plen + 2, old, olen);
    err->msg[plen + 2 + olen] = '\0';
    return err->status;
}

const char *wr_status_name(WrStatus st)
{
    switch (st) {
    case WR_OK: return "ok";
    case WR_AGAIN: return "again";
    case WR_RETRY: return "retry";
    case WR_PROTOCOL: return "protocol";
    case WR_INVALID: return "invalid";
    case WR_FATAL: return "fatal";
    case WR_DONE: return "done";
    }
    return "unknown";
}

bool lsn_parse(const char *text, Lsn *out)
{
    unsigned hi, lo;
    int n = 0;
    if (!text || sscanf(text, "%X/%X%n", &hi, &lo, &n) != 2 || text[n] != '\0') return false;
    /* sscanf accepts leading sign/space; reject them for an exact format. */
    if (text[0] == '-' || text[0] == '+' || text[0] == ' ') return false;
    *out = ((uint64_t)hi << 32) | lo;
    return true;
}

int64_t pg_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - PG_EPOCH_OFFSET_US;
}

int64_t mono_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void pg_time_format(int64_t pg_us, char *buf, size_t size)
{
    int64_t unix_us = pg_us + PG_EPOCH_OFFSET_US;
    time_t secs = (time_t)(unix_us / 1000000);
    int64_t frac = unix_us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf, size, "%s.%06" PRId64 "+00", base, frac);
}

static void oom(size_t n)
{
    fprintf(stderr, "walrev: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
    StrBuf b;
    strbuf_init(&b);
    strbuf_vappendf(&b, fmt, ap);
    if (!b.data) return xstrdup(""); /* nothing appended: the buffer holds no allocation yet */
    return b.data;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvasprintf(fmt, ap);
    va_end(ap);
    return s;
}

void strbuf_init(StrBuf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void strbuf_free(StrBuf *b)
{
    free(b->data);
    strbuf_init(b);
}

void strbuf_reset(StrBuf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void strbuf_reserve(StrBuf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void strbuf_append(StrBuf *b, const void *data, size_t len)
{
    strbuf_reserve(b, len);
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void strbuf_append_str(StrBuf *b, const char *s) { strbuf_append(b, s, strlen(s)); }

void strbuf_append_char(StrBuf *b, char c)
{
    strbuf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void strbuf_append_quoted(StrBuf *b, const char *s, char quote)
{
    strbuf_append_char(b, quote);
    for (const char *p = s; *p; p++) {
        if (*p == quote || *p == '\\') strbuf_append_char(b, '\\');
        strbuf_append_char(b, *p);
    }
    strbuf_append_char(b, quote);
}

void strbuf_vappendf(StrBuf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return;
    strbuf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void strbuf_appendf(StrBuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf_vappendf(b, fmt, ap);
    va_end(ap);
}

void strbuf_append_copy_text(StrBuf *b, const char *s, size_t len)
{
    strbuf_reserve(b, len + len / 8 + 2);
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        const char *esc = NULL;
        switch (s[i]) {
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\v': esc = "\\v"; break;
        default: continue;
        }
        strbuf_append(b, s + start, i - start);
        strbuf_append(b, esc, 2);
        start = i + 1;
    }
    strbuf_append(b, s + start, len - start);
}

void strbuf_append_json_string(StrBuf *b, const char *s, size_t len)
{
    strbuf_append_char(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': strbuf_append(b, "\\\"", 2); break;
        case '\\': strbuf_append(b, "\\\\", 2); break;
        case '\n': strbuf_append(b, "\\n", 2); break;
        case '\r': strbuf_append(b, "\\r", 2); break;
        case '\t': strbuf_append(b, "\\t", 2); break;
        default:
            if (c < 0x20)
                strbuf_appendf(b, "\\u%04x", c);
            else
                strbuf_append_char(b, (char)c);
        }
    }
    strbuf_append_char(b, '"');
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t copy_text_unescape(char *f, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (f[i] != '\\' || i + 1 >= len) {
            f[o++] = f[i];
            continue;
        }
        char c = f[++i];
        switch (c) {
        case 'b': f[o++] = '\b'; break;
        case 'f': f[o++] = '\f'; break;
        case 'n': f[o++] = '\n'; break;
        case 'r': f[o++] = '\r'; break;
        case 't': f[o++] = '\t'; break;
        case 'v': f[o++] = '\v'; break;
        case 'x':
            if (i + 1 < len && hexval(f[i + 1]) >= 0) {
                int v = hexval(f[++i]);
                if (i + 1 < len && hexval(f[i + 1]) >= 0) v = v * 16 + hexval(f[++i]);
                f[o++] = (char)v;
            } else {
                f[o++] = 'x';
            }
            break;
        default:
            if (c >= '0' && c <= '7') {
                int v = c - '0';
                for (int k = 0; k < 2 && i + 1 < len && f[i + 1] >= '0' && f[i + 1] <= '7'; k++)
                    v = v * 8 + (f[++i] - '0');
                f[o++] = (char)v;
            } else {
                f[o++] = c; /* \\ and any other escaped character stand for themselves */
            }
        }
    }
    return o;
}

/* One part of a qualified name at *p: quoted or bare; *p left after it. */
static char *ident_part(const char **p)
{
    StrBuf b;
    strbuf_init(&b);
    const char *s = *p;
    if (*s == '"') {
        for (s++;; s++) {
            if (*s == '\0') goto bad; /* unterminated */
            if (*s == '"') {
                if (s[1] != '"') break;
                s++;
            }
            strbuf_append_char(&b, *s);
        }
        s++;
        if (b.len == 0) goto bad;
    } else {
        for (; *s && *s != '.' && *s != '"'; s++)
            strbuf_append_char(&b, (*s >= 'A' && *s <= 'Z') ? (char)(*s - 'A' + 'a') : *s);
        if (b.len == 0 || *s == '"') goto bad;
    }
    *p = s;
    return b.data;
bad:
    strbuf_free(&b);
    return NULL;
}

bool ident_parse_qualified(const char *text, char **schema, char **name)
{
    const char *p = text;
    char *first = NULL, *second = NULL;
    *schema = *name = NULL;
    if (!(first = ident_part(&p))) return false;
    if (*p == '\0') {
        *name = first;
        return true;
    }
    if (*p != '.') goto bad;
    p++;
    if (!(second = ident_part(&p)) || *p != '\0') goto bad;
    *schema = first;
    *name = second;
    return true;
bad:
    free(first);
    free(second);
    return false;
}

bool ident_is_qualified(const char *text)
{
    char *schema = NULL, *name = NULL;
    bool ok = ident_parse_qualified(text, &schema, &name);
    free(schema);
    free(name);
    return ok;
}

uint64_t wr_fnv1a(const void *data, size_t len, uint64_t h)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}
