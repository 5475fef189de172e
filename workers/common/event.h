#pragma once

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/*
 * The events of proto/events.proto as plain C structs with bounded
 * strings, and their codecs.  On the wire an event is protobuf binary (the
 * default) or JSON with the proto field names (what an operator types in
 * `nats pub`).  Decoders take either: the Content-Type header decides when
 * there is one, else the first non-blank byte ('{' means JSON; that byte
 * cannot start a valid protobuf encoding of these messages).
 */

#define EVENT_SUBJECT_ORDER_DATE   "orders.order-date"
#define EVENT_SUBJECT_FILE_READY   "orders.file-ready"
#define EVENT_SUBJECT_FILE_FAILED  "orders.file-failed"
#define EVENT_SUBJECT_DROP_CHECK   "orders.drop-check"
#define EVENT_SUBJECT_CLIENT_STATE "orders.client-state"

#define EVENT_ID_MAX     64
#define EVENT_CLIENT_MAX 72
#define EVENT_PATH_MAX   512

/* FileReady.rejects_by_reason: at most this many reasons (the engine has 13
 * reject codes; decoders refuse more entries), each code shorter than
 * EVENT_REASON_MAX. */
#define EVENT_REJECT_REASONS_MAX 16
#define EVENT_REASON_MAX         32

/* Rows of one drop rejected for one reason. */
typedef struct event_reject_count {
    char reason[EVENT_REASON_MAX];
    uint64_t rows;
} event_reject_count;

typedef struct event_reject_counts {
    size_t count;
    event_reject_count items[EVENT_REJECT_REASONS_MAX];
} event_reject_counts;

typedef struct event_order_date {
    char event_id[EVENT_ID_MAX];
    char trace_id[EVENT_ID_MAX];
    char order_date[16];
    char client_id[EVENT_CLIENT_MAX]; /* "" means every client */
    char triggered_by[32];
    char created_at[40];
} event_order_date;

typedef struct event_file_ready {
    char event_id[EVENT_ID_MAX];
    char trace_id[EVENT_ID_MAX];
    char caused_by[EVENT_ID_MAX];
    char client_id[EVENT_CLIENT_MAX];
    char order_date[16];
    char source[EVENT_PATH_MAX];
    char output[EVENT_PATH_MAX];
    char rejects[EVENT_PATH_MAX];
    uint64_t rows_in;
    uint64_t rows_out;
    uint64_t rows_rejected;
    uint64_t rows_duplicate;
    uint64_t bytes_out;
    char sha256[72];
    uint64_t profile_revision; /* the client profile's revision used, 0 when none */
    char triggered_by[32];     /* the OrderDate's triggered_by */
    /* Per reason, distinct non-empty reasons, in the engine's order. */
    event_reject_counts rejects_by_reason;
} event_file_ready;

typedef struct event_file_failed {
    char event_id[EVENT_ID_MAX];
    char trace_id[EVENT_ID_MAX];
    char caused_by[EVENT_ID_MAX];
    char client_id[EVENT_CLIENT_MAX];
    char order_date[16];
    char source[EVENT_PATH_MAX];
    char reason[EVENT_PATH_MAX];
    int permanent;
} event_file_failed;

/* What daily-checker found for one expected client and check. */
typedef struct event_drop_check {
    char event_id[EVENT_ID_MAX];
    char trace_id[EVENT_ID_MAX];
    char client_id[EVENT_CLIENT_MAX];
    char order_date[16];
    char found[16]; /* "taken", "none", "not_stable", "paused" */
    char source[EVENT_PATH_MAX];
    char order_date_event[EVENT_ID_MAX];
    char checked_at[40];
    char triggered_by[32];
    uint64_t profile_revision;
} event_drop_check;

/* A client's day turned late, missing, failed or resolved (status-checker). */
typedef struct event_client_state {
    char event_id[EVENT_ID_MAX];
    char trace_id[EVENT_ID_MAX];
    char client_id[EVENT_CLIENT_MAX];
    char order_date[16];
    char state[16];
    char previous[16];
    char reason[EVENT_PATH_MAX];
    char at[40];
    char caused_by[EVENT_ID_MAX];
} event_client_state;

typedef enum event_type {
    EVENT_ORDER_DATE = 0,
    EVENT_FILE_READY,
    EVENT_FILE_FAILED,
    EVENT_DROP_CHECK,
    EVENT_CLIENT_STATE,
} event_type;

#define EVENT_TYPE_COUNT (EVENT_CLIENT_STATE + 1)

/*
 * The subject each event is published on, indexed by event_type: the one
 * list of the stream's subjects (bus.c), of the per-subject metrics and of
 * what dxctl decodes.
 */
extern const char *event_subjects[EVENT_TYPE_COUNT];

/* Sets *type to the event published on subject; returns 0 when none is. */
int event_type_of_subject(const char *subject, event_type *type);

/*
 * Decodes data (len bytes) into *out, which must point to the struct of the
 * given type.  content_type may be NULL.  Returns DX_ERR_INVALID with a
 * one-line reason in err for undecodable input, wrong JSON types, over-long
 * strings, or a missing/invalid required field (every event needs a valid
 * order_date; FileReady and FileFailed also need a client_id).  A FileReady's
 * rejects_by_reason is refused with more than EVENT_REJECT_REASONS_MAX
 * entries, an empty or repeated reason; in JSON it is an object from reason
 * to rows ({"invalid_date": 3}), the shape /status shows.
 */
dx_status event_decode(event_type type, const void *data, size_t len, const char *content_type,
                       void *out, char *err, size_t err_len);

/*
 * Encodes *ev (the struct of the given type) as JSON (json != 0) or protobuf.
 * On success *data is a malloc'd buffer of *len bytes owned by the caller.
 */
dx_status event_encode(event_type type, const void *ev, int json, void **data, size_t *len);

/* Returns a new cJSON object of *ev (owned by the caller), or NULL. */
cJSON *event_to_json(event_type type, const void *ev);

/*
 * The dx_invalid_input_total kind for a decode error written by
 * event_decode(): "undecodable" when the bytes are neither protobuf nor a
 * JSON object, "invalid_event" when they decode but a field is wrong.
 */
const char *event_error_kind(const char *err);

/* The Content-Type the encoder's output should be published with. */
const char *event_content_type(int json);
