#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/*
 * Every setting, once: its variable, where it goes in config, its default as
 * it would be written in the environment, and what --help says of it.
 * config_load() reads exactly these rows and config_print_help() lists
 * exactly these rows, so the help cannot drift from what is read.
 */
typedef enum setting_kind {
    SETTING_STRING,
    SETTING_INT,
    SETTING_BOOL,
} setting_kind;

typedef struct setting {
    const char *name;
    setting_kind kind;
    size_t offset; /* of the field in config */
    size_t size;   /* of a string field */
    const char *fallback;
    int min, max; /* SETTING_INT */
    /* Further checks once the value is stored (NULL for none). */
    dx_status (*check)(const struct setting *st, config *cfg, char *err, size_t err_len);
    const char *help;
} setting;

static dx_status check_storage_url(const setting *st, config *cfg, char *err, size_t err_len)
{
    const char *url = (const char *)cfg + st->offset;

    if (url[0] == '\0' || strncmp(url, "file:///", 8) == 0 || strncmp(url, "sftp://", 7) == 0)
        return DX_OK;
    snprintf(err, err_len, "%s must be file:///abs/path or sftp://USER@HOST[:PORT]/PATH", st->name);
    return DX_ERR_INVALID;
}

static dx_status check_log_level(const setting *st, config *cfg, char *err, size_t err_len)
{
    if (log_set_level(cfg->log_level) == 0)
        return DX_OK;
    snprintf(err, err_len, "%s must be debug, info, warn or error", st->name);
    return DX_ERR_INVALID;
}

static dx_status check_encoding(const setting *st, config *cfg, char *err, size_t err_len)
{
    cfg->emit_json = strcmp(cfg->event_encoding, "json") == 0;
    if (cfg->emit_json || strcmp(cfg->event_encoding, "protobuf") == 0)
        return DX_OK;
    snprintf(err, err_len, "%s must be protobuf or json", st->name);
    return DX_ERR_INVALID;
}

/* An int setting's field must be an int: a row naming another type does not
 * compile (an array of size -1). */
#define INT_FIELD(field) sizeof(char[sizeof(((config *)0)->field) == sizeof(int) ? 1 : -1])
#define STRING(var, field, fallback, check, help)                                                  \
    {                                                                                              \
        var, SETTING_STRING, offsetof(config, field), sizeof(((config *)0)->field), fallback, 0,   \
            0, check, help                                                                         \
    }
#define INT(var, field, fallback, min, max, help)                                                  \
    {                                                                                              \
        var, SETTING_INT, offsetof(config, field), sizeof(int) * INT_FIELD(field), fallback, min,  \
            max, NULL, help                                                                        \
    }
#define BOOL(var, field, fallback, help)                                                           \
    {                                                                                              \
        var, SETTING_BOOL, offsetof(config, field), sizeof(int) * INT_FIELD(field), fallback, 0,   \
            1, NULL, help                                                                          \
    }

static const setting settings[] = {
    STRING("NATS_URL", nats_url, "nats://127.0.0.1:4222", NULL, "NATS server(s), comma-separated"),
    STRING("NATS_CREDS_FILE", nats_creds_file, "", NULL, "NATS credentials file"),
    STRING("INBOX_URL", inbox_url, "", check_storage_url,
           "file:///abs/path or sftp://USER@HOST[:PORT]/PATH (daily-checker, file-transformer)"),
    STRING("DEPOT_URL", depot_url, "", check_storage_url,
           "same forms (file-transformer, status-checker)"),
    STRING("HTTP_ADDR", http_addr, "127.0.0.1", NULL, "HTTP listen address"),
    INT("PORT", port, "8080", 0, 65535, "HTTP port (0 picks a free one)"),
    STRING("LOG_LEVEL", log_level, "info", check_log_level, "debug, info, warn or error"),
    STRING("CLIENT_PATTERN", client_pattern, "^US[0-9]+$", NULL,
           "POSIX extended regex a whole client id must match"),
    STRING("EVENT_ENCODING", event_encoding, "protobuf", check_encoding,
           "protobuf or json, for the events published"),
    BOOL("SUBSCRIBE", subscribe, "1", "0: function mode, events over HTTP only"),
    STRING("SCHEDULE", schedule, "", NULL,
           "daily-checker: cron expressions separated by ';', or @daily"),
    INT("CATCHUP_MAX_DAYS", catchup_max_days, "7", 0, 366,
        "daily-checker: most missed order dates caught up"),
    INT("DROP_MIN_AGE", drop_min_age, "30", 0, 86400,
        "daily-checker: seconds a drop must stay unchanged"),
    INT("MAX_DELIVER", max_deliver, "5", 1, 100, "deliveries of an event before FileFailed"),
    INT("ACK_WAIT", ack_wait, "60", 1, 86400, "seconds JetStream waits for an ack"),
    INT("MAX_EVENT_BYTES", max_event_bytes, "65536", 256, 8 << 20,
        "largest accepted event or HTTP body"),
    INT("SHUTDOWN_GRACE", shutdown_grace, "20", 0, 3600,
        "seconds in-flight work may take after SIGTERM"),
    INT("STREAM_REPLICAS", stream_replicas, "1", 1, 5, "replicas of the ORDERS stream"),
};

#undef INT_FIELD
#undef STRING
#undef INT
#undef BOOL

static dx_status load_string(const setting *st, const char *value, config *cfg, char *err,
                             size_t err_len)
{
    size_t len = strlen(value);

    if (len >= st->size) {
        snprintf(err, err_len, "%s is too long (at most %zu characters)", st->name, st->size - 1);
        return DX_ERR_INVALID;
    }
    memcpy((char *)cfg + st->offset, value, len + 1);
    return DX_OK;
}

static dx_status load_int(const setting *st, const char *value, config *cfg, char *err,
                          size_t err_len)
{
    char *end = NULL;
    long parsed;

    errno = 0;
    parsed = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || parsed < st->min || parsed > st->max) {
        snprintf(err, err_len, "%s must be an integer from %d to %d", st->name, st->min, st->max);
        return DX_ERR_INVALID;
    }
    memcpy((char *)cfg + st->offset, &(int){(int)parsed}, sizeof(int));
    return DX_OK;
}

static dx_status load_bool(const setting *st, const char *value, config *cfg, char *err,
                           size_t err_len)
{
    int parsed;

    if (strcmp(value, "1") == 0 || strcmp(value, "true") == 0 || strcmp(value, "yes") == 0)
        parsed = 1;
    else if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0 || strcmp(value, "no") == 0)
        parsed = 0;
    else {
        snprintf(err, err_len, "%s must be 1 or 0", st->name);
        return DX_ERR_INVALID;
    }
    memcpy((char *)cfg + st->offset, &parsed, sizeof(int));
    return DX_OK;
}

/* Reads one setting: the environment's value, or its default when unset or
 * empty (parsed the same way, so a default is what --help says). */
static dx_status load_setting(const setting *st, config *cfg, char *err, size_t err_len)
{
    const char *value = getenv(st->name);
    dx_status s;

    if (value == NULL || value[0] == '\0')
        value = st->fallback;
    if (st->kind == SETTING_STRING)
        s = load_string(st, value, cfg, err, err_len);
    else if (st->kind == SETTING_INT)
        s = load_int(st, value, cfg, err, err_len);
    else
        s = load_bool(st, value, cfg, err, err_len);
    if (s == DX_OK && st->check != NULL)
        s = st->check(st, cfg, err, err_len);
    return s;
}

dx_status config_load(config *cfg, char *err, size_t err_len)
{
    dx_status s = DX_OK;

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]) && s == DX_OK; i++)
        s = load_setting(&settings[i], cfg, err, err_len);
    return s;
}

void config_print_help(FILE *out)
{
    fputs("Environment variables (the same in every worker; unset or empty means the "
          "default):\n",
          out);
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        const setting *st = &settings[i];

        fprintf(out, "  %-17s %s [default: %s]\n", st->name, st->help,
                st->fallback[0] ? st->fallback : "none");
    }
    fputs("  TZ                time zone of \"today\" and of SCHEDULE [default: the system's]\n",
          out);
}
