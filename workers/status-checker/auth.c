#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What an Authorization header must equal, e.g. "Bearer t0k3n" or
 * "Basic YWxpY2U6cw==": one string per credential, compared whole. */
struct auth {
    char **expected;
    size_t count;
};

void auth_destroy(auth *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->count; i++) {
        OPENSSL_cleanse(a->expected[i], strlen(a->expected[i]));
        free(a->expected[i]);
    }
    free(a->expected);
    free(a);
}

/* The header value a credential line stands for; a new string owned by the
 * caller, or NULL when out of memory. */
static char *expected_of(const char *line)
{
    size_t len = strlen(line);
    char *value;

    if (strchr(line, ':') == NULL) {
        value = malloc(len + sizeof("Bearer "));
        if (value != NULL)
            snprintf(value, len + sizeof("Bearer "), "Bearer %s", line);
        return value;
    }
    /* base64 takes 4 bytes per 3, plus the NUL EVP_EncodeBlock writes. */
    value = malloc(sizeof("Basic ") + (len + 2) / 3 * 4 + 1);
    if (value != NULL) {
        memcpy(value, "Basic ", 6);
        EVP_EncodeBlock((unsigned char *)value + 6, (const unsigned char *)line, (int)len);
    }
    return value;
}

/* Checks one line (without its line end); returns a static reason or NULL. */
static const char *line_problem(const char *line)
{
    const char *colon = strchr(line, ':');

    for (const char *p = line; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return "holds a control character";
    }
    if (colon != NULL && (colon == line || colon[1] == '\0'))
        return "has a user:password line with an empty user or password";
    return NULL;
}

static dx_status add_line(auth *a, const char *line)
{
    char **grown = realloc(a->expected, (a->count + 1) * sizeof(*grown));

    if (grown == NULL)
        return DX_ERR_NOMEM;
    a->expected = grown;
    a->expected[a->count] = expected_of(line);
    if (a->expected[a->count] == NULL)
        return DX_ERR_NOMEM;
    a->count++;
    return DX_OK;
}

dx_status auth_load(auth **out, const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "r");
    auth *a = calloc(1, sizeof(*a));
    char line[AUTH_LINE_MAX + 2];
    const char *problem = NULL;
    dx_status s = DX_OK;
    unsigned lineno = 0;

    if (f == NULL || a == NULL) {
        snprintf(err, err_len, "STATUS_AUTH_FILE cannot be read");
        s = DX_ERR_INVALID;
    }
    while (s == DX_OK && fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);

        lineno++;
        if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
            problem = "has a line over 1024 bytes";
            break;
        }
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        if ((problem = line_problem(line)) != NULL)
            break;
        s = add_line(a, line);
    }
    OPENSSL_cleanse(line, sizeof(line));
    if (s == DX_OK && problem != NULL) {
        snprintf(err, err_len, "STATUS_AUTH_FILE %s (line %u)", problem, lineno);
        s = DX_ERR_INVALID;
    } else if (s == DX_OK && a->count == 0) {
        snprintf(err, err_len, "STATUS_AUTH_FILE holds no token nor user:password line");
        s = DX_ERR_INVALID;
    } else if (s == DX_ERR_NOMEM) {
        snprintf(err, err_len, "STATUS_AUTH_FILE: out of memory");
    }
    if (f != NULL)
        fclose(f);
    if (s != DX_OK) {
        auth_destroy(a);
        return s;
    }
    *out = a;
    return DX_OK;
}

/*
 * Compares a header with one expected value in time that depends on their
 * lengths only: CRYPTO_memcmp over the expected value's length, the length
 * difference folded in.
 */
static int matches(const char *header, size_t header_len, const char *expected)
{
    size_t len = strlen(expected);
    int differ = header_len != len;

    /* Reads at most len bytes of header: pads with expected when shorter. */
    differ |= CRYPTO_memcmp(header_len >= len ? header : expected, expected, len) != 0;
    return !differ;
}

int auth_check(const auth *a, const char *authorization)
{
    int ok = 0;
    size_t len;

    if (a == NULL)
        return 1;
    if (authorization == NULL)
        return 0;
    len = strlen(authorization);
    /* Every credential is compared, whichever matches. */
    for (size_t i = 0; i < a->count; i++)
        ok |= matches(authorization, len, a->expected[i]);
    return ok;
}
