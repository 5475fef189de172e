#include "state.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "util.h"

typedef struct run_record {
    event_file_ready ev;
    int64_t at_ms;
} run_record;

typedef struct failure_record {
    event_file_failed ev;
    int64_t at_ms;
} failure_record;

/* How many files a client had in the depot when it was last listed. */
typedef struct depot_count {
    char client_id[EVENT_CLIENT_MAX];
    int files;
} depot_count;

/* Hash slots of the run index: a power of two, well over STATE_MAX_RUNS. */
#define RUN_INDEX_SLOTS 16384u

struct state {
    pthread_mutex_t lock;
    /* A ring: the run added n-th (from 0) is at runs[n % STATE_MAX_RUNS], and
     * the newest run_count of the run_total added are kept. */
    run_record *runs;
    size_t run_count;
    uint64_t run_total;
    /* Which runs are known, by client, date, source and sha256, so that an
     * event costs the same with 5000 runs kept as with none (a replay of
     * 100,000 events compared each with every run kept).  Each slot holds
     * n + 1 for the n-th run added, 0 when never used; a slot whose run has
     * left the ring is reused. */
    uint64_t *run_index;
    size_t index_used; /* slots ever used since the last rebuild */
    failure_record *failures;
    size_t failure_count;
    /* Per-client file counts, so that an event re-lists only its client's
     * folder instead of the whole depot (which made N events cost N^2). */
    depot_count *counts;
    size_t count_len, count_cap;
};

state *state_create(void)
{
    state *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return NULL;
    st->runs = calloc(STATE_MAX_RUNS, sizeof(*st->runs));
    st->failures = calloc(STATE_MAX_FAILURES, sizeof(*st->failures));
    st->run_index = calloc(RUN_INDEX_SLOTS, sizeof(*st->run_index));
    if (st->runs == NULL || st->failures == NULL || st->run_index == NULL) {
        state_destroy(st);
        return NULL;
    }
    pthread_mutex_init(&st->lock, NULL);
    return st;
}

void state_destroy(state *st)
{
    if (st == NULL)
        return;
    if (st->runs != NULL && st->failures != NULL && st->run_index != NULL)
        pthread_mutex_destroy(&st->lock);
    free(st->run_index);
    free(st->runs);
    free(st->failures);
    free(st->counts);
    free(st);
}

/* The same run seen twice (a redelivery, the replay at start): a replay of
 * the same drop is a run of its own, caused by another OrderDate. */
static int same_run(const event_file_ready *a, const event_file_ready *b)
{
    return strcmp(a->client_id, b->client_id) == 0 && strcmp(a->order_date, b->order_date) == 0 &&
           strcmp(a->source, b->source) == 0 && strcmp(a->output, b->output) == 0 &&
           strcmp(a->sha256, b->sha256) == 0 && strcmp(a->caused_by, b->caused_by) == 0;
}

/* The i-th run kept, oldest first (under st->lock). */
static const run_record *run_at(const state *st, size_t i)
{
    return &st->runs[(st->run_total - st->run_count + i) % STATE_MAX_RUNS];
}

static int run_live(const state *st, uint64_t n)
{
    return n < st->run_total && n >= st->run_total - st->run_count;
}

static void hash_text(uint64_t *h, const char *text)
{
    /* FNV-1a, with the terminating NUL as a separator. */
    do {
        *h ^= (unsigned char)*text;
        *h *= 1099511628211ULL;
    } while (*text++ != '\0');
}

static size_t run_slot(const event_file_ready *ev)
{
    uint64_t h = 14695981039346656037ULL;

    hash_text(&h, ev->client_id);
    hash_text(&h, ev->order_date);
    hash_text(&h, ev->source);
    hash_text(&h, ev->sha256);
    return (size_t)(h & (RUN_INDEX_SLOTS - 1));
}

/*
 * Looks ev up (under st->lock): 1 when known.  Otherwise *free_slot is the
 * slot to record it in (a reusable one on its probe path, else the empty
 * one that ended the probe).
 */
static int run_find(state *st, const event_file_ready *ev, size_t *free_slot)
{
    size_t i = run_slot(ev);
    size_t reusable = RUN_INDEX_SLOTS;

    for (; st->run_index[i] != 0; i = (i + 1) & (RUN_INDEX_SLOTS - 1)) {
        uint64_t n = st->run_index[i] - 1;

        if (!run_live(st, n)) {
            if (reusable == RUN_INDEX_SLOTS)
                reusable = i;
        } else if (same_run(&st->runs[n % STATE_MAX_RUNS].ev, ev)) {
            return 1;
        }
    }
    *free_slot = reusable != RUN_INDEX_SLOTS ? reusable : i;
    return 0;
}

/* Indexes the kept runs afresh once reused slots make probes long. */
static void run_index_rebuild(state *st)
{
    memset(st->run_index, 0, RUN_INDEX_SLOTS * sizeof(*st->run_index));
    st->index_used = 0;
    for (size_t i = 0; i < st->run_count; i++) {
        uint64_t n = st->run_total - st->run_count + i;
        size_t slot = run_slot(&run_at(st, i)->ev);

        while (st->run_index[slot] != 0)
            slot = (slot + 1) & (RUN_INDEX_SLOTS - 1);
        st->run_index[slot] = n + 1;
        st->index_used++;
    }
}

int state_add_ready(state *st, const event_file_ready *ev, int64_t at_ms)
{
    size_t slot = 0;
    int added;

    pthread_mutex_lock(&st->lock);
    added = !run_find(st, ev, &slot);
    if (added) {
        run_record *r = &st->runs[st->run_total % STATE_MAX_RUNS];

        if (st->run_index[slot] == 0)
            st->index_used++;
        st->run_index[slot] = st->run_total + 1;
        r->ev = *ev;
        r->at_ms = at_ms;
        st->run_total++;
        if (st->run_count < STATE_MAX_RUNS)
            st->run_count++;
        if (st->index_used > RUN_INDEX_SLOTS / 4 * 3)
            run_index_rebuild(st);
    }
    pthread_mutex_unlock(&st->lock);
    return added;
}

int state_add_failed(state *st, const event_file_failed *ev, int64_t at_ms)
{
    int added = 1;

    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < st->failure_count && added; i++)
        added = strcmp(st->failures[i].ev.event_id, ev->event_id) != 0;
    if (added) {
        if (st->failure_count == STATE_MAX_FAILURES) {
            memmove(st->failures, st->failures + 1,
                    (STATE_MAX_FAILURES - 1) * sizeof(*st->failures));
            st->failure_count--;
        }
        st->failures[st->failure_count].ev = *ev;
        st->failures[st->failure_count].at_ms = at_ms;
        st->failure_count++;
    }
    pthread_mutex_unlock(&st->lock);
    return added;
}

cJSON *state_client_entry(cJSON *clients, const char *client_id)
{
    cJSON *client = cJSON_GetObjectItemCaseSensitive(clients, client_id);

    if (client == NULL) {
        client = cJSON_AddObjectToObject(clients, client_id);
        cJSON_AddNumberToObject(client, "files_in_depot", 0);
        cJSON_AddArrayToObject(client, "files");
        cJSON_AddObjectToObject(client, "dates");
    }
    return client;
}

/* Remembers client_id's file count (under st->lock); a full cache only
 * loses precision in the logged total, never a status entry. */
static void remember_count(state *st, const char *client_id, int files)
{
    for (size_t i = 0; i < st->count_len; i++) {
        if (strcmp(st->counts[i].client_id, client_id) == 0) {
            st->counts[i].files = files;
            return;
        }
    }
    if (st->count_len == st->count_cap) {
        size_t cap = st->count_cap ? st->count_cap * 2 : 64;
        depot_count *grown = realloc(st->counts, cap * sizeof(*grown));

        if (grown == NULL)
            return;
        st->counts = grown;
        st->count_cap = cap;
    }
    util_copy(st->counts[st->count_len].client_id, EVENT_CLIENT_MAX, client_id);
    st->counts[st->count_len].files = files;
    st->count_len++;
}

/*
 * Lists <depot>/<CLIENT>/<DATE>/<file> of one client: appends each path to
 * files (when not NULL) and sets *count.  A client without a folder has 0.
 */
static dx_status list_client(worker *w, const char *client_id, cJSON *files, int *count)
{
    storage_entry *dates = NULL, *entries = NULL;
    size_t date_count = 0, entry_count = 0;
    char path[EVENT_PATH_MAX];
    dx_status s = storage_list(w->depot, client_id, &dates, &date_count);

    *count = 0;
    if (s == DX_ERR_NOT_FOUND)
        return DX_OK;
    for (size_t j = 0; s == DX_OK && j < date_count; j++) {
        if (dates[j].kind != STORAGE_DIR || !util_date_valid(dates[j].name))
            continue;
        snprintf(path, sizeof(path), "%s/%s", client_id, dates[j].name);
        s = storage_list(w->depot, path, &entries, &entry_count);
        for (size_t k = 0; s == DX_OK && k < entry_count; k++) {
            if (entries[k].kind != STORAGE_FILE || entries[k].name[0] == '.')
                continue;
            if (files != NULL) {
                snprintf(path, sizeof(path), "%s/%s/%s", client_id, dates[j].name, entries[k].name);
                cJSON_AddItemToArray(files, cJSON_CreateString(path));
            }
            (*count)++;
        }
        storage_entries_free(entries, entry_count);
        entries = NULL;
        entry_count = 0;
    }
    storage_entries_free(dates, date_count);
    return s;
}

/* Lists the whole depot into clients and refreshes the per-client counts. */
static dx_status list_depot(state *st, worker *w, cJSON *clients, int *total)
{
    storage_entry *roots = NULL;
    size_t root_count = 0;
    dx_status s = storage_list(w->depot, "", &roots, &root_count);

    *total = 0;
    for (size_t i = 0; s == DX_OK && i < root_count; i++) {
        const char *client_id = roots[i].name;
        cJSON *client;
        int count = 0;

        if (roots[i].kind != STORAGE_DIR || !clientid_valid(w->clients, client_id))
            continue;
        client = state_client_entry(clients, client_id);
        s = list_client(w, client_id, cJSON_GetObjectItemCaseSensitive(client, "files"), &count);
        cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(client, "files_in_depot"), count);
        *total += count;
        pthread_mutex_lock(&st->lock);
        remember_count(st, client_id, count);
        pthread_mutex_unlock(&st->lock);
    }
    storage_entries_free(roots, root_count);
    return s;
}

dx_status state_recount_client(state *st, worker *w, const char *client_id, int *total, char *err,
                               size_t err_len)
{
    int count = 0;
    dx_status s;

    pthread_mutex_lock(&w->work_lock);
    s = list_client(w, client_id, NULL, &count);
    pthread_mutex_unlock(&w->work_lock);
    if (s != DX_OK) {
        snprintf(err, err_len, "cannot list the depot: %s", storage_last_error(w->depot));
        return s;
    }
    pthread_mutex_lock(&st->lock);
    remember_count(st, client_id, count);
    *total = 0;
    for (size_t i = 0; i < st->count_len; i++)
        *total += st->counts[i].files;
    pthread_mutex_unlock(&st->lock);
    return DX_OK;
}

static cJSON *superseded_entry(const char *kind, const char *event_id, int64_t at_ms,
                               const char *detail_key, const char *detail)
{
    cJSON *o = cJSON_CreateObject();
    char at[32];

    util_rfc3339(at, at_ms);
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddStringToObject(o, "event_id", event_id);
    cJSON_AddStringToObject(o, "at", at);
    cJSON_AddStringToObject(o, detail_key, detail);
    return o;
}

/*
 * What a replayed run replaces: the earlier runs and failures of the same
 * client, date and drop.  Only replays are looked at (they are rare), so
 * that a status of thousands of runs is not quadratic.  Called under lock.
 */
static cJSON *superseded_by_replay(const state *st, const run_record *r)
{
    cJSON *list = cJSON_CreateArray();
    const event_file_ready *ev = &r->ev;

    for (size_t i = 0; i < st->run_count && run_at(st, i) != r; i++) {
        const event_file_ready *old = &run_at(st, i)->ev;

        if (strcmp(old->client_id, ev->client_id) == 0 &&
            strcmp(old->order_date, ev->order_date) == 0 && strcmp(old->source, ev->source) == 0)
            cJSON_AddItemToArray(list,
                                 superseded_entry("file-ready", old->event_id, run_at(st, i)->at_ms,
                                                  "sha256", old->sha256));
    }
    for (size_t i = 0; i < st->failure_count; i++) {
        const event_file_failed *old = &st->failures[i].ev;

        if (st->failures[i].at_ms <= r->at_ms && strcmp(old->client_id, ev->client_id) == 0 &&
            strcmp(old->order_date, ev->order_date) == 0 && strcmp(old->source, ev->source) == 0)
            cJSON_AddItemToArray(list,
                                 superseded_entry("file-failed", old->event_id,
                                                  st->failures[i].at_ms, "reason", old->reason));
    }
    return list;
}

/* A run's "files": the download links of its clean and rejects files
 * (GET /files/...), null for a path the event left empty. */
static cJSON *run_files(const event_file_ready *ev)
{
    cJSON *files = cJSON_CreateObject();
    const char *paths[2] = {ev->output, ev->rejects};
    const char *names[2] = {"clean", "rejects"};

    for (int i = 0; i < 2; i++) {
        char *link = files_link(paths[i]);

        if (link != NULL)
            cJSON_AddStringToObject(files, names[i], link);
        else
            cJSON_AddNullToObject(files, names[i]);
        free(link);
    }
    return files;
}

static cJSON *run_json(const state *st, const run_record *r)
{
    cJSON *json = event_to_json(EVENT_FILE_READY, &r->ev);
    char at[32];

    util_rfc3339(at, r->at_ms);
    cJSON_AddStringToObject(json, "at", at);
    cJSON_AddItemToObject(json, "files", run_files(&r->ev));
    if (strcmp(r->ev.triggered_by, "replay") == 0)
        cJSON_AddItemToObject(json, "supersedes", superseded_by_replay(st, r));
    return json;
}

static cJSON *failure_json(const failure_record *f)
{
    cJSON *json = event_to_json(EVENT_FILE_FAILED, &f->ev);
    char at[32];

    util_rfc3339(at, f->at_ms);
    cJSON_AddStringToObject(json, "at", at);
    return json;
}

cJSON *state_to_json(state *st, worker *w, int *files_in_depot, char *err, size_t err_len)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *clients, *runs, *failures;
    char now[32];
    int total = 0;

    util_rfc3339(now, util_now_ms());
    cJSON_AddStringToObject(root, "generated_at", now);
    cJSON_AddStringToObject(root, "depot", storage_display_url(w->depot));
    clients = cJSON_AddObjectToObject(root, "clients");
    pthread_mutex_lock(&w->work_lock);
    dx_status s = list_depot(st, w, clients, &total);
    pthread_mutex_unlock(&w->work_lock);
    /* An unreachable depot is exactly when the failures must stay visible:
     * the counts become null and the reason is shown, the events are kept. */
    if (s != DX_OK) {
        snprintf(err, err_len, "cannot list the depot: %s", storage_last_error(w->depot));
        cJSON_AddStringToObject(root, "depot_error", err);
        cJSON_AddNullToObject(root, "files_in_depot");
        total = -1;
    } else {
        cJSON_AddNumberToObject(root, "files_in_depot", total);
    }
    runs = cJSON_AddArrayToObject(root, "runs");
    failures = cJSON_AddArrayToObject(root, "failures");
    pthread_mutex_lock(&st->lock);
    /* Oldest first, so that the last assignment per client and date wins. */
    for (size_t i = 0; i < st->run_count; i++) {
        const run_record *r = run_at(st, i);
        cJSON *client = state_client_entry(clients, r->ev.client_id);
        cJSON *dates = cJSON_GetObjectItemCaseSensitive(client, "dates");

        cJSON_DeleteItemFromObjectCaseSensitive(dates, r->ev.order_date);
        cJSON_AddItemToObject(dates, r->ev.order_date, run_json(st, r));
        cJSON_DeleteItemFromObjectCaseSensitive(client, "last_run");
        cJSON_AddItemToObject(client, "last_run", run_json(st, r));
    }
    for (size_t i = st->run_count; i-- > 0;)
        cJSON_AddItemToArray(runs, run_json(st, run_at(st, i)));
    for (size_t i = st->failure_count; i-- > 0;)
        cJSON_AddItemToArray(failures, failure_json(&st->failures[i]));
    pthread_mutex_unlock(&st->lock);
    if (total < 0) {
        for (cJSON *client = clients->child; client != NULL; client = client->next)
            cJSON_ReplaceItemInObjectCaseSensitive(client, "files_in_depot", cJSON_CreateNull());
    }
    *files_in_depot = total;
    return root;
}

/* ---------- snapshot encoding ---------- */

/*
 * A snapshot is "DXS1", then one record per run and failure, oldest first:
 * a kind byte ('R' run, 'F' failure), at_ms as 8 bytes little-endian, the
 * event's protobuf length as 4 bytes little-endian, then the event (the
 * same encoding as on the bus, so one decoder validates both).
 */
#define SNAPSHOT_MAGIC "DXS1"

/* The records are written to an open_memstream(): a growing buffer from
 * the C library rather than one more by hand. */
static void put_le(FILE *out, uint64_t value, int bytes)
{
    unsigned char le[8];

    for (int i = 0; i < bytes; i++)
        le[i] = (unsigned char)(value >> (8 * i));
    fwrite(le, 1, (size_t)bytes, out);
}

static int put_record(FILE *out, char kind, event_type type, const void *ev, int64_t at_ms)
{
    void *data = NULL;
    size_t len = 0;

    if (event_encode(type, ev, 0, &data, &len) != DX_OK)
        return -1;
    fputc(kind, out);
    put_le(out, (uint64_t)at_ms, 8);
    put_le(out, len, 4);
    fwrite(data, 1, len, out);
    free(data);
    return 0;
}

dx_status state_encode(state *st, void **data, size_t *len)
{
    char *bytes = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&bytes, &size);
    int failed = out == NULL;

    if (out != NULL)
        fputs(SNAPSHOT_MAGIC, out);
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; !failed && i < st->run_count; i++)
        failed = put_record(out, 'R', EVENT_FILE_READY, &run_at(st, i)->ev, run_at(st, i)->at_ms);
    for (size_t i = 0; !failed && i < st->failure_count; i++)
        failed =
            put_record(out, 'F', EVENT_FILE_FAILED, &st->failures[i].ev, st->failures[i].at_ms);
    pthread_mutex_unlock(&st->lock);
    if (out != NULL) {
        failed |= ferror(out) != 0;
        failed |= fclose(out) != 0; /* sets bytes and size */
    }
    if (failed) {
        free(bytes);
        return DX_ERR_NOMEM;
    }
    *data = bytes;
    *len = size;
    return DX_OK;
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t value = 0;

    for (int i = bytes; i-- > 0;)
        value = value << 8 | p[i];
    return value;
}

dx_status state_decode(state *st, const void *data, size_t len, char *err, size_t err_len)
{
    const unsigned char *p = data;
    size_t pos = 4;
    dx_status s = DX_OK;

    if (len < 4 || memcmp(p, SNAPSHOT_MAGIC, 4) != 0) {
        snprintf(err, err_len, "not a status snapshot (no %s header)", SNAPSHOT_MAGIC);
        return DX_ERR_INVALID;
    }
    while (s == DX_OK && pos < len) {
        event_file_ready ready;
        event_file_failed failed;
        char kind;
        int64_t at_ms;
        size_t size;

        if (len - pos < 13) {
            snprintf(err, err_len, "snapshot truncated at byte %zu", pos);
            return DX_ERR_INVALID;
        }
        kind = (char)p[pos];
        at_ms = (int64_t)get_le(p + pos + 1, 8);
        size = (size_t)get_le(p + pos + 9, 4);
        pos += 13;
        if (size > len - pos || (kind != 'R' && kind != 'F')) {
            snprintf(err, err_len, "snapshot record at byte %zu is malformed", pos - 13);
            return DX_ERR_INVALID;
        }
        if (kind == 'R') {
            memset(&ready, 0, sizeof(ready));
            s = event_decode(EVENT_FILE_READY, p + pos, size, "application/protobuf", &ready, err,
                             err_len);
            if (s == DX_OK)
                state_add_ready(st, &ready, at_ms);
        } else {
            memset(&failed, 0, sizeof(failed));
            s = event_decode(EVENT_FILE_FAILED, p + pos, size, "application/protobuf", &failed, err,
                             err_len);
            if (s == DX_OK)
                state_add_failed(st, &failed, at_ms);
        }
        pos += size;
    }
    return s;
}
