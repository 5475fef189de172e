/*
 * Unit tests for the catch-up maths of daily-checker's scheduler
 * (workers/daily-checker/scheduler.c): which order dates a scheduler that was
 * down from `last` to `now` owes, grouped by local date in TZ, newest
 * CATCHUP_MAX_DAYS of them, across the 2026 daylight-saving days in
 * Europe/Paris.  The claims and the last-run record need a NATS server: they
 * are covered by tests/integration/test_schedule.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "scheduler.h"
#include "testing.h"

#define MAX_DATES 16

static const struct {
    const char *tz, *spec, *last, *now;
    size_t max;
    /* Expected: "date@instant" oldest first, the number left out, the newest instant. */
    const char *want[8];
    size_t skipped;
    const char *newest;
} cases[] = {
    /* Down four days: one run per missed order date, oldest first. */
    {"Europe/Paris",
     "0 8 * * *",
     "2026-11-20T07:00:00Z",
     "2026-11-24T12:00:00Z",
     7,
     {"2026-11-21@2026-11-21T07:00:00Z", "2026-11-22@2026-11-22T07:00:00Z",
      "2026-11-23@2026-11-23T07:00:00Z", "2026-11-24@2026-11-24T07:00:00Z"},
     0,
     "2026-11-24T07:00:00Z"},
    /* CATCHUP_MAX_DAYS=2: the two newest dates only. */
    {"Europe/Paris",
     "0 8 * * *",
     "2026-11-20T07:00:00Z",
     "2026-11-24T12:00:00Z",
     2,
     {"2026-11-23@2026-11-23T07:00:00Z", "2026-11-24@2026-11-24T07:00:00Z"},
     2,
     "2026-11-24T07:00:00Z"},
    /* CATCHUP_MAX_DAYS=0: nothing run, but the newest instant is known. */
    {"Europe/Paris",
     "0 8 * * *",
     "2026-11-20T07:00:00Z",
     "2026-11-24T12:00:00Z",
     0,
     {NULL},
     4,
     "2026-11-24T07:00:00Z"},
    /* Nothing missed: the record is the last instant. */
    {"Europe/Paris",
     "0 8 * * *",
     "2026-11-24T07:00:00Z",
     "2026-11-24T12:00:00Z",
     7,
     {NULL},
     0,
     "2026-11-24T07:00:00Z"},
    /* A record ahead of this clock (another replica's clock is ahead). */
    {"Europe/Paris",
     "0 8 * * *",
     "2026-11-25T07:00:00Z",
     "2026-11-24T12:00:00Z",
     7,
     {NULL},
     0,
     "2026-11-25T07:00:00Z"},
    /* Two times on one day: one run for the date, at the later time. */
    {"Europe/Paris",
     "0 8 * * *; 0 14 * * *",
     "2026-11-23T13:00:00Z",
     "2026-11-24T14:00:00Z",
     7,
     {"2026-11-24@2026-11-24T13:00:00Z"},
     0,
     "2026-11-24T13:00:00Z"},
    /* The order date is the local date: 00:30 in Paris is 23:30 UTC the day before. */
    {"Europe/Paris",
     "30 0 * * *",
     "2026-11-22T12:00:00Z",
     "2026-11-24T12:00:00Z",
     7,
     {"2026-11-23@2026-11-22T23:30:00Z", "2026-11-24@2026-11-23T23:30:00Z"},
     0,
     "2026-11-23T23:30:00Z"},
    /* Spring forward (29 March 2026): 02:30 does not exist, it runs once at 03:00 CEST. */
    {"Europe/Paris",
     "30 2 * * *",
     "2026-03-27T12:00:00Z",
     "2026-03-30T12:00:00Z",
     7,
     {"2026-03-28@2026-03-28T01:30:00Z", "2026-03-29@2026-03-29T01:00:00Z",
      "2026-03-30@2026-03-30T00:30:00Z"},
     0,
     "2026-03-30T00:30:00Z"},
    /* Fall back (25 October 2026): 02:30 happens twice, it runs once, the first time. */
    {"Europe/Paris",
     "30 2 * * *",
     "2026-10-24T12:00:00Z",
     "2026-10-26T12:00:00Z",
     7,
     {"2026-10-25@2026-10-25T00:30:00Z", "2026-10-26@2026-10-26T01:30:00Z"},
     0,
     "2026-10-26T01:30:00Z"},
    /* Every 15 minutes across the fall-back night: one date, its last instant. */
    {"Europe/Paris",
     "*/15 * * * *",
     "2026-10-24T22:00:00Z",
     "2026-10-25T12:00:00Z",
     7,
     {"2026-10-25@2026-10-25T12:00:00Z"},
     0,
     "2026-10-25T12:00:00Z"},
    /* A record from 1970: only the last SCHEDULER_LOOKBACK_S is walked. */
    {"UTC",
     "0 8 * * *",
     "1970-01-02T00:00:00Z",
     "2026-11-24T12:00:00Z",
     2,
     {"2026-11-23@2026-11-23T08:00:00Z", "2026-11-24@2026-11-24T08:00:00Z"},
     365,
     "2026-11-24T08:00:00Z"},
};

static void test_missed_dates(void)
{
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        cron_schedule *s = NULL;
        scheduler_missed out[MAX_DATES];
        size_t skipped = 99, n, want_n = 0;
        time_t newest = 0;
        char err[256];

        testing_set_tz(cases[c].tz);
        if (cron_parse(cases[c].spec, &s, err, sizeof(err)) != DX_OK) {
            testing_fail(__FILE__, __LINE__, "case %zu: %s", c, err);
            continue;
        }
        n = scheduler_missed_dates(s, testing_utc(cases[c].last), testing_utc(cases[c].now), out,
                                   cases[c].max, &skipped, &newest);
        while (want_n < 8 && cases[c].want[want_n] != NULL)
            want_n++;
        testing_checks++;
        if (n != want_n)
            testing_fail(__FILE__, __LINE__, "case %zu (%s): %zu dates, want %zu", c, cases[c].spec,
                         n, want_n);
        for (size_t i = 0; i < n && i < want_n; i++) {
            char got[64], at[32];
            struct tm tm;

            gmtime_r(&out[i].scheduled_at, &tm);
            strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
            snprintf(got, sizeof(got), "%s@%s", out[i].order_date, at);
            testing_checks++;
            if (strcmp(got, cases[c].want[i]) != 0)
                testing_fail(__FILE__, __LINE__, "case %zu (%s) date %zu: got %s, want %s", c,
                             cases[c].spec, i, got, cases[c].want[i]);
        }
        CHECK_EQ_INT(skipped, cases[c].skipped);
        CHECK_EQ_INT(newest, testing_utc(cases[c].newest));
        cron_destroy(s);
    }
}

/* Every minute for a year is walked in chunks without a large buffer. */
static void test_long_walk(void)
{
    cron_schedule *s = NULL;
    scheduler_missed out[3];
    size_t skipped = 0, n;
    time_t newest = 0, now = testing_utc("2026-11-24T12:00:30Z");

    testing_set_tz("UTC");
    CHECK(cron_parse("* * * * *", &s, NULL, 0) == DX_OK);
    n = scheduler_missed_dates(s, now - 40 * 86400, now, out, 3, &skipped, &newest);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_STR(out[2].order_date, "2026-11-24");
    CHECK_EQ_INT(out[2].scheduled_at, testing_utc("2026-11-24T12:00:00Z"));
    CHECK_EQ_INT(skipped, 38);
    CHECK_EQ_INT(newest, testing_utc("2026-11-24T12:00:00Z"));
    cron_destroy(s);
}

int main(void)
{
    test_missed_dates();
    test_long_walk();
    return testing_finish("test_scheduler");
}
