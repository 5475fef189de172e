#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void util_random_hex(char *out, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char bytes[64];
    size_t need = len > 0 ? len - 1 : 0;
    size_t done = 0;

    while (done < need) {
        size_t chunk = (need - done + 1) / 2;

        if (chunk > sizeof(bytes))
            chunk = sizeof(bytes);
        if (getrandom(bytes, chunk, 0) != (ssize_t)chunk)
            abort(); /* the kernel's CSPRNG cannot fail once seeded */
        for (size_t i = 0; i < chunk * 2 && done < need; i++)
            out[done++] = digits[(bytes[i / 2] >> ((i % 2) ? 0 : 4)) & 0xf];
    }
    if (len > 0)
        out[need] = '\0';
}

void util_uuid(char out[37])
{
    char hex[33];

    util_random_hex(hex, sizeof(hex));
    hex[12] = '4';
    hex[16] = "89ab"[strtol((char[]){hex[16], 0}, NULL, 16) & 3];
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

void util_trace_id(char out[33])
{
    do {
        util_random_hex(out, 33);
    } while (!util_trace_id_valid(out));
}

void util_rfc3339(char out[32], int64_t unix_ms)
{
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;

    size_t len;

    gmtime_r(&secs, &tm);
    len = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + len, 32 - len, ".%03dZ", (int)(unix_ms % 1000));
}

int64_t util_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_sleep_ms(int64_t ms)
{
    struct timespec ts;

    if (ms <= 0)
        return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

void util_local_date(time_t t, char out[11])
{
    struct tm tm;

    localtime_r(&t, &tm);
    if (strftime(out, 11, "%Y-%m-%d", &tm) == 0)
        out[0] = '\0';
}

void util_today(char out[11])
{
    util_local_date(time(NULL), out);
}

int util_date_valid(const char *s)
{
    int year, month, day;

    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return 0;
    year = atoi(s);
    month = atoi(s + 5);
    day = atoi(s + 8);
    return year >= 1970 && month >= 1 && month <= 12 && day >= 1 &&
           day <= util_days_in_month(year, month);
}

int util_date_to_days(const char *s, int64_t *days)
{
    if (!util_date_valid(s))
        return 0;
    *days = util_days_from_civil(atoi(s), atoi(s + 5), atoi(s + 8));
    return 1;
}

void util_date_from_days(int64_t days, char out[11])
{
    int64_t year;
    int month, day;

    util_civil_from_days(days, &year, &month, &day);
    snprintf(out, 11, "%04d-%02d-%02d", (int)year, month, day);
}

int util_trace_id_valid(const char *s)
{
    int nonzero = 0;

    if (s == NULL || strlen(s) != 32)
        return 0;
    for (int i = 0; i < 32; i++) {
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return 0;
        nonzero |= s[i] != '0';
    }
    return nonzero;
}

int util_copy(char *dst, size_t dst_len, const char *src)
{
    size_t len = strlen(src);

    if (dst_len == 0)
        return -1;
    if (len >= dst_len) {
        memcpy(dst, src, dst_len - 1);
        dst[dst_len - 1] = '\0';
        return -1;
    }
    memcpy(dst, src, len + 1);
    return 0;
}
