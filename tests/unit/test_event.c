/* Event codecs: protobuf and JSON both ways, and malformed input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "testing.h"

static void roundtrip_file_ready(int json)
{
    event_file_ready in = {0}, out = {0};
    void *data = NULL;
    size_t len = 0;
    char err[256];

    strcpy(in.event_id, "e-1");
    strcpy(in.trace_id, "0af7651916cd43dd8448eb211c80319c");
    strcpy(in.client_id, "US1");
    strcpy(in.order_date, "2026-11-24");
    strcpy(in.source, "US1/input.csv");
    strcpy(in.output, "US1/2026-11-24/input.csv");
    in.rows_in = 10;
    in.rows_out = 7;
    in.rows_rejected = 2;
    in.rows_duplicate = 1;
    in.bytes_out = 1234567890123ULL;
    strcpy(in.sha256, "ab");
    in.rejects_by_reason.count = 2;
    strcpy(in.rejects_by_reason.items[0].reason, "invalid_date");
    in.rejects_by_reason.items[0].rows = 1;
    strcpy(in.rejects_by_reason.items[1].reason, "missing_quantity");
    in.rejects_by_reason.items[1].rows = 1234567890123456789ULL;
    CHECK_EQ_INT(event_encode(EVENT_FILE_READY, &in, json, &data, &len), DX_OK);
    CHECK_EQ_INT(event_decode(EVENT_FILE_READY, data, len, NULL, &out, err, sizeof(err)), DX_OK);
    CHECK(memcmp(&in, &out, sizeof(in)) == 0);
    /* The Content-Type header wins over sniffing. */
    CHECK_EQ_INT(
        event_decode(EVENT_FILE_READY, data, len, event_content_type(json), &out, err, sizeof(err)),
        DX_OK);
    free(data);
}

static void roundtrip_file_failed(void)
{
    event_file_failed in = {0}, out = {0};
    void *data = NULL;
    size_t len = 0;
    char err[256];

    for (int json = 0; json <= 1; json++) {
        strcpy(in.client_id, "US2");
        strcpy(in.order_date, "2026-03-29");
        strcpy(in.reason, "missing required column: unit_price");
        in.permanent = 1;
        CHECK_EQ_INT(event_encode(EVENT_FILE_FAILED, &in, json, &data, &len), DX_OK);
        memset(&out, 0, sizeof(out));
        CHECK_EQ_INT(event_decode(EVENT_FILE_FAILED, data, len, NULL, &out, err, sizeof(err)),
                     DX_OK);
        CHECK_EQ_STR(out.reason, in.reason);
        CHECK_EQ_INT(out.permanent, 1);
        free(data);
    }
}

/* The two events of the morning view, both ways in both encodings. */
static void roundtrip_morning_events(void)
{
    event_drop_check check = {0}, check_out;
    event_client_state change = {0}, change_out;
    void *data = NULL;
    size_t len = 0;
    char err[256];

    strcpy(check.client_id, "US4");
    strcpy(check.order_date, "2026-12-01");
    strcpy(check.found, "not_stable");
    strcpy(check.source, "US4/orders.csv");
    check.profile_revision = 3;
    strcpy(change.client_id, "US4");
    strcpy(change.order_date, "2026-12-01");
    strcpy(change.state, "late");
    strcpy(change.previous, "waiting");
    strcpy(change.reason, "no drop by 06:30 CET");
    for (int json = 0; json <= 1; json++) {
        memset(&check_out, 0, sizeof(check_out));
        CHECK_EQ_INT(event_encode(EVENT_DROP_CHECK, &check, json, &data, &len), DX_OK);
        CHECK_EQ_INT(event_decode(EVENT_DROP_CHECK, data, len, NULL, &check_out, err, sizeof(err)),
                     DX_OK);
        CHECK(memcmp(&check, &check_out, sizeof(check)) == 0);
        free(data);
        memset(&change_out, 0, sizeof(change_out));
        CHECK_EQ_INT(event_encode(EVENT_CLIENT_STATE, &change, json, &data, &len), DX_OK);
        CHECK_EQ_INT(
            event_decode(EVENT_CLIENT_STATE, data, len, NULL, &change_out, err, sizeof(err)),
            DX_OK);
        CHECK(memcmp(&change, &change_out, sizeof(change)) == 0);
        free(data);
    }
    /* Like the outcomes, a check names its client. */
    CHECK_EQ_INT(event_decode(EVENT_DROP_CHECK, "{\"order_date\":\"2026-12-01\"}", 27, NULL,
                              &check_out, err, sizeof(err)),
                 DX_ERR_INVALID);
    CHECK(strstr(err, "client_id is missing") != NULL);
}

static dx_status decode_text(const char *text, event_order_date *ev, char *err, size_t len)
{
    memset(ev, 0, sizeof(*ev));
    return event_decode(EVENT_ORDER_DATE, text, strlen(text), NULL, ev, err, len);
}

static void json_input_forms(void)
{
    event_order_date ev;
    char err[256];

    /* What an operator types with `nats pub`. */
    CHECK_EQ_INT(
        decode_text("{\"order_date\":\"2026-11-24\",\"client_id\":\"US1\"}", &ev, err, sizeof(err)),
        DX_OK);
    CHECK_EQ_STR(ev.order_date, "2026-11-24");
    CHECK_EQ_STR(ev.client_id, "US1");
    CHECK_EQ_STR(ev.event_id, "");
    /* The canonical proto3 JSON names are accepted too. */
    CHECK_EQ_INT(
        decode_text("  {\"orderDate\":\"2026-11-24\",\"traceId\":\"t\"}", &ev, err, sizeof(err)),
        DX_OK);
    CHECK_EQ_STR(ev.trace_id, "t");
    CHECK_EQ_STR(ev.client_id, "");
    /* uint64 as a string, as proto3 JSON writes it. */
    event_file_ready fr;
    const char *text = "{\"order_date\":\"2026-11-24\",\"client_id\":\"US1\",\"rows_in\":\"42\"}";
    CHECK_EQ_INT(event_decode(EVENT_FILE_READY, text, strlen(text), NULL, &fr, err, sizeof(err)),
                 DX_OK);
    CHECK_EQ_INT(fr.rows_in, 42);
}

/* A body of depth levels of {"a": ... } around an empty object (caller frees). */
static char *nested(int depth, int with_strings)
{
    const char *open = with_strings ? "{\"a{[\":" : "{\"a\":";
    size_t open_len = strlen(open), len = (size_t)depth * (open_len + 1) + 3;
    char *body = malloc(len);
    size_t used = 0;

    for (int i = 0; i < depth; i++, used += open_len)
        memcpy(body + used, open, open_len);
    memcpy(body + used, "{}", 2);
    used += 2;
    memset(body + used, '}', (size_t)depth);
    body[used + (size_t)depth] = '\0';
    return body;
}

/* Issue 11 §9: a deep body says so, instead of "not a JSON object". */
static void too_deep(void)
{
    event_order_date ev;
    char err[256] = "";
    char *body = nested(60000, 0);

    CHECK_EQ_INT(event_decode(EVENT_ORDER_DATE, body, strlen(body), NULL, &ev, err, sizeof(err)),
                 DX_ERR_INVALID);
    CHECK(strstr(err, "nested too deeply") != NULL);
    free(body);
    /* Brackets inside strings are text, not nesting. */
    body = nested(1, 1);
    err[0] = '\0';
    CHECK_EQ_INT(event_decode(EVENT_ORDER_DATE, body, strlen(body), NULL, &ev, err, sizeof(err)),
                 DX_ERR_INVALID);
    CHECK(strstr(err, "nested too deeply") == NULL);
    free(body);
}

static void malformed(void)
{
    static const struct {
        const char *input;
        const char *reason_part;
    } cases[] = {
        {"{", "not a JSON object"},
        {"[1,2]", "undecodable"},
        {"{\"order_date\":20261124}", "order_date must be a string"},
        {"{\"client_id\":\"US1\"}", "order_date is missing"},
        {"{\"order_date\":\"2026-02-31\"}", "not a YYYY-MM-DD date"},
        {"{\"order_date\":\"2026-13-01\"}", "not a YYYY-MM-DD date"},
        {"{\"order_date\":\"24/11/2026\"}", "not a YYYY-MM-DD date"},
        {"{\"order_date\":\"2026-11-24\",\"client_id\":7}", "client_id must be a string"},
        {"{\"order_date\":\"2026-11-24\",\"client_id\":\"US1\\nX\"}", "control character"},
        {"\xff\x00\x13garbage", "neither protobuf nor JSON"},
        {"", "order_date is missing"},
    };
    event_order_date ev;
    char err[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].input);

        if (cases[i].input[0] == '\xff')
            len = 10;
        err[0] = '\0';
        CHECK_EQ_INT(
            event_decode(EVENT_ORDER_DATE, cases[i].input, len, NULL, &ev, err, sizeof(err)),
            DX_ERR_INVALID);
        if (strstr(err, cases[i].reason_part) == NULL)
            testing_fail(__FILE__, __LINE__, "case %zu: reason \"%s\" lacks \"%s\"", i, err,
                         cases[i].reason_part);
    }
    /* Over-long strings are refused, never truncated silently. */
    char big[600];
    memset(big, 'a', sizeof(big));
    strcpy(big, "{\"order_date\":\"2026-11-24\",\"client_id\":\"");
    memset(big + strlen(big), 'U', 100);
    strcpy(big + 141, "\"}");
    CHECK_EQ_INT(decode_text(big, &ev, err, sizeof(err)), DX_ERR_INVALID);
    CHECK(strstr(err, "too long") != NULL);
    /* FileReady needs a client. */
    const char *no_client = "{\"order_date\":\"2026-11-24\"}";
    event_file_ready fr;
    CHECK_EQ_INT(
        event_decode(EVENT_FILE_READY, no_client, strlen(no_client), NULL, &fr, err, sizeof(err)),
        DX_ERR_INVALID);
}

/* Writes a FileReady JSON with n rejects_by_reason entries into buf. */
static void rejects_json(char *buf, size_t cap, int n, const char *dup)
{
    size_t used = (size_t)snprintf(buf, cap,
                                   "{\"order_date\":\"2026-11-24\",\"client_id\":"
                                   "\"US1\",\"rejects_by_reason\":{");

    for (int i = 0; i < n; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s\"r%d\":%d", i ? "," : "",
                                 dup && i == n - 1 ? 0 : i, i + 1);
    snprintf(buf + used, cap - used, "}}");
}

/* rejects_by_reason: the bound and the entries' rules, in both encodings. */
static void rejects_bound(void)
{
    char text[4096], err[256];
    event_file_ready fr, big = {0};
    void *data = NULL;
    size_t len = 0;

    rejects_json(text, sizeof(text), EVENT_REJECT_REASONS_MAX, NULL);
    CHECK_EQ_INT(event_decode(EVENT_FILE_READY, text, strlen(text), NULL, &fr, err, sizeof(err)),
                 DX_OK);
    CHECK_EQ_INT((int)fr.rejects_by_reason.count, EVENT_REJECT_REASONS_MAX);
    CHECK_EQ_STR(fr.rejects_by_reason.items[3].reason, "r3");
    rejects_json(text, sizeof(text), EVENT_REJECT_REASONS_MAX + 1, NULL);
    CHECK_EQ_INT(event_decode(EVENT_FILE_READY, text, strlen(text), NULL, &fr, err, sizeof(err)),
                 DX_ERR_INVALID);
    CHECK(strstr(err, "rejects_by_reason has more than 16 entries") != NULL);
    rejects_json(text, sizeof(text), 3, "dup");
    CHECK_EQ_INT(event_decode(EVENT_FILE_READY, text, strlen(text), NULL, &fr, err, sizeof(err)),
                 DX_ERR_INVALID);
    CHECK(strstr(err, "twice") != NULL);
    const char *not_object = "{\"order_date\":\"2026-11-24\",\"client_id\":\"US1\","
                             "\"rejects_by_reason\":[{\"reason\":\"invalid_date\",\"rows\":2}]}";
    CHECK_EQ_INT(
        event_decode(EVENT_FILE_READY, not_object, strlen(not_object), NULL, &fr, err, sizeof(err)),
        DX_ERR_INVALID);
    CHECK(strstr(err, "must be an object") != NULL);
    const char *bad_rows = "{\"order_date\":\"2026-11-24\",\"client_id\":\"US1\","
                           "\"rejects_by_reason\":{\"invalid_date\":-2}}";
    CHECK_EQ_INT(
        event_decode(EVENT_FILE_READY, bad_rows, strlen(bad_rows), NULL, &fr, err, sizeof(err)),
        DX_ERR_INVALID);
    CHECK(strstr(err, "rows of invalid_date") != NULL);
    const char *empty_reason = "{\"order_date\":\"2026-11-24\",\"client_id\":\"US1\","
                               "\"rejects_by_reason\":{\"\":1}}";
    CHECK_EQ_INT(event_decode(EVENT_FILE_READY, empty_reason, strlen(empty_reason), NULL, &fr, err,
                              sizeof(err)),
                 DX_ERR_INVALID);
    /* Protobuf from another producer may hold any number: 17 entries are
     * refused the same way.  Built by hand: RejectCount{reason="rN"} is
     * field 17 (key 0x8a 0x01), length 4, then 0x0a 0x02 'r' 'A'+i. */
    uint8_t pb[256];
    size_t n = 0;
    const char head[] = "\x2a\x0a"
                        "2026-11-24"
                        "\x22\x03"
                        "US1";
    memcpy(pb, head, sizeof(head) - 1);
    n = sizeof(head) - 1;
    for (int i = 0; i <= EVENT_REJECT_REASONS_MAX; i++) {
        const uint8_t entry[] = {0x8a, 0x01, 0x04, 0x0a, 0x02, 'r', (uint8_t)('A' + i)};
        memcpy(pb + n, entry, sizeof(entry));
        n += sizeof(entry);
    }
    CHECK_EQ_INT(event_decode(EVENT_FILE_READY, pb, n, NULL, &fr, err, sizeof(err)),
                 DX_ERR_INVALID);
    CHECK(strstr(err, "more than 16 entries") != NULL);
    CHECK_EQ_INT(event_decode(EVENT_FILE_READY, pb, n - 7, NULL, &fr, err, sizeof(err)), DX_OK);
    CHECK_EQ_INT((int)fr.rejects_by_reason.count, EVENT_REJECT_REASONS_MAX);
    /* A NUL inside a nested reason is refused like one at top level. */
    pb[n - 8] = 0;
    CHECK_EQ_INT(event_decode(EVENT_FILE_READY, pb, n - 7, NULL, &fr, err, sizeof(err)),
                 DX_ERR_INVALID);
    CHECK(strstr(err, "NUL") != NULL);
    /* An encoder given a full list writes it all; the empty list is []. */
    strcpy(big.client_id, "US1");
    strcpy(big.order_date, "2026-11-24");
    CHECK_EQ_INT(event_encode(EVENT_FILE_READY, &big, 1, &data, &len), DX_OK);
    CHECK(strstr((char *)data, "\"rejects_by_reason\":{}") != NULL);
    free(data);
}

static void json_output_names(void)
{
    event_order_date ev = {0};
    void *data = NULL;
    size_t len = 0;

    strcpy(ev.order_date, "2026-11-24");
    CHECK_EQ_INT(event_encode(EVENT_ORDER_DATE, &ev, 1, &data, &len), DX_OK);
    CHECK(strstr((char *)data, "\"order_date\":\"2026-11-24\"") != NULL);
    free(data);
}

int main(void)
{
    roundtrip_file_ready(0);
    roundtrip_file_ready(1);
    roundtrip_file_failed();
    roundtrip_morning_events();
    json_input_forms();
    malformed();
    too_deep();
    rejects_bound();
    json_output_names();
    return testing_finish("test_event");
}
