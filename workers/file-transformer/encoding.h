#pragma once

#include <stddef.h>

/*
 * Byte-level text encoding helpers for the cleaning engine: UTF-8 validation
 * and Windows-1252 to UTF-8 transcoding.  Pure functions on caller-owned
 * buffers; nothing here allocates.
 */

/* Returns 1 when s[0..n) is well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF), 0 otherwise. */
int encoding_utf8_valid(const char *s, size_t n);

/*
 * Length of the well-formed UTF-8 sequence at s (n >= 1 bytes): 1 to 4, 0
 * when it is malformed, or -1 when it is a valid start cut short by the end
 * of the buffer.
 */
int encoding_utf8_sequence(const unsigned char *s, size_t n);

/*
 * Transcodes n bytes of Windows-1252 into UTF-8 at out, which must have room
 * for 3 * n bytes; returns the number of bytes written.  The five bytes
 * Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) map to the C1
 * controls of the same value, as the WHATWG encoding standard does, so that
 * transcoding never fails.
 */
size_t encoding_cp1252_to_utf8(const char *in, size_t n, char *out);
