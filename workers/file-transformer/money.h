#pragma once

#include <stddef.h>
#include <stdint.h>

#include "profile.h"

/*
 * Money in exact fixed point: integer cents, never binary floating point.
 * Pure functions on caller-owned buffers; nothing here allocates.
 */

/*
 * Parses a non-negative amount s[0..n) (already trimmed, whitespace runs
 * collapsed to one space) into cents.  Accepted: "12,50", "12.50", "1234",
 * thousands separated by space, '.', ',' or an apostrophe ("1 234,50",
 * "1.234,50", "1,234.50", "1'234.50"), an optional euro sign "€" or "EUR"
 * (any case) before or after the number, with or without a space; *euro is
 * set to 1 when there was one.  When both '.' and ',' appear the last one is
 * the decimal separator.  A single separator followed by exactly three digits
 * ("1.234", "1,234") is refused as ambiguous, so are more than two decimals,
 * signs, and amounts over INT64_MAX cents.  Returns 0, or -1.
 */
int money_parse(const char *s, size_t n, int64_t *cents, int *euro);

/*
 * money_parse() under a client's separators (profile.h): decimal_sep is
 * PROFILE_SEP_AUTO, '.' or ','; thousands_sep PROFILE_SEP_AUTO,
 * PROFILE_SEP_NONE, ',', '.', ' ' or '\''.  Both AUTO is money_parse().  A
 * named separator has that one meaning, so "1.234" with decimal ',' is 1234.00
 * and "1,234.5" with decimal ',' is refused.  Returns 0, or -1.
 */
int money_parse_with(const char *s, size_t n, char decimal_sep, char thousands_sep, int64_t *cents,
                     int *euro);

/* Longest output of money_format(), with its NUL. */
#define MONEY_FORMAT_MAX 24

/* Writes cents as "1234.50" (dot, two decimals, NUL-terminated) into out,
 * which has MONEY_FORMAT_MAX bytes; returns the length. */
size_t money_format(int64_t cents, char *out);
