#pragma once

#include <stddef.h>

/*
 * Text folding for matching names written by hand: header cells and status
 * values.  Input is UTF-8; nothing here allocates.
 */

/*
 * Folds s[0..n) into a lookup key at out (cap bytes, NUL-terminated):
 * letters lose case and accents (é -> e, Œ -> oe, ß -> ss), digits stay, every
 * other run of characters becomes one '_', and leading or trailing '_' are
 * dropped, so " Quantité (u.) " -> "quantite_u".  Returns the key length; a
 * key that would not fit is truncated, which is harmless for matching since
 * every known name is short.
 */
size_t fold_key(const char *s, size_t n, char *out, size_t cap);

/*
 * Lowercases s[0..n) in place: ASCII and the Latin letters of U+00C0..U+017F
 * that French and its neighbours use.  Lengths never change, so the call is
 * safe inside a larger buffer.
 */
void fold_lower(char *s, size_t n);
