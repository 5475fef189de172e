/*
 * Unit tests for the schedule maths (workers/common/cron.c): parsing, next
 * run, catch-up listing, and the 2026 daylight-saving days in Europe/Paris.
 * Every instant is written in UTC and compared exactly, so that a run one
 * hour off (the classic DST bug) fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "testing.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *show(time_t t, char *buf, size_t len)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
    return buf;
}

static void check_time(const char *file, int line, const char *what, time_t got, time_t want)
{
    char g[40], w[40];

    testing_checks++;
    if (got != want)
        testing_fail(file, line, "%s: got %s, want %s", what, show(got, g, sizeof(g)),
                     show(want, w, sizeof(w)));
}
#define CHECK_TIME(what, got, want) check_time(__FILE__, __LINE__, what, got, want)

static cron_schedule *parse_ok(const char *spec)
{
    cron_schedule *s = NULL;
    char err[256] = "";
    dx_status st = cron_parse(spec, &s, err, sizeof(err));

    if (st != DX_OK)
        testing_fail(__FILE__, __LINE__, "cron_parse(\"%s\"): %s: %s", spec, status_text(st), err);
    return s;
}

/* ---- parsing ---------------------------------------------------------------------------- */

static void test_parse_valid(void)
{
    static const struct {
        const char *spec, *canonical;
    } cases[] = {
        {"0 8 * * *", "0 8 * * *"},
        {"  0\t8   *  *\n* ", "0 8 * * *"},
        {"*/15 9-17 * * MON-Fri", "*/15 9-17 * * mon-fri"},
        {"10-50/10 0 1 JAN,jul *", "10-50/10 0 1 jan,jul *"},
        {"5/15 * * * 7", "5/15 * * * 7"},
        {"@Daily", "@daily"},
        {" @hourly ; 30 2 * * * ;", "@hourly; 30 2 * * *"},
        {";;0 8 * * mon;@weekly;@yearly;@annually;@monthly;@midnight",
         "0 8 * * mon; @weekly; @yearly; @annually; @monthly; @midnight"},
        {"0-59/60 */24 */31 */12 */8", "0-59/60 */24 */31 */12 */8"},
        {"0 0 1-31 1-12 0-7", "0 0 1-31 1-12 0-7"},
    };

    for (size_t i = 0; i < COUNT(cases); i++) {
        cron_schedule *s = parse_ok(cases[i].spec);
        cron_schedule *again;

        CHECK_EQ_STR(cron_describe(s), cases[i].canonical);
        /* The canonical form parses to itself. */
        again = parse_ok(cron_describe(s));
        CHECK_EQ_STR(cron_describe(again), cases[i].canonical);
        cron_destroy(again);
        cron_destroy(s);
    }
    CHECK_EQ_STR(cron_describe(NULL), "");
    cron_destroy(NULL);
}

/* What each field matches, through cron_matches() on wall-clock fields. */
static void test_matches(void)
{
    static const struct {
        const char *spec;
        int min, hour, mday, mon, wday; /* mon is 1-12, wday 0 = Sunday */
        int want;
    } cases[] = {
        {"10-50/10 * * * *", 10, 3, 1, 1, 0, 1},
        {"10-50/10 * * * *", 50, 3, 1, 1, 0, 1},
        {"10-50/10 * * * *", 55, 3, 1, 1, 0, 0},
        {"10-50/10 * * * *", 0, 3, 1, 1, 0, 0},
        {"*/15 * * * *", 45, 3, 1, 1, 0, 1},
        {"*/15 * * * *", 46, 3, 1, 1, 0, 0},
        {"5/15 * * * *", 50, 3, 1, 1, 0, 1},
        {"5/15 * * * *", 0, 3, 1, 1, 0, 0},
        {"1,2,40-42 * * * *", 41, 3, 1, 1, 0, 1},
        {"1,2,40-42 * * * *", 3, 3, 1, 1, 0, 0},
        {"0 9-17/4 * * *", 0, 13, 1, 1, 0, 1},
        {"0 9-17/4 * * *", 0, 15, 1, 1, 0, 0},
        /* 0, 7 and sun are all Sunday. */
        {"0 8 * * 7", 0, 8, 3, 5, 0, 1},
        {"0 8 * * 0", 0, 8, 3, 5, 0, 1},
        {"0 8 * * SUN", 0, 8, 3, 5, 0, 1},
        {"0 8 * * 7", 0, 8, 4, 5, 1, 0},
        {"0 8 * * 5-7", 0, 8, 3, 5, 0, 1},
        {"0 8 * * 5-7", 0, 8, 2, 5, 6, 1},
        {"0 8 * * 5-7", 0, 8, 30, 4, 4, 0},
        {"0 8 * * mon-fri", 0, 8, 2, 5, 6, 0},
        {"0 8 * jan-mar *", 0, 8, 2, 3, 1, 1},
        {"0 8 * jan-mar *", 0, 8, 2, 4, 4, 0},
        /* Vixie: both day fields restricted, either matches... */
        {"0 0 13 * fri", 0, 0, 13, 1, 3, 1},
        {"0 0 13 * fri", 0, 0, 16, 1, 5, 1},
        {"0 0 13 * fri", 0, 0, 14, 1, 3, 0},
        /* ...but a day field starting with '*' makes both necessary. */
        {"0 0 */2 * fri", 0, 0, 9, 1, 5, 1},
        {"0 0 */2 * fri", 0, 0, 10, 1, 5, 0},
        {"0 0 */2 * fri", 0, 0, 11, 1, 6, 0},
        {"0 0 1 * *", 0, 0, 1, 1, 4, 1},
        {"0 0 * * mon", 0, 0, 20, 7, 1, 1},
        {"@weekly", 0, 0, 10, 5, 0, 1},
        {"@weekly", 0, 0, 11, 5, 1, 0},
        {"@yearly", 0, 0, 1, 1, 4, 1},
        {"@yearly", 0, 0, 1, 2, 0, 0},
        {"@monthly", 0, 0, 1, 2, 0, 1},
        {"@hourly", 0, 17, 9, 9, 3, 1},
        {"@hourly", 1, 17, 9, 9, 3, 0},
        {"0 8 * * *; 30 9 * * sat", 30, 9, 2, 5, 6, 1},
        {"0 8 * * *; 30 9 * * sat", 30, 9, 4, 5, 1, 0},
    };

    for (size_t i = 0; i < COUNT(cases); i++) {
        cron_schedule *s = parse_ok(cases[i].spec);
        struct tm tm = {0};

        tm.tm_min = cases[i].min;
        tm.tm_hour = cases[i].hour;
        tm.tm_mday = cases[i].mday;
        tm.tm_mon = cases[i].mon - 1;
        tm.tm_wday = cases[i].wday;
        if (cron_matches(s, &tm) != (cases[i].want != 0))
            testing_fail(__FILE__, __LINE__, "\"%s\" at %02d:%02d day %d month %d wday %d: want %d",
                         cases[i].spec, cases[i].hour, cases[i].min, cases[i].mday, cases[i].mon,
                         cases[i].wday, cases[i].want);
        testing_checks++;
        cron_destroy(s);
    }
}

static void test_parse_invalid(void)
{
    static const struct {
        const char *spec;
        dx_status status;
        const char *want[2]; /* substrings of the error */
    } cases[] = {
        {"", DX_ERR_INVALID, {"empty", NULL}},
        {"  ; ;\t", DX_ERR_INVALID, {"empty", NULL}},
        {"0 8 * *", DX_ERR_INVALID, {"expected 5 fields", "got 4"}},
        {"0 8 * * * *", DX_ERR_INVALID, {"expected 5 fields", "got 6"}},
        {"60 8 * * *", DX_ERR_INVALID, {"minute field \"60\"", "out of range 0-59"}},
        {"0 24 * * *", DX_ERR_INVALID, {"hour field \"24\"", "out of range 0-23"}},
        {"0 8 0 * *", DX_ERR_INVALID, {"day-of-month field \"0\"", "out of range 1-31"}},
        {"0 8 1,32 * *", DX_ERR_INVALID, {"day-of-month field \"1,32\"", "32 is out of range"}},
        {"0 8 * 13 *", DX_ERR_INVALID, {"month field \"13\"", "out of range 1-12"}},
        {"0 8 * * 8", DX_ERR_INVALID, {"day-of-week field \"8\"", "out of range 0-7"}},
        {"0 8 * foo *", DX_ERR_INVALID, {"month field \"foo\"", "unknown name"}},
        {"0 8 * * mon-funday", DX_ERR_INVALID, {"day-of-week field", "unknown name \"funday\""}},
        {"0 mon * * *", DX_ERR_INVALID, {"hour field \"mon\"", "names are not allowed"}},
        {"*/0 * * * *", DX_ERR_INVALID, {"minute field \"*/0\"", "step 0 is out of range"}},
        {"0 */25 * * *", DX_ERR_INVALID, {"hour field", "step 25 is out of range 1-24"}},
        {"*/ * * * *", DX_ERR_INVALID, {"minute field", "step is missing"}},
        {"50-10 * * * *", DX_ERR_INVALID, {"minute field", "range 50-10 goes backwards"}},
        {"0 8 * * fri-mon", DX_ERR_INVALID, {"day-of-week field", "goes backwards"}},
        {"1,,2 * * * *", DX_ERR_INVALID, {"minute field \"1,,2\"", "empty list item"}},
        {"0 8 * * 1,", DX_ERR_INVALID, {"day-of-week field", "empty list item"}},
        {"1- * * * *", DX_ERR_INVALID, {"minute field", "a value is missing"}},
        {"1.5 * * * *", DX_ERR_INVALID, {"minute field", "unexpected '.'"}},
        {"0 8 *-1 * *", DX_ERR_INVALID, {"day-of-month field", "unexpected '-'"}},
        {"0 8 * * \x01", DX_ERR_INVALID, {"day-of-week field \"?\"", "byte 0x01"}},
        {"99999999999999999999 * * * *", DX_ERR_INVALID, {"minute field", "out of range"}},
        {"@reboot", DX_ERR_INVALID, {"descriptor \"@reboot\"", "unknown"}},
        {"@daily 5", DX_ERR_INVALID, {"descriptor \"@daily 5\"", "stands alone"}},
        {"0 8 * * *; 0 25 * * *", DX_ERR_INVALID, {"expression 2: hour field \"25\"", NULL}},
        {"@hourly;@sometimes", DX_ERR_INVALID, {"expression 2: descriptor", NULL}},
    };

    for (size_t i = 0; i < COUNT(cases); i++) {
        cron_schedule *s = (cron_schedule *)&s; /* must stay untouched on failure */
        cron_schedule *const sentinel = s;
        char err[256] = "unset";
        dx_status st = cron_parse(cases[i].spec, &s, err, sizeof(err));

        CHECK_EQ_INT(st, cases[i].status);
        CHECK(s == sentinel);
        CHECK(strchr(err, '\n') == NULL);
        for (size_t j = 0; j < 2; j++) {
            testing_checks++;
            if (cases[i].want[j] != NULL && strstr(err, cases[i].want[j]) == NULL)
                testing_fail(__FILE__, __LINE__, "error for \"%s\" is \"%s\", lacks \"%s\"",
                             cases[i].spec, err, cases[i].want[j]);
        }
        if (st == DX_OK && s != sentinel)
            cron_destroy(s);
    }
}

static void test_parse_limits(void)
{
    char spec[CRON_SPEC_MAX + 16], err[128];
    cron_schedule *s = NULL;
    size_t n = 0;

    /* Exactly CRON_EXPRS_MAX expressions pass, one more is refused. */
    for (int i = 0; i < CRON_EXPRS_MAX; i++)
        n += (size_t)snprintf(spec + n, sizeof(spec) - n, "%d 8 * * *;", i % 60);
    CHECK_EQ_INT(cron_parse(spec, &s, err, sizeof(err)), DX_OK);
    cron_destroy(s);
    s = NULL;
    snprintf(spec + n, sizeof(spec) - n, "@daily");
    CHECK_EQ_INT(cron_parse(spec, &s, err, sizeof(err)), DX_ERR_TOO_LARGE);
    CHECK(strstr(err, "expressions") != NULL);
    CHECK(s == NULL);

    memset(spec, ' ', sizeof(spec) - 1);
    spec[sizeof(spec) - 1] = '\0';
    memcpy(spec, "@daily", 6);
    CHECK_EQ_INT(cron_parse(spec, &s, err, sizeof(err)), DX_ERR_TOO_LARGE);
    CHECK(strstr(err, "longer") != NULL);

    CHECK_EQ_INT(cron_parse(NULL, &s, err, sizeof(err)), DX_ERR_INVALID);
    CHECK_EQ_INT(cron_parse("@daily", NULL, err, sizeof(err)), DX_ERR_INVALID);
    /* err is optional, and a short buffer is truncated, never overrun. */
    CHECK_EQ_INT(cron_parse("0 25 * * *", &s, NULL, 0), DX_ERR_INVALID);
    memset(err, 'x', sizeof(err));
    CHECK_EQ_INT(cron_parse("0 25 * * *", &s, err, 8), DX_ERR_INVALID);
    CHECK_EQ_STR(err, "hour fi");
    CHECK(err[8] == 'x');
    CHECK(s == NULL);
}

/* ---- next run ------------------------------------------------------------------------- */

typedef struct next_case {
    const char *tz, *spec, *after;
    const char *want; /* NULL: DX_ERR_NOT_FOUND */
} next_case;

static const next_case next_cases[] = {
    /* UTC: steps, strictly after, weekdays, rare dates. */
    {"UTC", "*/15 * * * *", "2026-05-04T12:07:30Z", "2026-05-04T12:15:00Z"},
    {"UTC", "*/15 * * * *", "2026-05-04T12:15:00Z", "2026-05-04T12:30:00Z"},
    {"UTC", "*/15 * * * *", "2026-05-04T23:59:59Z", "2026-05-05T00:00:00Z"},
    {"UTC", "0 8 * * *", "2026-05-04T07:59:59Z", "2026-05-04T08:00:00Z"},
    {"UTC", "0 8 * * *", "2026-05-04T08:00:00Z", "2026-05-05T08:00:00Z"},
    {"UTC", "0 8 * * mon-fri", "2026-05-08T09:00:00Z", "2026-05-11T08:00:00Z"},
    {"UTC", "10-50/10 9 * * *", "2026-05-04T09:50:00Z", "2026-05-05T09:10:00Z"},
    {"UTC", "@yearly", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z"},
    {"UTC", "@monthly", "2026-05-04T00:00:00Z", "2026-06-01T00:00:00Z"},
    {"UTC", "@weekly", "2026-05-04T00:00:00Z", "2026-05-10T00:00:00Z"},
    {"UTC", "@hourly", "2026-05-04T12:00:00Z", "2026-05-04T13:00:00Z"},
    {"UTC", "@daily", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"},
    {"UTC", "0 0 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
    {"UTC", "0 0 29 2 *", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"},
    {"UTC", "0 12 31 * *", "2026-04-01T00:00:00Z", "2026-05-31T12:00:00Z"},
    {"UTC", "59 23 31 12 *", "2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z"},
    {"UTC", "0 0 13 * fri", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"},
    {"UTC", "0 0 13 * fri", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z"},
    {"UTC", "0 0 */2 * fri", "2026-01-01T00:00:00Z", "2026-01-09T00:00:00Z"},
    {"UTC", "0 0 13 2 5", "2026-01-01T00:00:00Z", "2026-02-06T00:00:00Z"},
    /* Several expressions: the earliest wins. */
    {"UTC", "30 9 * * *; 0 8 * * *", "2026-05-04T08:30:00Z", "2026-05-04T09:30:00Z"},
    {"UTC", "30 9 * * *; 0 8 * * *", "2026-05-04T09:30:00Z", "2026-05-05T08:00:00Z"},
    {"UTC", "0 0 30 2 *; @yearly", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z"},
    /* Impossible dates terminate. */
    {"UTC", "0 0 30 2 *", "2026-01-01T00:00:00Z", NULL},
    {"UTC", "0 0 31 4,6,9,11 *", "2026-01-01T00:00:00Z", NULL},
    {"Europe/Paris", "0 0 30 2 *", "2026-01-01T00:00:00Z", NULL},
    /* Europe/Paris on ordinary days: CET is UTC+1, CEST UTC+2. */
    {"Europe/Paris", "0 8 * * *", "2026-01-15T00:00:00Z", "2026-01-15T07:00:00Z"},
    {"Europe/Paris", "0 8 * * *", "2026-07-15T00:00:00Z", "2026-07-15T06:00:00Z"},
    {"Europe/Paris", "0 0 * * *", "2026-07-15T00:00:00Z", "2026-07-15T22:00:00Z"},
    {"Europe/Paris", "@daily", "2025-12-31T22:59:59Z", "2025-12-31T23:00:00Z"},
    {"Europe/Paris", "@yearly", "2026-01-01T00:00:00Z", "2026-12-31T23:00:00Z"},
    {"Europe/Paris", "0 8 * * mon", "2026-05-03T22:00:00Z", "2026-05-04T06:00:00Z"},
    /*
     * Spring forward, Sunday 2026-03-29: at 01:00Z the clock jumps from 02:00
     * CET to 03:00 CEST.  02:30 does not exist and runs once, at 03:00 CEST.
     */
    {"Europe/Paris", "30 2 * * *", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z"},
    {"Europe/Paris", "30 2 * * *", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"},
    {"Europe/Paris", "0 2 * * *", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z"},
    {"Europe/Paris", "30 1 * * *", "2026-03-28T12:00:00Z", "2026-03-29T00:30:00Z"},
    {"Europe/Paris", "59 1 * * *", "2026-03-28T12:00:00Z", "2026-03-29T00:59:00Z"},
    {"Europe/Paris", "30 3 * * *", "2026-03-28T12:00:00Z", "2026-03-29T01:30:00Z"},
    {"Europe/Paris", "0 8 * * *", "2026-03-28T07:00:00Z", "2026-03-29T06:00:00Z"},
    {"Europe/Paris", "30 2 * * *; 0 3 * * *", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"},
    /*
     * Fall back, Sunday 2026-10-25: at 01:00Z the clock goes back from 03:00
     * CEST to 02:00 CET.  02:30 happens twice and runs once, the first time.
     */
    {"Europe/Paris", "30 2 * * *", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z"},
    {"Europe/Paris", "30 2 * * *", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
    {"Europe/Paris", "30 2 * * *", "2026-10-25T01:00:00Z", "2026-10-26T01:30:00Z"},
    {"Europe/Paris", "0 3 * * *", "2026-10-24T12:00:00Z", "2026-10-25T02:00:00Z"},
    /* From inside the repeated hour (02:33 CET), 02:45 has run already: next is 03:00 CET. */
    {"Europe/Paris", "*/15 * * * *", "2026-10-25T01:33:33Z", "2026-10-25T02:00:00Z"},
    {"Europe/Paris", "@hourly", "2026-10-25T00:59:59Z", "2026-10-25T02:00:00Z"},
    {"Europe/Paris", "0 8 * * *", "2026-10-24T12:00:00Z", "2026-10-25T07:00:00Z"},
};

static void test_next(void)
{
    for (size_t i = 0; i < COUNT(next_cases); i++) {
        const next_case *c = &next_cases[i];
        cron_schedule *s;
        time_t next = 12345;
        dx_status st;
        char what[160];

        testing_set_tz(c->tz);
        s = parse_ok(c->spec);
        st = cron_next(s, testing_utc(c->after), &next);
        snprintf(what, sizeof(what), "TZ=%s \"%s\" after %s", c->tz, c->spec, c->after);
        if (c->want == NULL) {
            CHECK_EQ_INT(st, DX_ERR_NOT_FOUND);
            CHECK_EQ_INT(next, 12345);
        } else {
            CHECK_EQ_INT(st, DX_OK);
            CHECK_TIME(what, next, testing_utc(c->want));
        }
        cron_destroy(s);
    }

    {
        cron_schedule *s = parse_ok("@daily");
        time_t next = 0;

        CHECK_EQ_INT(cron_next(NULL, 0, &next), DX_ERR_INVALID);
        CHECK_EQ_INT(cron_next(s, 0, NULL), DX_ERR_INVALID);
        CHECK_EQ_INT(cron_next(s, (time_t)300000000000LL, &next), DX_ERR_INVALID);
        cron_destroy(s);
    }
}

/* ---- lists: DST days and catch-up ------------------------------------------------------ */

typedef struct between_case {
    const char *tz, *spec, *from, *to;
    size_t max;
    const char *want[8]; /* NULL-terminated */
} between_case;

static const between_case between_cases[] = {
    /* Every half hour across the spring-forward gap: 02:00 and 02:30 become one run at 03:00. */
    {"Europe/Paris",
     "*/30 * * * *",
     "2026-03-29T00:00:00Z",
     "2026-03-29T02:00:00Z",
     8,
     {"2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z",
      "2026-03-29T02:00:00Z", NULL}},
    /* 02:30 and 03:00 both scheduled: a single run at 03:00 on the 29th. */
    {"Europe/Paris",
     "30 2 * * *; 0 3 * * *",
     "2026-03-28T12:00:00Z",
     "2026-03-30T12:00:00Z",
     8,
     {"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z", "2026-03-30T01:00:00Z", NULL}},
    /* Over both days around the fall-back night, 02:30 runs exactly twice, not three times. */
    {"Europe/Paris",
     "30 2 * * *",
     "2026-10-24T12:00:00Z",
     "2026-10-26T12:00:00Z",
     8,
     {"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", NULL}},
    /* Every half hour across the repeated hour: nothing runs while the clock repeats 02:xx. */
    {"Europe/Paris",
     "*/30 * * * *",
     "2026-10-24T23:00:00Z",
     "2026-10-25T02:30:00Z",
     8,
     {"2026-10-24T23:30:00Z", "2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z",
      "2026-10-25T02:00:00Z", "2026-10-25T02:30:00Z", NULL}},
    /* Catch-up: down from Monday 08:30 to Wednesday 09:00 local, two 08:00 runs missed. */
    {"Europe/Paris",
     "0 8 * * *",
     "2026-05-04T06:30:00Z",
     "2026-05-06T07:00:00Z",
     8,
     {"2026-05-05T06:00:00Z", "2026-05-06T06:00:00Z", NULL}},
    /* The same, but only room for the oldest one. */
    {"Europe/Paris",
     "0 8 * * *",
     "2026-05-04T06:30:00Z",
     "2026-05-06T07:00:00Z",
     1,
     {"2026-05-05T06:00:00Z", NULL}},
    /* Catch-up across the fall-back weekend: one run a day, the offset changing under it. */
    {"Europe/Paris",
     "0 8 * * *",
     "2026-10-24T05:00:00Z",
     "2026-10-26T08:00:00Z",
     8,
     {"2026-10-24T06:00:00Z", "2026-10-25T07:00:00Z", "2026-10-26T07:00:00Z", NULL}},
    /* `to` is included, `from` is not. */
    {"UTC",
     "0 8 * * *",
     "2026-05-04T08:00:00Z",
     "2026-05-05T08:00:00Z",
     8,
     {"2026-05-05T08:00:00Z", NULL}},
    {"UTC", "0 8 * * *", "2026-05-05T08:00:00Z", "2026-05-05T08:00:00Z", 8, {NULL}},
    {"UTC", "0 8 * * *", "2026-05-06T00:00:00Z", "2026-05-05T00:00:00Z", 8, {NULL}},
    {"UTC", "0 0 30 2 *", "2026-01-01T00:00:00Z", "2036-01-01T00:00:00Z", 8, {NULL}},
};

static void test_between(void)
{
    for (size_t i = 0; i < COUNT(between_cases); i++) {
        const between_case *c = &between_cases[i];
        time_t out[8];
        size_t want_n = 0, n, counted;
        cron_schedule *s;
        char what[200];

        while (c->want[want_n] != NULL)
            want_n++;
        testing_set_tz(c->tz);
        s = parse_ok(c->spec);
        n = cron_between(s, testing_utc(c->from), testing_utc(c->to), out, c->max);
        counted = cron_between(s, testing_utc(c->from), testing_utc(c->to), NULL, c->max);
        snprintf(what, sizeof(what), "TZ=%s \"%s\" in (%s, %s]", c->tz, c->spec, c->from, c->to);
        testing_checks++;
        if (n != want_n)
            testing_fail(__FILE__, __LINE__, "%s: %zu instants, want %zu", what, n, want_n);
        CHECK_EQ_INT(counted, n);
        for (size_t j = 0; j < n && j < want_n; j++)
            CHECK_TIME(what, out[j], testing_utc(c->want[j]));
        cron_destroy(s);
    }
}

/*
 * An independent model of the DST rule, minute by minute: an instant t runs
 * when some matching wall-clock minute lies above every reading the clock
 * showed before t and at or below its reading at t.  cron_between() must
 * agree with it around every kind of transition: one hour (Paris, New York),
 * at midnight (Santiago), half an hour (Lord Howe), and a whole day skipped
 * (Apia, 30 December 2011).
 */
static int64_t wall_seconds(time_t t)
{
    struct tm tm;

    localtime_r(&t, &tm);
    return (int64_t)timegm(&tm);
}

static void test_against_model(void)
{
    static const struct {
        const char *tz, *from;
    } windows[] = {
        {"Europe/Paris", "2026-03-27T12:00:00Z"},
        {"Europe/Paris", "2026-10-23T12:00:00Z"},
        {"America/New_York", "2026-03-06T12:00:00Z"},
        {"America/New_York", "2026-10-30T12:00:00Z"},
        {"America/Santiago", "2026-04-03T12:00:00Z"},
        {"America/Santiago", "2026-09-04T12:00:00Z"},
        {"Australia/Lord_Howe", "2026-04-03T00:00:00Z"},
        {"Australia/Lord_Howe", "2026-10-02T00:00:00Z"},
        {"Pacific/Apia", "2011-12-28T00:00:00Z"},
        {"UTC", "2026-03-27T12:00:00Z"},
        /* Starting inside the repeated hour, and at the gap. */
        {"Europe/Paris", "2026-10-25T01:20:00Z"},
        {"Europe/Paris", "2026-03-29T01:00:00Z"},
    };
    static const char *const specs[] = {
        "30 2 * * *",  "*/15 * * * *",    "0,30 2,3 * * *", "@hourly",
        "59 1 * * *",  "*/7 1-3 * * *",   "@daily",         "45 23 * * *",
        "0 0 * * sun", "15,45 0-2 * * *", "0 12 30 12 *",
    };
    enum { WINDOW = 4 * 86400, MAX_RUNS = 4 * 24 * 60 };
    static time_t model[MAX_RUNS], got[MAX_RUNS];

    for (size_t w = 0; w < COUNT(windows); w++) {
        time_t from = testing_utc(windows[w].from), to = from + WINDOW;

        testing_set_tz(windows[w].tz);
        for (size_t k = 0; k < COUNT(specs); k++) {
            cron_schedule *s = parse_ok(specs[k]);
            int64_t highest = wall_seconds(from);
            size_t nm = 0, ng;

            /* The clock may have read more before `from`: clocks go back by at most an hour. */
            for (time_t b = from; b > from - 3 * 3600; b -= 60)
                if (wall_seconds(b - 1) > highest)
                    highest = wall_seconds(b - 1);

            for (time_t t = from + 60; t <= to; t += 60) {
                int64_t wall = wall_seconds(t);
                bool runs = false;

                /* Each whole minute above the highest reading so far, up to the reading at t. */
                for (int64_t m = highest - (highest % 60 + 60) % 60 + 60; m <= wall && !runs;
                     m += 60) {
                    time_t as_utc = (time_t)m;
                    struct tm tm;

                    gmtime_r(&as_utc, &tm);
                    runs = cron_matches(s, &tm);
                }
                if (runs)
                    model[nm++] = t;
                if (wall > highest)
                    highest = wall;
            }
            ng = cron_between(s, from, to, got, MAX_RUNS);
            testing_checks++;
            if (ng != nm)
                testing_fail(__FILE__, __LINE__, "TZ=%s \"%s\" from %s: %zu runs, model %zu",
                             windows[w].tz, specs[k], windows[w].from, ng, nm);
            for (size_t j = 0; j < ng && j < nm; j++) {
                if (got[j] != model[j]) {
                    char what[160];

                    snprintf(what, sizeof(what), "TZ=%s \"%s\" run %zu", windows[w].tz, specs[k],
                             j);
                    CHECK_TIME(what, got[j], model[j]);
                    break;
                }
            }
            cron_destroy(s);
        }
    }
}

int main(void)
{
    test_parse_valid();
    test_matches();
    test_parse_invalid();
    test_parse_limits();
    test_next();
    test_between();
    test_against_model();
    return testing_finish("cron");
}
