#include <stdio.h>

#include "profile.h"
#include "testing.h"

/* Parses text; returns the status, the reason in reason. */
static dx_status parse(profile *p, const char *text, char *reason, size_t len)
{
    reason[0] = '\0';
    return profile_parse(p, text, strlen(text), reason, len);
}

static void check_defaults(void)
{
    profile p;
    char reason[256];

    CHECK_EQ_INT(parse(&p, "{}", reason, sizeof(reason)), DX_OK);
    CHECK(profile_engine_default(&p));
    CHECK_EQ_INT(p.enabled, 1);
    CHECK_EQ_INT(p.order_date_offset_days, 0);
    CHECK_EQ_INT(p.expected_drop_minute, -1);
    CHECK_EQ_INT(p.expected_drop_days, 0);
    CHECK_EQ_STR(p.done_marker, "");
    CHECK_EQ_STR(p.notify, "");
    CHECK_EQ_INT(p.revision, 0);
}

static void check_every_field(void)
{
    profile p;
    char reason[256];
    const char *doc = "{\"description\":\"US shop\",\"aliases\":{\"Prix unitaire TTC\":"
                      "\"unit_price\",\"Placed on\":\"order_date\"},\"date_order\":\"MDY\","
                      "\"decimal_separator\":\",\",\"thousands_separator\":\".\","
                      "\"default_currency\":\"USD\",\"order_date_offset_days\":-1,"
                      "\"enabled\":false,\"done_marker\":\".done\",\"expected_drop_time\":"
                      "\"07:30\",\"expected_drop_days\":[\"mon\",\"fri\",\"sun\"],"
                      "\"notify\":\"webhook:ops-team\"}";

    CHECK_EQ_INT(parse(&p, doc, reason, sizeof(reason)), DX_OK);
    CHECK_EQ_STR(reason, "");
    CHECK_EQ_INT(p.alias_count, 2);
    CHECK_EQ_STR(p.aliases[0].header, "Prix unitaire TTC");
    CHECK_EQ_INT(p.aliases[0].column, COLUMN_UNIT_PRICE);
    CHECK_EQ_INT(p.aliases[1].column, COLUMN_ORDER_DATE);
    CHECK_EQ_INT(p.date_order, PROFILE_MDY);
    CHECK_EQ_INT(p.decimal_separator, ',');
    CHECK_EQ_INT(p.thousands_separator, '.');
    CHECK_EQ_STR(p.default_currency, "USD");
    CHECK_EQ_INT(p.order_date_offset_days, -1);
    CHECK_EQ_INT(p.enabled, 0);
    CHECK_EQ_STR(p.done_marker, ".done");
    CHECK_EQ_INT(p.expected_drop_minute, 7 * 60 + 30);
    CHECK_EQ_INT(p.expected_drop_days, 1u | 1u << 4 | 1u << 6);
    CHECK_EQ_STR(p.notify, "webhook:ops-team");
    CHECK(!profile_engine_default(&p));
    CHECK_EQ_INT(parse(&p, "{\"thousands_separator\":\"none\",\"decimal_separator\":\"auto\"}",
                       reason, sizeof(reason)),
                 DX_OK);
    CHECK_EQ_INT(p.thousands_separator, PROFILE_SEP_NONE);
    CHECK_EQ_INT(p.decimal_separator, PROFILE_SEP_AUTO);
    CHECK_EQ_INT(parse(&p, "{\"notify\":\"mailto:ops@example.com\",\"date_order\":\"YMD\"}", reason,
                       sizeof(reason)),
                 DX_OK);
    CHECK_EQ_INT(p.date_order, PROFILE_YMD);
    CHECK_EQ_STR(profile_date_order_name(p.date_order), "YMD");
}

/* Each bad document is refused, and the reason names what is wrong. */
static void check_refused(void)
{
    static const struct {
        const char *doc;
        const char *reason_has;
    } cases[] = {
        {"", "not valid JSON"},
        {"[]", "not a JSON object"},
        {"{\"colour\":1}", "unknown key \"colour\""},
        {"{\"enabled\":true,\"enabled\":false}", "appears twice"},
        {"{\"aliases\":{\"Prix\":\"price\"}}", "\"price\", which is not a column (order_id,"},
        {"{\"aliases\":{\"Prix\":3}}", "must map to a column"},
        {"{\"aliases\":[\"x\"]}", "aliases must be an object"},
        {"{\"aliases\":{\"\":\"unit_price\"}}", "1 to 127 bytes"},
        {"{\"aliases\":{\"A\":\"unit_price\",\"A\":\"quantity\"}}", "header \"A\" appears twice"},
        {"{\"date_order\":\"DDMM\"}", "date_order must be"},
        {"{\"date_order\":1}", "date_order must be a string"},
        {"{\"decimal_separator\":\" \"}", "decimal_separator must be"},
        {"{\"decimal_separator\":\"none\"}", "decimal_separator must be"},
        {"{\"thousands_separator\":\";\"}", "thousands_separator must be"},
        {"{\"decimal_separator\":\",\",\"thousands_separator\":\",\"}", "both \",\""},
        {"{\"default_currency\":\"usd\"}", "ISO 4217"},
        {"{\"default_currency\":\"EURO\"}", "ISO 4217"},
        {"{\"order_date_offset_days\":-1.5}", "whole number"},
        {"{\"order_date_offset_days\":40}", "from -31 to 31"},
        {"{\"order_date_offset_days\":\"-1\"}", "whole number"},
        {"{\"enabled\":\"no\"}", "true or false"},
        {"{\"done_marker\":\"done\"}", "done_marker must be"},
        {"{\"done_marker\":\".\"}", "done_marker must be"},
        {"{\"done_marker\":\"./x\"}", "done_marker must be"},
        {"{\"done_marker\":\".ok.csv\"}", "not ending in .csv"},
        {"{\"expected_drop_time\":\"7:30\"}", "HH:MM"},
        {"{\"expected_drop_time\":\"24:00\"}", "HH:MM"},
        {"{\"expected_drop_time\":\"07:60\"}", "HH:MM"},
        {"{\"expected_drop_days\":[]}", "non-empty array"},
        {"{\"expected_drop_days\":[\"monday\"]}", "one of \"mon\""},
        {"{\"expected_drop_days\":[\"mon\",\"mon\"]}", "\"mon\" appears twice"},
        {"{\"notify\":\"https://hooks.example.com/T0/SECRET\"}", "URL is a secret"},
        {"{\"notify\":\"mailto:nobody\"}", "one address"},
        {"{\"notify\":\"mailto:a@b,c@d\"}", "one address"},
        {"{\"notify\":\"webhook:a/b\"}", "webhook:"},
        {"{\"description\":5}", "description must be a string"},
    };
    char reason[512];
    profile p, before;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        profile_init(&p);
        p.revision = 7;
        before = p;
        CHECK_EQ_INT(parse(&p, cases[i].doc, reason, sizeof(reason)), DX_ERR_INVALID);
        if (strstr(reason, cases[i].reason_has) == NULL)
            testing_fail(__FILE__, __LINE__, "%s: reason \"%s\" lacks \"%s\"", cases[i].doc, reason,
                         cases[i].reason_has);
        /* Never half-applied: the output is untouched on failure. */
        CHECK(memcmp(&p, &before, sizeof(p)) == 0);
    }
}

static void check_limits(void)
{
    char doc[PROFILE_TEXT_MAX + 16], reason[256];
    size_t used = 0;
    profile p;

    used += (size_t)snprintf(doc + used, sizeof(doc) - used, "{\"aliases\":{");
    for (int i = 0; i <= PROFILE_ALIASES_MAX; i++)
        used += (size_t)snprintf(doc + used, sizeof(doc) - used, "%s\"h%d\":\"status\"",
                                 i ? "," : "", i);
    snprintf(doc + used, sizeof(doc) - used, "}}");
    CHECK_EQ_INT(parse(&p, doc, reason, sizeof(reason)), DX_ERR_INVALID);
    CHECK(strstr(reason, "more than 64") != NULL);
    memset(doc, ' ', PROFILE_TEXT_MAX + 1);
    doc[0] = '{';
    doc[PROFILE_TEXT_MAX] = '}';
    doc[PROFILE_TEXT_MAX + 1] = '\0';
    CHECK_EQ_INT(parse(&p, doc, reason, sizeof(reason)), DX_ERR_INVALID);
    CHECK(strstr(reason, "longer than") != NULL);
    doc[PROFILE_TEXT_MAX - 1] = '}';
    doc[PROFILE_TEXT_MAX] = '\0';
    CHECK_EQ_INT(parse(&p, doc, reason, sizeof(reason)), DX_OK);
}

static void check_columns(void)
{
    for (int c = 0; c < COLUMN_COUNT; c++)
        CHECK_EQ_INT(column_of_name(column_name((column_id)c)), c);
    CHECK_EQ_INT(column_of_name("price"), -1);
    CHECK_EQ_STR(column_name(COLUMN_COUNT), "?");
    CHECK(column_required(COLUMN_UNIT_PRICE));
    CHECK(!column_required(COLUMN_STATUS));
}

int main(void)
{
    check_defaults();
    check_every_field();
    check_refused();
    check_limits();
    check_columns();
    return testing_finish("test_profile");
}
