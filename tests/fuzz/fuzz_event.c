#include "fuzz_event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

static const char *const type_names[] = {"OrderDate", "FileReady", "FileFailed"};

static void fail(event_type type, const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_event: %s: %s%s%s\n", type_names[type], what, detail ? ": " : "",
            detail ? detail : "");
    abort();
}

/* Room for the largest of the event structs. */
typedef union any_event {
    event_order_date order_date;
    event_file_ready file_ready;
    event_file_failed file_failed;
    event_drop_check drop_check;
    event_client_state client_state;
} any_event;

static size_t struct_size(event_type type)
{
    switch (type) {
    case EVENT_ORDER_DATE:
        return sizeof(event_order_date);
    case EVENT_FILE_READY:
        return sizeof(event_file_ready);
    case EVENT_FILE_FAILED:
        return sizeof(event_file_failed);
    case EVENT_DROP_CHECK:
        return sizeof(event_drop_check);
    case EVENT_CLIENT_STATE:
        return sizeof(event_client_state);
    }
    return 0;
}

static void round_trip(event_type type, const any_event *first, int json)
{
    any_event again;
    void *wire = NULL;
    size_t len = 0;
    char err[512] = "";

    memset(&again, 0, sizeof(again));
    if (event_encode(type, first, json, &wire, &len) != DX_OK)
        fail(type, "event_encode failed on a decoded event", json ? "json" : "protobuf");
    if (event_decode(type, wire, len, event_content_type(json), &again, err, sizeof(err)) != DX_OK)
        fail(type,
             json ? "re-decoding its JSON encoding failed" : "re-decoding its protobuf failed",
             err);
    if (memcmp(first, &again, struct_size(type)) != 0)
        fail(type, "the round trip changed the event", json ? "json" : "protobuf");
    free(wire);
}

void fuzz_event_one(const uint8_t *data, size_t size, const char *content_type)
{
    for (int t = EVENT_ORDER_DATE; t <= EVENT_CLIENT_STATE; t++) {
        event_type type = (event_type)t;
        any_event ev;
        char err[512] = "";

        memset(&ev, 0, sizeof(ev));
        if (event_decode(type, data, size, content_type, &ev, err, sizeof(err)) != DX_OK) {
            if (err[0] == '\0' || strchr(err, '\n') != NULL)
                fail(type, "a refused event without a one-line reason", NULL);
            continue;
        }
        round_trip(type, &ev, 0);
        round_trip(type, &ev, 1);
    }
}
