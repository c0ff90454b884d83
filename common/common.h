/*
 * common.h — the few things every walrev module shares: status codes and the
 * error struct, LSN helpers, out-of-memory-aborting allocation and a growable
 * byte buffer. Nothing here does I/O except the logger (log.h), which only the
 * worker, CLI and sink drivers may call; leaf modules return errors instead.
 */
#ifndef WALREV_COMMON_H
#define WALREV_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WR_MUSTCHECK __attribute__((warn_unused_result))
#define WR_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* What the caller should do about a result. */
typedef enum {
    WR_OK = 0,
    WR_AGAIN,    /* nothing available yet; call again later (non-blocking I/O) */
    WR_RETRY,    /* transient failure (connection lost, broker down): back off, retry */
    WR_PROTOCOL, /* the peer sent bytes we cannot accept: bug or incompatible server */
    WR_INVALID,  /* bad user input: config, CLI argument, context JSON */
    WR_FATAL,    /* cannot continue (permissions, missing objects, disk) */
    WR_DONE      /* orderly end: stop position reached, stream ended */
} WrStatus;

/* One-line error message filled by the module that failed; logged once, at the top. */
typedef struct {
    WrStatus status;
    char msg[768];
    char sqlstate[6]; /* the server's SQLSTATE when a PostgreSQL call failed (pgio_fail), else "" */
} WrError;

/* Fill err (if not NULL) and return st. */
WrStatus wr_error_set(WrError *err, WrStatus st, const char *fmt, ...) WR_PRINTF(3, 4);
/* Prepend context ("while doing X: ") to an error already set; returns err->status. */
WrStatus wr_error_prefix(WrError *err, const char *fmt, ...) WR_PRINTF(2, 3);
const char *wr_status_name(WrStatus st);

/* ---- LSNs ---- */
typedef uint64_t Lsn;
#define LSN_FMT "%X/%X"
#define LSN_ARGS(l) (unsigned)((uint64_t)(l) >> 32), (unsigned)((uint64_t)(l)&0xFFFFFFFFu)
/* Parse "X/X" (hex); false on anything else. */
bool lsn_parse(const char *text, Lsn *out) WR_MUSTCHECK;

/* ---- SQL names ---- */
/*
 * Split a table name written as in SQL, `table` or `schema.table`, each part
 * either quoted (a doubled quote is a quote inside) or bare (folded to lower
 * case, as PostgreSQL does): "My Schema"."Tab ""q""" is My Schema / Tab "q".
 * *schema is NULL when none is given. Both are the caller's (free) on true;
 * false: not a valid name (empty part, unterminated quote, more than two parts).
 */
bool ident_parse_qualified(const char *text, char **schema, char **name) WR_MUSTCHECK;
/* Whether text is a name ident_parse_qualified takes (table or schema.table), for a check before any lookup. */
bool ident_is_qualified(const char *text);

/* PostgreSQL timestamps: microseconds since 2000-01-01 00:00:00 UTC. */
#define PG_EPOCH_OFFSET_US INT64_C(946684800000000)
int64_t pg_now_us(void);
/* Microseconds on CLOCK_MONOTONIC: for durations and timers, never for dates. */
int64_t mono_now_us(void);
/* Format a PostgreSQL timestamp as ISO 8601 UTC with microseconds into buf (>= 40 bytes). */
void pg_time_format(int64_t pg_us, char *buf, size_t size);

/* ---- hashing (hash tables, never security) ---- */
/* The start every walrev table hash uses: FNV-1a's offset basis without its last digit. */
#define WR_FNV_BASIS UINT64_C(1469598103934665603)
/* FNV-1a of len bytes continued from h (WR_FNV_BASIS to start). Its low bits
 * differ little between similar keys: mix before masking where that matters. */
uint64_t wr_fnv1a(const void *data, size_t len, uint64_t h);

/* ---- allocation: out of memory aborts with a message ---- */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* A formatted string (SQL, names) built in a StrBuf; the caller frees it. */
char *xasprintf(const char *fmt, ...) WR_PRINTF(1, 2);
char *xvasprintf(const char *fmt, va_list ap) WR_PRINTF(1, 0);

/* ---- growable byte buffer; always NUL-terminated; owner frees with strbuf_free ----
 * A zeroed StrBuf is an empty one, as strbuf_init makes it: a buffer inside a
 * calloc'd struct needs no init. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} StrBuf;

void strbuf_init(StrBuf *b);
void strbuf_free(StrBuf *b);
void strbuf_reset(StrBuf *b);
void strbuf_reserve(StrBuf *b, size_t extra);
void strbuf_append(StrBuf *b, const void *data, size_t len);
void strbuf_append_str(StrBuf *b, const char *s);
void strbuf_append_char(StrBuf *b, char c);
void strbuf_appendf(StrBuf *b, const char *fmt, ...) WR_PRINTF(2, 3);
void strbuf_vappendf(StrBuf *b, const char *fmt, va_list ap) WR_PRINTF(2, 0);

/*
 * Append s escaped for PostgreSQL COPY text format as the server writes it
 * (CopyAttributeOutText, byte for byte: backslash, \b \f \n \r \t \v), so
 * that walrev's own COPY output reads like PostgreSQL's and COPY FROM takes it.
 */
void strbuf_append_copy_text(StrBuf *b, const char *s, size_t len);
/* Append s between two quote characters, each quote and backslash in it
 * escaped by a backslash: an element of a PostgreSQL array literal ('"'), a
 * libpq conninfo value ('\''). */
void strbuf_append_quoted(StrBuf *b, const char *s, char quote);
/*
 * Undo COPY text-format escaping of one field in place (\\, \t, \n, \r, \b,
 * \f, \v, octal \NNN, hex \xHH); returns the new length. "\N" (NULL) must
 * be checked by the caller before.
 */
size_t copy_text_unescape(char *field, size_t len);

/* Append s as a JSON string literal (with quotes). */
void strbuf_append_json_string(StrBuf *b, const char *s, size_t len);

/* Big-endian helpers for wire code. */
static inline uint16_t wr_read_u16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t wr_read_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t wr_read_u64(const uint8_t *p) { return ((uint64_t)wr_read_u32(p) << 32) | wr_read_u32(p + 4); }
static inline void wr_write_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void wr_write_u64(uint8_t *p, uint64_t v)
{
    wr_write_u32(p, (uint32_t)(v >> 32));
    wr_write_u32(p + 4, (uint32_t)v);
}

#endif
