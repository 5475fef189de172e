/*
 * daily-checker: decides the order date and publishes one orders.order-date
 * event per client with a pending drop, and one orders.drop-check per
 * expected client saying what the check found.  Runs once (--once), as a scheduler
 * (SCHEDULE), or as an OpenFaaS function invoked by the cron-connector
 * (POST /, an empty body meaning "today").
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checker.h"
#include "cron.h"
#include "event.h"
#include "metrics.h"
#include "scheduler.h"
#include "util.h"
#include "worker.h"

static const char usage[] =
    "usage: daily-checker --once [--date YYYY-MM-DD] [--client ID]\n"
    "       daily-checker [--help | --version]\n"
    "\n"
    "--once      check the inbox, publish one order-date event per client with a\n"
    "            pending drop, and exit (0 on success, 1 on failure)\n"
    "--date D    the order date (default: today in TZ)\n"
    "--client ID only this client (must match CLIENT_PATTERN)\n"
    "\n"
    "Without --once, runs as a service: serves HTTP on PORT (POST / = one run;\n"
    "an empty body means today) and, when SCHEDULE is set (5-field cron\n"
    "expressions separated by ';', or @daily, in TZ), runs on that schedule;\n"
    "after downtime it first runs each missed order date (CATCHUP_MAX_DAYS);\n"
    "a client whose drop was still being written is checked again every\n"
    "RECHECK_SECONDS, up to RECHECK_MAX times, within the day.\n";

typedef struct options {
    int once;
    const char *date;
    const char *client;
} options;

static int parse_args(int argc, char **argv, options *opt)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            worker_print_help(usage);
            exit(0);
        } else if (strcmp(arg, "--version") == 0) {
            worker_print_version("daily-checker");
            exit(0);
        } else if (strcmp(arg, "--once") == 0) {
            opt->once = 1;
        } else if (strcmp(arg, "--date") == 0 && i + 1 < argc) {
            opt->date = argv[++i];
            if (!util_date_valid(opt->date)) {
                fprintf(stderr, "daily-checker: --date must be a real date YYYY-MM-DD\n");
                return -1;
            }
        } else if (strcmp(arg, "--client") == 0 && i + 1 < argc) {
            opt->client = argv[++i];
        } else {
            fprintf(stderr, "daily-checker: unknown or incomplete argument %s (see --help)\n", arg);
            return -1;
        }
    }
    if (!opt->once && (opt->date != NULL || opt->client != NULL)) {
        fprintf(stderr, "daily-checker: --date and --client go with --once\n");
        return -1;
    }
    return 0;
}

static dx_status run_check(worker *w, const char *date, const char *client, const char *trace_id,
                           const char *trigger, cJSON *published, cJSON *checks, char *err,
                           size_t err_len)
{
    checker_request req = {.triggered_by = trigger};

    if (date != NULL)
        util_copy(req.order_date, sizeof(req.order_date), date);
    else
        util_today(req.order_date);
    req.run_date = date == NULL;
    if (client != NULL && util_copy(req.client_id, sizeof(req.client_id), client) != 0) {
        snprintf(err, err_len, "client id refused: too long");
        return DX_ERR_INVALID;
    }
    if (trace_id != NULL)
        util_copy(req.trace_id, sizeof(req.trace_id), trace_id);
    return checker_run(w, &req, published, checks, err, err_len);
}

static void on_http(void *ctx, const http_request *req, http_response *resp)
{
    worker *w = ctx;
    event_order_date ev = {0};
    cJSON *published, *checks, *result;
    char err[512] = "", trace_id[EVENT_ID_MAX] = "";
    dx_status s;

    if (strcmp(req->method, "POST") != 0 || strcmp(req->path, "/") != 0) {
        http_error(resp, 404, "not found: POST / runs a check");
        return;
    }
    if (atomic_load_explicit(&w->bus, memory_order_acquire) == NULL) {
        http_error(resp, 503, "not connected to NATS yet");
        return;
    }
    /* The cron-connector sends an empty body: run for today.  An operator
     * may send an OrderDate (JSON or protobuf) to pick the date or client. */
    if (req->body_len > 0 && strspn(req->body, " \t\r\n") != req->body_len) {
        if (event_decode(EVENT_ORDER_DATE, req->body, req->body_len, req->content_type, &ev, err,
                         sizeof(err)) != DX_OK) {
            metrics_add(DX_INVALID_INPUT_TOTAL, event_error_kind(err), 1);
            log_printf(LOG_LEVEL_ERROR, NULL, "refused invocation: %s", err);
            http_error(resp, 400, err);
            return;
        }
    }
    if (util_trace_id_valid(ev.trace_id))
        util_copy(trace_id, sizeof(trace_id), ev.trace_id);
    else if (req->traceparent != NULL && strlen(req->traceparent) >= 35)
        snprintf(trace_id, sizeof(trace_id), "%.32s", req->traceparent + 3);
    published = cJSON_CreateArray();
    checks = cJSON_CreateArray();
    s = run_check(w, ev.order_date[0] ? ev.order_date : NULL, ev.client_id[0] ? ev.client_id : NULL,
                  trace_id,
                  req->x_connector && strstr(req->x_connector, "cron") ? "schedule" : "http",
                  published, checks, err, sizeof(err));
    if (s != DX_OK) {
        cJSON_Delete(published);
        cJSON_Delete(checks);
        http_error(resp, s == DX_ERR_INVALID ? 400 : 503, err);
        return;
    }
    result = cJSON_CreateObject();
    cJSON_AddItemToObject(result, "published", published);
    cJSON_AddItemToObject(result, "checks", checks);
    resp->status = 200;
    resp->body = cJSON_PrintUnformatted(result);
    cJSON_Delete(result);
}

int main(int argc, char **argv)
{
    options opt = {0};
    worker w;
    cron_schedule *schedule = NULL;
    char err[512];
    int ret = 1;

    if (parse_args(argc, argv, &opt) != 0)
        return 2;
    worker_install_signals();
    if (worker_init(&w, "daily-checker", WORKER_INBOX, err, sizeof(err)) != DX_OK) {
        fprintf(stderr, "daily-checker: %s\n", err);
        ret = 2;
        goto done;
    }
    if (!opt.once && w.cfg.schedule[0] != '\0' &&
        cron_parse(w.cfg.schedule, &schedule, err, sizeof(err)) != DX_OK) {
        fprintf(stderr, "daily-checker: SCHEDULE: %s\n", err);
        ret = 2;
        goto done;
    }
    worker_log_settings(&w, schedule);
    if (opt.once) {
        cJSON *published = cJSON_CreateArray();

        if (worker_connect_bus(&w, 30000) != DX_OK) {
            fprintf(stderr, "daily-checker: cannot reach NATS at %s\n", w.cfg.nats_url_display);
        } else if (run_check(&w, opt.date, opt.client, NULL, "manual", published, NULL, err,
                             sizeof(err)) != DX_OK) {
            fprintf(stderr, "daily-checker: %s\n", err);
        } else {
            ret = 0;
        }
        cJSON_Delete(published);
        goto done;
    }
    if (worker_start_http(&w, on_http, err, sizeof(err)) != DX_OK) {
        log_printf(LOG_LEVEL_ERROR, NULL, "%s", err);
        goto done;
    }
    if (worker_connect_bus(&w, -1) == DX_OK) {
        if (schedule != NULL)
            scheduler_run(&w, schedule);
        else
            while (!atomic_load(&worker_stop))
                worker_sleep(1000);
    }
    log_printf(LOG_LEVEL_INFO, NULL, "stopping");
    ret = 0;
done:
    cron_destroy(schedule);
    worker_finish(&w);
    checker_finish();
    return ret;
}
