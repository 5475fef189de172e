/*
 * file-transformer: consumes orders.order-date, cleans each pending drop of
 * the client into the depot and publishes orders.file-ready (or
 * orders.file-failed).  Also usable offline: `file-transformer clean IN OUT
 * REJECTS`.
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

static const char usage[] =
    "usage: file-transformer [--help | --version]\n"
    "       file-transformer clean IN OUT REJECTS\n"
    "\n"
    "Without a command, runs as a service: serves HTTP on PORT (GET /_/health,\n"
    "GET /_/ready, GET /metrics, POST / = one order-date event) and, unless\n"
    "SUBSCRIBE=0, consumes orders.order-date from JetStream.\n"
    "\n"
    "clean cleans one local file offline and prints its counts as one JSON object;\n"
    "exit 0 when the file was processed, 1 when it is unusable.\n";

/*
 * Decodes an event body and fills in what an operator may leave out of a
 * hand-made event: event_id, trace_id (from a W3C traceparent when there is
 * one), triggered_by and created_at.
 */
static dx_status decode_order_date(worker *w, const void *data, size_t len,
                                   const char *content_type, const char *traceparent,
                                   uint64_t stream_seq, event_order_date *ev, char *err,
                                   size_t err_len)
{
    char seed[64];
    dx_status s;

    if (len > (size_t)w->cfg.max_event_bytes) {
        metrics_add("dx_invalid_input_total", "oversized", 1);
        snprintf(err, err_len, "event of %zu bytes is over MAX_EVENT_BYTES", len);
        return DX_ERR_TOO_LARGE;
    }
    s = event_decode(EVENT_ORDER_DATE, data, len, content_type, ev, err, err_len);
    if (s != DX_OK) {
        metrics_add("dx_invalid_input_total", event_error_kind(err), 1);
        return s;
    }
    /* A message of the stream keeps the same ids on every redelivery, so
     * that the retries of one hand-made event share one trace. */
    snprintf(seed, sizeof(seed), "%s/%" PRIu64, BUS_STREAM, stream_seq);
    if (ev->event_id[0] == '\0' && stream_seq > 0)
        snprintf(ev->event_id, sizeof(ev->event_id), "%s-%" PRIu64, BUS_STREAM, stream_seq);
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

    if (decode_order_date(w, d->data, d->len, d->content_type, d->traceparent, d->stream_seq, &ev,
                          err, sizeof(err)) != DX_OK) {
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
    if (decode_order_date(w, req->body, req->body_len, req->content_type, req->traceparent, 0, &ev,
                          err, sizeof(err)) != DX_OK) {
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
    metrics_observe("dx_processing_duration_seconds", "",
                    (double)(util_monotonic_ms() - started) / 1000.0);
    resp->status = out.http_status;
    resp->body = cJSON_PrintUnformatted(out.result);
    cJSON_Delete(out.result);
}

static int run_clean(int argc, char **argv)
{
    clean_counts counts = {0};
    char reason[512] = "";
    cJSON *json;
    char *text;
    dx_status s;

    if (argc != 5) {
        fprintf(stderr, "file-transformer: clean needs IN OUT REJECTS\n%s", usage);
        return 2;
    }
    s = transform_clean_local(argv[2], argv[3], argv[4], &counts, reason, sizeof(reason));
    if (s != DX_OK) {
        fprintf(stderr, "file-transformer: %s: %s\n", argv[2], reason[0] ? reason : status_text(s));
        return 1;
    }
    json = cJSON_CreateObject();
    cJSON_AddNumberToObject(json, "rows_in", (double)counts.rows_in);
    cJSON_AddNumberToObject(json, "rows_out", (double)counts.rows_out);
    cJSON_AddNumberToObject(json, "rows_rejected", (double)counts.rows_rejected);
    cJSON_AddNumberToObject(json, "rows_duplicate", (double)counts.rows_duplicate);
    cJSON_AddNumberToObject(json, "bytes_in", (double)counts.bytes_in);
    cJSON_AddNumberToObject(json, "bytes_out", (double)counts.bytes_out);
    cJSON_AddBoolToObject(json, "counts_add_up",
                          counts.rows_in ==
                              counts.rows_out + counts.rows_rejected + counts.rows_duplicate);
    text = cJSON_PrintUnformatted(json);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(json);
    return 0;
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
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        worker_print_help(usage);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        worker_print_version("file-transformer");
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "clean") == 0)
        return run_clean(argc, argv);
    if (argc >= 2) {
        fprintf(stderr, "file-transformer: unknown argument %s (see --help)\n", argv[1]);
        return 2;
    }
    return run_service();
}
