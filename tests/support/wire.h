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
/* a tuple column in text form: 't', Int32 length, the bytes of s (no NUL) */
void tw_text(TsWire *w, const char *s);

#endif
