#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bytebuf.h"

/*
 * RFC 4180 CSV written into a buffer of bytebuf.h: fields joined by ',', quoted
 * only when they hold ',', '"', CR or LF, quotes doubled, rows ended by '\n'.
 * The caller owns the buffer (bytebuf_init(), bytebuf_finish()); the functions here
 * store into it after bytebuf_reserve(), without a terminating NUL.
 */

typedef bytebuf csvout;

/*
 * Copies n bytes without a library call for the short lengths CSV fields
 * mostly have: two overlapping loads and stores cover 4 to 16 bytes.
 */
static inline void csvout_copy(char *dst, const char *src, size_t n)
{
    uint64_t a, b;
    uint32_t c, d;

    if (n >= 8 && n <= 16) {
        memcpy(&a, src, 8);
        memcpy(&b, src + n - 8, 8);
        memcpy(dst, &a, 8);
        memcpy(dst + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        memcpy(&c, src, 4);
        memcpy(&d, src + n - 4, 4);
        memcpy(dst, &c, 4);
        memcpy(dst + n - 4, &d, 4);
    } else if (n < 4) {
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i];
    } else {
        memcpy(dst, src, n);
    }
}

/* Appends one field, preceded by ',' unless first; returns 0 or -1. */
int csvout_field(csvout *out, const char *s, size_t n, int first);

/* Room csvout_encode() may need for n bytes: two quotes and every byte a
 * doubled quote. */
#define CSVOUT_ENCODED_MAX(n) (2 * (n) + 2)

/*
 * Writes s[0..n) at dst as one field, quoted only when needed, and returns
 * the bytes written; dst has CSVOUT_ENCODED_MAX(n) bytes of room.  For
 * callers that reserve room for a whole row at once.
 */
size_t csvout_encode(char *dst, const char *s, size_t n);

/* Appends a field the caller knows needs no quotes (no ',', '"', CR, LF),
 * preceded by ',' unless first; returns 0 or -1. */
static inline int csvout_plain(csvout *out, const char *s, size_t n, int first)
{
    if (bytebuf_reserve(out, n + 1) < 0)
        return -1;
    if (!first)
        out->data[out->len++] = ',';
    csvout_copy(out->data + out->len, s, n);
    out->len += n;
    return 0;
}

/*
 * The formula guard (OWASP's CSV injection guidance): a text field that a
 * spreadsheet would evaluate is written with a leading "'", which makes
 * Excel and LibreOffice show it as text.  Such a field starts with '=', '+',
 * '-', '@', TAB or CR, or has '=', '+', '-' or '@' right after leading
 * blanks (space, TAB, CR, LF), which some importers trim.
 */
static inline int csvout_is_formula(const char *s, size_t n)
{
    size_t i = 0;

    if (n > 0 && (s[0] == '\t' || s[0] == '\r'))
        return 1;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i < n && (s[i] == '=' || s[i] == '+' || s[i] == '-' || s[i] == '@');
}

/*
 * Writes s[0..n) at dst as one field with a leading "'" (inside the quotes
 * when it needs them), and returns the bytes written; dst has
 * CSVOUT_ENCODED_MAX(n) + 1 bytes of room.
 */
size_t csvout_encode_guarded(char *dst, const char *s, size_t n);

/* Appends one field as csvout_field() does, with a leading "'" when it is
 * a formula and guard is set; sets *guarded then.  Returns 0 or -1. */
int csvout_text_field(csvout *out, const char *s, size_t n, int first, int guard, int *guarded);

/* Appends bytes as they are; returns 0 or -1. */
static inline int csvout_raw(csvout *out, const char *s, size_t n)
{
    /* Nothing to copy: the buffer may not exist yet (NULL + 0 is undefined). */
    if (n == 0)
        return 0;
    if (bytebuf_reserve(out, n) < 0)
        return -1;
    csvout_copy(out->data + out->len, s, n);
    out->len += n;
    return 0;
}

/* Ends the row with '\n'; returns 0 or -1. */
int csvout_end_row(csvout *out);
