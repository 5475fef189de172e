/*
 * file-transformer: the command.  `file-transformer clean IN OUT REJECTS`
 * cleans one local file offline; without a command it becomes the service
 * (service.c) by exec'ing file-transformer-service from its own folder.
 * This program links the engine, libcsv and cJSON alone, so that a
 * one-shot clean is ready within a few milliseconds of exec: the service's
 * libraries cost about 20 ms to load, mostly in the dynamic linker
 * (docs/development.md, "Start-up").
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clean_local.h"
#include "config.h"
#include "worker.h"

static const char usage[] =
    "usage: file-transformer [--help | --version]\n"
    "       file-transformer clean IN OUT REJECTS\n"
    "\n"
    "Without a command, runs as a service: serves HTTP on PORT (GET /_/health,\n"
    "GET /_/ready, GET /metrics, POST / = one order-date event) and, unless\n"
    "SUBSCRIBE=0, consumes orders.order-date from JetStream.\n"
    "\n"
    "clean cleans one local file offline and prints its counts as one JSON object;\n"
    "exit 0 when the file was processed, 1 when it is unusable, 2 for a bad\n"
    "setting (CSV_FORMULA_GUARD=0 writes formula-like cells without the leading ').\n"
    "Configuration is read from the environment: see docs/configuration.md.\n";

static int run_clean(int argc, char **argv)
{
    clean_counts counts = {0};
    config cfg;
    char reason[512] = "";
    cJSON *json;
    char *text;
    dx_status s;

    if (argc != 5) {
        fprintf(stderr, "file-transformer: clean needs IN OUT REJECTS\n%s", usage);
        return 2;
    }
    /* The worker's settings (CSV_FORMULA_GUARD, CLEAN_MEMORY_MB) apply offline too. */
    if (config_load(&cfg, reason, sizeof(reason)) != DX_OK) {
        fprintf(stderr, "file-transformer: %s\n", reason);
        return 2;
    }
    s = clean_local_file(argv[2], argv[3], argv[4], cfg.formula_guard,
                         (size_t)cfg.clean_memory_mb << 20, &counts, reason, sizeof(reason));
    if (s != DX_OK) {
        fprintf(stderr, "file-transformer: %s: %s\n", argv[2], reason[0] ? reason : status_text(s));
        return 1;
    }
    json = cJSON_CreateObject();
    cJSON_AddNumberToObject(json, "rows_in", (double)counts.rows_in);
    cJSON_AddNumberToObject(json, "rows_out", (double)counts.rows_out);
    cJSON_AddNumberToObject(json, "rows_rejected", (double)counts.rows_rejected);
    cJSON_AddNumberToObject(json, "rows_duplicate", (double)counts.rows_duplicate);
    cJSON_AddNumberToObject(json, "bytes_in", (double)counts.bytes_in);
    cJSON_AddNumberToObject(json, "bytes_out", (double)counts.bytes_out);
    cJSON_AddNumberToObject(json, "cells_neutralised", (double)counts.cells_neutralised);
    cJSON_AddBoolToObject(json, "counts_add_up",
                          counts.rows_in ==
                              counts.rows_out + counts.rows_rejected + counts.rows_duplicate);
    text = cJSON_PrintUnformatted(json);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(json);
    return 0;
}

/*
 * Replaces this process with file-transformer-service from the folder of
 * this executable (the build folder, or the image's /usr/local/bin), with
 * the same arguments and environment, so that the service keeps the PID a
 * container runtime or a supervisor knows.  Returns only on failure.
 */
static int run_service(char **argv)
{
    char self[PATH_MAX], service[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;

    if (n <= 0) {
        fprintf(stderr, "file-transformer: cannot find its own executable: %s\n", strerror(errno));
        return 1;
    }
    self[n] = '\0';
    slash = strrchr(self, '/');
    if (slash != NULL)
        *slash = '\0';
    snprintf(service, sizeof(service), "%s/file-transformer-service", self);
    execv(service, argv);
    fprintf(stderr, "file-transformer: cannot run %s: %s\n", service, strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        worker_print_help(usage);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        worker_print_version("file-transformer");
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "clean") == 0)
        return run_clean(argc, argv);
    if (argc >= 2) {
        fprintf(stderr, "file-transformer: unknown argument %s (see --help)\n", argv[1]);
        return 2;
    }
    return run_service(argv);
}
