/*
 * util's SHA-256 and what is derived from it, in a file of its own so that a program which does not
 * hash (the offline `file-transformer clean`) links util.c without
 * libcrypto: its relocations alone cost about 2 ms of start-up.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct util_sha256 {
    EVP_MD_CTX *ctx;
};

util_sha256 *util_sha256_create(void)
{
    util_sha256 *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        util_sha256_destroy(h);
        return NULL;
    }
    return h;
}

void util_sha256_update(util_sha256 *h, const void *data, size_t len)
{
    EVP_DigestUpdate(h->ctx, data, len);
}

void util_sha256_hex(util_sha256 *h, char out[65])
{
    unsigned char digest[32];
    unsigned int len = 0;

    EVP_DigestFinal_ex(h->ctx, digest, &len);
    for (unsigned int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

void util_sha256_destroy(util_sha256 *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void util_trace_id_from(const char *seed, char out[33])
{
    util_sha256 *h = util_sha256_create();
    char hex[65];

    if (h == NULL) {
        util_trace_id(out);
        return;
    }
    util_sha256_update(h, seed, strlen(seed));
    util_sha256_hex(h, hex);
    util_sha256_destroy(h);
    memcpy(out, hex, 32);
    out[32] = '\0';
}
