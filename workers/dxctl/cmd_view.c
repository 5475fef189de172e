/*
 * dxctl status, schedule and validate: what the pipeline says about itself,
 * and a dry run of the cleaner on a file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "clean.h"
#include "cron.h"
#include "csvout.h"
#include "dxctl.h"
#include "profile_store.h"
#include "scheduler.h" /* daily-checker's bucket and key of its last run */
#include "util.h"
#include "vocab.h"

/* ------------------------------------------------------------------ */
/* status                                                               */

#define STATUS_MAX (64u << 20)

/*
 * GET url (http://HOST[:PORT][/PREFIX]) + path with HTTP/1.0, the body into a
 * new buffer the caller frees.  Plain HTTP is what status-checker serves
 * inside the cluster; its host name is resolved like any client's.
 */
static int http_get(const char *url, const char *path, char **body, char *err, size_t err_len)
{
    char host[256] = "", port[8] = "80", prefix[512] = "", request[1024];
    const char *rest, *slash, *colon;
    struct addrinfo hints = {0}, *ai = NULL;
    struct timeval tv = {10, 0};
    char *buf = NULL, *start;
    size_t used = 0, cap = 0;
    int fd = -1, rc = DXCTL_UNAVAILABLE;

    if (strncmp(url, "http://", 7) != 0) {
        snprintf(err, err_len, "STATUS_URL must start with http://");
        return DXCTL_USAGE;
    }
    rest = url + 7;
    slash = strchr(rest, '/');
    snprintf(prefix, sizeof(prefix), "%s", slash ? slash : "");
    if (prefix[0] != '\0' && prefix[strlen(prefix) - 1] == '/')
        prefix[strlen(prefix) - 1] = '\0';
    colon = memchr(rest, ':', slash ? (size_t)(slash - rest) : strlen(rest));
    snprintf(host, sizeof(host), "%.*s",
             (int)(colon   ? colon - rest
                   : slash ? slash - rest
                           : (long)strlen(rest)),
             rest);
    if (colon)
        snprintf(port, sizeof(port), "%.*s",
                 (int)(slash ? slash - colon - 1 : (long)strlen(colon + 1)), colon + 1);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
        snprintf(err, err_len, "cannot resolve %s", host);
        goto done;
    }
    fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, err_len, "cannot connect to %s:%s: %s", host, port, strerror(errno));
        goto done;
    }
    snprintf(request, sizeof(request),
             "GET %s%s HTTP/1.0\r\nHost: %s\r\nAccept: application/json\r\n\r\n", prefix, path,
             host);
    if (write(fd, request, strlen(request)) != (ssize_t)strlen(request)) {
        snprintf(err, err_len, "cannot send the request: %s", strerror(errno));
        goto done;
    }
    for (;;) {
        ssize_t got;

        if (used + 4096 + 1 > cap) {
            char *grown = realloc(buf, cap = cap ? cap * 2 : 65536);

            if (grown == NULL || cap > STATUS_MAX) {
                free(grown);
                buf = NULL;
                snprintf(err, err_len, "status too large");
                goto done;
            }
            buf = grown;
        }
        got = read(fd, buf + used, cap - used - 1);
        if (got < 0) {
            snprintf(err, err_len, "cannot read the answer: %s", strerror(errno));
            goto done;
        }
        if (got == 0)
            break;
        used += (size_t)got;
    }
    buf[used] = '\0';
    start = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || start == NULL || strncmp(buf + 8, " 200", 4) != 0) {
        snprintf(err, err_len, "unexpected answer: %.40s", buf);
        goto done;
    }
    memmove(buf, start + 4, used - (size_t)(start + 4 - buf) + 1);
    *body = buf;
    buf = NULL;
    rc = DXCTL_OK;
done:
    if (fd >= 0)
        close(fd);
    if (ai != NULL)
        freeaddrinfo(ai);
    free(buf);
    return rc;
}

static const char status_usage[] =
    "usage: dxctl status [--client ID] [--date YYYY-MM-DD]\n"
    "status-checker's GET /status (at STATUS_URL, default http://127.0.0.1:8080) as\n"
    "a table of runs and failures; --json prints the document (filtered).\n";

static int keep(const cJSON *ev, const char *client, const char *date)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(ev, "client_id");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(ev, "order_date");

    return (client == NULL || (cJSON_IsString(c) && strcmp(c->valuestring, client) == 0)) &&
           (date == NULL || (cJSON_IsString(dt) && strcmp(dt->valuestring, date) == 0));
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsString(v) ? v->valuestring : "";
}

static double num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* Removes from array the items keep() refuses. */
static void filter(cJSON *array, const char *client, const char *date)
{
    cJSON *item = array ? array->child : NULL;

    while (item != NULL) {
        cJSON *next = item->next;

        if (!keep(item, client, date))
            cJSON_Delete(cJSON_DetachItemViaPointer(array, item));
        item = next;
    }
}

int cmd_status(dxctl *d, int argc, char **argv)
{
    const char *client = NULL, *date = NULL, *url = getenv("STATUS_URL");
    char *body = NULL, err[512];
    cJSON *doc, *runs, *failures, *item;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (dxctl_is_help(argv[i])) {
            fputs(status_usage, stdout);
            return DXCTL_OK;
        } else if (strcmp(argv[i], "--client") == 0 && i + 1 < argc) {
            client = argv[++i];
        } else if (strcmp(argv[i], "--date") == 0 && i + 1 < argc) {
            date = argv[++i];
        } else {
            dxctl_error("status: unknown or incomplete argument %s", argv[i]);
            return DXCTL_USAGE;
        }
    }
    rc =
        http_get(url && url[0] ? url : "http://127.0.0.1:8080", "/status", &body, err, sizeof(err));
    if (rc != DXCTL_OK) {
        dxctl_error("STATUS_URL: %s", err);
        return rc;
    }
    doc = cJSON_Parse(body);
    free(body);
    if (doc == NULL) {
        dxctl_error("status-checker answered something that is not JSON");
        return DXCTL_UNAVAILABLE;
    }
    runs = cJSON_GetObjectItemCaseSensitive(doc, "runs");
    failures = cJSON_GetObjectItemCaseSensitive(doc, "failures");
    filter(runs, client, date);
    filter(failures, client, date);
    if (d->json) {
        dxctl_print_json(doc, 0);
        return DXCTL_OK;
    }
    printf("status at %s, depot %s, %.0f files in the depot\n", str(doc, "generated_at"),
           str(doc, "depot"), num(doc, "files_in_depot"));
    if (str(doc, "depot_error")[0] != '\0')
        printf("depot error: %s\n", str(doc, "depot_error"));
    printf("\n%-10s %-10s %-28s %8s %8s %8s %5s %-9s %s\n", "CLIENT", "DATE", "SOURCE", "ROWS IN",
           "OUT", "REJECTED", "PROF", "TRIGGER", "AT");
    cJSON_ArrayForEach(item, runs)
    {
        const cJSON *sup = cJSON_GetObjectItemCaseSensitive(item, "supersedes");

        printf("%-10s %-10s %-28s %8.0f %8.0f %8.0f %5.0f %-9s %s\n", str(item, "client_id"),
               str(item, "order_date"), str(item, "source"), num(item, "rows_in"),
               num(item, "rows_out"), num(item, "rows_rejected"), num(item, "profile_revision"),
               str(item, "triggered_by"), str(item, "at"));
        for (const cJSON *s = sup ? sup->child : NULL; s != NULL; s = s->next)
            printf("%-10s   supersedes the %s of %s%s%s\n", "", str(s, "kind"), str(s, "at"),
                   str(s, "reason")[0] ? ": " : "", str(s, "reason"));
    }
    if (cJSON_GetArraySize(failures) > 0) {
        printf("\n%-10s %-10s %-28s %-9s %s\n", "CLIENT", "DATE", "SOURCE", "KIND", "REASON");
        cJSON_ArrayForEach(item, failures)
            printf("%-10s %-10s %-28s %-9s %s\n", str(item, "client_id"), str(item, "order_date"),
                   str(item, "source"),
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "permanent")) ? "permanent"
                                                                                     : "transient",
                   str(item, "reason"));
    }
    cJSON_Delete(doc);
    return DXCTL_OK;
}

/* ------------------------------------------------------------------ */
/* schedule                                                             */

#define NEXT_RUNS 5

static const char schedule_usage[] =
    "usage: dxctl schedule\n"
    "daily-checker's last completed scheduled run (from its key-value bucket) and\n"
    "the next %d runs of SCHEDULE, in TZ.\n";

static void local_time(time_t t, char out[40])
{
    struct tm tm;

    localtime_r(&t, &tm);
    strftime(out, 40, "%Y-%m-%d %H:%M %Z", &tm);
}

int cmd_schedule(dxctl *d, int argc, char **argv)
{
    cron_schedule *schedule = NULL;
    kv *store = NULL;
    char err[512], *last = NULL, at[40];
    time_t next[NEXT_RUNS], after = time(NULL);
    size_t n = 0;
    cJSON *o, *list;
    int rc;

    if (argc > 1) {
        if (dxctl_is_help(argv[1])) {
            printf(schedule_usage, NEXT_RUNS);
            return DXCTL_OK;
        }
        dxctl_error("schedule: takes no argument");
        return DXCTL_USAGE;
    }
    if (d->cfg.schedule[0] != '\0' &&
        cron_parse(d->cfg.schedule, &schedule, err, sizeof(err)) != DX_OK) {
        dxctl_error("SCHEDULE: %s", err);
        return DXCTL_USAGE;
    }
    for (; schedule != NULL && n < NEXT_RUNS && cron_next(schedule, after, &next[n]) == DX_OK; n++)
        after = next[n];
    rc = dxctl_bus(d);
    if (rc == DXCTL_OK && kv_open(&store, d->bus, SCHEDULER_BUCKET, d->cfg.stream_replicas, 0, err,
                                  sizeof(err)) == DX_OK)
        kv_get(store, SCHEDULER_LAST_RUN_KEY, &last, NULL);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "schedule", d->cfg.schedule);
    cJSON_AddStringToObject(o, "tz", getenv("TZ") ? getenv("TZ") : "");
    cJSON_AddItemToObject(o, "last_run", last ? cJSON_Parse(last) : cJSON_CreateNull());
    list = cJSON_AddArrayToObject(o, "next_runs");
    for (size_t i = 0; i < n; i++) {
        local_time(next[i], at);
        cJSON_AddItemToArray(list, cJSON_CreateString(at));
    }
    if (d->json) {
        dxctl_print_json(o, 0);
    } else {
        const cJSON *lr = cJSON_GetObjectItemCaseSensitive(o, "last_run");

        printf("schedule:  %s%s\n", d->cfg.schedule[0] ? d->cfg.schedule : "(none: SCHEDULE unset)",
               schedule ? "" : "");
        printf("time zone: %s\n", getenv("TZ") ? getenv("TZ") : "(system)");
        if (cJSON_IsObject(lr))
            printf("last run:  order date %s, scheduled %s, completed %s by %s\n",
                   str(lr, "order_date"), str(lr, "scheduled_at_utc"), str(lr, "completed_at"),
                   str(lr, "by"));
        else
            printf("last run:  none recorded\n");
        cJSON_ArrayForEach(lr, list) printf("next:      %s\n", lr->valuestring);
        cJSON_Delete(o);
    }
    free(last);
    kv_destroy(store);
    cron_destroy(schedule);
    return rc;
}

/* ------------------------------------------------------------------ */
/* validate                                                             */

static const char validate_usage[] =
    "usage: dxctl validate FILE [--client ID]\n"
    "Runs the cleaning engine on FILE with the client's profile (none without\n"
    "--client), writing nothing: encoding and delimiter found, the header, the\n"
    "mapped and unmapped columns, every missing required column, the counts,\n"
    "the reject reasons with their counts and the first rejected lines.\n"
    "Exit 0 when the file is usable, 1 when it is not.\n";

#define FIRST_REJECTS 5

typedef struct capture {
    csvout rejects; /* the rejects CSV, kept to report reasons */
    int keep;
    char header[4096]; /* the clean header line */
    size_t header_len;
} capture;

static dx_status read_file(void *ctx, void *buf, size_t cap, size_t *got)
{
    *got = fread(buf, 1, cap, ctx);
    return ferror((FILE *)ctx) ? DX_ERR_IO : DX_OK;
}

/* Keeps the first line (the header) of the clean output, and all of the rejects. */
static dx_status write_capture(void *ctx, const void *buf, size_t len)
{
    capture *c = ctx;

    if (!c->keep) {
        for (size_t i = 0; i < len && c->header_len < sizeof(c->header) - 1; i++) {
            if (memchr(c->header, '\n', c->header_len) != NULL)
                break;
            c->header[c->header_len++] = ((const char *)buf)[i];
        }
        return DX_OK;
    }
    if (csvout_reserve(&c->rejects, len + 1) < 0)
        return DX_ERR_NOMEM;
    memcpy(c->rejects.data + c->rejects.len, buf, len);
    c->rejects.len += len;
    c->rejects.data[c->rejects.len] = '\0';
    return DX_OK;
}

/* The reasons of a rejects CSV ("line,reason,..."): counts and first lines. */
static void summarize_rejects(const capture *c, cJSON *reasons, cJSON *first)
{
    const char *line = c->rejects.data ? strchr(c->rejects.data, '\n') : NULL;

    while (line != NULL && line[1] != '\0') {
        const char *start = line + 1, *end = strchr(start, '\n');
        const char *comma = memchr(start, ',', end ? (size_t)(end - start) : strlen(start));
        const char *comma2 = comma ? strchr(comma + 1, ',') : NULL;
        char reason[64];
        cJSON *count;

        if (comma == NULL)
            break;
        snprintf(reason, sizeof(reason), "%.*s",
                 (int)(comma2 && (!end || comma2 < end) ? comma2 - comma - 1
                                                        : (end ? end - comma - 1 : 0)),
                 comma + 1);
        count = cJSON_GetObjectItemCaseSensitive(reasons, reason);
        if (count == NULL)
            cJSON_AddNumberToObject(reasons, reason, 1);
        else
            cJSON_SetNumberValue(count, count->valuedouble + 1);
        if (cJSON_GetArraySize(first) < FIRST_REJECTS) {
            char text[1024];

            snprintf(text, sizeof(text), "%.*s", (int)(end ? end - start : (long)strlen(start)),
                     start);
            cJSON_AddItemToArray(first, cJSON_CreateString(text));
        }
        line = end;
    }
}

/* The clean header's pass-through columns: the input columns nothing mapped. */
static void unmapped_columns(const capture *out, cJSON *list)
{
    const char *h = out->header, *p = strstr(h, ",total");
    char name[1024];

    if (p == NULL)
        return;
    p += 6;
    while (*p == ',') {
        const char *start = ++p;
        size_t n;

        /* Quoted names keep their quotes: they are shown, not parsed. */
        while (*p != '\0' && *p != ',' && *p != '\n' && *p != '\r')
            p++;
        n = (size_t)(p - start);
        snprintf(name, sizeof(name), "%.*s", (int)n, start);
        cJSON_AddItemToArray(list, cJSON_CreateString(name));
    }
}

static void print_validation(const cJSON *o)
{
    const cJSON *item;

    printf("file:        %s\n", str(o, "file"));
    printf("profile:     %s\n", str(o, "profile"));
    printf("encoding:    %s\n", str(o, "encoding"));
    printf("delimiter:   %s\n", str(o, "delimiter"));
    printf("result:      %s\n", str(o, "result"));
    if (str(o, "reason")[0] != '\0')
        printf("reason:      %s\n", str(o, "reason"));
    printf("mapped:     ");
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(o, "mapped"))
        printf(" %s", item->valuestring);
    printf("\nunmapped:   ");
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(o, "unmapped"))
        printf(" %s", item->valuestring);
    printf("\nmissing:    ");
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(o, "missing_required"))
        printf(" %s", item->valuestring);
    printf("\nrows:        in %.0f, out %.0f, rejected %.0f, duplicate %.0f\n", num(o, "rows_in"),
           num(o, "rows_out"), num(o, "rows_rejected"), num(o, "rows_duplicate"));
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(o, "reject_reasons"))
        printf("  %-20s %.0f\n", item->string, item->valuedouble);
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(o, "first_rejects"))
        printf("  | %s\n", item->valuestring);
}

int cmd_validate(dxctl *d, int argc, char **argv)
{
    const char *path = NULL, *client = NULL;
    capture out = {0}, rejects = {.keep = 1};
    clean_counts counts = {0};
    char reason[512] = "", delim[8];
    profile p;
    FILE *fp;
    cJSON *o, *list;
    dx_status s;
    int rc = DXCTL_OK;

    for (int i = 1; i < argc; i++) {
        if (dxctl_is_help(argv[i])) {
            fputs(validate_usage, stdout);
            return DXCTL_OK;
        } else if (strcmp(argv[i], "--client") == 0 && i + 1 < argc) {
            client = argv[++i];
        } else if (path == NULL && argv[i][0] != '-') {
            path = argv[i];
        } else {
            dxctl_error("validate: unknown or incomplete argument %s", argv[i]);
            return DXCTL_USAGE;
        }
    }
    if (path == NULL) {
        fputs(validate_usage, stderr);
        return DXCTL_USAGE;
    }
    profile_init(&p);
    if (client != NULL) {
        rc = dxctl_profiles(d);
        if (rc != DXCTL_OK)
            return rc;
        s = profile_store_get(d->store, client, &p, reason, sizeof(reason));
        if (s != DX_OK) {
            dxctl_error("%s", reason);
            return s == DX_ERR_INVALID ? DXCTL_FAILED : DXCTL_UNAVAILABLE;
        }
    }
    fp = fopen(path, "rb");
    if (fp == NULL) {
        dxctl_error("cannot open %s: %s", path, strerror(errno));
        return DXCTL_USAGE;
    }
    {
        clean_io io = {read_file, fp, write_capture, &out, write_capture, &rejects};

        s = clean_run_profile(&io, &p, &counts, reason, sizeof(reason));
    }
    fclose(fp);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", path);
    if (client != NULL) {
        char rev[96];

        snprintf(rev, sizeof(rev), "%s revision %llu%s", client, (unsigned long long)p.revision,
                 p.revision ? "" : " (no profile: defaults)");
        cJSON_AddStringToObject(o, "profile", rev);
    } else {
        cJSON_AddStringToObject(o, "profile", "none (defaults)");
    }
    cJSON_AddStringToObject(o, "encoding",
                            counts.records_cp1252 > 0 ? "Windows-1252"
                            : counts.utf8_bom         ? "UTF-8 with byte order mark"
                                                      : "UTF-8");
    snprintf(delim, sizeof(delim), "%s",
             counts.delimiter == '\t' ? "tab"
                                      : (char[]){counts.delimiter ? counts.delimiter : '?', 0});
    cJSON_AddStringToObject(o, "delimiter", delim);
    cJSON_AddStringToObject(o, "result", s == DX_OK ? "usable" : "unusable");
    cJSON_AddStringToObject(o, "reason", s == DX_OK ? "" : reason);
    list = cJSON_AddArrayToObject(o, "mapped");
    for (int c = 0; c < VOCAB_COLUMNS; c++)
        if (counts.columns_found & (1u << c))
            cJSON_AddItemToArray(list, cJSON_CreateString(vocab_column_name((vocab_column)c)));
    unmapped_columns(&out, cJSON_AddArrayToObject(o, "unmapped"));
    list = cJSON_AddArrayToObject(o, "missing_required");
    /* Only a file whose header was read has missing columns (not an empty
     * or binary one). */
    for (int c = 0; c < VOCAB_COLUMNS && (s == DX_OK || strstr(reason, "missing required") != NULL);
         c++)
        if (vocab_column_required((vocab_column)c) && !(counts.columns_found & (1u << c)))
            cJSON_AddItemToArray(list, cJSON_CreateString(vocab_column_name((vocab_column)c)));
    cJSON_AddNumberToObject(o, "rows_in", (double)counts.rows_in);
    cJSON_AddNumberToObject(o, "rows_out", (double)counts.rows_out);
    cJSON_AddNumberToObject(o, "rows_rejected", (double)counts.rows_rejected);
    cJSON_AddNumberToObject(o, "rows_duplicate", (double)counts.rows_duplicate);
    summarize_rejects(&rejects, cJSON_AddObjectToObject(o, "reject_reasons"),
                      cJSON_AddArrayToObject(o, "first_rejects"));
    csvout_finish(&rejects.rejects);
    if (d->json) {
        dxctl_print_json(o, 0);
    } else {
        print_validation(o);
        cJSON_Delete(o);
    }
    return s == DX_OK ? DXCTL_OK : DXCTL_FAILED;
}
