/*
 * copy_format.h — encoders for PostgreSQL's COPY text format and array
 * literals, and decoders for the binary result format the history sink and
 * `walrev verify` read back (int, bytea, arrays). Pure: no connection, no
 * logging, no allocation beyond the caller's StrBuf.
 */
#ifndef WALREV_SINK_COPY_FORMAT_H
#define WALREV_SINK_COPY_FORMAT_H

#include "common/common.h"
#include "schema/revision.h"

/* One COPY text field: data == NULL -> \N, else the bytes with \ TAB LF CR escaped. */
void copy_append_field(StrBuf *b, const char *data, size_t len);
/* The COPY field of an int64 / a smallint[]-style array "{1,2,3}" (no escaping needed). */
void copy_append_int(StrBuf *b, int64_t v);
/* An LSN as PostgreSQL prints it (X/X, upper-case hex). Both without printf:
 * the history sink writes several per change, and vsnprintf was a fifth of
 * the worker's CPU on a drain (issue 16). */
void copy_append_lsn(StrBuf *b, Lsn lsn);
void copy_append_int16_array(StrBuf *b, const int16_t *v, size_t n);

/*
 * A text[] array literal of n values: every element double-quoted (so "" is
 * the empty string and "NULL" the four letters), " and \ backslash-escaped,
 * Value.data == NULL written as the bare NULL. Lower bound 1.
 * pgarray_append_text writes the plain literal (for query parameters);
 * copy_append_text_array writes it additionally escaped as one COPY field.
 */
void pgarray_append_text(StrBuf *b, const Value *vals, size_t n);
void copy_append_text_array(StrBuf *b, const Value *vals, size_t n);
/* The same literal as PostgreSQL's array_out writes it (vals::text): an
 * element quoted only when it must be (empty, NULL spelled out, or holding
 * syntax or white space), so a keyframe chunk's rows[i] is what
 * keyframe_pack in history.sql writes for the same vals. */
void pgarray_append_text_out(StrBuf *b, const Value *vals, size_t n);

/*
 * COPY's binary format (issue 16: the history backend spent a fifth of its
 * CPU on a drain parsing text COPY lines and array literals). A COPY's data
 * is copybin_header, then per row copybin_row and its fields, then
 * copybin_trailer. Integers are big-endian of the column's width; text is
 * its bytes as they are (the server checks their encoding as it does for
 * text COPY); NULL is a length of -1.
 */
void copybin_header(StrBuf *b);
void copybin_trailer(StrBuf *b);
void copybin_row(StrBuf *b, int16_t nfields);
void copybin_null(StrBuf *b);
void copybin_int8(StrBuf *b, int64_t v);
void copybin_int4(StrBuf *b, int32_t v);
void copybin_int2(StrBuf *b, int16_t v);
/* "char" and boolean: one byte. */
void copybin_byte(StrBuf *b, uint8_t v);
/* A text field: data == NULL -> NULL. */
void copybin_text(StrBuf *b, const char *data, size_t len);
/* A jsonb field from its JSON text (NULL -> NULL): version 1, then the text. */
void copybin_jsonb(StrBuf *b, const char *json);
/* smallint[] of n > 0 elements, lower bound 1. */
void copybin_int2_array(StrBuf *b, const int16_t *v, size_t n);
/* text[] of n > 0 values (Value.data == NULL: a NULL element), lower bound 1. */
void copybin_text_array(StrBuf *b, const Value *vals, size_t n);

/* bytea as a COPY field in hex form: \\x0a1b... (the COPY escape of \x0a1b...). */
void copy_append_bytea(StrBuf *b, const uint8_t *data, size_t len);

/*
 * Decode bytea text output "\x0a1b..." (hex format) into out. Returns false
 * (and leaves out unspecified) on a malformed string or when the decoded
 * length differs from want_len.
 */
bool bytea_hex_decode(const char *text, uint8_t *out, size_t want_len) WR_MUSTCHECK;

/*
 * Reader over a one-dimensional array in PostgreSQL's binary format
 * (array_send): ndim, hasnull, elemtype, [dim, lbound], then per element an
 * int32 length (-1 = NULL) and the element's binary form. Borrowed: points
 * into the caller's buffer (e.g. a PGresult), valid while that is.
 */
typedef struct {
    int32_t nelems; /* 0 for an empty (zero-dimensional) array */
    int32_t lbound; /* index of the first element (1 unless set otherwise) */
    uint32_t elemtype;
    const char *p; /* next element */
    const char *end;
    int32_t next; /* elements read so far */
} PgBinArray;

/* Parse the header; false when malformed or multi-dimensional. */
bool pgbin_array_open(PgBinArray *a, const char *data, size_t len) WR_MUSTCHECK;
/* Next element into *v (v->data NULL for a NULL element); false when truncated or exhausted. */
bool pgbin_array_next(PgBinArray *a, Value *v) WR_MUSTCHECK;

/* Binary integers of a result field (big-endian); false when the length is wrong. */
bool pgbin_int(const char *data, size_t len, int64_t *out) WR_MUSTCHECK;

#endif
