#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "bus.h"
#include "clientid.h"
#include "config.h"
#include "cron.h"
#include "event.h"
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
    /* NULL until connected; set by the consumer thread, read by HTTP
     * threads (readiness, invocations). */
    bus *_Atomic bus;
    http_server *http;
    /* Storage connections (SFTP) are not shared between threads: the
     * consumer thread and HTTP invocations take turns. */
    pthread_mutex_t work_lock;
    /* Set while the worker rebuilds its state (status-checker's replay):
     * not ready until it is cleared.  Read by the HTTP threads. */
    atomic_int warming_up;
} worker;

/* Set by SIGTERM/SIGINT; every loop polls it at least once a second.  A
 * C11 atomic, not a volatile: it is read by several threads (consumer, HTTP,
 * SFTP watchdog), and a lock-free atomic may be stored by a signal handler. */
extern atomic_int worker_stop;

/* What a worker needs besides the bus, named at the call:
 * worker_init(&w, "daily-checker", WORKER_INBOX, ...). */
typedef enum worker_needs {
    WORKER_INBOX = 1 << 0, /* opens INBOX_URL (required) */
    WORKER_DEPOT = 1 << 1, /* opens DEPOT_URL (required) */
} worker_needs;

/* Installs the SIGTERM/SIGINT handlers and ignores SIGPIPE. */
void worker_install_signals(void);

/*
 * Loads the configuration, sets up logging, compiles CLIENT_PATTERN and opens
 * the storages the worker needs (lazy for SFTP).  On failure err holds a
 * one-line reason and the caller exits 2.  needs is a set of worker_needs.  worker_finish()
 * releases it all.
 */
dx_status worker_init(worker *w, const char *name, unsigned needs, char *err, size_t err_len);

/*
 * Logs the one line of effective settings every worker writes at start: TZ,
 * the NATS servers (credentials replaced by ***), inbox, depot, and the
 * schedule with its next run in local time (schedule may be NULL).
 */
void worker_log_settings(const worker *w, const cron_schedule *schedule);

/*
 * Encodes ev (the struct of type) in the worker's EVENT_ENCODING and
 * publishes it on subject with msg_id as its Nats-Msg-Id (bus_publish()).
 */
dx_status worker_publish_event(worker *w, event_type type, const void *ev, const char *subject,
                               const char *msg_id);

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
 * the bus, frees everything and closes the NATS library (nats_Close): call
 * it once, at exit.  Safe on a partly initialised worker. */
void worker_finish(worker *w);

/* --help: prints usage, then every environment variable the workers read,
 * with its default (config_print_help), to stdout. */
void worker_print_help(const char *usage);

/* --version: prints "<name> <version>" to stdout. */
void worker_print_version(const char *name);

/* Sleeps up to ms milliseconds, returning early when worker_stop is set. */
void worker_sleep(int64_t ms);
