#include "fold.h"

#include <stdint.h>
#include <string.h>

/*
 * ASCII spelling of U+00C0..U+00FF once case and accents are gone; "" marks
 * the symbols of that block (×, ÷), which separate words like punctuation.
 */
static const char *const latin1_letters[64] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",
    "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "ss",
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",
    "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "y",
};

/* ASCII spelling of a decoded code point, or NULL for a separator; ascii
 * is the caller's scratch for the one-letter case, so the call is reentrant. */
static const char *letters_of(unsigned cp, char ascii[2])
{
    ascii[1] = '\0';
    if ((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z')) {
        ascii[0] = (char)cp;
        return ascii;
    }
    if (cp >= 'A' && cp <= 'Z') {
        ascii[0] = (char)(cp - 'A' + 'a');
        return ascii;
    }
    if (cp >= 0xC0 && cp <= 0xFF) {
        const char *s = latin1_letters[cp - 0xC0];
        return *s ? s : NULL;
    }
    switch (cp) {
    case 0xAA: /* ª, as in "Nª" */
        return "a";
    case 0xBA: /* º, as in "Nº commande" */
        return "o";
    case 0x152:
    case 0x153:
        return "oe";
    case 0x160:
    case 0x161:
        return "s";
    case 0x178:
        return "y";
    case 0x17D:
    case 0x17E:
        return "z";
    }
    return NULL;
}

/* Decodes one UTF-8 sequence at s; input was validated upstream, and a
 * malformed byte is taken as one unknown code point. */
static unsigned decode(const unsigned char *s, size_t n, size_t *len)
{
    unsigned c = s[0];
    size_t need = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    unsigned cp;

    if (c < 0x80 || need > n) {
        *len = 1;
        return c < 0x80 ? c : 0xFFFD;
    }
    cp = c & (0x3F >> (need - 1));
    for (size_t i = 1; i < need; i++)
        cp = (cp << 6) | (s[i] & 0x3F);
    *len = need;
    return cp;
}

size_t fold_key(const char *s, size_t n, char *out, size_t cap)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t w = 0;
    int gap = 0;

    if (cap == 0)
        return 0;
    for (size_t i = 0; i < n;) {
        size_t len;
        char ascii[2];
        const char *letters = letters_of(decode(u + i, n - i, &len), ascii);

        i += len;
        if (letters == NULL) {
            gap = w > 0;
            continue;
        }
        if (gap && w + 1 < cap)
            out[w++] = '_';
        gap = 0;
        for (; *letters && w + 1 < cap; letters++)
            out[w++] = *letters;
    }
    out[w] = '\0';
    return w;
}

#define ONES  UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)
#define LOWS  UINT64_C(0x7F7F7F7F7F7F7F7F)

/* Lowercases the eight bytes at u when they are all ASCII, and returns 1;
 * returns 0, changing nothing, otherwise.  The bytes in 'A'..'Z' are flagged
 * by two carries into their high bits, and get their 0x20 bit set. */
static int lower_word(unsigned char *u)
{
    uint64_t w, low, upper;

    memcpy(&w, u, sizeof(w));
    if (w & HIGHS)
        return 0;
    low = w & LOWS;
    upper = ((low + (0x80 - 'A') * ONES) ^ (low + (0x80 - 'Z' - 1) * ONES)) & HIGHS;
    w |= upper >> 2;
    memcpy(u, &w, sizeof(w));
    return 1;
}

void fold_lower(char *s, size_t n)
{
    unsigned char *u = (unsigned char *)s;
    size_t i = 0;

    /* ASCII eight bytes at a time. */
    for (; i + 8 <= n; i += 8) {
        if (!lower_word(u + i))
            break;
    }
    /* An ASCII tail is lowered with the last eight bytes of s, overlapping
     * bytes already lowered: lowering twice changes nothing. */
    if (i < n && n >= 8 && i + 8 > n && lower_word(u + n - 8))
        return;
    for (; i < n; i++) {
        unsigned char c = u[i];

        if (c >= 'A' && c <= 'Z') {
            u[i] = (unsigned char)(c + 32);
        } else if (c == 0xC3 && i + 1 < n) {
            /* U+00C0..U+00DE sit 0x20 below their lowercase, except ×. */
            if (u[i + 1] >= 0x80 && u[i + 1] <= 0x9E && u[i + 1] != 0x97)
                u[i + 1] = (unsigned char)(u[i + 1] + 0x20);
            i++;
        } else if (c == 0xC5 && i + 1 < n) {
            /* Œ Š Ž are even, their lowercase the next code point; Ÿ alone
             * lowercases to ÿ, which lives in another block. */
            unsigned char t = u[i + 1];
            if (t == 0xB8) {
                u[i] = 0xC3;
                u[i + 1] = 0xBF;
            } else if (t == 0x92 || t == 0xA0 || t == 0xBD) {
                u[i + 1] = (unsigned char)(t + 1);
            }
            i++;
        } else if (c >= 0xC0) {
            /* Skip the continuation bytes of other letters untouched. */
            while (i + 1 < n && (u[i + 1] & 0xC0) == 0x80)
                i++;
        }
    }
}
