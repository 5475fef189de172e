/*
 * file-transformer-service: the file-transformer service, started by
 * `file-transformer` (main.c) when it runs without a command.  Consumes
 * orders.order-date, cleans each pending drop of the client into the depot
 * and publishes orders.file-ready (or orders.file-failed).  A program of
 * its own so that the offline `clean` does not load what the service needs
 * (nats.c, libssh, libmicrohttpd and their TLS and Kerberos libraries).
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "metrics.h"
#include "transform.h"
#include "util.h"
#include "worker.h"

/*
 * Decodes an event body and fills in what an operator may leave out of a
 * hand-made event: event_id, trace_id (from a W3C traceparent when there is
 * one), triggered_by and created_at.
 */
static dx_status decode_order_date(worker *w, const void *data, size_t len,
                                   const char *content_type, const char *traceparent,
                                   const bus_delivery *d, event_order_date *ev, char *err,
                                   size_t err_len)
{
    uint64_t stream_seq = d != NULL ? d->stream_seq : 0;
    char seed[64];
    dx_status s;

    if (len > (size_t)w->cfg.max_event_bytes) {
        metrics_add(DX_INVALID_INPUT_TOTAL, "oversized", 1);
        snprintf(err, err_len, "event of %zu bytes is over MAX_EVENT_BYTES", len);
        return DX_ERR_TOO_LARGE;
    }
    s = event_decode(EVENT_ORDER_DATE, data, len, content_type, ev, err, err_len);
    if (s != DX_OK) {
        metrics_add(DX_INVALID_INPUT_TOTAL, event_error_kind(err), 1);
        return s;
    }
    /* A message of the stream keeps the same ids on every redelivery, so
     * that the retries of one hand-made event share one trace.  The
     * sequence alone repeats once the stream is deleted and created again;
     * with the time the stream stored the message it does not. */
    snprintf(seed, sizeof(seed), "%s/%" PRIu64 "/%" PRId64, BUS_STREAM, stream_seq,
             d != NULL ? d->stream_time_ns : 0);
    if (ev->event_id[0] == '\0' && stream_seq > 0)
        snprintf(ev->event_id, sizeof(ev->event_id), "%s-%" PRIu64 "-%" PRId64, BUS_STREAM,
                 stream_seq, d->stream_time_ns);
    if (ev->event_id[0] == '\0')
        util_uuid(ev->event_id);
    if (!util_trace_id_valid(ev->trace_id)) {
        /* traceparent is "00-<32 hex trace id>-<16 hex span>-<2 hex flags>". */
        if (traceparent != NULL && strlen(traceparent) >= 35 && traceparent[2] == '-') {
            snprintf(ev->trace_id, sizeof(ev->trace_id), "%.32s", traceparent + 3);
        }
        if (!util_trace_id_valid(ev->trace_id) && stream_seq > 0)
            util_trace_id_from(seed, ev->trace_id);
        if (!util_trace_id_valid(ev->trace_id))
            util_trace_id(ev->trace_id);
    }
    if (ev->triggered_by[0] == '\0')
        util_copy(ev->triggered_by, sizeof(ev->triggered_by), "manual");
    if (ev->created_at[0] == '\0')
        util_rfc3339(ev->created_at, util_now_ms());
    return DX_OK;
}

static bus_verdict on_message(void *ctx, const bus_delivery *d, int64_t *nak_delay_ms)
{
    worker *w = ctx;
    event_order_date ev = {0};
    transform_outcome out = {0};
    char err[512];

    if (decode_order_date(w, d->data, d->len, d->content_type, d->traceparent, d, &ev, err,
                          sizeof(err)) != DX_OK) {
        cJSON *fields = cJSON_CreateObject();

        cJSON_AddStringToObject(fields, "subject", d->subject);
        cJSON_AddStringToObject(fields, "reason", err);
        log_write(LOG_LEVEL_ERROR, NULL, "terminated undecodable message", fields);
        return BUS_TERM;
    }
    transform_handle(w, &ev, d, d->last_delivery ? TRANSFORM_LAST_ATTEMPT : TRANSFORM_RETRIED,
                     &out);
    cJSON_Delete(out.result);
    if (out.verdict == BUS_NAK && d->last_delivery)
        return BUS_TERM; /* its failures were published as FileFailed */
    return out.verdict;
}

static void on_http(void *ctx, const http_request *req, http_response *resp)
{
    worker *w = ctx;
    event_order_date ev = {0};
    transform_outcome out = {0};
    char err[512];
    int64_t started;

    if (strcmp(req->method, "POST") != 0 || strcmp(req->path, "/") != 0) {
        http_error(resp, 404, "not found: POST / with an order-date event");
        return;
    }
    if (atomic_load_explicit(&w->bus, memory_order_acquire) == NULL) {
        http_error(resp, 503, "not connected to NATS yet");
        return;
    }
    if (decode_order_date(w, req->body, req->body_len, req->content_type, req->traceparent, NULL,
                          &ev, err, sizeof(err)) != DX_OK) {
        log_printf(LOG_LEVEL_ERROR, NULL, "refused invocation: %s", err);
        http_error(resp, 400, err);
        return;
    }
    if (ev.triggered_by[0] == '\0' || strcmp(ev.triggered_by, "manual") == 0)
        util_copy(ev.triggered_by, sizeof(ev.triggered_by), "http");
    /* The connector does not retry on its own: a transient failure is
     * answered 503 and also published, so that it is never silent. */
    started = util_monotonic_ms();
    transform_handle(w, &ev, NULL, TRANSFORM_LAST_ATTEMPT, &out);
    /* An invocation is one event handled, as a message is in bus.c. */
    metrics_observe(DX_PROCESSING_DURATION_SECONDS, "",
                    (double)(util_monotonic_ms() - started) / 1000.0);
    resp->status = out.http_status;
    resp->body = cJSON_PrintUnformatted(out.result);
    cJSON_Delete(out.result);
}

static int run_service(void)
{
    worker w;
    char err[512];
    int ret = 1;

    worker_install_signals();
    if (worker_init(&w, "file-transformer", WORKER_INBOX | WORKER_DEPOT, err, sizeof(err)) !=
        DX_OK) {
        fprintf(stderr, "file-transformer: %s\n", err);
        ret = 2;
        goto done;
    }
    worker_log_settings(&w, NULL);
    if (worker_start_http(&w, on_http, err, sizeof(err)) != DX_OK) {
        log_printf(LOG_LEVEL_ERROR, NULL, "%s", err);
        goto done;
    }
    if (worker_connect_bus(&w, -1) != DX_OK) {
        ret = 0; /* stopped before NATS came up */
        goto done;
    }
    if (w.cfg.subscribe)
        bus_consume(w.bus, BUS_DURABLE_TRANSFORMER, on_message, &w, &worker_stop);
    else
        while (!atomic_load(&worker_stop))
            worker_sleep(1000);
    log_printf(LOG_LEVEL_INFO, NULL, "stopping: finishing in-flight work");
    ret = 0;
done:
    worker_finish(&w);
    transform_finish();
    return ret;
}

int main(int argc, char **argv)
{
    /* --version: what loading the service's libraries costs, for
     * `bench/run-clean-bench startup`. */
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        worker_print_version("file-transformer-service");
        return 0;
    }
    if (argc >= 2) {
        fprintf(stderr, "file-transformer: unknown argument %s (see file-transformer --help)\n",
                argv[1]);
        return 2;
    }
    return run_service();
}
