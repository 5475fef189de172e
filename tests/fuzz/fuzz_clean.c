/*
 * libFuzzer target for the cleaning engine: clean_run() on the fuzz input,
 * through in-memory callbacks, exactly as the worker streams a drop.
 *
 * The input is fed in reads of varying sizes (1 to 64 KiB, chosen from the
 * input's own bytes) so that records, characters and line ends cut across
 * read boundaries are exercised too.  Besides crashes and sanitizer reports,
 * it aborts when an invariant of clean.h breaks:
 *   - a result other than DX_OK or DX_ERR_INVALID (the callbacks never fail);
 *   - DX_ERR_INVALID without a one-line reason;
 *   - DX_OK with rows_in != rows_out + rows_rejected + rows_duplicate, or
 *     bytes_out / bytes_rejects / bytes_in not what went through the callbacks;
 *   - a clean output that is not valid UTF-8 or holds a NUL byte;
 *   - a second run over the same bytes, read in other sizes, giving another
 *     result or other output bytes (the output must be deterministic).
 * Profile dimension: the input is cleaned once more under one of a few client
 * profiles (aliases, date orders, separators, default currency), chosen by
 * its last byte, and the same invariants must hold.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clean.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct source {
    const uint8_t *data;
    size_t size;
    size_t pos;
    size_t step; /* the size of the next read, varied as we go */
} source;

typedef struct sink {
    uint8_t *data;
    size_t len;
    size_t cap;
} sink;

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_clean: %s\n", what);
    abort();
}

static dx_status read_source(void *ctx, void *buf, size_t cap, size_t *got)
{
    source *src = ctx;
    size_t n = src->size - src->pos;

    if (n > cap)
        n = cap;
    if (n > src->step)
        n = src->step;
    memcpy(buf, src->data + src->pos, n);
    /* The next read size comes from the bytes just read, so it varies with the input. */
    if (n > 0)
        src->step = 1 + (size_t)src->data[src->pos] * 257 % (64 * 1024);
    src->pos += n;
    *got = n;
    return DX_OK;
}

static dx_status write_sink(void *ctx, const void *buf, size_t len)
{
    sink *out = ctx;

    if (out->len + len > out->cap) {
        size_t cap = out->cap ? out->cap : 4096;

        while (cap < out->len + len)
            cap *= 2;
        out->data = realloc(out->data, cap);
        if (out->data == NULL)
            fail("out of memory");
        out->cap = cap;
    }
    if (len > 0)
        memcpy(out->data + out->len, buf, len);
    out->len += len;
    return DX_OK;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. */
static int valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

static dx_status clean_once(const uint8_t *data, size_t size, size_t first_step,
                            const profile *client, sink *out, sink *rejects, clean_counts *counts,
                            char *reason, size_t reason_len)
{
    source src = {data, size, 0, first_step};
    clean_io io = {read_source, &src, write_sink, out, write_sink, rejects};
    dx_status s = clean_run_profile(&io, client, counts, reason, reason_len);

    if (s == DX_OK && src.pos != size)
        fail("DX_OK before the end of the input");
    return s;
}

static const char *const profile_documents[] = {
    "{\"aliases\":{\"Prix unitaire TTC\":\"unit_price\",\"id\":\"order_id\",\"a\":\"quantity\"}}",
    "{\"date_order\":\"MDY\",\"default_currency\":\"USD\"}",
    "{\"date_order\":\"YMD\",\"decimal_separator\":\".\",\"thousands_separator\":\",\"}",
    "{\"decimal_separator\":\",\",\"thousands_separator\":\".\"}",
    "{\"thousands_separator\":\"none\",\"aliases\":{\"date\":\"order_time\",\"x\":\"order_date\"}}",
    "{\"thousands_separator\":\" \",\"decimal_separator\":\"auto\"}",
    "{\"decimal_separator\":\".\",\"thousands_separator\":\"'\",\"default_currency\":\"CHF\"}",
    "{\"aliases\":{\"\\u00e9\":\"unit_price\",\"ref\":\"order_id\"},\"date_order\":\"MDY\"}",
};
#define PROFILES (sizeof(profile_documents) / sizeof(profile_documents[0]))

/* The profiles, parsed once; a document the parser refuses is a bug here. */
static const profile *profile_for(uint8_t selector)
{
    static profile parsed[PROFILES];
    static int ready;
    char reason[256];

    if (!ready) {
        for (size_t i = 0; i < PROFILES; i++) {
            if (profile_parse(&parsed[i], profile_documents[i], strlen(profile_documents[i]),
                              reason, sizeof(reason)) != DX_OK) {
                fprintf(stderr, "fuzz_clean: profile %zu refused: %s\n", i, reason);
                abort();
            }
        }
        ready = 1;
    }
    return &parsed[selector % PROFILES];
}

/* Checks the invariants of one run's result. */
static void check_result(dx_status s, const char *reason, const clean_counts *counts,
                         const sink *out, const sink *rejects, size_t size)
{
    if (s != DX_OK && s != DX_ERR_INVALID)
        fail("clean_run returned neither DX_OK nor DX_ERR_INVALID with callbacks that never fail");
    if (s == DX_ERR_INVALID && (reason[0] == '\0' || strchr(reason, '\n') != NULL))
        fail("DX_ERR_INVALID without a one-line reason");
    if (s == DX_OK) {
        if (counts->rows_in != counts->rows_out + counts->rows_rejected + counts->rows_duplicate)
            fail("rows_in != rows_out + rows_rejected + rows_duplicate");
        if (counts->bytes_out != out->len)
            fail("bytes_out is not the size of the clean output");
        if (counts->bytes_rejects != rejects->len)
            fail("bytes_rejects is not the size of the rejects output");
        if (counts->bytes_in != size)
            fail("bytes_in is not the size of the input");
        if (!valid_utf8(out->data, out->len))
            fail("the clean output is not valid UTF-8");
        if (out->len > 0 && memchr(out->data, '\0', out->len) != NULL)
            fail("the clean output holds a NUL byte");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sink out = {0}, rejects = {0}, out2 = {0}, rejects2 = {0}, out3 = {0}, rejects3 = {0};
    clean_counts counts, counts2, counts3;
    char reason[512], reason2[512], reason3[512];
    const profile *client = profile_for(size > 0 ? data[size - 1] : 0);
    dx_status s, s2, s3;

    s = clean_once(data, size, 64 * 1024, NULL, &out, &rejects, &counts, reason, sizeof(reason));
    check_result(s, reason, &counts, &out, &rejects, size);
    /* The same bytes read one to a few bytes at a time give the same result. */
    s2 = clean_once(data, size, 1, NULL, &out2, &rejects2, &counts2, reason2, sizeof(reason2));
    if (s2 != s)
        fail("the result depends on how the input is cut into reads");
    if (s == DX_OK && (out.len != out2.len || (out.len && memcmp(out.data, out2.data, out.len)) ||
                       rejects.len != rejects2.len ||
                       (rejects.len && memcmp(rejects.data, rejects2.data, rejects.len)) ||
                       memcmp(&counts, &counts2, sizeof(counts)) != 0))
        fail("the output depends on how the input is cut into reads");
    if (s == DX_ERR_INVALID && strcmp(reason, reason2) != 0)
        fail("the reason depends on how the input is cut into reads");
    /* Under a client profile, the same invariants. */
    s3 = clean_once(data, size, 4096, client, &out3, &rejects3, &counts3, reason3, sizeof(reason3));
    check_result(s3, reason3, &counts3, &out3, &rejects3, size);
    free(out.data);
    free(rejects.data);
    free(out2.data);
    free(rejects2.data);
    free(out3.data);
    free(rejects3.data);
    return 0;
}
