/*
 * status-checker: consumes orders.file-ready and orders.file-failed (and
 * orders.drop-check and its own orders.client-state for the days), keeps
 * the status of every client and date, and serves it: GET /status (JSON),
 * GET / (an HTML page), POST / (one event, OpenFaaS function mode).
 */
#include <cjson/cJSON.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "days.h"
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
    "and, unless SUBSCRIBE=0, consumes orders.file-ready, orders.file-failed,\n"
    "orders.drop-check and orders.client-state, and publishes orders.client-state\n"
    "when a client's day turns late, missing, failed or resolved.\n";

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
    uint64_t replayed;      /* run events applied by the replay at start */
    uint64_t replayed_days; /* DropCheck and ClientState events, the same */
    days_book *days;        /* the day of every expected client (days.h) */
    atomic_int days_dirty;  /* an event arrived: evaluate now */
    auth *auth;             /* STATUS_AUTH_FILE's credentials; NULL: everything open */
} status_checker;

/* How often the days are evaluated without events (the clock moves them). */
#define DAYS_TICK_MS (20 * 1000)

/* Applies one event; returns 400-class errors as DX_ERR_INVALID with err. */
static dx_status apply_event(status_checker *sc, const char *subject, const void *data, size_t len,
                             const char *content_type, int replay, int64_t at_ms, char *err,
                             size_t err_len)
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
    if (is_failure) {
        added = state_add_failed(sc->state, &failed, at_ms);
        days_add_failed(sc->days, &failed, at_ms);
    } else {
        added = state_add_ready(sc->state, &ready, at_ms);
        days_add_ready(sc->days, &ready, at_ms);
    }
    atomic_store(&sc->days_dirty, 1);
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

/* When the stream stored d: the same on every replay, so the day times are. */
static int64_t delivery_ms(const bus_delivery *d)
{
    return d->stream_time_ns > 0 ? d->stream_time_ns / 1000000 : util_now_ms();
}

/*
 * A DropCheck or a ClientState (our own announcements read back) into the
 * days.  DX_ERR_INVALID with err for a message that does not decode.
 */
static dx_status apply_day_event(status_checker *sc, const bus_delivery *d, char *err,
                                 size_t err_len)
{
    int is_check = strcmp(d->subject, EVENT_SUBJECT_DROP_CHECK) == 0;
    event_drop_check check = {0};
    event_client_state cs = {0};
    dx_status s =
        is_check
            ? event_decode(EVENT_DROP_CHECK, d->data, d->len, d->content_type, &check, err, err_len)
            : event_decode(EVENT_CLIENT_STATE, d->data, d->len, d->content_type, &cs, err, err_len);

    if (s != DX_OK) {
        metrics_add(DX_INVALID_INPUT_TOTAL, event_error_kind(err), 1);
        return s;
    }
    if (!clientid_valid(sc->w.clients, is_check ? check.client_id : cs.client_id)) {
        metrics_add(DX_INVALID_INPUT_TOTAL, "invalid_client", 1);
        snprintf(err, err_len, "client_id does not match CLIENT_PATTERN");
        return DX_ERR_INVALID;
    }
    if (is_check)
        days_add_check(sc->days, &check, delivery_ms(d));
    else
        days_add_announced(sc->days, &cs);
    atomic_store(&sc->days_dirty, 1);
    return DX_OK;
}

static int is_day_subject(const char *subject)
{
    return strcmp(subject, EVENT_SUBJECT_DROP_CHECK) == 0 ||
           strcmp(subject, EVENT_SUBJECT_CLIENT_STATE) == 0;
}

/* The file-ready and file-failed subjects; every other one is acked unread. */
static int is_run_subject(const char *subject)
{
    return strcmp(subject, EVENT_SUBJECT_FILE_READY) == 0 ||
           strcmp(subject, EVENT_SUBJECT_FILE_FAILED) == 0;
}

static bus_verdict handle_delivery(status_checker *sc, const bus_delivery *d)
{
    char err[512] = "";
    dx_status s;

    if (is_day_subject(d->subject))
        s = apply_day_event(sc, d, err, sizeof(err));
    else if (!is_run_subject(d->subject))
        return BUS_ACK; /* the consumer sees the whole stream: not ours */
    else
        s = apply_event(sc, d->subject, d->data, d->len, d->content_type, 0, delivery_ms(d), err,
                        sizeof(err));
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
 * The snapshot is "DXB1", the length of the state's part (4 bytes little
 * endian), the state's part (state_encode) and the days as JSON
 * (days_encode).  On success *data is a new buffer the caller frees.
 */
#define SNAPSHOT_BOTH_MAGIC "DXB1"

static dx_status encode_snapshot(status_checker *sc, void **data, size_t *len)
{
    void *runs = NULL;
    size_t runs_len = 0, days_len;
    char *day_text = NULL;
    unsigned char *out = NULL;
    dx_status s = state_encode(sc->state, &runs, &runs_len);

    if (s == DX_OK && (day_text = days_encode(sc->days)) == NULL)
        s = DX_ERR_NOMEM;
    days_len = day_text != NULL ? strlen(day_text) : 0;
    if (s == DX_OK && (out = malloc(8 + runs_len + days_len)) == NULL)
        s = DX_ERR_NOMEM;
    if (s == DX_OK) {
        memcpy(out, SNAPSHOT_BOTH_MAGIC, 4);
        for (int i = 0; i < 4; i++)
            out[4 + i] = (unsigned char)(runs_len >> (8 * i));
        memcpy(out + 8, runs, runs_len);
        memcpy(out + 8 + runs_len, day_text, days_len);
        *data = out;
        *len = 8 + runs_len + days_len;
    }
    free(runs);
    free(day_text);
    return s;
}

/* The inverse of encode_snapshot(); DX_ERR_INVALID with err for anything
 * else (a snapshot of an older version included: the stream is replayed). */
static dx_status decode_snapshot(status_checker *sc, const unsigned char *data, size_t len,
                                 char *err, size_t err_len)
{
    size_t runs_len = 0;
    dx_status s;

    if (len < 8 || memcmp(data, SNAPSHOT_BOTH_MAGIC, 4) != 0) {
        snprintf(err, err_len, "not a status snapshot with days (no %s header)",
                 SNAPSHOT_BOTH_MAGIC);
        return DX_ERR_INVALID;
    }
    for (int i = 4; i-- > 0;)
        runs_len = runs_len << 8 | data[4 + i];
    if (runs_len > len - 8) {
        snprintf(err, err_len, "status snapshot truncated");
        return DX_ERR_INVALID;
    }
    s = state_decode(sc->state, data + 8, runs_len, err, err_len);
    if (s == DX_OK &&
        days_decode(sc->days, (const char *)data + 8 + runs_len, len - 8 - runs_len) != 0) {
        snprintf(err, err_len, "the days of the status snapshot do not parse");
        s = DX_ERR_INVALID;
    }
    return s;
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
    s = encode_snapshot(sc, &data, &len);
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

    if (is_day_subject(d->subject)) {
        if (apply_day_event(sc, d, err, sizeof(err)) == DX_OK)
            sc->replayed_days++;
        return BUS_ACK;
    }
    if (!is_run_subject(d->subject))
        return BUS_ACK;
    if (apply_event(sc, d->subject, d->data, d->len, d->content_type, 1, delivery_ms(d), err,
                    sizeof(err)) == DX_OK)
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
        s = decode_snapshot(sc, data, len, err, sizeof(err));
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
               "status rebuilt from %s and %llu events of the stream in %lld ms "
               "(and %llu day events)",
               from > 0 ? "the snapshot" : "the stream alone", (unsigned long long)sc->replayed,
               (long long)(util_monotonic_ms() - started), (unsigned long long)sc->replayed_days);
    if (sc->replayed + sc->replayed_days > 0)
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

/* ---------- the days: evaluation, announcements, metrics ---------- */

/* Publishes r's ClientState once (its Nats-Msg-Id makes a second replica's
 * copy a duplicate the stream drops) and records it as announced. */
static void announce_day(status_checker *sc, const days_row *r, int64_t now_ms)
{
    event_client_state ev = {0};
    char msg_id[256];
    void *data = NULL;
    size_t len = 0;
    dx_status s;

    util_uuid(ev.event_id);
    if (util_trace_id_valid(r->trace_id))
        util_copy(ev.trace_id, sizeof(ev.trace_id), r->trace_id);
    else
        util_trace_id(ev.trace_id);
    util_copy(ev.client_id, sizeof(ev.client_id), r->client_id);
    util_copy(ev.order_date, sizeof(ev.order_date), r->order_date);
    util_copy(ev.state, sizeof(ev.state), days_state_name(r->state));
    util_copy(ev.previous, sizeof(ev.previous), r->previous);
    util_copy(ev.reason, sizeof(ev.reason), r->reason);
    util_rfc3339(ev.at, now_ms);
    util_copy(ev.caused_by, sizeof(ev.caused_by), r->caused_by);
    days_msg_id(r, msg_id, sizeof(msg_id));
    s = event_encode(EVENT_CLIENT_STATE, &ev, 0, &data, &len);
    if (s == DX_OK)
        s = bus_publish(sc->w.bus, EVENT_SUBJECT_CLIENT_STATE, data, len, event_content_type(0),
                        msg_id);
    free(data);
    log_ctx lc = {ev.trace_id, ev.event_id, ev.client_id, ev.order_date};
    if (s != DX_OK) {
        /* Not recorded: the next tick tries again. */
        log_printf(LOG_LEVEL_WARN, &lc, "cannot publish the client state %s: %s", ev.state,
                   status_text(s));
        return;
    }
    days_add_announced(sc->days, &ev);
    log_printf(LOG_LEVEL_INFO, &lc, "client state %s announced: %s", ev.state, ev.reason);
}

/* The dx_client_* gauges from the evaluated rows and the replayed runs. */
static void set_day_metrics(status_checker *sc, const days_row *rows, size_t n)
{
    char labels[EVENT_CLIENT_MAX + 32];

    for (size_t i = 0; i < n; i++) {
        const days_row *r = &rows[i];
        int64_t success_ms;
        int open = 0;

        if (!r->newest)
            continue;
        for (int st = 0; st < DAYS_STATE_COUNT; st++) {
            snprintf(labels, sizeof(labels), "%s,%s", r->client_id, days_state_name(st));
            metrics_set(DX_CLIENT_STATE, labels, r->state == (days_state)st);
        }
        metrics_set(DX_CLIENT_LATE, r->client_id, r->state == DAYS_LATE);
        for (size_t j = 0; j < n; j++)
            open += rows[j].state == DAYS_FAILED && strcmp(rows[j].client_id, r->client_id) == 0;
        metrics_set(DX_CLIENT_OPEN_FAILURES, r->client_id, open);
        success_ms = days_last_success_ms(sc->days, r->client_id);
        if (success_ms >= 0)
            metrics_set(DX_CLIENT_LAST_SUCCESS_TIMESTAMP_SECONDS, r->client_id,
                        (double)success_ms / 1000.0);
    }
}

/* dx_status_events_behind: what the durable consumer has still to deliver. */
static void set_events_behind(status_checker *sc)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    jsCtx *js = sc->w.bus != NULL ? bus_jetstream(sc->w.bus) : NULL;

    if (js == NULL || !sc->w.cfg.subscribe)
        return;
    if (js_GetConsumerInfo(&ci, js, BUS_STREAM, BUS_DURABLE_STATUS, NULL, &jerr) == NATS_OK) {
        metrics_set(DX_STATUS_EVENTS_BEHIND, "", (double)ci->NumPending);
        jsConsumerInfo_Destroy(ci);
    }
}

/* One evaluation: the profiles read again, the days, their announcements. */
static void tick_days(status_checker *sc)
{
    days_profile *profiles = NULL;
    days_row *rows = NULL;
    size_t nprofiles = 0, n = 0;
    int64_t now_ms = util_now_ms();

    if (profiles_view_expectations(&sc->w, &profiles, &nprofiles) == 0)
        days_set_profiles(sc->days, profiles, nprofiles);
    free(profiles);
    if (days_evaluate(sc->days, now_ms, 1, &rows, &n) != 0)
        return;
    for (size_t i = 0; sc->w.cfg.subscribe && i < n; i++) {
        if (rows[i].announce)
            announce_day(sc, &rows[i], now_ms);
    }
    set_day_metrics(sc, rows, n);
    set_events_behind(sc);
    free(rows);
}

/* Evaluates the days every DAYS_TICK_MS and soon after each event. */
static void *days_thread(void *arg)
{
    status_checker *sc = arg;
    int64_t last = 0;

    while (!atomic_load(&worker_stop)) {
        int64_t now = util_monotonic_ms();

        if (atomic_exchange(&sc->days_dirty, 0) || now - last >= DAYS_TICK_MS) {
            tick_days(sc);
            last = now;
        }
        worker_sleep(500);
    }
    return NULL;
}

/* The top-level day fields of /status: timezone, utc_offset, today, days. */
static void add_days_json(status_checker *sc, cJSON *doc)
{
    const char *tz = getenv("TZ");
    time_t now = time(NULL);
    struct tm tm;
    char today[11], offset[32];
    days_row *rows = NULL;
    size_t n = 0;
    long off;

    localtime_r(&now, &tm);
    off = tm.tm_gmtoff;
    snprintf(offset, sizeof(offset), "%c%02ld:%02ld", off < 0 ? '-' : '+', labs(off) / 3600,
             labs(off) % 3600 / 60);
    util_local_date(now, today);
    cJSON_AddStringToObject(doc, "timezone", tz != NULL && tz[0] != '\0' ? tz : "UTC");
    cJSON_AddStringToObject(doc, "utc_offset", offset);
    cJSON_AddStringToObject(doc, "today", today);
    if (days_evaluate(sc->days, (int64_t)now * 1000, 0, &rows, &n) == 0)
        cJSON_AddItemToObject(doc, "days", days_rows_json(rows, n));
    free(rows);
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
    add_days_json(sc, doc);
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
    switch (apply_event(sc, subject, req->body, req->body_len, req->content_type, 0, util_now_ms(),
                        err, sizeof(err))) {
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
    int ret = 1, ticking = 0;
    pthread_t ticker;

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
    sc.days = days_create();
    if (sc.state == NULL || sc.days == NULL)
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
        ticking = pthread_create(&ticker, NULL, days_thread, &sc) == 0;
        if (sc.w.cfg.subscribe)
            bus_consume(sc.w.bus, BUS_DURABLE_STATUS, on_message, &sc, &worker_stop);
        else
            while (!atomic_load(&worker_stop))
                worker_sleep(1000);
        maybe_save(&sc, 1);
    }
    if (ticking)
        pthread_join(ticker, NULL);
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
    days_destroy(sc.days);
    return ret;
}
