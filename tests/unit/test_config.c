#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "testing.h"
#include "util.h"

static const char *vars[] = {"NATS_URL",
                             "NATS_TLS_CA_FILE",
                             "NATS_TLS_CERT_FILE",
                             "NATS_TLS_KEY_FILE",
                             "INBOX_URL",
                             "DEPOT_URL",
                             "PORT",
                             "LOG_LEVEL",
                             "CLIENT_PATTERN",
                             "EVENT_ENCODING",
                             "SUBSCRIBE",
                             "MAX_DELIVER",
                             "MAX_IN_FLIGHT",
                             "HTTP_ADDR",
                             "DROP_MIN_AGE",
                             "SCHEDULE",
                             "SFTP_KEY_FILE",
                             "SFTP_PASSWORD_FILE",
                             "SFTP_KNOWN_HOSTS",
                             "SFTP_INSECURE_SKIP_HOST_KEY",
                             "SFTP_TIMEOUT_SECONDS",
                             "TZ",
                             "NATS_CREDS_FILE",
                             "NATS_TLS_CA_FILE",
                             "NATS_TLS_CERT_FILE",
                             "NATS_TLS_KEY_FILE",
                             "STREAM_MAX_AGE",
                             "STREAM_MAX_BYTES",
                             "CSV_FORMULA_GUARD",
                             "CLEAN_MEMORY_MB"};

static void clear(void)
{
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

static dx_status load_with(const char *name, const char *value, config *cfg, char *err)
{
    clear();
    setenv(name, value, 1);
    return config_load(cfg, err, 256);
}

/* --help lists every setting config_load() reads, with its default, and never a
 * current value. */
static void test_help(void)
{
    static const char *all[] = {
        "NATS_URL",    "NATS_CREDS_FILE",  "INBOX_URL",       "DEPOT_URL",       "HTTP_ADDR",
        "PORT",        "LOG_LEVEL",        "CLIENT_PATTERN",  "EVENT_ENCODING",  "SUBSCRIBE",
        "SCHEDULE",    "CATCHUP_MAX_DAYS", "DROP_MIN_AGE",    "RECHECK_SECONDS", "RECHECK_MAX",
        "MAX_DELIVER", "ACK_WAIT",         "MAX_EVENT_BYTES", "SHUTDOWN_GRACE",  "STREAM_REPLICAS"};
    char *text = NULL, err[256], creds[] = "/tmp/dx-do-not-print-XXXXXX";
    size_t len = 0;
    config cfg;
    FILE *out;
    int fd;

    clear();
    fd = mkstemp(creds);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    setenv("NATS_CREDS_FILE", creds, 1);
    out = open_memstream(&text, &len);
    CHECK(out != NULL);
    if (out == NULL)
        return;
    config_print_help(out);
    fclose(out);
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        char line[64];

        snprintf(line, sizeof(line), "\n  %s ", all[i]);
        testing_checks++;
        if (strstr(text, line) == NULL)
            testing_fail(__FILE__, __LINE__, "--help does not list %s", all[i]);
    }
    CHECK(strstr(text, "\n  PORT                   8080\n") != NULL);
    CHECK(strstr(text, "\n  NATS_URL               nats://127.0.0.1:4222\n") != NULL);
    CHECK(strstr(text, "\n  NATS_CREDS_FILE        (none)\n") != NULL);
    CHECK(strstr(text, "do-not-print") == NULL);
    /* Describing reads no value: loading afterwards still sees it. */
    CHECK_EQ_INT(config_load(&cfg, err, sizeof(err)), DX_OK);
    CHECK_EQ_STR(cfg.nats_creds_file, creds);
    free(text);
    unsetenv("NATS_CREDS_FILE");
    unlink(creds);
}

int main(void)
{
    config cfg;
    char err[256];

    clear();
    CHECK_EQ_INT(config_load(&cfg, err, sizeof(err)), DX_OK);
    CHECK_EQ_STR(cfg.nats_url, "nats://127.0.0.1:4222");
    CHECK_EQ_INT(cfg.port, 8080);
    CHECK_EQ_STR(cfg.client_pattern, "^US[0-9]+$");
    CHECK_EQ_INT(cfg.emit_json, 0);
    CHECK_EQ_INT(cfg.subscribe, 1);
    CHECK_EQ_INT(cfg.drop_min_age, 30);
    CHECK_EQ_INT(cfg.max_in_flight, 16);
    CHECK_EQ_INT(cfg.catchup_max_days, 7);
    CHECK_EQ_STR(cfg.http_addr, "127.0.0.1");
    /* The SFTP_* settings are read here too, with their defaults. */
    CHECK_EQ_STR(cfg.sftp.key_file, "/var/openfaas/secrets/sftp-key");
    CHECK_EQ_INT(cfg.sftp.key_file_set, 0);
    CHECK_EQ_STR(cfg.sftp.password_file, "");
    CHECK_EQ_STR(cfg.sftp.known_hosts, "/var/openfaas/secrets/sftp-known-hosts");
    CHECK_EQ_INT(cfg.sftp.insecure, 0);
    CHECK_EQ_INT(cfg.sftp.timeout_s, 10);
    CHECK_EQ_INT(load_with("SFTP_KEY_FILE", "/run/key", &cfg, err), DX_OK);
    CHECK_EQ_STR(cfg.sftp.key_file, "/run/key");
    CHECK_EQ_INT(cfg.sftp.key_file_set, 1);
    CHECK_EQ_INT(load_with("SFTP_INSECURE_SKIP_HOST_KEY", "1", &cfg, err), DX_OK);
    CHECK_EQ_INT(cfg.sftp.insecure, 1);
    CHECK_EQ_INT(load_with("SFTP_TIMEOUT_SECONDS", "3", &cfg, err), DX_OK);
    CHECK_EQ_INT(cfg.sftp.timeout_s, 3);
    clear();
    CHECK_EQ_INT(cfg.formula_guard, 1);
    CHECK_EQ_INT(cfg.clean_memory_mb, 24);
    CHECK_EQ_INT(load_with("CLEAN_MEMORY_MB", "1", &cfg, err), DX_OK);
    CHECK_EQ_INT(cfg.clean_memory_mb, 1);

    CHECK_EQ_INT(load_with("EVENT_ENCODING", "json", &cfg, err), DX_OK);
    CHECK_EQ_INT(cfg.emit_json, 1);
    CHECK_EQ_INT(load_with("SUBSCRIBE", "0", &cfg, err), DX_OK);
    CHECK_EQ_INT(cfg.subscribe, 0);
    CHECK_EQ_INT(load_with("CSV_FORMULA_GUARD", "0", &cfg, err), DX_OK);
    CHECK_EQ_INT(cfg.formula_guard, 0);
    CHECK_EQ_INT(load_with("INBOX_URL", "sftp://u@h:2222/srv", &cfg, err), DX_OK);

    /* Retention: 30 days and no size limit by default; units. */
    CHECK_EQ_INT(cfg.stream_max_age, 30 * 86400);
    CHECK_EQ_INT(cfg.stream_max_bytes, -1);
    CHECK_EQ_INT(load_with("STREAM_MAX_AGE", "7d", &cfg, err), DX_OK);
    CHECK_EQ_INT(cfg.stream_max_age, 7 * 86400);
    CHECK_EQ_INT(load_with("STREAM_MAX_AGE", "36h", &cfg, err), DX_OK);
    CHECK_EQ_INT(cfg.stream_max_age, 36 * 3600);
    CHECK_EQ_INT(load_with("STREAM_MAX_AGE", "90m", &cfg, err), DX_OK);
    CHECK_EQ_INT(cfg.stream_max_age, 5400);
    CHECK_EQ_INT(load_with("STREAM_MAX_AGE", "7200", &cfg, err), DX_OK);
    CHECK_EQ_INT(cfg.stream_max_age, 7200);
    CHECK_EQ_INT(load_with("STREAM_MAX_BYTES", "512M", &cfg, err), DX_OK);
    CHECK_EQ_INT(cfg.stream_max_bytes, 512LL << 20);
    CHECK_EQ_INT(load_with("STREAM_MAX_BYTES", "2G", &cfg, err), DX_OK);
    CHECK_EQ_INT(cfg.stream_max_bytes, 2LL << 30);
    CHECK_EQ_INT(load_with("STREAM_MAX_BYTES", "1048576", &cfg, err), DX_OK);
    CHECK_EQ_INT(cfg.stream_max_bytes, 1048576);

    static const struct {
        const char *name, *value;
    } bad[] = {
        {"PORT", "80a"},
        {"PORT", "70000"},
        {"PORT", "-1"},
        {"LOG_LEVEL", "loud"},
        {"EVENT_ENCODING", "xml"},
        {"SUBSCRIBE", "maybe"},
        {"MAX_DELIVER", "0"},
        {"MAX_IN_FLIGHT", "0"},
        {"MAX_IN_FLIGHT", "257"},
        {"INBOX_URL", "/abs"},
        {"DEPOT_URL", "http://x/"},
        {"DROP_MIN_AGE", "1m"},
        {"SFTP_TIMEOUT_SECONDS", "soon"},
        {"SFTP_TIMEOUT_SECONDS", "0"},
        {"SFTP_INSECURE_SKIP_HOST_KEY", "yes"},
        {"TZ", "Europe/Pari"},
        {"TZ", "Paris"},
        {"TZ", "Europe"},
        {"TZ", "../../../etc/passwd"},
        {"TZ", "/etc/passwd"},
        {"NATS_URL", "garbage"},
        {"NATS_URL", "http://127.0.0.1:4222"},
        {"NATS_CREDS_FILE", "/nonexistent/nats.creds"},
        {"NATS_TLS_CA_FILE", "/nonexistent/ca.pem"},
        {"NATS_TLS_CERT_FILE", "/nonexistent/cert.pem"},
        {"HTTP_ADDR", "localhost"},
        {"HTTP_ADDR", "256.0.0.1"},
        {"HTTP_ADDR", "::1"},
        {"STREAM_MAX_AGE", "30x"},
        {"STREAM_MAX_AGE", "-1d"},
        {"STREAM_MAX_AGE", "59m"},
        {"STREAM_MAX_AGE", "d"},
        {"STREAM_MAX_AGE", "1dd"},
        {"STREAM_MAX_AGE", "9999999999d"},
        {"STREAM_MAX_BYTES", "1k"},
        {"STREAM_MAX_BYTES", "1000"},
        {"STREAM_MAX_BYTES", "0"},
        {"STREAM_MAX_BYTES", "-5M"},
        {"STREAM_MAX_BYTES", "99999999T"},
        {"CSV_FORMULA_GUARD", "off"},
        {"CLEAN_MEMORY_MB", "0"},
        {"CLEAN_MEMORY_MB", "24MB"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_EQ_INT(load_with(bad[i].name, bad[i].value, &cfg, err), DX_ERR_INVALID);
        /* The one-line reason names the variable. */
        if (strstr(err, bad[i].name) == NULL)
            testing_fail(__FILE__, __LINE__, "%s=%s: \"%s\" does not name it", bad[i].name,
                         bad[i].value, err);
    }
    /* Zones of the tz database, UTC and POSIX rules are taken. */
    static const char *zones[] = {"Europe/Paris",
                                  ":Europe/Paris",
                                  "UTC",
                                  "America/New_York",
                                  "CET-1CEST,M3.5.0,M10.5.0/3",
                                  "<+0330>-3:30",
                                  ""};
    for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
        err[0] = '\0';
        if (config_check_tz(zones[i], err, sizeof(err)) != DX_OK)
            testing_fail(__FILE__, __LINE__, "TZ=%s refused: %s", zones[i], err);
        testing_checks++;
    }
    /* The credentials in NATS_URL are kept for nats.c, never for display. */
    CHECK_EQ_INT(load_with("NATS_URL", "nats://alice:TopSecret9@127.0.0.1:4222", &cfg, err), DX_OK);
    CHECK_EQ_STR(cfg.nats_url, "nats://alice:TopSecret9@127.0.0.1:4222");
    CHECK_EQ_STR(cfg.nats_url_display, "nats://alice:***@127.0.0.1:4222");
    /* A client certificate without its key, and the other way round. */
    CHECK_EQ_INT(load_with("NATS_TLS_CERT_FILE", "meson.build", &cfg, err), DX_ERR_INVALID);
    CHECK(strstr(err, "NATS_TLS_KEY_FILE") != NULL);
    CHECK_EQ_INT(load_with("NATS_TLS_KEY_FILE", "meson.build", &cfg, err), DX_ERR_INVALID);
    CHECK(strstr(err, "NATS_TLS_CERT_FILE") != NULL);
    CHECK_EQ_INT(load_with("NATS_TLS_CA_FILE", "meson.build", &cfg, err), DX_OK);
    CHECK_EQ_STR(cfg.nats_tls_ca_file, "meson.build");

    test_help();
    CHECK(util_date_valid("2024-02-29"));
    CHECK(!util_date_valid("2026-02-29"));
    CHECK(!util_date_valid("2026-04-31"));
    CHECK(!util_date_valid("2026-4-3"));
    CHECK(util_trace_id_valid("0af7651916cd43dd8448eb211c80319c"));
    CHECK(!util_trace_id_valid("00000000000000000000000000000000"));
    CHECK(!util_trace_id_valid("0AF7651916CD43DD8448EB211C80319C"));
    return testing_finish("test_config");
}
