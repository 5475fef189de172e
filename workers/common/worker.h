#pragma once

#include <pthread.h>
#include <signal.h>
#include <stddef.h>

#include "bus.h"
#include "clientid.h"
#include "config.h"
#include "cron.h"
#include "http.h"
#include "log.h"
#include "status.h"
#include "storage.h"

/*
 * What every worker process has: its configuration, the client-id rule, its
 * storages, the bus and the HTTP server, and the stop flag set by SIGTERM or
 * SIGINT.  The three mains differ only in what they do with events.
 */
typedef struct worker {
    const char *name;
    config cfg;
    clientid_rule *clients;
    storage *inbox; /* NULL when the worker does not need it */
    storage *depot;
    bus *bus; /* NULL until connected */
    http_server *http;
    /* Storage connections (SFTP) are not shared between threads: the
     * consumer thread and HTTP invocations take turns. */
    pthread_mutex_t work_lock;
    /* Set while the worker rebuilds its state (status-checker's replay):
     * not ready until it is cleared. */
    volatile int warming_up;
} worker;

/* Set by SIGTERM/SIGINT; every loop polls it at least once a second. */
extern volatile sig_atomic_t worker_stop;

/* Installs the SIGTERM/SIGINT handlers and ignores SIGPIPE. */
void worker_install_signals(void);

/*
 * Loads the configuration, sets up logging, compiles CLIENT_PATTERN and opens
 * the storages the worker needs (lazy for SFTP).  On failure err holds a
 * one-line reason and the caller exits 2.  worker_finish() releases it all.
 */
dx_status worker_init(worker *w, const char *name, int need_inbox, int need_depot, char *err,
                      size_t err_len);

/*
 * Logs the one line of effective settings every worker writes at start: TZ,
 * the NATS servers (credentials replaced by ***), inbox, depot, and the
 * schedule with its next run in local time (schedule may be NULL).
 */
void worker_log_settings(const worker *w, const cron_schedule *schedule);

/*
 * Connects the bus, retrying with backoff (logging each failure) until it
 * works, worker_stop is set, or timeout_ms passes (-1: no limit).  Returns
 * DX_OK when connected.
 */
dx_status worker_connect_bus(worker *w, int64_t timeout_ms);

/* Starts the HTTP server on HTTP_ADDR:PORT with the given handler. */
dx_status worker_start_http(worker *w, http_handler handler, char *err, size_t err_len);

/* Readiness: the bus is connected and every storage answers. */
int worker_ready(void *w);

/* Stops HTTP (finishing in-flight requests within SHUTDOWN_GRACE), drains
 * the bus and frees everything.  Safe on a partly initialised worker. */
void worker_finish(worker *w);

/* Sleeps up to ms milliseconds, returning early when worker_stop is set. */
void worker_sleep(int64_t ms);
