#include "csvdate.h"

#include "util.h"

#include <string.h>

typedef struct cursor {
    const char *s;
    size_t n;
    size_t i;
} cursor;

/* Reads between min and max digits; returns the value or -1. */
static int digits(cursor *c, int min, int max)
{
    int value = 0, count = 0;

    while (count < max && c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
        value = value * 10 + (c->s[c->i] - '0');
        c->i++;
        count++;
    }
    return count >= min ? value : -1;
}

static int accept(cursor *c, char ch)
{
    if (c->i < c->n && c->s[c->i] == ch) {
        c->i++;
        return 1;
    }
    return 0;
}

static int is_separator(char ch)
{
    return ch == '-' || ch == '/' || ch == '.';
}

static void put2(char *out, int value)
{
    out[0] = (char)('0' + value / 10);
    out[1] = (char)('0' + value % 10);
}

/* HH:MM[:SS[.fraction]] at the cursor into out; the fraction is dropped
 * since order times are kept to the second. */
static int parse_time(cursor *c, char out[9])
{
    int hour = digits(c, 1, 2), minute, second = 0;

    if (hour < 0 || !accept(c, ':') || (minute = digits(c, 2, 2)) < 0)
        return -1;
    if (accept(c, ':')) {
        if ((second = digits(c, 2, 2)) < 0)
            return -1;
        if (accept(c, '.') && digits(c, 1, 9) < 0)
            return -1;
    }
    if (hour > 23 || minute > 59 || second > 59)
        return -1;
    put2(out, hour);
    out[2] = ':';
    put2(out + 3, minute);
    out[5] = ':';
    put2(out + 6, second);
    out[8] = '\0';
    return 0;
}

/* Z, +HH, +HHMM or +HH:MM at the cursor, if any; only checked, not applied. */
static int parse_offset(cursor *c)
{
    int colon;

    if (accept(c, 'Z') || accept(c, 'z'))
        return 0;
    if (!accept(c, '+') && !accept(c, '-'))
        return 0;
    if (digits(c, 2, 2) < 0)
        return -1;
    colon = accept(c, ':');
    if ((colon || c->i < c->n) && digits(c, 2, 2) < 0)
        return -1;
    return 0;
}

/* The date part; *year_first tells which family matched.  order says which
 * of day and month comes first when the year is last, and YMD refuses that
 * family altogether. */
static int parse_day(cursor *c, profile_date_order order, int *year, int *month, int *day,
                     int *year_first)
{
    size_t start = c->i;
    int first = digits(c, 1, 4);
    char sep;

    if (first < 0 || c->i >= c->n || !is_separator(c->s[c->i]))
        return -1;
    sep = c->s[c->i++];
    *year_first = c->i - start == 5; /* four digits and the separator */
    if (*year_first) {
        *year = first;
        if ((*month = digits(c, 1, 2)) < 0 || !accept(c, sep) || (*day = digits(c, 1, 2)) < 0)
            return -1;
    } else {
        int second;

        if (c->i - start > 3 || order == PROFILE_YMD) /* a three-digit first group */
            return -1;
        if ((second = digits(c, 1, 2)) < 0 || !accept(c, sep) || (*year = digits(c, 4, 4)) < 0)
            return -1;
        *day = order == PROFILE_MDY ? second : first;
        *month = order == PROFILE_MDY ? first : second;
    }
    /* A fifth digit means a longer year, not a date we understand. */
    if (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9')
        return -1;
    if (*year < 1000 || *month < 1 || *month > 12 || *day < 1 ||
        *day > util_days_in_month(*year, *month))
        return -1;
    return 0;
}

int csvdate_parse(const char *s, size_t n, csvdate *out)
{
    return csvdate_parse_order(s, n, PROFILE_DMY, out);
}

int csvdate_parse_order(const char *s, size_t n, profile_date_order order, csvdate *out)
{
    cursor c = {s, n, 0};
    int year, month, day, year_first;

    if (parse_day(&c, order, &year, &month, &day, &year_first) < 0)
        return -1;
    out->time[0] = '\0';
    if (c.i < n) {
        char sep = s[c.i++];
        if (sep != ' ' && !((sep == 'T' || sep == 't') && year_first))
            return -1;
        if (parse_time(&c, out->time) < 0)
            return -1;
        if (year_first && parse_offset(&c) < 0)
            return -1;
        if (c.i != n)
            return -1;
    }
    put2(out->date, year / 100);
    put2(out->date + 2, year % 100);
    out->date[4] = '-';
    put2(out->date + 5, month);
    out->date[7] = '-';
    put2(out->date + 8, day);
    out->date[10] = '\0';
    return 0;
}

int csvdate_parse_time(const char *s, size_t n, char out[9])
{
    cursor c = {s, n, 0};
    char time[9];

    if (parse_time(&c, time) < 0 || c.i != n)
        return -1;
    memcpy(out, time, sizeof(time));
    return 0;
}
