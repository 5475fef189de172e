#pragma once

#include <stddef.h>

/*
 * The one growable byte buffer of the tree.  The caller owns the struct; the
 * bytes are owned by it until bytebuf_take() hands them over or bytebuf_finish()
 * releases them.  bytebuf_add() and the functions built on it keep the bytes
 * NUL-terminated; writers that store into data directly after a
 * bytebuf_reserve() (csvout.h) need not.
 * A failed growth (out of memory, or a size that would overflow) sets failed,
 * which turns every later append into a no-op: builders append freely and
 * check once at the end.
 */
typedef struct bytebuf {
    char *data;
    size_t len;
    size_t cap;
    int failed;
} bytebuf;

/* An empty buffer; no allocation until the first append. */
#define BYTEBUF_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

void bytebuf_init(bytebuf *b);

/* Releases the bytes; the struct is left empty and reusable.  Accepts a
 * buffer that never grew. */
void bytebuf_finish(bytebuf *b);

/* Grows the buffer for extra more bytes plus the terminating NUL; returns 0,
 * or -1 (and sets failed) when memory is short or the size would overflow.
 * Callers use bytebuf_reserve(). */
int bytebuf_grow(bytebuf *b, size_t extra);

/* Makes room for extra more bytes and a NUL; returns 0 or -1.  Inline since
 * hot loops call it and it rarely grows. */
static inline int bytebuf_reserve(bytebuf *b, size_t extra)
{
    return extra < b->cap - b->len ? 0 : bytebuf_grow(b, extra);
}

/* Appends n bytes (s may be NULL when n is 0). */
void bytebuf_add(bytebuf *b, const void *s, size_t n);
void bytebuf_puts(bytebuf *b, const char *s);
void bytebuf_putc(bytebuf *b, char c);
void bytebuf_printf(bytebuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Hands the bytes to the caller, who frees them (an empty string when
 * nothing was added); NULL when the buffer failed, its memory released.
 * The buffer is left empty.
 */
char *bytebuf_take(bytebuf *b);
