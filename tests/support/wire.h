/*
 * wire.h — a big-endian byte writer for the tests that build pgoutput
 * messages and CopyData frames by hand (the parser's, the assembler's):
 * integers in network order, NUL-terminated strings, raw bytes and tuple
 * text values, each field as the protocol lays it out. Writing past the
 * buffer fails the test (cmocka). No allocation: a TsWire lives where the
 * test declares it; zero it to start a message.
 */
#ifndef WALREV_TESTS_WIRE_H
#define WALREV_TESTS_WIRE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t b[16384];
    size_t n; /* bytes written */
} TsWire;

void tw_u8(TsWire *w, uint8_t v);
void tw_u16(TsWire *w, uint16_t v);
void tw_u32(TsWire *w, uint32_t v);
void tw_u64(TsWire *w, uint64_t v);
void tw_bytes(TsWire *w, const void *p, size_t n);
/* s and its NUL (a pgoutput String) */
void tw_str(TsWire *w, const char *s);
/* The head of a pgoutput Relation message (no xid): 'R', relid, namespace,
 * name, replica identity and the column count; the ncols columns follow
 * (tw_column). */
void tw_relation(TsWire *w, uint32_t relid, const char *nspname, const char *relname, char replident, uint16_t ncols);
/* One column of a Relation message: flags (1: part of the key), name, type OID, typmod (-1: none). */
void tw_column(TsWire *w, uint8_t flags, const char *name, uint32_t type_oid, int32_t typmod);
/* a tuple column in text form: 't', Int32 length, the bytes of s (no NUL) */
void tw_text(TsWire *w, const char *s);

#endif
