/*
 * sftp_storage_check: drives one storage object through the storage
 * interface, for test_sftp_storage.py.
 *
 *   sftp_storage_check URL                  commands from stdin, one per line
 *   sftp_storage_check URL COMMAND ARGS...  one command
 *
 * Commands (a path "-" means the root):
 *   ping | list DIR | stat PATH | mkdirs DIR | remove PATH | rename FROM TO
 *   get PATH [PAUSE_AT]        stream the file, print its size and SHA-256
 *   put LOCAL PATH [PAUSE_AT]  stream a local file in, then commit
 *   abort LOCAL PATH           stream a local file in, then abort
 *   text PATH TEXT             write TEXT atomically
 *
 * With PAUSE_AT, once that many bytes have moved the program prints
 * {"event": "paused"} and waits for a line on stdin before going on, so the
 * test can stop the server in the middle of a transfer.
 *
 * Each command prints one JSON line with "cmd", "status" (status_text) and
 * "error" (storage_last_error), plus what it measured.  Log lines of the
 * library go to stdout too; they have no "cmd" member.  Exit code: 0 when
 * the last command succeeded, 1 otherwise, 2 on bad usage.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "storage.h"
#include "util.h"

#define IO_BUF   (64 * 1024)
#define MAX_ARGS 8

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *rel(const char *arg)
{
    return strcmp(arg, "-") == 0 ? "" : arg;
}

static void pause_here(void)
{
    char line[64];

    printf("{\"event\": \"paused\"}\n");
    fflush(stdout);
    if (fgets(line, sizeof(line), stdin) == NULL)
        return;
}

/*
 * The peak resident set of this program (VmHWM).  getrusage()'s ru_maxrss
 * would do, except that Linux carries it over execve(): it would report the
 * test driver's own size at fork time if that were larger.
 */
static long peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

static void report(cJSON *out, storage *st, const char *cmd, dx_status s)
{
    struct rusage ru;
    char *line;

    getrusage(RUSAGE_SELF, &ru);
    cJSON_AddStringToObject(out, "cmd", cmd);
    cJSON_AddStringToObject(out, "status", status_text(s));
    cJSON_AddStringToObject(out, "error", s == DX_OK ? "" : storage_last_error(st));
    cJSON_AddNumberToObject(out, "maxrss_kb", (double)ru.ru_maxrss);
    cJSON_AddNumberToObject(out, "peak_rss_kb", (double)peak_rss_kb());
    line = cJSON_PrintUnformatted(out);
    if (line != NULL)
        printf("%s\n", line);
    fflush(stdout);
    free(line);
    cJSON_Delete(out);
}

static const char *kind_name(storage_kind kind)
{
    return kind == STORAGE_FILE ? "file" : kind == STORAGE_DIR ? "dir" : "other";
}

static dx_status cmd_get(storage *st, cJSON *out, const char *path, long long pause_at)
{
    storage_reader *rd = NULL;
    util_sha256 *h = util_sha256_create();
    static unsigned char buf[IO_BUF];
    unsigned long long total = 0;
    double start = now_s();
    char hex[65];
    dx_status s = storage_reader_open(st, path, &rd);

    while (s == DX_OK) {
        size_t got = 0;

        s = storage_read(rd, buf, sizeof(buf), &got);
        if (s != DX_OK || got == 0)
            break;
        util_sha256_update(h, buf, got);
        total += got;
        if (pause_at >= 0 && total >= (unsigned long long)pause_at) {
            pause_here();
            pause_at = -1;
        }
    }
    storage_reader_close(rd);
    util_sha256_hex(h, hex);
    util_sha256_destroy(h);
    cJSON_AddNumberToObject(out, "bytes", (double)total);
    cJSON_AddNumberToObject(out, "seconds", now_s() - start);
    if (s == DX_OK)
        cJSON_AddStringToObject(out, "sha256", hex);
    return s;
}

static dx_status cmd_put(storage *st, cJSON *out, const char *local, const char *path,
                         long long pause_at, int commit)
{
    storage_writer *wr = NULL;
    static unsigned char buf[IO_BUF];
    unsigned long long total = 0;
    double start = now_s();
    FILE *f = fopen(local, "rb");
    dx_status s;

    if (f == NULL) {
        storage_set_error(st, "cannot open local file %s", local);
        return DX_ERR_INVALID;
    }
    s = storage_writer_open(st, path, &wr);
    while (s == DX_OK) {
        size_t got = fread(buf, 1, sizeof(buf), f);

        if (got == 0)
            break;
        s = storage_write(wr, buf, got);
        total += got;
        if (s == DX_OK && pause_at >= 0 && total >= (unsigned long long)pause_at) {
            pause_here();
            pause_at = -1;
        }
    }
    fclose(f);
    if (wr != NULL) {
        if (s == DX_OK && commit) {
            s = storage_writer_commit(wr);
        } else {
            storage_writer_abort(wr);
        }
    }
    cJSON_AddNumberToObject(out, "bytes", (double)total);
    cJSON_AddNumberToObject(out, "seconds", now_s() - start);
    return s;
}

static dx_status run(storage *st, int argc, char **argv)
{
    const char *cmd = argv[0];
    cJSON *out = cJSON_CreateObject();
    dx_status s = DX_ERR_INVALID;

    if (strcmp(cmd, "ping") == 0) {
        s = storage_ping(st);
    } else if (strcmp(cmd, "list") == 0 && argc == 2) {
        storage_entry *entries = NULL;
        size_t count = 0;
        cJSON *arr = cJSON_AddArrayToObject(out, "entries");

        s = storage_list(st, rel(argv[1]), &entries, &count);
        for (size_t i = 0; s == DX_OK && i < count; i++) {
            cJSON *e = cJSON_CreateObject();

            cJSON_AddStringToObject(e, "name", entries[i].name);
            cJSON_AddStringToObject(e, "kind", kind_name(entries[i].kind));
            cJSON_AddNumberToObject(e, "size", (double)entries[i].size);
            cJSON_AddNumberToObject(e, "mtime", (double)entries[i].mtime);
            cJSON_AddItemToArray(arr, e);
        }
        storage_entries_free(entries, count);
    } else if (strcmp(cmd, "stat") == 0 && argc == 2) {
        storage_entry e = {0};

        s = storage_stat(st, rel(argv[1]), &e);
        if (s == DX_OK) {
            cJSON_AddStringToObject(out, "kind", kind_name(e.kind));
            cJSON_AddNumberToObject(out, "size", (double)e.size);
            cJSON_AddNumberToObject(out, "mtime", (double)e.mtime);
        }
    } else if (strcmp(cmd, "mkdirs") == 0 && argc == 2) {
        s = storage_mkdirs(st, rel(argv[1]));
    } else if (strcmp(cmd, "remove") == 0 && argc == 2) {
        s = storage_remove(st, argv[1]);
    } else if (strcmp(cmd, "rename") == 0 && argc == 3) {
        s = storage_rename(st, argv[1], argv[2]);
    } else if (strcmp(cmd, "get") == 0 && (argc == 2 || argc == 3)) {
        s = cmd_get(st, out, argv[1], argc == 3 ? atoll(argv[2]) : -1);
    } else if (strcmp(cmd, "put") == 0 && (argc == 3 || argc == 4)) {
        s = cmd_put(st, out, argv[1], argv[2], argc == 4 ? atoll(argv[3]) : -1, 1);
    } else if (strcmp(cmd, "abort") == 0 && argc == 3) {
        s = cmd_put(st, out, argv[1], argv[2], -1, 0);
    } else if (strcmp(cmd, "text") == 0 && argc == 3) {
        storage_writer *wr = NULL;

        s = storage_writer_open(st, argv[1], &wr);
        if (s == DX_OK)
            s = storage_write(wr, argv[2], strlen(argv[2]));
        if (s == DX_OK)
            s = storage_writer_commit(wr);
        else
            storage_writer_abort(wr);
    } else {
        storage_set_error(st, "unknown command or wrong arguments");
    }
    report(out, st, cmd, s);
    return s;
}

int main(int argc, char **argv)
{
    storage *st = NULL;
    config cfg;
    char err[256];
    char line[4096];
    dx_status s;

    if (argc < 2) {
        fprintf(stderr, "usage: sftp_storage_check URL [COMMAND ARGS...]\n");
        return 2;
    }
    log_init("sftp-check");
    /* The SFTP_* settings as the workers read them. */
    s = config_load(&cfg, err, sizeof(err));
    if (s == DX_OK)
        s = storage_create(&st, argv[1], &cfg.sftp, err, sizeof(err));
    if (s != DX_OK) {
        printf("{\"cmd\": \"create\", \"status\": \"%s\"}\n", status_text(s));
        fprintf(stderr, "storage_create: %s\n", err);
        return 1;
    }
    if (argc > 2) {
        s = run(st, argc - 2, argv + 2);
    } else {
        while (fgets(line, sizeof(line), stdin) != NULL) {
            char *args[MAX_ARGS];
            int n = 0;

            for (char *tok = strtok(line, " \t\r\n"); tok != NULL && n < MAX_ARGS;
                 tok = strtok(NULL, " \t\r\n"))
                args[n++] = tok;
            if (n == 0)
                continue;
            if (strcmp(args[0], "quit") == 0)
                break;
            s = run(st, n, args);
        }
    }
    storage_destroy(st);
    return s == DX_OK ? 0 : 1;
}
