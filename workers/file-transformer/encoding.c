#include "encoding.h"

#include <stdint.h>
#include <string.h>

/* The UTF-8 of each byte 0x80..0xFF of Windows-1252: its bytes in the low
 * three bytes of the word, first byte lowest, and its length in the top
 * byte.  0x80..0x9F are where Windows-1252 differs from Latin-1 (0xA0..0xFF
 * are U+00A0..U+00FF); the table was generated from the code points
 * 20AC 0081 201A 0192 201E 2026 2020 2021 02C6 2030 0160 2039 0152 008D
 * 017D 008F 0090 2018 2019 201C 201D 2022 2013 2014 02DC 2122 0161 203A
 * 0153 009D 017E 0178 of 0x80..0x9F (test_clean_parts checks every byte
 * against iconv). */
static const uint32_t utf8_of_high[128] = {
    0x03AC82E2, 0x020081C2, 0x039A80E2, 0x020092C6, 0x039E80E2, 0x03A680E2, 0x03A080E2, 0x03A180E2,
    0x020086CB, 0x03B080E2, 0x0200A0C5, 0x03B980E2, 0x020092C5, 0x02008DC2, 0x0200BDC5, 0x02008FC2,
    0x020090C2, 0x039880E2, 0x039980E2, 0x039C80E2, 0x039D80E2, 0x03A280E2, 0x039380E2, 0x039480E2,
    0x02009CCB, 0x03A284E2, 0x0200A1C5, 0x03BA80E2, 0x020093C5, 0x02009DC2, 0x0200BEC5, 0x0200B8C5,
    0x0200A0C2, 0x0200A1C2, 0x0200A2C2, 0x0200A3C2, 0x0200A4C2, 0x0200A5C2, 0x0200A6C2, 0x0200A7C2,
    0x0200A8C2, 0x0200A9C2, 0x0200AAC2, 0x0200ABC2, 0x0200ACC2, 0x0200ADC2, 0x0200AEC2, 0x0200AFC2,
    0x0200B0C2, 0x0200B1C2, 0x0200B2C2, 0x0200B3C2, 0x0200B4C2, 0x0200B5C2, 0x0200B6C2, 0x0200B7C2,
    0x0200B8C2, 0x0200B9C2, 0x0200BAC2, 0x0200BBC2, 0x0200BCC2, 0x0200BDC2, 0x0200BEC2, 0x0200BFC2,
    0x020080C3, 0x020081C3, 0x020082C3, 0x020083C3, 0x020084C3, 0x020085C3, 0x020086C3, 0x020087C3,
    0x020088C3, 0x020089C3, 0x02008AC3, 0x02008BC3, 0x02008CC3, 0x02008DC3, 0x02008EC3, 0x02008FC3,
    0x020090C3, 0x020091C3, 0x020092C3, 0x020093C3, 0x020094C3, 0x020095C3, 0x020096C3, 0x020097C3,
    0x020098C3, 0x020099C3, 0x02009AC3, 0x02009BC3, 0x02009CC3, 0x02009DC3, 0x02009EC3, 0x02009FC3,
    0x0200A0C3, 0x0200A1C3, 0x0200A2C3, 0x0200A3C3, 0x0200A4C3, 0x0200A5C3, 0x0200A6C3, 0x0200A7C3,
    0x0200A8C3, 0x0200A9C3, 0x0200AAC3, 0x0200ABC3, 0x0200ACC3, 0x0200ADC3, 0x0200AEC3, 0x0200AFC3,
    0x0200B0C3, 0x0200B1C3, 0x0200B2C3, 0x0200B3C3, 0x0200B4C3, 0x0200B5C3, 0x0200B6C3, 0x0200B7C3,
    0x0200B8C3, 0x0200B9C3, 0x0200BAC3, 0x0200BBC3, 0x0200BCC3, 0x0200BDC3, 0x0200BEC3, 0x0200BFC3,
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

/* The bytes of the ASCII eight-byte words that s[0..n) starts with, also
 * copied to copy unless it is NULL: order files are nearly all ASCII, so
 * both passes below go through it a word at a time. */
static inline size_t ascii_words(const unsigned char *s, size_t n, char *copy)
{
    size_t i = 0;

    while (i + 8 <= n) {
        uint64_t word;

        memcpy(&word, s + i, sizeof(word));
        if (word & UINT64_C(0x8080808080808080))
            break;
        if (copy != NULL)
            memcpy(copy + i, &word, sizeof(word));
        i += 8;
    }
    return i;
}

/* Index of the first byte that is not part of a complete well-formed
 * sequence; *cut is set when that byte starts a sequence cut short. */
static size_t valid_length(const char *s, size_t n, int *cut)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    *cut = 0;
    while (i < n) {
        i += ascii_words(u + i, n - i, NULL);
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
    char *o = out;
    size_t i = 0;

    while (i < n) {
        size_t ascii = ascii_words(u + i, n - i, o);

        o += ascii;
        i += ascii;
        for (; i < n; i++) {
            uint32_t utf8;

            if (u[i] < 0x80) {
                *o++ = (char)u[i];
                continue;
            }
            /* Three bytes stored whatever the length: byte i starts at most
             * 3 * i into out, so they stay inside its 3 * n bytes, and a
             * shorter sequence's extra byte is overwritten next. */
            utf8 = utf8_of_high[u[i] - 0x80];
            o[0] = (char)(utf8 & 0xFF);
            o[1] = (char)((utf8 >> 8) & 0xFF);
            o[2] = (char)((utf8 >> 16) & 0xFF);
            o += utf8 >> 24;
            if (i + 8 < n && u[i + 1] < 0x80) {
                i++;
                break;
            }
        }
    }
    return (size_t)(o - out);
}
