#include "worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "metrics.h"
#include "util.h"

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "worker_stop is stored by a signal handler");

atomic_int worker_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    atomic_store(&worker_stop, 1);
}

void worker_install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void worker_sleep(int64_t ms)
{
    while (ms > 0 && !atomic_load(&worker_stop)) {
        int64_t step = ms < 100 ? ms : 100;

        util_sleep_ms(step);
        ms -= step;
    }
}

static dx_status open_storage(const char *variable, const char *url, const config_sftp *sftp,
                              storage **out, char *err, size_t err_len)
{
    char why[256];
    dx_status s;

    if (url[0] == '\0') {
        snprintf(err, err_len, "%s is not set", variable);
        return DX_ERR_INVALID;
    }
    s = storage_create(out, url, sftp, why, sizeof(why));
    if (s != DX_OK)
        snprintf(err, err_len, "%s: %s", variable, why);
    return s;
}

dx_status worker_init(worker *w, const char *name, unsigned needs, char *err, size_t err_len)
{
    dx_status s;

    memset(w, 0, sizeof(*w));
    w->name = name;
    pthread_mutex_init(&w->work_lock, NULL);
    log_init(name);
    metrics_define_standard(name);
    s = config_load(&w->cfg, err, err_len);
    if (s == DX_OK)
        s = bus_check_config(&w->cfg, err, err_len);
    if (s == DX_OK)
        s = clientid_rule_create(&w->clients, w->cfg.client_pattern, err, err_len);
    if (s == DX_OK && (needs & WORKER_INBOX))
        s = open_storage("INBOX_URL", w->cfg.inbox_url, &w->cfg.sftp, &w->inbox, err, err_len);
    if (s == DX_OK && (needs & WORKER_DEPOT))
        s = open_storage("DEPOT_URL", w->cfg.depot_url, &w->cfg.sftp, &w->depot, err, err_len);
    return s;
}

/* The storage's display URL (no secret); "" for one this worker does not use. */
static const char *storage_shown(const storage *st)
{
    return st != NULL ? storage_display_url(st) : "";
}

void worker_log_settings(const worker *w, const cron_schedule *schedule)
{
    cJSON *fields = cJSON_CreateObject();
    const char *tz = getenv("TZ");
    char next_run[64] = "";
    time_t next;

    if (schedule != NULL && cron_next(schedule, time(NULL), &next) == DX_OK) {
        struct tm tm;

        localtime_r(&next, &tm);
        strftime(next_run, sizeof(next_run), "%Y-%m-%dT%H:%M:%S%z %Z", &tm);
    }
    cJSON_AddStringToObject(fields, "tz", tz && tz[0] ? tz : "UTC");
    cJSON_AddStringToObject(fields, "nats_servers", w->cfg.nats_url_display);
    cJSON_AddBoolToObject(fields, "nats_tls_ca", w->cfg.nats_tls_ca_file[0] != '\0');
    cJSON_AddBoolToObject(fields, "nats_tls_client_cert", w->cfg.nats_tls_cert_file[0] != '\0');
    cJSON_AddStringToObject(fields, "inbox", storage_shown(w->inbox));
    cJSON_AddStringToObject(fields, "depot", storage_shown(w->depot));
    cJSON_AddStringToObject(fields, "schedule", cron_describe(schedule));
    if (next_run[0] != '\0')
        cJSON_AddStringToObject(fields, "next_run", next_run);
    else
        cJSON_AddNullToObject(fields, "next_run");
    log_write(LOG_LEVEL_INFO, NULL, "settings", fields);
}

dx_status worker_connect_bus(worker *w, int64_t timeout_ms)
{
    int64_t backoff_ms = 250;
    int64_t deadline = util_monotonic_ms() + timeout_ms;
    char err[256];

    while (!atomic_load(&worker_stop) && (timeout_ms < 0 || util_monotonic_ms() < deadline)) {
        bus *b = NULL;

        if (bus_connect(&b, &w->cfg, w->name, err, sizeof(err)) == DX_OK) {
            atomic_store_explicit(&w->bus, b, memory_order_release);
            log_printf(LOG_LEVEL_INFO, NULL, "connected to NATS, stream %s ready", BUS_STREAM);
            return DX_OK;
        }
        log_printf(LOG_LEVEL_WARN, NULL, "%s; retrying in %lld ms", err, (long long)backoff_ms);
        worker_sleep(backoff_ms);
        backoff_ms = backoff_ms * 2 < 5000 ? backoff_ms * 2 : 5000;
    }
    return DX_ERR_IO;
}

dx_status worker_start_http(worker *w, http_handler handler, char *err, size_t err_len)
{
    dx_status s =
        http_start(&w->http, w->cfg.http_addr, w->cfg.port, (size_t)w->cfg.max_event_bytes, handler,
                   worker_ready, w, err, err_len);

    if (s == DX_OK)
        log_printf(LOG_LEVEL_INFO, NULL, "serving HTTP on %s:%d", w->cfg.http_addr,
                   http_port(w->http));
    return s;
}

int worker_ready(void *ctx)
{
    worker *w = ctx;
    bus *b = atomic_load_explicit(&w->bus, memory_order_acquire);
    int ready = b != NULL && bus_connected(b) && !atomic_load(&w->warming_up);

    if (!ready)
        return 0;
    /* A held lock means a file is being processed, i.e. the storages work:
     * the probe answers at once instead of waiting for the transfer. */
    if (pthread_mutex_trylock(&w->work_lock) != 0)
        return 1;
    if (w->inbox != NULL && storage_ping(w->inbox) != DX_OK)
        ready = 0;
    if (ready && w->depot != NULL && storage_ping(w->depot) != DX_OK)
        ready = 0;
    pthread_mutex_unlock(&w->work_lock);
    return ready;
}

void worker_finish(worker *w)
{
    http_destroy(w->http, w->cfg.shutdown_grace * 1000);
    w->http = NULL;
    bus_destroy(atomic_exchange(&w->bus, NULL));
    /* Releases the NATS library's own threads and memory (as nats.c's
     * examples do), so that leak checkers see a clean exit. */
    nats_Close();
    storage_destroy(w->inbox);
    storage_destroy(w->depot);
    clientid_rule_destroy(w->clients);
    w->inbox = w->depot = NULL;
    w->clients = NULL;
    pthread_mutex_destroy(&w->work_lock);
}

dx_status worker_publish_event(worker *w, event_type type, const void *ev, const char *subject,
                               const char *msg_id)
{
    void *data = NULL;
    size_t len = 0;
    dx_status s = event_encode(type, ev, w->cfg.emit_json, &data, &len);

    if (s == DX_OK)
        s = bus_publish(w->bus, subject, data, len, event_content_type(w->cfg.emit_json), msg_id);
    free(data);
    return s;
}
