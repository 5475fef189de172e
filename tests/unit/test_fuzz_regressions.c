/*
 * Regression cases for what the libFuzzer targets found (tests/fuzz/).  Each
 * input is also in the target's seed corpus, which the fuzz suite replays;
 * here it runs in the ordinary unit suite, and under ASan and UBSan in
 * ./scripts/test, without clang or libFuzzer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clean.h"
#include "event.h"
#include "testing.h"

/* ---------- events (fuzz_event_json, fuzz_event_protobuf) ---------- */

/* Encodes ev in both forms, decodes each, and checks the struct comes back. */
static void check_round_trip(const event_file_ready *ev)
{
    for (int json = 0; json <= 1; json++) {
        event_file_ready again;
        void *data = NULL;
        size_t len = 0;
        char err[256] = "";

        memset(&again, 0, sizeof(again));
        CHECK_EQ_INT(event_encode(EVENT_FILE_READY, ev, json, &data, &len), DX_OK);
        CHECK_EQ_INT(event_decode(EVENT_FILE_READY, data, len, event_content_type(json), &again,
                                  err, sizeof(err)),
                     DX_OK);
        CHECK(memcmp(ev, &again, sizeof(again)) == 0);
        free(data);
    }
}

/*
 * corpus/event_protobuf/regression_uint64_over_2_53 and
 * corpus/event_json/regression_uint64_16_digits: 64-bit counts were written
 * to JSON as doubles, which cJSON prints with 15 significant digits, so a
 * FileReady of 16 digits or more came back changed or was refused; and the
 * decoder refused "18446744073709551615" (20 digits) as a string.
 */
static void large_counts_round_trip(void)
{
    static const uint64_t values[] = {0,
                                      1,
                                      999999999999999ull,
                                      1000000000000000ull,
                                      9007199254740992ull,
                                      9007199254740993ull,
                                      18446744073709551615ull};
    event_file_ready ev;
    char err[256];
    const char *too_big = "{\"client_id\":\"US1\",\"order_date\":\"2026-11-24\","
                          "\"rows_in\":\"18446744073709551616\"}";

    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        memset(&ev, 0, sizeof(ev));
        strcpy(ev.client_id, "US1");
        strcpy(ev.order_date, "2026-11-24");
        ev.rows_in = values[i];
        ev.bytes_out = values[i];
        check_round_trip(&ev);
    }
    /* 2^64 does not fit: refused, not wrapped around. */
    CHECK_EQ_INT(
        event_decode(EVENT_FILE_READY, too_big, strlen(too_big), NULL, &ev, err, sizeof(err)),
        DX_ERR_INVALID);
    CHECK(strstr(err, "rows_in") != NULL);
}

/*
 * corpus/event_json/nul_client.json, regression_raw_nul.json and
 * corpus/event_protobuf/regression_nul_client: a NUL inside a string ended
 * the C string there, so the client id "US1\0/../x" was read as "US1" and
 * the event processed US1's drops.  Now refused, in every form.
 */
static void nul_in_strings_refused(void)
{
    static const char escaped[] =
        "{\"order_date\":\"2026-11-24\",\"client_id\":\"US1\\u0000/../x\"}";
    static const char raw[] = "{\"order_date\":\"2026-11-24\",\"client_id\":\"US1\0/../x\"}";
    static const char text[] = "{\"order_date\":\"2026-11-24\",\"client_id\":\"US1\\\\u0000\"}";
    /* OrderDate{order_date: "2026-11-24", client_id: "US1\0/../x"} in protobuf. */
    static const char pb[] = "\x1a\x0a"
                             "2026-11-24"
                             "\x22\x09"
                             "US1\0/../x";
    event_order_date ev;
    char err[256];

    CHECK_EQ_INT(
        event_decode(EVENT_ORDER_DATE, escaped, strlen(escaped), NULL, &ev, err, sizeof(err)),
        DX_ERR_INVALID);
    CHECK(strstr(err, "NUL") != NULL);
    CHECK_EQ_INT(event_decode(EVENT_ORDER_DATE, raw, sizeof(raw) - 1, "application/json", &ev, err,
                              sizeof(err)),
                 DX_ERR_INVALID);
    CHECK(strstr(err, "NUL") != NULL);
    CHECK_EQ_INT(event_decode(EVENT_ORDER_DATE, pb, sizeof(pb) - 1, "application/protobuf", &ev,
                              err, sizeof(err)),
                 DX_ERR_INVALID);
    CHECK(strstr(err, "client_id contains a NUL") != NULL);
    /* An escaped backslash followed by "u0000" is text, not a NUL: the id is
     * then refused later by CLIENT_PATTERN, not here. */
    memset(&ev, 0, sizeof(ev));
    CHECK_EQ_INT(event_decode(EVENT_ORDER_DATE, text, strlen(text), NULL, &ev, err, sizeof(err)),
                 DX_OK);
    CHECK_EQ_STR(ev.client_id, "US1\\u0000");
}

/* ---------- the cleaner (fuzz_clean) ---------- */

typedef struct memory_source {
    const char *data;
    size_t size, pos;
} memory_source;

static dx_status read_memory(void *ctx, void *buf, size_t cap, size_t *got)
{
    memory_source *src = ctx;
    size_t n = src->size - src->pos < cap ? src->size - src->pos : cap;

    memcpy(buf, src->data + src->pos, n);
    src->pos += n;
    *got = n;
    return DX_OK;
}

static dx_status write_nothing(void *ctx, const void *buf, size_t len)
{
    *(size_t *)ctx += len;
    return DX_OK;
}

static dx_status clean_bytes(const char *data, size_t size, clean_counts *counts, char *reason,
                             size_t reason_len)
{
    memory_source src = {data, size, 0};
    size_t out = 0, rejects = 0;
    clean_io io = {read_memory, &src, write_nothing, &out, write_nothing, &rejects, 0, 0};

    return clean_run(&io, counts, reason, reason_len);
}

/*
 * corpus/clean/regression_csvout_null_offset: ",_id\x03" made csvout_raw()
 * compute NULL + 0 on a still empty buffer (undefined behaviour that UBSan
 * reports as "applying zero offset to null pointer").  Only a sanitizer
 * build sees it; the file must still be refused with a one-line reason.
 */
static void csvout_empty_field(void)
{
    static const char input[] = ",_id\x03";
    clean_counts counts;
    char reason[256] = "";
    dx_status s = clean_bytes(input, sizeof(input) - 1, &counts, reason, sizeof(reason));

    CHECK(s == DX_OK || s == DX_ERR_INVALID);
    if (s == DX_ERR_INVALID)
        CHECK(reason[0] != '\0' && strchr(reason, '\n') == NULL);
    else
        CHECK_EQ_INT(counts.rows_in,
                     counts.rows_out + counts.rows_rejected + counts.rows_duplicate);
}

int main(void)
{
    large_counts_round_trip();
    nul_in_strings_refused();
    csvout_empty_field();
    return testing_finish("test_fuzz_regressions");
}
