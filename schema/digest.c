/*
 * digest.c — keyed digests of values and rows (digest.h). HMAC over SHA-256
 * so that a digest of a low-entropy value (a PIN, a flag) cannot be
 * reversed by trying every value without the store's secret.
 */
#include "schema/digest.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
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

static void hmac(const DigestKey *k, const uint8_t *data, size_t len, uint8_t out[DIGEST_LEN])
{
    unsigned int n = DIGEST_LEN;
    if (!HMAC(EVP_sha256(), k->key, (int)sizeof(k->key), data, len, out, &n)) {
        fprintf(stderr, "walrev: HMAC-SHA-256 failed\n");
        abort();
    }
}

void digest_value(const DigestKey *k, const Value *v, uint8_t out[DIGEST_LEN])
{
    /* Tag byte first, so NULL and the empty string differ. */
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    uint8_t inner[DIGEST_LEN];
    unsigned int n = 0;
    uint8_t tag = v->data ? 1 : 0;
    if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL)) abort();
    EVP_DigestUpdate(c, &tag, 1);
    if (v->data) EVP_DigestUpdate(c, v->data, v->len);
    EVP_DigestFinal_ex(c, inner, &n);
    EVP_MD_CTX_free(c);
    hmac(k, inner, sizeof(inner), out);
}

void digest_row(const DigestKey *k, const RelationVersion *rv, const Value *vals, const uint8_t *unknown,
                uint8_t out[DIGEST_LEN])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    uint8_t inner[DIGEST_LEN];
    unsigned int n = 0;
    if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL)) abort();
    for (uint16_t i = 0; i < rv->ncols; i++) {
        if (rv->cols[i].track != TRACK_FULL || !vals[i].data || (unknown && unknown[i])) continue;
        /* name NUL, value length, value: unambiguous */
        uint8_t hdr[4];
        uint32_t len = (uint32_t)vals[i].len;
        hdr[0] = (uint8_t)(len >> 24);
        hdr[1] = (uint8_t)(len >> 16);
        hdr[2] = (uint8_t)(len >> 8);
        hdr[3] = (uint8_t)len;
        EVP_DigestUpdate(c, rv->cols[i].name, strlen(rv->cols[i].name) + 1);
        EVP_DigestUpdate(c, hdr, sizeof(hdr));
        EVP_DigestUpdate(c, vals[i].data, vals[i].len);
    }
    EVP_DigestFinal_ex(c, inner, &n);
    EVP_MD_CTX_free(c);
    hmac(k, inner, sizeof(inner), out);
}

bool digest_rel_has_key(const RelationVersion *rv)
{
    for (uint16_t i = 0; i < rv->ncols; i++)
        if (rv->cols[i].is_key) return true;
    return false;
}
