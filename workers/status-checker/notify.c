#include "notify.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "log.h"
#include "metrics.h"
#include "profile_store.h"
#include "util.h"
#include "webhook.h"

/* A URL file is one line; anything longer is not a URL. */
#define URL_FILE_MAX 4096
/* How often dx_notifications_pending is read from JetStream. */
#define PENDING_EVERY_MS 2000

struct notify {
    const config *cfg;
    int has_global;
    webhook_url global; /* the secret: never logged */
    bus *bus;
    const atomic_int *stop;
    kv *sent;     /* NOTIFY_SENT_BUCKET, consumer thread only */
    kv *profiles; /* the clients bucket, consumer thread only */
    pthread_t consumer, pending;
    int consumer_started, pending_started;
};

/* One target of one event. */
typedef struct target {
    const char *label; /* the metric label and log name: "global", NAME or "mailto" */
    char key_part[80]; /* its part of the sent-record key */
    int mailto;
    int is_global;
} target;

notify_outcome notify_classify(dx_status s, int http_status)
{
    if (s != DX_OK)
        return NOTIFY_RETRY;
    if (http_status >= 200 && http_status <= 299)
        return NOTIFY_DELIVERED;
    if (http_status < 200 || http_status >= 500 || http_status == 408 || http_status == 429)
        return NOTIFY_RETRY;
    return NOTIFY_PERMANENT;
}

int64_t notify_backoff_ms(uint64_t delivery)
{
    int64_t delay = NOTIFY_BACKOFF_MIN_MS;

    for (uint64_t i = 1; i < delivery && delay < NOTIFY_BACKOFF_MAX_MS; i++)
        delay *= 2;
    return delay < NOTIFY_BACKOFF_MAX_MS ? delay : NOTIFY_BACKOFF_MAX_MS;
}

static void add_link(cJSON *links, const char *name, const char *base, const char *path)
{
    char url[1200];

    snprintf(url, sizeof(url), "%s%s", base, path);
    cJSON_AddStringToObject(links, name, url);
}

cJSON *notify_build_body(const event_client_state *ev, const char *public_url)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *links = cJSON_CreateObject();
    char text[EVENT_CLIENT_MAX + EVENT_PATH_MAX + 64];
    char base[1024];
    size_t n;

    snprintf(text, sizeof(text), "%s %s for %s%s%s", ev->client_id, ev->state, ev->order_date,
             ev->reason[0] ? ": " : "", ev->reason);
    cJSON_AddStringToObject(body, "text", text);
    cJSON_AddStringToObject(body, "client_id", ev->client_id);
    cJSON_AddStringToObject(body, "order_date", ev->order_date);
    cJSON_AddStringToObject(body, "state", ev->state);
    cJSON_AddStringToObject(body, "previous", ev->previous);
    cJSON_AddStringToObject(body, "reason", ev->reason);
    cJSON_AddStringToObject(body, "trace_id", ev->trace_id);
    cJSON_AddStringToObject(body, "event_id", ev->event_id);
    cJSON_AddStringToObject(body, "at", ev->at);
    snprintf(base, sizeof(base), "%s", public_url != NULL ? public_url : "");
    n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        base[--n] = '\0';
    if (n > 0) {
        /* The page shows the client's day, its runs and their files. */
        add_link(links, "page", base, "/");
        add_link(links, "status", base, "/status");
    }
    cJSON_AddItemToObject(body, "links", links);
    return body;
}

/*
 * Reads the URL in path into *out.  DX_ERR_INVALID with a reason that does
 * not quote the file's content.
 */
static dx_status read_url_file(const char *path, webhook_url *out, char *err, size_t err_len)
{
    char buf[URL_FILE_MAX];
    FILE *f = fopen(path, "re");
    size_t n;
    dx_status s;

    if (f == NULL) {
        snprintf(err, err_len, "cannot read the URL file: %s", strerror(errno));
        return DX_ERR_INVALID;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    s = webhook_parse_url(buf, out, err, err_len);
    memset(buf, 0, sizeof(buf)); /* the secret does not linger on the stack */
    return s;
}

/*
 * Starts the delivery counters of every target known at start at 0: a
 * counter that only appears at its first failure hides that failure from
 * rate() and increase().  Profile webhooks are the files of NOTIFY_WEBHOOKS_DIR.
 */
static void zero_counters(const notify *n)
{
    static const metric_id families[] = {DX_NOTIFICATIONS_SENT_TOTAL,
                                         DX_NOTIFICATIONS_FAILED_TOTAL};
    const char *dir_path = n->cfg->notify.webhooks_dir;
    DIR *dir = dir_path[0] != '\0' ? opendir(dir_path) : NULL;
    struct dirent *e;

    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        if (n->has_global)
            metrics_add(families[i], NOTIFY_TARGET_GLOBAL, 0);
        metrics_add(families[i], NOTIFY_TARGET_MAILTO, 0);
    }
    while (dir != NULL && (e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
            metrics_add(families[i], e->d_name, 0);
    }
    if (dir != NULL)
        closedir(dir);
}

dx_status notify_create(notify **out, const config *cfg, char *err, size_t err_len)
{
    const config_notify *nc = &cfg->notify;
    char why[256];
    notify *n;

    *out = NULL;
    if (nc->webhook_url_file[0] == '\0' && nc->webhooks_dir[0] == '\0')
        return DX_OK;
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return DX_ERR_NOMEM;
    n->cfg = cfg;
    if (nc->webhook_url_file[0] != '\0') {
        if (read_url_file(nc->webhook_url_file, &n->global, why, sizeof(why)) != DX_OK) {
            snprintf(err, err_len, "NOTIFY_WEBHOOK_URL_FILE: %s", why);
            free(n);
            return DX_ERR_INVALID;
        }
        n->has_global = 1;
    }
    zero_counters(n);
    *out = n;
    return DX_OK;
}

/* The sent-record key of (event, target): letters, digits, '-', '_', '.'. */
static void record_key(const event_client_state *ev, uint64_t seq, const target *t, char *key,
                       size_t key_len)
{
    char id[EVENT_ID_MAX];
    size_t i;

    if (ev->event_id[0] == '\0')
        snprintf(id, sizeof(id), "seq-%llu", (unsigned long long)seq);
    else
        snprintf(id, sizeof(id), "%s", ev->event_id);
    for (i = 0; id[i] != '\0'; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
              (id[i] >= '0' && id[i] <= '9') || id[i] == '-'))
            id[i] = '_';
    snprintf(key, key_len, "e-%s.%s", id, t->key_part);
}

/* Logs one attempt's result, naming the target by its label only. */
static void log_attempt(const event_client_state *ev, const target *t, log_level level,
                        const char *msg, uint64_t delivery, int http_status, const char *error)
{
    log_ctx lc = {ev->trace_id, ev->event_id, ev->client_id, ev->order_date};
    cJSON *fields = cJSON_CreateObject();

    cJSON_AddStringToObject(fields, "target", t->label);
    cJSON_AddStringToObject(fields, "state", ev->state);
    cJSON_AddNumberToObject(fields, "attempt", (double)delivery);
    if (http_status > 0)
        cJSON_AddNumberToObject(fields, "http_status", http_status);
    if (error != NULL && error[0] != '\0')
        cJSON_AddStringToObject(fields, "error", error);
    log_write(level, &lc, msg, fields);
}

/* POSTs body to t once; returns the outcome, with the reason in err. */
static notify_outcome post_once(notify *n, const target *t, const char *body, int *http_status,
                                char *err, size_t err_len)
{
    const config_notify *nc = &n->cfg->notify;
    webhook_url url;
    char path[2048], why[256];
    dx_status s;

    if (t->is_global) {
        url = n->global;
    } else {
        if (nc->webhooks_dir[0] == '\0') {
            snprintf(err, err_len, "NOTIFY_WEBHOOKS_DIR is not set: no URL for this webhook");
            return NOTIFY_PERMANENT;
        }
        snprintf(path, sizeof(path), "%s/%s", nc->webhooks_dir, t->label);
        if (read_url_file(path, &url, why, sizeof(why)) != DX_OK) {
            snprintf(err, err_len, "NOTIFY_WEBHOOKS_DIR/%s: %s", t->label, why);
            return NOTIFY_PERMANENT;
        }
    }
    s = webhook_post(&url, nc->ca_file, nc->timeout_ms, n->stop, body, strlen(body), http_status,
                     err, err_len);
    memset(&url, 0, sizeof(url));
    if (s == DX_OK)
        snprintf(err, err_len, "HTTP status %d%s", *http_status,
                 *http_status >= 300 && *http_status < 400 ? " (redirects are not followed)" : "");
    return notify_classify(s, *http_status);
}

/*
 * Handles target t of ev: skipped when its record exists, else delivered or
 * given up and recorded.  Returns 1 when the event must come back for it.
 */
static int handle_target(notify *n, const event_client_state *ev, const bus_delivery *d,
                         const target *t, const char *body)
{
    char key[EVENT_ID_MAX + 96], err[512] = "";
    char *value = NULL;
    int http_status = 0;
    notify_outcome o;
    dx_status s;

    record_key(ev, d->stream_seq, t, key, sizeof(key));
    s = kv_get(n->sent, key, &value, NULL);
    free(value);
    if (s == DX_OK)
        return 0; /* done before a restart or an earlier retry */
    if (s != DX_ERR_NOT_FOUND)
        return 1;
    if (t->mailto) {
        o = NOTIFY_PERMANENT; /* once per event: recorded like a refused one */
        metrics_add(DX_NOTIFICATIONS_FAILED_TOTAL, t->label, 1);
        log_attempt(ev, t, LOG_LEVEL_WARN,
                    "notification not delivered: mailto targets are not delivered (no mail "
                    "support yet)",
                    d->delivery, 0, NULL);
    } else {
        o = post_once(n, t, body, &http_status, err, sizeof(err));
        if (o == NOTIFY_DELIVERED) {
            metrics_add(DX_NOTIFICATIONS_SENT_TOTAL, t->label, 1);
            log_attempt(ev, t, LOG_LEVEL_INFO, "notification delivered", d->delivery, http_status,
                        NULL);
        } else {
            metrics_add(DX_NOTIFICATIONS_FAILED_TOTAL, t->label, 1);
            log_attempt(ev, t, o == NOTIFY_RETRY ? LOG_LEVEL_WARN : LOG_LEVEL_ERROR,
                        o == NOTIFY_RETRY ? "notification failed, will retry"
                                          : "notification refused by its receiver, given up",
                        d->delivery, http_status, err);
            if (o == NOTIFY_RETRY)
                return 1;
        }
    }
    /* Recorded before the ack: a record that cannot be written brings the
     * event back (at least once), never loses it. */
    return kv_put(n->sent, key, o == NOTIFY_DELIVERED ? "delivered" : "given-up", NULL) != DX_OK;
}

/*
 * The targets of ev into ts (at most 2): the global webhook, then the
 * client's profile target.  Returns their count, or -1 when the profiles
 * cannot be read now (the event comes back later).
 */
static int list_targets(notify *n, const event_client_state *ev, target ts[2], profile *p)
{
    char reason[512] = "";
    int count = 0;
    dx_status s;

    if (n->has_global) {
        ts[count].label = NOTIFY_TARGET_GLOBAL;
        ts[count].is_global = 1;
        snprintf(ts[count].key_part, sizeof(ts[count].key_part), "global");
        count++;
    }
    s = profile_store_get(n->profiles, ev->client_id, p, reason, sizeof(reason));
    if (s == DX_ERR_IO)
        return -1;
    if (s == DX_ERR_INVALID) {
        /* The global target still gets it; the operator sees why the
         * client's own did not. */
        log_ctx lc = {ev->trace_id, ev->event_id, ev->client_id, ev->order_date};

        log_printf(LOG_LEVEL_WARN, &lc, "client target skipped: %s", reason);
        return count;
    }
    if (strncmp(p->notify, "webhook:", 8) == 0) {
        ts[count].label = p->notify + 8;
        snprintf(ts[count].key_part, sizeof(ts[count].key_part), "webhook.%s", p->notify + 8);
        count++;
    } else if (strncmp(p->notify, "mailto:", 7) == 0) {
        ts[count].label = NOTIFY_TARGET_MAILTO;
        ts[count].mailto = 1;
        snprintf(ts[count].key_part, sizeof(ts[count].key_part), "mailto");
        count++;
    }
    return count;
}

static bus_verdict on_event(void *ctx, const bus_delivery *d, int64_t *nak_delay_ms)
{
    notify *n = ctx;
    event_client_state ev = {0};
    profile p = {0};
    target ts[2] = {0};
    char err[512] = "", *body = NULL;
    int count, again = 0;
    cJSON *doc;

    if (event_decode(EVENT_CLIENT_STATE, d->data, d->len, d->content_type, &ev, err, sizeof(err)) !=
        DX_OK) {
        metrics_add(DX_INVALID_INPUT_TOTAL, event_error_kind(err), 1);
        log_printf(LOG_LEVEL_ERROR, NULL, "notifier terminated an undecodable ClientState: %s",
                   err);
        return BUS_TERM;
    }
    count = list_targets(n, &ev, ts, &p);
    doc = count > 0 ? notify_build_body(&ev, n->cfg->notify.public_url) : NULL;
    body = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (count < 0 || (count > 0 && body == NULL))
        again = 1;
    for (int i = 0; i < count && body != NULL; i++)
        again |= handle_target(n, &ev, d, &ts[i], body);
    free(body);
    if (!again)
        return BUS_ACK;
    *nak_delay_ms = notify_backoff_ms(d->delivery);
    return BUS_NAK;
}

/* Opens what the consumer needs, retrying until it works or *stop is set. */
static int open_all(notify *n)
{
    char err[512];

    for (int64_t wait_ms = 500; !atomic_load(n->stop);
         wait_ms = wait_ms < 8000 ? wait_ms * 2 : wait_ms) {
        dx_status s = DX_OK;

        if (n->sent == NULL)
            s = kv_open(&n->sent, n->bus, NOTIFY_SENT_BUCKET, n->cfg->stream_replicas,
                        n->cfg->stream_max_age, err, sizeof(err));
        if (s == DX_OK && n->profiles == NULL)
            s = profile_store_open(&n->profiles, n->bus, n->cfg->stream_replicas, err, sizeof(err));
        if (s == DX_OK)
            s = bus_ensure_consumer(n->bus, NOTIFY_DURABLE, EVENT_SUBJECT_CLIENT_STATE, -1, err,
                                    sizeof(err));
        if (s == DX_OK)
            return 1;
        log_printf(LOG_LEVEL_WARN, NULL, "notifier not started yet: %s", err);
        for (int64_t slept = 0; slept < wait_ms && !atomic_load(n->stop); slept += 100)
            util_sleep_ms(100);
    }
    return 0;
}

static void *consumer_main(void *arg)
{
    notify *n = arg;

    if (open_all(n)) {
        log_printf(LOG_LEVEL_INFO, NULL, "notifier consuming %s (consumer %s)",
                   EVENT_SUBJECT_CLIENT_STATE, NOTIFY_DURABLE);
        bus_consume(n->bus, NOTIFY_DURABLE, on_event, n, n->stop);
    }
    return NULL;
}

/* dx_notifications_pending, from JetStream's count (the same for every replica). */
static void *pending_main(void *arg)
{
    notify *n = arg;

    while (!atomic_load(n->stop)) {
        uint64_t pending = 0;

        if (bus_consumer_pending(n->bus, NOTIFY_DURABLE, &pending) == DX_OK)
            metrics_set(DX_NOTIFICATIONS_PENDING, "", (double)pending);
        for (int slept = 0; slept < PENDING_EVERY_MS && !atomic_load(n->stop); slept += 100)
            util_sleep_ms(100);
    }
    return NULL;
}

dx_status notify_start(notify *n, bus *b, const atomic_int *stop)
{
    if (n == NULL)
        return DX_OK;
    n->bus = b;
    n->stop = stop;
    if (pthread_create(&n->consumer, NULL, consumer_main, n) != 0)
        return DX_ERR_NOMEM;
    n->consumer_started = 1;
    /* Without it the notifier works all the same; only the gauge stays 0. */
    n->pending_started = pthread_create(&n->pending, NULL, pending_main, n) == 0;
    if (!n->pending_started)
        log_printf(LOG_LEVEL_WARN, NULL, "dx_notifications_pending will not be updated");
    return DX_OK;
}

void notify_destroy(notify *n)
{
    if (n == NULL)
        return;
    if (n->consumer_started)
        pthread_join(n->consumer, NULL);
    if (n->pending_started)
        pthread_join(n->pending, NULL);
    kv_destroy(n->sent);
    kv_destroy(n->profiles);
    memset(&n->global, 0, sizeof(n->global));
    free(n);
}
