/*
 * checksum.c — SHA-256 chain over a canonical, length-prefixed big-endian
 * encoding (docs/checksums.md). Two running digests (contexts, deltas) let a
 * revision be hashed while it streams, and let `walrev verify` recompute the
 * same bytes from the tables in (context_no) and (seq) order.
 */
/* SHA-256 through OpenSSL's low-level API (declared without deprecation at
 * this API level): the same digests as EVP's and the same assembly, but a
 * context is a plain struct, copied by assignment, with no provider dispatch
 * per call. Through EVP, the keyed value hashes of format 5 (two context
 * copies, each a free and a malloc, and two finals per value) were 44% of
 * the worker's CPU on a drain (issue 16). Must precede every OpenSSL header. */
#define OPENSSL_API_COMPAT 10101
#include "schema/checksum.h"

#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct RevisionHasher {
    SHA256_CTX *contexts;
    SHA256_CTX *deltas;
    SHA256_CTX *final;    /* the revision's own digest, built in revhash_finish */
    SHA256_CTX *value;    /* one value's digest; never shared with the three above */
    SHA256_CTX *relation; /* one relation version's digest */
    SHA256_CTX ctx[7];    /* what the pointers above and kin, kout point to */
    /* Keyed value hashes (format 5): HMAC-SHA-256 under the store's
     * digest_key, from contexts already fed with key^ipad and key^opad, so a
     * value costs two context copies more than a bare SHA-256. */
    bool keyed;
    SHA256_CTX *kin, *kout;
    /* Relation versions this revision covers; few (one per schema change). */
    struct RelEntry {
        uint32_t relid;
        int32_t version;
        uint8_t digest[WALREV_CHECKSUM_LEN];
    } * rels;
    size_t nrels, caprels;
};

static void update_u8(SHA256_CTX *c, uint8_t v) { SHA256_Update(c, &v, 1); }
static void update_u16(SHA256_CTX *c, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    SHA256_Update(c, b, 2);
}
static void update_u32(SHA256_CTX *c, uint32_t v)
{
    uint8_t b[4];
    wr_write_u32(b, v);
    SHA256_Update(c, b, 4);
}
static void update_u64(SHA256_CTX *c, uint64_t v)
{
    uint8_t b[8];
    wr_write_u64(b, v);
    SHA256_Update(c, b, 8);
}

static void digest_value(SHA256_CTX *scratch, const char *data, size_t len, uint8_t out[WALREV_CHECKSUM_LEN])
{
    SHA256_Init(scratch);
    SHA256_Update(scratch, data, len);
    SHA256_Final(out, scratch);
}

static void hmac_value(RevisionHasher *h, const char *data, size_t len, uint8_t out[WALREV_CHECKSUM_LEN])
{
    uint8_t inner[WALREV_CHECKSUM_LEN];
    *h->value = *h->kin;
    SHA256_Update(h->value, data, len);
    SHA256_Final(inner, h->value);
    *h->value = *h->kout;
    SHA256_Update(h->value, inner, sizeof(inner));
    SHA256_Final(out, h->value);
}

/* A value: tag 0 = NULL; tag 1 + its hash, HMAC under the store's key when keyed. */
static void update_hashed(RevisionHasher *h, SHA256_CTX *c, const char *data, size_t len, const uint8_t *precomputed,
                          bool keyed)
{
    if (!data && !precomputed) {
        update_u8(c, 0);
        return;
    }
    uint8_t sum[WALREV_CHECKSUM_LEN];
    if (precomputed)
        memcpy(sum, precomputed, sizeof(sum));
    else if (keyed)
        hmac_value(h, data, len, sum);
    else
        digest_value(h->value, data, len, sum);
    update_u8(c, 1);
    SHA256_Update(c, sum, sizeof(sum));
}

/* An attribute's value (keyed in format 5). */
static void update_attr_value(RevisionHasher *h, SHA256_CTX *c, const char *data, size_t len,
                              const uint8_t *precomputed)
{
    update_hashed(h, c, data, len, precomputed, h->keyed);
}

/* Any other value: always a bare SHA-256. */
static void update_value(RevisionHasher *h, SHA256_CTX *c, const char *data, size_t len, const uint8_t *precomputed)
{
    update_hashed(h, c, data, len, precomputed, false);
}

static void update_str(RevisionHasher *h, SHA256_CTX *c, const char *s)
{
    update_value(h, c, s, s ? strlen(s) : 0, NULL);
}

RevisionHasher *revhash_create(void)
{
    RevisionHasher *h = xcalloc(1, sizeof(*h));
    SHA256_CTX **slots[] = {&h->contexts, &h->deltas, &h->final, &h->value, &h->relation, &h->kin, &h->kout};
    for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) *slots[i] = &h->ctx[i];
    return h;
}

void revhash_destroy(RevisionHasher *h)
{
    if (!h) return;
    free(h->rels);
    free(h);
}

void revhash_set_value_key(RevisionHasher *h, const uint8_t *key)
{
    h->keyed = key != NULL;
    if (!key) return;
    /* HMAC (RFC 2104) with a 32-byte key: the key zero-padded to SHA-256's
     * 64-byte block, XORed with 0x36 for the inner and 0x5c for the outer hash. */
    uint8_t ipad[64], opad[64];
    for (int i = 0; i < 64; i++) {
        uint8_t k = i < WALREV_VALUE_KEY_LEN ? key[i] : 0;
        ipad[i] = k ^ 0x36;
        opad[i] = k ^ 0x5c;
    }
    SHA256_Init(h->kin);
    SHA256_Update(h->kin, ipad, sizeof(ipad));
    SHA256_Init(h->kout);
    SHA256_Update(h->kout, opad, sizeof(opad));
}

void revhash_begin(RevisionHasher *h)
{
    SHA256_Init(h->contexts);
    SHA256_Init(h->deltas);
    h->nrels = 0;
}

static char track_code(TrackMode t) { return t == TRACK_HIDDEN ? 'h' : t == TRACK_UNTRACKED ? 'u' : 'f'; }

void revhash_relation_digest(const RelationVersion *rv, uint8_t out[WALREV_CHECKSUM_LEN])
{
    /* Rare (once per schema change): a hasher of its own for the values. */
    RevisionHasher *h = revhash_create();
    SHA256_CTX *c = h->relation;
    static const char tag[] = "walrev-relation-v1";
    SHA256_Init(c);
    SHA256_Update(c, tag, sizeof(tag) - 1);
    update_u32(c, rv->relid);
    update_u32(c, (uint32_t)rv->version);
    update_str(h, c, rv->nspname);
    update_str(h, c, rv->relname);
    update_u8(c, (uint8_t)rv->replident);
    update_u64(c, rv->valid_from);
    update_u64(c, (uint64_t)rv->revision_id);
    update_u16(c, rv->ncols);
    for (uint16_t i = 0; i < rv->ncols; i++) {
        const RelColumn *col = &rv->cols[i];
        update_u16(c, (uint16_t)col->col_id);
        update_str(h, c, col->name);
        update_u32(c, col->type_oid);
        update_u32(c, (uint32_t)col->typmod);
        update_str(h, c, col->type_name);
        update_u8(c, col->is_key ? 1 : 0);
        update_u8(c, (uint8_t)track_code(col->track));
    }
    update_u16(c, rv->ngen);
    for (uint16_t i = 0; i < rv->ngen; i++) {
        const GenColumn *g = &rv->gen[i];
        update_str(h, c, g->name);
        update_str(h, c, g->type_name);
        update_u16(c, (uint16_t)g->position);
        update_str(h, c, g->expr);
    }
    SHA256_Final(out, c);
    revhash_destroy(h);
}

void revhash_add_relation(RevisionHasher *h, uint32_t relid, int32_t version, const uint8_t digest[WALREV_CHECKSUM_LEN])
{
    if (h->nrels == h->caprels) {
        h->caprels = h->caprels ? 2 * h->caprels : 4;
        h->rels = xrealloc(h->rels, h->caprels * sizeof(*h->rels));
    }
    struct RelEntry *e = &h->rels[h->nrels++];
    e->relid = relid;
    e->version = version;
    memcpy(e->digest, digest, WALREV_CHECKSUM_LEN);
}

static int rel_cmp(const void *x, const void *y)
{
    const struct RelEntry *a = x, *b = y;
    if (a->relid != b->relid) return a->relid < b->relid ? -1 : 1;
    return a->version < b->version ? -1 : a->version > b->version;
}

void revhash_add_context(RevisionHasher *h, const RevisionContext *ctx)
{
    update_u16(h->contexts, (uint16_t)ctx->no);
    update_value(h, h->contexts, ctx->raw, ctx->raw_len, ctx->raw_sha256);
}

void revhash_add_delta(RevisionHasher *h, const ObjectDelta *d, const uint8_t *const *value_hashes)
{
    SHA256_CTX *c = h->deltas;
    update_u32(c, (uint32_t)d->seq);
    update_u32(c, d->relver->relid);
    update_u32(c, (uint32_t)d->relver->version);
    update_u8(c, (uint8_t)d->op);
    update_str(h, c, d->key);
    update_u16(c, (uint16_t)d->context_no);
    update_u8(c, d->old_unknown ? 1 : 0);
    update_u16(c, d->nattrs);
    for (uint16_t i = 0; i < d->nattrs; i++) {
        const AttributeDelta *a = &d->attrs[i];
        update_u16(c, (uint16_t)a->col_id);
        update_u8(c, a->flags);
        update_attr_value(h, c, a->old_value.data, a->old_value.len, value_hashes ? value_hashes[2 * i] : NULL);
        update_attr_value(h, c, a->new_value.data, a->new_value.len, value_hashes ? value_hashes[2 * i + 1] : NULL);
    }
}

void revhash_finish(RevisionHasher *h, Revision *rev)
{
    uint8_t ctx_sum[WALREV_CHECKSUM_LEN], delta_sum[WALREV_CHECKSUM_LEN];
    SHA256_Final(ctx_sum, h->contexts);
    SHA256_Final(delta_sum, h->deltas);

    SHA256_CTX *c = h->final;
    static const char tag[] = "walrev-revision-v1";
    SHA256_Init(c);
    SHA256_Update(c, tag, sizeof(tag) - 1);
    SHA256_Update(c, rev->parent_checksum, WALREV_CHECKSUM_LEN);
    update_u64(c, (uint64_t)rev->id);
    update_u32(c, rev->xid);
    update_u64(c, rev->commit_lsn);
    update_u64(c, rev->end_lsn);
    update_u64(c, (uint64_t)rev->commit_time);
    update_str(h, c, rev->origin);
    update_str(h, c, rev->gid);
    update_u64(c, (uint64_t)rev->n_insert);
    update_u64(c, (uint64_t)rev->n_update);
    update_u64(c, (uint64_t)rev->n_delete);
    update_u64(c, (uint64_t)rev->n_truncate);
    update_u64(c, (uint64_t)rev->n_snapshot);
    update_u64(c, (uint64_t)rev->n_suppressed);
    update_str(h, c, rev->warnings);
    SHA256_Update(c, ctx_sum, sizeof(ctx_sum));
    SHA256_Update(c, delta_sum, sizeof(delta_sum));
    /* Only a revision that covers relation versions has this part, so the
     * checksums of every other revision (and of stores older than it) stay
     * what they were. */
    if (h->nrels > 0) {
        qsort(h->rels, h->nrels, sizeof(*h->rels), rel_cmp);
        uint8_t rel_sum[WALREV_CHECKSUM_LEN];
        SHA256_CTX *r = h->relation;
        SHA256_Init(r);
        for (size_t i = 0; i < h->nrels; i++) {
            update_u32(r, h->rels[i].relid);
            update_u32(r, (uint32_t)h->rels[i].version);
            SHA256_Update(r, h->rels[i].digest, WALREV_CHECKSUM_LEN);
        }
        SHA256_Final(rel_sum, r);
        SHA256_Update(c, rel_sum, sizeof(rel_sum));
    }
    SHA256_Final(rev->checksum, c);
}

void revhash_value(const Value *v, uint8_t out[WALREV_CHECKSUM_LEN])
{
    SHA256((const unsigned char *)(v->data ? v->data : ""), v->data ? v->len : 0, out);
}

void revhash_attr_value(RevisionHasher *h, const Value *v, uint8_t out[WALREV_CHECKSUM_LEN])
{
    const char *data = v->data ? v->data : "";
    size_t len = v->data ? v->len : 0;
    if (h->keyed)
        hmac_value(h, data, len, out);
    else
        digest_value(h->value, data, len, out);
}

void checksum_to_hex(const uint8_t sum[WALREV_CHECKSUM_LEN], char out[2 * WALREV_CHECKSUM_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < WALREV_CHECKSUM_LEN; i++) {
        out[2 * i] = hex[sum[i] >> 4];
        out[2 * i + 1] = hex[sum[i] & 15];
    }
    out[2 * WALREV_CHECKSUM_LEN] = '\0';
}
