/*
 * status-checker: consumes orders.file-ready and orders.file-failed, keeps
 * the status of every client and date, and serves it: GET /status (JSON),
 * GET / (an HTML page), POST / (one event, OpenFaaS function mode).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "event.h"
#include "files.h"
#include "metrics.h"
#include "kv.h"
#include "notify.h"
#include "page.h"
#include "snapshot.h"
#include "profiles_view.h"
#include "state.h"
#include "util.h"
#include "worker.h"

static const char usage[] =
    "usage: status-checker [--help | --version]\n"
    "\n"
    "Runs as a service: serves HTTP on PORT (GET /status, GET /, GET /files/PATH,\n"
    "GET /_/health, GET /_/ready, GET /metrics, POST / = one file-ready or\n"
    "file-failed event)\n"
    "and, unless SUBSCRIBE=0, consumes orders.file-ready and orders.file-failed.\n";

/* A snapshot is saved after this many stream messages, or this long after
 * the last save when a message arrives, and at shutdown. */
#define SNAPSHOT_EVERY_MESSAGES 1000
#define SNAPSHOT_EVERY_MS       (60 * 1000)

typedef struct status_checker {
    worker w;
    state *state;
    kv *bucket;     /* SNAPSHOT_BUCKET; NULL when it could not be opened */
    snapshot *snap; /* NULL without a bucket: every start replays the stream */
    /* Used by the consumer thread only (and main before it starts). */
    uint64_t covered_seq; /* every stream message up to here is in state */
    uint64_t saved_seq;   /* what the last snapshot saved covers */
    int64_t saved_at_ms;
    uint64_t replayed; /* events applied by the replay at start */
    auth *auth;        /* STATUS_AUTH_FILE's credentials; NULL: everything open */
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
        metrics_add(DX_INVALID_INPUT_TOTAL, "oversized", 1);
        snprintf(err, err_len, "event of %zu bytes is over MAX_EVENT_BYTES", len);
        return DX_ERR_INVALID;
    }
    if (is_failure)
        s = event_decode(EVENT_FILE_FAILED, data, len, content_type, &failed, err, err_len);
    else
        s = event_decode(EVENT_FILE_READY, data, len, content_type, &ready, err, err_len);
    if (s != DX_OK) {
        metrics_add(DX_INVALID_INPUT_TOTAL, event_error_kind(err), 1);
        return s;
    }
    client_id = is_failure ? failed.client_id : ready.client_id;
    if (!clientid_valid(sc->w.clients, client_id)) {
        metrics_add(DX_INVALID_INPUT_TOTAL, "invalid_client", 1);
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

/* The consumer sees the whole stream: only runs' outcomes are status events
 * (the notifier reads orders.client-state through its own consumer). */
static int is_status_subject(const char *subject)
{
    return strcmp(subject, EVENT_SUBJECT_FILE_READY) == 0 ||
           strcmp(subject, EVENT_SUBJECT_FILE_FAILED) == 0;
}

static bus_verdict handle_delivery(status_checker *sc, const bus_delivery *d)
{
    char err[512] = "";
    dx_status s;

    if (!is_status_subject(d->subject))
        return BUS_ACK;
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

/*
 * Saves a snapshot covering sc->covered_seq when there is something new
 * and, unless forced, enough of it (or enough time) since the last one.
 */
static void maybe_save(status_checker *sc, int force)
{
    int64_t started = util_monotonic_ms();
    void *data = NULL;
    size_t len = 0;
    dx_status s;

    if (sc->snap == NULL || sc->covered_seq == sc->saved_seq)
        return;
    if (!force && sc->covered_seq - sc->saved_seq < SNAPSHOT_EVERY_MESSAGES &&
        started - sc->saved_at_ms < SNAPSHOT_EVERY_MS)
        return;
    s = state_encode(sc->state, &data, &len);
    if (s == DX_OK)
        s = snapshot_save(sc->snap, sc->covered_seq, data, len);
    free(data);
    sc->saved_at_ms = util_monotonic_ms();
    if (s != DX_OK) {
        /* The next start replays more, nothing is lost. */
        log_printf(LOG_LEVEL_WARN, NULL, "cannot save the status snapshot: %s", status_text(s));
        return;
    }
    sc->saved_seq = sc->covered_seq;
    log_printf(LOG_LEVEL_DEBUG, NULL,
               "status snapshot saved: up to stream sequence %llu, %zu bytes, %lld ms",
               (unsigned long long)sc->covered_seq, len, (long long)(sc->saved_at_ms - started));
}

static bus_verdict on_message(void *ctx, const bus_delivery *d, int64_t *nak_delay_ms)
{
    status_checker *sc = ctx;
    bus_verdict verdict = handle_delivery(sc, d);

    /* One replica consumes in stream order (see the README): a message
     * delivered means the ones before it were too. */
    if (d->stream_seq > sc->covered_seq)
        sc->covered_seq = d->stream_seq;
    maybe_save(sc, 0);
    return verdict;
}

static bus_verdict on_replay(void *ctx, const bus_delivery *d, int64_t *nak_delay_ms)
{
    status_checker *sc = ctx;
    char err[256];

    if (!is_status_subject(d->subject))
        return BUS_ACK;
    if (apply_event(sc, d->subject, d->data, d->len, d->content_type, 1, err, sizeof(err)) == DX_OK)
        sc->replayed++;
    return BUS_ACK;
}

/* Loads the snapshot into the state; returns the first stream sequence it
 * does not cover (0 without one). */
static uint64_t load_snapshot(status_checker *sc)
{
    void *data = NULL;
    size_t len = 0;
    uint64_t seq = 0;
    char err[256] = "";
    dx_status s = snapshot_load(sc->snap, &seq, &data, &len, err, sizeof(err));

    if (s == DX_OK)
        s = state_decode(sc->state, data, len, err, sizeof(err));
    free(data);
    if (s == DX_ERR_NOT_FOUND)
        return 0;
    if (s != DX_OK) {
        /* Whatever was decoded is harmless: the replay counts each event once. */
        log_printf(LOG_LEVEL_WARN, NULL, "status snapshot ignored, replaying the whole stream: %s",
                   err[0] ? err : status_text(s));
        return 0;
    }
    sc->saved_seq = seq;
    return seq + 1;
}

/*
 * Rebuilds the state: the snapshot, then the stream's messages after it (or
 * the whole stream without one), then saves a snapshot when the replay
 * found anything.
 */
static void rebuild_state(status_checker *sc)
{
    int64_t started = util_monotonic_ms();
    uint64_t from = 0, last = 0;
    char err[512];

    if (kv_open(&sc->bucket, sc->w.bus, SNAPSHOT_BUCKET, sc->w.cfg.stream_replicas, 0, err,
                sizeof(err)) == DX_OK)
        sc->snap = snapshot_create(sc->bucket);
    else
        log_printf(LOG_LEVEL_WARN, NULL, "no status snapshot: %s", err);
    if (sc->snap != NULL)
        from = load_snapshot(sc);
    bus_replay(sc->w.bus, from, on_replay, sc, &last);
    if (from > 0 && last + 1 < from) {
        /* The stream ends before the snapshot: it was deleted and created
         * again, so all of it is new. */
        log_printf(LOG_LEVEL_WARN, NULL,
                   "the stream is shorter than the status snapshot: replaying all of it");
        bus_replay(sc->w.bus, 0, on_replay, sc, &last);
        sc->saved_seq = 0; /* its sequences are the old stream's */
    }
    sc->covered_seq = last > sc->saved_seq ? last : sc->saved_seq;
    sc->saved_at_ms = util_monotonic_ms();
    log_printf(LOG_LEVEL_INFO, NULL,
               "status rebuilt from %s and %llu events of the stream in %lld ms",
               from > 0 ? "the snapshot" : "the stream alone", (unsigned long long)sc->replayed,
               (long long)(util_monotonic_ms() - started));
    if (sc->replayed > 0)
        maybe_save(sc, 1);
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

/*
 * 1 when the request may go on; else resp is a 401 asking for credentials.
 * http.c has answered the probes and /metrics already: they stay open.
 */
static int authorized(const status_checker *sc, const http_request *req, http_response *resp)
{
    if (auth_check(sc->auth, req->authorization))
        return 1;
    http_error(resp, 401, "authentication required (see STATUS_AUTH_FILE)");
    resp->www_authenticate = AUTH_CHALLENGE;
    return 0;
}

/*
 * Function mode (POST /): the connector cannot send credentials, so an
 * invocation is applied without them; its answer is then only an
 * acknowledgement, the status document being for authenticated readers.
 */
static void answer_invocation(status_checker *sc, const http_request *req, http_response *resp)
{
    if (auth_check(sc->auth, req->authorization)) {
        serve_status(sc, resp, 0);
        return;
    }
    resp->status = 200;
    resp->body = strdup("{\"applied\":true}");
}

static void on_http(void *ctx, const http_request *req, http_response *resp)
{
    status_checker *sc = ctx;
    const char *subject = EVENT_SUBJECT_FILE_READY;
    char err[512] = "";

    if (strcmp(req->method, "POST") != 0 && !authorized(sc, req, resp))
        return;
    if (strcmp(req->method, "GET") == 0 &&
        strncmp(req->path, FILES_PREFIX, strlen(FILES_PREFIX)) == 0) {
        files_serve(&sc->w, req->path + strlen(FILES_PREFIX), resp);
        return;
    }
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
        answer_invocation(sc, req, resp);
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
    notify *notifier = NULL;
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
    if (sc.w.cfg.status_auth_file[0] != '\0' &&
        auth_load(&sc.auth, sc.w.cfg.status_auth_file, err, sizeof(err)) != DX_OK) {
        fprintf(stderr, "status-checker: %s\n", err);
        ret = 2;
        goto done;
    }
    /* The notifier's URL files are secrets read once, here: a bad one is a
     * bad setting. */
    if (notify_create(&notifier, &sc.w.cfg, err, sizeof(err)) != DX_OK) {
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
        /* Its own consumer and thread, in function mode too (the connector
         * delivers at most once). */
        if (notify_start(notifier, sc.w.bus, &worker_stop) != DX_OK)
            log_printf(LOG_LEVEL_ERROR, NULL, "cannot start the notifier thread");
        rebuild_state(&sc);
        prime_depot_counts(&sc);
        atomic_store(&sc.w.warming_up, 0);
        if (sc.w.cfg.subscribe)
            bus_consume(sc.w.bus, BUS_DURABLE_STATUS, on_message, &sc, &worker_stop);
        else
            while (!atomic_load(&worker_stop))
                worker_sleep(1000);
        maybe_save(&sc, 1);
    }
    log_printf(LOG_LEVEL_INFO, NULL, "stopping");
    ret = 0;
done:
    notify_destroy(notifier); /* joins its threads (worker_stop is set) */
    snapshot_destroy(sc.snap);
    kv_destroy(sc.bucket); /* before the bus it uses */
    worker_finish(&sc.w);
    profiles_view_finish();
    state_destroy(sc.state);
    auth_destroy(sc.auth);
    return ret;
}
