/* util.c: ids, times, dates, bounded copies and SHA-256. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "testing.h"
#include "util.h"

static int all_lower_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return 0;
    return 1;
}

static void test_random_ids(void)
{
    char hex[8], uuid[37], other[37], trace[33];

    memset(hex, 'x', sizeof(hex));
    util_random_hex(hex, sizeof(hex));
    CHECK_EQ_INT(strlen(hex), 7);
    CHECK(all_lower_hex(hex, 7));

    util_uuid(uuid);
    util_uuid(other);
    CHECK_EQ_INT(strlen(uuid), 36);
    CHECK(uuid[8] == '-' && uuid[13] == '-' && uuid[18] == '-' && uuid[23] == '-');
    CHECK(uuid[14] == '4');                  /* version 4 */
    CHECK(strchr("89ab", uuid[19]) != NULL); /* RFC 4122 variant */
    CHECK(strcmp(uuid, other) != 0);

    for (int i = 0; i < 100; i++) {
        util_trace_id(trace);
        CHECK(util_trace_id_valid(trace));
    }
}

static void test_trace_ids(void)
{
    char a[33], b[33];

    /* The first 32 hex digits of SHA-256("abc"): a seed always gives the
     * same trace, so that redeliveries of one message share it. */
    util_trace_id_from("abc", a);
    CHECK_EQ_STR(a, "ba7816bf8f01cfea414140de5dae2223");
    util_trace_id_from("ORDERS/7", a);
    util_trace_id_from("ORDERS/7", b);
    CHECK_EQ_STR(a, b);
    util_trace_id_from("ORDERS/8", b);
    CHECK(strcmp(a, b) != 0);

    CHECK(util_trace_id_valid("0af7651916cd43dd8448eb211c80319c"));
    CHECK(!util_trace_id_valid("00000000000000000000000000000000")); /* W3C: invalid */
    CHECK(!util_trace_id_valid("0AF7651916CD43DD8448EB211C80319C")); /* lowercase only */
    CHECK(!util_trace_id_valid("0af7651916cd43dd8448eb211c80319"));  /* 31 digits */
    CHECK(!util_trace_id_valid("0af7651916cd43dd8448eb211c80319c0"));
    CHECK(!util_trace_id_valid("0af7651916cd43dd8448eb211c80319g"));
    CHECK(!util_trace_id_valid(""));
    CHECK(!util_trace_id_valid(NULL));
}

static void test_times(void)
{
    char out[32], date[11];
    int64_t before, after;

    util_rfc3339(out, 0);
    CHECK_EQ_STR(out, "1970-01-01T00:00:00.000Z");
    util_rfc3339(out, 1763971200123LL);
    CHECK_EQ_STR(out, "2025-11-24T08:00:00.123Z");
    util_rfc3339(out, 1709164799999LL);
    CHECK_EQ_STR(out, "2024-02-28T23:59:59.999Z");

    /* The local date follows TZ: 2026-03-29T01:00Z is still the 28th in
     * New York and already the 29th in Tokyo. */
    testing_set_tz("America/New_York");
    util_local_date(testing_utc("2026-03-29T01:00:00Z"), date);
    CHECK_EQ_STR(date, "2026-03-28");
    testing_set_tz("Asia/Tokyo");
    util_local_date(testing_utc("2026-03-29T01:00:00Z"), date);
    CHECK_EQ_STR(date, "2026-03-29");
    testing_set_tz("UTC");
    util_today(date);
    CHECK(util_date_valid(date));

    before = util_monotonic_ms();
    after = util_monotonic_ms();
    CHECK(after >= before);
    CHECK(util_now_ms() > 1700000000000LL);
}

static void test_dates(void)
{
    static const struct {
        int year, month, days;
    } months[] = {
        {2026, 1, 31},  {2026, 2, 28}, {2024, 2, 29}, {2000, 2, 29}, {1900, 2, 28},
        {2100, 2, 28},  {2026, 4, 30}, {2026, 6, 30}, {2026, 9, 30}, {2026, 11, 30},
        {2026, 12, 31}, {2026, 7, 31}, {2026, 8, 31},
    };
    static const char *valid[] = {"2026-11-24", "2024-02-29", "2000-02-29", "1970-01-01",
                                  "2026-12-31"};
    static const char *invalid[] = {
        "2026-02-29", "1900-02-29", "2026-13-01", "2026-00-10",  "2026-04-31",
        "2026-11-00", "2026-1-01",  "2026/11/24", "2026-11-24x", "26-11-24",
        "",           "1969-12-31", "2026-11-2a", "+026-11-24",
    };

    for (size_t i = 0; i < sizeof(months) / sizeof(months[0]); i++)
        CHECK_EQ_INT(util_days_in_month(months[i].year, months[i].month), months[i].days);
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        CHECK(util_date_valid(valid[i]));
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        if (util_date_valid(invalid[i]))
            testing_fail(__FILE__, __LINE__, "\"%s\" taken as a date", invalid[i]);
        testing_checks++;
    }
    CHECK(!util_date_valid(NULL));
    /* Day numbers and back: the epoch, a leap day, across a year. */
    {
        int64_t day = -1;
        char back[11];

        CHECK(util_date_to_days("1970-01-01", &day) && day == 0);
        CHECK(util_date_to_days("2024-02-29", &day) && day == 19782);
        util_date_from_days(day, back);
        CHECK_EQ_STR(back, "2024-02-29");
        CHECK(util_date_to_days("2026-12-31", &day));
        util_date_from_days(day + 1, back);
        CHECK_EQ_STR(back, "2027-01-01");
        CHECK(!util_date_to_days("2026-02-29", &day));
    }
}

static void test_copy(void)
{
    char small[4], exact[6];

    CHECK_EQ_INT(util_copy(exact, sizeof(exact), "hello"), 0);
    CHECK_EQ_STR(exact, "hello");
    CHECK_EQ_INT(util_copy(small, sizeof(small), "hello"), -1);
    CHECK_EQ_STR(small, "hel"); /* cut, and still terminated */
    CHECK_EQ_INT(util_copy(small, sizeof(small), ""), 0);
    CHECK_EQ_STR(small, "");
    CHECK_EQ_INT(util_copy(small, 0, "x"), -1);
}

static void test_sha256(void)
{
    util_sha256 *h = util_sha256_create();
    char hex[65];

    CHECK(h != NULL);
    if (h == NULL)
        return;
    /* Streaming: the digest does not depend on how the input is cut. */
    util_sha256_update(h, "a", 1);
    util_sha256_update(h, "", 0);
    util_sha256_update(h, "bc", 2);
    util_sha256_hex(h, hex);
    CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    util_sha256_destroy(h);
    h = util_sha256_create();
    util_sha256_hex(h, hex);
    CHECK_EQ_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    util_sha256_destroy(h);
    util_sha256_destroy(NULL);
}

int main(void)
{
    test_random_ids();
    test_trace_ids();
    test_times();
    test_dates();
    test_copy();
    test_sha256();
    return testing_finish("test_util");
}
