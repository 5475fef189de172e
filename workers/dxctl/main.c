/*
 * dxctl: the operator's command for the DataRetailX pipeline: client
 * profiles, runs by hand and replays, the event stream, the status and the
 * schedule, and a dry run of the cleaner.  Same environment variables as the
 * workers; human tables by default, --json for scripts.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clientid.h"
#include "dxctl.h"
#include "log.h"
#include "profile_store.h"

static const char usage[] =
    "usage: dxctl [--json] COMMAND [ARGS]   (dxctl COMMAND --help for each)\n"
    "\n"
    "  client list | get ID | set ID FILE | set ID KEY=VALUE... | history ID\n"
    "         | import FILE | export          client profiles (bucket \"clients\")\n"
    "  trigger --client ID [--date D] [--wait[=SECONDS]]   publish an order-date event\n"
    "  replay --client ID --date D [--source NAME] [--wait=SECONDS]\n"
    "                                        put a day's archived or failed drops back\n"
    "  events [--follow] [--subject S] [--client ID] [--since DURATION]\n"
    "                                        the stream's events, one JSON line each\n"
    "  status [--client ID] [--date D]       status-checker's /status (STATUS_URL)\n"
    "  schedule                              last scheduled run and the next ones (TZ)\n"
    "  validate FILE [--client ID]           dry run of the cleaner, writes nothing\n"
    "\n"
    "Environment: NATS_URL, NATS_CREDS_FILE, INBOX_URL, SCHEDULE, TZ and the other\n"
    "workers' variables; STATUS_URL (default http://127.0.0.1:8080).\n"
    "Exit codes: 0 success; 1 the outcome is a failure (run failed, invalid\n"
    "profile or file, not found); 2 bad arguments or settings; 3 NATS, the\n"
    "status page or the storage unreachable, or a wait timed out.\n";

void dxctl_error(const char *fmt, ...)
{
    va_list ap;

    fputs("dxctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void dxctl_print_json(cJSON *o, int pretty)
{
    char *text = pretty ? cJSON_Print(o) : cJSON_PrintUnformatted(o);

    if (text != NULL)
        printf("%s\n", text);
    free(text);
    cJSON_Delete(o);
}

int dxctl_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

char *dxctl_read_file(const char *path, size_t max, size_t *len)
{
    FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t used = 0, cap = 0;

    if (fp == NULL)
        return NULL;
    for (;;) {
        size_t got;

        if (used + 4096 + 1 > cap) {
            char *grown;

            cap = cap ? cap * 2 : 8192;
            grown = realloc(buf, cap);
            if (grown == NULL)
                break;
            buf = grown;
        }
        got = fread(buf + used, 1, cap - used - 1, fp);
        used += got;
        if (used > max) {
            errno = EFBIG;
            break;
        }
        if (got == 0) {
            if (ferror(fp))
                break;
            if (fp != stdin)
                fclose(fp);
            buf[used] = '\0';
            *len = used;
            return buf;
        }
    }
    if (fp != stdin)
        fclose(fp);
    free(buf);
    return NULL;
}

long long dxctl_duration(const char *s)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || v < 0)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0)
        return v;
    if (strcmp(end, "m") == 0)
        return v * 60;
    if (strcmp(end, "h") == 0)
        return v * 3600;
    if (strcmp(end, "d") == 0)
        return v * 86400;
    return -1;
}

int dxctl_check_client(dxctl *d, const char *id)
{
    clientid_rule *rule = NULL;
    char err[256];
    int ok;

    if (clientid_rule_create(&rule, d->cfg.client_pattern, err, sizeof(err)) != DX_OK) {
        dxctl_error("CLIENT_PATTERN: %s", err);
        return DXCTL_USAGE;
    }
    ok = clientid_valid(rule, id);
    clientid_rule_destroy(rule);
    if (!ok)
        dxctl_error("client id %s refused: it does not match CLIENT_PATTERN", id);
    return ok ? DXCTL_OK : DXCTL_USAGE;
}

int dxctl_bus(dxctl *d)
{
    char err[512];

    if (d->bus != NULL)
        return DXCTL_OK;
    if (bus_connect(&d->bus, &d->cfg, "dxctl", err, sizeof(err)) != DX_OK) {
        dxctl_error("cannot connect to NATS: %s", err);
        return DXCTL_UNAVAILABLE;
    }
    return DXCTL_OK;
}

int dxctl_profiles(dxctl *d)
{
    char err[512];
    int rc = dxctl_bus(d);

    if (rc != DXCTL_OK || d->store != NULL)
        return rc;
    if (profile_store_open(&d->store, d->bus, d->cfg.stream_replicas, err, sizeof(err)) != DX_OK) {
        dxctl_error("%s", err);
        return DXCTL_UNAVAILABLE;
    }
    return DXCTL_OK;
}

static const struct {
    const char *name;
    dxctl_command run;
} commands[] = {
    {"client", cmd_client},     {"trigger", cmd_trigger}, {"replay", cmd_replay},
    {"events", cmd_events},     {"status", cmd_status},   {"schedule", cmd_schedule},
    {"validate", cmd_validate},
};

int main(int argc, char **argv)
{
    dxctl d = {0};
    char err[512];
    int first = 1, rc = DXCTL_USAGE;

    while (first < argc && argv[first][0] == '-') {
        if (strcmp(argv[first], "--json") == 0) {
            d.json = 1;
        } else if (dxctl_is_help(argv[first])) {
            fputs(usage, stdout);
            return DXCTL_OK;
        } else {
            dxctl_error("unknown option %s (see dxctl --help)", argv[first]);
            return DXCTL_USAGE;
        }
        first++;
    }
    if (first >= argc) {
        fputs(usage, stderr);
        return DXCTL_USAGE;
    }
    if (config_load(&d.cfg, err, sizeof(err)) != DX_OK) {
        dxctl_error("%s", err);
        return DXCTL_USAGE;
    }
    /* The common library logs JSON lines on stdout, like the workers: only
     * errors, unless LOG_LEVEL asks for more, so that they do not mix with
     * the command's own output. */
    log_init("dxctl");
    log_set_level(getenv("LOG_LEVEL") != NULL ? d.cfg.log_level : "error");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[first], commands[i].name) == 0) {
            rc = commands[i].run(&d, argc - first, argv + first);
            goto done;
        }
    }
    dxctl_error("unknown command %s (see dxctl --help)", argv[first]);
done:
    kv_destroy(d.store);
    bus_destroy(d.bus);
    return rc;
}
