#include "checker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drops.h"
#include "metrics.h"
#include "profile_store.h"
#include "util.h"

/* One client's candidate drops, from one listing, and its profile. */
typedef struct client_drops {
    char *client_id;
    storage_entry *drops;
    size_t count;
    profile profile;
    int profile_invalid; /* the document is invalid: the transformer holds its drops */
} client_drops;

/* The candidate drops of every client considered, from one listing. */
typedef struct snapshot {
    client_drops *clients;
    size_t count;
} snapshot;

static void snapshot_free(snapshot *snap)
{
    for (size_t i = 0; i < snap->count; i++) {
        free(snap->clients[i].client_id);
        storage_entries_free(snap->clients[i].drops, snap->clients[i].count);
    }
    free(snap->clients);
    memset(snap, 0, sizeof(*snap));
}

/* The clients bucket, opened on first use and kept; used under work_lock. */
static kv *profiles;

void checker_finish(void)
{
    kv_destroy(profiles);
    profiles = NULL;
}

/*
 * Reads client_id's profile into entry.  An invalid document is logged and
 * the client is handled as without a profile: its event is still published,
 * so that file-transformer holds the drops with a failure /status shows.
 */
static dx_status read_profile(worker *w, const char *client_id, client_drops *entry)
{
    char reason[512] = "", err[256] = "";
    dx_status s = DX_OK;

    if (profiles == NULL)
        s = profile_store_open(&profiles, w->bus, w->cfg.stream_replicas, err, sizeof(err));
    if (s != DX_OK) {
        log_printf(LOG_LEVEL_ERROR, &(log_ctx){NULL, NULL, client_id, NULL}, "%s", err);
        return s;
    }
    s = profile_store_get(profiles, client_id, &entry->profile, reason, sizeof(reason));
    if (s == DX_ERR_INVALID) {
        log_printf(LOG_LEVEL_ERROR, &(log_ctx){NULL, NULL, client_id, NULL}, "%s", reason);
        entry->profile_invalid = 1;
        s = DX_OK;
    }
    return s;
}

static dx_status snapshot_add(snapshot *snap, worker *w, const char *client_id)
{
    client_drops entry = {0};
    client_drops *grown;
    dx_status s = drops_list(w->inbox, client_id, &entry.drops, &entry.count);

    if (s == DX_ERR_NOT_FOUND)
        return DX_OK; /* no folder: nothing pending */
    if (s == DX_OK)
        s = read_profile(w, client_id, &entry);
    if (s != DX_OK) {
        storage_entries_free(entry.drops, entry.count);
        return s;
    }
    entry.client_id = strdup(client_id);
    grown = realloc(snap->clients, (snap->count + 1) * sizeof(*grown));
    if (entry.client_id == NULL || grown == NULL) {
        free(entry.client_id);
        storage_entries_free(entry.drops, entry.count);
        if (grown != NULL)
            snap->clients = grown;
        return DX_ERR_NOMEM;
    }
    snap->clients = grown;
    snap->clients[snap->count++] = entry;
    return DX_OK;
}

static dx_status take_snapshot(worker *w, const checker_request *req, snapshot *snap)
{
    storage_entry *entries = NULL;
    size_t count = 0;
    dx_status s;

    if (req->client_id[0] != '\0')
        return snapshot_add(snap, w, req->client_id);
    s = storage_list(w->inbox, "", &entries, &count);
    for (size_t i = 0; s == DX_OK && i < count; i++) {
        if (entries[i].kind == STORAGE_DIR && clientid_valid(w->clients, entries[i].name))
            s = snapshot_add(snap, w, entries[i].name);
    }
    storage_entries_free(entries, count);
    return s;
}

static const storage_entry *find_drop(const snapshot *snap, const char *client_id, const char *name)
{
    for (size_t i = 0; i < snap->count; i++) {
        const client_drops *c = &snap->clients[i];

        if (strcmp(c->client_id, client_id) != 0)
            continue;
        for (size_t j = 0; j < c->count; j++)
            if (strcmp(c->drops[j].name, name) == 0)
                return &c->drops[j];
    }
    return NULL;
}

/* Counts the drops of a client with a done_marker whose marker exists. */
static size_t marked_drops(worker *w, const client_drops *client, const log_ctx *lc)
{
    size_t marked = 0;

    for (size_t j = 0; j < client->count; j++) {
        const char *name = client->drops[j].name;

        if (drops_has_marker(w->inbox, client->client_id, name, client->profile.done_marker)) {
            marked++;
        } else {
            cJSON *fields = cJSON_CreateObject();

            cJSON_AddStringToObject(fields, "drop", name);
            cJSON_AddStringToObject(fields, "reason", "drop_not_marked");
            log_write(LOG_LEVEL_INFO, lc,
                      "drop_not_marked: no completion marker yet, left for next run", fields);
        }
    }
    return marked;
}

/* Counts the drops of client that are complete: marked, or unchanged since before. */
static size_t stable_drops(worker *w, const snapshot *before, const client_drops *client,
                           const log_ctx *lc)
{
    size_t stable = 0;

    if (client->profile.done_marker[0] != '\0')
        return marked_drops(w, client, lc);
    for (size_t j = 0; j < client->count; j++) {
        const storage_entry *cur = &client->drops[j];
        const storage_entry *old = find_drop(before, client->client_id, cur->name);

        if (old != NULL && old->size == cur->size && old->mtime == cur->mtime) {
            stable++;
        } else {
            cJSON *fields = cJSON_CreateObject();

            cJSON_AddStringToObject(fields, "drop", cur->name);
            cJSON_AddStringToObject(fields, "reason", "drop_not_stable");
            log_write(LOG_LEVEL_INFO, lc, "drop_not_stable: still changing, left for next run",
                      fields);
        }
    }
    return stable;
}

/* Publishes the OrderDate of one client; its event id goes to event_id. */
static dx_status publish_order_date(worker *w, const checker_request *req, const char *client_id,
                                    const char *order_date, const char *trace_id, cJSON *published,
                                    char event_id[EVENT_ID_MAX])
{
    event_order_date ev = {0};
    char msg_id[160];
    void *data = NULL;
    size_t len = 0;
    log_ctx lc;
    dx_status s;

    util_uuid(ev.event_id);
    util_copy(event_id, EVENT_ID_MAX, ev.event_id);
    util_copy(ev.trace_id, sizeof(ev.trace_id), trace_id);
    util_copy(ev.order_date, sizeof(ev.order_date), order_date);
    util_copy(ev.client_id, sizeof(ev.client_id), client_id);
    util_copy(ev.triggered_by, sizeof(ev.triggered_by), req->triggered_by);
    util_rfc3339(ev.created_at, util_now_ms());
    /* A scheduled run is claimed once per client and date: a second replica
     * (or a restarted one) publishing the same run is dropped by the stream's
     * duplicate window.  A manual run is always new. */
    if (strcmp(req->triggered_by, "schedule") == 0 || strcmp(req->triggered_by, "catch-up") == 0)
        snprintf(msg_id, sizeof(msg_id), "order-date:%s:%s", client_id, order_date);
    else
        snprintf(msg_id, sizeof(msg_id), "%s", ev.event_id);
    s = event_encode(EVENT_ORDER_DATE, &ev, w->cfg.emit_json, &data, &len);
    if (s == DX_OK)
        s = bus_publish(w->bus, EVENT_SUBJECT_ORDER_DATE, data, len,
                        event_content_type(w->cfg.emit_json), msg_id);
    free(data);
    lc = (log_ctx){ev.trace_id, ev.event_id, client_id, ev.order_date};
    if (s != DX_OK) {
        log_printf(LOG_LEVEL_ERROR, &lc, "cannot publish order-date for %s", client_id);
        return s;
    }
    cJSON *fields = cJSON_CreateObject();

    cJSON_AddItemToObject(fields, "event", event_to_json(EVENT_ORDER_DATE, &ev));
    log_write(LOG_LEVEL_INFO, &lc, "order-date published", fields);
    cJSON_AddItemToArray(published, event_to_json(EVENT_ORDER_DATE, &ev));
    return DX_OK;
}

/* Writes date + days (YYYY-MM-DD) into out; a valid date stays valid. */
static void add_days(const char *date, int days, char out[16])
{
    struct tm tm = {0};
    time_t t;

    if (days == 0 || sscanf(date, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3) {
        util_copy(out, 16, date);
        return;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_hour = 12;
    t = timegm(&tm) + (time_t)days * 86400;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

/* 1 when some client of the snapshot needs the DROP_MIN_AGE stability wait. */
static int needs_stability_wait(const snapshot *snap)
{
    for (size_t i = 0; i < snap->count; i++) {
        if (snap->clients[i].count > 0 && snap->clients[i].profile.done_marker[0] == '\0')
            return 1;
    }
    return 0;
}

/* 1 when the client is paused (logged); its drops stay in the inbox. */
static int client_paused(const client_drops *client, const log_ctx *lc)
{
    cJSON *fields;

    if (client->profile.enabled || client->profile_invalid)
        return 0;
    fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "reason", "client_paused");
    cJSON_AddNumberToObject(fields, "drops", (double)client->count);
    cJSON_AddNumberToObject(fields, "profile_revision", (double)client->profile.revision);
    log_write(LOG_LEVEL_INFO, lc, "client paused by its profile (enabled: false), skipped", fields);
    return 1;
}

dx_status checker_run(worker *w, const checker_request *req, cJSON *published, char *err,
                      size_t err_len)
{
    snapshot before = {0}, now = {0};
    char trace_id[EVENT_ID_MAX];
    log_ctx lc;
    dx_status s = DX_OK;

    if (req->client_id[0] != '\0' && !clientid_valid(w->clients, req->client_id)) {
        metrics_add("dx_invalid_input_total", "invalid_client", 1);
        snprintf(err, err_len, "client id refused: it does not match CLIENT_PATTERN");
        return DX_ERR_INVALID;
    }
    if (util_trace_id_valid(req->trace_id))
        util_copy(trace_id, sizeof(trace_id), req->trace_id);
    else
        util_trace_id(trace_id);
    lc = (log_ctx){trace_id, NULL, req->client_id, req->order_date};
    log_printf(LOG_LEVEL_INFO, &lc, "checking the inbox for pending drops (%s)", req->triggered_by);
    pthread_mutex_lock(&w->work_lock);
    s = take_snapshot(w, req, &before);
    pthread_mutex_unlock(&w->work_lock);
    if (s == DX_OK && w->cfg.drop_min_age > 0 && needs_stability_wait(&before))
        worker_sleep((int64_t)w->cfg.drop_min_age * 1000);
    if (s == DX_OK) {
        pthread_mutex_lock(&w->work_lock);
        s = take_snapshot(w, req, &now);
        pthread_mutex_unlock(&w->work_lock);
    }
    if (s != DX_OK) {
        snprintf(err, err_len, "cannot list the inbox: %s", storage_last_error(w->inbox));
        goto done;
    }
    for (size_t i = 0; i < now.count && s == DX_OK; i++) {
        const client_drops *client = &now.clients[i];
        char event_id[EVENT_ID_MAX], order_date[16];
        log_ctx client_lc;
        claim cl;

        add_days(req->order_date, req->run_date ? client->profile.order_date_offset_days : 0,
                 order_date);
        client_lc = (log_ctx){trace_id, NULL, client->client_id, order_date};
        if (client_paused(client, &client_lc))
            continue;
        if (stable_drops(w, &before, client, &client_lc) == 0) {
            log_printf(LOG_LEVEL_INFO, &client_lc, "no pending drop for %s",
                       now.clients[i].client_id);
            continue;
        }
        if (req->claims != NULL) {
            s = claims_take(req->claims, req->order_date, now.clients[i].client_id,
                            req->scheduled_at, &cl, &client_lc);
            if (s == DX_ERR_EXISTS) {
                s = DX_OK; /* published by another replica */
                continue;
            }
            if (s != DX_OK) {
                snprintf(err, err_len, "cannot claim the run of %s", now.clients[i].client_id);
                break;
            }
        }
        s = publish_order_date(w, req, now.clients[i].client_id, order_date, trace_id, published,
                               event_id);
        if (s != DX_OK)
            snprintf(err, err_len, "cannot publish order-date for %s", now.clients[i].client_id);
        else if (req->claims != NULL)
            claims_published(req->claims, &cl, event_id, &client_lc);
    }
done:
    snapshot_free(&before);
    snapshot_free(&now);
    return s;
}
