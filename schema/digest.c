/*
 * digest.c — keyed digests of values and rows (digest.h). HMAC over SHA-256
 * so that a digest of a low-entropy value (a PIN, a flag) cannot be
 * reversed by trying every value without the store's secret.
 */
/* SHA-256 through OpenSSL's low-level API, as checksum.c does (must precede
 * every OpenSSL header): the one-shot HMAC() and EVP digests fetched the
 * algorithm by name on every call (a hash-table lookup, a context malloc),
 * ~12% of the worker's CPU where every source transaction inserts a row of
 * a table without a key (pgbench_history; issue 16). Same bytes. */
#define OPENSSL_API_COMPAT 10101
#include "schema/digest.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void digest_key_random(DigestKey *k)
{
    size_t got = 0;
    while (got < sizeof(k->key)) {
        ssize_t n = getrandom(k->key + got, sizeof(k->key) - got, 0);
        if (n <= 0) {
            fprintf(stderr, "walrev: getrandom failed\n");
            abort();
        }
        got += (size_t)n;
    }
}

/* HMAC-SHA-256 (RFC 2104) of the 32-byte inner digest under the 32-byte key:
 * the key zero-padded to the 64-byte block, XORed with 0x36 (inner) and 0x5c
 * (outer). */
static void hmac(const DigestKey *k, const uint8_t *data, size_t len, uint8_t out[DIGEST_LEN])
{
    uint8_t ipad[64], opad[64], inner[DIGEST_LEN];
    for (int i = 0; i < 64; i++) {
        uint8_t b = i < DIGEST_KEY_LEN ? k->key[i] : 0;
        ipad[i] = b ^ 0x36;
        opad[i] = b ^ 0x5c;
    }
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, ipad, sizeof(ipad));
    SHA256_Update(&c, data, len);
    SHA256_Final(inner, &c);
    SHA256_Init(&c);
    SHA256_Update(&c, opad, sizeof(opad));
    SHA256_Update(&c, inner, sizeof(inner));
    SHA256_Final(out, &c);
}

void digest_value(const DigestKey *k, const Value *v, uint8_t out[DIGEST_LEN])
{
    /* Tag byte first, so NULL and the empty string differ. */
    SHA256_CTX c;
    uint8_t inner[DIGEST_LEN];
    uint8_t tag = v->data ? 1 : 0;
    SHA256_Init(&c);
    SHA256_Update(&c, &tag, 1);
    if (v->data) SHA256_Update(&c, v->data, v->len);
    SHA256_Final(inner, &c);
    hmac(k, inner, sizeof(inner), out);
}

void digest_row(const DigestKey *k, const RelationVersion *rv, const Value *vals, const uint8_t *unknown,
                uint8_t out[DIGEST_LEN])
{
    SHA256_CTX c;
    uint8_t inner[DIGEST_LEN];
    SHA256_Init(&c);
    for (uint16_t i = 0; i < rv->ncols; i++) {
        if (rv->cols[i].track != TRACK_FULL || !vals[i].data || (unknown && unknown[i])) continue;
        /* name NUL, value length, value: unambiguous */
        uint8_t hdr[4];
        uint32_t len = (uint32_t)vals[i].len;
        hdr[0] = (uint8_t)(len >> 24);
        hdr[1] = (uint8_t)(len >> 16);
        hdr[2] = (uint8_t)(len >> 8);
        hdr[3] = (uint8_t)len;
        SHA256_Update(&c, rv->cols[i].name, strlen(rv->cols[i].name) + 1);
        SHA256_Update(&c, hdr, sizeof(hdr));
        SHA256_Update(&c, vals[i].data, vals[i].len);
    }
    SHA256_Final(inner, &c);
    hmac(k, inner, sizeof(inner), out);
}

bool digest_rel_has_key(const RelationVersion *rv)
{
    for (uint16_t i = 0; i < rv->ncols; i++)
        if (rv->cols[i].is_key) return true;
    return false;
}
