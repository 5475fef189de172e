#include "bytebuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first allocation: small enough for a log line, and doubling from
 * there reaches any page in a few steps. */
#define FIRST_CAP 256

void bytebuf_init(bytebuf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = 0;
}

void bytebuf_finish(bytebuf *b)
{
    free(b->data);
    bytebuf_init(b);
}

int bytebuf_grow(bytebuf *b, size_t extra)
{
    size_t cap = b->cap ? b->cap : FIRST_CAP;
    char *grown;

    if (b->failed)
        return -1;
    if (extra < b->cap - b->len)
        return 0;
    /* Bounded so that len + extra + 1 and the doubling below cannot wrap. */
    if (extra >= SIZE_MAX / 4 - b->len)
        goto fail;
    while (cap - b->len <= extra)
        cap *= 2;
    grown = realloc(b->data, cap);
    if (grown == NULL)
        goto fail;
    b->data = grown;
    b->cap = cap;
    return 0;
fail:
    b->failed = 1;
    return -1;
}

void bytebuf_add(bytebuf *b, const void *s, size_t n)
{
    if (b->failed || bytebuf_reserve(b, n) < 0)
        return;
    if (n > 0)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void bytebuf_puts(bytebuf *b, const char *s)
{
    bytebuf_add(b, s, strlen(s));
}

void bytebuf_putc(bytebuf *b, char c)
{
    bytebuf_add(b, &c, 1);
}

void bytebuf_printf(bytebuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed)
        return;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if (bytebuf_reserve(b, (size_t)n) < 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *bytebuf_take(bytebuf *b)
{
    char *out = NULL;

    if (!b->failed && bytebuf_reserve(b, 0) == 0) {
        b->data[b->len] = '\0';
        out = b->data;
        b->data = NULL;
    }
    bytebuf_finish(b);
    return out;
}
