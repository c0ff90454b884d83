/*
 * fuzz_context.c — libFuzzer target for the context JSON any source user can
 * put into the WAL (walrev.context(), pg_logical_emit_message): parsed with
 * and without CONTEXT_TRUSTED, twice each (the parse must be deterministic:
 * verify re-derives the fields from the stored bytes), and every field that
 * comes out must keep the promises of context.h: no NUL, within its bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decoder/context.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_field(const StrBuf *b, size_t max)
{
    if (memchr(b->data ? b->data : "", '\0', b->len)) abort();
    if (max && b->len > max) abort();
}

static void same(const StrBuf *a, const StrBuf *b)
{
    if (a->len != b->len || (a->len && memcmp(a->data, b->data, a->len) != 0)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1); /* exactly sized: ASan sees any over-read */
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    /* Also with a key known, so the attested form's checks are reached (a
     * forged signature is the common case; it must only be a warning). */
    static uint8_t ipad[64], opad[64];
    memset(ipad, 0x36, sizeof ipad);
    memset(opad, 0x5c, sizeof opad);
    /* ... and strict mode's policy, so signatures and role bindings are checked too. */
    static ContextAppKey app_keys[1] = {{"app", {0}, {0}}};
    static char *actors[2] = {"user:*", "service:billing"};
    static const ContextRoleBinding roles[1] = {{"postgres", actors, 2}};
    memset(app_keys[0].ipad, 0x37, sizeof app_keys[0].ipad);
    memset(app_keys[0].opad, 0x5d, sizeof app_keys[0].opad);
    static const ContextStrict strict = {app_keys, 1, roles, 1};
    const ContextKey keys[2] = {{NULL, NULL, 0, NULL}, {ipad, opad, 1234, &strict}};
    for (unsigned round = 0; round < 4; round++) {
        unsigned flags = round & 1 ? CONTEXT_TRUSTED : 0;
        const ContextKey *key = &keys[round >> 1];
        ParsedContext a, b;
        StrBuf wa, wb;
        context_init(&a);
        context_init(&b);
        strbuf_init(&wa);
        strbuf_init(&wb);
        context_parse(&a, buf, size, flags, key, &wa);
        context_parse(&b, buf, size, flags, key, &wb);
        check_field(&a.actor_type, CONTEXT_ACTOR_TYPE_MAX);
        check_field(&a.actor_id, CONTEXT_ACTOR_ID_MAX);
        check_field(&a.actor_json, 0);
        check_field(&a.description, 0);
        check_field(&a.meta_json, 0);
        same(&a.actor_type, &b.actor_type);
        same(&a.actor_id, &b.actor_id);
        same(&a.actor_json, &b.actor_json);
        same(&a.description, &b.description);
        same(&a.meta_json, &b.meta_json);
        same(&a.verified_by, &b.verified_by);
        if (a.verified != b.verified || (a.verified && !a.strict_checked)) abort();
        same(&wa, &wb);
        if (a.suppress != b.suppress || a.attested != b.attested) abort();
        if (a.attested && !key->ipad) abort(); /* nothing is attested without a key */
        /* Only walrev may act as walrev. */
        if (!(flags & CONTEXT_TRUSTED) && a.has_actor_type &&
            strcmp(a.actor_type.data ? a.actor_type.data : "", CONTEXT_RESERVED_ACTOR_TYPE) == 0)
            abort();
        context_term(&a);
        context_term(&b);
        strbuf_free(&wa);
        strbuf_free(&wb);
    }
    free(buf);
    return 0;
}
