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

void csvout_init(csvout *out)
{
    out->data = NULL;
    out->len = 0;
    out->cap = 0;
}

void csvout_finish(csvout *out)
{
    free(out->data);
    csvout_init(out);
}

int csvout_grow(csvout *out, size_t extra)
{
    size_t cap = out->cap ? out->cap : 4096;
    char *p;

    if (extra <= out->cap - out->len)
        return 0;
    if (extra > (size_t)-1 / 4 - out->len)
        return -1;
    while (cap - out->len < extra)
        cap *= 2;
    p = realloc(out->data, cap);
    if (p == NULL)
        return -1;
    out->data = p;
    out->cap = cap;
    return 0;
}

int csvout_field(csvout *out, const char *s, size_t n, int first)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t quotes = 0, i;
    int quote = 0;
    char *w;

    for (i = 0; i < n; i++) {
        if (special[u[i]]) {
            quote = 1;
            quotes += u[i] == '"';
        }
    }
    /* Worst case: separator, two quotes, and every quote doubled. */
    if (csvout_reserve(out, n + quotes + 3) < 0)
        return -1;
    w = out->data + out->len;
    if (!first)
        *w++ = ',';
    if (!quote) {
        memcpy(w, s, n);
        w += n;
    } else {
        *w++ = '"';
        for (i = 0; i < n; i++) {
            if (s[i] == '"')
                *w++ = '"';
            *w++ = s[i];
        }
        *w++ = '"';
    }
    out->len = (size_t)(w - out->data);
    return 0;
}

int csvout_end_row(csvout *out)
{
    return csvout_raw(out, "\n", 1);
}
