#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "status.h"

/* Fills out with len-1 random lowercase hex digits and a NUL (getrandom). */
void util_random_hex(char *out, size_t len);

/* Writes a random RFC 4122 version 4 UUID (37 bytes with the NUL). */
void util_uuid(char out[37]);

/* Writes a new trace id: 32 lowercase hex digits, W3C trace-context compatible. */
void util_trace_id(char out[33]);

/* Writes the trace id derived from seed (the first 32 hex digits of its
 * SHA-256): the same seed always gives the same trace. */
void util_trace_id_from(const char *seed, char out[33]);

/* Writes t as RFC 3339 UTC with milliseconds ("2026-11-24T08:00:00.123Z"). */
void util_rfc3339(char out[32], int64_t unix_ms);

/* Wall-clock and monotonic time in milliseconds. */
int64_t util_now_ms(void);
int64_t util_monotonic_ms(void);

/* Sleeps ms milliseconds (nothing when ms <= 0); a signal may end it early. */
void util_sleep_ms(int64_t ms);

/* Today's date in the process time zone (TZ) as YYYY-MM-DD. */
void util_today(char out[11]);

/* The local calendar date of t in the process time zone, as YYYY-MM-DD. */
void util_local_date(time_t t, char out[11]);

/* Days in month (1-12) of year, Gregorian leap years included. */
static inline int util_days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static inline int64_t util_days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse of util_days_from_civil(): month 1-12, day 1-31. */
static inline void util_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* True when s is a real calendar date written YYYY-MM-DD. */
int util_date_valid(const char *s);

/* Sets *days to the days since 1970-01-01 of s when util_date_valid(s); returns 0 otherwise. */
int util_date_to_days(const char *s, int64_t *days);

/* Writes day number days (util_days_from_civil) as YYYY-MM-DD. */
void util_date_from_days(int64_t days, char out[11]);

/* True when s is 32 lowercase hex digits, not all zero. */
int util_trace_id_valid(const char *s);

/* Copies src into dst (size dst_len), always NUL-terminated; returns 0 when it
 * fits, -1 when src was cut. */
int util_copy(char *dst, size_t dst_len, const char *src);

/* Streaming SHA-256 (OpenSSL's EVP, not hand-written). */
typedef struct util_sha256 util_sha256;

/* Returns a new hasher owned by the caller (util_sha256_destroy), or NULL. */
util_sha256 *util_sha256_create(void);
void util_sha256_update(util_sha256 *h, const void *data, size_t len);
/* Writes the 64-digit hex digest and a NUL; the hasher can not be updated after. */
void util_sha256_hex(util_sha256 *h, char out[65]);
/* Accepts NULL. */
void util_sha256_destroy(util_sha256 *h);
