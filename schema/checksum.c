/*
 * checksum.c — SHA-256 chain over a canonical, length-prefixed big-endian
 * encoding (docs/checksums.md). Two running digests (contexts, deltas) let a
 * revision be hashed while it streams, and let `walrev verify` recompute the
 * same bytes from the tables in (context_no) and (seq) order.
 */
#include "schema/checksum.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct RevisionHasher {
    EVP_MD_CTX *contexts;
    EVP_MD_CTX *deltas;
    EVP_MD_CTX *final;  /* the revision's own digest, built in revhash_finish */
    EVP_MD_CTX *value;  /* one value's digest; never shared with the three above */
    EVP_MD *md; /* fetched once; freed with the hasher */
    EVP_MD_CTX *relation; /* one relation version's digest */
    /* Keyed value hashes (format 5): HMAC-SHA-256 under the store's
     * digest_key, from contexts already fed with key^ipad and key^opad, so a
     * value costs two context copies more than a bare SHA-256. */
    bool keyed;
    EVP_MD_CTX *kin, *kout;
    /* Relation versions this revision covers; few (one per schema change). */
    struct RelEntry {
        uint32_t relid;
        int32_t version;
        uint8_t digest[WALREV_CHECKSUM_LEN];
    } *rels;
    size_t nrels, caprels;
};

static void update_u8(EVP_MD_CTX *c, uint8_t v) { EVP_DigestUpdate(c, &v, 1); }
static void update_u16(EVP_MD_CTX *c, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    EVP_DigestUpdate(c, b, 2);
}
static void update_u32(EVP_MD_CTX *c, uint32_t v)
{
    uint8_t b[4];
    wr_write_u32(b, v);
    EVP_DigestUpdate(c, b, 4);
}
static void update_u64(EVP_MD_CTX *c, uint64_t v)
{
    uint8_t b[8];
    wr_write_u64(b, v);
    EVP_DigestUpdate(c, b, 8);
}

static void digest_value(EVP_MD_CTX *scratch, const EVP_MD *md, const char *data, size_t len,
                         uint8_t out[WALREV_CHECKSUM_LEN])
{
    unsigned int n = 0;
    EVP_DigestInit_ex(scratch, md, NULL);
    EVP_DigestUpdate(scratch, data, len);
    EVP_DigestFinal_ex(scratch, out, &n);
}

static void hmac_value(RevisionHasher *h, const char *data, size_t len, uint8_t out[WALREV_CHECKSUM_LEN])
{
    uint8_t inner[WALREV_CHECKSUM_LEN];
    unsigned int n = 0;
    EVP_MD_CTX_copy_ex(h->value, h->kin);
    EVP_DigestUpdate(h->value, data, len);
    EVP_DigestFinal_ex(h->value, inner, &n);
    EVP_MD_CTX_copy_ex(h->value, h->kout);
    EVP_DigestUpdate(h->value, inner, sizeof(inner));
    EVP_DigestFinal_ex(h->value, out, &n);
}

/* An attribute's value: tag 0 = NULL; tag 1 + its hash (keyed in format 5). */
static void update_attr_value(RevisionHasher *h, EVP_MD_CTX *c, const char *data, size_t len,
                              const uint8_t *precomputed)
{
    if (!data && !precomputed) {
        update_u8(c, 0);
        return;
    }
    uint8_t sum[WALREV_CHECKSUM_LEN];
    if (precomputed)
        memcpy(sum, precomputed, sizeof(sum));
    else if (h->keyed)
        hmac_value(h, data, len, sum);
    else
        digest_value(h->value, h->md, data, len, sum);
    update_u8(c, 1);
    EVP_DigestUpdate(c, sum, sizeof(sum));
}

/* Tag 0 = NULL; tag 1 + SHA-256(value bytes). */
static void update_value(RevisionHasher *h, EVP_MD_CTX *c, const char *data, size_t len,
                         const uint8_t *precomputed)
{
    if (!data && !precomputed) {
        update_u8(c, 0);
        return;
    }
    uint8_t sum[WALREV_CHECKSUM_LEN];
    if (precomputed)
        memcpy(sum, precomputed, sizeof(sum));
    else
        digest_value(h->value, h->md, data, len, sum);
    update_u8(c, 1);
    EVP_DigestUpdate(c, sum, sizeof(sum));
}

static void update_str(RevisionHasher *h, EVP_MD_CTX *c, const char *s)
{
    update_value(h, c, s, s ? strlen(s) : 0, NULL);
}

RevisionHasher *revhash_create(void)
{
    RevisionHasher *h = xcalloc(1, sizeof(*h));
    /* An explicitly fetched algorithm: EVP_sha256() makes every init look the
     * implementation up again under a lock, which profiling showed to be
     * about a fifth of the worker's CPU. */
    h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!h->md) {
        fprintf(stderr, "walrev: SHA-256 is not available from OpenSSL\n");
        abort();
    }
    h->contexts = EVP_MD_CTX_new();
    h->deltas = EVP_MD_CTX_new();
    h->final = EVP_MD_CTX_new();
    h->value = EVP_MD_CTX_new();
    h->relation = EVP_MD_CTX_new();
    h->kin = EVP_MD_CTX_new();
    h->kout = EVP_MD_CTX_new();
    if (!h->contexts || !h->deltas || !h->final || !h->value || !h->relation || !h->kin || !h->kout) {
        fprintf(stderr, "walrev: out of memory creating SHA-256 contexts\n");
        abort();
    }
    return h;
}

void revhash_destroy(RevisionHasher *h)
{
    if (!h) return;
    EVP_MD_CTX_free(h->contexts);
    EVP_MD_CTX_free(h->deltas);
    EVP_MD_CTX_free(h->final);
    EVP_MD_CTX_free(h->value);
    EVP_MD_CTX_free(h->relation);
    EVP_MD_CTX_free(h->kin);
    EVP_MD_CTX_free(h->kout);
    EVP_MD_free(h->md);
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
    EVP_DigestInit_ex(h->kin, h->md, NULL);
    EVP_DigestUpdate(h->kin, ipad, sizeof(ipad));
    EVP_DigestInit_ex(h->kout, h->md, NULL);
    EVP_DigestUpdate(h->kout, opad, sizeof(opad));
}

void revhash_begin(RevisionHasher *h)
{
    EVP_DigestInit_ex(h->contexts, h->md, NULL);
    EVP_DigestInit_ex(h->deltas, h->md, NULL);
    h->nrels = 0;
}

static char track_code(TrackMode t) { return t == TRACK_HIDDEN ? 'h' : t == TRACK_UNTRACKED ? 'u' : 'f'; }

void revhash_relation_digest(const RelationVersion *rv, uint8_t out[WALREV_CHECKSUM_LEN])
{
    /* Rare (once per schema change): a hasher of its own for the values. */
    RevisionHasher *h = revhash_create();
    EVP_MD_CTX *c = h->relation;
    static const char tag[] = "walrev-relation-v1";
    unsigned int n = 0;
    EVP_DigestInit_ex(c, h->md, NULL);
    EVP_DigestUpdate(c, tag, sizeof(tag) - 1);
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
    EVP_DigestFinal_ex(c, out, &n);
    revhash_destroy(h);
}

void revhash_add_relation(RevisionHasher *h, uint32_t relid, int32_t version,
                          const uint8_t digest[WALREV_CHECKSUM_LEN])
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
    EVP_MD_CTX *c = h->deltas;
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
        update_attr_value(h, c, a->new_value.data, a->new_value.len,
                          value_hashes ? value_hashes[2 * i + 1] : NULL);
    }
}

void revhash_finish(RevisionHasher *h, Revision *rev)
{
    uint8_t ctx_sum[WALREV_CHECKSUM_LEN], delta_sum[WALREV_CHECKSUM_LEN];
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->contexts, ctx_sum, &n);
    EVP_DigestFinal_ex(h->deltas, delta_sum, &n);

    EVP_MD_CTX *c = h->final;
    static const char tag[] = "walrev-revision-v1";
    EVP_DigestInit_ex(c, h->md, NULL);
    EVP_DigestUpdate(c, tag, sizeof(tag) - 1);
    EVP_DigestUpdate(c, rev->parent_checksum, WALREV_CHECKSUM_LEN);
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
    EVP_DigestUpdate(c, ctx_sum, sizeof(ctx_sum));
    EVP_DigestUpdate(c, delta_sum, sizeof(delta_sum));
    /* Only a revision that covers relation versions has this part, so the
     * checksums of every other revision (and of stores older than it) stay
     * what they were. */
    if (h->nrels > 0) {
        qsort(h->rels, h->nrels, sizeof(*h->rels), rel_cmp);
        uint8_t rel_sum[WALREV_CHECKSUM_LEN];
        EVP_MD_CTX *r = h->relation;
        EVP_DigestInit_ex(r, h->md, NULL);
        for (size_t i = 0; i < h->nrels; i++) {
            update_u32(r, h->rels[i].relid);
            update_u32(r, (uint32_t)h->rels[i].version);
            EVP_DigestUpdate(r, h->rels[i].digest, WALREV_CHECKSUM_LEN);
        }
        EVP_DigestFinal_ex(r, rel_sum, &n);
        EVP_DigestUpdate(c, rel_sum, sizeof(rel_sum));
    }
    EVP_DigestFinal_ex(c, rev->checksum, &n);
}

void revhash_value(const Value *v, uint8_t out[WALREV_CHECKSUM_LEN])
{
    unsigned int n = 0;
    EVP_Digest(v->data ? v->data : "", v->data ? v->len : 0, out, &n, EVP_sha256(), NULL);
}

void revhash_attr_value(RevisionHasher *h, const Value *v, uint8_t out[WALREV_CHECKSUM_LEN])
{
    const char *data = v->data ? v->data : "";
    size_t len = v->data ? v->len : 0;
    if (h->keyed)
        hmac_value(h, data, len, out);
    else
        digest_value(h->value, h->md, data, len, out);
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
