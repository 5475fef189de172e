#include "encoding.h"

#include <stdint.h>
#include <string.h>

/* Code points of the bytes 0x80..0x9F, the only range where Windows-1252
 * differs from Latin-1 (0xA0..0xFF are U+00A0..U+00FF). */
static const uint16_t cp1252_high[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

int encoding_utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    int len;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        /* Overlong forms and UTF-16 surrogates are the two holes here. */
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return -1;
        if (s[i] < lo || s[i] > hi)
            return 0;
        lo = 0x80;
        hi = 0xBF;
    }
    return len;
}

/* Index of the first byte that is not part of a complete well-formed
 * sequence; *cut is set when that byte starts a sequence cut short. */
static size_t valid_length(const char *s, size_t n, int *cut)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    *cut = 0;
    while (i < n) {
        /* Order files are nearly all ASCII: skip eight bytes at a time. */
        while (i + 8 <= n) {
            uint64_t word;

            memcpy(&word, u + i, sizeof(word));
            if (word & UINT64_C(0x8080808080808080))
                break;
            i += 8;
        }
        if (i >= n)
            break;
        int len = encoding_utf8_sequence(u + i, n - i);
        if (len <= 0) {
            *cut = len < 0;
            return i;
        }
        i += (size_t)len;
    }
    return n;
}

int encoding_utf8_valid(const char *s, size_t n)
{
    int cut;

    return valid_length(s, n, &cut) == n;
}

size_t encoding_cp1252_to_utf8(const char *in, size_t n, char *out)
{
    const unsigned char *u = (const unsigned char *)in;
    unsigned char *o = (unsigned char *)out;

    for (size_t i = 0; i < n; i++) {
        unsigned c = u[i];

        if (c < 0x80) {
            *o++ = (unsigned char)c;
            continue;
        }
        if (c < 0xA0)
            c = cp1252_high[c - 0x80];
        if (c < 0x800) {
            *o++ = (unsigned char)(0xC0 | (c >> 6));
            *o++ = (unsigned char)(0x80 | (c & 0x3F));
        } else {
            *o++ = (unsigned char)(0xE0 | (c >> 12));
            *o++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (unsigned char)(0x80 | (c & 0x3F));
        }
    }
    return (size_t)(o - (unsigned char *)out);
}
