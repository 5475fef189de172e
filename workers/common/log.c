#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytebuf.h"
#include "util.h"

static const char *worker_name = "unknown";
static log_level threshold = LOG_LEVEL_INFO;
static pthread_mutex_t output_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *worker)
{
    worker_name = worker;
}

int log_set_level(const char *name)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            threshold = (log_level)i;
            return 0;
        }
    }
    return -1;
}

/* Scalars are printed by cJSON itself, so escaping is cJSON's, not ours. */
static void append_item(bytebuf *b, const cJSON *item)
{
    int is_object = cJSON_IsObject(item);

    if (is_object || cJSON_IsArray(item)) {
        const cJSON *child;
        int first = 1;

        bytebuf_puts(b, is_object ? "{" : "[");
        cJSON_ArrayForEach(child, item)
        {
            if (!first)
                bytebuf_puts(b, ", ");
            first = 0;
            if (is_object) {
                cJSON key = {.type = cJSON_String, .valuestring = child->string};
                char *printed = cJSON_PrintUnformatted(&key);

                if (printed == NULL) {
                    b->failed = 1;
                    return;
                }
                bytebuf_puts(b, printed);
                bytebuf_puts(b, ": ");
                free(printed);
            }
            append_item(b, child);
        }
        bytebuf_puts(b, is_object ? "}" : "]");
        return;
    }
    char *printed = cJSON_PrintUnformatted(item);

    if (printed == NULL) {
        b->failed = 1;
        return;
    }
    bytebuf_puts(b, printed);
    free(printed);
}

char *log_json_line(const cJSON *item)
{
    bytebuf b = BYTEBUF_INIT;

    append_item(&b, item);
    return bytebuf_take(&b);
}

static void add_id(cJSON *line, const char *key, const char *value, int always)
{
    if (value != NULL && value[0] != '\0')
        cJSON_AddStringToObject(line, key, value);
    else if (always)
        cJSON_AddNullToObject(line, key);
}

void log_write(log_level level, const log_ctx *ctx, const char *msg, cJSON *fields)
{
    static const log_ctx no_ctx;
    cJSON *line = NULL;
    char ts[32];
    char *text = NULL;

    if (level < threshold)
        goto done;
    if (ctx == NULL)
        ctx = &no_ctx;
    line = cJSON_CreateObject();
    if (line == NULL)
        goto done;
    util_rfc3339(ts, util_now_ms());
    cJSON_AddStringToObject(line, "ts", ts);
    cJSON_AddStringToObject(line, "level", level_names[level]);
    cJSON_AddStringToObject(line, "worker", worker_name);
    cJSON_AddStringToObject(line, "msg", msg);
    add_id(line, "trace_id", ctx->trace_id, 1);
    add_id(line, "event_id", ctx->event_id, 1);
    add_id(line, "client_id", ctx->client_id, 0);
    add_id(line, "order_date", ctx->order_date, 0);
    if (fields != NULL) {
        while (fields->child != NULL) {
            cJSON *member = cJSON_DetachItemViaPointer(fields, fields->child);

            cJSON_AddItemToObject(line, member->string, member);
        }
    }
    text = log_json_line(line);
    if (text == NULL)
        goto done;
    pthread_mutex_lock(&output_lock);
    fputs(text, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&output_lock);
done:
    free(text);
    cJSON_Delete(line);
    cJSON_Delete(fields);
}

void log_printf(log_level level, const log_ctx *ctx, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (level < threshold)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_write(level, ctx, msg, NULL);
}
