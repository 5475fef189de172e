/*
 * state.c: the status projection.  A FileReady counts once per client, date,
 * source and checksum whatever its event id (a re-run after a crash carries
 * a new one); a FileFailed once per event id; both bounded; /status built
 * from the events and a listing of the depot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "state.h"
#include "testing.h"
#include "util.h"

static event_file_ready ready(const char *event_id, const char *client, const char *date,
                              const char *source, const char *sha)
{
    event_file_ready ev = {0};

    util_copy(ev.event_id, sizeof(ev.event_id), event_id);
    util_copy(ev.client_id, sizeof(ev.client_id), client);
    util_copy(ev.order_date, sizeof(ev.order_date), date);
    util_copy(ev.source, sizeof(ev.source), source);
    util_copy(ev.sha256, sizeof(ev.sha256), sha);
    snprintf(ev.output, sizeof(ev.output), "%s/%s/out.csv", client, date);
    ev.rows_in = 3;
    return ev;
}

static event_file_failed failed(const char *event_id, const char *client)
{
    event_file_failed ev = {0};

    util_copy(ev.event_id, sizeof(ev.event_id), event_id);
    util_copy(ev.client_id, sizeof(ev.client_id), client);
    util_copy(ev.order_date, sizeof(ev.order_date), "2026-11-24");
    util_copy(ev.reason, sizeof(ev.reason), "depot: No space left on device");
    return ev;
}

static void test_ready_dedup(void)
{
    state *st = state_create();
    event_file_ready ev = ready("e1", "US1", "2026-11-24", "US1/input.csv", "aa");
    event_file_ready rerun = ev, other;

    CHECK(st != NULL);
    if (st == NULL)
        return;
    CHECK_EQ_INT(state_add_ready(st, &ev, 1000), 1);
    CHECK_EQ_INT(state_add_ready(st, &ev, 2000), 0); /* a redelivery */
    /* A re-run after a crash: new event id, same run. */
    util_copy(rerun.event_id, sizeof(rerun.event_id), "e2");
    util_copy(rerun.trace_id, sizeof(rerun.trace_id), "0af7651916cd43dd8448eb211c80319c");
    CHECK_EQ_INT(state_add_ready(st, &rerun, 3000), 0);
    /* Any of the four keys differing makes a new run. */
    other = ready("e1", "US2", "2026-11-24", "US1/input.csv", "aa");
    CHECK_EQ_INT(state_add_ready(st, &other, 4000), 1);
    other = ready("e1", "US1", "2026-11-25", "US1/input.csv", "aa");
    CHECK_EQ_INT(state_add_ready(st, &other, 4000), 1);
    other = ready("e1", "US1", "2026-11-24", "US1/second.csv", "aa");
    CHECK_EQ_INT(state_add_ready(st, &other, 4000), 1);
    other = ready("e1", "US1", "2026-11-24", "US1/input.csv", "bb"); /* new bytes */
    CHECK_EQ_INT(state_add_ready(st, &other, 4000), 1);
    state_destroy(st);
}

static void test_failed_dedup(void)
{
    state *st = state_create();
    event_file_failed a = failed("f1", "US1"), b = failed("f2", "US1");

    CHECK(st != NULL);
    if (st == NULL)
        return;
    CHECK_EQ_INT(state_add_failed(st, &a, 1000), 1);
    CHECK_EQ_INT(state_add_failed(st, &a, 2000), 0);
    /* Two failures of the same drop are two attempts: both shown. */
    CHECK_EQ_INT(state_add_failed(st, &b, 3000), 1);
    state_destroy(st);
    state_destroy(NULL);
}

/* A worker with only what state_to_json uses: the depot and the client rule. */
static int open_worker(worker *w, const char *root)
{
    char url[128], err[256];

    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->work_lock, NULL);
    snprintf(url, sizeof(url), "file://%s", root);
    return storage_create(&w->depot, url, err, sizeof(err)) == DX_OK &&
           clientid_rule_create(&w->clients, "^US[0-9]+$", err, sizeof(err)) == DX_OK;
}

static void close_worker(worker *w)
{
    storage_destroy(w->depot);
    clientid_rule_destroy(w->clients);
    pthread_mutex_destroy(&w->work_lock);
}

static void touch(const char *root, const char *rel)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    f = fopen(path, "w");
    if (f != NULL)
        fclose(f);
}

static void test_status_document(void)
{
    char root[] = "/tmp/dx-state-XXXXXX", path[512], err[256] = "";
    state *st = state_create();
    worker w;
    event_file_ready first = ready("e1", "US1", "2026-11-24", "US1/a.csv", "aa");
    event_file_ready second = ready("e2", "US1", "2026-11-24", "US1/b.csv", "bb");
    event_file_failed fail = failed("f1", "US2");
    cJSON *doc, *us1, *runs;
    int total = -2;

    CHECK(mkdtemp(root) != NULL);
    CHECK(st != NULL && open_worker(&w, root));
    if (st == NULL || w.depot == NULL || w.clients == NULL)
        return;
    snprintf(path, sizeof(path), "%s/US1", root);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/US1/2026-11-24", root);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/not-a-client", root);
    mkdir(path, 0755);
    touch(root, "US1/2026-11-24/a.csv");
    touch(root, "US1/2026-11-24/a.rejects.csv");
    touch(root, "US1/2026-11-24/.a.csv.tmp-0123"); /* a write in progress */
    state_add_ready(st, &first, 1000);
    state_add_ready(st, &second, 2000);
    state_add_failed(st, &fail, 3000);

    doc = state_to_json(st, &w, &total, err, sizeof(err));
    CHECK(doc != NULL);
    CHECK_EQ_INT(total, 2);
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "files_in_depot")), 2);
    us1 = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "clients"), "US1");
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(us1, "files_in_depot")), 2);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(us1, "files")), 2);
    /* The date shows the newest run; "runs" lists the newest first. */
    CHECK_EQ_STR(
        cJSON_GetStringValue(cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(us1, "dates"), "2026-11-24"), "source")),
        "US1/b.csv");
    runs = cJSON_GetObjectItem(doc, "runs");
    CHECK_EQ_INT(cJSON_GetArraySize(runs), 2);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(runs, 0), "event_id")),
                 "e2");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(runs, 0), "at")),
                 "1970-01-01T00:00:02.000Z");
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "failures")), 1);
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "clients"), "not-a-client") == NULL);
    cJSON_Delete(doc);

    /* A client's recount re-lists its folder only. */
    touch(root, "US1/2026-11-24/b.csv");
    CHECK_EQ_INT(state_recount_client(st, &w, "US1", &total, err, sizeof(err)), DX_OK);
    CHECK_EQ_INT(total, 3);

    /* The depot gone: the counts become null, the events stay visible. */
    snprintf(path, sizeof(path), "rm -rf '%s'", root);
    CHECK_EQ_INT(system(path), 0);
    doc = state_to_json(st, &w, &total, err, sizeof(err));
    CHECK_EQ_INT(total, -1);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(doc, "files_in_depot")));
    CHECK(cJSON_IsString(cJSON_GetObjectItem(doc, "depot_error")));
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "runs")), 2);
    CHECK(strstr(err, "cannot list the depot") != NULL);
    cJSON_Delete(doc);
    close_worker(&w);
    state_destroy(st);
}

static void test_bounds(void)
{
    state *st = state_create();
    char id[32], source[64];

    CHECK(st != NULL);
    if (st == NULL)
        return;
    /* One more run than kept: the oldest goes, and is new again after. */
    for (int i = 0; i <= STATE_MAX_RUNS; i++) {
        event_file_ready ev;

        snprintf(id, sizeof(id), "e%d", i);
        snprintf(source, sizeof(source), "US1/%d.csv", i);
        ev = ready(id, "US1", "2026-11-24", source, "aa");
        if (state_add_ready(st, &ev, i) != 1) {
            testing_fail(__FILE__, __LINE__, "run %d refused", i);
            break;
        }
    }
    testing_checks++;
    {
        event_file_ready oldest = ready("e0", "US1", "2026-11-24", "US1/0.csv", "aa");
        event_file_ready newest = ready("x", "US1", "2026-11-24", "US1/5000.csv", "aa");

        CHECK_EQ_INT(state_add_ready(st, &newest, 0), 0);
        CHECK_EQ_INT(state_add_ready(st, &oldest, 0), 1);
    }
    for (int i = 0; i <= STATE_MAX_FAILURES; i++) {
        event_file_failed ev;

        snprintf(id, sizeof(id), "f%d", i);
        ev = failed(id, "US1");
        state_add_failed(st, &ev, i);
    }
    {
        event_file_failed oldest = failed("f0", "US1"), newest = failed("f1000", "US1");

        CHECK_EQ_INT(state_add_failed(st, &newest, 0), 0);
        CHECK_EQ_INT(state_add_failed(st, &oldest, 0), 1);
    }
    state_destroy(st);
}

int main(void)
{
    log_init("test_state");
    log_set_level("error");
    test_ready_dedup();
    test_failed_dedup();
    test_status_document();
    test_bounds();
    return testing_finish("test_state");
}
