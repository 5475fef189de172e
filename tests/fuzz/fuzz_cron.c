/*
 * libFuzzer target for the schedule maths: cron_parse(), then cron_next(),
 * cron_between() and cron_describe() on whatever parses.
 *
 * Input: the spec, optionally followed by a NUL byte, eight bytes choosing
 * the instant to search from (within the years 1970-2270) and one byte
 * choosing the time zone.  So the seed corpus stays readable text, and the
 * fuzzer can still reach daylight-saving transitions in several zones.
 *
 * Besides crashes and sanitizer reports, it aborts when an invariant of the
 * maths breaks: a next run not after its start, a run at a time the schedule
 * does not name (other than the end of a daylight-saving gap), cron_next()
 * and cron_between() disagreeing, the canonical form parsing differently, or
 * the runs of the next three hours differing from a minute-by-minute model of
 * the daylight-saving rule (the same model as tests/unit/test_cron.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const zones[] = {
    "Europe/Paris", "UTC", "America/New_York", "America/Santiago", "Australia/Lord_Howe",
};

static const char *current_zone;

static void use_zone(const char *zone)
{
    /* tzset() rereads the zone file, so only switch when the input asks for another zone. */
    if (current_zone != zone) {
        setenv("TZ", zone, 1);
        tzset();
        current_zone = zone;
    }
}

static void fail(const char *what, const char *spec)
{
    fprintf(stderr, "fuzz_cron: %s for \"%s\"\n", what, spec);
    abort();
}

/* The local clock's reading at t, as seconds since 1970-01-01 00:00 of the local calendar. */
static int64_t wall_seconds(time_t t, const char *spec)
{
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL)
        fail("localtime_r failed", spec);
    return (int64_t)timegm(&tm);
}

/*
 * The model: a minute boundary t runs when some matching wall-clock minute
 * lies above every reading the clock showed before t and at or below its
 * reading at t.  Compared with cron_between() over the next three hours.
 */
static void check_model(const cron_schedule *s, time_t after, const char *spec)
{
    enum { MINUTES = 180 };
    time_t model[MINUTES], got[MINUTES + 1];
    time_t first = after - after % 60 + 60, last = first + (MINUTES - 1) * 60;
    int64_t highest = wall_seconds(after, spec);
    size_t n = 0, n_got;

    /*
     * The clock may have read more before `after` than at it: in the repeated
     * hour of a fall-back night, 02:45 already ran at its first occurrence.
     * Clocks go back at most an hour in these zones, at whole minutes, so the
     * readings a second before each of the last three hours' minutes suffice.
     */
    for (time_t b = first - 60; b > after - 3 * 3600; b -= 60) {
        int64_t wall = wall_seconds(b - 1, spec);

        if (wall > highest)
            highest = wall;
    }

    for (time_t t = first; t <= last; t += 60) {
        int64_t wall = wall_seconds(t, spec);

        /* The first whole minute above highest (which is negative before 1970 locally). */
        for (int64_t m = highest - (highest % 60 + 60) % 60 + 60; m <= wall; m += 60) {
            time_t as_utc = (time_t)m;
            struct tm tm;

            if (gmtime_r(&as_utc, &tm) != NULL && cron_matches(s, &tm)) {
                model[n++] = t;
                break;
            }
        }
        if (wall > highest)
            highest = wall;
    }
    n_got = cron_between(s, after, last, got, MINUTES + 1);
    if (n_got != n)
        fail("cron_between and the model disagree on the number of runs", spec);
    for (size_t i = 0; i < n; i++)
        if (got[i] != model[i])
            fail("cron_between and the model disagree on a run", spec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 2026-03-28T23:00:00Z: the night Europe/Paris springs forward. */
    time_t after = 1774738800;
    const char *zone = zones[0];
    size_t spec_len = 0;
    char *spec, err[256];
    cron_schedule *s = NULL, *again = NULL;
    time_t next, again_next, listed[4];

    while (spec_len < size && data[spec_len] != 0)
        spec_len++;
    if (size >= spec_len + 9) {
        uint64_t raw = 0;

        for (size_t i = 0; i < 8; i++)
            raw = raw << 8 | data[spec_len + 1 + i];
        after = (time_t)(raw % ((uint64_t)300 * 366 * 86400));
    }
    if (size >= spec_len + 10)
        zone = zones[data[spec_len + 9] % (sizeof(zones) / sizeof(zones[0]))];
    use_zone(zone);

    spec = malloc(spec_len + 1);
    if (spec == NULL)
        return 0;
    memcpy(spec, data, spec_len);
    spec[spec_len] = '\0';

    if (cron_parse(spec, &s, err, sizeof(err)) != DX_OK) {
        if (err[0] == '\0' || strchr(err, '\n') != NULL)
            fail("error message empty or not one line", spec);
        goto done;
    }

    if (cron_parse(cron_describe(s), &again, err, sizeof(err)) != DX_OK)
        fail("canonical form does not parse", spec);
    if (strcmp(cron_describe(again), cron_describe(s)) != 0)
        fail("canonical form is not stable", spec);

    if (cron_next(s, after, &next) == DX_OK) {
        struct tm tm;
        time_t before = next - 1;
        struct tm tm_before;

        if (next <= after)
            fail("next run not after its start", spec);
        if (cron_next(again, after, &again_next) != DX_OK || again_next != next)
            fail("canonical form schedules differently", spec);
        /* Nothing is scheduled between `after` and `next`. */
        if (cron_next(s, next - 1, &again_next) != DX_OK || again_next != next)
            fail("cron_next(next - 1) != next", spec);
        if (cron_between(s, after, next, listed, 4) != 1 || listed[0] != next)
            fail("cron_between disagrees with cron_next", spec);
        /* A run is at a named minute, unless it is the end of a gap in the clock. */
        if (localtime_r(&next, &tm) == NULL || localtime_r(&before, &tm_before) == NULL)
            fail("localtime_r failed", spec);
        if (tm.tm_sec != 0)
            fail("run not on a whole minute", spec);
        if (!cron_matches(s, &tm) && tm.tm_gmtoff == tm_before.tm_gmtoff)
            fail("run at a time the schedule does not name", spec);
    }
    /* Long specs would only slow the fuzzer down here. */
    if (spec_len <= 256)
        check_model(s, after, spec);
    {
        /* A catch-up over a few days must be sorted and strictly after `from`. */
        size_t n = cron_between(s, after, after + 3 * 86400, listed, 4);

        for (size_t i = 0; i < n; i++)
            if (listed[i] <= (i == 0 ? after : listed[i - 1]) || listed[i] > after + 3 * 86400)
                fail("cron_between out of order or out of range", spec);
    }

done:
    cron_destroy(again);
    cron_destroy(s);
    free(spec);
    return 0;
}
