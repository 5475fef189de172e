#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "testing.h"
#include "util.h"

static const char *vars[] = {"NATS_URL",       "INBOX_URL",      "DEPOT_URL",      "PORT",
                             "LOG_LEVEL",      "CLIENT_PATTERN", "EVENT_ENCODING", "SUBSCRIBE",
                             "MAX_DELIVER",    "HTTP_ADDR",      "DROP_MIN_AGE",   "SCHEDULE",
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
    CHECK_EQ_INT(cfg.catchup_max_days, 7);
    CHECK_EQ_STR(cfg.http_addr, "127.0.0.1");
    CHECK_EQ_INT(cfg.clean_memory_mb, 24);
    CHECK_EQ_INT(load_with("CLEAN_MEMORY_MB", "1", &cfg, err), DX_OK);
    CHECK_EQ_INT(cfg.clean_memory_mb, 1);

    CHECK_EQ_INT(load_with("EVENT_ENCODING", "json", &cfg, err), DX_OK);
    CHECK_EQ_INT(cfg.emit_json, 1);
    CHECK_EQ_INT(load_with("SUBSCRIBE", "0", &cfg, err), DX_OK);
    CHECK_EQ_INT(cfg.subscribe, 0);
    CHECK_EQ_INT(load_with("INBOX_URL", "sftp://u@h:2222/srv", &cfg, err), DX_OK);

    static const struct {
        const char *name, *value;
    } bad[] = {
        {"PORT", "80a"},        {"PORT", "70000"},         {"PORT", "-1"},
        {"LOG_LEVEL", "loud"},  {"EVENT_ENCODING", "xml"}, {"SUBSCRIBE", "maybe"},
        {"MAX_DELIVER", "0"},   {"INBOX_URL", "/abs"},     {"DEPOT_URL", "http://x/"},
        {"DROP_MIN_AGE", "1m"}, {"CLEAN_MEMORY_MB", "0"},  {"CLEAN_MEMORY_MB", "24MB"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_EQ_INT(load_with(bad[i].name, bad[i].value, &cfg, err), DX_ERR_INVALID);
        /* The one-line reason names the variable. */
        if (strstr(err, bad[i].name) == NULL)
            testing_fail(__FILE__, __LINE__, "%s=%s: \"%s\" does not name it", bad[i].name,
                         bad[i].value, err);
    }
    CHECK(util_date_valid("2024-02-29"));
    CHECK(!util_date_valid("2026-02-29"));
    CHECK(!util_date_valid("2026-04-31"));
    CHECK(!util_date_valid("2026-4-3"));
    CHECK(util_trace_id_valid("0af7651916cd43dd8448eb211c80319c"));
    CHECK(!util_trace_id_valid("00000000000000000000000000000000"));
    CHECK(!util_trace_id_valid("0AF7651916CD43DD8448EB211C80319C"));
    return testing_finish("test_config");
}
