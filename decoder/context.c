/*
 * context.c — walrev.context() JSON with jansson. Tolerant by design: every
 * problem is reported as a warning line and the valid parts are kept.
 */
#include "decoder/context.h"

#include "common/textsafe.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void context_init(ParsedContext *c)
{
    memset(c, 0, sizeof(*c));
    strbuf_init(&c->actor_type);
    strbuf_init(&c->actor_id);
    strbuf_init(&c->actor_json);
    strbuf_init(&c->description);
    strbuf_init(&c->meta_json);
    strbuf_init(&c->session_user);
    strbuf_init(&c->current_user);
    strbuf_init(&c->application_name);
    strbuf_init(&c->verified_by);
}

void context_term(ParsedContext *c)
{
    strbuf_free(&c->actor_type);
    strbuf_free(&c->actor_id);
    strbuf_free(&c->actor_json);
    strbuf_free(&c->description);
    strbuf_free(&c->meta_json);
    strbuf_free(&c->session_user);
    strbuf_free(&c->current_user);
    strbuf_free(&c->application_name);
    strbuf_free(&c->verified_by);
}

static void reset(ParsedContext *c)
{
    strbuf_reset(&c->actor_type);
    strbuf_reset(&c->actor_id);
    strbuf_reset(&c->actor_json);
    strbuf_reset(&c->description);
    strbuf_reset(&c->meta_json);
    c->has_actor_type = c->has_actor_id = c->has_actor_json = c->has_description = c->has_meta = false;
    c->suppress = false;
    strbuf_reset(&c->session_user);
    strbuf_reset(&c->current_user);
    strbuf_reset(&c->application_name);
    c->attested = c->has_current_user = false;
    strbuf_reset(&c->verified_by);
    c->strict_checked = c->verified = c->has_signature = false;
}

static void dump_into(json_t *v, StrBuf *out)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (s) {
        strbuf_append_str(out, s);
        free(s);
    }
}

/*
 * jsonb refuses \u0000 anywhere; jansson keeps it (JSON_ALLOW_NUL, so that
 * a string with one is not cut short). Replace NUL in every string value in
 * place; keys with NUL jansson has already refused. Returns true if any was.
 */
static bool json_replace_nul(json_t *v)
{
    bool changed = false;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (strlen(s) == len) return false;
        StrBuf b;
        strbuf_init(&b);
        text_sanitize(&b, s, len, SIZE_MAX);
        json_string_setn_nocheck(v, b.data, b.len);
        strbuf_free(&b);
        return true;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m) changed |= json_replace_nul(m);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m) changed |= json_replace_nul(m);
    }
    return changed;
}

/* Copy a parsed string field into out, NUL-free and within max bytes; warn on change. */
static void bounded_text(StrBuf *out, const char *field, size_t max, StrBuf *warnings)
{
    StrBuf tmp;
    strbuf_init(&tmp);
    strbuf_append(&tmp, out->data, out->len);
    strbuf_reset(out);
    unsigned changed = text_sanitize(out, tmp.data, tmp.len, max);
    if (changed & TEXT_HAD_NUL) strbuf_appendf(warnings, "context: NUL characters in %s replaced by U+FFFD\n", field);
    if (changed & TEXT_CUT)
        strbuf_appendf(warnings, "context: %s of %zu bytes cut to %zu bytes\n", field, tmp.len, out->len);
    strbuf_free(&tmp);
}

/* Scalars become their text; ids are often numbers in applications. */
static bool scalar_text(json_t *v, StrBuf *out)
{
    if (json_is_string(v)) {
        strbuf_append(out, json_string_value(v), json_string_length(v));
        return true;
    }
    if (json_is_integer(v) || json_is_real(v)) {
        dump_into(v, out);
        return true;
    }
    return false;
}

/*
 * actor.<field> of the actor object into *out and *has. A value of another
 * kind (kinds: what the message asks for) or an empty one (noun: what the
 * revision is recorded without) is a warning and stays absent: an empty type
 * or id could not be asked for (log --actor TYPE:ID).
 */
static void actor_part(json_t *actor, const char *field, const char *kinds, const char *noun, StrBuf *out, bool *has,
                       StrBuf *warnings)
{
    json_t *v = json_object_get(actor, field);
    if (!v || json_is_null(v)) return;
    if (!scalar_text(v, out))
        strbuf_appendf(warnings, "context: actor.%s must be %s\n", field, kinds);
    else if (out->len == 0)
        strbuf_appendf(warnings, "context: actor.%s is empty: recorded without %s\n", field, noun);
    else
        *has = true;
}

/* The caller's context object: actor, description, meta, suppress. */
static void parse_root(ParsedContext *c, json_t *root, StrBuf *warnings, json_t **signature)
{
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        if (strcmp(k, "actor") == 0) {
            if (json_is_object(v)) {
                if (json_replace_nul(v))
                    strbuf_append_str(warnings, "context: NUL characters in actor replaced by U+FFFD\n");
                actor_part(v, "type", "a string", "a type", &c->actor_type, &c->has_actor_type, warnings);
                actor_part(v, "id", "a string or number", "an id", &c->actor_id, &c->has_actor_id, warnings);
                dump_into(v, &c->actor_json);
                c->has_actor_json = true;
            } else if (json_is_string(v) || json_is_integer(v)) {
                /* "actor": "42" is a common shorthand: an id without a type. */
                scalar_text(v, &c->actor_id);
                c->has_actor_id = true;
                strbuf_append_str(warnings, "context: actor should be an object {\"type\",\"id\"}\n");
            } else if (!json_is_null(v)) {
                strbuf_append_str(warnings, "context: actor must be an object\n");
            }
        } else if (strcmp(k, "description") == 0) {
            if (json_is_string(v)) {
                strbuf_append(&c->description, json_string_value(v), json_string_length(v));
                c->has_description = true;
            } else if (!json_is_null(v)) {
                strbuf_append_str(warnings, "context: description must be a string\n");
            }
        } else if (strcmp(k, "meta") == 0) {
            if (json_replace_nul(v))
                strbuf_append_str(warnings, "context: NUL characters in meta replaced by U+FFFD\n");
            dump_into(v, &c->meta_json);
            c->has_meta = true;
        } else if (strcmp(k, "signature") == 0) {
            json_decref(*signature);
            *signature = json_incref(v); /* checked once the actor is known (check_strict) */
        } else if (strcmp(k, "suppress") == 0) {
            if (json_is_boolean(v))
                c->suppress = json_is_true(v);
            else
                strbuf_append_str(warnings, "context: suppress must be a boolean\n");
        } else {
            strbuf_append_str(warnings, "context: unknown field \"");
            text_sanitize(warnings, k, strlen(k), 64); /* whole characters only */
            strbuf_append_str(warnings, "\" ignored\n");
        }
    }
}

static void append_len_prefixed(StrBuf *m, const char *s, size_t len)
{
    strbuf_appendf(m, "%zu:", len);
    strbuf_append(m, s, len);
}

static bool hex_equal(const char *hex, const uint8_t *sum, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    if (!hex || strlen(hex) != 2 * n) return false;
    for (size_t i = 0; i < n; i++)
        if (hex[2 * i] != digits[sum[i] >> 4] || hex[2 * i + 1] != digits[sum[i] & 15]) return false;
    return true;
}

void context_key_pads(const uint8_t *key, size_t len, uint8_t ipad[64], uint8_t opad[64])
{
    memset(ipad, 0x36, 64);
    memset(opad, 0x5c, 64);
    for (size_t i = 0; i < len && i < 64; i++) {
        ipad[i] ^= key[i];
        opad[i] ^= key[i];
    }
}

/* HMAC-SHA256 from the key's pads: SHA-256(opad || SHA-256(ipad || m)). */
static void hmac_from_pads(const uint8_t *ipad, const uint8_t *opad, const StrBuf *m, uint8_t out[32])
{
    uint8_t inner[32];
    unsigned int n = 0;
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    if (!x) abort();
    EVP_DigestInit_ex(x, EVP_sha256(), NULL);
    EVP_DigestUpdate(x, ipad, 64);
    EVP_DigestUpdate(x, m->data, m->len);
    EVP_DigestFinal_ex(x, inner, &n);
    EVP_DigestInit_ex(x, EVP_sha256(), NULL);
    EVP_DigestUpdate(x, opad, 64);
    EVP_DigestUpdate(x, inner, sizeof(inner));
    EVP_DigestFinal_ex(x, out, &n);
    EVP_MD_CTX_free(x);
}

/*
 * The server's attestation around a context (context.h): checked against
 * the key and the transaction, so only walrev.context() on the source can
 * make one; a copy replayed into another transaction does not verify.
 */
static void read_attestation(ParsedContext *c, json_t *att, const char *inner, size_t inner_len, unsigned flags,
                             const ContextKey *key, StrBuf *warnings)
{
    json_t *su = json_object_get(att, "session_user"), *cu = json_object_get(att, "current_user"),
           *app = json_object_get(att, "application_name"), *xid = json_object_get(att, "xid"),
           *sig = json_object_get(att, "sig");
    if (!json_is_string(su) || !(json_is_string(cu) || json_is_null(cu) || !cu) || !json_is_string(app) ||
        !json_is_string(xid) || !json_is_string(sig)) {
        strbuf_append_str(warnings, "context: malformed attestation: server identity not recorded\n");
        return;
    }
    bool ok = (flags & CONTEXT_ATTEST_UNCHECKED) != 0;
    if (!ok && key && key->ipad && key->opad) {
        char want_xid[16];
        snprintf(want_xid, sizeof(want_xid), "%u", key->xid);
        StrBuf m;
        strbuf_init(&m);
        append_len_prefixed(&m, json_string_value(su), json_string_length(su));
        append_len_prefixed(&m, json_is_string(cu) ? json_string_value(cu) : "",
                            json_is_string(cu) ? json_string_length(cu) : 0);
        append_len_prefixed(&m, json_string_value(app), json_string_length(app));
        append_len_prefixed(&m, json_string_value(xid), json_string_length(xid));
        append_len_prefixed(&m, inner, inner_len);
        uint8_t sum[32];
        hmac_from_pads(key->ipad, key->opad, &m, sum);
        strbuf_free(&m);
        ok = hex_equal(json_string_value(sig), sum, sizeof(sum)) && strcmp(json_string_value(xid), want_xid) == 0;
    }
    if (!ok) {
        strbuf_append_str(warnings, "context: attestation does not verify (not made by walrev.context() in this "
                                    "transaction): server identity not recorded\n");
        return;
    }
    c->attested = true;
    text_sanitize(&c->session_user, json_string_value(su), json_string_length(su), SIZE_MAX);
    if (json_is_string(cu)) {
        text_sanitize(&c->current_user, json_string_value(cu), json_string_length(cu), SIZE_MAX);
        c->has_current_user = true;
    }
    text_sanitize(&c->application_name, json_string_value(app), json_string_length(app), SIZE_MAX);
}

/* A StrBuf's text; "" when nothing was ever appended (data NULL). */
static const char *sb_text(const StrBuf *b) { return b->data ? b->data : ""; }

/* Whether actor TYPE:ID is among a binding's "TYPE:ID" / "TYPE:*" patterns. */
static bool binding_allows(const ContextRoleBinding *b, const ParsedContext *c)
{
    for (int i = 0; i < b->nactors; i++) {
        const char *pat = b->actors[i], *colon = strchr(pat, ':');
        if (!colon || (size_t)(colon - pat) != c->actor_type.len ||
            memcmp(pat, sb_text(&c->actor_type), c->actor_type.len) != 0)
            continue;
        if (strcmp(colon + 1, "*") == 0) return true;
        if (c->has_actor_id && strcmp(colon + 1, sb_text(&c->actor_id)) == 0) return true;
    }
    return false;
}

static const ContextRoleBinding *find_binding(const ContextStrict *s, const char *role)
{
    for (int i = 0; i < s->nroles; i++)
        if (strcmp(s->roles[i].role, role) == 0) return &s->roles[i];
    return NULL;
}

static void append_actor(StrBuf *w, const ParsedContext *c)
{
    strbuf_append_str(w, c->has_actor_type ? sb_text(&c->actor_type) : "");
    strbuf_append_char(w, ':');
    strbuf_append_str(w, c->has_actor_id ? sb_text(&c->actor_id) : "");
}

static void set_verified(ParsedContext *c, const char *how, const char *name)
{
    c->verified = true;
    strbuf_append_str(&c->verified_by, how);
    if (name) text_sanitize(&c->verified_by, name, strlen(name), SIZE_MAX);
}

/*
 * Strict mode (context.h): after the actor is parsed and bounded. The form
 * of a signature is checked always (has_signature, for verify), its HMAC and
 * the role bindings only with a policy. Every actor claim that does not
 * verify is a warning; the revision is recorded all the same.
 */
static void check_strict(ParsedContext *c, json_t *sig, unsigned flags, const ContextKey *key, StrBuf *warnings)
{
    json_t *app = NULL, *xid = NULL, *hmac = NULL;
    if (sig) {
        app = json_object_get(sig, "app");
        xid = json_object_get(sig, "xid");
        hmac = json_object_get(sig, "hmac");
        if (json_is_object(sig) && json_is_string(app) && json_string_length(app) > 0 && json_is_string(xid) &&
            json_is_string(hmac))
            c->has_signature = true;
        else
            strbuf_append_str(warnings, "context: malformed signature (needs app, xid and hmac strings): ignored\n");
    }
    const ContextStrict *s = key ? key->strict : NULL;
    if (!s) return;
    c->strict_checked = true;
    if (flags & CONTEXT_TRUSTED) {
        set_verified(c, "walrev", NULL);
        return;
    }
    if (c->has_signature) {
        const char *name = json_string_value(app);
        const ContextAppKey *k = NULL;
        for (int i = 0; i < s->nkeys && !k; i++)
            if (strcmp(s->keys[i].name, name) == 0) k = &s->keys[i];
        if (!k) {
            strbuf_append_str(warnings, "context: signed by unknown application \"");
            text_sanitize(warnings, name, json_string_length(app), 64);
            strbuf_append_str(warnings, "\" (no [actors] key for it): actor not verified\n");
            return;
        }
        char want_xid[16];
        snprintf(want_xid, sizeof(want_xid), "%u", key->xid);
        StrBuf m;
        strbuf_init(&m);
        append_len_prefixed(&m, name, json_string_length(app));
        append_len_prefixed(&m, json_string_value(xid), json_string_length(xid));
        append_len_prefixed(&m, c->has_actor_type ? sb_text(&c->actor_type) : "",
                            c->has_actor_type ? c->actor_type.len : 0);
        append_len_prefixed(&m, c->has_actor_id ? sb_text(&c->actor_id) : "", c->has_actor_id ? c->actor_id.len : 0);
        append_len_prefixed(&m, c->has_description ? sb_text(&c->description) : "",
                            c->has_description ? c->description.len : 0);
        uint8_t sum[32];
        hmac_from_pads(k->ipad, k->opad, &m, sum);
        strbuf_free(&m);
        if (hex_equal(json_string_value(hmac), sum, sizeof(sum)) && strcmp(json_string_value(xid), want_xid) == 0) {
            set_verified(c, "key:", k->name);
        } else {
            strbuf_append_str(warnings, "context: signature of application \"");
            text_sanitize(warnings, name, json_string_length(app), 64);
            strbuf_append_str(warnings, "\" does not verify (another key, an altered context or another "
                                        "transaction): actor not verified\n");
        }
        return;
    }
    if (!c->has_actor_type && !c->has_actor_id) return; /* no claim: unverified, nothing to warn of */
    if (!c->attested) {
        strbuf_append_str(warnings, "context: actor ");
        append_actor(warnings, c);
        strbuf_append_str(warnings, " not verified: neither signed with an application key nor attested by "
                                    "walrev.context()\n");
        return;
    }
    const char *roles[2] = {sb_text(&c->session_user), c->has_current_user ? sb_text(&c->current_user) : NULL};
    for (int i = 0; i < 2; i++) {
        const ContextRoleBinding *b = roles[i] ? find_binding(s, roles[i]) : NULL;
        if (b && c->has_actor_type && binding_allows(b, c)) {
            set_verified(c, "role:", roles[i]);
            return;
        }
    }
    strbuf_append_str(warnings, "context: actor ");
    append_actor(warnings, c);
    strbuf_append_str(warnings, " is not bound to role ");
    strbuf_append_str(warnings, sb_text(&c->session_user));
    if (c->has_current_user && strcmp(sb_text(&c->current_user), sb_text(&c->session_user)) != 0) {
        strbuf_append_str(warnings, " or ");
        strbuf_append_str(warnings, sb_text(&c->current_user));
    }
    strbuf_append_str(warnings, " ([actors] role.ROLE): actor not verified\n");
}

/* Load text as a JSON object; NULL with a warning otherwise. */
static json_t *load_object(const char *json, size_t len, StrBuf *warnings)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root) {
        strbuf_appendf(warnings, "context: invalid JSON at line %d column %d: %s\n", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        strbuf_append_str(warnings, "context: expected a JSON object\n");
        json_decref(root);
        return NULL;
    }
    return root;
}

void context_parse(ParsedContext *c, const char *json, size_t len, unsigned flags, const ContextKey *key,
                   StrBuf *warnings)
{
    reset(c);
    if (len > CONTEXT_MAX_BYTES) {
        strbuf_appendf(warnings,
                       "context: message of %zu bytes exceeds %zu bytes: not applied (its raw bytes are "
                       "recorded in part, with their hash)\n",
                       len, CONTEXT_MAX_BYTES);
        return;
    }
    if (!text_is_safe(json, len)) {
        strbuf_appendf(warnings,
                       "context: message of %zu bytes is not valid UTF-8 text (or holds NUL bytes): not "
                       "applied (recorded sanitised, with the hash of its bytes)\n",
                       len);
        return;
    }
    json_t *root = load_object(json, len, warnings);
    if (!root) return;
    json_t *sig = NULL;
    json_t *att = json_object_get(root, "walrev_attest");
    json_t *inner = json_object_get(root, "context");
    if (json_is_object(att) && json_is_string(inner) && json_object_size(root) == 2) {
        const char *text = json_string_value(inner);
        size_t text_len = json_string_length(inner);
        read_attestation(c, att, text, text_len, flags, key, warnings);
        json_t *ctx = text_is_safe(text, text_len) ? load_object(text, text_len, warnings) : NULL;
        if (!text_is_safe(text, text_len)) strbuf_append_str(warnings, "context: NUL in the context text\n");
        if (ctx) parse_root(c, ctx, warnings, &sig);
        json_decref(ctx);
    } else {
        parse_root(c, root, warnings, &sig);
    }
    json_decref(root);
    if (c->has_actor_type) bounded_text(&c->actor_type, "actor.type", CONTEXT_ACTOR_TYPE_MAX, warnings);
    if (c->has_actor_id) bounded_text(&c->actor_id, "actor.id", CONTEXT_ACTOR_ID_MAX, warnings);
    if (c->has_description) bounded_text(&c->description, "description", SIZE_MAX, warnings);
    if (c->has_actor_type && !(flags & CONTEXT_TRUSTED) &&
        strcmp(c->actor_type.data, CONTEXT_RESERVED_ACTOR_TYPE) == 0) {
        strbuf_append_str(warnings, "context: actor type \"" CONTEXT_RESERVED_ACTOR_TYPE
                                    "\" is reserved for walrev itself; actor not recorded\n");
        strbuf_reset(&c->actor_type);
        strbuf_reset(&c->actor_id);
        strbuf_reset(&c->actor_json);
        c->has_actor_type = c->has_actor_id = c->has_actor_json = false;
    }
    check_strict(c, sig, flags, key, warnings);
    json_decref(sig);
}

void context_strict_describe(const ContextStrict *strict, StrBuf *out)
{
    strbuf_append_str(out, "strict mode ([actors]): on\n  application keys:");
    for (int i = 0; i < strict->nkeys; i++) strbuf_appendf(out, "%s %s", i ? "," : "", strict->keys[i].name);
    strbuf_append_str(out, strict->nkeys ? "\n" : " (none)\n");
    strbuf_append_str(out, "  role bindings:");
    strbuf_append_str(out, strict->nroles ? "\n" : " (none)\n");
    for (int i = 0; i < strict->nroles; i++) {
        strbuf_appendf(out, "    %s:", strict->roles[i].role);
        for (int j = 0; j < strict->roles[i].nactors; j++)
            strbuf_appendf(out, "%s %s", j ? "," : "", strict->roles[i].actors[j]);
        strbuf_append_char(out, '\n');
    }
}
