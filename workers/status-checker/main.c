/*
 * status-checker: consumes orders.file-ready and orders.file-failed, keeps
 * the status of every client and date, and serves it: GET /status (JSON),
 * GET / (an HTML page), POST / (one event, OpenFaaS function mode).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "metrics.h"
#include "page.h"
#include "profiles_view.h"
#include "state.h"
#include "util.h"
#include "worker.h"

static const char usage[] =
    "usage: status-checker [--help | --version]\n"
    "\n"
    "Runs as a service: serves HTTP on PORT (GET /status, GET /, GET /_/health,\n"
    "GET /_/ready, GET /metrics, POST / = one file-ready or file-failed event)\n"
    "and, unless SUBSCRIBE=0, consumes orders.file-ready and orders.file-failed.\n";

typedef struct status_checker {
    worker w;
    state *state;
} status_checker;

/* Applies one event; returns 400-class errors as DX_ERR_INVALID with err. */
static dx_status apply_event(status_checker *sc, const char *subject, const void *data, size_t len,
                             const char *content_type, int replay, char *err, size_t err_len)
{
    int is_failure = subject != NULL && strcmp(subject, EVENT_SUBJECT_FILE_FAILED) == 0;
    event_file_ready ready = {0};
    event_file_failed failed = {0};
    const char *client_id, *trace_id, *event_id, *order_date;
    int added, files = 0;
    dx_status s;

    if (len > (size_t)sc->w.cfg.max_event_bytes) {
        metrics_add("dx_invalid_input_total", "oversized", 1);
        snprintf(err, err_len, "event of %zu bytes is over MAX_EVENT_BYTES", len);
        return DX_ERR_INVALID;
    }
    if (is_failure)
        s = event_decode(EVENT_FILE_FAILED, data, len, content_type, &failed, err, err_len);
    else
        s = event_decode(EVENT_FILE_READY, data, len, content_type, &ready, err, err_len);
    if (s != DX_OK) {
        metrics_add("dx_invalid_input_total", event_error_kind(err), 1);
        return s;
    }
    client_id = is_failure ? failed.client_id : ready.client_id;
    if (!clientid_valid(sc->w.clients, client_id)) {
        metrics_add("dx_invalid_input_total", "invalid_client", 1);
        snprintf(err, err_len, "client_id does not match CLIENT_PATTERN");
        return DX_ERR_INVALID;
    }
    if (is_failure)
        added = state_add_failed(sc->state, &failed, util_now_ms());
    else
        added = state_add_ready(sc->state, &ready, util_now_ms());
    if (replay)
        return DX_OK;
    trace_id = is_failure ? failed.trace_id : ready.trace_id;
    event_id = is_failure ? failed.event_id : ready.event_id;
    order_date = is_failure ? failed.order_date : ready.order_date;
    log_ctx lc = {trace_id, event_id, client_id, order_date};
    cJSON *fields = cJSON_CreateObject();

    if (state_recount_client(sc->state, &sc->w, client_id, &files, err, err_len) != DX_OK)
        files = -1; /* the event is recorded all the same */
    cJSON_AddStringToObject(fields, "event", is_failure ? "file-failed" : "file-ready");
    cJSON_AddBoolToObject(fields, "duplicate", !added);
    if (files >= 0) {
        cJSON_AddNumberToObject(fields, "files_in_depot", files);
    } else {
        cJSON_AddNullToObject(fields, "files_in_depot");
        cJSON_AddStringToObject(fields, "depot_error", err);
    }
    if (!is_failure)
        cJSON_AddStringToObject(fields, "output", ready.output);
    log_write(LOG_LEVEL_INFO, &lc,
              added ? "status updated" : "duplicate event ignored (already counted)", fields);
    return DX_OK;
}

static bus_verdict on_message(void *ctx, const bus_delivery *d, int64_t *nak_delay_ms)
{
    status_checker *sc = ctx;
    char err[512] = "";
    dx_status s;

    if (strcmp(d->subject, EVENT_SUBJECT_ORDER_DATE) == 0)
        return BUS_ACK; /* the consumer sees the whole stream: not ours */
    s = apply_event(sc, d->subject, d->data, d->len, d->content_type, 0, err, sizeof(err));

    if (s == DX_ERR_INVALID) {
        cJSON *fields = cJSON_CreateObject();

        cJSON_AddStringToObject(fields, "subject", d->subject);
        cJSON_AddStringToObject(fields, "reason", err);
        log_write(LOG_LEVEL_ERROR, NULL, "terminated undecodable message", fields);
        return BUS_TERM;
    }
    /* The event is recorded even when the depot could not be listed. */
    return BUS_ACK;
}

static bus_verdict on_replay(void *ctx, const bus_delivery *d, int64_t *nak_delay_ms)
{
    char err[256];

    apply_event(ctx, d->subject, d->data, d->len, d->content_type, 1, err, sizeof(err));
    return BUS_ACK;
}

/* One full listing at start, so that the per-event totals count every
 * client already in the depot. */
static void prime_depot_counts(status_checker *sc)
{
    char err[512];
    int files = 0;

    cJSON_Delete(state_to_json(sc->state, &sc->w, &files, err, sizeof(err)));
    /* state_to_json() sets files to -1 and err to the reason when the depot
     * cannot be listed: that is worth a warning, not a count. */
    if (files < 0)
        log_printf(LOG_LEVEL_WARN, NULL, "%s", err);
    else
        log_printf(LOG_LEVEL_INFO, NULL, "%d files in the depot", files);
}

static void serve_status(status_checker *sc, http_response *resp, int html)
{
    char err[512];
    int files = 0;
    cJSON *doc = state_to_json(sc->state, &sc->w, &files, err, sizeof(err));

    if (doc == NULL) {
        http_error(resp, 503, err);
        return;
    }
    profiles_view_annotate(doc, &sc->w);
    resp->status = 200;
    if (html) {
        resp->body = page_render(doc);
        resp->content_type = "text/html; charset=utf-8";
    } else {
        resp->body = cJSON_PrintUnformatted(doc);
    }
    cJSON_Delete(doc);
}

static void on_http(void *ctx, const http_request *req, http_response *resp)
{
    status_checker *sc = ctx;
    const char *subject = EVENT_SUBJECT_FILE_READY;
    char err[512] = "";

    if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/status") == 0) {
        serve_status(sc, resp, 0);
        return;
    }
    if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/") == 0) {
        serve_status(sc, resp, 1);
        return;
    }
    if (strcmp(req->method, "POST") != 0 || strcmp(req->path, "/") != 0) {
        http_error(resp, 404, "not found");
        return;
    }
    /* The connector names the subject in X-Topic; without it, a body with a
     * "reason" is a failure. */
    if ((req->x_topic != NULL && strcmp(req->x_topic, EVENT_SUBJECT_FILE_FAILED) == 0) ||
        (req->x_topic == NULL && strstr(req->body, "\"reason\"") != NULL))
        subject = EVENT_SUBJECT_FILE_FAILED;
    switch (apply_event(sc, subject, req->body, req->body_len, req->content_type, 0, err,
                        sizeof(err))) {
    case DX_OK:
        serve_status(sc, resp, 0);
        break;
    case DX_ERR_INVALID:
        log_printf(LOG_LEVEL_ERROR, NULL, "refused invocation: %s", err);
        http_error(resp, 400, err);
        break;
    default:
        http_error(resp, 503, err);
        break;
    }
}

int main(int argc, char **argv)
{
    static status_checker sc;
    char err[512];
    int ret = 1;

    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        worker_print_help(usage);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        worker_print_version("status-checker");
        return 0;
    }
    if (argc >= 2) {
        fprintf(stderr, "status-checker: unknown argument %s (see --help)\n", argv[1]);
        return 2;
    }
    worker_install_signals();
    if (worker_init(&sc.w, "status-checker", WORKER_DEPOT, err, sizeof(err)) != DX_OK) {
        fprintf(stderr, "status-checker: %s\n", err);
        ret = 2;
        goto done;
    }
    worker_log_settings(&sc.w, NULL);
    atomic_store(&sc.w.warming_up, 1);
    sc.state = state_create();
    if (sc.state == NULL)
        goto done;
    if (worker_start_http(&sc.w, on_http, err, sizeof(err)) != DX_OK) {
        log_printf(LOG_LEVEL_ERROR, NULL, "%s", err);
        goto done;
    }
    if (worker_connect_bus(&sc.w, -1) == DX_OK) {
        bus_replay(sc.w.bus, EVENT_SUBJECT_FILE_READY, on_replay, &sc);
        bus_replay(sc.w.bus, EVENT_SUBJECT_FILE_FAILED, on_replay, &sc);
        prime_depot_counts(&sc);
        atomic_store(&sc.w.warming_up, 0);
        log_printf(LOG_LEVEL_INFO, NULL, "status rebuilt from the stream");
        if (sc.w.cfg.subscribe)
            bus_consume(sc.w.bus, BUS_DURABLE_STATUS, on_message, &sc, &worker_stop);
        else
            while (!atomic_load(&worker_stop))
                worker_sleep(1000);
    }
    log_printf(LOG_LEVEL_INFO, NULL, "stopping");
    ret = 0;
done:
    worker_finish(&sc.w);
    profiles_view_finish();
    state_destroy(sc.state);
    return ret;
}
