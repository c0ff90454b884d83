/* wire.c — see wire.h. */
#include "tests/support/wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <string.h>

#include <cmocka.h>

void tw_u8(TsWire *w, uint8_t v)
{
    assert_true(w->n < sizeof(w->b));
    w->b[w->n++] = v;
}

void tw_u16(TsWire *w, uint16_t v)
{
    tw_u8(w, (uint8_t)(v >> 8));
    tw_u8(w, (uint8_t)v);
}

void tw_u32(TsWire *w, uint32_t v)
{
    tw_u16(w, (uint16_t)(v >> 16));
    tw_u16(w, (uint16_t)v);
}

void tw_u64(TsWire *w, uint64_t v)
{
    tw_u32(w, (uint32_t)(v >> 32));
    tw_u32(w, (uint32_t)v);
}

void tw_bytes(TsWire *w, const void *p, size_t n)
{
    assert_true(w->n + n <= sizeof(w->b));
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

void tw_str(TsWire *w, const char *s) { tw_bytes(w, s, strlen(s) + 1); }

void tw_text(TsWire *w, const char *s)
{
    tw_u8(w, 't');
    tw_u32(w, (uint32_t)strlen(s));
    tw_bytes(w, s, strlen(s));
}

void tw_relation(TsWire *w, uint32_t relid, const char *nspname, const char *relname, char replident, uint16_t ncols)
{
    tw_u8(w, 'R');
    tw_u32(w, relid);
    tw_str(w, nspname);
    tw_str(w, relname);
    tw_u8(w, (uint8_t)replident);
    tw_u16(w, ncols);
}

void tw_column(TsWire *w, uint8_t flags, const char *name, uint32_t type_oid, int32_t typmod)
{
    tw_u8(w, flags);
    tw_str(w, name);
    tw_u32(w, type_oid);
    tw_u32(w, (uint32_t)typmod);
}
