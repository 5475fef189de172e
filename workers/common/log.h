#pragma once

#include <cjson/cJSON.h>

/*
 * Logs are one JSON object per line on stdout, so that `kubectl logs` can be
 * piped through grep or jq.  Every line has ts, level, worker, msg, trace_id
 * and event_id (null when unknown), then client_id and order_date when
 * known, then the caller's fields.  Keys and values are separated by ": "
 * and members by ", " so that a plain grep for `"order_date": "2026-11-24"`
 * finds the line.
 */

typedef enum log_level {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARN,
    LOG_LEVEL_ERROR,
} log_level;

/* The ids that let an operator follow one run; any member may be NULL. */
typedef struct log_ctx {
    const char *trace_id;
    const char *event_id;
    const char *client_id;
    const char *order_date;
} log_ctx;

/* Sets the worker name written in every line (borrowed: a string literal). */
void log_init(const char *worker);

/* Sets the threshold from "debug", "info", "warn" or "error"; -1 if unknown. */
int log_set_level(const char *name);

/*
 * Writes one line.  fields is an object whose members are appended to the
 * line; log_write takes ownership of it and frees it (NULL for none).
 */
void log_write(log_level level, const log_ctx *ctx, const char *msg, cJSON *fields);

/* printf-style message without extra fields. */
void log_printf(log_level level, const log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Serialises item on one line with ": " and ", " separators.  Returns a
 * malloc'd string the caller frees, or NULL when out of memory.
 */
char *log_json_line(const cJSON *item);
