/*
 * context.h — parsing of walrev.context() messages (internal to the
 * assembler). The JSON carries actor {type, id, ...}, description, meta and
 * suppress; anything else, or invalid JSON, becomes a warning on the revision,
 * never an error: a bad context must not stop history.
 */
#ifndef WALREV_DECODER_CONTEXT_H
#define WALREV_DECODER_CONTEXT_H

#include "common/common.h"

typedef struct {
    StrBuf actor_type;
    StrBuf actor_id;
    StrBuf actor_json;
    StrBuf description;
    StrBuf meta_json;
    bool has_actor_type, has_actor_id, has_actor_json, has_description, has_meta;
    bool suppress;
    /* What the server attested (walrev.context() on the source, SECURITY
     * DEFINER, signs them with a key only walrev's role can read): set only
     * when attested is true. current_user is absent when the session user
     * is not a member of the role the caller ran as. */
    bool attested;
    StrBuf session_user, current_user, application_name;
    bool has_current_user;
    /* Strict mode (docs/configuration.md#actors): whether the actor is
     * vouched for. strict_checked false when no policy was given (strict mode
     * off; verify). verified_by: "key:APP" (signed with APP's key), "role:R"
     * (the attested role R may act as it), "walrev" (walrev's own context). */
    bool strict_checked, verified;
    StrBuf verified_by;
    /* The context carries an application signature of the right form (its
     * HMAC unchecked): what walrev verify, which has no keys, can tell. */
    bool has_signature;
} ParsedContext;

/*
 * Strict mode's policy, from [actors] in the worker's configuration:
 * per-application keys (HMAC-SHA256 pads, 64 bytes each) and role bindings
 * (a role and the actors it may claim: "TYPE:ID", or "TYPE:*" for any id of
 * TYPE). Borrowed for the call; owned by the configuration.
 */
typedef struct {
    char *name;
    uint8_t ipad[64], opad[64];
} ContextAppKey;

typedef struct {
    char *role;
    char **actors; /* "TYPE:ID" or "TYPE:*" */
    int nactors;
} ContextRoleBinding;

typedef struct {
    const ContextAppKey *keys;
    int nkeys;
    const ContextRoleBinding *roles;
    int nroles;
} ContextStrict;

/*
 * The attestation key: HMAC-SHA256 with the key's inner and outer pads
 * (64 bytes each, as stored in <schema>.context_key on the source), and the
 * transaction the message must belong to. Borrowed for the call.
 */
typedef struct {
    const uint8_t *ipad, *opad; /* NULL: no key known, nothing can be attested */
    uint32_t xid;
    const ContextStrict *strict; /* NULL: strict mode off, actors not checked */
} ContextKey;

/*
 * Bounds (docs/history-store.md#contexts): actor type and id are indexed, so
 * they are cut to fit a B-tree entry whatever their content; a message over
 * CONTEXT_MAX_BYTES is not parsed at all (its raw bytes are still recorded
 * and hashed). Every cut or replacement is a warning.
 */
#define CONTEXT_MAX_BYTES ((size_t)1 << 20)
#define CONTEXT_ACTOR_TYPE_MAX 128
#define CONTEXT_ACTOR_ID_MAX 512
/* The actor type only walrev's own contexts (baseline, backfill) may use. */
#define CONTEXT_RESERVED_ACTOR_TYPE "walrev"

/* context_parse flags */
#define CONTEXT_TRUSTED 0x01 /* written by walrev itself: may use the reserved actor type */
/* Take a well-formed attestation as attested without the key (walrev verify,
 * which re-derives the columns and has no key; the worker checked it). */
#define CONTEXT_ATTEST_UNCHECKED 0x02

void context_init(ParsedContext *c);
void context_term(ParsedContext *c);
/*
 * Parse json into c (reset first); problems are appended to warnings (one
 * line each). Every field that comes out is valid UTF-8 without NUL (NUL
 * becomes U+FFFD, also inside actor/meta JSON, which jsonb would refuse) and
 * within the bounds above, so a sink can store it whatever was sent.
 * Deterministic: the same bytes and flags give the same fields (walrev
 * verify re-derives them from the stored raw message).
 */
void context_parse(ParsedContext *c, const char *json, size_t len, unsigned flags, const ContextKey *key,
                   StrBuf *warnings);

/*
 * The attested form walrev.context() emits (docs/history-store.md#who-acted):
 * {"walrev_attest": {"session_user", "current_user", "application_name",
 * "xid", "sig"}, "context": "<the caller's context text>"}, sig =
 * HMAC-SHA256(key, L(session_user) L(current_user) L(application_name) L(xid)
 * L(context)) in hex, L(x) = "<octet length>:" x, current_user "" when
 * absent. context_parse takes the inner context from it.
 *
 * An application's signature (strict mode) is a field of the caller's
 * context: "signature": {"app": APP, "xid": X, "hmac": H}, H =
 * HMAC-SHA256(APP's key, L(APP) L(X) L(actor.type) L(actor.id)
 * L(description)) in hex, absent fields "", X the transaction's 32-bit id
 * in decimal (txid_current() % 4294967296), as in the attestation.
 */

/* HMAC-SHA256 pads (64 bytes each) of a key of up to 64 bytes. */
void context_key_pads(const uint8_t *key, size_t len, uint8_t ipad[64], uint8_t opad[64]);

/* Strict mode's policy as `walrev rules` prints it, appended to out: the
 * applications that have a key (their names, never a key) and the role
 * bindings, one role a line. */
void context_strict_describe(const ContextStrict *strict, StrBuf *out);

#endif
