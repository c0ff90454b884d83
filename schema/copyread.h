/*
 * copyread.h — reading the framing of PostgreSQL's binary COPY format: a header (an
 * 11-byte signature, int32 flags, int32 extension length, the extension), then
 * tuples (int16 field count, per field an int32 length, -1 for NULL, and its
 * bytes), then an int16 -1 trailer. Pure functions over a buffer that may hold
 * only part of the stream: the callers (replay/fold.c, schema/rowfold.c)
 * reassemble CopyData messages and word their own errors. Writing the format
 * is sink/copy_format.h's.
 */
#ifndef WALREV_SCHEMA_COPYREAD_H
#define WALREV_SCHEMA_COPYREAD_H

#include <stddef.h>
#include <stdint.h>

/*
 * The header at p (avail bytes): 1 with *len its length when avail holds it
 * whole, 0 while it does not, -1 when the signature is not binary COPY's (it
 * is checked once the 19 fixed bytes are there).
 */
int copyread_header(const unsigned char *p, size_t avail, size_t *len);

/* The field count at p (2 bytes there); -1 is the trailer. */
int copyread_field_count(const unsigned char *p);

/*
 * The tuple at p whose field count is nf: f[i] and fl[i] get each field's
 * bytes (pointing into p) and length (-1 for NULL). Returns the tuple's
 * length, its field count included, or 0 while avail does not hold it whole
 * (f and fl are then partly set).
 */
size_t copyread_tuple(const unsigned char *p, size_t avail, int nf, const unsigned char **f, int32_t *fl);

#endif
