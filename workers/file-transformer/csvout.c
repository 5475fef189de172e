#include "csvout.h"

#include <stdlib.h>
#include <string.h>

/* Bytes that force a field into quotes. */
static const unsigned char special[256] = {
    ['\n'] = 1,
    ['\r'] = 1,
    ['"'] = 1,
    [','] = 1,
};

size_t csvout_encode(char *dst, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    char *w = dst;
    size_t i = 0;

    while (i < n && !special[u[i]])
        i++;
    if (i == n) {
        if (n > 0)
            memcpy(dst, s, n);
        return n;
    }
    *w++ = '"';
    for (i = 0; i < n; i++) {
        if (s[i] == '"')
            *w++ = '"';
        *w++ = s[i];
    }
    *w++ = '"';
    return (size_t)(w - dst);
}

/* Appends one field, with the formula guard's "'" when guarded. */
static int append_field(csvout *out, const char *s, size_t n, int first, int guarded)
{
    size_t quotes = 0;

    /* Exact room rather than the worst case, so that a long field does not
     * make the buffer grow twice as large as it needs. */
    for (size_t i = 0; i < n; i++)
        quotes += s[i] == '"';
    if (bytebuf_reserve(out, n + quotes + 3 + (size_t)guarded) < 0)
        return -1;
    if (!first)
        out->data[out->len++] = ',';
    out->len += guarded ? csvout_encode_guarded(out->data + out->len, s, n)
                        : csvout_encode(out->data + out->len, s, n);
    return 0;
}

int csvout_field(csvout *out, const char *s, size_t n, int first)
{
    return append_field(out, s, n, first, 0);
}

size_t csvout_encode_guarded(char *dst, const char *s, size_t n)
{
    size_t len;

    dst[0] = '\'';
    len = csvout_encode(dst + 1, s, n);
    /* Quoted: the quote opens the field, the apostrophe follows it. */
    if (dst[1] == '"') {
        dst[0] = '"';
        dst[1] = '\'';
    }
    return len + 1;
}

int csvout_text_field(csvout *out, const char *s, size_t n, int first, int guard, int *guarded)
{
    *guarded = guard && csvout_is_formula(s, n);
    return append_field(out, s, n, first, *guarded);
}

int csvout_end_row(csvout *out)
{
    return csvout_raw(out, "\n", 1);
}
