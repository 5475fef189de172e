#include "dropname.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "encoding.h"

/* What one character of a name is, for the three functions below. */
typedef enum unit_kind {
    UNIT_PLAIN = 0,
    UNIT_CONTROL,   /* C0, DEL, or a C1 control (U+0080..U+009F) */
    UNIT_BACKSLASH, /* refused in storage paths (a separator on some SFTP servers) */
    UNIT_INVALID,   /* a byte that starts no well-formed UTF-8 sequence */
} unit_kind;

/* Classifies the character at s (n >= 1 bytes left); sets *len to its length. */
static unit_kind unit_at(const unsigned char *s, size_t n, size_t *len)
{
    int seq;

    *len = 1;
    if (s[0] < 0x20 || s[0] == 0x7f)
        return UNIT_CONTROL;
    if (s[0] == '\\')
        return UNIT_BACKSLASH;
    if (s[0] < 0x80)
        return UNIT_PLAIN;
    seq = encoding_utf8_sequence(s, n);
    if (seq <= 0)
        return UNIT_INVALID;
    *len = (size_t)seq;
    /* U+0080..U+009F are encoded C2 80..C2 9F. */
    return s[0] == 0xC2 && s[1] < 0xA0 ? UNIT_CONTROL : UNIT_PLAIN;
}

const char *dropname_problem(const char *name)
{
    const unsigned char *u = (const unsigned char *)name;
    size_t n = strlen(name), len;
    unit_kind worst = UNIT_PLAIN;

    for (size_t i = 0; i < n; i += len) {
        unit_kind k = unit_at(u + i, n - i, &len);

        if (k == UNIT_CONTROL)
            return "contains a control character";
        if (worst == UNIT_PLAIN)
            worst = k;
    }
    if (worst == UNIT_INVALID)
        return "is not valid UTF-8";
    if (worst == UNIT_BACKSLASH)
        return "contains a backslash";
    if (n > DROPNAME_MAX)
        return "is longer than 200 bytes";
    return NULL;
}

void dropname_escape(const char *name, char *out, size_t out_len)
{
    const unsigned char *u = (const unsigned char *)name;
    size_t n = strlen(name), len, o = 0;

    for (size_t i = 0; i < n; i += len) {
        char piece[4 * 4 + 1];
        unit_kind k = unit_at(u + i, n - i, &len);
        size_t piece_len = 0;

        if (k == UNIT_PLAIN) {
            memcpy(piece, u + i, len);
            piece_len = len;
        } else if (k == UNIT_BACKSLASH) {
            memcpy(piece, "\\\\", 2);
            piece_len = 2;
        } else {
            for (size_t j = 0; j < len; j++)
                piece_len += (size_t)snprintf(piece + piece_len, sizeof(piece) - piece_len,
                                              "\\x%02x", u[i + j]);
        }
        /* Room for the piece, and for "..." and the NUL should more follow. */
        if (o + piece_len + (i + len < n ? 3 : 0) + 1 > out_len) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, piece, piece_len);
        o += piece_len;
    }
    out[o] = '\0';
}

void dropname_safe(const char *name, char *out, size_t out_len)
{
    const unsigned char *u = (const unsigned char *)name;
    size_t n = strlen(name), len, o = 0;
    size_t cap = (out_len < DROPNAME_MAX + 1 ? out_len - 1 : DROPNAME_MAX) - 4;

    if (n >= 4 && strcasecmp(name + n - 4, ".csv") == 0)
        n -= 4;
    for (size_t i = 0; i < n; i += len) {
        unit_kind k = unit_at(u + i, n - i, &len);

        if (k != UNIT_PLAIN)
            len = 1; /* one '_' per byte: the escaped name says which they were */
        if (o + len > cap)
            break;
        if (k == UNIT_PLAIN)
            memcpy(out + o, u + i, len);
        else
            out[o] = '_';
        o += len;
    }
    memcpy(out + o, ".csv", 5);
}
