#pragma once

#include <stddef.h>

#include "profile.h"

/*
 * Order dates as clients write them, parsed into ISO form.  Pure functions on
 * caller-owned buffers; nothing here allocates.
 */

typedef struct csvdate {
    char date[11]; /* YYYY-MM-DD */
    char time[9];  /* HH:MM:SS, or "" when the value had no time */
} csvdate;

/*
 * Parses s[0..n) (already trimmed) into out.  Accepted forms, each optionally
 * followed by a space and a time HH:MM or HH:MM:SS:
 *   YYYY-MM-DD (also YYYY/MM/DD and YYYY.MM.DD),
 *   DD/MM/YYYY, DD-MM-YYYY, DD.MM.YYYY (day and month on one or two digits),
 *   ISO 8601 YYYY-MM-DDTHH:MM[:SS[.fff]] with an optional Z or +HH[:MM] /
 *   -HH[:MM] offset (the offset is also accepted after a space-separated time
 *   on a year-first date).
 * The offset is dropped: date and time are the wall-clock values the client
 * wrote, which is the day the business counts the order on.  Two-digit years
 * are refused (ambiguous), and so are impossible dates (31/02, month 13) and
 * times (24:00, 12:60).  Returns 0, or -1 when the value is not a date.
 */
int csvdate_parse(const char *s, size_t n, csvdate *out);

/*
 * csvdate_parse() with a client's date order: PROFILE_DMY is csvdate_parse()
 * itself; PROFILE_MDY reads MM/DD/YYYY (and MM-DD-YYYY, MM.DD.YYYY) instead
 * of DD/MM/YYYY; PROFILE_YMD accepts only the year-first forms.
 */
int csvdate_parse_order(const char *s, size_t n, profile_date_order order, csvdate *out);

/* Parses a lone time HH:MM or HH:MM:SS into out ("HH:MM:SS"); returns 0 or -1. */
int csvdate_parse_time(const char *s, size_t n, char out[9]);
