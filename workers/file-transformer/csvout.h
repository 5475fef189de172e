#pragma once

#include <stddef.h>

/*
 * A growable byte buffer that writes RFC 4180 CSV: fields joined by ',',
 * quoted only when they hold ',', '"', CR or LF, quotes doubled, rows ended by
 * '\n'.  The caller owns the struct; the buffer inside is owned by it and
 * released by csvout_finish().
 */

typedef struct csvout {
    char *data;
    size_t len;
    size_t cap;
} csvout;

/* Starts an empty buffer; no allocation until the first write. */
void csvout_init(csvout *out);

/* Releases the buffer; the struct is left empty and reusable. */
void csvout_finish(csvout *out);

/* Makes room for extra more bytes; returns 0, or -1 when memory is short. */
int csvout_reserve(csvout *out, size_t extra);

/* Appends one field, preceded by ',' unless first; returns 0 or -1. */
int csvout_field(csvout *out, const char *s, size_t n, int first);

/* Appends bytes as they are; returns 0 or -1. */
int csvout_raw(csvout *out, const char *s, size_t n);

/* Ends the row with '\n'; returns 0 or -1. */
int csvout_end_row(csvout *out);
