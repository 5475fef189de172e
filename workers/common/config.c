#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static dx_status get_string(const char *name, const char *fallback, char *out, size_t out_len,
                            char *err, size_t err_len)
{
    const char *value = getenv(name);

    if (value == NULL || value[0] == '\0')
        value = fallback;
    if (strlen(value) >= out_len) {
        snprintf(err, err_len, "%s is too long (at most %zu characters)", name, out_len - 1);
        return DX_ERR_INVALID;
    }
    memcpy(out, value, strlen(value) + 1);
    return DX_OK;
}

static dx_status get_int(const char *name, int fallback, int min, int max, int *out, char *err,
                         size_t err_len)
{
    const char *value = getenv(name);
    char *end = NULL;
    long parsed;

    if (value == NULL || value[0] == '\0') {
        *out = fallback;
        return DX_OK;
    }
    errno = 0;
    parsed = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || parsed < min || parsed > max) {
        snprintf(err, err_len, "%s must be an integer from %d to %d", name, min, max);
        return DX_ERR_INVALID;
    }
    *out = (int)parsed;
    return DX_OK;
}

static dx_status get_bool(const char *name, int fallback, int *out, char *err, size_t err_len)
{
    const char *value = getenv(name);

    if (value == NULL || value[0] == '\0')
        *out = fallback;
    else if (strcmp(value, "1") == 0 || strcmp(value, "true") == 0 || strcmp(value, "yes") == 0)
        *out = 1;
    else if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0 || strcmp(value, "no") == 0)
        *out = 0;
    else {
        snprintf(err, err_len, "%s must be 1 or 0", name);
        return DX_ERR_INVALID;
    }
    return DX_OK;
}

static dx_status check_storage_url(const char *name, const char *url, char *err, size_t err_len)
{
    if (url[0] == '\0' || strncmp(url, "file:///", 8) == 0 || strncmp(url, "sftp://", 7) == 0)
        return DX_OK;
    snprintf(err, err_len, "%s must be file:///abs/path or sftp://USER@HOST[:PORT]/PATH", name);
    return DX_ERR_INVALID;
}

dx_status config_load(config *cfg, char *err, size_t err_len)
{
    char encoding[16];
    dx_status s;

    memset(cfg, 0, sizeof(*cfg));
    s = get_string("NATS_URL", "nats://127.0.0.1:4222", cfg->nats_url, sizeof(cfg->nats_url), err,
                   err_len);
    if (s == DX_OK)
        s = get_string("NATS_CREDS_FILE", "", cfg->nats_creds_file, sizeof(cfg->nats_creds_file),
                       err, err_len);
    if (s == DX_OK)
        s = get_string("INBOX_URL", "", cfg->inbox_url, sizeof(cfg->inbox_url), err, err_len);
    if (s == DX_OK)
        s = get_string("DEPOT_URL", "", cfg->depot_url, sizeof(cfg->depot_url), err, err_len);
    if (s == DX_OK)
        s = check_storage_url("INBOX_URL", cfg->inbox_url, err, err_len);
    if (s == DX_OK)
        s = check_storage_url("DEPOT_URL", cfg->depot_url, err, err_len);
    if (s == DX_OK)
        s = get_string("HTTP_ADDR", "127.0.0.1", cfg->http_addr, sizeof(cfg->http_addr), err,
                       err_len);
    if (s == DX_OK)
        s = get_int("PORT", 8080, 0, 65535, &cfg->port, err, err_len);
    if (s == DX_OK)
        s = get_string("LOG_LEVEL", "info", cfg->log_level, sizeof(cfg->log_level), err, err_len);
    if (s == DX_OK && log_set_level(cfg->log_level) != 0) {
        snprintf(err, err_len, "LOG_LEVEL must be debug, info, warn or error");
        s = DX_ERR_INVALID;
    }
    if (s == DX_OK)
        s = get_string("CLIENT_PATTERN", "^US[0-9]+$", cfg->client_pattern,
                       sizeof(cfg->client_pattern), err, err_len);
    if (s == DX_OK)
        s = get_string("EVENT_ENCODING", "protobuf", encoding, sizeof(encoding), err, err_len);
    if (s == DX_OK) {
        if (strcmp(encoding, "json") == 0)
            cfg->emit_json = 1;
        else if (strcmp(encoding, "protobuf") != 0) {
            snprintf(err, err_len, "EVENT_ENCODING must be protobuf or json");
            s = DX_ERR_INVALID;
        }
    }
    if (s == DX_OK)
        s = get_bool("SUBSCRIBE", 1, &cfg->subscribe, err, err_len);
    if (s == DX_OK)
        s = get_string("SCHEDULE", "", cfg->schedule, sizeof(cfg->schedule), err, err_len);
    if (s == DX_OK)
        s = get_int("CATCHUP_MAX_DAYS", 7, 0, 366, &cfg->catchup_max_days, err, err_len);
    if (s == DX_OK)
        s = get_int("DROP_MIN_AGE", 30, 0, 86400, &cfg->drop_min_age, err, err_len);
    if (s == DX_OK)
        s = get_int("MAX_DELIVER", 5, 1, 100, &cfg->max_deliver, err, err_len);
    if (s == DX_OK)
        s = get_int("ACK_WAIT", 60, 1, 86400, &cfg->ack_wait, err, err_len);
    if (s == DX_OK)
        s = get_int("MAX_EVENT_BYTES", 65536, 256, 8 << 20, &cfg->max_event_bytes, err, err_len);
    if (s == DX_OK)
        s = get_int("SHUTDOWN_GRACE", 20, 0, 3600, &cfg->shutdown_grace, err, err_len);
    if (s == DX_OK)
        s = get_int("STREAM_REPLICAS", 1, 1, 5, &cfg->stream_replicas, err, err_len);
    if (s == DX_OK)
        s = get_int("CLEAN_MEMORY_MB", 24, 1, 1 << 20, &cfg->clean_memory_mb, err, err_len);
    return s;
}
