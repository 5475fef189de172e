/*
 * days.c: the state of every expected client's day, driven by a fake clock
 * (the now passed to days_evaluate) in Europe/Paris: every state, the
 * transitions between them, daylight saving days, paused and resolved
 * days, the announcements and the bounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "days.h"
#include "testing.h"
#include "util.h"

#define MS(iso) ((int64_t)testing_utc(iso) * 1000)

static days_profile profile_of(const char *client, int minute, unsigned mask, int offset)
{
    days_profile p = {.enabled = 1,
                      .expected_minute = minute,
                      .expected_days = mask,
                      .order_date_offset_days = offset};

    util_copy(p.client_id, sizeof(p.client_id), client);
    return p;
}

static void check(days_book *d, const char *client, const char *date, const char *found,
                  const char *iso)
{
    event_drop_check ev = {0};

    util_copy(ev.client_id, sizeof(ev.client_id), client);
    util_copy(ev.order_date, sizeof(ev.order_date), date);
    util_copy(ev.found, sizeof(ev.found), found);
    snprintf(ev.source, sizeof(ev.source), "%s/input.csv", client);
    util_copy(ev.order_date_event, sizeof(ev.order_date_event), "od-1");
    util_copy(ev.trace_id, sizeof(ev.trace_id), "0123456789abcdef0123456789abcdef");
    days_add_check(d, &ev, MS(iso));
}

static int ready(days_book *d, const char *event_id, const char *client, const char *date,
                 const char *iso)
{
    event_file_ready ev = {0};

    util_copy(ev.event_id, sizeof(ev.event_id), event_id);
    util_copy(ev.client_id, sizeof(ev.client_id), client);
    util_copy(ev.order_date, sizeof(ev.order_date), date);
    snprintf(ev.source, sizeof(ev.source), "%s/input.csv", client);
    ev.rows_in = 10;
    ev.rows_out = 8;
    ev.rows_rejected = 2;
    return days_add_ready(d, &ev, MS(iso));
}

static int failed(days_book *d, const char *event_id, const char *client, const char *date,
                  const char *iso)
{
    event_file_failed ev = {0};

    util_copy(ev.event_id, sizeof(ev.event_id), event_id);
    util_copy(ev.client_id, sizeof(ev.client_id), client);
    util_copy(ev.order_date, sizeof(ev.order_date), date);
    snprintf(ev.source, sizeof(ev.source), "%s/input.csv", client);
    util_copy(ev.reason, sizeof(ev.reason), "no header row");
    return days_add_failed(d, &ev, MS(iso));
}

/* The row of client and date at now, copied into *out; 0 when there is none. */
static int row_at(days_book *d, const char *client, const char *date, const char *now,
                  days_row *out)
{
    days_row *rows = NULL;
    size_t n = 0;
    int found = 0;

    if (days_evaluate(d, MS(now), 1, &rows, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i].client_id, client) == 0 && strcmp(rows[i].order_date, date) == 0) {
            *out = rows[i];
            found = 1;
        }
    }
    free(rows);
    return found;
}

static const char *state_at(days_book *d, const char *client, const char *date, const char *now)
{
    days_row r;

    return row_at(d, client, date, now, &r) ? days_state_name(r.state) : "(no row)";
}

static void announce(days_book *d, const days_row *r)
{
    event_client_state ev = {0};

    util_copy(ev.client_id, sizeof(ev.client_id), r->client_id);
    util_copy(ev.order_date, sizeof(ev.order_date), r->order_date);
    util_copy(ev.state, sizeof(ev.state), days_state_name(r->state));
    util_copy(ev.caused_by, sizeof(ev.caused_by), r->caused_by);
    days_add_announced(d, &ev);
}

static void test_local_instant(void)
{
    int64_t spring = util_days_from_civil(2026, 3, 29), fall = util_days_from_civil(2026, 10, 25);

    CHECK_EQ_INT(days_local_instant(util_days_from_civil(2026, 12, 1), 8 * 60),
                 testing_utc("2026-12-01T07:00:00Z"));
    /* 02:30 does not exist on 29 March: the end of the gap, 03:00 local. */
    CHECK_EQ_INT(days_local_instant(spring, 150), testing_utc("2026-03-29T01:00:00Z"));
    CHECK_EQ_INT(days_local_instant(spring, 180), testing_utc("2026-03-29T01:00:00Z"));
    /* 23 and 25 hours. */
    CHECK_EQ_INT(days_local_instant(spring + 1, 0) - days_local_instant(spring, 0), 23 * 3600);
    CHECK_EQ_INT(days_local_instant(fall + 1, 0) - days_local_instant(fall, 0), 25 * 3600);
    /* 02:30 twice on 25 October: the first one (still summer time). */
    CHECK_EQ_INT(days_local_instant(fall, 150), testing_utc("2026-10-25T00:30:00Z"));
}

/* waiting -> late -> not_stable -> requested -> ok, each with its since. */
static void test_late_day(void)
{
    days_book *d = days_create();
    days_profile p = profile_of("US1", 8 * 60, 0, 0);
    days_row r;

    days_set_profiles(d, &p, 1);
    CHECK(row_at(d, "US1", "2026-12-01", "2026-12-01T06:59:00Z", &r));
    CHECK_EQ_STR(days_state_name(r.state), "waiting");
    CHECK_EQ_INT(r.expected_ms, MS("2026-12-01T07:00:00Z"));
    CHECK_EQ_INT(r.since_ms, MS("2026-11-30T23:00:00Z"));
    CHECK(!r.announce);
    CHECK(row_at(d, "US1", "2026-12-01", "2026-12-01T07:00:00Z", &r));
    CHECK_EQ_STR(days_state_name(r.state), "late");
    CHECK_EQ_STR(r.reason, "no drop by 08:00");
    CHECK_EQ_INT(r.since_ms, MS("2026-12-01T07:00:00Z"));
    CHECK(r.announce);
    CHECK_EQ_STR(r.caused_by, "");
    announce(d, &r);
    CHECK(row_at(d, "US1", "2026-12-01", "2026-12-01T07:01:00Z", &r));
    CHECK_EQ_STR(days_state_name(r.state), "late");
    CHECK(!r.announce);
    CHECK_EQ_STR(r.previous, "late");
    check(d, "US1", "2026-12-01", "not_stable", "2026-12-01T07:10:00Z");
    check(d, "US1", "2026-12-01", "not_stable", "2026-12-01T07:20:00Z");
    CHECK(row_at(d, "US1", "2026-12-01", "2026-12-01T07:30:00Z", &r));
    CHECK_EQ_STR(days_state_name(r.state), "not_stable");
    CHECK_EQ_STR(r.reason, "US1/input.csv is still changing");
    CHECK_EQ_INT(r.since_ms, MS("2026-12-01T07:10:00Z"));
    CHECK_EQ_INT(r.drop_seen_ms, MS("2026-12-01T07:10:00Z"));
    check(d, "US1", "2026-12-01", "taken", "2026-12-01T07:40:00Z");
    CHECK_EQ_STR(state_at(d, "US1", "2026-12-01", "2026-12-01T07:41:00Z"), "requested");
    CHECK_EQ_INT(ready(d, "r1", "US1", "2026-12-01", "2026-12-01T07:42:00Z"), 1);
    CHECK_EQ_INT(ready(d, "r1", "US1", "2026-12-01", "2026-12-01T07:42:00Z"), 0);
    CHECK(row_at(d, "US1", "2026-12-01", "2026-12-02T10:00:00Z", &r));
    CHECK_EQ_STR(days_state_name(r.state), "ok");
    CHECK_EQ_INT(r.rows_in, 10);
    CHECK_EQ_INT(r.rows_rejected, 2);
    CHECK_EQ_INT(r.drop_seen_ms, MS("2026-12-01T07:10:00Z"));
    CHECK_EQ_INT(days_last_success_ms(d, "US1"), MS("2026-12-01T07:42:00Z"));
    CHECK_EQ_INT(days_last_success_ms(d, "XX"), -1);
    days_destroy(d);
}

/* failed -> resolved by a later success of the same source, announced once each. */
static void test_failed_resolved(void)
{
    days_book *d = days_create();
    days_row r;
    char id[200];

    CHECK_EQ_INT(failed(d, "f1", "EU1", "2026-12-01", "2026-12-01T07:00:00Z"), 1);
    CHECK_EQ_INT(failed(d, "f1", "EU1", "2026-12-01", "2026-12-01T07:00:00Z"), 0);
    CHECK(row_at(d, "EU1", "2026-12-01", "2026-12-01T08:00:00Z", &r));
    CHECK_EQ_STR(days_state_name(r.state), "failed");
    CHECK_EQ_STR(r.reason, "no header row");
    CHECK_EQ_STR(r.caused_by, "f1");
    CHECK(r.announce);
    days_msg_id(&r, id, sizeof(id));
    CHECK_EQ_STR(id, "client-state:EU1:2026-12-01:failed:f1");
    announce(d, &r);
    CHECK(row_at(d, "EU1", "2026-12-01", "2026-12-01T08:00:00Z", &r));
    CHECK(!r.announce);
    ready(d, "r2", "EU1", "2026-12-01", "2026-12-01T09:00:00Z");
    CHECK(row_at(d, "EU1", "2026-12-01", "2026-12-01T09:01:00Z", &r));
    CHECK_EQ_STR(days_state_name(r.state), "resolved");
    CHECK_EQ_STR(r.caused_by, "r2");
    CHECK_EQ_INT(r.since_ms, MS("2026-12-01T09:00:00Z"));
    CHECK_EQ_STR(r.previous, "failed");
    CHECK(r.announce);
    announce(d, &r);
    CHECK(row_at(d, "EU1", "2026-12-01", "2026-12-01T09:02:00Z", &r));
    CHECK(!r.announce);
    /* A new failure of the same drop opens it again, announced anew. */
    failed(d, "f3", "EU1", "2026-12-01", "2026-12-01T10:00:00Z");
    CHECK(row_at(d, "EU1", "2026-12-01", "2026-12-01T10:01:00Z", &r));
    CHECK_EQ_STR(days_state_name(r.state), "failed");
    CHECK_EQ_STR(r.caused_by, "f3");
    CHECK(r.announce);
    days_destroy(d);
}

/* A failure of an old day is shown, never announced. */
static void test_old_days_not_announced(void)
{
    days_book *d = days_create();
    days_row r;

    failed(d, "f1", "EU1", "2026-11-20", "2026-11-20T07:00:00Z");
    CHECK(row_at(d, "EU1", "2026-11-20", "2026-12-01T08:00:00Z", &r));
    CHECK_EQ_STR(days_state_name(r.state), "failed");
    CHECK(!r.announce);
    CHECK(!r.newest);
    days_destroy(d);
}

/* No expected time: never late, missing when the day ends (at local midnight). */
static void test_missing(void)
{
    days_book *d = days_create();
    days_profile p = profile_of("NP1", -1, 0, 0);
    days_row r;

    days_set_profiles(d, &p, 1);
    CHECK(row_at(d, "NP1", "2026-12-01", "2026-12-01T22:59:00Z", &r));
    CHECK_EQ_STR(days_state_name(r.state), "waiting");
    CHECK_EQ_INT(r.expected_ms, -1);
    CHECK(row_at(d, "NP1", "2026-12-01", "2026-12-01T23:00:00Z", &r));
    CHECK_EQ_STR(days_state_name(r.state), "missing");
    CHECK_EQ_INT(r.since_ms, MS("2026-12-01T23:00:00Z"));
    CHECK(r.announce);
    CHECK(!r.newest); /* 2026-12-02 has begun */
    CHECK_EQ_STR(state_at(d, "NP1", "2026-12-02", "2026-12-01T23:00:00Z"), "waiting");
    /* Still changing when the day ended: missing, with the drop named. */
    check(d, "NP1", "2026-12-02", "not_stable", "2026-12-02T20:00:00Z");
    CHECK_EQ_STR(state_at(d, "NP1", "2026-12-02", "2026-12-02T22:00:00Z"), "not_stable");
    CHECK(row_at(d, "NP1", "2026-12-02", "2026-12-02T23:00:00Z", &r));
    CHECK_EQ_STR(days_state_name(r.state), "missing");
    CHECK_EQ_STR(r.reason, "the day ended with NP1/input.csv still changing");
    /* Two days later, the day of the 1st is no longer expected (no record). */
    CHECK_EQ_STR(state_at(d, "NP1", "2026-12-01", "2026-12-03T10:00:00Z"), "(no row)");
    days_destroy(d);
}

/* Expected days: a Tuesday is not in Monday-only; a drop still shows. */
static void test_expected_days(void)
{
    days_book *d = days_create();
    days_profile p = profile_of("WK1", 8 * 60, 1u << 0, 0); /* Mondays */

    days_set_profiles(d, &p, 1);
    CHECK_EQ_STR(state_at(d, "WK1", "2026-11-30", "2026-11-30T08:00:00Z"), "late");
    CHECK_EQ_STR(state_at(d, "WK1", "2026-12-01", "2026-12-01T10:00:00Z"), "(no row)");
    check(d, "WK1", "2026-12-01", "none", "2026-12-01T09:00:00Z");
    CHECK_EQ_STR(state_at(d, "WK1", "2026-12-01", "2026-12-01T10:00:00Z"), "(no row)");
    ready(d, "r1", "WK1", "2026-12-01", "2026-12-01T09:30:00Z");
    CHECK_EQ_STR(state_at(d, "WK1", "2026-12-01", "2026-12-01T10:00:00Z"), "ok");
    days_destroy(d);
}

/* The order date is the run date plus order_date_offset_days. */
static void test_offset(void)
{
    days_book *d = days_create();
    days_profile p = profile_of("YD1", 6 * 60, 0, -1);
    days_row r;

    days_set_profiles(d, &p, 1);
    CHECK(row_at(d, "YD1", "2026-11-30", "2026-12-01T05:30:00Z", &r));
    CHECK_EQ_STR(days_state_name(r.state), "late");
    CHECK_EQ_INT(r.expected_ms, MS("2026-12-01T05:00:00Z"));
    CHECK(r.newest);
    days_destroy(d);
}

/* Paused by the profile or by the check; an outcome still wins. */
static void test_paused(void)
{
    days_book *d = days_create();
    days_profile p[2] = {profile_of("PA1", 8 * 60, 0, 0), profile_of("PA2", 8 * 60, 0, 0)};
    days_row r;

    p[0].enabled = 0;
    days_set_profiles(d, p, 2);
    CHECK(row_at(d, "PA1", "2026-12-01", "2026-12-01T23:30:00Z", &r));
    CHECK_EQ_STR(days_state_name(r.state), "paused");
    CHECK(!r.announce);
    check(d, "PA2", "2026-12-01", "paused", "2026-12-01T09:00:00Z");
    CHECK_EQ_STR(state_at(d, "PA2", "2026-12-01", "2026-12-01T10:00:00Z"), "paused");
    ready(d, "r1", "PA1", "2026-12-01", "2026-12-01T09:30:00Z");
    CHECK_EQ_STR(state_at(d, "PA1", "2026-12-01", "2026-12-01T10:00:00Z"), "ok");
    days_destroy(d);
}

/* The DST days: late and missing at the right instants. */
static void test_dst(void)
{
    days_book *d = days_create();
    days_profile p = profile_of("DS1", 8 * 60, 0, 0);
    days_row r;

    days_set_profiles(d, &p, 1);
    CHECK_EQ_STR(state_at(d, "DS1", "2026-03-29", "2026-03-29T05:59:00Z"), "waiting");
    CHECK_EQ_STR(state_at(d, "DS1", "2026-03-29", "2026-03-29T06:00:00Z"), "late");
    CHECK_EQ_STR(state_at(d, "DS1", "2026-03-29", "2026-03-29T21:59:00Z"), "late");
    CHECK(row_at(d, "DS1", "2026-03-29", "2026-03-29T22:00:00Z", &r));
    CHECK_EQ_STR(days_state_name(r.state), "missing");
    CHECK_EQ_INT(r.since_ms, MS("2026-03-29T22:00:00Z"));
    CHECK_EQ_STR(state_at(d, "DS1", "2026-10-25", "2026-10-25T06:59:00Z"), "waiting");
    CHECK_EQ_STR(state_at(d, "DS1", "2026-10-25", "2026-10-25T07:00:00Z"), "late");
    CHECK_EQ_STR(state_at(d, "DS1", "2026-10-25", "2026-10-25T22:59:00Z"), "late");
    CHECK_EQ_STR(state_at(d, "DS1", "2026-10-25", "2026-10-25T23:00:00Z"), "missing");
    days_destroy(d);
}

/* Failed and late first; the newest DAYS_KEEP dates kept per client. */
static void test_order_and_bounds(void)
{
    days_book *d = days_create();
    days_profile p[2] = {profile_of("AA1", -1, 0, 0), profile_of("ZZ1", 7 * 60, 0, 0)};
    days_row *rows = NULL;
    size_t n = 0, aa = 0;
    char date[16];

    days_set_profiles(d, p, 2);
    ready(d, "ra", "AA1", "2026-12-01", "2026-12-01T06:00:00Z");
    failed(d, "fb", "BB1", "2026-12-01", "2026-12-01T06:00:00Z");
    CHECK_EQ_INT(days_evaluate(d, MS("2026-12-01T09:00:00Z"), 1, &rows, &n), 0);
    CHECK(n >= 3);
    if (n >= 3) {
        CHECK_EQ_STR(rows[0].client_id, "BB1");
        CHECK_EQ_STR(days_state_name(rows[0].state), "failed");
        CHECK_EQ_STR(rows[1].client_id, "ZZ1");
        CHECK_EQ_STR(days_state_name(rows[1].state), "late");
    }
    free(rows);
    for (int i = 1; i <= 20; i++) {
        snprintf(date, sizeof(date), "2026-11-%02d", i);
        ready(d, "x", "AA1", date, "2026-11-20T06:00:00Z");
    }
    CHECK_EQ_INT(days_evaluate(d, MS("2026-12-01T09:00:00Z"), 1, &rows, &n), 0);
    for (size_t i = 0; i < n; i++)
        aa += strcmp(rows[i].client_id, "AA1") == 0;
    /* The kept ones, and yesterday's expected day, which has no record. */
    CHECK_EQ_INT(aa, DAYS_KEEP + 1);
    free(rows);
    CHECK_EQ_STR(state_at(d, "AA1", "2026-11-01", "2026-12-01T09:00:00Z"), "(no row)");
    CHECK_EQ_STR(state_at(d, "AA1", "2026-12-01", "2026-12-01T09:00:00Z"), "ok");
    days_destroy(d);
}

int main(void)
{
    testing_set_tz("Europe/Paris");
    test_local_instant();
    test_late_day();
    test_failed_resolved();
    test_old_days_not_announced();
    test_missing();
    test_expected_days();
    test_offset();
    test_paused();
    test_dst();
    test_order_and_bounds();
    return testing_finish("test_days");
}
