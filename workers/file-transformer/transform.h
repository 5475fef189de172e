#pragma once

#include <cjson/cJSON.h>

#include "bus.h"
#include "clean.h"
#include "event.h"
#include "worker.h"

/*
 * file-transformer's work for one OrderDate event: for the event's client
 * (or every client when client_id is empty), take each pending drop, clean
 * it into <depot>/<CLIENT>/<DATE>/<stem>.csv and <stem>.rejects.csv
 * (atomically), publish FileReady, then archive the drop under
 * <inbox>/<CLIENT>/archive/<DATE>/.  The order matters for at-least-once
 * delivery: a crash before the publish leaves the drop in the inbox and the
 * rerun rewrites the same bytes; a crash after it republishes with the same
 * Nats-Msg-Id, which the stream drops.
 */

typedef struct transform_outcome {
    bus_verdict verdict; /* ACK, NAK (transient, retry) or TERM */
    int http_status;     /* 200, 400 or 503 for the function contract */
    cJSON *result;       /* {"order_date":..., "files":[...], "failures":[...]}; caller frees */
} transform_outcome;

/* Whether a transient failure of this attempt will be retried. */
typedef enum transform_attempt {
    TRANSFORM_RETRIED = 0,      /* a later delivery retries: nak, no FileFailed */
    TRANSFORM_LAST_ATTEMPT = 1, /* nothing retries: a transient failure is FileFailed */
} transform_attempt;

/*
 * Handles one decoded event.  d is the NATS delivery (NULL for an HTTP
 * invocation); attempt says whether a transient failure will be retried
 * or published as FileFailed.  Holds w->work_lock while it works.
 */
void transform_handle(worker *w, const event_order_date *ev, const bus_delivery *d,
                      transform_attempt attempt, transform_outcome *out);

/* Releases what transform_handle() keeps between events (the clients
 * bucket handle).  Call after worker_finish(), once no thread can handle an
 * event; nats.c keeps the connection alive for the handle. */
void transform_finish(void);
