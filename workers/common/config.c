#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "natsurl.h"

/*
 * --help lists what config_load() reads by running it with describe_to set:
 * every getter then writes its variable and default there and reads the
 * environment as if unset, so each call is reached (defaults are valid) and
 * the list cannot drift from the code.  A new setting read through the
 * getters is in --help without another edit.
 */
static FILE *describe_to;

/* The environment's value of name, or NULL when describing (see above). */
static const char *lookup(const char *name, const char *fallback)
{
    if (describe_to != NULL) {
        fprintf(describe_to, "  %-22s %s\n", name, fallback[0] ? fallback : "(none)");
        return NULL;
    }
    return getenv(name);
}

static dx_status get_string(const char *name, const char *fallback, char *out, size_t out_len,
                            char *err, size_t err_len)
{
    const char *value = lookup(name, fallback);

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
    char fallback_text[16];
    const char *value;
    char *end = NULL;
    long parsed;

    snprintf(fallback_text, sizeof(fallback_text), "%d", fallback);
    value = lookup(name, fallback_text);

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

typedef struct unit {
    char suffix;
    long long scale;
} unit;

static const unit duration_units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {0, 0}};
static const unit size_units[] = {
    {'K', 1LL << 10}, {'M', 1LL << 20}, {'G', 1LL << 30}, {'T', 1LL << 40}, {0, 0}};

/*
 * An integer with an optional one-letter unit from units (a bare number is
 * in the first unit's scale of 1), within [min, max] once scaled.  what says
 * the form in the error line ("a duration such as 30d"); fallback_text is
 * the default as --help shows it.
 */
static dx_status get_scaled(const char *name, long long fallback, const char *fallback_text,
                            long long min, long long max, const unit *units, const char *what,
                            long long *out, char *err, size_t err_len)
{
    const char *value = lookup(name, fallback_text);
    char *end = NULL;
    long long parsed, scale = 1;

    if (value == NULL || value[0] == '\0') {
        *out = fallback;
        return DX_OK;
    }
    errno = 0;
    parsed = strtoll(value, &end, 10);
    if (errno == 0 && end != value && *end != '\0' && end[1] == '\0') {
        scale = 0;
        for (const unit *u = units; u->suffix != 0; u++)
            if (*end == u->suffix)
                scale = u->scale;
        end += scale != 0;
    }
    if (errno != 0 || end == value || *end != '\0' || value[0] == '-' || parsed > max / scale ||
        parsed * scale < min) {
        snprintf(err, err_len, "%s must be %s", name, what);
        return DX_ERR_INVALID;
    }
    *out = parsed * scale;
    return DX_OK;
}

static dx_status get_bool(const char *name, int fallback, int *out, char *err, size_t err_len)
{
    const char *value = lookup(name, fallback ? "1" : "0");

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

/* The SFTP_* variables; the secrets they name are read at each connection. */
static dx_status load_sftp(config_sftp *sftp, char *err, size_t err_len)
{
    const char *insecure = getenv("SFTP_INSECURE_SKIP_HOST_KEY");
    const char *key = getenv("SFTP_KEY_FILE");
    dx_status s;

    sftp->key_file_set = key != NULL && key[0] != '\0';
    s = get_string("SFTP_KEY_FILE", "/var/openfaas/secrets/sftp-key", sftp->key_file,
                   sizeof(sftp->key_file), err, err_len);
    if (s == DX_OK)
        s = get_string("SFTP_PASSWORD_FILE", "", sftp->password_file, sizeof(sftp->password_file),
                       err, err_len);
    if (s == DX_OK)
        s = get_string("SFTP_KNOWN_HOSTS", "/var/openfaas/secrets/sftp-known-hosts",
                       sftp->known_hosts, sizeof(sftp->known_hosts), err, err_len);
    if (s == DX_OK && insecure != NULL && insecure[0] != '\0' && strcmp(insecure, "0") != 0) {
        /* Only the exact "1": a typo must not turn the host key check off. */
        if (strcmp(insecure, "1") == 0) {
            sftp->insecure = 1;
        } else {
            snprintf(err, err_len, "SFTP_INSECURE_SKIP_HOST_KEY must be 0 or 1");
            s = DX_ERR_INVALID;
        }
    }
    if (s == DX_OK)
        s = get_int("SFTP_TIMEOUT_SECONDS", 10, 1, 3600, &sftp->timeout_s, err, err_len);
    return s;
}

/* True when path is a regular file that starts like a compiled tz zone. */
static int is_tzif(const char *path)
{
    char magic[4];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int ok = 0;

    if (fd < 0)
        return 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read(fd, magic, 4) == 4)
        ok = memcmp(magic, "TZif", 4) == 0;
    close(fd);
    return ok;
}

/* True for a POSIX TZ rule: a 3+ letter (or <quoted>) name, then an offset. */
static int is_posix_rule(const char *tz)
{
    const char *p = tz;

    if (*p == '<') {
        p = strchr(p, '>');
        if (p == NULL)
            return 0;
        p++;
    } else {
        while (isalpha((unsigned char)*p))
            p++;
        if (p - tz < 3)
            return 0;
    }
    if (*p == '+' || *p == '-')
        p++;
    return isdigit((unsigned char)*p);
}

dx_status config_check_tz(const char *tz, char *err, size_t err_len)
{
    const char *dir = getenv("TZDIR");
    char path[1024];

    if (tz == NULL || tz[0] == '\0' || strcmp(tz, "UTC") == 0)
        return DX_OK;
    if (tz[0] == ':')
        tz++;
    if (is_posix_rule(tz))
        return DX_OK;
    if (dir == NULL || dir[0] == '\0')
        dir = "/usr/share/zoneinfo";
    /* glibc would read any file a relative name reaches; only zones count. */
    if (tz[0] == '/')
        snprintf(path, sizeof(path), "%s", tz);
    else if (strstr(tz, "..") == NULL)
        snprintf(path, sizeof(path), "%s/%s", dir, tz);
    else
        path[0] = '\0';
    if (path[0] != '\0' && is_tzif(path))
        return DX_OK;
    snprintf(err, err_len,
             "TZ \"%.64s\" names no zone of the tz database (e.g. Europe/Paris, America/New_York, "
             "UTC)",
             tz);
    return DX_ERR_INVALID;
}

/* Refuses a file variable whose file cannot be opened for reading. */
static dx_status check_readable(const char *name, const char *path, char *err, size_t err_len)
{
    int fd;

    if (path[0] == '\0')
        return DX_OK;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_len, "%s: cannot read %s: %s", name, path, strerror(errno));
        return DX_ERR_INVALID;
    }
    close(fd);
    return DX_OK;
}

/* Refuses a folder variable that names no folder this process can list. */
static dx_status check_directory(const char *name, const char *path, char *err, size_t err_len)
{
    int fd;

    if (path[0] == '\0')
        return DX_OK;
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_len, "%s: cannot open the folder %s: %s", name, path, strerror(errno));
        return DX_ERR_INVALID;
    }
    close(fd);
    return DX_OK;
}

/*
 * The notifier's settings.  The URL files are secrets: only their names are
 * checked here; notify.c reads them (and refuses one that holds no http(s)
 * URL) without ever writing their content anywhere.
 */
static dx_status load_notify(config_notify *n, char *err, size_t err_len)
{
    dx_status s = get_string("NOTIFY_WEBHOOK_URL_FILE", "", n->webhook_url_file,
                             sizeof(n->webhook_url_file), err, err_len);

    if (s == DX_OK)
        s = get_string("NOTIFY_WEBHOOKS_DIR", "", n->webhooks_dir, sizeof(n->webhooks_dir), err,
                       err_len);
    if (s == DX_OK)
        s = get_string("NOTIFY_CA_FILE", "", n->ca_file, sizeof(n->ca_file), err, err_len);
    if (s == DX_OK)
        s = get_string("STATUS_PUBLIC_URL", "", n->public_url, sizeof(n->public_url), err, err_len);
    if (s == DX_OK)
        s = get_int("NOTIFY_TIMEOUT_MS", 5000, 100, 120000, &n->timeout_ms, err, err_len);
    if (s == DX_OK)
        s = check_readable("NOTIFY_WEBHOOK_URL_FILE", n->webhook_url_file, err, err_len);
    if (s == DX_OK)
        s = check_readable("NOTIFY_CA_FILE", n->ca_file, err, err_len);
    if (s == DX_OK)
        s = check_directory("NOTIFY_WEBHOOKS_DIR", n->webhooks_dir, err, err_len);
    if (s == DX_OK && n->public_url[0] != '\0' && strncmp(n->public_url, "http://", 7) != 0 &&
        strncmp(n->public_url, "https://", 8) != 0) {
        snprintf(err, err_len, "STATUS_PUBLIC_URL must start with http:// or https://");
        s = DX_ERR_INVALID;
    }
    return s;
}

static dx_status load_nats(config *cfg, char *err, size_t err_len)
{
    dx_status s = get_string("NATS_URL", "nats://127.0.0.1:4222", cfg->nats_url,
                             sizeof(cfg->nats_url), err, err_len);

    if (s == DX_OK)
        s = natsurl_check(cfg->nats_url, err, err_len);
    if (s == DX_OK)
        natsurl_redact(cfg->nats_url, cfg->nats_url_display, sizeof(cfg->nats_url_display));
    if (s == DX_OK)
        s = get_string("NATS_CREDS_FILE", "", cfg->nats_creds_file, sizeof(cfg->nats_creds_file),
                       err, err_len);
    if (s == DX_OK)
        s = get_string("NATS_TLS_CA_FILE", "", cfg->nats_tls_ca_file, sizeof(cfg->nats_tls_ca_file),
                       err, err_len);
    if (s == DX_OK)
        s = get_string("NATS_TLS_CERT_FILE", "", cfg->nats_tls_cert_file,
                       sizeof(cfg->nats_tls_cert_file), err, err_len);
    if (s == DX_OK)
        s = get_string("NATS_TLS_KEY_FILE", "", cfg->nats_tls_key_file,
                       sizeof(cfg->nats_tls_key_file), err, err_len);
    if (s == DX_OK && (cfg->nats_tls_cert_file[0] == '\0') != (cfg->nats_tls_key_file[0] == '\0')) {
        snprintf(err, err_len, "NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE go together: set both");
        s = DX_ERR_INVALID;
    }
    if (s == DX_OK)
        s = check_readable("NATS_CREDS_FILE", cfg->nats_creds_file, err, err_len);
    if (s == DX_OK)
        s = check_readable("NATS_TLS_CA_FILE", cfg->nats_tls_ca_file, err, err_len);
    if (s == DX_OK)
        s = check_readable("NATS_TLS_CERT_FILE", cfg->nats_tls_cert_file, err, err_len);
    if (s == DX_OK)
        s = check_readable("NATS_TLS_KEY_FILE", cfg->nats_tls_key_file, err, err_len);
    return s;
}

static dx_status check_http_addr(const char *addr, char *err, size_t err_len)
{
    struct in_addr parsed;

    if (inet_pton(AF_INET, addr, &parsed) == 1)
        return DX_OK;
    snprintf(err, err_len, "HTTP_ADDR \"%.64s\" is not an IPv4 address (e.g. 0.0.0.0 or 127.0.0.1)",
             addr);
    return DX_ERR_INVALID;
}

dx_status config_load(config *cfg, char *err, size_t err_len)
{
    char encoding[16];
    long long age = 0, bytes = 0;
    dx_status s;

    memset(cfg, 0, sizeof(*cfg));
    s = config_check_tz(lookup("TZ", "UTC"), err, err_len);
    if (s == DX_OK)
        s = load_nats(cfg, err, err_len);
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
        s = check_http_addr(cfg->http_addr, err, err_len);
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
        s = get_int("RECHECK_SECONDS", 300, 0, 86400, &cfg->recheck_seconds, err, err_len);
    if (s == DX_OK)
        s = get_int("RECHECK_MAX", 12, 0, 1000, &cfg->recheck_max, err, err_len);
    if (s == DX_OK)
        s = get_int("MAX_DELIVER", 5, 1, 100, &cfg->max_deliver, err, err_len);
    if (s == DX_OK)
        s = get_int("MAX_IN_FLIGHT", 16, 1, 256, &cfg->max_in_flight, err, err_len);
    if (s == DX_OK)
        s = get_int("ACK_WAIT", 60, 1, 86400, &cfg->ack_wait, err, err_len);
    if (s == DX_OK)
        s = get_int("MAX_EVENT_BYTES", 65536, 256, 8 << 20, &cfg->max_event_bytes, err, err_len);
    if (s == DX_OK)
        s = get_int("SHUTDOWN_GRACE", 20, 0, 3600, &cfg->shutdown_grace, err, err_len);
    if (s == DX_OK)
        s = get_int("STREAM_REPLICAS", 1, 1, 5, &cfg->stream_replicas, err, err_len);
    if (s == DX_OK)
        s = load_sftp(&cfg->sftp, err, err_len);
    /* At least an hour: the stream's 10-minute duplicate window must fit. */
    if (s == DX_OK)
        s = get_scaled("STREAM_MAX_AGE", 30LL * 86400, "30d", 3600, 3650LL * 86400, duration_units,
                       "a duration from 1h to 3650d (seconds, or a number with s, m, h or d)", &age,
                       err, err_len);
    if (s == DX_OK)
        s = get_scaled("STREAM_MAX_BYTES", -1, "", 1LL << 20, 1LL << 50, size_units,
                       "a size of at least 1M (bytes, or a number with K, M, G or T)", &bytes, err,
                       err_len);
    cfg->stream_max_age = age;
    cfg->stream_max_bytes = bytes;
    if (s == DX_OK)
        s = get_bool("CSV_FORMULA_GUARD", 1, &cfg->formula_guard, err, err_len);
    if (s == DX_OK)
        s = get_int("CLEAN_MEMORY_MB", 24, 1, 1 << 20, &cfg->clean_memory_mb, err, err_len);
    if (s == DX_OK)
        s = load_notify(&cfg->notify, err, err_len);
    if (s == DX_OK)
        s = get_string("STATUS_AUTH_FILE", "", cfg->status_auth_file, sizeof(cfg->status_auth_file),
                       err, err_len);
    if (s == DX_OK)
        s = check_readable("STATUS_AUTH_FILE", cfg->status_auth_file, err, err_len);
    return s;
}

void config_print_help(FILE *out)
{
    config scratch;
    char err[256];

    fputs("Environment (variable, default; unset or empty means the default):\n", out);
    describe_to = out;
    if (config_load(&scratch, err, sizeof(err)) != DX_OK)
        fprintf(out, "  (a default is invalid: %s)\n", err);
    describe_to = NULL;
}
